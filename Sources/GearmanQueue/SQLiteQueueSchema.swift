import GearmanProtocol
import NIOCore
import SQLiteNIO

/// The layout of a gearlock queue database and the statements that read and write it.
///
/// A database is recognised by its `application_id` and versioned by its `user_version`, both kept
/// in the file's header. Jobs are rows keyed by their handle; `seq` orders them for replay and is
/// never reused (AUTOINCREMENT), and an upsert keeps it.
enum SQLiteQueueSchema {
    /// "GRLK": tells a gearlock queue from any other SQLite database.
    static let applicationID = 0x4752_4C4B
    /// The schema this version writes; a file with a higher version was written by a newer gearlock.
    static let version = 1

    static let createJobsTable = """
        CREATE TABLE jobs (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            handle BLOB UNIQUE NOT NULL,
            function BLOB NOT NULL,
            unique_key BLOB NOT NULL,
            payload BLOB NOT NULL,
            priority INTEGER NOT NULL,
            epoch INTEGER,
            reducer BLOB,
            retries INTEGER NOT NULL
        )
        """

    static let selectAll = """
        SELECT seq, handle, function, unique_key, payload, priority, epoch, reducer, retries FROM jobs ORDER BY seq
        """

    /// How many variables one statement may bind: SQLite's default limit is 32766; staying well
    /// below it keeps each statement quick to prepare while a batch of hundreds still fits in one.
    static let maximumVariablesPerStatement = 8_000

    private static let columnsPerJob = 8
    private static let jobsPerInsert = maximumVariablesPerStatement / columnsPerJob

    /// The statements that apply `batch`: upserts of the added jobs first, then deletes of the
    /// removed handles, as few statements as the variable limit allows.
    static func statements(applying batch: QueueBatch) -> [SQLiteQueueStatement] {
        var statements: [SQLiteQueueStatement] = []
        var start = batch.added.startIndex
        while start < batch.added.endIndex {
            let end = min(start + jobsPerInsert, batch.added.endIndex)
            statements.append(upsert(batch.added[start..<end]))
            start = end
        }
        start = batch.removedHandles.startIndex
        while start < batch.removedHandles.endIndex {
            let end = min(start + maximumVariablesPerStatement, batch.removedHandles.endIndex)
            statements.append(delete(batch.removedHandles[start..<end]))
            start = end
        }
        return statements
    }

    private static func upsert(_ jobs: ArraySlice<StoredJob>) -> SQLiteQueueStatement {
        var sql = "INSERT INTO jobs (handle, function, unique_key, payload, priority, epoch, reducer, retries) VALUES "
        sql.reserveCapacity(sql.utf8.count + jobs.count * 18 + 200)
        var binds: [SQLiteData] = []
        binds.reserveCapacity(jobs.count * columnsPerJob)
        for job in jobs {
            sql += binds.isEmpty ? "(?,?,?,?,?,?,?,?)" : ",(?,?,?,?,?,?,?,?)"
            binds.append(.blob(job.handle))
            binds.append(.blob(job.function))
            binds.append(.blob(job.unique))
            binds.append(.blob(job.payload))
            binds.append(.integer(job.priority.rawValue))
            binds.append(job.epoch.map { .integer(SQLiteInt64($0)) } ?? .null)
            binds.append(job.reducer.map { .blob($0) } ?? .null)
            binds.append(.integer(job.retries))
        }
        sql += """
             ON CONFLICT(handle) DO UPDATE SET function = excluded.function, unique_key = excluded.unique_key, \
            payload = excluded.payload, priority = excluded.priority, epoch = excluded.epoch, \
            reducer = excluded.reducer, retries = excluded.retries
            """
        return SQLiteQueueStatement(sql, binds)
    }

    private static func delete(_ handles: ArraySlice<ByteBuffer>) -> SQLiteQueueStatement {
        var sql = "DELETE FROM jobs WHERE handle IN ("
        sql.reserveCapacity(sql.utf8.count + handles.count * 2 + 1)
        var binds: [SQLiteData] = []
        binds.reserveCapacity(handles.count)
        for handle in handles {
            sql += binds.isEmpty ? "?" : ",?"
            binds.append(.blob(handle))
        }
        sql += ")"
        return SQLiteQueueStatement(sql, binds)
    }

    /// The job a row of `selectAll` holds; a row that gearlock cannot have written means the file
    /// was changed by something else.
    static func job(from row: SQLiteRow, path: String) throws(QueueStoreError) -> StoredJob {
        let sequence = row.column("seq")?.integer.map(String.init) ?? "?"
        func damaged(_ column: String) -> QueueStoreError {
            QueueStoreError(
                .damaged,
                "\(path) holds a job (row \(sequence)) whose \(column) gearlock cannot have written; the file "
                    + "was changed by something else or is damaged; move it aside to start with an empty queue, "
                    + "or restore it from a backup",
                path: path)
        }
        func blob(_ column: String) throws(QueueStoreError) -> ByteBuffer {
            guard case .blob(let value) = row.column(column) else { throw damaged(column) }
            return value
        }
        func integer(_ column: String) throws(QueueStoreError) -> Int {
            guard case .integer(let value) = row.column(column) else { throw damaged(column) }
            return Int(value)
        }
        guard let priority = JobPriority(rawValue: try integer("priority")) else { throw damaged("priority") }
        let epoch: Int64?
        switch row.column("epoch") {
        case .null: epoch = nil
        case .integer(let value): epoch = Int64(value)
        default: throw damaged("epoch")
        }
        let reducer: ByteBuffer?
        switch row.column("reducer") {
        case .null: reducer = nil
        case .blob(let value): reducer = value
        default: throw damaged("reducer")
        }
        let retries = try integer("retries")
        guard retries >= 0 else { throw damaged("retries") }
        return StoredJob(
            handle: try blob("handle"), function: try blob("function"), unique: try blob("unique_key"),
            payload: try blob("payload"), priority: priority, epoch: epoch, reducer: reducer, retries: retries)
    }
}

/// One SQL statement with the values for its `?` placeholders.
struct SQLiteQueueStatement: Sendable {
    var sql: String
    var binds: [SQLiteData]

    init(_ sql: String, _ binds: [SQLiteData] = []) {
        self.sql = sql
        self.binds = binds
    }

    static let beginImmediate = SQLiteQueueStatement("BEGIN IMMEDIATE")
    static let commit = SQLiteQueueStatement("COMMIT")
    static let rollback = SQLiteQueueStatement("ROLLBACK")
}
