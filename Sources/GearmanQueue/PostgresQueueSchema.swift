import GearmanProtocol
import NIOCore
import PostgresNIO

/// The tables of a gearlock queue in PostgreSQL and the statements that read and write them.
///
/// Several servers share one database: every row carries the name of the server that owns it, and
/// `(server, handle)` is the key. `seq` (one sequence for all servers) orders a server's jobs for
/// replay; an upsert keeps it, so an updated job keeps its place. `gearlock_schema` records the
/// version of the layout, so that an older gearlock does not write into a newer layout.
enum PostgresQueueSchema {
    /// The layout this version writes; a database with a higher version was set up by a newer gearlock.
    static let version = 1

    /// The first key of every advisory lock gearlock takes ("GRLK"), so that its locks do not meet
    /// those of other programs using the same database (the two-key form has a key space of its own).
    static let serverLockClass: Int32 = 0x4752_4C4B
    /// The advisory lock that serialises creating and checking the tables ("GRLS", key 1): two
    /// servers that start together must not both try to create them.
    static let schemaLockClass: Int32 = 0x4752_4C53

    static let createSchemaTable: PostgresQuery = """
        CREATE TABLE IF NOT EXISTS gearlock_schema (
            component TEXT PRIMARY KEY,
            version INT NOT NULL
        )
        """

    static let createJobsTable: PostgresQuery = """
        CREATE TABLE IF NOT EXISTS gearlock_jobs (
            server TEXT NOT NULL,
            seq BIGSERIAL,
            handle BYTEA NOT NULL,
            function BYTEA NOT NULL,
            unique_key BYTEA NOT NULL,
            payload BYTEA NOT NULL,
            priority SMALLINT NOT NULL,
            epoch BIGINT NULL,
            reducer BYTEA NULL,
            retries INT NOT NULL,
            PRIMARY KEY (server, handle)
        )
        """

    /// The name of the component whose version `gearlock_schema` records.
    static let component = "queue"

    static func selectAll(server: String) -> PostgresQuery {
        """
        SELECT seq, handle, function, unique_key, payload, priority, epoch, reducer, retries
        FROM gearlock_jobs WHERE server = \(server) ORDER BY seq
        """
    }

    /// Adds or replaces `jobs` in one statement, whatever their number: each column goes in as one
    /// array, and `unnest` turns the arrays back into rows, in their order (so `seq` follows it). An
    /// upsert keeps the row's `seq`. The nullable columns travel as a value array and a flag array,
    /// since an array of optionals has no encoding here.
    ///
    /// `jobs` must not repeat a handle: PostgreSQL refuses to update one row twice in one statement
    /// (see `deduplicated`).
    static func upsert(_ jobs: [StoredJob], server: String) -> PostgresQuery {
        var handles: [ByteBuffer] = []
        var functions: [ByteBuffer] = []
        var uniques: [ByteBuffer] = []
        var payloads: [ByteBuffer] = []
        var priorities: [Int16] = []
        var hasEpoch: [Bool] = []
        var epochs: [Int64] = []
        var hasReducer: [Bool] = []
        var reducers: [ByteBuffer] = []
        var retries: [Int32] = []
        handles.reserveCapacity(jobs.count)
        functions.reserveCapacity(jobs.count)
        uniques.reserveCapacity(jobs.count)
        payloads.reserveCapacity(jobs.count)
        priorities.reserveCapacity(jobs.count)
        hasEpoch.reserveCapacity(jobs.count)
        epochs.reserveCapacity(jobs.count)
        hasReducer.reserveCapacity(jobs.count)
        reducers.reserveCapacity(jobs.count)
        retries.reserveCapacity(jobs.count)
        for job in jobs {
            handles.append(job.handle)
            functions.append(job.function)
            uniques.append(job.unique)
            payloads.append(job.payload)
            priorities.append(Int16(job.priority.rawValue))
            hasEpoch.append(job.epoch != nil)
            epochs.append(job.epoch ?? 0)
            hasReducer.append(job.reducer != nil)
            reducers.append(job.reducer ?? ByteBuffer())
            // The column is an INT; a job is requeued after a lost worker, so two billion is out of reach.
            retries.append(Int32(clamping: job.retries))
        }
        return """
            INSERT INTO gearlock_jobs (server, handle, function, unique_key, payload, priority, epoch, reducer, retries)
            SELECT \(server), j.handle, j.function, j.unique_key, j.payload, j.priority,
                CASE WHEN j.has_epoch THEN j.epoch END, CASE WHEN j.has_reducer THEN j.reducer END, j.retries
            FROM unnest(\(handles)::bytea[], \(functions)::bytea[], \(uniques)::bytea[], \(payloads)::bytea[],
                \(priorities)::int2[], \(hasEpoch)::bool[], \(epochs)::int8[], \(hasReducer)::bool[],
                \(reducers)::bytea[], \(retries)::int4[])
                WITH ORDINALITY AS j(handle, function, unique_key, payload, priority, has_epoch, epoch, has_reducer,
                    reducer, retries, n)
            ORDER BY j.n
            ON CONFLICT (server, handle) DO UPDATE SET function = EXCLUDED.function,
                unique_key = EXCLUDED.unique_key, payload = EXCLUDED.payload, priority = EXCLUDED.priority,
                epoch = EXCLUDED.epoch, reducer = EXCLUDED.reducer, retries = EXCLUDED.retries
            """
    }

