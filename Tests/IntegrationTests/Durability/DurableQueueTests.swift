import Foundation
import GearmanProtocol
import GearmanQueue
import GearmanServer
import Logging
import NIOCore
import NIOPosix
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `gearlock serve --queue sqlite:FILE`: background jobs survive a restart and a `kill -9`.
@Suite("Durable SQLite queue", .serialized, .timeLimit(.minutes(3)))
struct DurableQueueTests {
    static func temporaryDatabase() throws -> (directory: String, path: String) {
        let directory = NSTemporaryDirectory() + "gearlock-queue-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        return (directory, directory + "/queue.sqlite")
    }

    /// Starts `gearlock serve` on `path` and a free port; returns once it answers.
    static func startServer(queue path: String) async throws -> (port: Int, process: ChildProcess) {
        try await startServer(["--queue", "sqlite:\(path)"])
    }

    /// Starts `gearlock serve` with `arguments` (the queue options) on a free port; returns once it answers.
    static func startServer(_ arguments: [String]) async throws -> (port: Int, process: ChildProcess) {
        for _ in 0..<3 {
            let port = try freeLoopbackPort()
            let process = try ChildProcess(
                GearlockBinary.path, ["serve", "--listen", "127.0.0.1:\(port)", "--log-level", "error"] + arguments)
            do {
                try await waitUntilAnswering(port: port, pid: process.pid, stillRunning: { process.isRunning })
                return (port, process)
            } catch {
                _ = await process.terminate()
            }
        }
        throw RawClientError(description: "gearlock serve \(arguments.joined(separator: " ")) did not start")
    }

    /// Stops `process` gracefully (it must exit 0), starts a server on the same queue file, and
    /// drains `function` from it (see `drain`); the second server is stopped afterwards.
    static func stopRestartAndDrain(
        _ process: ChildProcess, queue path: String, function: String, count: Int,
        sourceLocation: SourceLocation = #_sourceLocation
    ) async throws -> [(String, String)] {
        let result = await process.terminate(grace: .seconds(20))
        #expect(result.exitCode == 0, "\(result)", sourceLocation: sourceLocation)
        let (port, restarted) = try await startServer(queue: path)
        defer { Task { _ = await restarted.terminate() } }
        return try await drain(port: port, function: function, count: count)
    }

    /// Grabs jobs until `count` arrived (or nothing more comes); returns (handle, payload) in order.
    static func drain(port: Int, function: String, count: Int) async throws -> [(String, String)] {
        let worker = try await RawClient.connect(host: "127.0.0.1", port: port, label: "drain")
        defer { Task { await worker.close() } }
        try await worker.canDo(function)
        var jobs: [(String, String)] = []
        var idle = 0
        while jobs.count < count && idle < 20 {
            let reply = try await worker.grab()
            guard reply.type == PacketType.jobAssign.rawValue else {
                idle += 1
                try await Task.sleep(for: .milliseconds(50))
                continue
            }
            idle = 0
            let handle = field(reply, 0)
            jobs.append((handle, field(reply, 2)))
            try await worker.send(.request(.workComplete, handle, "done"))
        }
        return jobs
    }

    @Test("A graceful restart keeps every background job: same handles, same order, same priority")
    func restartKeepsJobs() async throws {
        let (directory, path) = try Self.temporaryDatabase()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var submitted: [(String, String)] = []
        var high: [(String, String)] = []
        do {
            let (port, process) = try await Self.startServer(queue: path)
            let client = try await RawClient.connect(host: "127.0.0.1", port: port, label: "client")
            for index in 0..<40 {
                let payload = "job-\(index)"
                let type: PacketType = index % 10 == 9 ? .submitJobHighBackground : .submitJobBackground
                let handle = try await client.submit("durable.f", unique: index % 2 == 0 ? "" : "u\(index)", payload: payload, type: type)
                if type == .submitJobHighBackground { high.append((handle, payload)) } else { submitted.append((handle, payload)) }
            }
            await client.close()
            process.signal(SIGTERM)
            let stopped = await process.wait(timeout: .seconds(30))
            #expect(stopped.exitCode == 0, "\(stopped)")
        }
        let (port, process) = try await Self.startServer(queue: path)
        defer { Task { _ = await process.terminate() } }
        let drained = try await Self.drain(port: port, function: "durable.f", count: 40)
        let expected = high + submitted
        #expect(drained.map(\.0) == expected.map(\.0), "handles and order after restart")
        #expect(drained.map(\.1) == expected.map(\.1))
        // Completed jobs are gone from the store: another restart finds nothing.
        _ = await process.terminate()
        let (again, second) = try await Self.startServer(queue: path)
        let status = try await RawClient.connect(host: "127.0.0.1", port: again, label: "status")
        let after = try await status.adminCommand("status")
        #expect(!after.contains("durable.f\t") || after.contains("durable.f\t0\t0\t0\n"), "\(after)")
        await status.close()
        _ = await second.terminate()
    }

