public import GearmanProtocol
public import Logging
public import NIOCore
import NIOConcurrencyHelpers
public import NIOPosix

/// Submits jobs to one or more Gearman servers.
///
/// Connections open on first use, one per server, and every request to that server shares it.
/// A submission with a unique key always goes to the same server (chosen by a hash of the key,
/// so coalescing works across servers); one without goes round-robin. When a server is down the
/// next one is tried, and a failed server is retried after an exponential backoff.
///
/// ```swift
/// let client = GearmanClient(configuration: .init(connection: .init(servers: [.init(host: "127.0.0.1")])))
/// let result = try await client.submit(function: "reverse", payload: "hello")
/// print(String(buffer: result))  // olleh
/// client.shutdown()
/// ```
public final class GearmanClient: Sendable {
    public struct Configuration: Sendable {
        /// The servers and how to connect to them.
        public var connection: GearmanConnectionOptions
        /// Ask every server to forward WORK_EXCEPTION (OPTION_REQ `exceptions`), so a job's
        /// exception arrives as `.jobException` with its payload. Default: true.
        public var exceptions: Bool
        /// When a server is lost while a foreground job waits on it, submit the job again to the
        /// next server (the job then runs at least once). Default: true.
        public var resubmitOnServerLoss: Bool

        public init(connection: GearmanConnectionOptions = .init(), exceptions: Bool = true, resubmitOnServerLoss: Bool = true) {
            self.connection = connection
            self.exceptions = exceptions
            self.resubmitOnServerLoss = resubmitOnServerLoss
        }
    }

    public let configuration: Configuration
    let pool: ConnectionPool
    private let logger: Logger
    private let roundRobin = NIOLockedValueBox(0)

