import GearmanACL
import Testing

@Suite("Secret hashes")
struct SecretHashTests {
    @Test("SHA-256 matches known vectors")
    func knownVectors() {
        #expect(SecretHash(hashing: "").description
            == "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(SecretHash(hashing: "abc").description
            == "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(SecretHash(hashing: Secrets.web).description == Secrets.webHash)
    }

    @Test("format round trip, upper-case hex accepted and normalised")
    func roundTrip() throws {
        let hash = try #require(SecretHash(parsing: Secrets.resizerHash))
        #expect(hash.description == Secrets.resizerHash)
        #expect(SecretHash(parsing: hash.description) == hash)
        let upper = "sha256:" + Secrets.resizerHash.dropFirst(7).uppercased()
        #expect(SecretHash(parsing: upper) == hash)
        #expect(hash.digest.count == 32)
    }

    @Test("malformed hashes are refused", arguments: [
        "", "sha256:", "sha256:abc", "SHA256:" + String(repeating: "a", count: 64),
        "sha512:" + String(repeating: "a", count: 64), "sha256:" + String(repeating: "a", count: 63),
        "sha256:" + String(repeating: "a", count: 65), "sha256:" + String(repeating: "g", count: 64),
        " sha256:" + String(repeating: "a", count: 64), String(repeating: "a", count: 64),
    ])
    func malformed(_ text: String) {
        #expect(SecretHash(parsing: text) == nil)
    }

    @Test("matches only its own secret")
    func matching() throws {
        let hash = SecretHash(hashing: "one")
        #expect(hash.matches("one"))
        #expect(!hash.matches("one "))
        #expect(!hash.matches("One"))
        #expect(!hash.matches(""))
    }

    @Test("new secrets: 32 random bytes, base64url, distinct, token-safe")
    func newSecrets() {
        var seen: Set<String> = []
        for _ in 0..<100 {
            let secret = SharedSecret.generate()
            #expect(secret.utf8.count == 43)
            #expect(secret.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") })
            #expect(SecretHash(hashing: secret).matches(secret))
            seen.insert(secret)
        }
        #expect(seen.count == 100)
    }

    @Test("base64url encoding of known bytes")
    func base64URL() {
        struct Fixed: RandomNumberGenerator {
            mutating func next() -> UInt64 { 0xFFFF_FFFF_FFFF_FFFF }
        }
        var generator = Fixed()
        // 32 bytes of 0xFF: 42 × "_" and a final "8" (the last 4 bits, then 2 zero bits of padding).
        #expect(SharedSecret.generate(using: &generator) == String(repeating: "_", count: 42) + "8")
    }
}
