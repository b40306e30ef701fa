public import Logging
import NIOConcurrencyHelpers
public import NIOCore
public import NIOPosix
import PostgresNIO

/// A queue store in a PostgreSQL database, for deployments that outgrow one machine: the queue lives
/// on a database the operator already replicates and backs up, so a server whose machine is lost can
/// be replaced by another started with the same server name, which replays the lost server's jobs.
///
/// Semantics are those of `SQLiteQueueStore`: each batch is one transaction, additions before
/// removals; an added job whose handle is stored replaces it and keeps its place; `loadAll` returns
/// the jobs in the order they were first added. A batch counts as done when PostgreSQL has answered
/// its `COMMIT`, which with `synchronous_commit` on (the default, and the store turns it on for its
/// session if the database has it off) means the commit is on the server's disk, and on a
/// synchronous standby too where the operator has configured one.
///
/// **Several servers, one database.** Rows are keyed by the server's name, so servers with different
/// names share the tables `gearlock_jobs` and `gearlock_schema`, created when absent (under a
/// transaction-level advisory lock, so servers that start together do not trip over each other).
///
/// **One server per name.** The store holds a session-level advisory lock keyed by its server name
/// for as long as its connection lives: a second server with the same name fails at `open` with
/// `.locked`. The lock goes with the session, so when a server dies its lock is freed as soon as
/// PostgreSQL notices the connection is gone: at once when the process dies and its machine closes
/// the connection; within about a minute when the machine itself is lost, since the store asks
/// PostgreSQL for TCP keepalives on its session (30 s idle, then 3 probes 10 s apart). A replacement
/// started with the same name then gets the lock and replays the jobs. `open` waits up to two seconds
/// for a lock that is about to be freed.
///
/// **One connection.** The store uses a single `PostgresConnection`, not a `PostgresClient` pool:
/// the advisory lock belongs to one session and must live exactly as long as the store, which a
/// pool that opens and closes connections on its own cannot promise; and batches must be applied in
/// the order they were committed, which one connection used by one operation at a time gives for
/// free. Group commit already makes one connection enough: while a commit is in flight, the server
/// gathers the next batch.
///
/// **A lost connection.** A commit whose connection breaks (or that gets no answer within 30
/// seconds, after which the store drops the connection) fails with `.ioError`, and the server
/// refuses its submissions. Whether PostgreSQL committed a batch whose `COMMIT` answer was lost
/// cannot be known, so such jobs may still be stored and come back at the next start: at least
/// once, as for a job that was running when its server stopped. The next operation connects again
/// and takes the lock again, or fails with `.ioError` while the database cannot be reached (each
/// attempt waits at most postgres-nio's connect timeout of 10 seconds). If a replacement server has
/// taken the name over meanwhile, that operation and every later one fail with `.locked`: the
/// replacement has replayed this server's jobs and runs them now, so the store never writes for the
/// name again. A session of the store's own that lingers after a timeout (blocked on a row lock,
/// say) is ended with `pg_terminate_backend` so that its lock is freed. Reading the jobs (`loadAll`,
/// at start-up) has no timeout.
///
/// **Not supported yet**: TLS to PostgreSQL (only `sslmode=disable` is accepted; run it on a network
/// you trust, or through a tunnel), and connection poolers in transaction mode (the advisory lock
/// needs a session of its own).
///
/// Call `close()` before dropping the store.
public final class PostgresQueueStore: QueueStore {
    /// The name this store's rows are kept under.
    public let serverName: String
    /// The database, as `postgres://user@host:port/database`: the URL without its password.
    public let location: String

    private let target: PostgresQueueLocation
    private let operations: AsyncStream<Operation>.Continuation
    private let worker: Task<Void, Never>
    private let isClosed = NIOLockedValueBox(false)

    /// Work for the store's connection, done one item at a time in the order asked for.
    enum Operation: Sendable {
        case commit(QueueBatch, @Sendable (Result<Void, QueueStoreError>) -> Void)
        case load(CheckedContinuation<Result<[StoredJob], QueueStoreError>, Never>)
    }

    /// How long `open` (and a reconnection) waits for the server name's lock while another session
    /// holds it: long enough for PostgreSQL to notice that a server which just died is gone.
    static let defaultLockWait: Duration = .seconds(2)
    /// How long a commit may wait for PostgreSQL's answer before the store gives up on the connection.
    static let defaultCommitTimeout: TimeAmount = .seconds(30)

