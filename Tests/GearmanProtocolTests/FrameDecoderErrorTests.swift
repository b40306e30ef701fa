import GearmanProtocol
import NIOCore
import Testing

/// Malformed input: each case throws the right code, and the message says what was wrong.
@Suite struct FrameDecoderErrorTests {
    // MARK: Text lines

    @Test func textLineReachingTheLimitWithoutNewlineThrows() throws {
        let limits = GearmanFrameDecoder.Limits(maxTextLineLength: 16)
        let error = try #require(decodeError(buf(String(repeating: "a", count: 16)), limits: limits))
        #expect(error.code == .textLineTooLong)
        #expect(error.message.contains("16"))
    }

    @Test func textLineWhoseNewlineIsPastTheLimitThrows() throws {
        let limits = GearmanFrameDecoder.Limits(maxTextLineLength: 16)
        let error = decodeError(buf(String(repeating: "a", count: 16) + "\n"), limits: limits)
        #expect(error?.code == .textLineTooLong)
    }

    // MARK: Magic

    @Test(arguments: [
        [0x00, 0x58],  // "\0X"
        [0x00, 0x52, 0x58],  // "\0RX"
        [0x00, 0x52, 0x45, 0x58],  // "\0REX"
        [0x00, 0x00, 0x00, 0x00],
        [0x00, 0x52, 0x45, 0x50, 0, 0, 0, 1, 0, 0, 0, 0],  // "\0REP" with a whole header
    ] as [[UInt8]])
    func invalidMagicThrowsAsSoonAsItIsVisible(bytes: [UInt8]) throws {
        let error = try #require(decodeError(buf(bytes)))
        #expect(error.code == .invalidMagic)
        #expect(error.message.contains("magic"))
        #expect(error.offendingBytes == Array(bytes.prefix(4)))
    }

    @Test(arguments: [
        [0x00],
        [0x00, 0x52],
        [0x00, 0x52, 0x45],
        [0x00, 0x52, 0x45, 0x51],
        [0x00, 0x52, 0x45, 0x53, 0, 0, 0],
    ] as [[UInt8]])
    func validMagicPrefixWaits(bytes: [UInt8]) throws {
        var buffer = buf(bytes)
        var decoder = GearmanFrameDecoder()
        #expect(try decoder.decode(buffer: &buffer) == nil)
        #expect(buffer.readableBytes == bytes.count)
    }

    // MARK: Packet type

    @Test(arguments: [0, 43, 1 << 31, UInt32.max] as [UInt32], [requestMagicBytes, responseMagicBytes])
    func unknownPacketTypeThrows(type: UInt32, magic: [UInt8]) throws {
        let error = try #require(decodeError(header(magic: magic, type: type, size: 0)))
        #expect(error.code == .unknownPacketType)
        #expect(error.message.contains("\(type)"))
    }

    // MARK: Size

    @Test func declaredSizeOverTheLimitThrowsOnceTheHeaderIsIn() throws {
        let limits = GearmanFrameDecoder.Limits(maxPacketSize: 1024)
        let fullHeader = header(type: PacketType.echoRequest.rawValue, size: 1025)
        var decoder = GearmanFrameDecoder(limits: limits)

        var partial = fullHeader.getSlice(at: 0, length: 11)!
        #expect(try decoder.decode(buffer: &partial) == nil)

        let error = try #require(decodeError(fullHeader, limits: limits))
        #expect(error.code == .packetTooLarge)
        #expect(error.message.contains("ECHO_REQ"))
        #expect(error.message.contains("1025"))
        #expect(error.message.contains("1024"))
    }

    @Test func fourGiBHeaderWithASmallerLimitThrows() throws {
        let limits = GearmanFrameDecoder.Limits(maxPacketSize: 64 * 1024 * 1024)
        let error = try #require(decodeError(header(type: PacketType.submitJob.rawValue, size: .max), limits: limits))
        #expect(error.code == .packetTooLarge)
        #expect(error.message.contains("SUBMIT_JOB"))
        #expect(error.message.contains("\(UInt32.max)"))
    }

    // MARK: Arguments

    @Test func submitJobWithoutAnyNULThrowsMissingArgument() throws {
        let error = try #require(decodeError(wirePacket(type: .submitJob, payload: "reverse")))
        #expect(error.code == .missingArgument)
        #expect(error.message.contains("SUBMIT_JOB"))
    }

    @Test func submitJobWithOneNULThrowsMissingArgument() throws {
        let error = try #require(decodeError(wirePacket(type: .submitJob, payload: "reverse\u{0}hello")))
        #expect(error.code == .missingArgument)
        #expect(error.message.contains("argument 2"))
    }

