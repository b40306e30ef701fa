import Foundation
import GearmanProtocol
import NIOCore
import Testing

/// Hostile peers against a real `gearlock serve` on loopback: slow-loris, connection churn, garbage
/// from many connections, truncated packets. Each gets an error or a closed connection; nobody else
/// is harmed; the server still answers `version` and gives its file descriptors back.
@Suite("Hostile peers (gearlock serve)", .serialized, .timeLimit(.minutes(3)))
struct HostilePeerTests {
    @Test("A slow-loris dribbling a byte a second gets ERROR TIMEOUT and is closed; a slow but steady peer, idle workers and everyone else go on")
    func slowLoris() async throws {
        try await withGearlockBinary(["--packet-timeout", "1"]) { port, process in
            let worker = try await RawClient.connect(host: "127.0.0.1", port: port, label: "worker")
            try await worker.canDo("loris.f")
            let binaryDribbler = try await RawClient.connect(host: "127.0.0.1", port: port, label: "binary-dribbler")
            let textDribbler = try await RawClient.connect(host: "127.0.0.1", port: port, label: "text-dribbler")
            let packet = Array(RawPacket.request(.submitJob, "loris.f", "", "never-finished").wireBytes.readableBytesView)
            let line = Array("status\n".utf8)
            let dribbling = Task {
                await withTaskGroup(of: Void.self) { group in
                    for (client, bytes) in [(binaryDribbler, packet), (textDribbler, line)] {
                        group.addTask {
                            // A byte a second, as long as the server listens (the packet never completes
                            // within the test: the line's newline would come after 6 s).
                            for byte in bytes.dropLast() {
                                guard (try? await client.sendRaw([byte])) != nil, !Task.isCancelled else { return }
                                try? await Task.sleep(for: .seconds(1))
                            }
                        }
                    }
                }
            }
            defer { dribbling.cancel() }

            // Meanwhile a job runs from start to end and the admin protocol answers.
            let client = try await RawClient.connect(host: "127.0.0.1", port: port, label: "client")
            let handle = try await client.submit("loris.f", payload: "meanwhile")
            #expect(try await worker.grab() == .response(.jobAssign, handle, "loris.f", "meanwhile"))
            try await worker.send(.request(.workComplete, handle, "done"))
            #expect(try await client.receive() == .packet(.response(.workComplete, handle, "done")))

            // A slow but steady peer: a 6,000-byte ECHO in 200-byte pieces every 100 ms (about 3 s,
            // three times the timeout, at four times the minimum rate) is answered.
            let steady = try await RawClient.connect(host: "127.0.0.1", port: port, label: "steady")
            let payload = String(repeating: "s", count: 6000)
            let echo = Array(RawPacket.request(.echoRequest, payload).wireBytes.readableBytesView)
            for start in stride(from: 0, to: echo.count, by: 200) {
                try await steady.sendRaw(Array(echo[start..<min(start + 200, echo.count)]))
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(try await steady.receive() == .packet(.response(.echoResponse, payload)))

            // The dribblers: an error in their own dialect, then the close.
            let binaryFrames = try await binaryDribbler.framesUntilClose(timeout: .seconds(20))
            let textFrames = try await textDribbler.framesUntilClose(timeout: .seconds(20))
            guard case .packet(let error)? = binaryFrames.first, binaryFrames.count == 1 else {
                Issue.record("expected one ERROR packet: \(binaryFrames)")
                return
            }
            #expect(error.type == PacketType.error.rawValue && error.firstField == "TIMEOUT", "\(error)")
            #expect(textFrames.count == 1, "\(textFrames)")
            if case .text(let reply)? = textFrames.first {
                #expect(reply.hasPrefix("ERR TIMEOUT "), "\(reprString(reply))")
            } else {
                Issue.record("expected an ERR line: \(textFrames)")
            }

            // The idle worker (nothing buffered) was never timed; the job's client neither.
            #expect(try await worker.ping())
            #expect(try await client.ping())
            #expect(try await steady.ping())
            #expect(try await client.adminCommand("version").hasPrefix("OK "))
            #expect(process.isRunning)
            for connection in [worker, client, steady] { await connection.close() }
        }
    }

    @Test("3,000 connections opened and dropped (closed, reset, mid-packet, after a reply): `version` answers and the file descriptors return to baseline")
    func connectionChurn() async throws {
        try await withGearlockBinary { port, process in
            let baseline = try await Self.settledDescriptorCount(of: process.pid)
            // 25 at a time: the test process's event loops serve every other suite running beside
            // this one, and 100 connects at once starved their connects on a 2-core CI machine.
            let batches = 120
            let perBatch = 25
            for batch in 0..<batches {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for index in 0..<perBatch {
                        let number = batch * perBatch + index
                        group.addTask {
                            let connection = try await RawClient.connect(host: "127.0.0.1", port: port, label: "churn-\(number)")
                            switch number % 4 {
                            case 0:
                                await connection.close()
                            case 1:
                                await connection.abort()
                            case 2:
                                var header = ByteBuffer(bytes: Magic.request)
                                header.writeInteger(PacketType.submitJob.rawValue)
                                header.writeInteger(UInt32(1000))
                                header.writeString("half")
                                try await connection.sendRaw(header)
                                await connection.abort()
                            default:
                                #expect(try await connection.ping("churn"))
                                await connection.close()
                            }
                        }
                    }
                    try await group.waitForAll()
                }
            }
            #expect(process.isRunning)
            let answer = try await RawClient.connect(host: "127.0.0.1", port: port, label: "after")
            #expect(try await answer.adminCommand("version").hasPrefix("OK "))
            await answer.close()
            let after = try await Self.descriptorCount(of: process.pid, reaching: baseline)
            #expect(after == baseline, "file descriptors: \(baseline) before, \(after) after 3,000 connections")
        }
    }