    private init(
        serverName: String, target: PostgresQueueLocation, connector: PostgresQueueConnector,
        session: PostgresQueueSession, commitTimeout: TimeAmount
    ) {
        self.serverName = serverName
        self.target = target
        self.location = target.description
        let (stream, continuation) = AsyncStream.makeStream(of: Operation.self, bufferingPolicy: .unbounded)
        self.operations = continuation
        self.worker = Task {
            let worker = PostgresQueueWorker(connector: connector, session: session, commitTimeout: commitTimeout)
            await worker.run(stream)
        }
    }

    /// Connects to the database at `url`, creates the queue tables when absent, and takes the lock of
    /// `serverName`.
    ///
    /// - Parameters:
    ///   - url: `postgres://user:password@host:port/database` (or `postgresql://`), with percent-encoded
    ///     special characters in the user and password; the port defaults to 5432. The only parameter
    ///     taken is `?sslmode=disable`: TLS to PostgreSQL is not supported yet, and a URL asking for it
    ///     is refused rather than served in the clear.
    ///   - serverName: whose jobs these are. A replacement for a lost server must use its name.
    ///   - defaultPassword: the password used when the URL has none (`gearlock serve` passes
    ///     `PGPASSWORD`, as libpq does, so that the password need not be on a command line).
    ///   - eventLoopGroup: where the connection runs.
    /// - Throws: `QueueStoreError` with `.cannotOpen` for a malformed URL, a server that cannot be
    ///   reached, a login that is refused or a database that does not exist (naming `host:port/database`,
    ///   never the password); `.locked` when a server with the same name is running; `.readOnly` when the
    ///   user may not create or use the tables; `.schemaVersion` for tables of a newer gearlock;
    ///   `.notAQueue` when `gearlock_jobs` exists but was not made by gearlock.
    public static func open(
        url: String, serverName: String, defaultPassword: String? = nil,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton, logger: Logger
    ) async throws(QueueStoreError) -> PostgresQueueStore {
        try await open(
            url: url, serverName: serverName, defaultPassword: defaultPassword, eventLoopGroup: eventLoopGroup,
            logger: logger, lockWait: defaultLockWait, commitTimeout: defaultCommitTimeout)
    }

    /// Reads `url` without connecting: its location without the password, or the error `open` would
    /// give for its form (which never repeats the URL).
    public static func checkedLocation(url: String) throws(QueueStoreError) -> String {
        try PostgresQueueLocation(url: url).description
    }

    /// `open` with the waits tests shorten.
    static func open(
        url: String, serverName: String, defaultPassword: String? = nil,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger, lockWait: Duration, commitTimeout: TimeAmount
    ) async throws(QueueStoreError) -> PostgresQueueStore {
        var target = try PostgresQueueLocation(url: url)
        if target.password == nil { target.password = defaultPassword }
        guard !serverName.isEmpty else {
            throw QueueStoreError(
                .cannotOpen, "the server name is empty; the PostgreSQL queue keeps each server's jobs under its name",
                path: target.description)
        }
        let connector = PostgresQueueConnector(
            location: target, serverName: serverName, eventLoopGroup: eventLoopGroup, logger: logger,
            lockWait: lockWait)
        let session = try await connector.connect(previousBackend: nil)
        do {
            try await connector.prepareSchema(session.connection)
        } catch {
            await session.close(logger: logger)
            throw error
        }
        logger.info(
            "queue database opened",
            metadata: [
                "queue": "\(target)", "server_name": "\(serverName)", "postgresql": "\(session.serverVersion)",
                "postgresql_pid": "\(session.backendPID)",
            ])
        return PostgresQueueStore(
            serverName: serverName, target: target, connector: connector, session: session,
            commitTimeout: commitTimeout)
    }

    public func commit(_ batch: QueueBatch, completion: @escaping @Sendable (Result<Void, QueueStoreError>) -> Void) {
        guard self.enqueue(.commit(batch, completion)) else {
            completion(.failure(PostgresQueueErrors.closed(location: self.target, server: self.serverName)))
            return
        }
    }

    public func loadAll() async throws(QueueStoreError) -> [StoredJob] {
        let result = await withCheckedContinuation { continuation in
            if !self.enqueue(.load(continuation)) {
                continuation.resume(
                    returning: .failure(PostgresQueueErrors.closed(location: self.target, server: self.serverName)))
            }
        }
        return try result.get()
    }