    @Test("A background job still running when a graceful stop gives up on it runs again after the restart")
    func runningJobRunsAgainAfterRestart() async throws {
        let (directory, path) = try Self.temporaryDatabase()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let queue = ["--queue", "sqlite:\(path)", "--shutdown-timeout", "1"]
        let handle: String
        do {
            let (port, process) = try await Self.startServer(queue)
            let client = try await RawClient.connect(host: "127.0.0.1", port: port, label: "client")
            handle = try await client.submit("running.f", payload: "keep-me", type: .submitJobBackground)
            _ = try await client.submit("running.f", payload: "queued", type: .submitJobBackground)
            let worker = try await RawClient.connect(host: "127.0.0.1", port: port, label: "worker")
            try await worker.canDo("running.f")
            let assigned = try await worker.grab()
            #expect(assigned.type == PacketType.jobAssign.rawValue && field(assigned, 0) == handle, "\(assigned)")
            // The worker never finishes: the stop waits --shutdown-timeout, then closes everything.
            process.signal(SIGTERM)
            let stopped = await process.wait(timeout: .seconds(15))
            #expect(stopped.exitCode == 0, "\(stopped)")
            await worker.close()
            await client.close()
        }
        let (port, process) = try await Self.startServer(queue)
        defer { Task { _ = await process.terminate() } }
        let drained = try await Self.drain(port: port, function: "running.f", count: 2)
        #expect(drained.map(\.1) == ["keep-me", "queued"], "the interrupted job first, as it was first queued")
        #expect(drained.first?.0 == handle, "with its handle")
    }

    @Test("kill -9 mid-stream loses no acknowledged background job")
    func crashLosesNothingAcknowledged() async throws {
        let (directory, path) = try Self.temporaryDatabase()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try await Self.crashLosesNothingAcknowledged(total: 4000, queue: ["--queue", "sqlite:\(path)"])
    }

