/// What `gearlock top` learned from one round of admin commands (`version`, `status`, `workers`),
/// scoped by the server to the caller's tenant like any admin command.
public struct TopSnapshot: Sendable, Equatable {
    /// One line of `status`.
    public struct Function: Sendable, Equatable {
        public var name: String
        /// Jobs the server holds for the function: queued plus running.
        public var total: Int
        /// Jobs a worker is running now.
        public var running: Int
        /// Connections registered for the function (CAN_DO), busy or not.
        public var workers: Int

        /// Jobs waiting for a worker.
        public var queued: Int { max(0, total - running) }

        public init(name: String, total: Int, running: Int, workers: Int) {
            self.name = name
            self.total = total
            self.running = running
            self.workers = workers
        }
    }

    /// The server, as the user named it (`HOST:PORT`).
    public var server: String
    /// The server's `version` reply; nil when it was not asked or not answered.
    public var version: String?
    /// When the snapshot was taken, for rates between two of them.
    public var takenAt: ContinuousClock.Instant
    /// The wall-clock time of the snapshot, as shown in the header (`14:03:27`).
    public var clockTime: String
    public var functions: [Function]
    /// Connections `workers` lists (workers, clients, admin sessions, this one included); nil
    /// when unknown.
    public var connections: Int?
    /// Connections that registered at least one function.
    public var workerConnections: Int?

    public init(
        server: String, version: String? = nil, takenAt: ContinuousClock.Instant, clockTime: String,
        functions: [Function], connections: Int? = nil, workerConnections: Int? = nil
    ) {
        self.server = server
        self.version = version
        self.takenAt = takenAt
        self.clockTime = clockTime
        self.functions = functions
        self.connections = connections
        self.workerConnections = workerConnections
    }

    /// Net change per second of each function's held jobs (queued plus running) since `previous`:
    /// submissions minus jobs that ended. The admin protocol has no completion counter, so this is
    /// not a throughput: a function that completes as fast as it receives shows 0. A function
    /// missing from `previous` counts as having held nothing then. Nil when no time passed.
    public func netRates(since previous: TopSnapshot) -> [String: Double]? {
        let seconds = Self.seconds(previous.takenAt.duration(to: takenAt))
        guard seconds > 0 else { return nil }
        let before = Dictionary(previous.functions.map { ($0.name, $0.total) }, uniquingKeysWith: { first, _ in first })
        var rates: [String: Double] = [:]
        for function in functions {
            rates[function.name] = Double(function.total - (before[function.name] ?? 0)) / seconds
        }
        return rates
    }

    static func seconds(_ duration: Duration) -> Double {
        let (seconds, attoseconds) = duration.components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}
