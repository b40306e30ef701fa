public import NIOCore

/// Splits a byte stream into binary packets and text lines.
///
/// The decoder never reserves memory for a size a header declares: it waits until the bytes
/// have arrived, and rejects a header whose size exceeds `limits.maxPacketSize` as soon as the
/// 12 header bytes are in.
public struct GearmanFrameDecoder: NIOSingleStepByteToMessageDecoder {
    public typealias InboundOut = GearmanFrame

    /// Limits enforced while decoding.
    public struct Limits: Sendable, Hashable {
        /// The largest payload a packet may declare. Default: the protocol's maximum, 4 GiB − 1.
        public var maxPacketSize: UInt32
        /// The longest argument other than a data tail (function names, handles, uniques, option
        /// names, client ids). Default: 8 KiB, gearmand's receive-buffer bound.
        public var maxFieldSize: Int
        /// The longest text line, newline included. Default: 8 KiB, as gearmand.
        public var maxTextLineLength: Int

        public init(maxPacketSize: UInt32 = .max, maxFieldSize: Int = 8192, maxTextLineLength: Int = 8192) {
            self.maxPacketSize = maxPacketSize
            self.maxFieldSize = maxFieldSize
            self.maxTextLineLength = maxTextLineLength
        }
    }

    public static let headerLength = 12

    public var limits: Limits

    public init(limits: Limits = Limits()) {
        self.limits = limits
    }

