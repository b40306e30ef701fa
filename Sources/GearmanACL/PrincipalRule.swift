/// A way for a connection to prove it is a principal.
public enum AuthenticationFactor: String, Sendable, Hashable, CaseIterable {
    /// A verified client certificate whose identity (CN or SAN) equals the principal's `certificate`.
    case certificate
    /// The shared secret whose hash is the principal's `secret`.
    case secret
}

/// One principal of the ACL: who it is, how it authenticates, and what it may do.
public struct PrincipalRule: Sendable, Hashable {
    /// The name used in `auth:<name>:<secret>`, in logs and in `workers` output.
    public var name: String
    /// The tenant it belongs to; nil makes it a global principal that sees the whole server.
    public var tenant: String?
    /// The identity its client certificate carries (the CN, or a SAN when the server is so
    /// configured), if it may authenticate by certificate.
    public var certificate: String?
    /// The hash of its shared secret, if it may authenticate by secret.
    public var secret: SecretHash?
    /// Factors that must all be presented. Empty (the default) means any one configured factor
    /// suffices.
    public var requiredFactors: Set<AuthenticationFactor>
    /// Functions it may register as a worker (CAN_DO, CAN_DO_TIMEOUT).
    public var canDo: [FunctionPattern]
    /// Functions it may submit jobs to (every SUBMIT_* variant).
    public var submit: [FunctionPattern]
    public var admin: AdminLevel

    public init(
        name: String, tenant: String? = nil, certificate: String? = nil, secret: SecretHash? = nil,
        requiredFactors: Set<AuthenticationFactor> = [], canDo: [FunctionPattern] = [],
        submit: [FunctionPattern] = [], admin: AdminLevel = .none
    ) {
        self.name = name
        self.tenant = tenant
        self.certificate = certificate
        self.secret = secret
        self.requiredFactors = requiredFactors
        self.canDo = canDo
        self.submit = submit
        self.admin = admin
    }

    /// Why `name` cannot be a principal (or tenant) name, or nil when it can. Names travel in the
    /// `auth:<principal>:<secret>` token and the admin line `auth <principal> <secret>`, so they
    /// hold no `:` and no white space.
    public static func nameProblem(_ name: String) -> String? {
        if name.isEmpty { return "is empty" }
        if name.contains(":") { return "contains ':'" }
        if name.unicodeScalars.contains(where: { $0.properties.isWhitespace || $0.properties.generalCategory == .control }) {
            return "contains white space or a control character"
        }
        return nil
    }

    /// The factors this principal has configured.
    public var configuredFactors: Set<AuthenticationFactor> {
        var factors: Set<AuthenticationFactor> = []
        if certificate != nil { factors.insert(.certificate) }
        if secret != nil { factors.insert(.secret) }
        return factors
    }
}