    public init(
        configuration: Configuration, eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "gearman.client", factory: { _ in SwiftLogNoOpLogHandler() })
    ) {
        self.configuration = configuration
        self.logger = logger
        let exceptions = configuration.exceptions
        self.pool = ConnectionPool(
            options: configuration.connection, eventLoopGroup: eventLoopGroup, logger: logger,
            setUp: { connection in
                guard exceptions else { return connection.channel.eventLoop.makeSucceededVoidFuture() }
                return connection.requestFuture(
                    .packet(.optionRequest(name: ByteBuffer(string: "exceptions"))), expecting: .option,
                    timeout: configuration.connection.connectTimeout
                ).map { _ in }
            })
    }

    /// Closes every connection. Waiting calls fail with `.connectionClosed` (a foreground job that
    /// would be resubmitted after a lost server with `.shutDown`), later calls with `.shutDown`.
    public func shutdown() {
        pool.shutdown()
    }

    // MARK: Foreground jobs

    /// Runs a foreground job and returns its result.
    /// - Parameters:
    ///   - unique: coalescing key; jobs with the same function and unique share one run. Default: none.
    ///   - timeout: how long to wait for the result in all; nil waits as long as it takes.
    /// - Throws: `.jobFailed`, `.jobException` (with the worker's payload), `.timeout`, `.serverError`
    ///   (e.g. `QUEUE_ERROR`), `.noServerAvailable`, `.authenticationFailed` (no server took the job
    ///   and one refused the credentials), `.cancelled`.
    public func submit(
        function: String, payload: ByteBuffer, unique: String? = nil, priority: JobPriority = .normal,
        timeout: Duration? = nil
    ) async throws(GearmanError) -> ByteBuffer {
        let job = try await submitJob(function: function, payload: payload, unique: unique, priority: priority, timeout: timeout)
        return try await job.result()
    }

    /// ``submit(function:payload:unique:priority:timeout:)`` with a `String` payload.
    public func submit(
        function: String, payload: String, unique: String? = nil, priority: JobPriority = .normal,
        timeout: Duration? = nil
    ) async throws(GearmanError) -> ByteBuffer {
        try await submit(function: function, payload: ByteBuffer(string: payload), unique: unique, priority: priority, timeout: timeout)
    }

    /// Submits a foreground job and returns once the server has created it; its progress and result
    /// arrive through ``GearmanForegroundJob/events``.
    public func submitJob(
        function: String, payload: ByteBuffer, unique: String? = nil, priority: JobPriority = .normal,
        reducer: String? = nil, timeout: Duration? = nil
    ) async throws(GearmanError) -> GearmanForegroundJob {
        let submission = JobSubmission(
            function: function, unique: unique ?? "", payload: payload, priority: priority, background: false,
            epoch: nil, reducer: reducer)
        try submission.validate()
        let deadline = timeout.map { NIODeadline.now() + .nanoseconds($0.nanoseconds) }
        let attempt = try await startForeground(submission, deadline: deadline)
        return GearmanForegroundJob(client: self, submission: submission, deadline: deadline, first: attempt)
    }

    /// One attempt at a foreground job: the server that took it, its handle, and the event stream.
    struct ForegroundAttempt: Sendable {
        var connection: GearmanConnection
        var handle: ByteBuffer
        var sink: JobEventSink
        var timer: Scheduled<Void>?
    }

    func startForeground(_ submission: JobSubmission, deadline: NIODeadline?) async throws(GearmanError) -> ForegroundAttempt {
        try await withServer(for: submission.unique, deadline: deadline) { connection throws(GearmanError) in
            let sink = JobEventSink()
            let reply = try await connection.request(
                .packet(submission.packet), expecting: .jobCreated, listener: sink, jobKey: submission.jobKey,
                timeout: deadline.map { Self.remaining(until: $0) })
            guard case .packet(.jobCreated(let handle)) = reply else {
                throw GearmanError(.protocolViolation, "expected JOB_CREATED", server: connection.address.description)
            }
            let timer = deadline.map { deadline in
                connection.channel.eventLoop.scheduleTask(deadline: deadline) {
                    connection.removeListener(
                        sink, handle: handle,
                        error: GearmanError(
                            .timeout, "no result before the deadline", jobHandle: String(buffer: handle),
                            server: connection.address.description))
                }
            }
            sink.continuation.onTermination = { termination in
                if case .cancelled = termination {
                    connection.removeListener(
                        sink, handle: handle, error: GearmanError(.cancelled, "the waiting task was cancelled"))
                }
            }
            return ForegroundAttempt(connection: connection, handle: handle, sink: sink, timer: timer)
        }
    }

    // MARK: Background jobs

    /// Submits a background job; returns once the server acknowledged it with JOB_CREATED.
    public func submitBackground(
        function: String, payload: ByteBuffer, unique: String? = nil, priority: JobPriority = .normal,
        reducer: String? = nil, timeout: Duration? = nil
    ) async throws(GearmanError) -> GearmanJobHandle {
        try await background(
            JobSubmission(
                function: function, unique: unique ?? "", payload: payload, priority: priority, background: true,
                epoch: nil, reducer: reducer), timeout: timeout)
    }

    /// Submits a background job that runs once the time reaches `epoch` (seconds since 1970).
    public func submitBackground(
        function: String, payload: ByteBuffer, unique: String? = nil, runAt epoch: Int64, timeout: Duration? = nil
    ) async throws(GearmanError) -> GearmanJobHandle {
        try await background(
            JobSubmission(
                function: function, unique: unique ?? "", payload: payload, priority: .normal, background: true,
                epoch: epoch, reducer: nil), timeout: timeout)
    }

    private func background(_ submission: JobSubmission, timeout: Duration?) async throws(GearmanError) -> GearmanJobHandle {
        try submission.validate()
        let deadline = timeout.map { NIODeadline.now() + .nanoseconds($0.nanoseconds) }
        return try await withServer(for: submission.unique, deadline: deadline) { connection throws(GearmanError) in
            let reply = try await connection.request(
                .packet(submission.packet), expecting: .jobCreated, timeout: deadline.map { Self.remaining(until: $0) })
            guard case .packet(.jobCreated(let handle)) = reply else {
                throw GearmanError(.protocolViolation, "expected JOB_CREATED", server: connection.address.description)
            }
            return GearmanJobHandle(handle: String(buffer: handle), server: connection.address)
        }
    }

    // MARK: Status and echo

    /// GET_STATUS: asks the server that issued `handle`.
    public func status(of handle: GearmanJobHandle, timeout: Duration? = nil) async throws(GearmanError) -> GearmanJobStatus {
        guard let index = configuration.connection.servers.firstIndex(of: handle.server) else {
            throw GearmanError(.invalidArgument, "\(handle.server) is not one of the client's servers")
        }
        let deadline = timeout.map { NIODeadline.now() + .nanoseconds($0.nanoseconds) }
        let connection = try await pool.connection(to: index, deadline: deadline)
        let reply = try await connection.request(
            .packet(.getStatus(handle: ByteBuffer(string: handle.handle))), expecting: .status,
            timeout: deadline.map { Self.remaining(until: $0) })
        guard case .packet(.statusResponse(_, let known, let running, let numerator, let denominator)) = reply else {
            throw GearmanError(.protocolViolation, "expected STATUS_RES", server: handle.server.description)
        }
        return GearmanJobStatus(
            isKnown: known, isRunning: running, numerator: Int(String(buffer: numerator)) ?? 0,
            denominator: Int(String(buffer: denominator)) ?? 0)
    }

    /// GET_STATUS_UNIQUE: asks the server the unique key maps to.
    public func status(ofUnique unique: String, timeout: Duration? = nil) async throws(GearmanError) -> GearmanJobStatus {
        let deadline = timeout.map { NIODeadline.now() + .nanoseconds($0.nanoseconds) }
        return try await withServer(for: unique, deadline: deadline) { connection throws(GearmanError) in
            let reply = try await connection.request(
                .packet(.getStatusUnique(unique: ByteBuffer(string: unique))), expecting: .statusUnique,
                timeout: deadline.map { Self.remaining(until: $0) })
            guard case .packet(.statusResponseUnique(_, let known, let running, let numerator, let denominator, let clients)) = reply
            else {
                throw GearmanError(.protocolViolation, "expected STATUS_RES_UNIQUE", server: connection.address.description)
            }
            return GearmanJobStatus(
                isKnown: known, isRunning: running, numerator: Int(String(buffer: numerator)) ?? 0,
                denominator: Int(String(buffer: denominator)) ?? 0, waitingClients: Int(String(buffer: clients)) ?? 0)
        }
    }

    /// ECHO_REQ: the server sends `payload` back.
    public func echo(_ payload: ByteBuffer, timeout: Duration? = nil) async throws(GearmanError) -> ByteBuffer {
        let deadline = timeout.map { NIODeadline.now() + .nanoseconds($0.nanoseconds) }
        return try await withServer(for: "", deadline: deadline) { connection throws(GearmanError) in
            let reply = try await connection.request(
                .packet(.echoRequest(payload: payload)), expecting: .echo, timeout: deadline.map { Self.remaining(until: $0) })
            guard case .packet(.echoResponse(let echoed)) = reply else {
                throw GearmanError(.protocolViolation, "expected ECHO_RES", server: connection.address.description)
            }
            return echoed
        }
    }

    // MARK: Server choice and failover

    /// The order to try servers in: the unique key's server first (so coalescing works across
    /// servers), else the next in round-robin; then the others in order.
    func serverOrder(for unique: String) -> [Int] {
        let count = pool.serverCount
        guard count > 0 else { return [] }
        let first: Int
        if unique.isEmpty {
            first = roundRobin.withLockedValue { value in
                defer { value = (value + 1) % count }
                return value
            }
        } else {
            first = Int(Self.stableHash(unique) % UInt64(count))
        }
        return (0..<count).map { (first + $0) % count }
    }

    /// FNV-1a: stable across processes and machines, unlike `Hasher`.
    static func stableHash(_ text: String) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01B3
        }
        return hash
    }

    /// Runs `body` on the first server that works, in `serverOrder` order. Connection failures move
    /// on to the next server; a server's own answer (ERROR, a result) does not. When every server
    /// is backing off, waits for the first to come back, until `deadline`.
    ///
    /// A server that refuses the credentials is skipped like one that is down. When no server
    /// takes the request and one refused the credentials, that refusal (`.authenticationFailed`)
    /// is thrown rather than `.noServerAvailable`, and when every server refused them there is no
    /// second round: waiting would not change their answer.
    func withServer<T: Sendable>(
        for unique: String, deadline: NIODeadline?,
        _ body: (GearmanConnection) async throws(GearmanError) -> T
    ) async throws(GearmanError) -> T {
        var lastError: GearmanError?
        var refusal: GearmanError?
        var everyServerRefused = false
        for round in 0..<2 {
            if round == 1 {
                if everyServerRefused, let refusal { throw refusal }
                // Every server failed once: wait for the earliest backoff to end, then try again.
                let wait = pool.timeUntilNextAttempt()
                if let deadline, NIODeadline.now() + wait > deadline { break }
                do {
                    try await Task.sleep(nanoseconds: UInt64(max(0, wait.nanoseconds)))
                } catch {
                    throw GearmanError(.cancelled, "the waiting task was cancelled")
                }
            }
            var refusals = 0
            for index in serverOrder(for: unique) {
                if Task.isCancelled { throw GearmanError(.cancelled, "the waiting task was cancelled") }
                do throws(GearmanError) {
                    let connection = try await pool.connection(to: index, deadline: deadline)
                    return try await body(connection)
                } catch {
                    guard error.code == .connectionFailed || error.code == .connectionClosed || error.code == .authenticationFailed
                    else { throw error }
                    if error.code == .connectionClosed { pool.recordFailure(index) }
                    if error.code == .authenticationFailed {
                        refusal = error
                        refusals += 1
                    }
                    logger.debug("server unavailable, trying the next", metadata: ["error": "\(error)"])
                    lastError = error
                }
            }
            everyServerRefused = refusals == pool.serverCount
        }
        if let refusal { throw refusal }
        throw GearmanError(
            .noServerAvailable, "no server could take the request" + (lastError.map { ": \($0.message)" } ?? ""),
            underlying: lastError)
    }

    static func remaining(until deadline: NIODeadline) -> Duration {
        let nanoseconds = (deadline - .now()).nanoseconds
        return .nanoseconds(max(0, nanoseconds))
    }
}