    /// Waits for the operations already asked for, then closes the connection, which frees the server
    /// name's lock. Calling it again waits for the first call to finish.
    public func close() async {
        self.isClosed.withLockedValue { isClosed in
            guard !isClosed else { return }
            isClosed = true
            self.operations.finish()
        }
        await self.worker.value
    }

    /// Hands `operation` to the worker, unless the store is closed. Under the lock, so that nothing
    /// slips in after `close()` has finished the stream.
    private func enqueue(_ operation: Operation) -> Bool {
        self.isClosed.withLockedValue { isClosed in
            guard !isClosed else { return false }
            self.operations.yield(operation)
            return true
        }
    }
}

/// One connection of the store, holding the server name's lock.
struct PostgresQueueSession: Sendable {
    var connection: PostgresConnection
    /// The PostgreSQL process serving the connection.
    var backendPID: Int32
    /// When that process started: with the process id, names the session even after ids are reused.
    var backendStart: String
    var serverVersion: String

    /// A PostgreSQL session, named by its process id and start time.
    struct Backend: Sendable, Hashable {
        var pid: Int32
        var start: String
    }

    var backend: Backend { Backend(pid: backendPID, start: backendStart) }

    func close(logger: Logger) async {
        await Self.close(self.connection, logger: logger)
    }

    /// Closes `connection`, which ends its session and frees its locks.
    static func close(_ connection: PostgresConnection, logger: Logger) async {
        guard !connection.isClosed else { return }
        do {
            try await connection.close()
        } catch {
            logger.debug(
                "closing the PostgreSQL connection failed", metadata: ["error": "\(PostgresQueueErrors.detail(error))"])
        }
    }
}

/// Makes connections for a store: connect, log in, set up the session, take the lock.
struct PostgresQueueConnector: Sendable {
    var location: PostgresQueueLocation
    var serverName: String
    var eventLoopGroup: any EventLoopGroup
    var logger: Logger
    var lockWait: Duration

    private static let connectionIDs = NIOLockedValueBox(0)

    /// A new connection holding the lock of `serverName`. `previousBackend` is the session of the
    /// store's last connection: if it still holds the lock (it was left blocked after a timeout), it
    /// is terminated.
    func connect(previousBackend: PostgresQueueSession.Backend?) async throws(QueueStoreError)
        -> PostgresQueueSession
    {
        var configuration = PostgresConnection.Configuration(
            host: location.host, port: location.port, username: location.username, password: location.password,
            database: location.database, tls: .disable)
        // Shows in pg_stat_activity, so an operator can tell which server a session belongs to.
        configuration.options.additionalStartupParameters = [("application_name", self.applicationName)]
        let id = Self.connectionIDs.withLockedValue { id in
            id += 1
            return id
        }
        let connection: PostgresConnection
        do {
            connection = try await PostgresConnection.connect(
                on: eventLoopGroup.any(), configuration: configuration, id: id, logger: logger)
        } catch {
            throw PostgresQueueErrors.opening(error, location: location)
        }
        do {
            var session = PostgresQueueSession(
                connection: connection, backendPID: 0, backendStart: "", serverVersion: "")
            try await self.configure(&session)
            try await self.lock(session, previousBackend: previousBackend)
            return session
        } catch {
            await PostgresQueueSession.close(connection, logger: logger)
            throw PostgresQueueErrors.opening(error, location: location)
        }
    }

    /// `gearlock:NAME`, in the printable ASCII and 63 bytes PostgreSQL keeps of an application name.
    var applicationName: String {
        let printable = ("gearlock:" + serverName).unicodeScalars.map { scalar -> Character in
            (32..<127).contains(scalar.value) ? Character(scalar) : "?"
        }
        return String(printable.prefix(63))
    }

