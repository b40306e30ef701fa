import GearmanProtocol
import NIOCore
import Testing

@Suite struct FrameDecoderFramingTests {
    @Test func textAndBinaryAreSniffedPerFrameOnOneStream() throws {
        let submit = GearmanPacket.submitJob(
            function: buf("reverse"), unique: buf(""), payload: buf("hello"), priority: .normal, background: false)
        var stream = buf("status\n")
        var packet = GearmanPacketEncoder.encode(submit, magic: .request)
        stream.writeBuffer(&packet)
        stream.writeString("workers\r\n")
        var noop = GearmanPacketEncoder.encode(.noop, magic: .response)
        stream.writeBuffer(&noop)
        stream.writeString("version\n")

        let frames = try decodeAll(&stream)
        #expect(
            frames == [
                .text(buf("status")), .packet(submit, magic: .request), .text(buf("workers")),
                .packet(.noop, magic: .response), .text(buf("version")),
            ])
        #expect(stream.readableBytes == 0)
    }

    @Test(arguments: [
        ("status\n", "status"),
        ("status\r\n", "status"),
        ("\n", ""),
        ("\r\n", ""),
        ("show unique jobs\r\n", "show unique jobs"),
        ("a\rb\n", "a\rb"),  // only a trailing \r is stripped
        ("status\r\r\n", "status\r"),  // and only one
        (" status\n", " status"),  // leading space kept: the admin parser needs it
    ])
    func lineEndingsAreStripped(input: String, line: String) throws {
        var buffer = buf(input)
        var decoder = GearmanFrameDecoder()
        #expect(textLine(try decoder.decode(buffer: &buffer)) == line)
        #expect(buffer.readableBytes == 0)
    }

    @Test func textLineWaitsForItsNewline() throws {
        var decoder = GearmanFrameDecoder()
        var buffer = buf("stat")
        #expect(try decoder.decode(buffer: &buffer) == nil)
        #expect(buffer.readableBytes == 4, "nothing is consumed while waiting")
        buffer.writeString("us\r")
        #expect(try decoder.decode(buffer: &buffer) == nil)
        buffer.writeString("\nwork")
        #expect(textLine(try decoder.decode(buffer: &buffer)) == "status")
        #expect(try decoder.decode(buffer: &buffer) == nil)
        #expect(String(buffer: buffer) == "work")
    }

    @Test func textLineJustUnderTheLimitIsAccepted() throws {
        // The limit counts the newline: limit − 1 bytes plus "\n" is the longest line.
        let limits = GearmanFrameDecoder.Limits(maxTextLineLength: 16)
        var buffer = buf(String(repeating: "a", count: 15) + "\n")
        #expect(textLine(try decodeAll(&buffer, limits: limits).first) == String(repeating: "a", count: 15))

        var waiting = buf(String(repeating: "a", count: 15))
        #expect(try decodeAll(&waiting, limits: limits).isEmpty)
    }

    @Test func defaultTextLineLimitIsEightKiB() throws {
        var ok = buf(String(repeating: "x", count: 8191) + "\n")
        #expect(try decodeAll(&ok).count == 1)
        var waiting = buf(String(repeating: "x", count: 8191))
        #expect(try decodeAll(&waiting).isEmpty)
        let error = decodeError(buf(String(repeating: "x", count: 8192)))
        #expect(error?.code == .textLineTooLong)
    }

    /// Feeding a packet one byte at a time: every prefix yields nil and consumes nothing, the last byte yields it.
    @Test(arguments: PacketSamples.all)
    func partialPacketsWaitAndDecodeLater(sample: PacketSample) throws {
        let encoded = GearmanPacketEncoder.encode(sample.packet, magic: .request)
        var decoder = GearmanFrameDecoder()
        var buffer = ByteBuffer()
        for (index, byte) in encoded.readableBytesView.enumerated() {
            buffer.writeInteger(byte)
            let frame = try decoder.decode(buffer: &buffer)
            if index < encoded.readableBytes - 1 {
                #expect(frame == nil)
                #expect(buffer.readableBytes == index + 1)
            } else {
                #expect(frame == .packet(sample.packet, magic: .request))
                #expect(buffer.readableBytes == 0)
            }
        }
    }

    @Test func emptyBufferDecodesToNil() throws {
        var buffer = ByteBuffer()
        var decoder = GearmanFrameDecoder()
        #expect(try decoder.decode(buffer: &buffer) == nil)
        #expect(try decoder.decodeLast(buffer: &buffer, seenEOF: true) == nil)
    }

    @Test func decodeLastLeavesAnIncompletePacket() throws {
        var buffer = GearmanPacketEncoder.encode(.echoRequest(payload: buf("abcdef")), magic: .request)
        buffer.moveWriterIndex(to: buffer.writerIndex - 1)
        var decoder = GearmanFrameDecoder()
        #expect(try decoder.decodeLast(buffer: &buffer, seenEOF: true) == nil)
        #expect(buffer.readableBytes == 12 + 5)
    }

    @Test func maximumDeclaredSizeWaitsWithoutReserving() throws {
        var buffer = header(type: PacketType.echoRequest.rawValue, size: .max)
        var decoder = GearmanFrameDecoder()
        #expect(try decoder.decode(buffer: &buffer) == nil)
        buffer.writeString("some of the body")
        #expect(try decoder.decode(buffer: &buffer) == nil)
        #expect(buffer.readerIndex == 0, "nothing consumed while the body is incomplete")
        #expect(buffer.capacity < 4096, "no room reserved for the declared size")
    }

    @Test func sizeAtTheLimitIsAccepted() throws {
        let limits = GearmanFrameDecoder.Limits(maxPacketSize: 8)
        var buffer = wirePacket(type: PacketType.echoRequest.rawValue, payload: "12345678")
        #expect(try decodeAll(&buffer, limits: limits) == [.packet(.echoRequest(payload: buf("12345678")), magic: .request)])
    }

    @Test func dataTailIsNotBoundByMaxFieldSize() throws {
        let limits = GearmanFrameDecoder.Limits(maxFieldSize: 8)
        let data = String(repeating: "d", count: 100)
        var buffer = wirePacket(type: .submitJob, payload: "function\u{0}unique\u{0}" + data)
        let frames = try decodeAll(&buffer, limits: limits)
        #expect(
            frames == [
                .packet(
                    .submitJob(
                        function: buf("function"), unique: buf("unique"), payload: buf(data), priority: .normal,
                        background: false),
                    magic: .request)
            ])
    }

    @Test func lastArgumentRunsToTheEndOfThePayload() throws {
        // For data=no types the last argument is "rest of payload", NULs included.
        var buffer = wirePacket(magic: responseMagicBytes, type: .error, payload: "CODE\u{0}text\u{0}with nul")
        let frames = try decodeAll(&buffer)
        #expect(frames == [.packet(.error(code: buf("CODE"), text: buf("text\u{0}with nul")), magic: .response)])
    }

    @Test func responseTypesAreDecodedWithRequestMagicAndViceVersa() throws {
        // The decoder reports the magic; deciding that a request must carry \0REQ is the server's job.
        var buffer = wirePacket(magic: requestMagicBytes, type: .jobCreated, payload: "H:h:1")
        buffer.writeImmutableBuffer(wirePacket(magic: responseMagicBytes, type: .canDo, payload: "f"))
        let frames = try decodeAll(&buffer)
        #expect(
            frames == [
                .packet(.jobCreated(handle: buf("H:h:1")), magic: .request),
                .packet(.canDo(function: buf("f")), magic: .response),
            ])
    }

    @Test(arguments: [PacketType.unused, .allYours])
    func rejectedTypesStillDecodeSoTheServerCanAnswerThem(type: PacketType) throws {
        var buffer = wirePacket(type: type, payload: "")
        let frames = try decodeAll(&buffer)
        #expect(frames.count == 1)
        guard case .packet(let packet, .request) = frames.first else {
            Issue.record("expected a packet, got \(frames)")
            return
        }
        #expect(packet.type == type)
    }
}
