import Foundation
import Gearman
import GearmanProtocol
import GearmanServer
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `GearmanAdminClient` and `gearlock admin` against both servers on loopback.
@Suite("Admin client", .serialized, .timeLimit(.minutes(5)))
struct AdminClientTests {
    typealias FunctionStatus = GearmanAdminClient.FunctionStatus
    typealias FunctionPriorityStatus = GearmanAdminClient.FunctionPriorityStatus

    static func adminClient(_ server: TestServer, clientID: String? = nil) -> GearmanAdminClient {
        GearmanAdminClient(
            server: GearmanServerAddress(host: server.host, port: server.port),
            options: GearmanConnectionOptions(connectTimeout: .seconds(20), clientID: clientID))
    }

    @Test("status, priority status, show jobs, unique jobs, workers", arguments: ServerKind.allCases)
    func lists(kind: ServerKind) async throws {
        try await withTestServer(kind) { server in
            let (_, _, handles) = try await AdminTextTests.probeSetup(server)
            let admin = Self.adminClient(server, clientID: "admin-1")
            defer { admin.close() }

            #expect(
                try await admin.status().sorted { $0.name < $1.name }
                    == [
                        FunctionStatus(name: "other", total: 2, running: 0, availableWorkers: 1),
                        FunctionStatus(name: "rev", total: 2, running: 0, availableWorkers: 1),
                    ])
            #expect(
                try await admin.priorityStatus().sorted { $0.name < $1.name }
                    == [
                        FunctionPriorityStatus(name: "other", high: 1, normal: 0, low: 1, workers: 1),
                        FunctionPriorityStatus(name: "rev", high: 0, normal: 2, low: 0, workers: 1),
                    ])
            let jobs = try await admin.jobs()
            #expect(jobs.map(\.handle).sorted() == handles.sorted())
            #expect(jobs.allSatisfy { $0.retries == 0 && !$0.isIgnored && $0.isPersisted }, "\(jobs)")
            #expect(try await admin.uniqueJobs().sorted() == ["", "hu", "lu", "u-123"])