    public mutating func decode(buffer: inout ByteBuffer) throws(GearmanProtocolError) -> GearmanFrame? {
        guard let first = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self) else { return nil }
        if first != 0 {
            return try self.decodeTextLine(buffer: &buffer)
        }
        return try self.decodePacket(buffer: &buffer)
    }

    public mutating func decodeLast(buffer: inout ByteBuffer, seenEOF: Bool) throws(GearmanProtocolError) -> GearmanFrame? {
        try self.decode(buffer: &buffer)
    }

    private func decodeTextLine(buffer: inout ByteBuffer) throws(GearmanProtocolError) -> GearmanFrame? {
        let searchLength = min(buffer.readableBytes, self.limits.maxTextLineLength)
        let newline = buffer.withUnsafeReadableBytes { bytes in
            bytes[..<searchLength].firstIndex(of: UInt8(ascii: "\n"))
        }
        guard let newline else {
            if buffer.readableBytes >= self.limits.maxTextLineLength {
                throw GearmanProtocolError(
                    code: .textLineTooLong,
                    message: "text line longer than \(self.limits.maxTextLineLength) bytes without a newline",
                    offendingBytes: buffer.getBytes(at: buffer.readerIndex, length: 32) ?? [])
            }
            return nil
        }
        var line = buffer.readSlice(length: newline + 1)!
        line.moveWriterIndex(to: line.writerIndex - 1)
        if line.readableBytes > 0, line.getInteger(at: line.writerIndex - 1, as: UInt8.self) == UInt8(ascii: "\r") {
            line.moveWriterIndex(to: line.writerIndex - 1)
        }
        return .text(line)
    }

    private func decodePacket(buffer: inout ByteBuffer) throws(GearmanProtocolError) -> GearmanFrame? {
        let start = buffer.readerIndex
        guard let magicValue = buffer.getInteger(at: start, as: UInt32.self) else {
            // Check the bytes we do have, so garbage is rejected without waiting for more.
            let available = buffer.getBytes(at: start, length: buffer.readableBytes) ?? []
            let request: [UInt8] = [0, 0x52, 0x45, 0x51]
            let response: [UInt8] = [0, 0x52, 0x45, 0x53]
            if !request.starts(with: available) && !response.starts(with: available) {
                throw Self.invalidMagic(available)
            }
            return nil
        }
        let magic: PacketMagic
        switch magicValue {
        case PacketMagic.requestBytes: magic = .request
        case PacketMagic.responseBytes: magic = .response
        default: throw Self.invalidMagic(buffer.getBytes(at: start, length: 4) ?? [])
        }
        guard let typeValue = buffer.getInteger(at: start + 4, as: UInt32.self),
            let size = buffer.getInteger(at: start + 8, as: UInt32.self)
        else { return nil }
        guard let type = PacketType(rawValue: typeValue) else {
            throw GearmanProtocolError(
                code: .unknownPacketType, message: "unknown packet type \(typeValue)",
                offendingBytes: buffer.getBytes(at: start, length: 12) ?? [])
        }
        guard size <= self.limits.maxPacketSize else {
            throw GearmanProtocolError(
                code: .packetTooLarge,
                message: "\(type.protocolName) declares \(size) bytes, over the limit of \(self.limits.maxPacketSize)",
                offendingBytes: buffer.getBytes(at: start, length: 12) ?? [])
        }
        guard buffer.readableBytes - Self.headerLength >= Int(size) else { return nil }
        buffer.moveReaderIndex(forwardBy: Self.headerLength)
        let payload = buffer.readSlice(length: Int(size))!
        return .packet(try Self.parse(type: type, payload: payload, limits: self.limits), magic: magic)
    }

    private static func invalidMagic(_ bytes: [UInt8]) -> GearmanProtocolError {
        GearmanProtocolError(
            code: .invalidMagic, message: "binary packet without \\0REQ or \\0RES magic", offendingBytes: bytes)
    }

    /// Splits a payload into the arguments its packet type carries.
    static func parse(type: PacketType, payload: ByteBuffer, limits: Limits) throws(GearmanProtocolError) -> GearmanPacket {
        var reader = ArgumentReader(payload: payload, type: type, maxFieldSize: limits.maxFieldSize)
        switch type {
        case .canDo: return .canDo(function: try reader.last())
        case .cantDo: return .cantDo(function: try reader.last())
        case .resetAbilities: try reader.none(); return .resetAbilities
        case .preSleep: try reader.none(); return .preSleep
        case .unused: return .unused
        case .noop: try reader.none(); return .noop
        case .grabJob: try reader.none(); return .grabJob
        case .grabJobUnique: try reader.none(); return .grabJobUnique
        case .grabJobAll: try reader.none(); return .grabJobAll
        case .noJob: try reader.none(); return .noJob
        case .allYours: return .allYours
        case .submitJob, .submitJobHigh, .submitJobLow, .submitJobBackground, .submitJobHighBackground,
            .submitJobLowBackground:
            let priority: JobPriority
            let background: Bool
            switch type {
            case .submitJobHigh: (priority, background) = (.high, false)
            case .submitJobLow: (priority, background) = (.low, false)
            case .submitJobBackground: (priority, background) = (.normal, true)
            case .submitJobHighBackground: (priority, background) = (.high, true)
            case .submitJobLowBackground: (priority, background) = (.low, true)
            default: (priority, background) = (.normal, false)
            }
            return .submitJob(
                function: try reader.field(), unique: try reader.field(), payload: reader.data(),
                priority: priority, background: background)
        case .submitJobEpoch:
            return .submitJobEpoch(
                function: try reader.field(), unique: try reader.field(), epoch: try reader.field(),
                payload: reader.data())
        case .submitJobSched:
            let function = try reader.field()
            let unique = try reader.field()
            let schedule = CronFields(
                minute: try reader.field(), hour: try reader.field(), dayOfMonth: try reader.field(),
                month: try reader.field(), dayOfWeek: try reader.field())
            return .submitJobSched(function: function, unique: unique, schedule: schedule, payload: reader.data())
        case .submitReduceJob, .submitReduceJobBackground:
            return .submitReduceJob(
                function: try reader.field(), unique: try reader.field(), reducer: try reader.field(),
                aggregator: try reader.field(), payload: reader.data(), background: type == .submitReduceJobBackground)
        case .jobCreated: return .jobCreated(handle: try reader.last())
        case .jobAssign:
            return .jobAssign(handle: try reader.field(), function: try reader.field(), payload: reader.data())
        case .jobAssignUnique:
            return .jobAssignUnique(
                handle: try reader.field(), function: try reader.field(), unique: try reader.field(),
                payload: reader.data())
        case .jobAssignAll:
            return .jobAssignAll(
                handle: try reader.field(), function: try reader.field(), unique: try reader.field(),
                reducer: try reader.field(), payload: reader.data())
        case .workStatus:
            return .workStatus(handle: try reader.field(), numerator: try reader.field(), denominator: try reader.last())
        case .workComplete: return .workComplete(handle: try reader.field(), payload: reader.data())
        case .workFail: return .workFail(handle: try reader.last())
        case .workException: return .workException(handle: try reader.field(), payload: reader.data())
        case .workData: return .workData(handle: try reader.field(), payload: reader.data())
        case .workWarning: return .workWarning(handle: try reader.field(), payload: reader.data())
        case .getStatus: return .getStatus(handle: try reader.last())
        case .getStatusUnique: return .getStatusUnique(unique: try reader.last())
        case .echoRequest: return .echoRequest(payload: reader.data())
        case .echoResponse: return .echoResponse(payload: reader.data())
        case .error: return .error(code: try reader.field(), text: try reader.last())
        case .statusResponse:
            return .statusResponse(
                handle: try reader.field(), known: try reader.flag(), running: try reader.flag(),
                numerator: try reader.field(), denominator: try reader.last())
        case .statusResponseUnique:
            return .statusResponseUnique(
                unique: try reader.field(), known: try reader.flag(), running: try reader.flag(),
                numerator: try reader.field(), denominator: try reader.field(), clients: try reader.last())
        case .setClientID: return .setClientID(id: try reader.last())
        case .canDoTimeout: return .canDoTimeout(function: try reader.field(), timeout: try reader.last())
        case .optionRequest: return .optionRequest(name: try reader.last())
        case .optionResponse: return .optionResponse(name: try reader.last())
        }
    }
}

