/// A configuration file that cannot be used, with every problem found in it (not just the first),
/// each with its line when it has one.
public struct ConfigurationFileError: Error, Sendable, Hashable, CustomStringConvertible {
    /// One problem: what is wrong, and where.
    public struct Problem: Error, Sendable, Hashable, CustomStringConvertible {
        public var code: Code
        public var message: String
        /// 1-based line in the file, when the problem is at one place.
        public var line: Int?

        public init(code: Code, message: String, line: Int? = nil) {
            self.code = code
            self.message = message
            self.line = line
        }

        public var description: String { line.map { "\($0): \(message)" } ?? message }
    }

    /// New codes may be added; don't switch over them exhaustively.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        enum Base: Sendable, Hashable {
            case unreadableFile, invalidYAML, unknownKey, invalidValue, notAllowed
        }

        let base: Base

        /// The file is missing, unreadable or not UTF-8.
        public static let unreadableFile = Code(base: .unreadableFile)
        /// The text is not YAML, or not a mapping of keys to values.
        public static let invalidYAML = Code(base: .invalidYAML)
        /// A key that is not an option of the command (a typo is never silently ignored).
        public static let unknownKey = Code(base: .unknownKey)
        /// A value of the wrong shape: a list for a single option, a non-boolean for a flag, …
        public static let invalidValue = Code(base: .invalidValue)
        /// An option that only makes sense on the command line (`config`, `check-config`, …).
        public static let notAllowed = Code(base: .notAllowed)

        public var description: String { "\(base)" }
    }

    /// The file's path, as given.
    public var file: String
    public var problems: [Problem]

    public init(file: String, problems: [Problem]) {
        self.file = file
        self.problems = problems
    }

    /// One line per problem: `FILE:LINE: message`.
    public var description: String {
        problems.map { "\(file):" + ($0.line.map { "\($0):" } ?? "") + " " + $0.message }.joined(separator: "\n")
    }
}
