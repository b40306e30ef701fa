import Foundation
public import Logging
import NIOConcurrencyHelpers
public import NIOCore
public import NIOPosix
import SQLiteNIO

/// A queue store in an SQLite database file: jobs survive a crash of the server (and, with
/// `Synchronous.full`, of the machine) once their batch's commit has completed.
///
/// The database runs in WAL mode with an exclusive lock, taken at `open` and held until `close`,
/// so a second server pointed at the same file fails at start-up instead of corrupting the queue.
/// Every SQLite call runs on the thread pool, never on an event loop. Operations run one after the
/// other in the order they were asked for; each commit is one transaction.
///
/// Call `close()` before dropping the store.
public final class SQLiteQueueStore: QueueStore {
    /// How hard a commit works to reach the disk before it counts as done.
    public struct Synchronous: Sendable, Hashable, CustomStringConvertible {
        enum Base: Sendable, Hashable {
            case full, normal
        }

        let base: Base

        /// Every commit waits until its write-ahead log entry is on the disk: no acknowledged job is
        /// lost even when the machine loses power. The default.
        public static let full = Synchronous(base: .full)
        /// A commit is handed to the operating system but not waited for: a crash of the server
        /// process loses nothing, but a power loss or kernel crash may lose the last commits. Faster.
        public static let normal = Synchronous(base: .normal)

        public var description: String {
            switch base {
            case .full: "FULL"
            case .normal: "NORMAL"
            }
        }
    }

    /// The database file, as given to `open`.
    public let path: String
    private let connection: SQLiteConnection
    private let threadPool: NIOThreadPool
    private let eventLoop: any EventLoop
    private let logger: Logger
    private let state: NIOLockedValueBox<State>

    private struct State {
        /// Completes when the last operation asked for has finished; the next one starts after it.
        var tail: EventLoopFuture<Void>
        var isClosed = false
    }

    /// How long a statement waits for another connection's lock before giving up: long enough to
    /// ride out a short-lived reader, short enough that a second server fails fast.
    static let busyTimeoutMilliseconds = 100

    /// The size the write-ahead log is cut back to after a checkpoint.
    static let walSizeLimit = 64 * 1024 * 1024

    private init(
        path: String, connection: SQLiteConnection, threadPool: NIOThreadPool, eventLoop: any EventLoop, logger: Logger
    ) {
        self.path = path
        self.connection = connection
        self.threadPool = threadPool
        self.eventLoop = eventLoop
        self.logger = logger
        self.state = NIOLockedValueBox(State(tail: eventLoop.makeSucceededVoidFuture()))
    }

