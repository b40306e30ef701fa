import Foundation
import GearmanProtocol
import GearmanServer
import NIOCore
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The `gearlock` executable, found next to this package's sources.
enum GearlockBinary {
    static let path: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<4 { url.deleteLastPathComponent() }  // …/Tests/IntegrationTests/GearlockOnly/<file>
        return url.appendingPathComponent(".build/debug/gearlock").path
    }()
}

/// Runs `gearlock serve` on a free loopback port, and always stops it afterwards.
func withGearlockBinary<T: Sendable>(
    _ extraArguments: [String] = [], sourceLocation: SourceLocation = #_sourceLocation,
    _ body: (_ port: Int, _ process: ChildProcess) async throws -> T
) async throws -> T {
    try await withGearlockServe(
        { port in
            ["--listen", "127.0.0.1:\(port)", "--log-level", "error"]
                + (extraArguments.contains("--queue") ? [] : ["--queue", "memory"]) + extraArguments
        }, sourceLocation: sourceLocation, body)
}

/// Runs `gearlock serve <arguments(port)>`, whose arguments must make it listen on the free loopback
/// `port` they are given (on the command line or in a `--config` file), and always stops it afterwards.
func withGearlockServe<T: Sendable>(
    _ arguments: (_ port: Int) throws -> [String], sourceLocation: SourceLocation = #_sourceLocation,
    _ body: (_ port: Int, _ process: ChildProcess) async throws -> T
) async throws -> T {
    var lastFailure = ""
    for _ in 0..<3 {
        let port = try freeLoopbackPort()
        let process = try ChildProcess(GearlockBinary.path, ["serve"] + arguments(port), sourceLocation: sourceLocation)
        do {
            try await waitUntilAnswering(port: port, pid: process.pid, stillRunning: { process.isRunning })
        } catch {
            let result = await process.terminate()
            lastFailure = "\(error); gearlock \(result)"
            continue
        }
        do {
            let result = try await body(port, process)
            await process.terminate()
            return result
        } catch {
            await process.terminate()
            throw error
        }
    }
    Issue.record("gearlock serve did not start: \(lastFailure)", sourceLocation: sourceLocation)
    throw RawClientError(description: "gearlock serve did not start")
}

/// Resident memory of a process, from /proc.
func residentBytes(of pid: pid_t) -> Int? {
    guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
        let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
        let kilobytes = Int(line.split(separator: " ").dropFirst().first ?? "")
    else { return nil }
    return kilobytes * 1024
}

@Suite("gearlock serve binary", .serialized, .timeLimit(.minutes(5)))
struct GearlockBinaryTests {
    @Test("starts, answers version, and exits 0 on SIGTERM")
    func startsAndStopsOnSIGTERM() async throws {
        try await withGearlockBinary { port, process in
            let client = try await RawClient.connect(host: "127.0.0.1", port: port, label: "admin")
            #expect(try await client.adminCommand("version") == "OK \(JobServer.version)\n")
            #expect(try await client.adminCommand("getpid") == "OK \(process.pid)\n")
            process.signal(SIGTERM)
            let result = await process.wait(timeout: .seconds(30))
            #expect(result.exitCode == 0 && !result.timedOut, "\(result)")
            _ = try await client.framesUntilClose()
        }
    }

    @Test("admin `shutdown` makes the process exit 0")
    func adminShutdownExitsCleanly() async throws {
        try await withGearlockBinary { port, process in
            let client = try await RawClient.connect(host: "127.0.0.1", port: port, label: "admin")
            try await client.sendLine("shutdown")
            let frames = try await client.framesUntilClose()
            #expect(frames == [.text("OK\r\n")], "the reply is sent before the connection closes")
            let result = await process.wait(timeout: .seconds(30))
            #expect(result.exitCode == 0 && !result.timedOut, "\(result)")
        }
    }