            let workers = try await admin.workers()
            #expect(workers.allSatisfy { $0.address == "127.0.0.1" }, "\(workers)")
            #expect(Set(workers.map(\.connection)).count == workers.count, "connection numbers are distinct: \(workers)")
            let summary = workers.map { "\($0.clientID ?? "-"): \($0.functions.sorted().joined(separator: " "))" }.sorted()
            #expect(summary == ["admin-1: ", "client-1: ", "worker-A: other rev"], "\(workers)")
        }
    }

    @Test("an empty server: empty lists; workers shows only the admin connection", arguments: ServerKind.allCases)
    func emptyServer(kind: ServerKind) async throws {
        try await withTestServer(kind) { server in
            let admin = Self.adminClient(server)
            defer { admin.close() }
            #expect(try await admin.status() == [])
            #expect(try await admin.priorityStatus() == [])
            #expect(try await admin.jobs() == [])
            #expect(try await admin.uniqueJobs() == [])
            let workers = try await admin.workers()
            // At least the admin connection; a readiness probe of the harness may still be closing.
            #expect(!workers.isEmpty && workers.allSatisfy { $0.clientID == nil && $0.functions == [] }, "\(workers)")
        }
    }

    @Test("version, getpid, verbose", arguments: ServerKind.allCases)
    func singleValues(kind: ServerKind) async throws {
        try await withTestServer(kind) { server throws in
            let admin = Self.adminClient(server)
            defer { admin.close() }
            #expect(try await admin.version() == (kind == .gearmand ? "1.1.20+ds" : JobServer.version))
            #expect(try await admin.pid() == Int(server.pid))
            #expect(try await admin.verbose() == "ERROR")
        }
    }

    @Test("concurrent calls share one connection and get their own replies", arguments: ServerKind.allCases)
    func concurrentCalls(kind: ServerKind) async throws {
        try await withTestServer(kind) { server in
            let client = try await server.connect("client")
            _ = try await client.submit("cc", unique: "k", payload: "", type: .submitJobBackground)
            let admin = Self.adminClient(server)
            defer { admin.close() }
            async let status = admin.status()
            async let pid = admin.pid()
            async let uniques = admin.uniqueJobs()
            async let version = admin.version()
            async let workers = admin.workers()
            #expect(try await status == [FunctionStatus(name: "cc", total: 1, running: 0, availableWorkers: 0)])
            #expect(try await pid == Int(server.pid))
            #expect(try await uniques == ["k"])
            #expect(try await !version.isEmpty)
            #expect(try await workers.count == 2)
        }
    }

    @Test("cancel job; an unknown handle is serverError UNKNOWN_JOB", arguments: ServerKind.allCases)
    func cancel(kind: ServerKind) async throws {
        try await withTestServer(kind) { server in
            let client = try await server.connect("client")
            let background = try await client.submit("cx", unique: "b", payload: "", type: .submitJobBackground)
            let foreground = try await client.submit("cx", unique: "f", payload: "")
            let admin = Self.adminClient(server)
            defer { admin.close() }
            try await admin.cancelJob(background)
            try await admin.cancelJob(foreground)
            #expect(try await client.receive() == .packet(.response(.workFail, foreground)))
            let jobs = try await admin.jobs()
            switch kind {
            case .gearmand:
                // gearmand only marks a cancelled job; it stays listed, ignored and no longer persisted.
                #expect(jobs.count == 2 && jobs.allSatisfy { $0.isIgnored && !$0.isPersisted }, "\(jobs)")
            case .gearlock:
                #expect(jobs == [], "Gearlock removes a cancelled job at once")
            }

            let error = await #expect(throws: GearmanError.self) { try await admin.cancelJob("H:nope:999") }
            #expect(error?.code == .serverError)
            #expect(error?.serverCode == "UNKNOWN_JOB")
            #expect(error?.jobHandle == "H:nope:999")
            #expect(error?.server == "127.0.0.1:\(server.port)")
            #expect(try await admin.pid() == Int(server.pid), "the connection stays usable after an ERR")
        }
    }

    @Test("create function and drop function, with drop's prose errors", arguments: ServerKind.allCases)
    func createAndDrop(kind: ServerKind) async throws {
        try await withTestServer(kind) { server in
            let admin = Self.adminClient(server)
            defer { admin.close() }
            try await admin.createFunction("fx")
            #expect(try await admin.status() == [FunctionStatus(name: "fx", total: 0, running: 0, availableWorkers: 0)])
            #expect(
                try await admin.priorityStatus() == [FunctionPriorityStatus(name: "fx", high: 0, normal: 0, low: 0, workers: 0)])

            let worker = try await server.connect("worker")
            try await worker.canDo("busy")
            #expect(try await worker.ping())
            let busy = await #expect(throws: GearmanError.self) { try await admin.dropFunction("busy") }
            #expect(busy?.code == .serverError)
            #expect(busy?.serverCode == nil)
            #expect(busy?.message == "there are still connected workers or executing clients")

            try await admin.dropFunction("FX")
            let missing = await #expect(throws: GearmanError.self) { try await admin.dropFunction("fx") }
            #expect(missing?.code == .serverError && missing?.message == "function not found", "\(String(describing: missing))")
            #expect(try await admin.status().map(\.name) == ["busy"])
        }
    }

    @Test("maxqueue: one limit, then three", arguments: ServerKind.allCases)
    func maxQueue(kind: ServerKind) async throws {
        try await withTestServer(kind) { server in
            let admin = Self.adminClient(server)
            defer { admin.close() }
            try await admin.createFunction("mq")
            try await admin.setMaxQueue(function: "mq", limit: 1)
            let client = try await server.connect("client")
            _ = try await client.submit("mq", unique: "m1", payload: "x", type: .submitJobBackground)
            try await client.send(RawPacket.request(.submitJobBackground, "mq", "m2", "x"))
            #expect(try await client.receive() == .packet(.error("QUEUE_ERROR", "Job queue is full")))

            try await admin.setMaxQueue(function: "mq", high: 0, normal: 2, low: 1)
            _ = try await client.submit("mq", unique: "m2", payload: "x", type: .submitJobBackground)
            try await client.send(RawPacket.request(.submitJobLowBackground, "mq", "m3", "x"))
            #expect(try await client.receive() == .packet(.error("QUEUE_ERROR", "Job queue is full")))
            _ = try await client.submit("mq", unique: "m3", payload: "x", type: .submitJobHighBackground)
            #expect(try await admin.status() == [FunctionStatus(name: "mq", total: 3, running: 0, availableWorkers: 0)])
        }
    }

    @Test("shutdown on gearmand: serverError UNKNOWN_COMMAND, and the connection stays usable")
    func shutdownOnGearmand() async throws {
        try await withTestServer(.gearmand) { server throws in
            let admin = Self.adminClient(server)
            defer { admin.close() }
            for graceful in [false, true] {
                let error = await #expect(throws: GearmanError.self) { try await admin.shutdown(graceful: graceful) }
                #expect(error?.code == .serverError)
                #expect(error?.serverCode == "UNKNOWN_COMMAND")
                #expect(error?.message == "Unknown+server+commandshutdown")
            }
            #expect(try await admin.version() == "1.1.20+ds")
        }
    }

    @Test("shutdown on a gearlock serve process: OK, then the process exits 0")
    func shutdownOnGearlock() async throws {
        try await withGearlockBinary { port, process in
            let admin = GearmanAdminClient(
                server: GearmanServerAddress(host: "127.0.0.1", port: port),
                options: GearmanConnectionOptions(connectTimeout: .seconds(20)))
            defer { admin.close() }
            #expect(try await admin.pid() == Int(process.pid))
            try await admin.shutdown(graceful: true)
            let result = await process.wait(timeout: .seconds(30))
            #expect(result.exitCode == 0 && !result.timedOut, "\(result)")
        }
    }

    @Test("raw: the reply's lines, ERR returned rather than thrown", arguments: ServerKind.allCases)
    func raw(kind: ServerKind) async throws {
        try await withTestServer(kind) { server in
            let admin = Self.adminClient(server)
            defer { admin.close() }
            try await admin.createFunction("fr")
            #expect(try await admin.raw("status", list: true) == ["fr\t0\t0\t0"])
            #expect(try await admin.raw("STATUS", list: true) == ["fr\t0\t0\t0"])
            #expect(try await admin.raw("cancel job H:nope:1", list: false) == ["ERR UNKNOWN_JOB"])
            #expect(try await admin.raw("show foo", list: true) == ["ERR UNKNOWN_SHOW_ARGUMENTS"])
            #expect(try await admin.raw("getpid", list: false) == ["OK \(server.pid)"])
        }
    }

    @Test("no server listening: connectionFailed naming the server")
    func noServer() async throws {
        let port = try freeLoopbackPort()
        let admin = GearmanAdminClient(server: GearmanServerAddress(host: "127.0.0.1", port: port))
        defer { admin.close() }
        let error = await #expect(throws: GearmanError.self) { _ = try await admin.status() }
        #expect(error?.code == .connectionFailed)
        #expect(error?.server == "127.0.0.1:\(port)")
    }
}

