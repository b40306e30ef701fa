import GearmanProtocol
import NIOCore
import Testing

/// The binary protocol's replies, byte for byte (probe notes §B).
@Suite("Binary protocol", .serialized, .timeLimit(.minutes(5)))
struct BinaryProtocolTests {
    @Test("ECHO_REQ → ECHO_RES with the same bytes", arguments: ServerKind.allCases)
    func echo(kind: ServerKind) async throws {
        try await withTestServer(kind) { server in
            let client = try await server.connect()
            let payload: [UInt8] = Array("hello\0world\r\n".utf8) + [0xFF, 0x00]
            try await client.send(RawPacket.request(.echoRequest, payload))
            #expect(try await client.receive() == .packet(.response(.echoResponse, payload)))
            try await client.send(RawPacket.request(.echoRequest))
            #expect(try await client.receive() == .packet(.response(.echoResponse)))
            // Through the project's encoder too.
            try await client.send(.echoRequest(payload: ByteBuffer(string: "via encoder")))
            #expect(try await client.receive() == .packet(.response(.echoResponse, "via encoder")))
        }
    }

    @Test("GET_STATUS: unknown, queued, running, after WORK_STATUS (forwarded to the client)", arguments: ServerKind.allCases)
    func getStatus(kind: ServerKind) async throws {
        try await withTestServer(kind) { server in
            let client = try await server.connect("client")
            try await client.send(RawPacket.request(.getStatus, "H:nope:9999"))
            #expect(try await client.receive() == .packet(.response(.statusResponse, "H:nope:9999", "0", "0", "0", "0")))

            let background = try await client.submit("gs", unique: "b", payload: "", type: .submitJobBackground)
            try await client.send(RawPacket.request(.getStatus, background))
            #expect(try await client.receive() == .packet(.response(.statusResponse, background, "1", "0", "0", "0")))

            let foreground = try await client.submit("gsf", unique: "f", payload: "x")
            let observer = try await server.connect("observer")  // any connection may ask
            try await observer.send(RawPacket.request(.getStatus, foreground))
            #expect(try await observer.receive() == .packet(.response(.statusResponse, foreground, "1", "0", "0", "0")))
            let worker = try await server.connect("worker")
            try await worker.canDo("gsf")
            #expect(try await worker.grab() == .response(.jobAssign, foreground, "gsf", "x"))
            try await observer.send(RawPacket.request(.getStatus, foreground))
            #expect(try await observer.receive() == .packet(.response(.statusResponse, foreground, "1", "1", "0", "0")))
            try await worker.send(RawPacket.request(.workStatus, foreground, "3", "10"))
            #expect(try await client.receive() == .packet(.response(.workStatus, foreground, "3", "10")))
            try await observer.send(RawPacket.request(.getStatus, foreground))
            #expect(try await observer.receive() == .packet(.response(.statusResponse, foreground, "1", "1", "3", "10")))
            #expect(try await observer.receiveIfAny(within: .milliseconds(50)) == nil, "GET_STATUS does not attach")
        }
    }

    @Test("WORK_STATUS text is forwarded verbatim; GET_STATUS reports it as numbers (atoi)", arguments: ServerKind.allCases)
    func statusNumbers(kind: ServerKind) async throws {
        try await withTestServer(kind) { server in
            let client = try await server.connect("client")
            let worker = try await server.connect("worker")
            try await worker.canDo("wsn")
            let handle = try await client.submit("wsn", unique: "", payload: "")
            _ = try await worker.grab()
            try await worker.send(RawPacket.request(.workStatus, handle, "12abc", "100"))
            #expect(try await client.receive() == .packet(.response(.workStatus, handle, "12abc", "100")))
            #expect(try await worker.receiveIfAny(within: .milliseconds(50)) == nil)
            try await client.send(RawPacket.request(.getStatus, handle))
            #expect(try await client.receive() == .packet(.response(.statusResponse, handle, "1", "1", "12", "100")))
        }
    }

