import GearmanProtocol
import NIOCore

/// `\0REQ` and `\0RES`, spelled out so the assertions don't lean on the codec under test.
enum Magic {
    static let request: [UInt8] = [0x00, 0x52, 0x45, 0x51]
    static let response: [UInt8] = [0x00, 0x52, 0x45, 0x53]
}

/// Something that can be one NUL-separated argument of a packet.
protocol WireArgument {
    func write(into buffer: inout ByteBuffer)
}

extension String: WireArgument {
    func write(into buffer: inout ByteBuffer) { buffer.writeString(self) }
}

extension ByteBuffer: WireArgument {
    func write(into buffer: inout ByteBuffer) {
        var copy = self
        buffer.writeBuffer(&copy)
    }
}

extension Array: WireArgument where Element == UInt8 {
    func write(into buffer: inout ByteBuffer) { buffer.writeBytes(self) }
}

/// A binary packet exactly as it travels: magic, type number, and the raw payload.
///
/// The integration tests decode server output with this dumb splitter rather than the project's
/// `GearmanFrameDecoder`, so what they compare is the server's bytes, not the codec's reading of them.
struct RawPacket: Sendable, Hashable, CustomStringConvertible {
    var magic: [UInt8]
    var type: UInt32
    var payload: ByteBuffer

    init(magic: [UInt8], type: UInt32, payload: ByteBuffer) {
        self.magic = magic
        self.type = type
        self.payload = payload
    }

    /// A packet whose payload is `arguments` joined by single NUL bytes.
    init(magic: [UInt8], type: UInt32, _ arguments: [any WireArgument]) {
        var payload = ByteBuffer()
        for (index, argument) in arguments.enumerated() {
            if index > 0 { payload.writeInteger(UInt8(0)) }
            argument.write(into: &payload)
        }
        self.init(magic: magic, type: type, payload: payload)
    }

    /// A packet as the server sends it (`\0RES`).
    static func response(_ type: PacketType, _ arguments: any WireArgument...) -> RawPacket {
        RawPacket(magic: Magic.response, type: type.rawValue, arguments)
    }

    /// A packet as a client or worker sends it (`\0REQ`).
    static func request(_ type: PacketType, _ arguments: any WireArgument...) -> RawPacket {
        RawPacket(magic: Magic.request, type: type.rawValue, arguments)
    }

    static func request(type: UInt32, _ arguments: any WireArgument...) -> RawPacket {
        RawPacket(magic: Magic.request, type: type, arguments)
    }

    /// The ERROR packet `code\0text`.
    static func error(_ code: String, _ text: String) -> RawPacket {
        .response(.error, code, text)
    }

    var packetType: PacketType? { PacketType(rawValue: type) }

    /// Header plus payload.
    var wireBytes: ByteBuffer {
        var buffer = ByteBuffer()
        buffer.reserveCapacity(12 + payload.readableBytes)
        buffer.writeBytes(magic)
        buffer.writeInteger(type)
        buffer.writeInteger(UInt32(payload.readableBytes))
        var payload = self.payload
        buffer.writeBuffer(&payload)
        return buffer
    }

    /// The payload split into `count` arguments: `count - 1` NUL-terminated fields and the rest.
    func arguments(_ count: Int) -> [ByteBuffer] {
        var rest = payload
        var result: [ByteBuffer] = []
        while result.count < count - 1 {
            guard let nul = rest.readableBytesView.firstIndex(of: 0) else { break }
            let length = nul - rest.readerIndex
            result.append(rest.readSlice(length: length)!)
            rest.moveReaderIndex(forwardBy: 1)
        }
        result.append(rest)
        return result
    }

    /// The first NUL-terminated field (or the whole payload), as text: the handle of most packets.
    var firstField: String { String(buffer: arguments(2)[0]) }

    var description: String {
        let name = packetType?.protocolName ?? "type \(type)"
        let magicName = magic == Magic.response ? "RES" : magic == Magic.request ? "REQ" : "\(magic)"
        return "\(magicName) \(name) \(reprBytes(payload))"
    }
}

/// What the server sent: a binary packet, or one text line with its line ending (`\n` or `\r\n`) kept.
enum RawFrame: Sendable, Hashable, CustomStringConvertible {
    case packet(RawPacket)
    case text(String)

    var description: String {
        switch self {
        case .packet(let packet): "packet(\(packet))"
        case .text(let line): "text(\(reprString(line)))"
        }
    }
}

/// Python-`repr`-like rendering, shortened for big payloads, so a failed `#expect` is readable.
func reprBytes(_ buffer: ByteBuffer, limit: Int = 160) -> String {
    let view = buffer.readableBytesView
    var out = "b'"
    for byte in view.prefix(limit) {
        switch byte {
        case 0x5C: out += "\\\\"
        case 0x27: out += "\\'"
        case 0x0A: out += "\\n"
        case 0x0D: out += "\\r"
        case 0x09: out += "\\t"
        case 0x20..<0x7F: out.unicodeScalars.append(Unicode.Scalar(byte))
        default:
            let hex = String(byte, radix: 16)
            out += "\\x" + (hex.count == 1 ? "0" + hex : hex)
        }
    }
    out += "'"
    if view.count > limit { out += "…(\(view.count) bytes)" }
    return out
}

func reprString(_ string: String) -> String {
    reprBytes(ByteBuffer(string: string))
}

/// Splits server output into packets (first byte `\0`) and text lines (anything else).
struct RawFrameDecoder: ByteToMessageDecoder {
    typealias InboundOut = RawFrame

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let first = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self) else { return .needMoreData }
        if first == 0 {
            guard buffer.readableBytes >= 12,
                let size = buffer.getInteger(at: buffer.readerIndex + 8, as: UInt32.self)
            else { return .needMoreData }
            let missing = 12 + Int(size) - buffer.readableBytes
            guard missing <= 0 else {
                // Grow once to the packet's size instead of doubling (a 64 MiB payload would
                // otherwise briefly take 128 MiB and several copies).
                if missing > 1 << 20 { buffer.reserveCapacity(minimumWritableBytes: missing) }
                return .needMoreData
            }
            let magic = buffer.readBytes(length: 4)!
            let type = buffer.readInteger(as: UInt32.self)!
            buffer.moveReaderIndex(forwardBy: 4)
            let payload = buffer.readSlice(length: Int(size))!
            context.fireChannelRead(wrapInboundOut(.packet(RawPacket(magic: magic, type: type, payload: payload))))
            return .continue
        }
        guard let newline = buffer.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) else { return .needMoreData }
        let line = buffer.readString(length: newline - buffer.readerIndex + 1)!
        context.fireChannelRead(wrapInboundOut(.text(line)))
        return .continue
    }

    mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws
        -> DecodingState
    {
        while try decode(context: context, buffer: &buffer) == .continue {}
        if buffer.readableBytes > 0 {
            // A partial frame at EOF: hand it over as text so a test can see it.
            let rest = buffer.readString(length: buffer.readableBytes) ?? ""
            context.fireChannelRead(wrapInboundOut(.text(rest)))
        }
        return .needMoreData
    }
}
