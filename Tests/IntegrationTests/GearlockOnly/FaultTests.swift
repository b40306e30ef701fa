import Foundation
import GearmanProtocol
import NIOCore
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Faults against a real `gearlock serve`: workers SIGKILLed mid-job, a client vanishing while its
/// job runs, the queue's disk filling up. (The server killed under load: `DurableQueueTests`.)
@Suite("Faults (gearlock serve)", .serialized, .timeLimit(.minutes(3)))
struct FaultTests {
    @Test("Workers (gearlock work) SIGKILLed at random mid-job: every foreground job ends exactly once for its client, completed or failed after the retry cap")
    func workersKilledAtRandom() async throws {
        try await withGearlockBinary(["--job-retries", "3"]) { port, process in
            let address = "127.0.0.1:\(port)"
            let workers = WorkerFleet(address: address, function: "fault.echo", command: ["sh", "-c", "sleep 0.2; cat"])
            defer { workers.killAll() }
            for _ in 0..<4 { try workers.start() }

            // 3 clients × 15 pipelined foreground jobs, each payload unique.
            let clients = try await (0..<3).asyncMap { try await RawClient.connect(host: "127.0.0.1", port: port, label: "client-\($0)") }
            var expected: [String: String] = [:]  // handle → payload
            for (index, client) in clients.enumerated() {
                var batch = ByteBuffer()
                for job in 0..<15 {
                    var packet = RawPacket.request(.submitJob, "fault.echo", "", "job-\(index)-\(job)").wireBytes
                    batch.writeBuffer(&packet)
                }
                try await client.sendRaw(batch)
            }

            let killer = Task {
                var generator = SeededGenerator(seed: 0x6B69_6C6C)
                var kills = 0
                while !Task.isCancelled {
                    try? await Task.sleep(for: .milliseconds(Int.random(in: 150...450, using: &generator)))
                    guard !Task.isCancelled else { break }
                    workers.killOne(using: &generator)
                    kills += 1
                    try? workers.start()
                }
                return kills
            }

            var finals: [String: [RawPacket]] = [:]
            for (index, client) in clients.enumerated() {
                var created = 0
                var finished = 0
                while created < 15 || finished < created {
                    let packet = try await client.receivePacket(timeout: .seconds(60))
                    switch packet.packetType {
                    case .jobCreated?:
                        expected[packet.firstField] = "job-\(index)-\(created)"
                        created += 1
                    case .workComplete?, .workFail?:
                        finals[packet.firstField, default: []].append(packet)
                        finished += 1
                    case .workStatus?, .workData?, .workWarning?:
                        continue
                    default:
                        Issue.record("client-\(index): unexpected \(packet)")
                        finished += 1
                    }
                }
            }
            killer.cancel()
            let kills = await killer.value
            // Nothing more arrives for any job: no second result.
            for client in clients {
                #expect(try await client.receiveIfAny(within: .milliseconds(500)) == nil)
            }
            #expect(finals.count == 45 && Set(finals.keys) == Set(expected.keys), "every job ended: \(finals.count) of 45")
            var completed = 0
            var failed = 0
            for (handle, packets) in finals {
                #expect(packets.count == 1, "\(handle) ended \(packets.count) times: \(packets)")
                guard let last = packets.last else { continue }
                if last.packetType == .workComplete {
                    completed += 1
                    #expect(String(buffer: last.arguments(2)[1]) == expected[handle], "\(handle): \(last)")
                } else {
                    failed += 1
                }
            }
            #expect(kills > 0)
            #expect(completed > 0, "some jobs complete despite the kills")
            print("workers killed at random: \(kills) kills, \(completed) completed, \(failed) failed after 3 retries")
            #expect(process.isRunning)
            let probe = try await RawClient.connect(host: "127.0.0.1", port: port, label: "probe")
            let status = try await probe.adminCommand("status")
            #expect(status.hasPrefix("fault.echo\t0\t0\t"), "no job left behind: \(reprString(status))")
            for client in clients + [probe] { await client.close() }
        }
    }

