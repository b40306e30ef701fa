public import NIOCore

/// What one step of the decoder yields: a binary packet or a text (admin) line.
///
/// Each frame is sniffed on its own first byte: `\0` starts a binary packet, anything else a
/// text line, so admin commands and binary packets can be mixed on one connection.
public enum GearmanFrame: Sendable, Hashable {
    case packet(GearmanPacket, magic: PacketMagic)
    /// A text line, without its `\n` and without a trailing `\r`.
    case text(ByteBuffer)
}