    /// Reads the session's process and version, and asks for TCP keepalives, so that PostgreSQL notices
    /// within a minute that the machine of a server holding a lock is gone, and for durable commits.
    private func configure(_ session: inout PostgresQueueSession) async throws {
        let rows = try await session.connection.query(
            """
            SELECT pg_backend_pid(), (SELECT backend_start::text FROM pg_stat_activity WHERE pid = pg_backend_pid()),
                current_setting('server_version'), current_setting('synchronous_commit'),
                set_config('tcp_keepalives_idle', '30', false), set_config('tcp_keepalives_interval', '10', false),
                set_config('tcp_keepalives_count', '3', false)
            """, logger: logger
        ).collect()
        guard let row = rows.first else {
            throw QueueStoreError(
                .ioError, "PostgreSQL at \(location.endpoint) answered no row to a SELECT", path: location.description)
        }
        let (pid, start, version, synchronousCommit, _, _, _) = try row.decode(
            (Int32, String?, String, String, String, String, String).self)
        session.backendPID = pid
        session.backendStart = start ?? ""
        session.serverVersion = version
        if synchronousCommit == "off" {
            logger.notice(
                """
                the queue database has synchronous_commit off; the queue's session turns it on, so that a \
                committed job survives a crash of PostgreSQL
                """,
                metadata: ["queue": "\(location)"])
            try await session.connection.query("SET synchronous_commit TO on", logger: logger)
        }
    }

    /// Takes the session-level advisory lock of the server name, waiting up to `lockWait` for a lock
    /// that is about to be freed.
    private func lock(_ session: PostgresQueueSession, previousBackend: PostgresQueueSession.Backend?) async throws {
        var deadline = ContinuousClock.now + lockWait
        var terminated = false
        while true {
            let rows = try await session.connection.query(
                "SELECT pg_try_advisory_lock(\(PostgresQueueSchema.serverLockClass), hashtext(\(serverName)))",
                logger: logger
            ).collect()
            if try rows.first?.decode(Bool.self) == true { return }

            let holder = try await self.lockHolder(session)
            if let previousBackend, let holder, !terminated, !previousBackend.start.isEmpty,
                holder.pid == previousBackend.pid, holder.start == previousBackend.start
            {
                // The store's own previous connection, left behind (blocked) when the store gave up on it.
                logger.notice(
                    "ending the queue's previous PostgreSQL session, which still holds the server name's lock",
                    metadata: ["queue": "\(location)", "postgresql_pid": "\(previousBackend.pid)"])
                _ = try await session.connection.query(
                    "SELECT pg_terminate_backend(\(previousBackend.pid))", logger: logger
                ).collect()
                terminated = true
                // Ending it takes a moment; wait for that even when the lock wait is short.
                deadline = max(deadline, ContinuousClock.now + .seconds(2))
                continue
            }
            guard ContinuousClock.now < deadline else {
                throw self.lockedError(holder)
            }
            try? await Task.sleep(for: .milliseconds(100))
        }
    }

    private struct LockHolder {
        var pid: Int32
        var start: String?
        var applicationName: String?
        var client: String?
    }

    /// The session that holds the server name's lock, when it can be seen.
    private func lockHolder(_ session: PostgresQueueSession) async throws -> LockHolder? {
        let rows = try await session.connection.query(
            """
            SELECT l.pid, a.backend_start::text, a.application_name, host(a.client_addr)
            FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid
            WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
                AND l.classid = \(PostgresQueueSchema.serverLockClass)::oid AND l.objid = hashtext(\(serverName))::oid
            LIMIT 1
            """, logger: logger
        ).collect()
        guard let row = rows.first else { return nil }
        let (pid, start, applicationName, client) = try row.decode((Int32, String?, String?, String?).self)
        return LockHolder(pid: pid, start: start, applicationName: applicationName, client: client)
    }

    private func lockedError(_ holder: LockHolder?) -> QueueStoreError {
        var who = ""
        var terminate = "pg_terminate_backend on its PostgreSQL process frees it at once"
        if let holder {
            var facts = ["PostgreSQL process \(holder.pid)"]
            if let name = holder.applicationName, !name.isEmpty { facts.append("application \"\(name)\"") }
            if let client = holder.client { facts.append("from \(client)") }
            who = " (" + facts.joined(separator: ", ") + ")"
            terminate = "SELECT pg_terminate_backend(\(holder.pid)) frees it at once"
        }
        return QueueStoreError(
            .locked,
            "another gearlock server named \"\(serverName)\" is using its queue on PostgreSQL at "
                + "\(location.endpoint)\(who); stop that server, or give this one another name. If that server "
                + "is gone, PostgreSQL frees its lock once it notices the lost connection (within about a minute); "
                + "\(terminate)",
            path: location.description)
    }