    @Test("GET_STATUS_UNIQUE: field 1 is the unique; the last field counts waiting foreground clients", arguments: ServerKind.allCases)
    func getStatusUnique(kind: ServerKind) async throws {
        try await withTestServer(kind) { server in
            let client = try await server.connect("client")
            #expect(try await client.statusUnique("nope") == .response(.statusResponseUnique, "nope", "0", "0", "0", "0", "0"))
            _ = try await client.submit("gsu", unique: "gsu", payload: "", type: .submitJobBackground)
            #expect(try await client.statusUnique("gsu") == .response(.statusResponseUnique, "gsu", "1", "0", "0", "0", "0"))

            let other = try await server.connect("other")
            let handle = try await client.submit("gsf", unique: "fgu", payload: "x")
            #expect(try await other.submit("gsf", unique: "fgu", payload: "x") == handle)
            #expect(try await client.statusUnique("fgu") == .response(.statusResponseUnique, "fgu", "1", "0", "0", "0", "2"))
            let worker = try await server.connect("worker")
            try await worker.canDo("gsf")
            _ = try await worker.grab()
            #expect(try await client.statusUnique("fgu") == .response(.statusResponseUnique, "fgu", "1", "1", "0", "0", "2"))
            try await worker.send(RawPacket.request(.workStatus, handle, "3", "10"))
            #expect(try await other.receive() == .packet(.response(.workStatus, handle, "3", "10")))
            #expect(try await client.receive() == .packet(.response(.workStatus, handle, "3", "10")))
            #expect(try await client.statusUnique("fgu") == .response(.statusResponseUnique, "fgu", "1", "1", "3", "10", "2"))
        }
    }

    @Test("WORK_* forwarding: DATA, WARNING, empty COMPLETE keeps its NUL, plain FAIL is the handle", arguments: ServerKind.allCases)
    func forwarding(kind: ServerKind) async throws {
        try await withTestServer(kind) { server in
            let client = try await server.connect("client")
            let worker = try await server.connect("worker")
            try await worker.canDo("fw")
            let first = try await client.submit("fw", unique: "1", payload: "")
            let second = try await client.submit("fw", unique: "2", payload: "")
            #expect(try await worker.grab() == .response(.jobAssign, first, "fw", ""))
            try await worker.send(RawPacket.request(.workData, first, "d1"))
            try await worker.send(RawPacket.request(.workWarning, first, "w1"))
            try await worker.send(RawPacket.request(.workComplete, first, ""))
            #expect(try await client.receive() == .packet(.response(.workData, first, "d1")))
            #expect(try await client.receive() == .packet(.response(.workWarning, first, "w1")))
            let complete = try await client.receive()
            #expect(complete == .packet(.response(.workComplete, first, "")))
            if case .packet(let packet) = complete {
                #expect(packet.payload.readableBytes == first.utf8.count + 1, "the NUL after the handle stays")
            }
            #expect(try await worker.grab() == .response(.jobAssign, second, "fw", ""))
            try await worker.send(RawPacket.request(.workFail, second))
            #expect(try await client.receive() == .packet(.response(.workFail, second)))
            #expect(try await worker.receiveIfAny(within: .milliseconds(50)) == nil, "results get no reply")
        }
    }

    @Test("GRAB variants: GRAB_JOB_UNIQ, GRAB_JOB_ALL (JOB_ASSIGN_UNIQ without a reducer, JOB_ASSIGN_ALL with one)", arguments: ServerKind.allCases)
    func grabVariants(kind: ServerKind) async throws {
        try await withTestServer(kind) { server in
            let client = try await server.connect("client")
            let worker = try await server.connect("worker")
            try await worker.canDo("ga")
            #expect(try await worker.grab(.grabJobAll) == .noJob)
            let plain = try await client.submit("ga", unique: "ga-u", payload: "payload-ga", type: .submitJobBackground)
            #expect(try await worker.grab(.grabJobAll) == .response(.jobAssignUnique, plain, "ga", "ga-u", "payload-ga"))
            let uniq = try await client.submit("ga", unique: "ga-v", payload: "p2", type: .submitJobBackground)
            #expect(try await worker.grab(.grabJobUnique) == .response(.jobAssignUnique, uniq, "ga", "ga-v", "p2"))
            // SUBMIT_REDUCE_JOB_BACKGROUND carries fn, unique, reducer and an (empty) aggregator field.
            try await client.send(RawPacket.request(.submitReduceJobBackground, "ga", "ga-r", "red", "", "rp"))
            let reduce = try await client.receivePacket()
            #expect(reduce.type == PacketType.jobCreated.rawValue)
            let reduceHandle = String(buffer: reduce.payload)
            #expect(try await worker.grab(.grabJobAll) == .response(.jobAssignAll, reduceHandle, "ga", "ga-r", "red", "rp"))
            #expect(try await worker.grab(.grabJobUnique) == .noJob)
        }
    }

