public import Logging
public import NIOCore
public import NIOPosix

/// Runs the text admin protocol (`status`, `workers`, `cancel job`, …) against one job server and
/// returns typed results.
///
/// The connection opens on the first call and is shared by every later call; calls may run
/// concurrently (the protocol answers in order). A connection the server closed is reopened by
/// the next call. Admin commands are not retried: a call that loses its connection fails with
/// `.connectionClosed`.
///
/// With `options.credentials`, every connection first sends the line `auth <principal> <secret>`
/// and is used only once the server answered `OK`; an `ERR` answer (or a close) fails the call with
/// `.authenticationFailed`, and the server is retried after the reconnect backoff.
///
/// Errors: an `ERR <code> <text>` reply throws `.serverError` with `serverCode` set to the code
/// (nil when the server answered with bare prose, as gearmand's `drop function` does); a reply that
/// does not have the command's format throws `.protocolViolation` naming the line.
///
/// ```swift
/// let admin = GearmanAdminClient(server: .init(host: "127.0.0.1"))
/// defer { admin.close() }
/// for function in try await admin.status() {
///     print(function.name, function.total, function.running, function.availableWorkers)
/// }
/// ```
public final class GearmanAdminClient: Sendable {
    /// The server every command goes to.
    public let server: GearmanServerAddress
    private let pool: ConnectionPool

