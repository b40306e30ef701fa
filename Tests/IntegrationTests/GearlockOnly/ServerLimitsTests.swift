import Foundation
import GearmanProtocol
import NIOCore
import Testing

/// `gearlock serve --max-connections / --max-connections-per-address / --max-queue-bytes` on loopback.
@Suite("Server-wide limits", .timeLimit(.minutes(2)))
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
