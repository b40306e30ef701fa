import GearmanProtocol
import NIOCore

/// Collects what the server writes to one connection during a processing cycle, so each
/// connection gets one write and one flush per cycle however many packets it was sent.
struct ConnectionOutput {
    let channel: any Channel
    private var buffer: ByteBuffer
    private(set) var isDirty = false

    init(channel: any Channel) {
        self.channel = channel
        self.buffer = channel.allocator.buffer(capacity: 0)
    }

    mutating func append(_ packet: GearmanPacket) {
        isDirty = true
        if let tail = GearmanPacketEncoder.encode(packet, magic: .response, into: &buffer) {
            // A large data tail is written as its own buffer rather than copied.
            channel.write(buffer, promise: nil)
            buffer = channel.allocator.buffer(capacity: 0)
            channel.write(tail, promise: nil)
        }
    }

    mutating func append(text: String) {
        isDirty = true
        buffer.writeString(text)
    }

    /// Writes and flushes what was collected.
    mutating func flush() {
        guard isDirty else { return }
        isDirty = false
        if buffer.readableBytes > 0 {
            channel.write(buffer, promise: nil)
            buffer.clear()
            if buffer.capacity > 64 * 1024 {
                buffer = channel.allocator.buffer(capacity: 0)
            }
        }
        channel.flush()
    }
}