    @Test("SIGTERM lets a running job finish, then exits 0")
    func sigtermDrainsRunningJob() async throws {
        try await withGearlockBinary { port, process in
            let client = try await RawClient.connect(host: "127.0.0.1", port: port, label: "client")
            let worker = try await RawClient.connect(host: "127.0.0.1", port: port, label: "worker")
            try await worker.canDo("cli")
            let handle = try await client.submit("cli", unique: "", payload: "job")
            #expect(try await worker.grab() == .response(.jobAssign, handle, "cli", "job"))
            process.signal(SIGTERM)
            try await Task.sleep(for: .milliseconds(200))
            #expect(process.isRunning, "still draining the running job")
            try await worker.send(RawPacket.request(.workComplete, handle, "boj"))
            #expect(try await client.receive() == .packet(.response(.workComplete, handle, "boj")))
            let result = await process.wait(timeout: .seconds(30))
            #expect(result.exitCode == 0 && !result.timedOut, "\(result)")
        }
    }

    @Test("SIGTERM with a job that never finishes: exits 0 after --shutdown-timeout")
    func shutdownTimeout() async throws {
        try await withGearlockBinary(["--shutdown-timeout", "1"]) { port, process in
            let client = try await RawClient.connect(host: "127.0.0.1", port: port, label: "client")
            let worker = try await RawClient.connect(host: "127.0.0.1", port: port, label: "worker")
            try await worker.canDo("stuck")
            let handle = try await client.submit("stuck", unique: "", payload: "")
            #expect(try await worker.grab() == .response(.jobAssign, handle, "stuck", ""))
            let start = ContinuousClock.now
            process.signal(SIGTERM)
            let result = await process.wait(timeout: .seconds(30))
            #expect(result.exitCode == 0 && !result.timedOut, "\(result)")
            #expect(ContinuousClock.now - start >= .milliseconds(800), "it waited for the running job")
        }
    }

    @Test("a gearman -w worker and a gearman client work through the binary")
    func toolsAgainstBinary() async throws {
        try await withGearlockBinary { port, _ in
            let server = TestServer(kind: .gearlock, port: port, pid: 0)
            defer { server.children.killAll() }
            let worker = try server.startGearman(["-w", "-f", "rev", "-c", "1", "--", "rev"])
            let client = try await server.gearman(["-f", "rev", "hello"])
            #expect(client.exitCode == 0 && client.stdoutString == "olleh", "\(client)")
            let workerResult = await worker.wait(timeout: .seconds(30))
            #expect(workerResult.exitCode == 0, "\(workerResult)")
        }
    }

    @Test("--listen 0.0.0.0 without --allow-plaintext-on-network is refused with a message saying so")
    func refusesPlaintextOnNetwork() async throws {
        let port = try freeLoopbackPort()
        let result = try await runProcess(
            GearlockBinary.path, ["serve", "--listen", "0.0.0.0:\(port)", "--queue", "memory"], timeout: .seconds(10))
        #expect(!result.timedOut && !result.signalled && result.status != 0, "\(result)")
        let output = result.stderrString + result.stdoutString
        #expect(output.contains("--allow-plaintext-on-network"), "\(result)")
        #expect(output.contains("0.0.0.0:\(port)"), "the message names the listener: \(result)")
    }

    @Test("a header declaring a 4 GiB payload reserves no memory; other connections keep working")
    func hugeDeclaredSizeReservesNothing() async throws {
        try await withGearlockBinary { port, process in
            let before = try #require(residentBytes(of: process.pid))
            let greedy = try await RawClient.connect(host: "127.0.0.1", port: port, label: "greedy")
            var header = ByteBuffer(bytes: Magic.request)
            header.writeInteger(PacketType.submitJob.rawValue)
            header.writeInteger(UInt32.max)
            header.writeString("fn\0\0")
            try await greedy.sendRaw(header)
            let other = try await RawClient.connect(host: "127.0.0.1", port: port, label: "other")
            #expect(try await other.ping())
            #expect(try await other.adminCommand("version") == "OK \(JobServer.version)\n")
            let after = try #require(residentBytes(of: process.pid))
            #expect(after - before < 64 << 20, "RSS grew from \(before) to \(after) bytes")
            // 4 GiB - 1 is within the default limit: the connection just waits for the body.
            #expect(try await greedy.receiveIfAny(within: .milliseconds(200)) == nil)
        }
    }
}
