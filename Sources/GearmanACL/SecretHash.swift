internal import COpenSSL

/// The SHA-256 hash of a shared secret, as the ACL file stores it: `sha256:<64 hex digits>`.
///
/// The secret is hashed as the UTF-8 bytes of its text (exactly what follows
/// `auth:<principal>:` in the token). Plain SHA-256 without salt or stretching is enough because
/// secrets are 256-bit random values (`gearlock acl new-secret`), not passwords a person chose: no
/// dictionary covers them. Never put a human-chosen password here.
public struct SecretHash: Sendable, Hashable, CustomStringConvertible {
    static let prefix = "sha256:"
    static let digestLength = 32

    /// The 32 digest bytes.
    public let digest: [UInt8]

    /// Parses `sha256:<64 hex digits>` (either case); nil for anything else.
    public init?(parsing text: String) {
        guard text.hasPrefix(Self.prefix) else { return nil }
        let hex = Array(text.utf8.dropFirst(Self.prefix.utf8.count))
        guard hex.count == Self.digestLength * 2 else { return nil }
        var digest: [UInt8] = []
        digest.reserveCapacity(Self.digestLength)
        var index = 0
        while index < hex.count {
            guard let high = Self.hexValue(hex[index]), let low = Self.hexValue(hex[index + 1]) else { return nil }
            digest.append(high << 4 | low)
            index += 2
        }
        self.digest = digest
    }

    /// The hash of `secret`.
    public init(hashing secret: String) {
        self.digest = Self.sha256(Array(secret.utf8))
    }

    /// `sha256:<64 lowercase hex digits>`, the form the ACL file takes.
    public var description: String {
        let digits = Array("0123456789abcdef".utf8)
        var text = Self.prefix
        text.reserveCapacity(Self.prefix.utf8.count + 2 * digest.count)
        for byte in digest {
            text.unicodeScalars.append(Unicode.Scalar(digits[Int(byte >> 4)]))
            text.unicodeScalars.append(Unicode.Scalar(digits[Int(byte & 0x0F)]))
        }
        return text
    }

    /// Whether `secret` hashes to this hash. The comparison takes the same time wherever the
    /// digests differ (`CRYPTO_memcmp`).
    public func matches(_ secret: String) -> Bool {
        Self.constantTimeEqual(Self.sha256(Array(secret.utf8)), digest)
    }

    static func constantTimeEqual(_ lhs: [UInt8], _ rhs: [UInt8]) -> Bool {
        guard lhs.count == rhs.count else { return false }
        return lhs.withUnsafeBytes { left in
            rhs.withUnsafeBytes { right in
                CRYPTO_memcmp(left.baseAddress, right.baseAddress, left.count) == 0
            }
        }
    }

    static func sha256(_ bytes: [UInt8]) -> [UInt8] {
        var digest = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        let status = bytes.withUnsafeBytes { input in
            EVP_Digest(input.baseAddress, input.count, &digest, &length, EVP_sha256(), nil)
        }
        // SHA-256 in the default provider cannot fail short of memory exhaustion; carrying on with
        // a zero digest would be a silent security bug, so stop instead.
        precondition(status == 1 && Int(length) == digestLength, "EVP_Digest(SHA-256) failed")
        return Array(digest.prefix(digestLength))
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
