/// Fresh shared secrets for `auth:<principal>:<secret>` tokens.
public enum SharedSecret {
    /// Random bytes in a new secret: 256 bits, so the unsalted SHA-256 in the file cannot be
    /// reversed by guessing.
    public static let byteCount = 32

    /// A new secret: `byteCount` bytes from `generator`, base64url without padding (43 characters
    /// of `A–Z a–z 0–9 - _`: no `:` or space, so it fits the auth token and the admin `auth` line).
    public static func generate(using generator: inout some RandomNumberGenerator) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(byteCount)
        while bytes.count < byteCount {
            withUnsafeBytes(of: generator.next() as UInt64) { bytes.append(contentsOf: $0.prefix(byteCount - bytes.count)) }
        }
        return base64URL(bytes)
    }

    /// A new secret from the system's cryptographically secure generator.
    public static func generate() -> String {
        var generator = SystemRandomNumberGenerator()
        return generate(using: &generator)
    }

    static func base64URL(_ bytes: [UInt8]) -> String {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)
        var output: [UInt8] = []
        var index = 0
        while index < bytes.count {
            let chunk = bytes[index..<min(index + 3, bytes.count)]
            var value = UInt32(0)
            for (offset, byte) in chunk.enumerated() { value |= UInt32(byte) << (16 - 8 * offset) }
            let characters = chunk.count + 1  // 1 byte → 2 characters, 2 → 3, 3 → 4
            for position in 0..<characters {
                output.append(alphabet[Int((value >> (18 - 6 * position)) & 0x3F)])
            }
            index += 3
        }
        return String(decoding: output, as: UTF8.self)
    }
}