    @Test(arguments: [PacketType.submitReduceJob, .submitReduceJobBackground])
    func reduceSubmissionWithoutAggregatorThrowsMissingArgument(type: PacketType) throws {
        // gearmand would wait for a 4th NUL and desync the stream; we reject it.
        let error = try #require(decodeError(wirePacket(type: type, payload: "map\u{0}unique\u{0}sum\u{0}data")))
        #expect(error.code == .missingArgument)
        #expect(error.message.contains(type.protocolName))
        #expect(error.message.contains("4"))
    }

    /// Types whose payload must contain NULs: one NUL short of the layout is a missing argument.
    static let typesNeedingNULs = PacketType.allCases.filter {
        let layout = $0.argumentLayout
        return (layout.hasData ? layout.fields : layout.fields - 1) > 0
    }

    @Test(arguments: typesNeedingNULs)
    func oneNULShortThrowsMissingArgument(type: PacketType) throws {
        let layout = type.argumentLayout
        let nuls = layout.hasData ? layout.fields : layout.fields - 1
        let payload = String(repeating: "a\u{0}", count: nuls - 1) + "tail"
        let error = try #require(decodeError(wirePacket(type: type, payload: payload)))
        #expect(error.code == .missingArgument)
        #expect(error.message.contains(type.protocolName))
    }

    @Test(arguments: typesNeedingNULs)
    func emptyPayloadThrowsMissingArgument(type: PacketType) throws {
        let error = try #require(decodeError(wirePacket(type: type, payload: "")))
        #expect(error.code == .missingArgument)
    }

    @Test func fieldOverMaxFieldSizeThrows() throws {
        let limits = GearmanFrameDecoder.Limits(maxFieldSize: 8)
        let error = try #require(
            decodeError(wirePacket(type: .submitJob, payload: "function1\u{0}u\u{0}data"), limits: limits))
        #expect(error.code == .fieldTooLong)
        #expect(error.message.contains("SUBMIT_JOB"))
        #expect(error.message.contains("9"))
        #expect(error.message.contains("8"))
    }

    @Test func lastArgumentOverMaxFieldSizeThrows() throws {
        let limits = GearmanFrameDecoder.Limits(maxFieldSize: 8)
        let error = decodeError(wirePacket(type: .setClientID, payload: "123456789"), limits: limits)
        #expect(error?.code == .fieldTooLong)
        var atLimit = wirePacket(type: .setClientID, payload: "12345678")
        #expect(try decodeAll(&atLimit, limits: limits).count == 1)
    }

    @Test func tenThousandByteCanDoIsRejectedByDefault() throws {
        // PROTOCOL.md a.1: gearmand drops a 10 000-byte CAN_DO.
        let error = try #require(decodeError(wirePacket(type: .canDo, payload: String(repeating: "f", count: 10_000))))
        #expect(error.code == .fieldTooLong)
        #expect(error.message.contains("CAN_DO"))
        #expect(error.message.contains("10000"))
        #expect(error.message.contains("8192"))
    }

    @Test func oneMiBEchoIsAcceptedByDefault() throws {
        // ...while a 1 MiB ECHO (a data tail) works.
        var buffer = header(type: PacketType.echoRequest.rawValue, size: 1 << 20)
        buffer.writeRepeatingByte(0x65, count: 1 << 20)
        let frames = try decodeAll(&buffer)
        #expect(frames.count == 1)
    }

    // MARK: Payload on argument-less packets

    @Test(arguments: [
        PacketType.noop, .preSleep, .resetAbilities, .grabJob, .grabJobUnique, .grabJobAll, .noJob,
    ])
    func payloadOnArgumentlessPacketThrows(type: PacketType) throws {
        let error = try #require(decodeError(wirePacket(type: type, payload: "xyz")))
        #expect(error.code == .unexpectedPayload)
        #expect(error.message.contains(type.protocolName))
        #expect(error.message.contains("3 bytes"))
    }

    // MARK: Error value

    @Test func descriptionNamesTheCodeAndOffendingBytesAreCapped() throws {
        let error = GearmanProtocolError(
            code: .invalidMagic, message: "bad", offendingBytes: Array(repeating: 1, count: 100))
        #expect(error.offendingBytes.count == 32)
        #expect(error.description == "GearmanProtocolError.invalidMagic: bad")
    }

    @Test func errorsAfterGoodFramesLeaveTheGoodFramesDecoded() throws {
        var buffer = buf("status\n")
        buffer.writeImmutableBuffer(GearmanPacketEncoder.encode(.grabJob, magic: .request))
        buffer.writeBytes([0x00, 0x58])
        var decoder = GearmanFrameDecoder()
        #expect(textLine(try decoder.decode(buffer: &buffer)) == "status")
        #expect(try decoder.decode(buffer: &buffer) == .packet(.grabJob, magic: .request))
        #expect(throws: GearmanProtocolError.self) { try decoder.decode(buffer: &buffer) }
    }
}
