import Foundation
import GearmanProtocol
import NIOCore
import Testing

/// `gearlock serve --max-connections / --max-connections-per-address / --max-queue-bytes` on loopback.
@Suite("Server-wide limits", .serialized, .timeLimit(.minutes(2)))
struct ServerLimitsBinaryTests {
    @Test("One connection over --max-connections gets QUOTA_EXCEEDED and is closed; the others go on")
    func connectionLimit() async throws {
        let (port, process) = try await DurableQueueTests.startServer(["--queue", "memory", "--max-connections", "3"])
        defer { Task { _ = await process.terminate() } }
        // startServer's probe connection may not be gone yet: a kept connection that is refused
        // meanwhile is made again.
        var kept: [RawClient] = []
        for index in 0..<3 {
            for _ in 0..<20 {
                let client = try await RawClient.connect(host: "127.0.0.1", port: port, label: "kept-\(index)")
                if (try? await client.adminCommand("version", timeout: .seconds(2)))?.hasPrefix("OK ") == true {
                    kept.append(client)
                    break
                }
                await client.close()
                try await Task.sleep(for: .milliseconds(100))
            }
        }
        #expect(kept.count == 3)
        let extra = try await RawClient.connect(host: "127.0.0.1", port: port, label: "extra")
        let refusal = try await extra.receivePacket()
        #expect(refusal.type == PacketType.error.rawValue, "\(refusal)")
        #expect(String(buffer: refusal.payload).hasPrefix("QUOTA_EXCEEDED\0Too many connections"), "\(refusal)")
        await extra.close()
        for client in kept {
            #expect(try await client.adminCommand("version").hasPrefix("OK "), "the admitted connections still work")
        }
        await kept[0].close()
        // Room again once one left (the server notices the close a moment later).
        var admitted = false
        for _ in 0..<50 where !admitted {
            let again = try await RawClient.connect(host: "127.0.0.1", port: port, label: "again")
            admitted = (try? await again.adminCommand("version", timeout: .seconds(2)))?.hasPrefix("OK ") ?? false
            await again.close()
            if !admitted { try await Task.sleep(for: .milliseconds(100)) }
        }
        #expect(admitted)
        for client in kept.dropFirst() { await client.close() }
    }

    @Test("--max-connections-per-address: the third connection from 127.0.0.2 gets QUOTA_EXCEEDED; 127.0.0.3 is still admitted")
    func connectionLimitPerAddress() async throws {
        try await withGearlockBinary(["--max-connections-per-address", "2"]) { port, _ in
            var kept: [RawClient] = []
            for index in 0..<2 {
                let client = try await RawClient.connect(host: "127.0.0.1", port: port, label: "kept-\(index)", from: "127.0.0.2")
                #expect(try await client.ping())
                kept.append(client)
            }
            let extra = try await RawClient.connect(host: "127.0.0.1", port: port, label: "extra", from: "127.0.0.2")
            let refusal = try await extra.receivePacket()
            #expect(refusal.type == PacketType.error.rawValue, "\(refusal)")
            #expect(String(buffer: refusal.payload).hasPrefix("QUOTA_EXCEEDED\0"), "\(refusal)")
            _ = try await extra.framesUntilClose()
            let other = try await RawClient.connect(host: "127.0.0.1", port: port, label: "other", from: "127.0.0.3")
            #expect(try await other.ping(), "another address has its own count")
            for client in kept { #expect(try await client.ping(), "the admitted connections still work") }
            for client in kept + [other] { await client.close() }
        }
    }

    @Test("A submission over --max-queue-bytes gets QUEUE_ERROR, nothing is queued, and the server goes on")
    func queueByteLimit() async throws {
        let (port, process) = try await DurableQueueTests.startServer([
            "--queue", "memory", "--max-queue-bytes", "250", "--max-connections-per-address", "10",
        ])
        defer { Task { _ = await process.terminate() } }
        let client = try await RawClient.connect(host: "127.0.0.1", port: port, label: "client")
        let payload = String(repeating: "p", count: 100)
        _ = try await client.submit("limits.f", payload: payload, type: .submitJobBackground)
        _ = try await client.submit("limits.f", payload: payload, type: .submitJobBackground)
        try await client.send(RawPacket.request(.submitJobBackground, "limits.f", "", payload))
        #expect(try await client.receivePacket() == .error("QUEUE_ERROR", "Queue memory limit reached"))
        #expect(try await client.adminCommand("status") == "limits.f\t2\t0\t0\n.\n")
        await client.close()
    }

    @Test("gearlock serve raises its soft open-file limit to the hard one")
    func openFileLimitIsRaised() async throws {
        let port = try freeLoopbackPort()
        // prlimit (util-linux) starts the server with a soft limit of 256 under the current hard one.
        let hard = try #require(Self.limits(of: getpid())?.hard)
        let process = try ChildProcess(
            "/usr/bin/prlimit",
            ["--nofile=256:\(hard)", GearlockBinary.path, "serve", "--listen", "127.0.0.1:\(port)", "--queue", "memory"])
        defer { Task { _ = await process.terminate() } }
        try await waitUntilAnswering(port: port, pid: process.pid, stillRunning: { process.isRunning })
        let limits = try #require(Self.limits(of: process.pid))
        #expect(limits.soft == hard && limits.hard == hard, "\(limits)")
    }

    @Test("Accepted connections have TCP keepalive on (the kernel's keepalive timer runs on the server's socket)")
    func keepaliveOnAcceptedSockets() async throws {
        try await withGearlockBinary { port, _ in
            let idle = try await RawClient.connect(host: "127.0.0.1", port: port, label: "idle")
            #expect(try await idle.ping())
            // /proc/net/tcp: local address, remote address, state (01 = ESTABLISHED), queues, then
            // "timer:when", where timer 2 is the keepalive timer. Without SO_KEEPALIVE an idle
            // established socket has no timer (0).
            let hex = String(port, radix: 16, uppercase: true)
            let hexPort = String(repeating: "0", count: max(0, 4 - hex.count)) + hex
            // (cat: Foundation reads only the first page of this seq_file.)
            let text = try await runProcess("/bin/cat", ["/proc/net/tcp"]).stdoutString
            let suffix = ":" + hexPort
            let rows: [[Substring]] = text.split(separator: "\n").dropFirst().map { $0.split(separator: " ") }
            let accepted = rows.filter { (row: [Substring]) -> Bool in
                row.count > 5 && row[1].hasSuffix(suffix) && row[3] == "01"
            }
            #expect(!accepted.isEmpty, "the server's end of the connection is in /proc/net/tcp")
            for socket in accepted {
                #expect(socket[5].hasPrefix("02:"), "timer field \(socket[5]) of \(socket[1]) -> \(socket[2])")
            }
            await idle.close()
        }
    }

    /// The soft and hard "Max open files" of `pid`, from /proc.
    static func limits(of pid: pid_t) -> (soft: Int, hard: Int)? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/limits", encoding: .utf8),
            let line = text.split(separator: "\n").first(where: { $0.hasPrefix("Max open files") })
        else { return nil }
        let numbers = line.split(separator: " ").compactMap { Int($0) }
        guard numbers.count >= 2 else { return nil }
        return (numbers[0], numbers[1])
    }
}
