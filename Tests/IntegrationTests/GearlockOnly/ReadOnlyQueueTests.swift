import Foundation
import GearmanProtocol
import NIOCore
import Testing

/// The queue's file system turns read-only while `gearlock serve` runs (see
/// `ReadOnlyFileSystemShim`): nothing acknowledged may be lost, and nothing refused may come back.
@Suite("Read-only queue database (gearlock serve)", .serialized, .timeLimit(.minutes(3)))
struct ReadOnlyQueueTests {
    @Test("The queue's file system turns read-only while serving: background submissions get ERROR QUEUE_ERROR and the log says why, foreground jobs and admin go on; once writable again submissions succeed, and a restart replays every acknowledged job and no refused one")
    func turnsReadOnlyWhileServing() async throws {
        let shim = try ReadOnlyFileSystemShim()
        defer { shim.remove() }
        let path = shim.directory + "/queue.sqlite"
        let (port, process) = try await Self.startServer(queue: path, shim: shim)
        var stopped = false
        defer { if !stopped { Task { _ = await process.terminate() } } }

        let client = try await RawClient.connect(host: "127.0.0.1", port: port, label: "client")
        var acknowledged: [String: String] = [:]  // handle → payload
        var refusedPayloads: Set<String> = []
        func submitBackground(_ payload: String) async throws {
            try await client.send(.request(.submitJobBackground, "ro.f", "", payload))
            let reply = try await client.receivePacket()
            if reply.packetType == .jobCreated {
                acknowledged[String(buffer: reply.payload)] = payload
            } else {
                #expect(reply == .error("QUEUE_ERROR", "The job could not be stored durably"), "a clear error: \(reply)")
                refusedPayloads.insert(payload)
            }
        }
        for index in 0..<20 { try await submitBackground("before-\(index)") }
        #expect(acknowledged.count == 20 && refusedPayloads.isEmpty, "a writable file system takes every job")

        try shim.makeReadOnly()
        for index in 0..<30 { try await submitBackground("read-only-\(index)") }
        #expect(refusedPayloads.count == 30, "a read-only file system refuses every background job: \(refusedPayloads.count)")
        #expect(shim.refusals > 0, "the server's writes met EROFS")

        // A job completed meanwhile: its removal cannot be written, so it may run again after the
        // restart (at least once) but must not be lost. Foreground jobs need no disk.
        let worker = try await RawClient.connect(host: "127.0.0.1", port: port, label: "worker")
        try await worker.canDo("ro.f")
        let assigned = try await worker.grab()
        #expect(assigned.packetType == .jobAssign)
        let doneWhileReadOnly = field(assigned, 0)
        try await worker.send(.request(.workComplete, doneWhileReadOnly, "done"))
        let foregroundWorker = try await RawClient.connect(host: "127.0.0.1", port: port, label: "foreground worker")
        try await foregroundWorker.canDo("ro.fg")
        let foreground = try await client.submit("ro.fg", payload: "in memory")
        #expect(try await foregroundWorker.grab() == .response(.jobAssign, foreground, "ro.fg", "in memory"))
        try await foregroundWorker.send(.request(.workComplete, foreground, "ok"))
        #expect(try await client.receive() == .packet(.response(.workComplete, foreground, "ok")))
        #expect(try await client.adminCommand("version").hasPrefix("OK "))
        var log = ""
        let logDeadline = ContinuousClock.now + .seconds(20)
        repeat {
            log = String(decoding: process.outputSoFar.stderr, as: UTF8.self)
            if log.contains(path) && log.contains("read-only") { break }
            try await Task.sleep(for: .milliseconds(50))
        } while ContinuousClock.now < logDeadline
        #expect(log.contains(path) && log.contains("read-only"), "the log names the queue and says it is read-only: \(log.suffix(3000))")

        try shim.makeWritable()
        for index in 0..<10 { try await submitBackground("after-\(index)") }
        #expect(acknowledged.count == 30, "writable again: the store recovers (\(acknowledged.count - 20) of 10 taken)")
        await worker.close()
        await foregroundWorker.close()
        await client.close()

        // A graceful stop, a restart without the fault: every acknowledged job is there once (the one
        // completed while read-only may be there too), no refused one.
        stopped = true
        let drained = try await DurableQueueTests.stopRestartAndDrain(
            process, queue: path, function: "ro.f", count: acknowledged.count + 30)
        let delivered = Dictionary(grouping: drained, by: { $0.0 })
        for (handle, payload) in acknowledged where handle != doneWhileReadOnly {
            #expect(delivered[handle]?.count == 1 && delivered[handle]?.first?.1 == payload, "\(handle) after the restart")
        }
        #expect((delivered[doneWhileReadOnly]?.count ?? 0) <= 1)
        let refusedBack = drained.filter { refusedPayloads.contains($0.1) }
        #expect(refusedBack.isEmpty, "refused jobs came back: \(refusedBack.prefix(3))")
        #expect(drained.count == acknowledged.count || drained.count == acknowledged.count - 1, "\(drained.count) replayed")
    }

    /// `gearlock serve` with the shim preloaded, on a free port; returns once it answers.
    static func startServer(queue path: String, shim: ReadOnlyFileSystemShim) async throws -> (port: Int, process: ChildProcess) {
        for _ in 0..<3 {
            let port = try freeLoopbackPort()
            let process = try ChildProcess(
                "/usr/bin/env",
                shim.environment + [
                    GearlockBinary.path, "serve", "--listen", "127.0.0.1:\(port)", "--log-level", "warning",
                    "--queue", "sqlite:\(path)",
                ])
            do {
                try await waitUntilAnswering(port: port, pid: process.pid, stillRunning: { process.isRunning })
                return (port, process)
            } catch {
                _ = await process.terminate()
            }
        }
        throw RawClientError(description: "gearlock serve with the read-only shim did not start")
    }
}
