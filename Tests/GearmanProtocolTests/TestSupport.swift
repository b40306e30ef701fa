import GearmanProtocol
import NIOCore
import Testing

/// `\0REQ`, written out by hand so the tests don't lean on the encoder's own constants.
let requestMagicBytes: [UInt8] = [0x00, 0x52, 0x45, 0x51]
/// `\0RES`.
let responseMagicBytes: [UInt8] = [0x00, 0x52, 0x45, 0x53]

/// A buffer holding the UTF-8 bytes of `string` (`\0` in a literal is a NUL byte).
func buf(_ string: String) -> ByteBuffer {
    ByteBuffer(string: string)
}

/// A buffer holding `bytes`.
func buf(_ bytes: [UInt8]) -> ByteBuffer {
    ByteBuffer(bytes: bytes)
}

/// A 12-byte binary header.
func header(magic: [UInt8] = requestMagicBytes, type: UInt32, size: UInt32) -> ByteBuffer {
    var buffer = ByteBuffer(bytes: magic)
    buffer.writeInteger(type)
    buffer.writeInteger(size)
    return buffer
}

/// A whole binary packet whose size field is the payload's length.
func wirePacket(magic: [UInt8] = requestMagicBytes, type: UInt32, payload: [UInt8]) -> ByteBuffer {
    var buffer = header(magic: magic, type: type, size: UInt32(payload.count))
    buffer.writeBytes(payload)
    return buffer
}

func wirePacket(magic: [UInt8] = requestMagicBytes, type: UInt32, payload: String) -> ByteBuffer {
    wirePacket(magic: magic, type: type, payload: Array(payload.utf8))
}

func wirePacket(magic: [UInt8] = requestMagicBytes, type: PacketType, payload: String) -> ByteBuffer {
    wirePacket(magic: magic, type: type.rawValue, payload: Array(payload.utf8))
}

/// Runs the decoder until it asks for more bytes, returning every frame it produced.
func decodeAll(
    _ buffer: inout ByteBuffer, limits: GearmanFrameDecoder.Limits = .init()
) throws(GearmanProtocolError) -> [GearmanFrame] {
    var decoder = GearmanFrameDecoder(limits: limits)
    var frames: [GearmanFrame] = []
    while let frame = try decoder.decode(buffer: &buffer) {
        frames.append(frame)
    }
    return frames
}

/// Decodes `input` once and returns the error it must throw; records an issue when it doesn't throw.
@discardableResult
func decodeError(
    _ input: ByteBuffer, limits: GearmanFrameDecoder.Limits = .init(),
    sourceLocation: SourceLocation = #_sourceLocation
) -> GearmanProtocolError? {
    var decoder = GearmanFrameDecoder(limits: limits)
    var buffer = input
    do {
        let frame = try decoder.decode(buffer: &buffer)
        Issue.record("expected a decoding error, got \(String(describing: frame))", sourceLocation: sourceLocation)
        return nil
    } catch {
        return error
    }
}

/// The payload bytes of a text frame, as a string.
func textLine(_ frame: GearmanFrame?) -> String? {
    guard case .text(let line) = frame else { return nil }
    return String(buffer: line)
}