    static func delete(_ handles: [ByteBuffer], server: String) -> PostgresQuery {
        "DELETE FROM gearlock_jobs WHERE server = \(server) AND handle = ANY(\(handles)::bytea[])"
    }

    /// `jobs` with each handle once, where it first appears, holding the job that last had it: what
    /// adding them one after the other leaves behind.
    static func deduplicated(_ jobs: [StoredJob]) -> [StoredJob] {
        var positions: [ByteBuffer: Int] = [:]
        positions.reserveCapacity(jobs.count)
        var result: [StoredJob] = []
        result.reserveCapacity(jobs.count)
        for job in jobs {
            if let position = positions[job.handle] {
                result[position] = job
            } else {
                positions[job.handle] = result.count
                result.append(job)
            }
        }
        return result
    }

    /// The job a row of `selectAll` holds; a row that gearlock cannot have written means the table
    /// was changed by something else.
    static func job(from row: PostgresRow, location: PostgresQueueLocation, server: String) throws(QueueStoreError)
        -> StoredJob
    {
        let cells = Array(row)
        let sequence = cells.first.flatMap { try? $0.decode(Int64.self) }.map(String.init) ?? "?"
        func damaged(_ column: String) -> QueueStoreError {
            QueueStoreError(
                .damaged,
                "the queue of server \"\(server)\" in \(location) holds a job (seq \(sequence)) whose \(column) "
                    + "gearlock cannot have written; the table gearlock_jobs was changed by something else",
                path: location.description)
        }
        func cell<Value: PostgresDecodable>(_ index: Int, _ column: String, as type: Value.Type) throws(QueueStoreError)
            -> Value
        {
            guard index < cells.count, let value = try? cells[index].decode(Value.self) else { throw damaged(column) }
            return value
        }
        let priorityValue = try cell(5, "priority", as: Int16.self)
        guard let priority = JobPriority(rawValue: Int(priorityValue)) else { throw damaged("priority") }
        let retries = try cell(8, "retries", as: Int32.self)
        guard retries >= 0 else { throw damaged("retries") }
        return StoredJob(
            handle: try cell(1, "handle", as: ByteBuffer.self),
            function: try cell(2, "function", as: ByteBuffer.self),
            unique: try cell(3, "unique_key", as: ByteBuffer.self),
            payload: try cell(4, "payload", as: ByteBuffer.self),
            priority: priority,
            epoch: try cell(6, "epoch", as: Int64?.self),
            reducer: try cell(7, "reducer", as: ByteBuffer?.self),
            retries: Int(retries))
    }
}
