import GearmanProtocol
import Testing

/// libgearman's `gearadmin`, unchanged, against both servers (probe notes §C).
@Suite("gearadmin interop", .serialized, .timeLimit(.minutes(5)))
struct GearadminTests {
    @Test("--status, --priority-status, --show-jobs, --show-unique-jobs print the server's list verbatim", arguments: ServerKind.allCases)
    func lists(kind: ServerKind) async throws {
        try await withTestServer(kind) { server in
            let (_, _, handles) = try await AdminTextTests.probeSetup(server)
            let expectations: [(flag: String, command: String, lines: [String])] = [
                ("--status", "status", ["other\t2\t0\t1", "rev\t2\t0\t1"]),
                ("--priority-status", "prioritystatus", ["other\t1\t0\t1\t1", "rev\t0\t2\t0\t1"]),
                ("--show-jobs", "show jobs", handles.map { "\($0)\t0\t0\t1" }.sorted()),
                ("--show-unique-jobs", "show unique jobs", ["", "hu", "lu", "u-123"]),
            ]
            for (flag, command, lines) in expectations {
                let result = try await server.gearadmin(flag)
                #expect(result.exitCode == 0 && result.stderrString == "", "\(flag): \(result)")
                #expect(result.stdoutString == (try await server.admin(command)), "\(flag) prints the reply verbatim")
                #expect(sortedListLines(result.stdoutString) == lines, "\(flag): \(result)")
                #expect(result.stdoutString.hasSuffix(".\n"))
            }
        }
    }

    @Test("--workers", arguments: ServerKind.allCases)
    func workers(kind: ServerKind) async throws {
        try await withTestServer(kind) { server in
            let worker = try await server.connect("worker")
            try await worker.canDo("rev")
            #expect(try await worker.ping())
            let result = try await server.gearadmin("--workers")
            #expect(result.exitCode == 0 && result.stderrString == "", "\(result)")
            #expect(
                parseWorkers(result.stdoutString)
                    == [WorkerLine(clientID: "-", functions: []), WorkerLine(clientID: "-", functions: ["rev"])],
                "\(result)")
        }
    }

    @Test("--server-version, --server-verbose, --getpid strip the OK", arguments: ServerKind.allCases)
    func singleValues(kind: ServerKind) async throws {
        try await withTestServer(kind) { server in
            let version = try await server.gearadmin("--server-version")
            let raw = try await server.admin("version")
            #expect(version.exitCode == 0 && version.stdoutString == String(raw.dropFirst(3)), "\(version)")
            if kind == .gearmand { #expect(version.stdoutString == "1.1.20+ds\n") }
            let verbose = try await server.gearadmin("--server-verbose")
            #expect(verbose.exitCode == 0 && verbose.stdoutString == "ERROR\n", "\(verbose)")
            let pid = try await server.gearadmin("--getpid")
            #expect(pid.exitCode == 0 && pid.stdoutString == "\(server.pid)\n", "\(pid)")
        }
    }

    @Test("--create-function, --drop-function, --cancel-job, and their errors on stderr", arguments: ServerKind.allCases)
    func changes(kind: ServerKind) async throws {
        try await withTestServer(kind) { server in
            let create = try await server.gearadmin("--create-function=newfn")
            #expect(create.exitCode == 0 && create.stdoutString == "OK\n" && create.stderrString == "", "\(create)")
            #expect(try await server.admin("status") == "newfn\t0\t0\t0\n.\n")
            let drop = try await server.gearadmin("--drop-function=newfn")
            #expect(drop.exitCode == 0 && drop.stdoutString == "OK\n", "\(drop)")
            #expect(try await server.admin("status") == ".\n")

            let missing = try await server.gearadmin("--drop-function=nosuch")
            #expect(missing.exitCode == 0 && missing.stdoutString == "", "\(missing)")
            #expect(missing.stderrString == "Error: function not found\r\n", "\(missing)")

            let worker = try await server.connect("worker")
            try await worker.canDo("rev")
            #expect(try await worker.ping())
            let busy = try await server.gearadmin("--drop-function=rev")
            #expect(busy.exitCode == 0 && busy.stdoutString == "", "\(busy)")
            #expect(busy.stderrString == "Error: there are still connected workers or executing clients\r\n", "\(busy)")

            let client = try await server.connect("client")
            let handle = try await client.submit("queued", unique: "adm-u1", payload: "", type: .submitJobBackground)
            let cancel = try await server.gearadmin("--cancel-job=\(handle)")
            #expect(cancel.exitCode == 0 && cancel.stdoutString == "OK\n" && cancel.stderrString == "", "\(cancel)")
            let unknown = try await server.gearadmin("--cancel-job=H:nope:1")
            #expect(unknown.exitCode == 0 && unknown.stdoutString == "", "\(unknown)")
            #expect(unknown.stderrString == "Error: UNKNOWN_JOB\r\n", "\(unknown)")
        }
    }
}