/// Reads NUL-separated arguments off one packet's payload.
private struct ArgumentReader {
    var payload: ByteBuffer
    let type: PacketType
    let maxFieldSize: Int
    var index = 0

    init(payload: ByteBuffer, type: PacketType, maxFieldSize: Int) {
        self.payload = payload
        self.type = type
        self.maxFieldSize = maxFieldSize
    }

    /// A NUL-terminated field.
    mutating func field() throws(GearmanProtocolError) -> ByteBuffer {
        self.index += 1
        let nul = self.payload.withUnsafeReadableBytes { $0.firstIndex(of: 0) }
        guard let nul else {
            throw GearmanProtocolError(
                code: .missingArgument,
                message: "\(type.protocolName) needs \(type.argumentLayout.fields) NUL-terminated arguments; "
                    + "argument \(index) has no terminator")
        }
        try self.check(length: nul)
        let field = self.payload.readSlice(length: nul)!
        self.payload.moveReaderIndex(forwardBy: 1)
        return field
    }

    /// The last field of a packet without a data tail: the rest of the payload.
    mutating func last() throws(GearmanProtocolError) -> ByteBuffer {
        self.index += 1
        try self.check(length: self.payload.readableBytes)
        return self.payload.readSlice(length: self.payload.readableBytes)!
    }

    /// A `0`/`1` flag field.
    mutating func flag() throws(GearmanProtocolError) -> Bool {
        let field = try self.field()
        return field.readableBytes == 1 && field.getInteger(at: field.readerIndex, as: UInt8.self) == UInt8(ascii: "1")
    }

    /// The opaque data tail.
    mutating func data() -> ByteBuffer {
        self.payload.readSlice(length: self.payload.readableBytes)!
    }

    /// A packet type without arguments must have an empty payload.
    func none() throws(GearmanProtocolError) {
        guard self.payload.readableBytes == 0 else {
            throw GearmanProtocolError(
                code: .unexpectedPayload,
                message: "\(type.protocolName) carries no arguments but arrived with \(payload.readableBytes) bytes")
        }
    }

    private func check(length: Int) throws(GearmanProtocolError) {
        guard length <= self.maxFieldSize else {
            throw GearmanProtocolError(
                code: .fieldTooLong,
                message: "argument \(index) of \(type.protocolName) is \(length) bytes, over the limit of \(maxFieldSize)")
        }
    }
}