    @Test("A client that vanishes while its foreground job runs: the worker finishes undisturbed, a coalesced client still gets the result, the job is gone")
    func clientVanishesMidJob() async throws {
        try await withGearlockBinary { port, process in
            let worker = try await RawClient.connect(host: "127.0.0.1", port: port, label: "worker")
            try await worker.canDo("fault.slow")
            let leaver = try await RawClient.connect(host: "127.0.0.1", port: port, label: "leaver")
            let stayer = try await RawClient.connect(host: "127.0.0.1", port: port, label: "stayer")
            let handle = try await leaver.submit("fault.slow", unique: "shared", payload: "x")
            #expect(try await worker.grab() == .response(.jobAssign, handle, "fault.slow", "x"))
            #expect(try await stayer.submit("fault.slow", unique: "shared", payload: "x") == handle)
            let alone = try await RawClient.connect(host: "127.0.0.1", port: port, label: "alone")
            let aloneHandle = try await alone.submit("fault.slow", unique: "alone", payload: "y")
            #expect(try await worker.grab() == .response(.jobAssign, aloneHandle, "fault.slow", "y"))
            // A job still queued when its only client leaves is dropped (no worker runs it for nobody).
            let quitter = try await RawClient.connect(host: "127.0.0.1", port: port, label: "quitter")
            _ = try await quitter.submit("fault.slow", unique: "queued", payload: "q")

            await leaver.abort()  // reset, as when the client process dies
            await alone.close()
            await quitter.close()
            // The server notices the closes a moment later: the queued job goes, the running ones stay.
            var status = ""
            for _ in 0..<200 {
                status = try await stayer.adminCommand("status")
                if status == "fault.slow\t2\t2\t1\n.\n" { break }
                try await Task.sleep(for: .milliseconds(50))
            }
            #expect(status == "fault.slow\t2\t2\t1\n.\n", "\(reprString(status))")
            try await worker.send(.request(.workStatus, handle, "1", "2"))
            try await worker.send(.request(.workData, handle, "partial"))
            try await worker.send(.request(.workComplete, handle, "result"))
            #expect(try await stayer.receive() == .packet(.response(.workStatus, handle, "1", "2")))
            #expect(try await stayer.receive() == .packet(.response(.workData, handle, "partial")))
            #expect(try await stayer.receive() == .packet(.response(.workComplete, handle, "result")))

            // The job whose only client left still runs to its end on the worker, which gets no error.
            try await worker.send(.request(.workData, aloneHandle, "to nobody"))
            try await worker.send(.request(.workComplete, aloneHandle, "done"))
            #expect(try await worker.ping(), "the worker got no error for reporting to vanished clients")
            #expect(try await worker.grab() == .response(.noJob), "the abandoned queued job was dropped")
            #expect(try await stayer.adminCommand("status") == "fault.slow\t0\t0\t1\n.\n", "every job is gone")
            #expect(try await stayer.adminCommand("show jobs") == ".\n")
            let next = try await stayer.submit("fault.slow", payload: "z")
            #expect(try await worker.grab() == .response(.jobAssign, next, "fault.slow", "z"))
            try await worker.send(.request(.workComplete, next, "fine"))
            #expect(try await stayer.receive() == .packet(.response(.workComplete, next, "fine")))
            #expect(process.isRunning)
            await worker.close()
            await stayer.close()
        }
    }