    /// Creates the tables when absent and checks the layout's version, in one transaction under an
    /// advisory lock, so that servers starting together neither trip over each other nor see half a
    /// layout.
    func prepareSchema(_ connection: PostgresConnection) async throws(QueueStoreError) {
        do {
            try await connection.query("BEGIN", logger: logger)
            do {
                _ = try await connection.query(
                    "SELECT pg_advisory_xact_lock(\(PostgresQueueSchema.schemaLockClass), 1)", logger: logger
                ).collect()
                try await connection.query(PostgresQueueSchema.createSchemaTable, logger: logger)
                let versions = try await connection.query(
                    "SELECT version FROM gearlock_schema WHERE component = \(PostgresQueueSchema.component)",
                    logger: logger
                ).collect()
                if let row = versions.first {
                    let version = try row.decode(Int32.self)
                    guard version <= PostgresQueueSchema.version else {
                        throw QueueStoreError(
                            .schemaVersion,
                            "the queue tables on PostgreSQL at \(location.endpoint) have layout version \(version), "
                                + "set up by a newer gearlock; this one knows version \(PostgresQueueSchema.version) "
                                + "at most: run the newer gearlock",
                            path: location.description)
                    }
                } else {
                    let existing = try await connection.query(
                        "SELECT to_regclass('gearlock_jobs') IS NOT NULL", logger: logger
                    ).collect()
                    if try existing.first?.decode(Bool.self) == true {
                        throw QueueStoreError(
                            .notAQueue,
                            "PostgreSQL at \(location.endpoint) has a table gearlock_jobs that gearlock did not set up "
                                + "(gearlock_schema does not know it); rename or drop it, or use another database",
                            path: location.description)
                    }
                    try await connection.query(PostgresQueueSchema.createJobsTable, logger: logger)
                    try await connection.query(
                        """
                        INSERT INTO gearlock_schema (component, version)
                        VALUES (\(PostgresQueueSchema.component), \(Int32(PostgresQueueSchema.version)))
                        """, logger: logger)
                }
            } catch {
                if !PostgresQueueErrors.isConnectionLost(error) {
                    _ = try? await connection.query("ROLLBACK", logger: logger)
                }
                throw error
            }
            try await connection.query("COMMIT", logger: logger)
        } catch {
            throw PostgresQueueErrors.opening(error, location: location)
        }
    }
}

/// Runs the store's operations one after the other on its connection, connecting again when the
/// connection was lost. Lives inside the store's worker task only.
final class PostgresQueueWorker {
    private let connector: PostgresQueueConnector
    private let commitTimeout: TimeAmount
    private var session: PostgresQueueSession?
    /// The session of the last connection, to end it if it lingers with the lock.
    private var previousBackend: PostgresQueueSession.Backend?
    /// Set once another server has taken the name over while the store was disconnected: the other
    /// server has replayed (and now runs) this server's jobs, so this store never writes again.
    private var nameLost: QueueStoreError?

    private var logger: Logger { connector.logger }
    private var location: PostgresQueueLocation { connector.location }
    private var serverName: String { connector.serverName }

    init(connector: PostgresQueueConnector, session: PostgresQueueSession, commitTimeout: TimeAmount) {
        self.connector = connector
        self.session = session
        self.previousBackend = session.backend
        self.commitTimeout = commitTimeout
    }

    func run(_ operations: AsyncStream<PostgresQueueStore.Operation>) async {
        for await operation in operations {
            switch operation {
            case .commit(let batch, let completion):
                guard !batch.isEmpty else {
                    completion(.success(()))
                    continue
                }
                completion(await self.commit(batch))
            case .load(let continuation):
                continuation.resume(returning: await self.load())
            }
        }
        if let session = self.session {
            self.session = nil
            await session.close(logger: logger)
        }
    }

    /// The store's connection, made anew when there is none or it was closed.
    private func currentSession() async throws(QueueStoreError) -> PostgresQueueSession {
        if let nameLost { throw nameLost }
        if let session = self.session {
            if !session.connection.isClosed { return session }
            self.session = nil
            await session.close(logger: logger)
        }
        logger.notice("connecting to the queue database again", metadata: ["queue": "\(location)"])
        let session: PostgresQueueSession
        do {
            session = try await connector.connect(previousBackend: previousBackend)
        } catch where error.code == .locked {
            logger.error(
                """
                another server has taken over this server's name in the queue database while it was \
                disconnected; this server stores no more jobs
                """,
                metadata: ["queue": "\(location)", "server_name": "\(serverName)", "error": "\(error.message)"])
            self.nameLost = error
            throw error
        }
        self.session = session
        self.previousBackend = session.backend
        logger.notice(
            "connected to the queue database again",
            metadata: ["queue": "\(location)", "postgresql_pid": "\(session.backendPID)"])
        return session
    }

