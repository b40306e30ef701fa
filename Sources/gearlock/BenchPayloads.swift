import NIOCore

/// The payloads `gearlock bench` sends: `count` different byte strings of `size` bytes each.
///
/// They are all slices of one buffer of 64-bit words, payload `i` starting at word `i`, so they
/// cost `size + 8 × count` bytes in all, and sending one copies nothing in the bench. Word `j` is
/// `(j ^ seed) × K` for an odd `K`, a bijection: no two words are equal, so payloads of 8 bytes
/// or more all differ, and a worker tells which one it was given from its first 8 bytes (used to
/// verify background jobs, which no client sees again). Payloads shorter than 8 bytes cannot be
/// told apart: there is then a single payload.
struct BenchPayloads: Sendable {
    let size: Int
    private let payloads: [ByteBuffer]
    private let seed: UInt64

    private static let multiplier: UInt64 = 0x9E37_79B9_7F4A_7C15
    /// The inverse of `multiplier` modulo 2^64 (Newton's iteration doubles the correct bits each step).
    private static let inverseMultiplier: UInt64 = {
        var inverse = multiplier
        for _ in 0..<6 {
            inverse = inverse &* (2 &- multiplier &* inverse)
        }
        return inverse
    }()

    var count: Int { payloads.count }

    init(size: Int, count requested: Int, seed: UInt64) {
        precondition(size >= 0 && requested >= 1)
        self.size = size
        self.seed = seed
        let count = size >= 8 ? requested : 1
        let words = (size + 7) / 8 + count - 1
        var storage = ByteBufferAllocator().buffer(capacity: words * 8)
        for word in 0..<words {
            storage.writeInteger((UInt64(word) ^ seed) &* Self.multiplier, endianness: .little)
        }
        payloads = (0..<count).map { storage.getSlice(at: $0 * 8, length: size)! }
    }

    /// Payload `index % count`.
    subscript(index: Int) -> ByteBuffer {
        payloads[index % payloads.count]
    }

    /// Whether `received` is byte for byte one of the payloads.
    func isPayload(_ received: ByteBuffer) -> Bool {
        index(of: received) != nil
    }

    /// Which payload `received` is, byte for byte, or nil if it is none of them. (Always 0 for
    /// payloads shorter than 8 bytes, of which there is one.)
    func index(of received: ByteBuffer) -> Int? {
        guard received.readableBytes == size else { return nil }
        guard size >= 8 else { return received == payloads[0] ? 0 : nil }
        guard let first = received.getInteger(at: received.readerIndex, endianness: .little, as: UInt64.self) else {
            return nil
        }
        let index = (first &* Self.inverseMultiplier) ^ seed
        guard index < UInt64(payloads.count), received == payloads[Int(index)] else { return nil }
        return Int(index)
    }

    /// Whether `received` is byte for byte `expected` (ByteBuffer's `==` compares the readable
    /// bytes with memcmp).
    @inline(__always)
    static func same(_ received: ByteBuffer, _ expected: ByteBuffer) -> Bool {
        received == expected
    }
}