// MARK: - The `gearlock admin` command

extension AdminClientTests {
    /// `gearlock admin` run as a process against both servers: its tables, `--raw`, and exit statuses.
    @Suite("gearlock admin binary", .timeLimit(.minutes(5)))
    struct Binary {
        static func run(_ server: TestServer, _ arguments: String...) async throws -> ProcessResult {
            try await runProcess(GearlockBinary.path, ["admin", "--server", "127.0.0.1:\(server.port)"] + arguments)
        }

        @Test("status and priority-status: aligned tables sorted by function", arguments: ServerKind.allCases)
        func statusTables(kind: ServerKind) async throws {
            try await withTestServer(kind) { server in
                _ = try await AdminTextTests.probeSetup(server)
                let status = try await Self.run(server, "status")
                #expect(status.exitCode == 0 && status.stderrString == "", "\(status)")
                #expect(
                    status.stdoutString == """
                        FUNCTION  TOTAL  RUNNING  WORKERS
                        other         2        0        1
                        rev           2        0        1

                        """, "\(status)")
                let priority = try await Self.run(server, "priority-status")
                #expect(priority.exitCode == 0, "\(priority)")
                #expect(
                    priority.stdoutString == """
                        FUNCTION  HIGH  NORMAL  LOW  WORKERS
                        other        1       0    1        1
                        rev          0       2    0        1

                        """, "\(priority)")
            }
        }

        @Test("jobs and unique-jobs tables, in the server's order", arguments: ServerKind.allCases)
        func jobTables(kind: ServerKind) async throws {
            try await withTestServer(kind) { server in
                _ = try await AdminTextTests.probeSetup(server)
                let reply = try await server.admin("show jobs")
                let serverOrder = reply.split(separator: "\n").dropLast().map { String($0.split(separator: "\t")[0]) }
                let width = max("HANDLE".count, serverOrder.map(\.count).max() ?? 0)
                func pad(_ text: String) -> String { text + String(repeating: " ", count: width - text.count) }
                let expected =
                    "\(pad("HANDLE"))  RETRIES  IGNORED  PERSISTED\n"
                    + serverOrder.map { "\(pad($0))        0  no       yes\n" }.joined()
                let jobs = try await Self.run(server, "jobs")
                #expect(jobs.exitCode == 0 && jobs.stdoutString == expected, "\(jobs)\nexpected \(reprString(expected))")

                let uniques = try await Self.run(server, "unique-jobs")
                #expect(uniques.exitCode == 0, "\(uniques)")
                let lines = uniques.stdoutString.split(separator: "\n").map(String.init)
                #expect(lines.first == "UNIQUE" && lines.dropFirst().sorted() == ["(none)", "hu", "lu", "u-123"], "\(uniques)")
            }
        }

        @Test("workers table; control characters in a client id are escaped", arguments: ServerKind.allCases)
        func workersTable(kind: ServerKind) async throws {
            try await withTestServer(kind) { server in
                let worker = try await server.connect("worker")
                try await worker.canDo("rev")
                try await worker.send(RawPacket.request(.setClientID, "evil\u{1B}[31m"))
                #expect(try await worker.ping())
                let result = try await Self.run(server, "workers")
                #expect(result.exitCode == 0, "\(result)")
                let lines = result.stdoutString.split(separator: "\n").map(String.init)
                #expect(lines.first?.hasPrefix("CONNECTION  ADDRESS    CLIENT-ID") == true, "\(result)")
                #expect(lines.first?.hasSuffix("  FUNCTIONS") == true, "\(result)")
                #expect(lines.count == 3, "header, the worker, the admin connection: \(result)")
                #expect(!result.stdoutString.contains("\u{1B}"), "no escape byte reaches the terminal")
                let workerLine = try #require(lines.first { $0.contains("evil") })
                #expect(workerLine.contains("127.0.0.1  evil\\x1B[31m  rev"), "\(reprString(workerLine))")
                let header = lines[0]
                let functionsColumn = try #require(header.range(of: "FUNCTIONS")).lowerBound.utf16Offset(in: header)
                let revColumn = try #require(workerLine.range(of: "rev", options: .backwards)).lowerBound.utf16Offset(in: workerLine)
                #expect(functionsColumn == revColumn, "columns line up: \(reprString(result.stdoutString))")
            }
        }

        @Test("--raw prints the server's text; single values and OK", arguments: ServerKind.allCases)
        func raw(kind: ServerKind) async throws {
            try await withTestServer(kind) { server in
                _ = try await AdminTextTests.probeSetup(server)
                for (subcommand, command) in [
                    ("status", "status"), ("priority-status", "prioritystatus"), ("jobs", "show jobs"),
                    ("unique-jobs", "show unique jobs"),
                ] {
                    let result = try await Self.run(server, "--raw", subcommand)
                    #expect(result.exitCode == 0, "\(subcommand): \(result)")
                    #expect(result.stdoutString == (try await server.admin(command)), "\(subcommand) verbatim: \(result)")
                }
                let version = try await Self.run(server, "--raw", "version")
                #expect(version.stdoutString == (try await server.admin("version")), "\(version)")
                let pid = try await Self.run(server, "getpid")
                #expect(pid.exitCode == 0 && pid.stdoutString == "\(server.pid)\n", "\(pid)")
                let plainVersion = try await Self.run(server, "version")
                #expect(plainVersion.stdoutString == (kind == .gearmand ? "1.1.20+ds\n" : "\(JobServer.version)\n"))
                let create = try await Self.run(server, "--raw", "create-function", "rawfn")
                #expect(create.exitCode == 0 && create.stdoutString == "OK\n", "\(create)")
                let options = try await runProcess(
                    GearlockBinary.path, ["admin", "status", "--raw", "--server", "127.0.0.1:\(server.port)"])
                #expect(options.stdoutString == (try await server.admin("status")), "options after the subcommand: \(options)")
            }
        }

        @Test("create-function, maxqueue, cancel, drop print OK and take effect", arguments: ServerKind.allCases)
        func changes(kind: ServerKind) async throws {
            try await withTestServer(kind) { server in
                for arguments in [["create-function", "cf"], ["maxqueue", "cf", "5"], ["maxqueue", "cf", "1", "2", "3"]] {
                    let result = try await runProcess(
                        GearlockBinary.path, ["admin", "--server", "127.0.0.1:\(server.port)"] + arguments)
                    #expect(result.exitCode == 0 && result.stdoutString == "OK\n" && result.stderrString == "", "\(arguments): \(result)")
                }
                let client = try await server.connect("client")
                let handle = try await client.submit("cf", unique: "", payload: "", type: .submitJobBackground)
                let cancel = try await Self.run(server, "cancel", handle)
                #expect(cancel.exitCode == 0 && cancel.stdoutString == "OK\n", "\(cancel)")
                if kind == .gearlock {
                    #expect(try await server.admin("show jobs") == ".\n")
                }
                let fresh = try await Self.run(server, "create-function", "gone")
                #expect(fresh.exitCode == 0, "\(fresh)")
                let drop = try await Self.run(server, "drop", "gone")
                #expect(drop.exitCode == 0 && drop.stdoutString == "OK\n", "\(drop)")
                #expect(!(try await server.admin("status")).contains("gone"))
            }
        }

        @Test("a server ERR: message on stderr, exit status 1", arguments: ServerKind.allCases)
        func serverErrors(kind: ServerKind) async throws {
            try await withTestServer(kind) { server in
                let cancel = try await Self.run(server, "cancel", "H:nope:1")
                #expect(cancel.exitCode == 1 && cancel.stdoutString == "", "\(cancel)")
                #expect(cancel.stderrString == "Error: 127.0.0.1:\(server.port) answered ERR UNKNOWN_JOB\n", "\(cancel)")

                let raw = try await Self.run(server, "--raw", "cancel", "H:nope:1")
                #expect(raw.exitCode == 1 && raw.stdoutString == "" && raw.stderrString == "ERR UNKNOWN_JOB\n", "\(raw)")

                let drop = try await Self.run(server, "drop", "nosuch")
                #expect(drop.exitCode == 1, "\(drop)")
                #expect(drop.stderrString == "Error: 127.0.0.1:\(server.port) answered ERR function not found\n", "\(drop)")

                if kind == .gearmand {
                    let shutdown = try await Self.run(server, "shutdown", "--graceful")
                    #expect(shutdown.exitCode == 1, "\(shutdown)")
                    #expect(
                        shutdown.stderrString
                            == "Error: 127.0.0.1:\(server.port) answered ERR UNKNOWN_COMMAND Unknown+server+commandshutdown\n",
                        "\(shutdown)")
                }
            }
        }

        @Test("shutdown stops a gearlock serve process")
        func shutdown() async throws {
            try await withGearlockBinary { port, process in
                let result = try await runProcess(GearlockBinary.path, ["admin", "--server", "127.0.0.1:\(port)", "shutdown"])
                #expect(result.exitCode == 0 && result.stdoutString == "OK\n", "\(result)")
                let server = await process.wait(timeout: .seconds(30))
                #expect(server.exitCode == 0 && !server.timedOut, "\(server)")
            }
        }

        @Test("usage errors exit 64; an unreachable server exits 69")
        func usageAndConnectionErrors() async throws {
            let port = try freeLoopbackPort()
            for arguments in [["maxqueue", "f", "1", "2"], ["maxqueue", "f", "-1"], ["cancel"], ["bogus"], ["drop", "a b"]] {
                let result = try await runProcess(GearlockBinary.path, ["admin", "--server", "127.0.0.1:\(port)"] + arguments)
                #expect(result.exitCode == 64 && result.stderrString.contains("Error:"), "\(arguments): \(result)")
            }
            let unreachable = try await runProcess(GearlockBinary.path, ["admin", "--server", "127.0.0.1:\(port)", "status"])
            #expect(unreachable.exitCode == 69 && unreachable.stdoutString == "", "\(unreachable)")
            #expect(unreachable.stderrString.contains("127.0.0.1:\(port)"), "\(unreachable)")
        }
    }
}
