import GearmanProtocol
import NIOCore

/// A connection's pre-authentication cap on packet size, shared by its handler and its decoder
/// (both on the channel's event loop).
final class PreauthenticationGate {
    /// The largest payload accepted before authentication; nil once lifted.
    var limit: UInt32?
    /// Set when decoding stopped at a packet over the cap, to the size it declared.
    var pausedAtSize: UInt32?

    init(limit: UInt32?) {
        self.limit = limit
    }
}

/// Whether the bytes a connection has buffered (the start of a frame not yet complete) are a text
/// line rather than a binary packet, so a timed-out peer is answered in its own dialect.
final class BufferedFrameKind {
    var isText = false
}

/// `GearmanFrameDecoder` behind the pre-authentication gate: while the gate is down, a packet that
/// declares more than the cap is not decoded; decoding pauses there until the server has decided
/// (the packets before it may have authenticated the connection).
struct ServerFrameDecoder: NIOSingleStepByteToMessageDecoder {
    typealias InboundOut = GearmanFrame

    var frames: GearmanFrameDecoder
    let gate: PreauthenticationGate
    let bufferedKind: BufferedFrameKind

    mutating func decode(buffer: inout ByteBuffer) throws -> GearmanFrame? {
        guard passesGate(buffer) else { return nil }
        if let first = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self) {
            bufferedKind.isText = first != 0
        }
        return try frames.decode(buffer: &buffer)
    }

    mutating func decodeLast(buffer: inout ByteBuffer, seenEOF: Bool) throws -> GearmanFrame? {
        guard passesGate(buffer) else { return nil }
        return try frames.decodeLast(buffer: &buffer, seenEOF: seenEOF)
    }

    /// False while paused, or when the next binary packet's header declares more than the cap.
    private func passesGate(_ buffer: ByteBuffer) -> Bool {
        guard let limit = gate.limit else { return true }
        guard gate.pausedAtSize == nil else { return false }
        let start = buffer.readerIndex
        guard buffer.readableBytes >= GearmanFrameDecoder.headerLength,
            buffer.getInteger(at: start, as: UInt8.self) == 0,
            let size = buffer.getInteger(at: start + 8, as: UInt32.self), size > limit
        else { return true }
        gate.pausedAtSize = size
        return false
    }
}
