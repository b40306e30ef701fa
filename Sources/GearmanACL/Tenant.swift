/// A tenant: a function namespace and the quotas its principals share.
///
/// Nothing of one tenant (functions, jobs, workers, admin output) is visible to another. Its
/// principals may only be granted functions inside `functions`; the policy refuses at load time
/// any grant that could reach outside it.
public struct Tenant: Sendable, Hashable {
    /// Limits shared by all of a tenant's principals; nil is no limit of the tenant's own (the
    /// server-wide limits still apply).
    public struct Quotas: Sendable, Hashable {
        /// Jobs of the tenant's functions queued at once (foreground and background).
        public var maxQueuedJobs: Int?
        /// Open connections authenticated as the tenant's principals.
        public var maxConnections: Int?
        /// Largest payload a tenant principal may submit or return, in bytes.
        public var maxPayloadBytes: Int?

        public init(maxQueuedJobs: Int? = nil, maxConnections: Int? = nil, maxPayloadBytes: Int? = nil) {
            self.maxQueuedJobs = maxQueuedJobs
            self.maxConnections = maxConnections
            self.maxPayloadBytes = maxPayloadBytes
        }
    }

    public var name: String
    /// The tenant's namespace: a function belongs to the tenant when any of these matches it.
    public var functions: [FunctionPattern]
    public var quotas: Quotas

    public init(name: String, functions: [FunctionPattern], quotas: Quotas = Quotas()) {
        self.name = name
        self.functions = functions
        self.quotas = quotas
    }

    /// Whether the function `name` lies in the tenant's namespace.
    public func owns(function name: some Collection<UInt8>) -> Bool {
        functions.contains { $0.matches(name) }
    }

    /// Whether every function `pattern` matches lies in the namespace (see
    /// `FunctionPattern.isWithin(namespace:)` for the conservative rule).
    public func contains(_ pattern: FunctionPattern) -> Bool {
        functions.contains { pattern.isWithin(namespace: $0) }
    }
}