    /// Opens the queue database at `path`, creating the file and its schema when absent, and takes
    /// its lock.
    ///
    /// - Parameters:
    ///   - path: the database file; its directory must exist and be writable (SQLite keeps the
    ///     write-ahead log `path-wal` beside it).
    ///   - threadPool: where every SQLite call runs.
    ///   - eventLoop: where completions of the store's futures run.
    ///   - synchronous: durability of each commit; see `Synchronous`.
    /// - Throws: `QueueStoreError` with `.locked` when another server uses the file, `.damaged` when
    ///   it is not a SQLite database, `.notAQueue` for another program's database, `.schemaVersion`
    ///   for a newer gearlock's queue, `.readOnly` or `.cannotOpen` when it cannot be opened for
    ///   writing. It never silently starts an empty queue in place of one it cannot read.
    public static func open(
        path: String, threadPool: NIOThreadPool = .singleton, eventLoop: any EventLoop, logger: Logger,
        synchronous: Synchronous = .full
    ) async throws(QueueStoreError) -> SQLiteQueueStore {
        guard !path.isEmpty else {
            throw QueueStoreError(.cannotOpen, "the queue database path is empty; give the path of a file")
        }
        // A new database is private to the server's user: it holds payloads in clear. (SQLite
        // gives its -wal and -shm files the same mode.) When this fails, opening explains why.
        if !FileManager.default.fileExists(atPath: path) {
            _ = FileManager.default.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o600])
        }
        let connection: SQLiteConnection
        do {
            connection = try await SQLiteConnection.open(
                storage: .file(path: Self.plainFileName(path)), threadPool: threadPool, logger: logger, on: eventLoop)
        } catch {
            throw await Self.explain(error, path: path, threadPool: threadPool, eventLoop: eventLoop)
        }
        do {
            try await Self.configure(connection, path: path, synchronous: synchronous)
            try await Self.prepareSchema(connection, path: path)
        } catch {
            do {
                try await connection.close()
            } catch {
                logger.warning(
                    "closing the queue database failed", metadata: ["path": "\(path)", "error": "\(error)"])
            }
            throw await Self.explain(error, path: path, threadPool: threadPool, eventLoop: eventLoop)
        }
        logger.info(
            "queue database opened",
            metadata: [
                "path": "\(path)", "synchronous": "\(synchronous)",
                "sqlite": "\(SQLiteConnection.libraryVersionString())",
            ])
        return SQLiteQueueStore(
            path: path, connection: connection, threadPool: threadPool, eventLoop: eventLoop, logger: logger)
    }

    public func commit(_ batch: QueueBatch, completion: @escaping @Sendable (Result<Void, QueueStoreError>) -> Void) {
        let statements = SQLiteQueueSchema.statements(applying: batch)
        guard let turn = self.takeTurn(closing: false) else {
            completion(.failure(.closed(path: self.path)))
            return
        }
        turn.previous.flatMap {
            self.execute(statements)
        }.whenComplete { result in
            turn.done.succeed()
            switch result {
            case .success:
                completion(.success(()))
            case .failure(let error):
                self.explainFailedWrite(error, completion: completion)
            }
        }
    }

    /// Completes with SQLite's error translated; a write that failed with an I/O error ("disk I/O
    /// error" says nothing of why) is first explained by the file system when it can be — a file
    /// system turned read-only, a file made read-only — looked at on the thread pool.
    private func explainFailedWrite(
        _ error: any Error, completion: @escaping @Sendable (Result<Void, QueueStoreError>) -> Void
    ) {
        let translated = QueueStoreError(sqlite: error, path: self.path)
        guard translated.code == .ioError || translated.code == .readOnly else {
            completion(.failure(translated))
            return
        }
        let path = self.path
        self.threadPool.runIfActive(eventLoop: self.eventLoop) {
            QueueFileDiagnosis.diagnose(path: path)
        }.whenComplete { diagnosis in
            completion(.failure((try? diagnosis.get()).flatMap { $0 } ?? translated))
        }
    }

    public func loadAll() async throws(QueueStoreError) -> [StoredJob] {
        let rows = try await self.inTurn { self.connection.query(SQLiteQueueSchema.selectAll) }
        return try rows.map { row throws(QueueStoreError) in try SQLiteQueueSchema.job(from: row, path: self.path) }
    }

    /// Waits for the operations already asked for, then closes the database and releases its lock.
    /// Calling it again waits for the first call to finish.
    public func close() async {
        do {
            try await self.inTurn(closing: true) { self.connection.close() }
        } catch where error.code == .closed {
            try? await self.state.withLockedValue { $0.tail }.get()
        } catch {
            self.logger.warning(
                "closing the queue database failed", metadata: ["path": "\(self.path)", "error": "\(error)"])
        }
    }

    /// Runs `operation` once every operation asked for earlier has finished, and waits for it.
    ///
    /// One future from the turn to the result, awaited once: awaiting the turn and then calling one of
    /// sqlite-nio's async functions made ThreadSanitizer report a race on the task's own stack memory
    /// (in Swift's task allocator, between NIO's `EventLoopFuture.get()` resuming the task and the
    /// next async call's frame; no gearlock code in either stack); this way there is no such pair.
    /// SQLite's errors come out translated; a closed store's as `.closed`.
    private func inTurn<Value: Sendable>(
        closing: Bool = false, _ operation: @escaping @Sendable () -> EventLoopFuture<Value>
    ) async throws(QueueStoreError) -> Value {
        guard let turn = self.takeTurn(closing: closing) else { throw .closed(path: self.path) }
        do {
            return try await turn.previous.flatMap(operation).always { _ in turn.done.succeed() }.get()
        } catch {
            throw QueueStoreError(sqlite: error, path: self.path)
        }
    }

    // MARK: Serialising operations

    /// Reserves the next turn on the connection: `previous` completes (always successfully) when
    /// every operation asked for earlier has finished, and the caller succeeds `done` when its own
    /// has. Nil once the store is closed.
    private func takeTurn(closing: Bool) -> (previous: EventLoopFuture<Void>, done: EventLoopPromise<Void>)? {
        self.state.withLockedValue { state in
            guard !state.isClosed else { return nil }
            let done = self.eventLoop.makePromise(of: Void.self)
            let previous = state.tail
            state.tail = done.futureResult
            state.isClosed = closing
            return (previous, done)
        }
    }

    /// Runs `statements` as one transaction. A single statement is a transaction of its own, so it
    /// needs no BEGIN and COMMIT: one trip to the thread pool instead of three.
    private func execute(_ statements: [SQLiteQueueStatement]) -> EventLoopFuture<Void> {
        switch statements.count {
        case 0:
            return self.eventLoop.makeSucceededVoidFuture()
        case 1:
            return self.run(statements[0])
        default:
            var result = self.run(.beginImmediate)
            for statement in statements {
                result = result.flatMap { self.run(statement) }
            }
            return result.flatMap {
                self.run(.commit)
            }.flatMapError { error in
                // SQLite has already rolled back after some errors (a full disk, an I/O error), and then
                // this ROLLBACK fails harmlessly; the batch's own error is the one to report.
                self.run(.rollback).recover { _ in }.flatMapThrowing { throw error }
            }
        }
    }

    private func run(_ statement: SQLiteQueueStatement) -> EventLoopFuture<Void> {
        self.connection.query(statement.sql, statement.binds) { _ in }
    }

    // MARK: Opening

    /// `path` as a name SQLite takes for a plain file: SQLite reads a name starting with `file:` as a
    /// URI and `:memory:` as a database in memory, and `./` defuses both.
    static func plainFileName(_ path: String) -> String {
        path.hasPrefix("/") || path.hasPrefix("./") || path.hasPrefix("../") ? path : "./" + path
    }

    private static func configure(_ connection: SQLiteConnection, path: String, synchronous: Synchronous) async throws {
        // sqlite-nio's own busy handler retries forever; a second server must fail fast instead.
        _ = try await connection.query("PRAGMA busy_timeout = \(Self.busyTimeoutMilliseconds)")
        // Exclusive before WAL: the first access then takes the file's lock for good, and the
        // WAL index lives in this process's memory, not in a shared `-shm` file.
        let lockingMode = try await connection.query("PRAGMA locking_mode = EXCLUSIVE").first?.column("locking_mode")
        guard lockingMode?.string == "exclusive" else {
            throw QueueStoreError(
                .ioError, "SQLite did not lock \(path) exclusively (it answered \(lockingMode?.string ?? "nothing"))",
                path: path)
        }
        let journalMode = try await connection.query("PRAGMA journal_mode = WAL").first?.column("journal_mode")
        guard journalMode?.string == "wal" else {
            // The usual reason is a read-only file or directory; `explain` looks for that.
            throw QueueStoreError(
                .cannotOpen,
                "SQLite could not switch \(path) to WAL mode (it stayed in \(journalMode?.string ?? "an unknown") "
                    + "mode); the file and its directory must be writable",
                path: path)
        }
        _ = try await connection.query("PRAGMA synchronous = \(synchronous)")
        // The log is reused, not shrunk, after each checkpoint; a burst of large payloads would
        // otherwise leave it as large as the burst for good.
        _ = try await connection.query("PRAGMA journal_size_limit = \(Self.walSizeLimit)")
    }

    /// Creates the schema in a new file and checks the schema of an existing one, in a write
    /// transaction, which also takes the exclusive lock at once instead of at the first commit.
    private static func prepareSchema(_ connection: SQLiteConnection, path: String) async throws {
        _ = try await connection.query("BEGIN IMMEDIATE")
        do {
            func integer(_ query: String, _ column: String) async throws -> Int {
                try await connection.query(query).first?.column(column)?.integer ?? 0
            }
            let applicationID = try await integer("PRAGMA application_id", "application_id")
            let version = try await integer("PRAGMA user_version", "user_version")
            let objects = try await integer("SELECT count(*) AS objects FROM sqlite_schema", "objects")
            switch (applicationID, version) {
            case (SQLiteQueueSchema.applicationID, SQLiteQueueSchema.version):
                break
            case (SQLiteQueueSchema.applicationID, let version) where version > SQLiteQueueSchema.version:
                throw QueueStoreError(
                    .schemaVersion,
                    "\(path) holds a queue of schema version \(version), written by a newer gearlock; this one "
                        + "knows version \(SQLiteQueueSchema.version) at most: run the newer gearlock, or move the "
                        + "file aside to start with an empty queue",
                    path: path)
            case (0, 0) where objects == 0, (SQLiteQueueSchema.applicationID, 0) where objects == 0:
                _ = try await connection.query(SQLiteQueueSchema.createJobsTable)
                _ = try await connection.query("PRAGMA application_id = \(SQLiteQueueSchema.applicationID)")
                _ = try await connection.query("PRAGMA user_version = \(SQLiteQueueSchema.version)")
            default:
                throw QueueStoreError(
                    .notAQueue,
                    "\(path) is a SQLite database of another program, not a gearlock queue (application id "
                        + "\(applicationID), version \(version)); give gearlock a file of its own",
                    path: path)
            }
            _ = try await connection.query("COMMIT")
        } catch {
            _ = try? await connection.query("ROLLBACK")
            throw error
        }
    }

    /// The error to report for a failure while opening: one of our own as it is; SQLite's translated,
    /// and when it is about opening or writing the file, replaced by what the file system shows.
    private static func explain(
        _ error: any Error, path: String, threadPool: NIOThreadPool, eventLoop: any EventLoop
    ) async -> QueueStoreError {
        let translated = (error as? QueueStoreError) ?? QueueStoreError(sqlite: error, path: path)
        guard translated.code == .cannotOpen || translated.code == .readOnly || translated.code == .ioError else {
            return translated
        }
        // The future-returning form: see `inTurn` for why not NIOThreadPool's async one.
        let diagnosis = try? await threadPool.runIfActive(eventLoop: eventLoop) {
            QueueFileDiagnosis.diagnose(path: path)
        }.get()
        return (diagnosis ?? nil) ?? translated
    }
}

extension SQLiteQueueStore {
    /// Runs one SQL statement in turn with the store's other operations and returns the first
    /// column of its rows. Only for tests, which use it to provoke failures (a full disk through
    /// `PRAGMA max_page_count`) and to look at the file's settings.
    func execute(sqlForTesting sql: String) async throws(QueueStoreError) -> [String] {
        try await self.inTurn { self.connection.query(sql) }.map { $0.columns.first?.data.string ?? "" }
    }
}