    @Test("PRE_SLEEP: immediate NOOP when work exists; otherwise one NOOP per sleep", arguments: ServerKind.allCases)
    func preSleep(kind: ServerKind) async throws {
        try await withTestServer(kind) { server in
            let client = try await server.connect("client")
            let first = try await client.submit("ps", unique: "1", payload: "", type: .submitJobBackground)
            let worker = try await server.connect("worker")
            try await worker.canDo("ps")
            #expect(try await worker.receiveIfAny(within: .milliseconds(50)) == nil, "CAN_DO gets no reply")
            try await worker.send(RawPacket.request(.preSleep))
            #expect(try await worker.receive() == .noop, "work already queued: NOOP at once")
            #expect(try await worker.grab() == .response(.jobAssign, first, "ps", ""))

            try await worker.send(RawPacket.request(.preSleep))
            #expect(try await worker.receiveIfAny(within: .milliseconds(150)) == nil, "nothing queued: no NOOP")
            _ = try await client.submit("ps", unique: "2", payload: "", type: .submitJobBackground)
            #expect(try await worker.receive() == .noop)
            _ = try await client.submit("ps", unique: "3", payload: "", type: .submitJobBackground)
            #expect(try await worker.receiveIfAny(within: .milliseconds(150)) == nil, "one NOOP per sleep")
            _ = try await worker.grab()

            let awake = try await server.connect("awake")  // never sent PRE_SLEEP: never NOOPed
            try await awake.canDo("ps")
            #expect(try await awake.ping())
            _ = try await client.submit("ps", unique: "4", payload: "", type: .submitJobBackground)
            #expect(try await awake.receiveIfAny(within: .milliseconds(150)) == nil)
        }
    }

    @Test("worker wake-up limit: with -w 1, successive jobs wake different sleepers", arguments: ServerKind.allCases)
    func workerWakeupLimit(kind: ServerKind) async throws {
        try await withTestServer(kind, ServerOptions(workerWakeup: 1)) { server in
            var sleepers: [RawClient] = []
            for index in 0..<3 {
                let worker = try await server.connect("sleeper\(index)")
                try await worker.canDo("ww")
                try await worker.send(RawPacket.request(.preSleep))
                #expect(try await worker.ping())
                sleepers.append(worker)
            }
            let client = try await server.connect("client")
            var woken: Set<Int> = []
            for job in 0..<2 {
                _ = try await client.submit("ww", unique: "j\(job)", payload: "", type: .submitJobBackground)
                // Wait (up to 20 s, a hang guard for a loaded machine) for one not yet woken sleeper's
                // NOOP; then the others get a further window each to show a second one.
                let deadline = ContinuousClock.now + .seconds(20)
                var first: Int?
                while first == nil && ContinuousClock.now < deadline {
                    for (index, sleeper) in sleepers.enumerated() where !woken.contains(index) {
                        if let frame = try await sleeper.receiveIfAny(within: .milliseconds(50)) {
                            #expect(frame == .noop)
                            first = index
                            break
                        }
                    }
                }
                let wokenNow = try #require(first, "job \(job) woke no sleeper within 20 s")
                woken.insert(wokenNow)
                for (index, sleeper) in sleepers.enumerated() where !woken.contains(index) {
                    let extra = try await sleeper.receiveIfAny(within: .milliseconds(250))
                    #expect(extra == nil, "job \(job) also woke sleeper \(index)")
                }
                #expect(woken.count == job + 1, "job \(job) woke exactly one more sleeper (woken: \(woken))")
            }
        }
    }

    @Test("WORK_* for an unknown handle → JOB_NOT_FOUND with gearmand's three texts; the connection stays open", arguments: ServerKind.allCases)
    func unknownHandles(kind: ServerKind) async throws {
        try await withTestServer(kind) { server in
            let client = try await server.connect()
            let handle = "H:vm:9999"
            let cases: [(RawPacket, String)] = [
                (.request(.workComplete, handle, "data"), "Job given in work result not found"),
                (.request(.workFail, handle), "Job given in work result not found"),
                (.request(.workStatus, handle, "1", "2"), "Job given in work result not found"),
                (.request(.workData, handle, "data"), "Job does not exist on server"),
                (.request(.workWarning, handle, "data"), "Job does not exist on server"),
                (.request(.workException, handle, "data"), "An exception was received for a job that does not exist"),
            ]
            for (request, text) in cases {
                try await client.send(request)
                #expect(try await client.receive() == .packet(.error("JOB_NOT_FOUND", text)), "\(request)")
                #expect(try await client.ping(), "still open after \(request)")
            }
        }
    }

