import GearmanProtocol
import NIOCore
import Testing

/// The large-data path of `GearmanPacketEncoder.encode(_:magic:into:inlineDataLimit:)`.
@Suite struct PacketEncoderTests {
    static let bigPayload = ByteBuffer(repeating: 0xAB, count: 100)

    static func baseAddress(_ buffer: ByteBuffer) -> UInt? {
        buffer.withUnsafeReadableBytes { $0.baseAddress.map { UInt(bitPattern: $0) } }
    }

    @Test func dataLongerThanLimitIsReturnedUncopiedAndCountedInSize() throws {
        let payload = Self.bigPayload
        var buffer = ByteBuffer()
        let tail = GearmanPacketEncoder.encode(
            .workComplete(handle: buf("H:h:1"), payload: payload), magic: .response, into: &buffer, inlineDataLimit: 10)

        let returned = try #require(tail)
        #expect(returned == payload)
        #expect(Self.baseAddress(returned) == Self.baseAddress(payload), "the tail must be the caller's storage, not a copy")
        // The buffer holds the header and the handle field only...
        #expect(buffer.readableBytes == 12 + 6)
        #expect(Array(buffer.readableBytesView.dropFirst(12)) == Array("H:h:1\u{0}".utf8))
        // ...but its size field counts the tail too.
        #expect(buffer.getInteger(at: 8, as: UInt32.self) == UInt32(6 + 100))
    }

    @Test func dataAtTheLimitIsWrittenInline() {
        let payload = ByteBuffer(repeating: 0xCD, count: 10)
        var buffer = ByteBuffer()
        let tail = GearmanPacketEncoder.encode(
            .echoResponse(payload: payload), magic: .response, into: &buffer, inlineDataLimit: 10)
        #expect(tail == nil)
        #expect(buffer.readableBytes == 12 + 10)
        #expect(buffer.getInteger(at: 8, as: UInt32.self) == 10)
    }

    @Test(arguments: [
        GearmanPacket.canDo(function: buf("a-long-function-name")),
        .workStatus(handle: buf("H:h:1"), numerator: buf("1"), denominator: buf("2")),
        .error(code: "QUEUE_ERROR", text: "Job queue is full"),
        .noop,
    ])
    func packetsWithoutDataTailNeverReturnATail(packet: GearmanPacket) {
        var buffer = ByteBuffer()
        let tail = GearmanPacketEncoder.encode(packet, magic: .response, into: &buffer, inlineDataLimit: 0)
        #expect(tail == nil)
        #expect(buffer == GearmanPacketEncoder.encode(packet, magic: .response))
    }

    @Test func sizeIsRelativeToWhereThePacketStarts() throws {
        var buffer = buf("previous bytes")
        let start = buffer.writerIndex
        let tail = GearmanPacketEncoder.encode(
            .submitJob(function: buf("f"), unique: buf("u"), payload: Self.bigPayload, priority: .high, background: true),
            magic: .request, into: &buffer, inlineDataLimit: 16)
        #expect(tail == Self.bigPayload)
        #expect(buffer.getInteger(at: start + 4, as: UInt32.self) == PacketType.submitJobHighBackground.rawValue)
        #expect(buffer.getInteger(at: start + 8, as: UInt32.self) == UInt32(4 + 100))
        #expect(buffer.writerIndex == start + 12 + 4)
    }

    @Test func defaultLimitInlinesSmallDataAndSplitsLargeData() {
        let small = ByteBuffer(repeating: 1, count: GearmanPacketEncoder.defaultInlineDataLimit)
        let large = ByteBuffer(repeating: 2, count: GearmanPacketEncoder.defaultInlineDataLimit + 1)
        var buffer = ByteBuffer()
        #expect(GearmanPacketEncoder.encode(.echoRequest(payload: small), magic: .request, into: &buffer) == nil)
        buffer.clear()
        #expect(GearmanPacketEncoder.encode(.echoRequest(payload: large), magic: .request, into: &buffer) == large)
        #expect(buffer.readableBytes == 12)
    }

    @Test func oneShotEncodeIncludesTheWholeTail() throws {
        let payload = ByteBuffer(repeating: 7, count: 64 * 1024)
        var encoded = GearmanPacketEncoder.encode(
            .jobAssign(handle: buf("H:h:1"), function: buf("f"), payload: payload), magic: .response)
        #expect(encoded.readableBytes == 12 + 6 + 2 + payload.readableBytes)
        #expect(encoded.getInteger(at: 8, as: UInt32.self) == UInt32(encoded.readableBytes - 12))
        var decoder = GearmanFrameDecoder()
        #expect(
            try decoder.decode(buffer: &encoded)
                == .packet(.jobAssign(handle: buf("H:h:1"), function: buf("f"), payload: payload), magic: .response))
    }

    @Test func encoderHonoursTheSliceNotTheWholeStorage() {
        // Arguments are slices of a read buffer; only their readable bytes go on the wire.
        var read = buf("xxfunctionyy")
        read.moveReaderIndex(forwardBy: 2)
        let function = read.readSlice(length: 8)!
        let encoded = GearmanPacketEncoder.encode(.canDo(function: function), magic: .request)
        #expect(Array(encoded.readableBytesView) == requestMagicBytes + [0, 0, 0, 1, 0, 0, 0, 8] + Array("function".utf8))
    }
}
