import Foundation
import GearmanProtocol
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `gearlock serve --queue postgres://… --server-name NAME` against a real PostgreSQL server
/// (`GEARLOCK_TEST_POSTGRES_URL`, set by `.ci/run`): crash safety as with SQLite, and a server lost
/// for good replaced by another started with its name.
@Suite("Durable PostgreSQL queue", .serialized, .timeLimit(.minutes(3)))
struct PostgresQueueServerTests {
    static let variable = "GEARLOCK_TEST_POSTGRES_URL"

    /// The database URL; the tests fail, never skip, without it.
    static func databaseURL() throws -> String {
        guard let url = ProcessInfo.processInfo.environment[variable], !url.isEmpty else {
            let message =
                "\(variable) is not set: these tests need a real PostgreSQL server. Run .ci/run (which installs and "
                + "starts one), or set \(variable), e.g. postgres://gearlock:gearlock@127.0.0.1:5432/gearlock_test"
            Issue.record(Comment(rawValue: message))
            throw RawClientError(description: "\(variable) is not set")
        }
        return url
    }

    /// A server name no other test (or earlier run) uses: tests share the database.
    static func uniqueName(_ label: String) -> String {
        "\(label)-\(UUID().uuidString.prefix(8).lowercased())"
    }

    static func queueArguments(name: String, handlePrefix: String? = nil) throws -> [String] {
        ["--queue", try databaseURL(), "--server-name", name] + (handlePrefix.map { ["--job-handle-prefix", $0] } ?? [])
    }

    @Test("kill -9 mid-stream loses no acknowledged background job")
    func crashLosesNothingAcknowledged() async throws {
        try await DurableQueueTests.crashLosesNothingAcknowledged(
            total: 2000, queue: try Self.queueArguments(name: Self.uniqueName("crash")), label: "postgres")
    }

    @Test("A server started with a lost server's name replays its jobs; other servers' jobs stay theirs")
    func replacementReplaysTheLostServersJobs() async throws {
        let lostName = Self.uniqueName("lost")
        let neighbourName = Self.uniqueName("neighbour")
        let function = "pg.replace.\(lostName)"

        // A neighbour sharing the database (and the function name) keeps its own jobs throughout.
        let (neighbourPort, neighbour) = try await DurableQueueTests.startServer(
            try Self.queueArguments(name: neighbourName, handlePrefix: "H:neighbour"))
        defer { Task { _ = await neighbour.terminate() } }
        let neighbourClient = try await RawClient.connect(host: "127.0.0.1", port: neighbourPort, label: "neighbour")
        for index in 0..<5 {
            _ = try await neighbourClient.submit(function, payload: "neighbour-\(index)", type: .submitJobBackground)
        }

        // The server that will be lost: jobs of both priorities, distinct and empty uniques.
        var normal: [(String, String)] = []
        var high: [(String, String)] = []
        do {
            let (port, lost) = try await DurableQueueTests.startServer(
                try Self.queueArguments(name: lostName, handlePrefix: "H:lost"))
            let client = try await RawClient.connect(host: "127.0.0.1", port: port, label: "client")
            for index in 0..<30 {
                let payload = "job-\(index)"
                let type: PacketType = index % 10 == 9 ? .submitJobHighBackground : .submitJobBackground
                let handle = try await client.submit(
                    function, unique: index % 2 == 0 ? "" : "u\(index)", payload: payload, type: type)
                if type == .submitJobHighBackground { high.append((handle, payload)) } else { normal.append((handle, payload)) }
            }
            lost.signal(SIGKILL)
            let killed = await lost.wait(timeout: .seconds(30))
            #expect(killed.signalled, "\(killed)")
            await client.close()
        }

        // Its replacement (another handle prefix, as on another machine) takes over the name.
        let arguments = try Self.queueArguments(name: lostName, handlePrefix: "H:replacement")
        let (port, replacement) = try await DurableQueueTests.startServer(arguments)
        let drained = try await DurableQueueTests.drain(port: port, function: function, count: 30)
        let expected = high + normal
        #expect(drained.map(\.0) == expected.map(\.0), "the lost server's handles, in its order")
        #expect(drained.map(\.1) == expected.map(\.1))
        #expect(drained.allSatisfy { $0.1.hasPrefix("job-") }, "no job of the neighbour")

        // While the replacement runs, the name is taken.
        let second = try await runProcess(
            GearlockBinary.path,
            ["serve", "--listen", "127.0.0.1:\(try freeLoopbackPort())"] + arguments, timeout: .seconds(20))
        #expect(second.exitCode != 0 && !second.timedOut, "\(second)")
        #expect(second.stderrString.contains("another gearlock server named \"\(lostName)\""), "\(second)")
        #expect(!second.stderrString.contains(":gearlock@"), "no password in the message")

        // The drained jobs are gone for good: a restart under the name finds none.
        let stopped = await replacement.terminate(grace: .seconds(30))
        #expect(stopped.exitCode == 0, "\(stopped)")
        let (againPort, again) = try await DurableQueueTests.startServer(arguments)
        defer { Task { _ = await again.terminate() } }
        let status = try await RawClient.connect(host: "127.0.0.1", port: againPort, label: "status")
        let after = try await status.adminCommand("status")
        #expect(!after.contains("\(function)\t") || after.contains("\(function)\t0\t0\t0\n"), "\(after)")
        await status.close()

        let neighbourStatus = try await neighbourClient.adminCommand("status")
        #expect(neighbourStatus.contains("\(function)\t5\t0\t0\n"), "the neighbour's jobs: \(neighbourStatus)")
        await neighbourClient.close()
    }