    /// Pipelines `total` background submissions (half with distinct uniques, half with empty ones)
    /// to a server started with `queue`, `kill -9`s it once a quarter are acknowledged, restarts it
    /// with the same options and drains: every acknowledged job must come back, with its handle,
    /// exactly once.
    static func crashLosesNothingAcknowledged(total: Int, queue: [String], label: String = "sqlite") async throws {
        var acknowledged: [(handle: String, payload: String)] = []
        var ended = "every submission acknowledged"
        do {
            let (port, process) = try await startServer(queue)
            let client = try await RawClient.connect(host: "127.0.0.1", port: port, label: "submitter")
            // Pipelined: every submission is written up front; the server is killed while it is
            // still acknowledging them.
            var bytes = ByteBuffer()
            for index in 0..<total {
                var packet = RawPacket.request(
                    .submitJobBackground, "crash.f", index % 2 == 0 ? "" : "u-\(index)", "job-\(index)"
                ).wireBytes
                bytes.writeBuffer(&packet)
            }
            try await client.sendRaw(bytes)
            var index = 0
            while index < total {
                let frame: RawFrame
                do {
                    frame = try await client.receive(timeout: .seconds(60))
                } catch {
                    ended = "\(error)"
                    break
                }
                guard case .packet(let packet) = frame, packet.type == PacketType.jobCreated.rawValue else {
                    ended = "\(frame)"
                    break
                }
                acknowledged.append((String(buffer: packet.payload), "job-\(index)"))
                index += 1
                if index == total / 4 { process.signal(SIGKILL) }
            }
            let killed = await process.wait(timeout: .seconds(30))
            #expect(killed.signalled, "\(killed)")
            await client.close()
        }
        #expect(acknowledged.count >= total / 4, "the server acknowledged jobs before it was killed; receiving ended: \(ended)")

        let (port, process) = try await startServer(queue)
        defer { Task { _ = await process.terminate() } }
        let drained = try await drain(port: port, function: "crash.f", count: total)
        var delivered: [String: [String]] = [:]
        for (handle, payload) in drained { delivered[payload, default: []].append(handle) }
        let lost = acknowledged.filter { delivered[$0.payload] == nil }
        let wrongHandle = acknowledged.filter { job in delivered[job.payload].map { !$0.contains(job.handle) } ?? false }
        let duplicates = delivered.values.filter { $0.count > 1 }.count
        #expect(lost.isEmpty, "\(lost.count) of \(acknowledged.count) acknowledged jobs lost: \(lost.prefix(5))")
        #expect(
            acknowledged.allSatisfy { delivered[$0.payload]?.first == $0.handle }, "same handles after the crash: \(wrongHandle.prefix(3))")
        #expect(duplicates == 0, "duplicates: \(duplicates)")
        print("crash test (\(label)): \(acknowledged.count) acknowledged before kill -9, \(drained.count) delivered after restart, \(duplicates) duplicates, \(lost.count) lost")
    }

    @Test("A damaged database file, a read-only location and a locked file each stop start-up with a clear error")
    func startUpErrors() async throws {
        let (directory, path) = try Self.temporaryDatabase()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try Data(repeating: 0x5A, count: 8192).write(to: URL(fileURLWithPath: path))
        let damaged = try await runProcess(
            GearlockBinary.path, ["serve", "--listen", "127.0.0.1:\(try freeLoopbackPort())", "--queue", "sqlite:\(path)"],
            timeout: .seconds(20))
        #expect(damaged.exitCode != 0 && !damaged.timedOut, "\(damaged)")
        #expect(damaged.stderrString.contains("is not a SQLite database or is damaged"), "\(damaged)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == Data(repeating: 0x5A, count: 8192), "left untouched")

        // sysfs is read-only even for root.
        let readOnly = try await runProcess(
            GearlockBinary.path,
            ["serve", "--listen", "127.0.0.1:\(try freeLoopbackPort())", "--queue", "sqlite:/sys/gearlock-queue.sqlite"],
            timeout: .seconds(20))
        #expect(readOnly.exitCode != 0 && !readOnly.timedOut, "\(readOnly)")
        #expect(readOnly.stderrString.contains("/sys"), "\(readOnly)")

        let fresh = directory + "/locked.sqlite"
        let (_, first) = try await Self.startServer(queue: fresh)
        defer { Task { _ = await first.terminate() } }
        let second = try await runProcess(
            GearlockBinary.path, ["serve", "--listen", "127.0.0.1:\(try freeLoopbackPort())", "--queue", "sqlite:\(fresh)"],
            timeout: .seconds(20))
        #expect(second.exitCode != 0 && !second.timedOut, "\(second)")
        #expect(second.stderrString.contains("another gearlock server is using"), "\(second)")
    }

    @Test("Removals share commits while workers drain, and a stop commits the ones still waiting")
    func removalsAreBatchedAndFlushedOnStop() async throws {
        let eventLoopGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { eventLoopGroup.shutdownGracefully { _ in } }
        let store = RecordingQueueStore()
        let server = JobServer(
            configuration: gearlockConfiguration(ServerOptions()), queueStore: store,
            eventLoopGroup: eventLoopGroup, logger: Logger(label: "recording-store") { _ in SwiftLogNoOpLogHandler() })
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await server.run() }
            let port = try #require(try await server.listeningAddresses().first?.port)
            let client = try await RawClient.connect(host: "127.0.0.1", port: port, label: "client")
            for index in 0..<50 {
                _ = try await client.submit("batch.f", payload: "job-\(index)", type: .submitJobBackground)
            }
            // One worker holds all 50 jobs, then finishes them in one write: their removals arrive
            // within one read and wait to share a commit.
            let holder = try await RawClient.connect(host: "127.0.0.1", port: port, label: "holder")
            try await holder.canDo("batch.f")
            var handles: [String] = []
            for _ in 0..<50 {
                let assigned = try await holder.grab()
                #expect(assigned.type == PacketType.jobAssign.rawValue)
                handles.append(field(assigned, 0))
            }
            let before = store.batches.count
            var completions = ByteBuffer()
            for handle in handles {
                var packet = RawPacket.request(.workComplete, handle, "done").wireBytes
                completions.writeBuffer(&packet)
            }
            try await holder.sendRaw(completions)
            _ = try await holder.adminCommand("version")  // every completion was processed
            try await Task.sleep(for: .milliseconds(300))
            let removalBatches = store.batches.dropFirst(before)
            #expect(
                Set(removalBatches.flatMap(\.removedHandles).map { String(buffer: $0) }) == Set(handles),
                "every finished job removed")
            #expect(removalBatches.count <= 3, "50 removals in \(removalBatches.map(\.removedHandles.count)) commits")
            // (GroupCommitTests shows, on a clock the test moves, that removals in separate reads wait.)
            await holder.close()

            // A removal still waiting when the server stops is committed before it stops.
            let handle = try await client.submit("batch.f", payload: "last", type: .submitJobBackground)
            let worker = try await RawClient.connect(host: "127.0.0.1", port: port, label: "worker")
            try await worker.canDo("batch.f")
            _ = try await worker.grab()
            try await worker.send(.request(.workComplete, handle, "done"))
            _ = try await worker.adminCommand("version")  // the completion was processed
            // Usually within the 20 ms its removal waits (on a slow machine it may already be committed).
            group.cancelAll()  // the server stops at once
            _ = try? await group.next()
            #expect(store.batches.flatMap(\.removedHandles).map { String(buffer: $0) }.contains(handle))
            await worker.close()
            await client.close()
        }
    }

    @Test("A failed commit answers QUEUE_ERROR and queues nothing")
    func failedCommitIsRefused() async throws {
        let eventLoopGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { eventLoopGroup.shutdownGracefully { _ in } }
        let server = JobServer(
            configuration: gearlockConfiguration(ServerOptions()), queueStore: FailingQueueStore(),
            eventLoopGroup: eventLoopGroup, logger: Logger(label: "failing-store") { _ in SwiftLogNoOpLogHandler() })
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await server.run() }
            let port = try #require(try await server.listeningAddresses().first?.port)
            let client = try await RawClient.connect(host: "127.0.0.1", port: port, label: "client")
            try await client.send(RawPacket.request(.submitJobBackground, "f", "u", "x"))
            #expect(try await client.receivePacket() == .error("QUEUE_ERROR", "The job could not be stored durably"))
            // Foreground jobs need no commit.
            _ = try await client.submit("f", payload: "y")
            #expect(try await client.adminCommand("status") == "f\t1\t0\t0\n.\n", "only the foreground job")
            await client.close()
            group.cancelAll()
        }
    }
}

/// A store that keeps every batch it was asked to commit, and commits at once.
final class RecordingQueueStore: QueueStore, @unchecked Sendable {
    private let lock = NSLock()
    private var recorded: [QueueBatch] = []

    var batches: [QueueBatch] { lock.withLock { recorded } }

    func commit(_ batch: QueueBatch, completion: @escaping @Sendable (Result<Void, QueueStoreError>) -> Void) {
        lock.withLock { recorded.append(batch) }
        completion(.success(()))
    }

    func loadAll() async throws(QueueStoreError) -> [StoredJob] { [] }
}

/// A store whose every commit fails, as on a full disk.
struct FailingQueueStore: QueueStore {
    func commit(_ batch: QueueBatch, completion: @escaping @Sendable (Result<Void, QueueStoreError>) -> Void) {
        completion(.failure(QueueStoreError(.ioError, "disk full")))
    }

    func loadAll() async throws(QueueStoreError) -> [StoredJob] { [] }
}
