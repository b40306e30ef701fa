import Foundation
import Gearman
import NIOCore
import ServiceLifecycle
import Testing

#if canImport(Glibc)
import Glibc
#endif

extension TestServer {
    var address: String { "\(host):\(port)" }

    /// `gearlock submit -s HOST:PORT <arguments>`, run to completion.
    func gearlockSubmit(_ arguments: [String], stdin: Data? = nil, timeout: Duration = .seconds(20)) async throws -> ProcessResult {
        try await runProcess(GearlockBinary.path, ["submit", "-s", address] + arguments, stdin: stdin, timeout: timeout)
    }

    /// `gearlock work -s HOST:PORT <options> -- <command>`, left running.
    func startGearlockWork(_ options: [String], command: [String]) throws -> ChildProcess {
        let child = try ChildProcess(
            GearlockBinary.path, ["work", "-s", address, "--log-level", "warning"] + options + ["--"] + command)
        children.add(child)
        return child
    }

    /// Waits until `function` has `workers` available workers (the `status` column), so a worker is
    /// known to be registered and idle.
    func waitForWorkers(_ function: String, count workers: Int = 1) async throws {
        let reply = try await adminEventually("status") { reply in
            reply.split(separator: "\n").contains { $0.hasPrefix("\(function)\t") && $0.hasSuffix("\t\(workers)") }
        }
        #expect(
            reply.split(separator: "\n").contains { $0.hasPrefix("\(function)\t") && $0.hasSuffix("\t\(workers)") },
            "expected \(workers) worker(s) for \(function): \(reprString(reply))")
    }
}

/// `gearlock submit` and `gearlock work`, the binary, against both servers and the reference tools.
@Suite("gearlock submit and work", .serialized, .timeLimit(.minutes(5)))
struct CLITests {
    @Test("gearlock work -- rev + gearlock submit hello prints olleh; -c 1 exits 0", arguments: ServerKind.allCases)
    func roundTrip(kind: ServerKind) async throws {
        try await withTestServer(kind) { server in
            let worker = try server.startGearlockWork(["-f", "rev", "-c", "1"], command: ["rev"])
            let client = try await server.gearlockSubmit(["-f", "rev", "hello"])
            #expect(client.exitCode == 0, "\(client)")
            #expect(client.stdout == Data("olleh".utf8), "exactly the result, no newline added: \(client)")
            let workerResult = await worker.wait(timeout: .seconds(30))
            #expect(workerResult.exitCode == 0 && !workerResult.timedOut, "\(workerResult)")
        }
    }

    @Test("gearlock submit with the reference worker (gearman -w)", arguments: ServerKind.allCases)
    func submitToReferenceWorker(kind: ServerKind) async throws {
        try await withTestServer(kind) { server in
            let worker = try server.startGearman(["-w", "-f", "rev", "-c", "1", "--", "rev"])
            let client = try await server.gearlockSubmit(["-f", "rev", "hello"])
            #expect(client.exitCode == 0 && client.stdout == Data("olleh".utf8), "\(client)")
            let workerResult = await worker.wait(timeout: .seconds(30))
            #expect(workerResult.exitCode == 0, "\(workerResult)")
        }
    }

    @Test("gearlock work with the reference client (gearman)", arguments: ServerKind.allCases)
    func workForReferenceClient(kind: ServerKind) async throws {
        try await withTestServer(kind) { server in
            let worker = try server.startGearlockWork(["-f", "rev", "-c", "2"], command: ["rev"])
            let client = try await server.gearman(["-f", "rev", "hello"])
            #expect(client.exitCode == 0 && client.stdoutString == "olleh", "\(client)")
            let fromStdin = try await server.gearman(["-f", "rev"], stdin: Data("from-stdin\n".utf8))
            #expect(fromStdin.exitCode == 0 && fromStdin.stdoutString == "nidts-morf\n", "\(fromStdin)")
            let workerResult = await worker.wait(timeout: .seconds(30))
            #expect(workerResult.exitCode == 0 && !workerResult.timedOut, "\(workerResult)")
        }
    }

    @Test("the payload comes from stdin, byte for byte, when no DATA is given", arguments: ServerKind.allCases)
    func payloadFromStdin(kind: ServerKind) async throws {
        try await withTestServer(kind) { server in
            let worker = try server.startGearlockWork(["-f", "rev", "-c", "1"], command: ["rev"])
            let client = try await server.gearlockSubmit(["-f", "rev"], stdin: Data("from-stdin\n".utf8))
            #expect(client.exitCode == 0, "\(client)")
            #expect(client.stdoutString == "nidts-morf\n", "the newline is part of the payload: \(client)")
            await worker.wait(timeout: .seconds(30))
        }
    }