    @Test("Garbage from 50 connections (seeded): each ends closed, any reply is an error; another client's job completes meanwhile; descriptors return to baseline")
    func garbageFromManyConnections() async throws {
        try await withGearlockBinary(["--packet-timeout", "2"]) { port, process in
            let baseline = try await Self.settledDescriptorCount(of: process.pid)
            let worker = try await RawClient.connect(host: "127.0.0.1", port: port, label: "worker")
            try await worker.canDo("garbage.bystander")
            let client = try await RawClient.connect(host: "127.0.0.1", port: port, label: "client")
            try await client.send(.request(.submitJob, "garbage.bystander", "", "meanwhile"))

            let outcomes = try await withThrowingTaskGroup(of: (Int, [RawFrame]).self) { group in
                for index in 0..<50 {
                    group.addTask {
                        let connection = try await RawClient.connect(host: "127.0.0.1", port: port, label: "garbage-\(index)")
                        try? await connection.sendRaw(Self.garbage(index))  // may be refused half-way
                        // Whatever the garbage left behind, a bad-magic header ends it: as a packet of
                        // its own it is refused at once; inside a packet or line still incomplete it
                        // leaves that incomplete, and the packet timeout closes the connection.
                        try? await connection.sendRaw([0x00, 0x58, 0x59, 0x5A, 0, 0, 0, 1, 0, 0, 0, 0])
                        return (index, try await connection.framesUntilClose(timeout: .seconds(40)))
                    }
                }
                // The bystanders' job runs while the garbage arrives.
                let job = try await client.receivePacket()
                #expect(job.type == PacketType.jobCreated.rawValue, "\(job)")
                let assigned = try await worker.grab()
                #expect(assigned == .response(.jobAssign, job.firstField, "garbage.bystander", "meanwhile"))
                try await worker.send(.request(.workComplete, job.firstField, "ok"))
                #expect(try await client.receive() == .packet(.response(.workComplete, job.firstField, "ok")))
                var outcomes: [(Int, [RawFrame])] = []
                for try await outcome in group { outcomes.append(outcome) }
                return outcomes
            }
            #expect(outcomes.count == 50)
            for (index, frames) in outcomes {
                guard let last = frames.last else { continue }  // closed without a word (EOF mid-garbage)
                switch last {
                case .packet(let packet):
                    #expect(packet.type == PacketType.error.rawValue, "garbage-\(index): last reply \(packet)")
                case .text(let line):
                    #expect(line.hasPrefix("ERR "), "garbage-\(index): last reply \(reprString(line))")
                }
            }
            #expect(process.isRunning)
            #expect(try await worker.ping())
            #expect(try await client.adminCommand("version").hasPrefix("OK "))
            await worker.close()
            await client.close()
            let after = try await Self.descriptorCount(of: process.pid, reaching: baseline)
            #expect(after == baseline, "file descriptors: \(baseline) before, \(after) after the garbage")
        }
    }