    @Test("wrong magic or a response type sent to the server: INVALID_MAGIC / INVALID_COMMAND, connection stays open", arguments: ServerKind.allCases)
    func invalidMagicAndCommands(kind: ServerKind) async throws {
        try await withTestServer(kind) { server in
            let client = try await server.connect()
            let invalidMagic = RawFrame.packet(.error("INVALID_MAGIC", "Request magic expected"))
            let invalidCommand = RawFrame.packet(.error("INVALID_COMMAND", "Command not expected"))
            let cases: [(RawPacket, RawFrame)] = [
                (RawPacket(magic: Magic.response, type: PacketType.echoResponse.rawValue, ["x"]), invalidMagic),
                (RawPacket(magic: Magic.response, type: PacketType.echoRequest.rawValue, ["x"]), invalidMagic),
                (.request(.echoResponse, "x"), invalidCommand),
                (.request(type: 5), invalidCommand),
                (.request(.allYours), invalidCommand),
                (.request(.submitJobSched, "f", "u", " 1", " 2", " 3", " 4", " 5", "data"), invalidCommand),
                (.request(.noop), invalidCommand),
                (.request(.jobCreated, "H:x:1"), invalidCommand),
            ]
            for (request, expected) in cases {
                try await client.send(request)
                #expect(try await client.receive() == expected, "\(request)")
                #expect(try await client.ping(), "still open after \(request)")
            }
        }
    }

    @Test("a 65-byte unique → ARGUMENT_TOO_LARGE, connection stays open", arguments: ServerKind.allCases)
    func uniqueTooLarge(kind: ServerKind) async throws {
        try await withTestServer(kind) { server in
            let client = try await server.connect()
            try await client.send(RawPacket.request(.submitJobBackground, "f65", String(repeating: "a", count: 65), "x"))
            #expect(try await client.receive() == .packet(.error("ARGUMENT_TOO_LARGE", "Unique value too large")))
            #expect(try await client.ping())
            #expect(try await server.admin("show jobs") == ".\n")
        }
    }

    @Test("admin lines and binary packets mixed on one connection, even in one write", arguments: ServerKind.allCases)
    func mixedTextAndBinary(kind: ServerKind) async throws {
        try await withTestServer(kind) { server in
            let client = try await server.connect()
            var bytes = RawPacket.request(.echoRequest, "a").wireBytes
            bytes.writeString("version\n")
            var submit = RawPacket.request(.submitJobBackground, "mix", "m", "p").wireBytes
            bytes.writeBuffer(&submit)
            bytes.writeString("status\r\n")
            var echo = RawPacket.request(.echoRequest, "b").wireBytes
            bytes.writeBuffer(&echo)
            try await client.sendRaw(bytes)

            #expect(try await client.receive() == .packet(.response(.echoResponse, "a")))
            guard case .text(let version) = try await client.receive() else {
                Issue.record("expected the version line")
                return
            }
            #expect(version.hasPrefix("OK ") && version.hasSuffix("\n"))
            let created = try await client.receivePacket()
            #expect(created.type == PacketType.jobCreated.rawValue)
            #expect(try await client.receive() == .text("mix\t1\t0\t0\n"))
            #expect(try await client.receive() == .text(".\n"))
            #expect(try await client.receive() == .packet(.response(.echoResponse, "b")))
            // And the job really is there for a worker.
            let worker = try await server.connect("worker")
            try await worker.canDo("mix")
            #expect(try await worker.grab() == .response(.jobAssign, String(buffer: created.payload), "mix", "p"))
        }
    }

    @Test("bad magic, type 0 and type 43 close the connection; the server keeps serving", arguments: ServerKind.allCases)
    func framingErrorsClose(kind: ServerKind) async throws {
        try await withTestServer(kind) { server in
            var badMagic = ByteBuffer(bytes: [0x00, 0x58, 0x59, 0x5A])
            badMagic.writeInteger(UInt32(16))
            badMagic.writeInteger(UInt32(0))
            var typeZero = ByteBuffer(bytes: Magic.request)
            typeZero.writeInteger(UInt32(0))
            typeZero.writeInteger(UInt32(0))
            var type43 = ByteBuffer(bytes: Magic.request)
            type43.writeInteger(UInt32(43))
            type43.writeInteger(UInt32(0))
            // A 10 000-byte CAN_DO: a non-data field over gearmand's 8 KiB buffer.
            let longCanDo = RawPacket.request(.canDo, String(repeating: "f", count: 10_000)).wireBytes
            for (name, bytes) in [("magic \\0XYZ", badMagic), ("type 0", typeZero), ("type 43", type43), ("10 000-byte CAN_DO", longCanDo)] {
                let client = try await server.connect(name)
                try await client.sendRaw(bytes)
                let frames = try await client.framesUntilClose()
                // gearmand closes silently; Gearlock may say why first, with an ERROR packet.
                for frame in frames {
                    guard case .packet(let packet) = frame, packet.type == PacketType.error.rawValue else {
                        Issue.record("\(name): unexpected \(frame) before the close")
                        continue
                    }
                }
                if kind == .gearmand { #expect(frames.isEmpty, "\(name): \(frames)") }
            }
            let survivor = try await server.connect("survivor")
            #expect(try await survivor.ping())
        }
    }
}
