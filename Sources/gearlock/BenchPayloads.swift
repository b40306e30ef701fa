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
        // Straight into the buffer's memory: a 1 GiB payload (huge mode) is 2^27 words.
        storage.writeWithUnsafeMutableBytes(minimumWritableBytes: words * 8) { bytes in
            for word in 0..<words {
                bytes.storeBytes(of: Self.word(word, seed: seed).littleEndian, toByteOffset: word * 8, as: UInt64.self)
            }
            return words * 8
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

    /// Word `index` of the buffer the payloads are cut from.
    @inline(__always)
    private static func word(_ index: Int, seed: UInt64) -> UInt64 {
        (UInt64(index) ^ seed) &* multiplier
    }

    /// The offset of the first byte where `received` differs from payload 0 of
    /// `BenchPayloads(size: size, count: 1, seed: seed)`, or nil when it is that payload byte for
    /// byte. The expected bytes are computed again word by word, so a payload too large to keep
    /// twice (`gearlock bench --mode huge`) is checked without a second copy. A `received` of
    /// another length differs at the end of the shorter one.
    static func firstDifference(in received: ByteBuffer, size: Int, seed: UInt64) -> Int? {
        received.withUnsafeReadableBytes { bytes -> Int? in
            let common = min(bytes.count, size)
            for index in 0..<(common / 8) {
                let expected = word(index, seed: seed)
                if UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: index * 8, as: UInt64.self)) != expected {
                    return firstDifferingByte(of: expected, at: index * 8, in: bytes, upTo: common)
                }
            }
            if common % 8 != 0 {
                let start = common - common % 8
                if let offset = firstDifferingByte(of: word(start / 8, seed: seed), at: start, in: bytes, upTo: common) {
                    return offset
                }
            }
            return bytes.count == size ? nil : common
        }
    }

    /// The first of the bytes `start..<min(start + 8, end)` that differs from the little-endian
    /// bytes of `word`.
    private static func firstDifferingByte(of word: UInt64, at start: Int, in bytes: UnsafeRawBufferPointer, upTo end: Int) -> Int? {
        var expected = word
        for offset in start..<min(start + 8, end) {
            if bytes[offset] != UInt8(truncatingIfNeeded: expected) { return offset }
            expected >>= 8
        }
        return nil
    }

    /// Whether `received` is byte for byte `expected` (ByteBuffer's `==` compares the readable
    /// bytes with memcmp).
    @inline(__always)
    static func same(_ received: ByteBuffer, _ expected: ByteBuffer) -> Bool {
        received == expected
    }
}