    @Test("A truncated packet followed by EOF, and a header alone followed by a reset, cost nothing: the server answers and holds no descriptor for them")
    func truncatedPackets() async throws {
        try await withGearlockBinary { port, process in
            let baseline = try await Self.settledDescriptorCount(of: process.pid)
            let truncated = try await RawClient.connect(host: "127.0.0.1", port: port, label: "truncated")
            var half = RawPacket.request(.submitJob, "t.f", "", String(repeating: "x", count: 100)).wireBytes
            try await truncated.sendRaw(half.readSlice(length: 60)!)
            await truncated.close()
            let headerOnly = try await RawClient.connect(host: "127.0.0.1", port: port, label: "header-only")
            var header = ByteBuffer(bytes: Magic.request)
            header.writeInteger(PacketType.submitJobBackground.rawValue)
            header.writeInteger(UInt32.max)
            try await headerOnly.sendRaw(header)
            await headerOnly.abort()
            let probe = try await RawClient.connect(host: "127.0.0.1", port: port, label: "probe")
            #expect(try await probe.adminCommand("status") == ".\n", "nothing was queued")
            await probe.close()
            let after = try await Self.descriptorCount(of: process.pid, reaching: baseline)
            #expect(after == baseline)
            #expect(process.isRunning)
        }
    }

    // MARK: Helpers

    /// One connection's garbage, from its own seed: random bytes; random packet headers with random
    /// types, sizes and bodies; random text lines; or a mix.
    static func garbage(_ index: Int) -> ByteBuffer {
        var generator = SeededGenerator(seed: 0x6761_7262_6167_65 &+ UInt64(index))
        var buffer = ByteBuffer()
        for _ in 0..<Int.random(in: 1...6, using: &generator) {
            switch (index + Int.random(in: 0...3, using: &generator)) % 4 {
            case 0:
                var bytes = seededRandomBytes(count: Int.random(in: 1...2048, using: &generator), seed: generator.next())
                buffer.writeBuffer(&bytes)
            case 1:
                buffer.writeBytes(Bool.random(using: &generator) ? Magic.request : Magic.response)
                let type: UInt32 = Bool.random(using: &generator) ? UInt32.random(in: 0...45, using: &generator) : generator.nextUInt32()
                buffer.writeInteger(type)
                let size = Bool.random(using: &generator) ? UInt32.random(in: 0...512, using: &generator) : generator.nextUInt32()
                buffer.writeInteger(size)
                var body = seededRandomBytes(count: Int(min(size, 512)), seed: generator.next())
                buffer.writeBuffer(&body)
            case 2:
                for _ in 0..<Int.random(in: 1...5, using: &generator) {
                    let length = Int.random(in: 0...200, using: &generator)
                    let text = (0..<length).map { _ in UInt8.random(in: 0x21...0x7E, using: &generator) }
                    buffer.writeBytes(text)
                    buffer.writeString("\n")
                }
            default:
                var packet = RawPacket.request(
                    PacketType.allCases.randomElement(using: &generator)!, "garbage.\(index)", "",
                    seededRandomBytes(count: Int.random(in: 0...64, using: &generator), seed: generator.next())
                ).wireBytes
                buffer.writeBuffer(&packet)
            }
        }
        return buffer
    }

    /// Open file descriptors of `pid`.
    static func descriptorCount(of pid: pid_t) throws -> Int {
        try FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count
    }

    /// The count once it stopped changing (the start-up probe's connection may still be closing).
    static func settledDescriptorCount(of pid: pid_t) async throws -> Int {
        var previous = try descriptorCount(of: pid)
        var stable = 0
        for _ in 0..<100 where stable < 5 {
            try await Task.sleep(for: .milliseconds(100))
            let current = try descriptorCount(of: pid)
            stable = current == previous ? stable + 1 : 0
            previous = current
        }
        return previous
    }

    /// Polls until `pid` holds `target` descriptors again (closes are noticed a moment later), for
    /// at most 20 s; returns the last count.
    static func descriptorCount(of pid: pid_t, reaching target: Int) async throws -> Int {
        let deadline = ContinuousClock.now + .seconds(20)
        var count = try descriptorCount(of: pid)
        while count != target && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(100))
            count = try descriptorCount(of: pid)
        }
        return count
    }
}

extension SeededGenerator {
    mutating func nextUInt32() -> UInt32 { UInt32(truncatingIfNeeded: next()) }
}
