internal import CGearlockOpenSSL
internal import COpenSSL

/// An `EVP_PKEY` owned by Swift: generated, or read from an unencrypted PEM file.
final class OpenSSLPrivateKey {
    let pointer: OpaquePointer

    private init(pointer: OpaquePointer) {
        self.pointer = pointer
    }

    deinit {
        EVP_PKEY_free(pointer)
    }

    static func generate(_ algorithm: CertificateAuthority.KeyAlgorithm) throws(CertificateAuthorityError)
        -> OpenSSLPrivateKey
    {
        OpenSSLErrorQueue.clear()
        let key: OpaquePointer? =
            switch algorithm {
            case .ecP256: CGearlockOpenSSL_EVP_EC_gen("P-256")
            case .ecP384: CGearlockOpenSSL_EVP_EC_gen("P-384")
            case .rsa2048: CGearlockOpenSSL_EVP_RSA_gen(2048)
            case .rsa3072: CGearlockOpenSSL_EVP_RSA_gen(3072)
            case .rsa4096: CGearlockOpenSSL_EVP_RSA_gen(4096)
            }
        guard let key else { throw .crypto("cannot generate a \(algorithm.rawValue) key") }
        return OpenSSLPrivateKey(pointer: key)
    }

    static func load(_ path: String) throws(CertificateAuthorityError) -> OpenSSLPrivateKey {
        let pem = try PKIFileSystem.readFile(path)
        OpenSSLErrorQueue.clear()
        // A callback that gives no passphrase: an encrypted key fails here instead of prompting.
        let key = OpenSSLMemoryBIO.input(pem) { bio in
            PEM_read_bio_PrivateKey(bio, nil, { _, _, _, _ in 0 }, nil)
        }
        guard let key else {
            throw CertificateAuthorityError(
                code: .invalidAuthority, message: "\(path) holds no unencrypted PEM private key", path: path,
                openSSLErrors: OpenSSLErrorQueue.drain())
        }
        return OpenSSLPrivateKey(pointer: key)
    }

    /// Unencrypted PKCS#8 PEM.
    func pem() throws(CertificateAuthorityError) -> [UInt8] {
        OpenSSLErrorQueue.clear()
        guard let pem = OpenSSLMemoryBIO.output({ PEM_write_bio_PrivateKey($0, pointer, nil, nil, 0, nil, nil) }) else {
            throw .crypto("cannot encode a private key")
        }
        return pem
    }

    var isRSA: Bool {
        EVP_PKEY_is_a(pointer, "RSA") == 1
    }

    /// The digest this key signs with: SHA-384 for a P-384 key (to match its strength), else SHA-256.
    var signingDigest: OpaquePointer? {
        EVP_PKEY_is_a(pointer, "EC") == 1 && EVP_PKEY_get_bits(pointer) >= 384 ? EVP_sha384() : EVP_sha256()
    }
}