    @Test("--queue postgres:// needs a server name; a bad URL or an unreachable database stops start-up clearly")
    func startUpErrors() async throws {
        let url = try Self.databaseURL()
        let port = try freeLoopbackPort()
        let unnamed = try await runProcess(
            GearlockBinary.path, ["serve", "--listen", "127.0.0.1:\(port)", "--queue", url], timeout: .seconds(20))
        #expect(unnamed.exitCode != 0 && !unnamed.timedOut, "\(unnamed)")
        #expect(unnamed.stderrString.contains("needs --server-name"), "\(unnamed)")

        let badName = try await runProcess(
            GearlockBinary.path,
            ["serve", "--listen", "127.0.0.1:\(port)", "--queue", url, "--server-name", "a b"], timeout: .seconds(20))
        #expect(badName.exitCode != 0 && badName.stderrString.contains("--server-name must be"), "\(badName)")

        let sqliteWithName = try await runProcess(
            GearlockBinary.path,
            ["serve", "--listen", "127.0.0.1:\(port)", "--queue", "memory", "--server-name", "x"], timeout: .seconds(20))
        #expect(
            sqliteWithName.exitCode != 0 && sqliteWithName.stderrString.contains("PostgreSQL queue only"),
            "\(sqliteWithName)")

        // Nothing listens on port 1 of loopback; the secret must not be echoed.
        let unreachable = try await runProcess(
            GearlockBinary.path,
            [
                "serve", "--listen", "127.0.0.1:\(port)", "--queue", "postgres://user:s3cr3t-pw@127.0.0.1:1/db",
                "--server-name", "x",
            ], timeout: .seconds(30))
        #expect(unreachable.exitCode != 0 && !unreachable.timedOut, "\(unreachable)")
        #expect(unreachable.stderrString.contains("127.0.0.1:1/db"), "names the database: \(unreachable)")
        #expect(!unreachable.stderrString.contains("s3cr3t-pw"), "never the password: \(unreachable)")

        let malformed = try await runProcess(
            GearlockBinary.path,
            [
                "serve", "--listen", "127.0.0.1:\(port)", "--queue", "postgres://user:s3cr3t-pw@127.0.0.1:99999/db",
                "--server-name", "x",
            ], timeout: .seconds(20))
        #expect(malformed.exitCode != 0 && malformed.stderrString.contains("port"), "\(malformed)")
        #expect(!malformed.stderrString.contains("s3cr3t-pw"), "never the password: \(malformed)")
    }
}
