import GearmanProtocol
import NIOCore

/// Collects what the server writes to one connection during a processing cycle, so each
/// connection gets one write and one flush per cycle however many packets it was sent.
///
/// Collecting touches no channel: `take()` hands the bytes over as `ConnectionWrites`, written
/// once no access to the output is held. Writing or flushing can close the channel (the peer
/// reset it), whose handler then reports the closed connection to the core at once — which
/// removes this output from the core's table.
struct ConnectionOutput {
    let channel: any Channel
    private var buffer: ByteBuffer
    /// Buffers finished before `buffer`, in order: a packet's large data tail ends one.
    private var finished: [ByteBuffer] = []
    private(set) var isDirty = false

    init(channel: any Channel) {
        self.channel = channel
        self.buffer = channel.allocator.buffer(capacity: 0)
    }

    mutating func append(_ packet: GearmanPacket) {
        isDirty = true
        if let tail = GearmanPacketEncoder.encode(packet, magic: .response, into: &buffer) {
            // A large data tail is written as its own buffer rather than copied.
            finished.append(buffer)
            finished.append(tail)
            buffer = channel.allocator.buffer(capacity: 0)
        }
    }

    mutating func append(text: String) {
        isDirty = true
        buffer.writeString(text)
    }

    /// What was collected since the last call, or nil when nothing was.
    mutating func take() -> ConnectionWrites? {
        guard isDirty else { return nil }
        isDirty = false
        var writes = ConnectionWrites(channel: channel, buffers: [], last: nil)
        if !finished.isEmpty {
            swap(&writes.buffers, &finished)
        }
        if buffer.readableBytes > 0 {
            writes.last = buffer
            if buffer.capacity > 64 * 1024 {
                buffer = channel.allocator.buffer(capacity: 0)
            } else {
                buffer.clear()
            }
        }
        return writes
    }
}

/// One cycle's bytes for one connection, taken from its `ConnectionOutput`.
struct ConnectionWrites: Sendable {
    let channel: any Channel
    var buffers: [ByteBuffer]
    var last: ByteBuffer?

    /// Writes and flushes: at once on the channel's own loop (which may re-enter the core, see
    /// `ConnectionOutput`), else in one hop to that loop.
    func writeAndFlush() {
        if channel.eventLoop.inEventLoop {
            writeAndFlushNow()
        } else {
            channel.eventLoop.execute { [self] in writeAndFlushNow() }
        }
    }

    private func writeAndFlushNow() {
        for buffer in buffers {
            channel.write(buffer, promise: nil)
        }
        if let last {
            channel.write(last, promise: nil)
        }
        channel.flush()
    }
}
