import GearmanProtocol
import NIOCore
import Testing

/// Hand-written wire bytes, so the encoder and decoder are checked against the protocol rather than each other.
@Suite struct WireVectorTests {
    struct Vector: Sendable, CustomTestStringConvertible {
        let name: String
        let packet: GearmanPacket
        let magic: PacketMagic
        let bytes: [UInt8]
        var testDescription: String { name }
    }

    /// Magic, then the type and size as big-endian uint32 (all values here are below 256), then the payload.
    static func bytes(_ magic: [UInt8], _ type: UInt8, _ payload: String) -> [UInt8] {
        let payload = Array(payload.utf8)
        return magic + [0, 0, 0, type] + [0, 0, 0, UInt8(payload.count)] + payload
    }

    static let vectors: [Vector] = [
        Vector(
            name: "SUBMIT_JOB reverse",
            packet: .submitJob(
                function: buf("reverse"), unique: buf(""), payload: buf("hello"), priority: .normal, background: false),
            magic: .request,
            bytes: [
                0x00, 0x52, 0x45, 0x51,  // \0REQ
                0x00, 0x00, 0x00, 0x07,  // SUBMIT_JOB
                0x00, 0x00, 0x00, 0x0E,  // 14 bytes
                0x72, 0x65, 0x76, 0x65, 0x72, 0x73, 0x65, 0x00,  // "reverse\0"
                0x00,  // empty unique
                0x68, 0x65, 0x6C, 0x6C, 0x6F,  // "hello"
            ]),
        Vector(
            name: "SUBMIT_JOB_LOW_BG",
            packet: .submitJob(function: buf("f"), unique: buf("u"), payload: buf("d"), priority: .low, background: true),
            magic: .request, bytes: bytes(requestMagicBytes, 34, "f\0u\0d")),
        Vector(
            name: "STATUS_RES_UNIQUE",
            packet: .statusResponseUnique(
                unique: buf("unique"), known: true, running: false, numerator: buf("0"), denominator: buf("0"),
                clients: buf("clients")),
            magic: .response, bytes: bytes(responseMagicBytes, 42, "unique\u{0}1\u{0}0\u{0}0\u{0}0\u{0}clients")),
        Vector(
            name: "STATUS_RES",
            packet: .statusResponse(
                handle: buf("H:h:1"), known: true, running: true, numerator: buf("3"), denominator: buf("10")),
            magic: .response, bytes: bytes(responseMagicBytes, 20, "H:h:1\u{0}1\u{0}1\u{0}3\u{0}10")),
        Vector(
            name: "NOOP", packet: .noop, magic: .response,
            bytes: [0x00, 0x52, 0x45, 0x53, 0, 0, 0, 6, 0, 0, 0, 0]),
        Vector(
            name: "CAN_DO", packet: .canDo(function: buf("reverse")), magic: .request,
            bytes: bytes(requestMagicBytes, 1, "reverse")),
        Vector(
            name: "WORK_STATUS", packet: .workStatus(handle: buf("H:h:1"), numerator: buf("3"), denominator: buf("10")),
            magic: .request, bytes: bytes(requestMagicBytes, 12, "H:h:1\u{0}3\u{0}10")),
        Vector(
            name: "ERROR", packet: .error(code: "QUEUE_ERROR", text: "Job queue is full"), magic: .response,
            bytes: bytes(responseMagicBytes, 19, "QUEUE_ERROR\u{0}Job queue is full")),
        Vector(
            name: "SUBMIT_REDUCE_JOB with libgearman's empty aggregator",
            packet: .submitReduceJob(
                function: buf("map"), unique: buf("u"), reducer: buf("sum"), aggregator: buf(""), payload: buf("data"),
                background: false),
            magic: .request, bytes: bytes(requestMagicBytes, 37, "map\u{0}u\u{0}sum\u{0}\u{0}data")),
        Vector(
            name: "JOB_ASSIGN_UNIQ",
            packet: .jobAssignUnique(handle: buf("H:h:2"), function: buf("f"), unique: buf("u"), payload: buf("x")),
            magic: .response, bytes: bytes(responseMagicBytes, 31, "H:h:2\u{0}f\u{0}u\u{0}x")),
    ]

    @Test(arguments: vectors)
    func encoderWritesExactBytes(vector: Vector) {
        let encoded = GearmanPacketEncoder.encode(vector.packet, magic: vector.magic)
        #expect(Array(encoded.readableBytesView) == vector.bytes)
    }

    @Test(arguments: vectors)
    func decoderReadsExactBytes(vector: Vector) throws {
        var buffer = buf(vector.bytes)
        var decoder = GearmanFrameDecoder()
        #expect(try decoder.decode(buffer: &buffer) == .packet(vector.packet, magic: vector.magic))
        #expect(buffer.readableBytes == 0)
    }

    @Test func statusFlagsOtherThanOneDecodeAsFalse() throws {
        var buffer = wirePacket(
            magic: responseMagicBytes, type: PacketType.statusResponse.rawValue, payload: "H:h:1\u{0}0\u{0}2\u{0}0\u{0}0")
        var decoder = GearmanFrameDecoder()
        let frame = try decoder.decode(buffer: &buffer)
        guard case .packet(.statusResponse(_, let known, let running, _, _), .response) = frame else {
            Issue.record("expected STATUS_RES, got \(String(describing: frame))")
            return
        }
        #expect(!known)
        #expect(!running)
    }
}
