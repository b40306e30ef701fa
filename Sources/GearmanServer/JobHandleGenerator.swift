import NIOCore

/// Makes job handles that are unique and unguessable.
///
/// A handle is `<prefix>:<start>-<counter>-<tag>`: `start` is random per server start (so handles
/// of replayed jobs never collide with new ones), `counter` counts up, and `tag` is a keyed hash of
/// the counter under a secret drawn at start, so seeing one handle does not reveal the next.
/// The whole handle is at most 63 bytes, as libgearman keeps handles in a 64-byte buffer.
struct JobHandleGenerator {
    static let maxHandleLength = 63
    /// The longest prefix that still leaves room for the rest of a handle.
    static let maxPrefixLength = maxHandleLength - 1 - 8 - 1 - 20 - 1 - 12

    let prefix: String
    private let start: String
    private let key0: UInt64
    private let key1: UInt64
    private var counter: UInt64 = 0

    init<R: RandomNumberGenerator>(prefix: String, using generator: inout R) {
        precondition(prefix.utf8.count <= Self.maxPrefixLength, "job handle prefix too long")
        self.prefix = prefix
        let startValue = UInt32.random(in: .min ... .max, using: &generator)
        self.start = Self.hex(UInt64(startValue), digits: 8)
        self.key0 = UInt64.random(in: .min ... .max, using: &generator)
        self.key1 = UInt64.random(in: .min ... .max, using: &generator)
    }

    init(prefix: String) {
        var generator = SystemRandomNumberGenerator()
        self.init(prefix: prefix, using: &generator)
    }

    mutating func next() -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.reserveCapacity(Self.maxHandleLength)
        write(into: &buffer)
        return buffer
    }

    /// Writes the next handle at the end of `buffer` (at most `maxHandleLength` bytes).
    mutating func write(into buffer: inout ByteBuffer) {
        self.counter += 1
        var hasher = Hasher()
        hasher.combine(self.key0)
        hasher.combine(self.counter)
        hasher.combine(self.key1)
        let tag = UInt64(bitPattern: Int64(hasher.finalize())) & 0xFFFF_FFFF_FFFF
        buffer.writeString(self.prefix)
        buffer.writeString(":")
        buffer.writeString(self.start)
        buffer.writeString("-")
        buffer.writeString(String(self.counter))
        buffer.writeString("-")
        buffer.writeString(Self.hex(tag, digits: 12))
    }

    private static func hex(_ value: UInt64, digits: Int) -> String {
        let text = String(value, radix: 16)
        return String(repeating: "0", count: max(0, digits - text.count)) + text
    }
}