    /// Forgets the connection after an error that left it unusable.
    private func dropSessionIfBroken(after error: any Error) async {
        guard let session = self.session else { return }
        if PostgresQueueErrors.isConnectionLost(error) || session.connection.isClosed {
            self.session = nil
            await session.close(logger: logger)
        }
    }

    private func commit(_ batch: QueueBatch) async -> Result<Void, QueueStoreError> {
        let session: PostgresQueueSession
        do {
            session = try await self.currentSession()
        } catch {
            return .failure(self.unreachable(error, doing: "committing jobs"))
        }
        let connection = session.connection
        let timedOut = NIOLockedValueBox(false)
        let timer = connection.eventLoop.scheduleTask(in: commitTimeout) {
            timedOut.withLockedValue { $0 = true }
            let _: EventLoopFuture<Void> = connection.close()
        }
        defer { timer.cancel() }
        do {
            try await self.apply(batch, on: connection)
            return .success(())
        } catch {
            await self.dropSessionIfBroken(after: error)
            if timedOut.withLockedValue({ $0 }) {
                return .failure(
                    QueueStoreError(
                        .ioError,
                        "committing jobs of server \"\(serverName)\" failed: PostgreSQL at \(location.endpoint) did "
                            + "not answer within \(commitTimeout.nanoseconds / 1_000_000_000) s, so the store dropped "
                            + "the connection; it connects again for the next batch",
                        path: location.description))
            }
            return .failure(
                PostgresQueueErrors.operating(error, doing: "committing jobs", location: location, server: serverName))
        }
    }

    /// One transaction: the upsert of the added jobs, then the delete of the removed handles. Explicit
    /// BEGIN and COMMIT even for one statement: postgres-nio reports a statement done when PostgreSQL
    /// says it completed, which for a statement in an implicit transaction comes before the commit,
    /// while the answer to COMMIT comes only once the commit is durable.
    private func apply(_ batch: QueueBatch, on connection: PostgresConnection) async throws {
        let added = PostgresQueueSchema.deduplicated(batch.added)
        try await connection.query("BEGIN", logger: logger)
        do {
            if !added.isEmpty {
                try await connection.query(PostgresQueueSchema.upsert(added, server: serverName), logger: logger)
            }
            if !batch.removedHandles.isEmpty {
                try await connection.query(
                    PostgresQueueSchema.delete(batch.removedHandles, server: serverName), logger: logger)
            }
        } catch {
            if !PostgresQueueErrors.isConnectionLost(error) {
                do {
                    try await connection.query("ROLLBACK", logger: logger)
                } catch {
                    let _: EventLoopFuture<Void> = connection.close()
                }
            }
            throw error
        }
        try await connection.query("COMMIT", logger: logger)
    }

    private func load() async -> Result<[StoredJob], QueueStoreError> {
        let session: PostgresQueueSession
        do {
            session = try await self.currentSession()
        } catch {
            return .failure(self.unreachable(error, doing: "reading the jobs"))
        }
        var jobs: [StoredJob] = []
        do {
            let rows = try await session.connection.query(
                PostgresQueueSchema.selectAll(server: serverName), logger: logger)
            for try await row in rows {
                jobs.append(try PostgresQueueSchema.job(from: row, location: location, server: serverName))
            }
        } catch let error as QueueStoreError {
            return .failure(error)
        } catch {
            await self.dropSessionIfBroken(after: error)
            return .failure(
                PostgresQueueErrors.operating(error, doing: "reading the jobs", location: location, server: serverName))
        }
        return .success(jobs)
    }

    /// The error for an operation that found no connection and could not make one.
    private func unreachable(_ error: QueueStoreError, doing what: String) -> QueueStoreError {
        guard error.code != .locked else { return error }
        var error = error
        if error.code == .cannotOpen { error.code = .ioError }
        error.message = "\(what) of server \"\(serverName)\" failed: the connection to the queue database was lost "
            + "and connecting again failed: \(error.message)"
        return error
    }
}