    /// Creates a client for one server; nothing is sent until the first call.
    /// - Parameters:
    ///   - server: the job server. `options.servers` is ignored: admin commands talk to one server.
    ///   - options: connect timeout, reconnect backoff, client id, packet limit, TLS and credentials.
    ///   - eventLoopGroup: where the connection runs.
    ///   - logger: connection events (connects, failures) at debug and info level.
    public init(
        server: GearmanServerAddress, options: GearmanConnectionOptions = .init(),
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "gearman.admin", factory: { _ in SwiftLogNoOpLogHandler() })
    ) {
        self.server = server
        var options = options
        options.servers = [server]
        self.pool = ConnectionPool(options: options, eventLoopGroup: eventLoopGroup, logger: logger, dialect: .admin)
    }

    /// Closes the connection. Waiting calls fail with `.connectionClosed`, later calls with `.shutDown`.
    public func close() {
        pool.shutdown()
    }

    // MARK: Reading

    /// `status`: every function the server knows, with its job and worker counts, in the server's
    /// order (gearmand's is a hash order).
    /// - Parameter timeout: how long to wait for the reply once connected; nil waits until the
    ///   reply or the connection's end (connecting is bounded by `connectTimeout`).
    public func status(timeout: Duration? = nil) async throws(GearmanError) -> [FunctionStatus] {
        let lines = try await send("status", list: true, timeout: timeout)
        return try attributed { () throws(GearmanError) in try AdminReplyParser.status(lines) }
    }

    /// `prioritystatus`: every function's queued (not running) jobs per priority, and its workers.
    /// - Parameter timeout: as for ``status(timeout:)``.
    public func priorityStatus(timeout: Duration? = nil) async throws(GearmanError) -> [FunctionPriorityStatus] {
        let lines = try await send("prioritystatus", list: true, timeout: timeout)
        return try attributed { () throws(GearmanError) in try AdminReplyParser.priorityStatus(lines) }
    }

    /// `workers`: every connection to the server (workers, clients and admin sessions, this one
    /// included) with its client id and registered functions.
    /// - Parameter timeout: as for ``status(timeout:)``.
    public func workers(timeout: Duration? = nil) async throws(GearmanError) -> [WorkerInfo] {
        let lines = try await send("workers", list: true, timeout: timeout)
        return try attributed { () throws(GearmanError) in try AdminReplyParser.workers(lines) }
    }

    /// `show jobs`: every job the server holds, queued or running.
    /// - Parameter timeout: as for ``status(timeout:)``.
    public func jobs(timeout: Duration? = nil) async throws(GearmanError) -> [JobInfo] {
        let lines = try await send("show jobs", list: true, timeout: timeout)
        return try attributed { () throws(GearmanError) in try AdminReplyParser.jobs(lines) }
    }

    /// `show unique jobs`: the unique key of every job the server holds ("" for a job without one).
    /// The reply names no function, so equal keys of different functions look alike.
    /// - Parameter timeout: as for ``status(timeout:)``.
    public func uniqueJobs(timeout: Duration? = nil) async throws(GearmanError) -> [String] {
        let lines = try await send("show unique jobs", list: true, timeout: timeout)
        return try attributed { () throws(GearmanError) in try AdminReplyParser.uniqueJobs(lines) }
    }

    /// `version`: the server's version string (e.g. `1.1.20+ds` for Debian's gearmand).
    /// - Parameter timeout: as for ``status(timeout:)``.
    public func version(timeout: Duration? = nil) async throws(GearmanError) -> String {
        let lines = try await send("version", list: false, timeout: timeout)
        return try attributed { () throws(GearmanError) in try AdminReplyParser.value(lines, command: "version") }
    }

    /// `getpid`: the server's process id.
    /// - Parameter timeout: as for ``status(timeout:)``.
    public func pid(timeout: Duration? = nil) async throws(GearmanError) -> Int {
        let lines = try await send("getpid", list: false, timeout: timeout)
        return try attributed { () throws(GearmanError) in try AdminReplyParser.pid(lines) }
    }

    /// `verbose`: the server's log level name (e.g. `ERROR`). The command only reports it.
    /// - Parameter timeout: as for ``status(timeout:)``.
    public func verbose(timeout: Duration? = nil) async throws(GearmanError) -> String {
        let lines = try await send("verbose", list: false, timeout: timeout)
        return try attributed { () throws(GearmanError) in try AdminReplyParser.value(lines, command: "verbose") }
    }

    // MARK: Changing

    /// `cancel job H`: the job's waiting clients get WORK_FAIL and the job will not run (a worker
    /// already running it is not told). gearmand answers OK for an already cancelled job too.
    /// - Throws: `.serverError` with `serverCode` `UNKNOWN_JOB` for a handle the server does not
    ///   know; `.invalidArgument` for a handle with spaces or control characters.
    public func cancelJob(_ handle: String, timeout: Duration? = nil) async throws(GearmanError) {
        try Self.validateToken(handle, what: "job handle")
        do {
            let lines = try await send("cancel job \(handle)", list: false, timeout: timeout)
            try attributed { () throws(GearmanError) in try AdminReplyParser.ok(lines, command: "cancel job") }
        } catch {
            var error = error
            error.jobHandle = handle
            throw error
        }
    }

    /// `create function F`: makes the function known (it shows in ``status(timeout:)`` with zero
    /// counts) before any worker or job mentions it.
    /// - Throws: `.invalidArgument` for an empty name or one with spaces or control characters.
    public func createFunction(_ name: String, timeout: Duration? = nil) async throws(GearmanError) {
        try Self.validateToken(name, what: "function name")
        let lines = try await send("create function \(name)", list: false, timeout: timeout)
        try attributed { () throws(GearmanError) in try AdminReplyParser.ok(lines, command: "create function") }
    }

    /// `drop function F` (matched case-insensitively): forgets a function that has no workers.
    /// - Throws: `.serverError` (without a `serverCode`; the message says why) when workers are
    ///   still registered or the function is unknown.
    public func dropFunction(_ name: String, timeout: Duration? = nil) async throws(GearmanError) {
        try Self.validateToken(name, what: "function name")
        let lines = try await send("drop function \(name)", list: false, timeout: timeout)
        try attributed { () throws(GearmanError) in try AdminReplyParser.ok(lines, command: "drop function") }
    }

    /// `maxqueue F N`: limits the function's jobs (queued plus running) for every priority; a new
    /// job beyond it is refused with `QUEUE_ERROR`. 0 means unlimited. gearmand silently ignores a
    /// limit for a function it does not know yet (create it first); Gearlock keeps it.
    /// - Throws: `.invalidArgument` for a negative limit or a bad function name.
    public func setMaxQueue(function: String, limit: Int, timeout: Duration? = nil) async throws(GearmanError) {
        try Self.validateToken(function, what: "function name")
        try Self.validateLimit(limit)
        let lines = try await send("maxqueue \(function) \(limit)", list: false, timeout: timeout)
        try attributed { () throws(GearmanError) in try AdminReplyParser.ok(lines, command: "maxqueue") }
    }

    /// `maxqueue F HIGH NORMAL LOW`: a limit per priority of the submitted job; each is compared
    /// with the function's total jobs of all priorities. 0 means unlimited.
    /// - Throws: `.invalidArgument` for a negative limit or a bad function name.
    public func setMaxQueue(
        function: String, high: Int, normal: Int, low: Int, timeout: Duration? = nil
    ) async throws(GearmanError) {
        try Self.validateToken(function, what: "function name")
        for limit in [high, normal, low] { try Self.validateLimit(limit) }
        let lines = try await send("maxqueue \(function) \(high) \(normal) \(low)", list: false, timeout: timeout)
        try attributed { () throws(GearmanError) in try AdminReplyParser.ok(lines, command: "maxqueue") }
    }

    /// `shutdown` / `shutdown graceful`: stops the server (Gearlock only). Graceful lets running
    /// jobs finish first. The server closes this connection after answering.
    /// - Throws: `.serverError` with `serverCode` `UNKNOWN_COMMAND` from gearmand, which removed
    ///   the command in 1.1.15 (stop it with a signal instead).
    public func shutdown(graceful: Bool = false, timeout: Duration? = nil) async throws(GearmanError) {
        let lines = try await send(graceful ? "shutdown graceful" : "shutdown", list: false, timeout: timeout)
        try attributed { () throws(GearmanError) in try AdminReplyParser.ok(lines, command: "shutdown") }
    }

    // MARK: Raw

    /// Sends one admin line as it is and returns the reply's lines unparsed — an `ERR` reply
    /// included, which is returned, not thrown.
    /// - Parameters:
    ///   - line: the command, without a line ending.
    ///   - list: whether the reply is a list ending in `.` (`status`, `workers`, `show jobs`, …);
    ///     the returned lines exclude the `.`. A wrong guess leaves the connection out of step, so
    ///     the next call may fail.
    /// - Throws: `.invalidArgument` when `line` contains a line break (it would be two commands).
    public func raw(_ line: String, list: Bool, timeout: Duration? = nil) async throws(GearmanError) -> [String] {
        guard !line.contains(where: { $0 == "\n" || $0 == "\r" }), !line.utf8.contains(0) else {
            throw GearmanError(.invalidArgument, "an admin line must not contain a line break or NUL")
        }
        return try await send(line, list: list, timeout: timeout)
    }

    // MARK: Helpers

    private func send(_ line: String, list: Bool, timeout: Duration?) async throws(GearmanError) -> [String] {
        let connection = try await pool.connection(to: 0)
        return try await connection.admin(line, list: list, timeout: timeout)
    }

    /// Runs a parser and names this server in whatever it throws.
    private func attributed<T>(_ parse: () throws(GearmanError) -> T) throws(GearmanError) -> T {
        do {
            return try parse()
        } catch {
            var error = error
            error.server = server.description
            throw error
        }
    }

    /// A name or handle travels as one space-separated token of a text line.
    static func validateToken(_ value: String, what: String) throws(GearmanError) {
        guard !value.isEmpty else { throw GearmanError(.invalidArgument, "the \(what) is empty") }
        let bad = value.unicodeScalars.first { $0 == " " || $0.value < 0x20 || $0.value == 0x7F }
        if let bad {
            throw GearmanError(
                .invalidArgument,
                "the \(what) \(String(reflecting: value)) contains \(bad == " " ? "a space" : "a control character"), "
                    + "which the admin protocol cannot carry")
        }
    }

    private static func validateLimit(_ limit: Int) throws(GearmanError) {
        guard limit >= 0 else {
            throw GearmanError(.invalidArgument, "a maxqueue limit must be 0 (unlimited) or more, not \(limit)")
        }
    }
}
