/// One problem with an ACL: a file that does not parse, an unknown key, a bad value, or a rule that
/// breaks the policy's invariants (a grant outside the tenant's namespace, an unknown tenant, …).
///
/// `line` and `column` point into the ACL file (1-based) when the problem came from one. No message
/// ever holds a secret: the file holds only hashes, and hashes are only echoed when malformed.
public struct ACLError: Error, Sendable, Hashable, CustomStringConvertible {
    /// New codes may be added; don't switch over them exhaustively.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        enum Base: Sendable, Hashable {
            case unreadableFile, invalidYAML, unknownKey, invalidValue, invalidName, invalidPattern
            case invalidSecretHash, unknownTenant, noCredentials, missingFactor, duplicateIdentity
            case patternOutsideNamespace, overlappingNamespaces
        }

        let base: Base

        /// The file could not be read, or is not UTF-8.
        public static let unreadableFile = Code(base: .unreadableFile)
        /// The text is not valid YAML (or uses anchors, aliases, or several documents).
        public static let invalidYAML = Code(base: .invalidYAML)
        /// A key the format does not define (a typo is never silently ignored).
        public static let unknownKey = Code(base: .unknownKey)
        /// A value of the wrong shape or out of range (a list where a string belongs, a negative quota, …).
        public static let invalidValue = Code(base: .invalidValue)
        /// A tenant or principal name that is empty or holds characters that break the auth token.
        public static let invalidName = Code(base: .invalidName)
        /// An empty function pattern, or one with a NUL or control character.
        public static let invalidPattern = Code(base: .invalidPattern)
        /// A `secret` that is not `sha256:` followed by 64 hex digits.
        public static let invalidSecretHash = Code(base: .invalidSecretHash)
        /// A principal names a tenant the file does not define.
        public static let unknownTenant = Code(base: .unknownTenant)
        /// A principal has neither a `certificate` nor a `secret`.
        public static let noCredentials = Code(base: .noCredentials)
        /// `require` lists a factor the principal does not have.
        public static let missingFactor = Code(base: .missingFactor)
        /// Two principals claim the same certificate identity.
        public static let duplicateIdentity = Code(base: .duplicateIdentity)
        /// A tenant principal's `can_do` or `submit` pattern could match a function outside the
        /// tenant's namespace.
        public static let patternOutsideNamespace = Code(base: .patternOutsideNamespace)
        /// Two tenants' namespaces could both match one function name.
        public static let overlappingNamespaces = Code(base: .overlappingNamespaces)

        public var description: String {
            switch base {
            case .unreadableFile: "unreadableFile"
            case .invalidYAML: "invalidYAML"
            case .unknownKey: "unknownKey"
            case .invalidValue: "invalidValue"
            case .invalidName: "invalidName"
            case .invalidPattern: "invalidPattern"
            case .invalidSecretHash: "invalidSecretHash"
            case .unknownTenant: "unknownTenant"
            case .noCredentials: "noCredentials"
            case .missingFactor: "missingFactor"
            case .duplicateIdentity: "duplicateIdentity"
            case .patternOutsideNamespace: "patternOutsideNamespace"
            case .overlappingNamespaces: "overlappingNamespaces"
            }
        }
    }

    public var code: Code
    public var message: String
    /// 1-based line in the ACL file, when the problem came from one.
    public var line: Int?
    /// 1-based column (in Unicode scalars), when known.
    public var column: Int?

    public init(code: Code, message: String, line: Int? = nil, column: Int? = nil) {
        self.code = code
        self.message = message
        self.line = line
        self.column = column
    }

    /// `LINE: message`, or just the message when there is no line.
    public var description: String {
        guard let line else { return message }
        return "\(line): \(message)"
    }
}

/// Every problem found in one ACL (the loader reports all of them, not just the first), in file order.
public struct ACLLoadError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The file the policy came from, when it came from a file.
    public var file: String?
    public var errors: [ACLError]

    public init(file: String? = nil, errors: [ACLError]) {
        self.file = file
        self.errors = errors
    }

    /// One `FILE:LINE: problem` line per error (the form compilers use, so editors can jump to it).
    public var lines: [String] {
        errors.map { error in
            var location = file ?? "<acl>"
            if let line = error.line { location += ":\(line)" }
            return "\(location): \(error.message)"
        }
    }

    public var description: String { lines.joined(separator: "\n") }
}
