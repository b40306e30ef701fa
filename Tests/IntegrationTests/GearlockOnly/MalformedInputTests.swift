import GearmanProtocol
import NIOCore
import Testing

/// Garbage on one connection closes that connection (with a reason) and nothing else.
@Suite("Malformed input (Gearlock)", .serialized, .timeLimit(.minutes(5)))
struct MalformedInputTests {
    enum Input: String, CaseIterable, CustomTestStringConvertible {
        case badMagic
        case type2to31
        case typeMax
        case type0
        case unknownType43
        case declaredSizeOverLimit
        case longAdminLine
        case longField

        var testDescription: String { rawValue }

        var bytes: ByteBuffer {
            switch self {
            case .badMagic:
                var buffer = ByteBuffer(bytes: [0x00, 0x58, 0x59, 0x5A])
                buffer.writeInteger(UInt32(16))
                buffer.writeInteger(UInt32(0))
                return buffer
            case .type2to31:
                // One such header crashes gearmand 1.1.20.
                var buffer = ByteBuffer(bytes: Magic.request)
                buffer.writeInteger(UInt32(1) << 31)
                buffer.writeInteger(UInt32(0))
                return buffer
            case .typeMax, .type0, .unknownType43:
                var buffer = ByteBuffer(bytes: Magic.request)
                buffer.writeInteger(self == .typeMax ? UInt32.max : self == .type0 ? 0 : 43)
                buffer.writeInteger(UInt32(0))
                return buffer
            case .declaredSizeOverLimit:
                // 4 GiB - 1 declared, then nothing; the server runs with maxPacketSize 1 MiB here.
                var buffer = ByteBuffer(bytes: Magic.request)
                buffer.writeInteger(PacketType.submitJob.rawValue)
                buffer.writeInteger(UInt32.max)
                return buffer
            case .longAdminLine:
                return ByteBuffer(string: String(repeating: "s", count: 9000))
            case .longField:
                return RawPacket.request(.canDo, String(repeating: "f", count: 10_000)).wireBytes
            }
        }
    }

    @Test("a bad connection gets an ERROR and is closed; another connection and `version` keep working", arguments: Input.allCases)
    func closesOnlyTheOffender(input: Input) async throws {
        try await withTestServer(.gearlock, ServerOptions(maxPacketSize: 1 << 20)) { server in
            let bystander = try await server.connect("bystander")
            try await bystander.canDo("keep")
            let client = try await server.connect("client")
            let handle = try await client.submit("keep", unique: "", payload: "x")

            let offender = try await server.connect("offender")
            try await offender.sendRaw(input.bytes)
            let frames = try await offender.framesUntilClose()
            try #require(frames.count == 1, "one reply, then the close: \(frames)")
            switch (input, frames[0]) {
            case (.longAdminLine, .text(let line)):
                #expect(line.hasPrefix("ERR INVALID_PACKET ") && line.hasSuffix("\r\n"), "\(reprString(line))")
            case (.longAdminLine, let frame):
                Issue.record("expected an ERR line, got \(frame)")
            case (_, .packet(let packet)):
                #expect(packet.magic == Magic.response && packet.type == PacketType.error.rawValue, "\(packet)")
                #expect(packet.firstField == "INVALID_PACKET", "\(packet)")
                #expect(packet.arguments(2).last.map { $0.readableBytes > 0 } == true, "the ERROR says what was wrong")
            case (_, let frame):
                Issue.record("expected an ERROR packet, got \(frame)")
            }

            // Everybody else is unaffected.
            #expect(try await bystander.grab() == .response(.jobAssign, handle, "keep", "x"))
            try await bystander.send(RawPacket.request(.workComplete, handle, "fine"))
            #expect(try await client.receive() == .packet(.response(.workComplete, handle, "fine")))
            #expect(try await server.admin("version").hasPrefix("OK "))
        }
    }

    @Test("a header declaring 4 GiB - 1 within the default limit just waits; others keep working")
    func maximumDeclaredSizeWaits() async throws {
        try await withTestServer(.gearlock) { server in
            let greedy = try await server.connect("greedy")
            var header = ByteBuffer(bytes: Magic.request)
            header.writeInteger(PacketType.echoRequest.rawValue)
            header.writeInteger(UInt32.max)
            try await greedy.sendRaw(header)
            #expect(try await greedy.receiveIfAny(within: .milliseconds(200)) == nil)
            #expect(try await server.admin("version").hasPrefix("OK "))
            let other = try await server.connect("other")
            #expect(try await other.ping())
        }
    }

    @Test("garbage after a good packet: the good one is answered first")
    func goodThenBad() async throws {
        try await withTestServer(.gearlock) { server in
            let client = try await server.connect()
            var bytes = RawPacket.request(.echoRequest, "first").wireBytes
            var bad = Input.badMagic.bytes
            bytes.writeBuffer(&bad)
            try await client.sendRaw(bytes)
            let frames = try await client.framesUntilClose()
            #expect(frames.first == .packet(.response(.echoResponse, "first")), "\(frames)")
            #expect(frames.count == 2, "\(frames)")
        }
    }
}