    @Test("The queue's disk fills up under load: submissions get ERROR QUEUE_ERROR, foreground jobs go on; once space is freed submissions succeed, and a restart replays every acknowledged job")
    func diskFull() async throws {
        let mount = try SmallFileSystem(megabytes: 2)
        defer { mount.remove() }
        let path = mount.directory + "/queue.sqlite"
        let (port, process) = try await DurableQueueTests.startServer(queue: path)
        var stopped = false
        defer { if !stopped { Task { _ = await process.terminate() } } }

        let client = try await RawClient.connect(host: "127.0.0.1", port: port, label: "client")
        var acknowledged: [(handle: String, payload: String)] = []
        var refused = 0
        func submitBackground(_ index: Int) async throws {
            let payload = "job-\(index)-" + String(repeating: "p", count: 8000)
            try await client.send(.request(.submitJobBackground, "full.f", "", payload))
            let reply = try await client.receivePacket()
            if reply.packetType == .jobCreated {
                acknowledged.append((String(buffer: reply.payload), payload))
            } else {
                #expect(reply == .error("QUEUE_ERROR", "The job could not be stored durably"), "a clear error: \(reply)")
                refused += 1
            }
        }
        for index in 0..<20 { try await submitBackground(index) }
        #expect(refused == 0, "room enough before the filler")

        let filler = mount.directory + "/filler"
        try mount.fill(path: filler)
        for index in 20..<120 { try await submitBackground(index) }
        #expect(refused > 0, "a full disk refuses submissions")
        let refusedWhileFull = refused
        // Foreground jobs need no disk.
        let worker = try await RawClient.connect(host: "127.0.0.1", port: port, label: "worker")
        try await worker.canDo("full.fg")
        let foreground = try await client.submit("full.fg", payload: "in memory")
        #expect(try await worker.grab() == .response(.jobAssign, foreground, "full.fg", "in memory"))
        try await worker.send(.request(.workComplete, foreground, "ok"))
        #expect(try await client.receive() == .packet(.response(.workComplete, foreground, "ok")))
        #expect(try await client.adminCommand("version").hasPrefix("OK "))

        try FileManager.default.removeItem(atPath: filler)
        let acknowledgedBefore = acknowledged.count
        for index in 120..<130 { try await submitBackground(index) }
        #expect(refused == refusedWhileFull && acknowledged.count == acknowledgedBefore + 10, "space freed: the store recovers")
        await worker.close()
        await client.close()

        // A graceful stop and a restart: every acknowledged job is there, once, with its handle.
        stopped = true
        let drained = try await DurableQueueTests.stopRestartAndDrain(
            process, queue: path, function: "full.f", count: acknowledged.count + refused)
        let delivered = Dictionary(grouping: drained, by: { $0.0 })
        for job in acknowledged {
            #expect(delivered[job.handle]?.count == 1 && delivered[job.handle]?.first?.1 == job.payload, "\(job.handle) after the restart")
        }
        print("disk full: \(acknowledged.count) acknowledged, \(refused) refused, \(drained.count) replayed")
    }
}

/// `gearlock work` processes for one function, started and SIGKILLed by a test.
final class WorkerFleet: @unchecked Sendable {
    private let lock = NSLock()
    private var workers: [ChildProcess] = []
    let address: String
    let function: String
    let command: [String]

    init(address: String, function: String, command: [String]) {
        self.address = address
        self.function = function
        self.command = command
    }

    func start() throws {
        let worker = try ChildProcess(
            GearlockBinary.path, ["work", "-s", address, "-f", function, "--log-level", "critical", "--"] + command)
        lock.withLock { workers.append(worker) }
    }

    /// SIGKILLs one running worker picked by `generator` (its job's command is left to finish alone).
    func killOne(using generator: inout SeededGenerator) {
        let running = lock.withLock { workers.filter(\.isRunning) }
        guard let victim = running.randomElement(using: &generator) else { return }
        victim.signal(SIGKILL)
    }

    func killAll() {
        for worker in lock.withLock({ workers }) where worker.isRunning { worker.killTree() }
    }
}

/// A tmpfs of a few megabytes mounted on a fresh directory (needs root, as the tests run in CI).
struct SmallFileSystem {
    let directory: String

    init(megabytes: Int) throws {
        directory = NSTemporaryDirectory() + "gearlock-small-fs-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let result = try Self.run("/bin/mount", ["-t", "tmpfs", "-o", "size=\(megabytes)m,mode=0700", "tmpfs", directory])
        guard result == 0 else {
            throw RawClientError(description: "mount -t tmpfs on \(directory) failed (\(result)): this test needs root")
        }
    }

    /// Writes `path` until the file system is full.
    func fill(path: String) throws {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        guard descriptor >= 0 else { throw RawClientError(description: "cannot create \(path)") }
        defer { close(descriptor) }
        let chunk = [UInt8](repeating: 0x46, count: 4096)
        while chunk.withUnsafeBytes({ write(descriptor, $0.baseAddress, $0.count) }) > 0 {}
        guard errno == ENOSPC else { throw RawClientError(description: "filling \(path) stopped with errno \(errno)") }
    }

    func remove() {
        _ = try? Self.run("/bin/umount", ["-l", directory])
        try? FileManager.default.removeItem(atPath: directory)
    }

    private static func run(_ executable: String, _ arguments: [String]) throws -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        try process.run()
        process.waitUntilExit()
        return process.terminationStatus
    }
}

extension Sequence {
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var results: [T] = []
        for element in self { results.append(try await transform(element)) }
        return results
    }
}
