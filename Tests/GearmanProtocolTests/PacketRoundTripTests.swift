import GearmanProtocol
import NIOCore
import NIOTestUtils
import Testing

@Suite struct PacketRoundTripTests {
    static let magics: [PacketMagic] = [.request, .response]

    @Test func samplesCoverEveryPacketType() {
        let covered = Set(PacketSamples.all.map(\.packet.type))
        let missing = PacketType.allCases.filter { !covered.contains($0) }
        #expect(missing.isEmpty, "no round-trip sample for \(missing.map(\.protocolName))")
    }

    @Test func submitSamplesCoverAllSixPriorityAndBackgroundCombinations() {
        let types = Set(PacketSamples.submitJobs.map(\.packet.type))
        #expect(
            types == [
                .submitJob, .submitJobHigh, .submitJobLow, .submitJobBackground, .submitJobHighBackground,
                .submitJobLowBackground,
            ])
    }

    @Test(arguments: PacketSamples.all, magics)
    func encodeThenDecodeGivesBackThePacket(sample: PacketSample, magic: PacketMagic) throws {
        var buffer = GearmanPacketEncoder.encode(sample.packet, magic: magic)
        var decoder = GearmanFrameDecoder()
        let frame = try decoder.decode(buffer: &buffer)
        #expect(frame == .packet(sample.packet, magic: magic))
        #expect(buffer.readableBytes == 0, "the decoder must consume exactly one packet")
    }

    @Test(arguments: PacketSamples.all, magics)
    func headerCarriesMagicTypeAndPayloadSize(sample: PacketSample, magic: PacketMagic) throws {
        let buffer = GearmanPacketEncoder.encode(sample.packet, magic: magic)
        let magicBytes = try #require(buffer.getBytes(at: buffer.readerIndex, length: 4))
        #expect(magicBytes == (magic == .request ? requestMagicBytes : responseMagicBytes))
        #expect(buffer.getInteger(at: buffer.readerIndex + 4, as: UInt32.self) == sample.packet.type.rawValue)
        #expect(buffer.getInteger(at: buffer.readerIndex + 8, as: UInt32.self) == UInt32(buffer.readableBytes - 12))
    }

    /// The header-plus-fields buffer and a separately returned data tail, sent back to back, decode to the same packet.
    @Test(arguments: PacketSamples.all, magics)
    func splitDataTailStillRoundTrips(sample: PacketSample, magic: PacketMagic) throws {
        var buffer = ByteBuffer()
        if var tail = GearmanPacketEncoder.encode(sample.packet, magic: magic, into: &buffer, inlineDataLimit: 0) {
            buffer.writeBuffer(&tail)
        }
        #expect(buffer == GearmanPacketEncoder.encode(sample.packet, magic: magic))
        var decoder = GearmanFrameDecoder()
        #expect(try decoder.decode(buffer: &buffer) == .packet(sample.packet, magic: magic))
    }

    @Test func manyPacketsInOneBufferDecodeInOrder() throws {
        var stream = ByteBuffer()
        var expected: [GearmanFrame] = []
        for magic in Self.magics {
            for sample in PacketSamples.all {
                GearmanPacketEncoder.encode(sample.packet, magic: magic, into: &stream, inlineDataLimit: .max)
                expected.append(.packet(sample.packet, magic: magic))
            }
        }
        let frames = try decodeAll(&stream)
        #expect(frames.count == expected.count)
        for (index, (frame, want)) in zip(frames, expected).enumerated() {
            #expect(frame == want, "frame \(index)")
        }
        #expect(stream.readableBytes == 0)
    }

    /// NIO's verifier feeds the inputs whole, byte by byte (each byte in a buffer with a non-zero reader
    /// index) and all concatenated, through `ByteToMessageHandler`, and checks nothing is left over.
    @Test func byteToMessageDecoderVerifierAcceptsEveryPacketAndTextLines() throws {
        var pairs: [(ByteBuffer, [GearmanFrame])] = []
        for magic in Self.magics {
            for sample in PacketSamples.all {
                pairs.append(
                    (GearmanPacketEncoder.encode(sample.packet, magic: magic), [.packet(sample.packet, magic: magic)]))
            }
        }
        pairs.append((buf("status\r\n"), [.text(buf("status"))]))
        pairs.append((buf("workers\n"), [.text(buf("workers"))]))
        pairs.append((buf("show jobs\nversion\r\n"), [.text(buf("show jobs")), .text(buf("version"))]))
        pairs.append((buf("\n"), [.text(buf(""))]))

        try ByteToMessageDecoderVerifier.verifyDecoder(inputOutputPairs: pairs) { GearmanFrameDecoder() }
    }
}