    @Test("--background prints the job handle; a worker started later drains the job", arguments: ServerKind.allCases)
    func backgroundJob(kind: ServerKind) async throws {
        try await withTestServer(kind) { server in
            let submit = try await server.gearlockSubmit(["--background", "-f", "bgcli", "bg-payload"])
            #expect(submit.exitCode == 0, "\(submit)")
            let handle = submit.stdoutString
            #expect(handle.hasPrefix("H:") && handle.hasSuffix("\n") && handle.filter { $0 == "\n" }.count == 1, "\(submit)")
            #expect(try await server.admin("status") == "bgcli\t1\t0\t0\n.\n")
            let jobs = try await server.admin("show jobs")
            #expect(jobs.contains(String(handle.dropLast()) + "\t"), "the printed handle is the queued job's: \(reprString(jobs))")

            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("gearlock-cli-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: directory) }
            let file = directory.appendingPathComponent("payload").path
            let worker = try server.startGearlockWork(["-f", "bgcli", "-c", "1"], command: ["sh", "-c", "cat > \"$0\"", file])
            let workerResult = await worker.wait(timeout: .seconds(30))
            #expect(workerResult.exitCode == 0 && !workerResult.timedOut, "\(workerResult)")
            #expect(try String(contentsOfFile: file, encoding: .utf8) == "bg-payload")
            try await server.adminEventually("status") { $0 == "bgcli\t0\t0\t0\n.\n" }
        }
    }

    @Test("a command exiting non-zero fails the job: submit exits 1, its output arrives as WORK_DATA", arguments: ServerKind.allCases)
    func failingCommand(kind: ServerKind) async throws {
        try await withTestServer(kind) { server in
            let worker = try server.startGearlockWork(
                ["-f", "failcli", "-c", "1"], command: ["sh", "-c", "echo partial; echo command-stderr >&2; exit 3"])
            let client = try await server.gearlockSubmit(["-f", "failcli", "x"])
            #expect(client.exitCode == 1, "\(client)")
            #expect(client.stdoutString == "partial\n", "\(client)")
            #expect(client.stderrString.contains("job failed"), "\(client)")
            // A failed job counts towards -c; the command's stderr went to the worker's stderr.
            let workerResult = await worker.wait(timeout: .seconds(30))
            #expect(workerResult.exitCode == 0 && !workerResult.timedOut, "\(workerResult)")
            #expect(workerResult.stderrString.contains("command-stderr"), "\(workerResult)")
        }
    }

    @Test("the reference client sees a gearlock work failure as a failed job", arguments: ServerKind.allCases)
    func failingCommandWithReferenceClient(kind: ServerKind) async throws {
        try await withTestServer(kind) { server in
            let worker = try server.startGearlockWork(["-f", "failref", "-c", "1"], command: ["sh", "-c", "exit 3"])
            let client = try await server.gearman(["-f", "failref", "x"])
            #expect(client.exitCode == 1 && client.stdoutString == "", "\(client)")
            #expect(client.stderrString == "Job failed\n", "\(client)")
            await worker.wait(timeout: .seconds(30))
        }
    }

    @Test("WORK_EXCEPTION: submit exits 1 and prints the exception's payload to stderr", arguments: ServerKind.allCases)
    func exception(kind: ServerKind) async throws {
        try await withTestServer(kind) { server in
            let options = GearmanConnectionOptions(
                servers: [.init(host: server.host, port: server.port)], connectTimeout: .seconds(20))
            let worker = GearmanWorker(configuration: .init(connection: options))
            worker.register(function: "raises") { _ in throw GearmanJobException("disk on fire") }
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await worker.run() }
                let client = try await server.gearlockSubmit(["-f", "raises", "x"])
                #expect(client.exitCode == 1 && client.stdoutString == "", "\(client)")
                #expect(client.stderrString.contains("disk on fire"), "\(client)")
                group.cancelAll()
            }
        }
    }

    @Test("-c 2: the worker exits 0 after its second job", arguments: ServerKind.allCases)
    func countTwo(kind: ServerKind) async throws {
        try await withTestServer(kind) { server in
            let worker = try server.startGearlockWork(["-f", "cnt", "-c", "2"], command: ["rev"])
            let first = try await server.gearlockSubmit(["-f", "cnt", "job1"])
            #expect(first.exitCode == 0 && first.stdoutString == "1boj", "\(first)")
            try await Task.sleep(for: .milliseconds(200))
            #expect(worker.isRunning, "one job done, one to go")
            let second = try await server.gearlockSubmit(["-f", "cnt", "job2"])
            #expect(second.exitCode == 0 && second.stdoutString == "2boj", "\(second)")
            let workerResult = await worker.wait(timeout: .seconds(30))
            #expect(workerResult.exitCode == 0 && !workerResult.timedOut, "\(workerResult)")
            // It took no third job: a background one stays queued.
            let third = try await server.gearlockSubmit(["-b", "-f", "cnt", "job3"])
            #expect(third.exitCode == 0, "\(third)")
            let status = try await server.adminEventually("status") { $0 == "cnt\t1\t0\t0\n.\n" }
            #expect(status == "cnt\t1\t0\t0\n.\n", "one queued job, no worker")
        }
    }

    @Test("SIGTERM on an idle gearlock work: exits 0", arguments: ServerKind.allCases)
    func sigtermWhileIdle(kind: ServerKind) async throws {
        try await withTestServer(kind) { server in
            let worker = try server.startGearlockWork(["-f", "idle"], command: ["rev"])
            try await server.waitForWorkers("idle")
            worker.signal(SIGTERM)
            let result = await worker.wait(timeout: .seconds(30))
            #expect(result.exitCode == 0 && !result.timedOut, "\(result)")
        }
    }

    @Test("SIGTERM with a job in hand: the job finishes and is answered, then exit 0")
    func sigtermWithJobInHand() async throws {
        try await withTestServer(.gearlock) { server in
            let worker = try server.startGearlockWork(["-f", "slowcli"], command: ["sh", "-c", "sleep 1; cat"])
            try await server.waitForWorkers("slowcli")
            async let client = server.gearlockSubmit(["-f", "slowcli", "finished"])
            try await server.adminEventually("status") { $0.contains("slowcli\t1\t1\t") }
            worker.signal(SIGTERM)
            let result = try await client
            #expect(result.exitCode == 0 && result.stdoutString == "finished", "\(result)")
            let workerResult = await worker.wait(timeout: .seconds(30))
            #expect(workerResult.exitCode == 0 && !workerResult.timedOut, "\(workerResult)")
        }
    }

    @Test("a few MiB of binary payload round-trip byte-exact through gearlock work -- cat", arguments: ServerKind.allCases)
    func binaryPayloadThroughCat(kind: ServerKind) async throws {
        try await withTestServer(kind) { server in
            let payload = Data(seededRandomBytes(count: 6 << 20, seed: 0xCA7).readableBytesView)
            let worker = try server.startGearlockWork(["-f", "catcli", "-c", "1"], command: ["cat"])
            let client = try await server.gearlockSubmit(["-f", "catcli"], stdin: payload, timeout: .seconds(60))
            #expect(client.exitCode == 0, "\(client)")
            #expect(client.stdout.count == payload.count, "\(client.stdout.count) of \(payload.count) bytes came back")
            #expect(client.stdout == payload, "the bytes differ")
            let workerResult = await worker.wait(timeout: .seconds(30))
            #expect(workerResult.exitCode == 0 && !workerResult.timedOut, "\(workerResult)")
        }
    }

    @Test("--timeout on work: a command running too long is killed and its job fails")
    func commandTimeout() async throws {
        try await withTestServer(.gearlock) { server in
            let worker = try server.startGearlockWork(["-f", "hang", "-c", "1", "--timeout", "0.5"], command: ["sleep", "30"])
            let start = ContinuousClock.now
            let client = try await server.gearlockSubmit(["-f", "hang", "x"])
            #expect(client.exitCode == 1 && client.stderrString.contains("job failed"), "\(client)")
            #expect(ContinuousClock.now - start < .seconds(10))
            let workerResult = await worker.wait(timeout: .seconds(30))
            #expect(workerResult.exitCode == 0 && !workerResult.timedOut, "\(workerResult)")
        }
    }

    @Test("no server listening: submit exits 1 with a message")
    func noServer() async throws {
        let port = try freeLoopbackPort()
        let result = try await runProcess(
            GearlockBinary.path, ["submit", "-s", "127.0.0.1:\(port)", "-f", "x", "y"], timeout: .seconds(20))
        #expect(result.exitCode == 1 && result.stdoutString == "", "\(result)")
        #expect(result.stderrString.contains("127.0.0.1:\(port)"), "the message names the server: \(result)")
    }
}
