public import Logging
public import NIOCore

extension JobServer {
    /// The limits a running server takes without a restart (`updateLimits(_:)`, a SIGHUP reload).
    public struct Limits: Sendable, Equatable {
        /// See `Configuration.maxConnections`. A lower limit refuses new connections only: the
        /// ones already open stay.
        public var maxConnections: Int?
        /// See `Configuration.maxConnectionsPerAddress`.
        public var maxConnectionsPerAddress: Int?
        /// See `Configuration.maxQueueBytes`. A lower limit refuses new submissions only.
        public var maxQueueBytes: UInt64?
        /// See `Configuration.jobRetries`.
        public var jobRetries: Int
        /// With access control: how long a new connection has to authenticate (connections already
        /// waiting keep their deadline). Ignored without access control.
        public var authenticationTimeout: TimeAmount?
        /// With access control: failed authentications from one address before it is throttled.
        /// Ignored without access control.
        public var failuresBeforeThrottling: Int?

        public init(
            maxConnections: Int? = nil, maxConnectionsPerAddress: Int? = nil, maxQueueBytes: UInt64? = nil,
            jobRetries: Int = 0, authenticationTimeout: TimeAmount? = nil, failuresBeforeThrottling: Int? = nil
        ) {
            self.maxConnections = maxConnections
            self.maxConnectionsPerAddress = maxConnectionsPerAddress
            self.maxQueueBytes = maxQueueBytes
            self.jobRetries = jobRetries
            self.authenticationTimeout = authenticationTimeout
            self.failuresBeforeThrottling = failuresBeforeThrottling
        }
    }

    /// Applies new limits on the server's event loop; returns once they are in force.
    public func updateLimits(_ limits: Limits) async {
        let core = self.core
        try? await core.eventLoop.submit { core.updateLimits(limits) }.get()
    }

    /// Makes the `verbose` admin command report `level`, after the server's log level changed.
    public func logLevelChanged(to level: Logger.Level) async {
        let core = self.core
        try? await core.eventLoop.submit { core.updateVerboseLevel(level.gearmanName) }.get()
    }
}

extension JobServerStateMachine {
    /// New limits for what happens from now on; nothing already admitted is undone.
    mutating func limitsChanged(_ limits: JobServer.Limits) {
        configuration.limits = ServerLimits(
            maxConnections: limits.maxConnections, maxConnectionsPerAddress: limits.maxConnectionsPerAddress,
            maxQueueBytes: limits.maxQueueBytes)
        configuration.jobRetries = limits.jobRetries
        guard access != nil else { return }
        if let timeout = limits.authenticationTimeout { access!.authenticationTimeout = timeout }
        if let failures = limits.failuresBeforeThrottling {
            access!.failuresBeforeThrottling = failures
            throttle.threshold = max(1, failures)
        }
    }

    mutating func verboseLevelChanged(_ level: String) {
        configuration.verboseLevel = level
    }
}
