internal import CGearlockOpenSSL
internal import COpenSSL

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Builds the CA's CRL: X.509 v2, issued and signed by the CA, with thisUpdate (lastUpdate),
/// nextUpdate, an authority key identifier, a CRL number one above the previous `crl.pem`'s, and
/// one entry (serial, revocation date, reason unless unspecified) per revoked certificate in the
/// index.
enum CertificateRevocationList {
    static func make(
        revoked entries: [CertificateIndex.Entry], number: Int64, validityDays: Int,
        signer: (certificate: OpenSSLCertificate, key: OpenSSLPrivateKey)
    ) throws(CertificateAuthorityError) -> [UInt8] {
        OpenSSLErrorQueue.clear()
        guard let crl = X509_CRL_new() else { throw .crypto("cannot create a CRL") }
        defer { X509_CRL_free(crl) }
        guard X509_CRL_set_version(crl, 1) == 1,
            X509_CRL_set_issuer_name(crl, X509_get_subject_name(signer.certificate.pointer)) == 1
        else { throw .crypto("cannot set the CRL's version and issuer") }

        let now = Int64(time(nil))
        // Backdated like certificates, so a server whose clock is a little behind accepts it.
        let thisUpdate = now - Int64(OpenSSLCertificate.backdating)
        let nextUpdate = now + Int64(validityDays) * 86_400
        try withTime(epoch: thisUpdate) { time throws(CertificateAuthorityError) in
            guard X509_CRL_set1_lastUpdate(crl, time) == 1 else { throw .crypto("cannot set the CRL's lastUpdate") }
        }
        try withTime(epoch: nextUpdate) { time throws(CertificateAuthorityError) in
            guard X509_CRL_set1_nextUpdate(crl, time) == 1 else { throw .crypto("cannot set the CRL's nextUpdate") }
        }

        for entry in entries {
            guard let revocation = entry.revocation else { continue }
            guard let revoked = X509_REVOKED_new() else { throw .crypto("cannot create a CRL entry") }
            do {
                try fill(revoked, serialNumber: entry.serialNumber, time: revocation.time, reason: revocation.reason)
            } catch {
                X509_REVOKED_free(revoked)
                throw error
            }
            guard X509_CRL_add0_revoked(crl, revoked) == 1 else {
                X509_REVOKED_free(revoked)
                throw .crypto("cannot add a CRL entry")
            }
        }

        guard
            let keyIdentifier = CGearlockOpenSSL_X509V3_EXT_nconf_nid(
                signer.certificate.pointer, nil, crl, NID_authority_key_identifier, "keyid:always")
        else { throw .crypto("cannot encode the CRL's authority key identifier") }
        defer { X509_EXTENSION_free(keyIdentifier) }
        guard X509_CRL_add_ext(crl, keyIdentifier, -1) == 1 else { throw .crypto("cannot add the CRL's extensions") }
        guard let crlNumber = ASN1_INTEGER_new() else { throw .crypto("cannot create the CRL number") }
        defer { ASN1_INTEGER_free(crlNumber) }
        guard ASN1_INTEGER_set_int64(crlNumber, number) == 1,
            X509_CRL_add1_ext_i2d(crl, NID_crl_number, crlNumber, 0, 0) == 1
        else { throw .crypto("cannot add the CRL number") }

        guard X509_CRL_sort(crl) == 1, X509_CRL_sign(crl, signer.key.pointer, signer.key.signingDigest) > 0 else {
            throw .crypto("cannot sign the CRL")
        }
        guard let pem = OpenSSLMemoryBIO.output({ PEM_write_bio_X509_CRL($0, crl) }) else {
            throw .crypto("cannot encode the CRL")
        }
        return pem
    }

    /// The CRL number of the PEM CRL in `bytes`, if it is one and has a number.
    static func number(ofPEM bytes: [UInt8]) -> Int64? {
        OpenSSLErrorQueue.clear()
        defer { OpenSSLErrorQueue.clear() }
        guard let crl = OpenSSLMemoryBIO.input(bytes, { PEM_read_bio_X509_CRL($0, nil, nil, nil) }) else { return nil }
        defer { X509_CRL_free(crl) }
        guard let raw = X509_CRL_get_ext_d2i(crl, NID_crl_number, nil, nil) else { return nil }
        let number = raw.assumingMemoryBound(to: ASN1_INTEGER.self)
        defer { ASN1_INTEGER_free(number) }
        var value: Int64 = 0
        return ASN1_INTEGER_get_int64(&value, number) == 1 ? value : nil
    }

    private static func fill(
        _ revoked: OpaquePointer, serialNumber: String, time: String, reason: CertificateAuthority.RevocationReason
    ) throws(CertificateAuthorityError) {
        var number: OpaquePointer?
        guard BN_hex2bn(&number, serialNumber) > 0, let number else { throw .crypto("bad serial number \(serialNumber)") }
        defer { BN_free(number) }
        guard let serial = BN_to_ASN1_INTEGER(number, nil) else { throw .crypto("bad serial number \(serialNumber)") }
        defer { ASN1_INTEGER_free(serial) }
        guard X509_REVOKED_set_serialNumber(revoked, serial) == 1 else { throw .crypto("cannot set a CRL entry's serial") }

        guard let date = ASN1_TIME_new() else { throw .crypto("cannot create a time") }
        defer { ASN1_TIME_free(date) }
        guard ASN1_TIME_set_string_X509(date, time) == 1, X509_REVOKED_set_revocationDate(revoked, date) == 1 else {
            throw .crypto("cannot set a CRL entry's revocation date")
        }
        // RFC 5280 §5.3.1: the reason code unspecified SHOULD be absent.
        guard reason != .unspecified else { return }
        guard let code = ASN1_ENUMERATED_new() else { throw .crypto("cannot create a reason code") }
        defer { ASN1_ENUMERATED_free(code) }
        guard ASN1_ENUMERATED_set(code, reason.code) == 1,
            X509_REVOKED_add1_ext_i2d(revoked, NID_crl_reason, code, 0, 0) == 1
        else { throw .crypto("cannot set a CRL entry's reason") }
    }

    private static func withTime(
        epoch: Int64, _ body: (UnsafeMutablePointer<ASN1_TIME>) throws(CertificateAuthorityError) -> Void
    ) throws(CertificateAuthorityError) {
        guard let time = ASN1_TIME_set(nil, time_t(epoch)) else { throw .crypto("cannot create a time") }
        defer { ASN1_TIME_free(time) }
        try body(time)
    }
}
