public import NIOCore

/// Writes binary packets.
///
/// Large data tails are not copied: `encode` writes the header and the NUL-terminated fields, and
/// hands back a data tail longer than `inlineDataLimit` for the caller to write as its own buffer.
public enum GearmanPacketEncoder {
    /// Data tails up to this many bytes are copied next to the header (one write beats two for small packets).
    public static let defaultInlineDataLimit = 16 * 1024

    /// Encodes `packet` into `buffer`.
    /// - Returns: the data tail still to be written after `buffer`, when it was longer than `inlineDataLimit`.
    @discardableResult
    public static func encode(
        _ packet: GearmanPacket, magic: PacketMagic, into buffer: inout ByteBuffer,
        inlineDataLimit: Int = defaultInlineDataLimit
    ) -> ByteBuffer? {
        let start = buffer.writerIndex
        buffer.writeInteger(magic.wireValue)
        buffer.writeInteger(packet.type.rawValue)
        buffer.writeInteger(UInt32(0))  // size, set below
        var tail: ByteBuffer?

        func field(_ value: ByteBuffer) {
            var value = value
            buffer.writeBuffer(&value)
            buffer.writeInteger(UInt8(0))
        }
        func last(_ value: ByteBuffer) {
            var value = value
            buffer.writeBuffer(&value)
        }
        func flag(_ value: Bool) {
            buffer.writeInteger(value ? UInt8(ascii: "1") : UInt8(ascii: "0"))
            buffer.writeInteger(UInt8(0))
        }
        func data(_ value: ByteBuffer) {
            if value.readableBytes > inlineDataLimit {
                tail = value
            } else {
                var value = value
                buffer.writeBuffer(&value)
            }
        }

        switch packet {
        case .canDo(let function), .cantDo(let function):
            last(function)
        case .resetAbilities, .preSleep, .grabJob, .grabJobUnique, .grabJobAll, .allYours, .noop, .noJob, .unused:
            break
        case .canDoTimeout(let function, let timeout):
            field(function)
            last(timeout)
        case .workStatus(let handle, let numerator, let denominator):
            field(handle)
            field(numerator)
            last(denominator)
        case .workComplete(let handle, let payload), .workException(let handle, let payload),
            .workData(let handle, let payload), .workWarning(let handle, let payload):
            field(handle)
            data(payload)
        case .workFail(let handle), .jobCreated(let handle), .getStatus(let handle):
            last(handle)
        case .submitJob(let function, let unique, let payload, _, _):
            field(function)
            field(unique)
            data(payload)
        case .submitJobEpoch(let function, let unique, let epoch, let payload):
            field(function)
            field(unique)
            field(epoch)
            data(payload)
        case .submitJobSched(let function, let unique, let schedule, let payload):
            field(function)
            field(unique)
            field(schedule.minute)
            field(schedule.hour)
            field(schedule.dayOfMonth)
            field(schedule.month)
            field(schedule.dayOfWeek)
            data(payload)
        case .submitReduceJob(let function, let unique, let reducer, let aggregator, let payload, _):
            field(function)
            field(unique)
            field(reducer)
            field(aggregator)
            data(payload)
        case .getStatusUnique(let unique):
            last(unique)
        case .optionRequest(let name), .optionResponse(let name):
            last(name)
        case .echoRequest(let payload), .echoResponse(let payload):
            data(payload)
        case .setClientID(let id):
            last(id)
        case .jobAssign(let handle, let function, let payload):
            field(handle)
            field(function)
            data(payload)
        case .jobAssignUnique(let handle, let function, let unique, let payload):
            field(handle)
            field(function)
            field(unique)
            data(payload)
        case .jobAssignAll(let handle, let function, let unique, let reducer, let payload):
            field(handle)
            field(function)
            field(unique)
            field(reducer)
            data(payload)
        case .error(let code, let text):
            field(code)
            last(text)
        case .statusResponse(let handle, let known, let running, let numerator, let denominator):
            field(handle)
            flag(known)
            flag(running)
            field(numerator)
            last(denominator)
        case .statusResponseUnique(let unique, let known, let running, let numerator, let denominator, let clients):
            field(unique)
            flag(known)
            flag(running)
            field(numerator)
            field(denominator)
            last(clients)
        }
        let size = buffer.writerIndex - start - GearmanFrameDecoder.headerLength + (tail?.readableBytes ?? 0)
        precondition(size <= Int(UInt32.max), "a Gearman packet payload is at most 4 GiB - 1 bytes")
        buffer.setInteger(UInt32(size), at: start + 8)
        return tail
    }

    /// Encodes `packet` into one fresh buffer, data tail included.
    public static func encode(
        _ packet: GearmanPacket, magic: PacketMagic, allocator: ByteBufferAllocator = ByteBufferAllocator()
    ) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: 64)
        if var tail = encode(packet, magic: magic, into: &buffer, inlineDataLimit: .max) {
            buffer.writeBuffer(&tail)
        }
        return buffer
    }
}
