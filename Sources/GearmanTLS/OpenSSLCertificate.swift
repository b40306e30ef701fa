internal import CGearlockOpenSSL
internal import COpenSSL

/// An `X509` owned by Swift: read from PEM, or built and signed by ``issue(commonName:key:validityDays:extensions:signer:)``.
final class OpenSSLCertificate {
    /// An X.509 v3 extension as `openssl.cnf` writes it, e.g. `(NID_basic_constraints, "critical,CA:TRUE")`.
    struct Extension {
        var nid: Int32
        var value: String
    }

    enum Signer {
        case selfSigned
        case authority(OpenSSLCertificate, OpenSSLPrivateKey)
    }

    /// A new certificate's validity starts this long before it is issued, so that a peer whose
    /// clock is a little behind does not reject it as not yet valid.
    static let backdating: Int = 300

    let pointer: OpaquePointer

    private init(pointer: OpaquePointer) {
        self.pointer = pointer
    }

    deinit {
        X509_free(pointer)
    }

    static func load(_ path: String) throws(CertificateAuthorityError) -> OpenSSLCertificate {
        let pem = try PKIFileSystem.readFile(path)
        OpenSSLErrorQueue.clear()
        guard let certificate = OpenSSLMemoryBIO.input(pem, { PEM_read_bio_X509($0, nil, nil, nil) }) else {
            throw CertificateAuthorityError(
                code: .invalidRequest, message: "\(path) holds no PEM certificate", path: path,
                openSSLErrors: OpenSSLErrorQueue.drain())
        }
        return OpenSSLCertificate(pointer: certificate)
    }

    /// A certificate for `key` with the subject `CN=commonName`, a random 128-bit serial number,
    /// valid from a few minutes ago for `validityDays` days, with `extensions`, signed by `signer`.
    static func issue(
        commonName: String, key: OpenSSLPrivateKey, validityDays: Int, extensions: [Extension], signer: Signer
    ) throws(CertificateAuthorityError) -> OpenSSLCertificate {
        OpenSSLErrorQueue.clear()
        guard let pointer = X509_new() else { throw .crypto("cannot create a certificate") }
        let certificate = OpenSSLCertificate(pointer: pointer)
        guard X509_set_version(pointer, 2) == 1 else { throw .crypto("cannot set the certificate version") }
        try setRandomSerialNumber(pointer)

        guard let subject = X509_NAME_new() else { throw .crypto("cannot create a subject name") }
        defer { X509_NAME_free(subject) }
        let name = Array(commonName.utf8)
        guard X509_NAME_add_entry_by_NID(subject, NID_commonName, MBSTRING_UTF8, name, Int32(name.count), -1, 0) == 1
        else { throw .crypto("cannot use '\(commonName)' as a common name") }
        guard X509_set_subject_name(pointer, subject) == 1 else { throw .crypto("cannot set the subject name") }

        let issuerCertificate: OpaquePointer
        let signingKey: OpenSSLPrivateKey
        switch signer {
        case .selfSigned:
            issuerCertificate = pointer
            signingKey = key
        case .authority(let authority, let authorityKey):
            issuerCertificate = authority.pointer
            signingKey = authorityKey
        }
        guard X509_set_issuer_name(pointer, X509_get_subject_name(issuerCertificate)) == 1 else {
            throw .crypto("cannot set the issuer name")
        }
        guard X509_gmtime_adj(X509_getm_notBefore(pointer), -backdating) != nil,
            X509_time_adj_ex(X509_getm_notAfter(pointer), Int32(validityDays), 0, nil) != nil
        else { throw .crypto("cannot set the validity period") }
        guard X509_set_pubkey(pointer, key.pointer) == 1 else { throw .crypto("cannot set the public key") }

        for `extension` in extensions {
            guard
                let encoded = CGearlockOpenSSL_X509V3_EXT_nconf_nid(
                    issuerCertificate, pointer, nil, `extension`.nid, `extension`.value)
            else { throw .crypto("cannot encode the extension '\(`extension`.value)'") }
            defer { X509_EXTENSION_free(encoded) }
            guard X509_add_ext(pointer, encoded, -1) == 1 else { throw .crypto("cannot add an extension") }
        }
        guard X509_sign(pointer, signingKey.pointer, signingKey.signingDigest) > 0 else {
            throw .crypto("cannot sign the certificate")
        }
        return certificate
    }

    private static func setRandomSerialNumber(_ certificate: OpaquePointer) throws(CertificateAuthorityError) {
        guard let number = BN_new() else { throw .crypto("cannot create a serial number") }
        defer { BN_free(number) }
        repeat {
            guard BN_rand(number, 128, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) == 1 else {
                throw .crypto("cannot draw a random serial number")
            }
        } while BN_is_zero(number) == 1
        guard BN_to_ASN1_INTEGER(number, X509_get_serialNumber(certificate)) != nil else {
            throw .crypto("cannot set the serial number")
        }
    }

    func pem() throws(CertificateAuthorityError) -> [UInt8] {
        OpenSSLErrorQueue.clear()
        guard let pem = OpenSSLMemoryBIO.output({ PEM_write_bio_X509($0, pointer) }) else {
            throw .crypto("cannot encode a certificate")
        }
        return pem
    }

    /// Uppercase hexadecimal, as ``CertificateSerialNumber`` normalises it.
    var serialNumber: String {
        guard let number = ASN1_INTEGER_to_BN(X509_get0_serialNumber(pointer), nil) else { return "" }
        defer { BN_free(number) }
        guard let hex = BN_bn2hex(number) else { return "" }
        defer { CGearlockOpenSSL_OPENSSL_free(hex) }
        return CertificateSerialNumber.normalize(String(cString: hex)) ?? ""
    }

    /// The subject in OpenSSL's one-line form, `/CN=worker-1`, as `openssl ca` keeps it in its index.
    var subject: String {
        guard let text = X509_NAME_oneline(X509_get_subject_name(pointer), nil, 0) else { return "" }
        defer { CGearlockOpenSSL_OPENSSL_free(text) }
        return String(cString: text)
    }

    var notAfter: Int64 {
        CGearlockOpenSSL_ASN1_TIME_to_epoch(X509_get0_notAfter(pointer))
    }

    /// The expiry as X.509 encodes it (`YYMMDDHHMMSSZ`, or `YYYYMMDDHHMMSSZ` after 2049).
    var notAfterText: String {
        X509_get0_notAfter(pointer).flatMap(ASN1TimeText.string) ?? ""
    }

    /// Whether `self` carries `authority`'s name as issuer and a valid signature by its key.
    func isIssued(by authority: OpenSSLCertificate) -> Bool {
        OpenSSLErrorQueue.clear()
        defer { OpenSSLErrorQueue.clear() }
        guard X509_check_issued(authority.pointer, pointer) == X509_V_OK,
            let publicKey = X509_get0_pubkey(authority.pointer)
        else { return false }
        return X509_verify(pointer, publicKey) == 1
    }

    /// Whether `key` is the private key of this certificate's public key.
    func matches(_ key: OpenSSLPrivateKey) -> Bool {
        OpenSSLErrorQueue.clear()
        defer { OpenSSLErrorQueue.clear() }
        return X509_check_private_key(pointer, key.pointer) == 1
    }
}
