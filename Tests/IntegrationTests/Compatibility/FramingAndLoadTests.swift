import GearmanProtocol
import NIOCore
import Testing

/// Byte-level delivery, size boundaries and a little load, against both servers.
@Suite("Framing and load", .serialized, .timeLimit(.minutes(5)))
struct FramingAndLoadTests {
    @Test("a packet and an admin line sent one byte at a time", arguments: ServerKind.allCases)
    func byteByByte(kind: ServerKind) async throws {
        try await withTestServer(kind) { server in
            let client = try await server.connect()
            var bytes = RawPacket.request(.echoRequest, "slow").wireBytes
            bytes.writeString("version\n")
            for byte in bytes.readableBytesView {
                try await client.sendRaw([byte])
            }
            #expect(try await client.receive() == .packet(.response(.echoResponse, "slow")))
            guard case .text(let version) = try await client.receive() else {
                Issue.record("no version line")
                return
            }
            #expect(version.hasPrefix("OK "))
        }
    }

    @Test("100 pipelined packets in one write are answered in order", arguments: ServerKind.allCases)
    func pipelined(kind: ServerKind) async throws {
        try await withTestServer(kind) { server in
            let client = try await server.connect()
            var bytes = ByteBuffer()
            for index in 0..<100 {
                var packet = RawPacket.request(.echoRequest, "echo-\(index)").wireBytes
                bytes.writeBuffer(&packet)
            }
            try await client.sendRaw(bytes)
            for index in 0..<100 {
                #expect(try await client.receive() == .packet(.response(.echoResponse, "echo-\(index)")))
            }
        }
    }

    @Test("an admin line of 8 192 bytes (newline included) is parsed; one byte more closes the connection", arguments: ServerKind.allCases)
    func adminLineLimit(kind: ServerKind) async throws {
        try await withTestServer(kind) { server in
            let word = String(repeating: "x", count: 8191)
            let client = try await server.connect()
            #expect(try await client.adminCommand(word) == "ERR UNKNOWN_COMMAND Unknown+server+command\(word)\r\n")
            let longer = try await server.connect("longer")
            try await longer.sendLine(word + "x")
            let frames = try await longer.framesUntilClose()
            // gearmand closes silently; Gearlock says why first.
            if kind == .gearmand { #expect(frames.isEmpty, "\(frames)") }
            for frame in frames {
                guard case .text(let line) = frame, line.hasPrefix("ERR ") else {
                    Issue.record("unexpected \(frame)")
                    continue
                }
            }
        }
    }

    @Test("SET_CLIENT_ID is shown by workers, cut to 127 bytes", arguments: ServerKind.allCases)
    func clientIDTruncation(kind: ServerKind) async throws {
        try await withTestServer(kind) { server in
            let client = try await server.connect()
            try await client.send(RawPacket.request(.setClientID, String(repeating: "i", count: 200)))
            #expect(try await client.ping())
            let workers = try await server.admin("workers")
            let ids = parseWorkers(workers).map(\.clientID).filter { $0 != "-" }
            #expect(ids == [String(repeating: "i", count: 127)], "\(reprString(workers))")
        }
    }

    @Test("a worker holding two jobs disconnects: both are requeued", arguments: ServerKind.allCases)
    func workerWithTwoJobsVanishes(kind: ServerKind) async throws {
        try await withTestServer(kind) { server in
            let client = try await server.connect("client")
            let first = try await client.submit("two", unique: "a", payload: "1", type: .submitJobBackground)
            let second = try await client.submit("two", unique: "b", payload: "2", type: .submitJobBackground)
            let worker = try await server.connect("worker")
            try await worker.canDo("two")
            #expect(try await worker.grab() == .response(.jobAssign, first, "two", "1"))
            #expect(try await worker.grab() == .response(.jobAssign, second, "two", "2"))
            await worker.abort()
            let expected = ["\(first)\t1\t0\t1", "\(second)\t1\t0\t1"].sorted()
            let jobs = try await server.adminEventually("show jobs") { sortedListLines($0) == expected }
            #expect(sortedListLines(jobs) == expected)
            #expect(try await server.admin("status") == "two\t2\t0\t0\n.\n")
        }
    }

    @Test("WORK_FAIL is final: the job is not retried", arguments: ServerKind.allCases)
    func workFailIsFinal(kind: ServerKind) async throws {
        try await withTestServer(kind, ServerOptions(jobRetries: 3)) { server in
            let client = try await server.connect("client")
            let worker = try await server.connect("worker")
            try await worker.canDo("wf")
            let handle = try await client.submit("wf", unique: "", payload: "z")
            _ = try await worker.grab()
            try await worker.send(RawPacket.request(.workFail, handle))
            #expect(try await client.receive() == .packet(.response(.workFail, handle)))
            #expect(try await worker.grab() == .noJob)
            try await client.send(RawPacket.request(.getStatus, handle))
            #expect(try await client.receive() == .packet(.response(.statusResponse, handle, "0", "0", "0", "0")))
        }
    }

    @Test("load: 20 clients × 10 foreground jobs through 4 workers, every result to its client", arguments: ServerKind.allCases)
    func manyJobs(kind: ServerKind) async throws {
        try await withTestServer(kind) { server in
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<4 {
                    let worker = try await server.connect("worker\(index)")
                    try await worker.canDo("load")
                    group.addTask {
                        // Grab/complete until told to stop: a job whose payload is "stop".
                        while true {
                            try await worker.send(RawPacket.request(.grabJob))
                            let reply = try await worker.receivePacket(timeout: .seconds(20))
                            if reply.type == PacketType.noJob.rawValue {
                                try await worker.send(RawPacket.request(.preSleep))
                                let wake = try await worker.receive(timeout: .seconds(20))
                                guard wake == .noop else { throw RawClientError(description: "expected NOOP, got \(wake)") }
                                continue
                            }
                            let arguments = reply.arguments(3)
                            let payload = String(buffer: arguments[2])
                            if payload == "stop" {
                                try await worker.send(RawPacket.request(.workComplete, arguments[0], ""))
                                return
                            }
                            try await worker.send(
                                RawPacket.request(.workComplete, arguments[0], String(payload.reversed())))
                        }
                    }
                }
                try await withThrowingTaskGroup(of: Void.self) { clients in
                    for clientIndex in 0..<20 {
                        clients.addTask {
                            let client = try await server.connect("client\(clientIndex)")
                            for job in 0..<10 {
                                let payload = "c\(clientIndex)-j\(job)"
                                let handle = try await client.submit("load", unique: "", payload: payload)
                                let result = try await client.receive(timeout: .seconds(20))
                                #expect(result == .packet(.response(.workComplete, handle, String(payload.reversed()))))
                            }
                            await client.close()
                        }
                    }
                    try await clients.waitForAll()
                }
                let stopper = try await server.connect("stopper")
                for index in 0..<4 {
                    let handle = try await stopper.submit("load", unique: "stop-\(index)", payload: "stop")
                    #expect(try await stopper.receive(timeout: .seconds(20)) == .packet(.response(.workComplete, handle, "")))
                }
                try await group.waitForAll()
            }
            #expect(try await server.admin("status") == "load\t0\t0\t4\n.\n")
        }
    }
}
