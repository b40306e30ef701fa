import Foundation
import Logging
import NIOCore
import NIOPosix
import PostgresNIO
import Testing

@testable import GearmanQueue

/// The PostgreSQL database the store tests use, from `GEARLOCK_TEST_POSTGRES_URL`. The tests fail,
/// not skip, without it: `.ci/run` starts a server and sets it, and a developer sets it by hand.
enum PostgresTestDatabase {
    static let variable = "GEARLOCK_TEST_POSTGRES_URL"

    static func url() throws -> String {
        guard let url = ProcessInfo.processInfo.environment[variable], !url.isEmpty else {
            throw TestFailure(
                "\(variable) is not set: the PostgreSQL queue store tests need a real PostgreSQL server. Run "
                    + ".ci/run (which installs and starts one), or start one yourself and set \(variable), e.g. "
                    + "postgres://gearlock:gearlock@127.0.0.1:5432/gearlock_test")
        }
        return url
    }

    static func location() throws -> PostgresQueueLocation {
        try PostgresQueueLocation(url: try url())
    }

    /// A server name no other test uses, so that tests can share the database and run in parallel.
    static func uniqueServerName(_ label: String = "test") -> String {
        "\(label)-\(UUID().uuidString)"
    }

    /// The URL with `password` in place of the right one.
    static func url(withPassword password: String) throws -> String {
        let location = try location()
        return "postgres://\(location.username):\(password)@\(location.endpoint)"
    }

    /// The URL with `database` in place of the right one.
    static func url(withDatabase database: String) throws -> String {
        let location = try location()
        let password = location.password.map { ":" + percentEncoded($0) } ?? ""
        let host = location.host.contains(":") ? "[\(location.host)]" : location.host
        return "postgres://\(percentEncoded(location.username))\(password)@\(host):\(location.port)/\(database)"
    }

    private static func percentEncoded(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? text
    }
}

func openPostgresStore(
    _ serverName: String, lockWait: Duration = .milliseconds(300), commitTimeout: TimeAmount = .seconds(30)
) async throws -> PostgresQueueStore {
    try await PostgresQueueStore.open(
        url: try PostgresTestDatabase.url(), serverName: serverName, logger: testLogger, lockWait: lockWait,
        commitTimeout: commitTimeout)
}

/// The error `open` throws for `url` and `serverName`, or nil when it opens (and is closed at once).
func postgresOpeningError(url: String, serverName: String = PostgresTestDatabase.uniqueServerName()) async
    -> QueueStoreError?
{
    do {
        let store = try await PostgresQueueStore.open(
            url: url, serverName: serverName, logger: testLogger, lockWait: .milliseconds(300),
            commitTimeout: .seconds(30))
        await store.close()
        return nil
    } catch {
        return error
    }
}

extension PostgresQueueLocation {
    /// The password, unless it also appears in the URL without it (the test database's user
    /// `gearlock` with password `gearlock`), where a message would contain it without leaking it.
    var distinctivePassword: String? {
        guard let password, !password.isEmpty, !description.contains(password) else { return nil }
        return password
    }
}

/// A connection of the tests' own to the test database, as another client would have.
func connectToTestDatabase() async throws -> PostgresConnection {
    let location = try PostgresTestDatabase.location()
    let configuration = PostgresConnection.Configuration(
        host: location.host, port: location.port, username: location.username, password: location.password,
        database: location.database, tls: .disable)
    return try await PostgresConnection.connect(configuration: configuration, id: 0, logger: testLogger)
}

/// Runs `body` on a connection of its own to the test database: the tests' way to look at and
/// interfere with the store's sessions, as an operator (or a failure) would.
func withAdminConnection<Result>(_ body: (PostgresConnection) async throws -> Result) async throws -> Result {
    let connection = try await connectToTestDatabase()
    do {
        let result = try await body(connection)
        try await connection.close()
        return result
    } catch {
        try? await connection.close()
        throw error
    }
}

/// The PostgreSQL process holding the lock of `serverName`, if any.
func lockHolder(of serverName: String) async throws -> Int32? {
    try await withAdminConnection { connection in
        let rows = try await connection.query(
            """
            SELECT pid FROM pg_locks
            WHERE locktype = 'advisory' AND granted AND objsubid = 2
                AND classid = \(PostgresQueueSchema.serverLockClass)::oid AND objid = hashtext(\(serverName))::oid
            """, logger: testLogger
        ).collect()
        return try rows.first?.decode(Int32.self)
    }
}

/// Ends the PostgreSQL session holding the lock of `serverName`, as a crash of its server or of the
/// network would, and waits until the lock is free.
func terminateSession(of serverName: String) async throws {
    let pid = try #require(try await lockHolder(of: serverName), "no session holds the lock of \(serverName)")
    try await withAdminConnection { connection in
        let rows = try await connection.query("SELECT pg_terminate_backend(\(pid), 5000)", logger: testLogger)
            .collect()
        #expect(try rows.first?.decode(Bool.self) == true)
    }
    let deadline = ContinuousClock.now + .seconds(10)
    while try await lockHolder(of: serverName) != nil {
        guard ContinuousClock.now < deadline else { throw TestFailure("the lock of \(serverName) was not freed") }
        try await Task.sleep(for: .milliseconds(20))
    }
}

/// Forgets the rows of `serverName`, so that the shared test database does not grow.
func removeRows(of serverName: String) async {
    _ = try? await withAdminConnection { connection in
        try await connection.query("DELETE FROM gearlock_jobs WHERE server = \(serverName)", logger: testLogger)
    }
}

/// Runs `body` with a store of a new server name, then closes it and removes its rows.
func withPostgresStore(
    commitTimeout: TimeAmount = .seconds(30), _ body: (PostgresQueueStore, String) async throws -> Void
) async throws {
    let name = PostgresTestDatabase.uniqueServerName()
    let store = try await openPostgresStore(name, commitTimeout: commitTimeout)
    do {
        try await body(store, name)
    } catch {
        await store.close()
        await removeRows(of: name)
        throw error
    }
    await store.close()
    await removeRows(of: name)
}
