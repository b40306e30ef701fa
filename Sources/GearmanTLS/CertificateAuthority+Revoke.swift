#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

extension CertificateAuthority {
    /// A CRL just written.
    public struct RevocationList: Sendable, Hashable {
        public var path: String
        /// The CRL number: one more than the previous CRL's.
        public var number: Int64
        /// How many certificates it lists.
        public var revokedCount: Int
        /// Seconds since 1970. The server refuses every client certificate after this time unless
        /// the CRL is rewritten.
        public var nextUpdate: Int64
    }

    /// A revocation just recorded.
    public struct Revocation: Sendable, Hashable {
        public var certificate: IssuedCertificateRecord
        /// It had been revoked before (its date and reason are kept); the CRL was rewritten anyway.
        public var wasAlreadyRevoked: Bool
        public var revocationList: RevocationList
    }

    /// Revokes the certificate with `serialNumber` (hexadecimal; colons and `0x` allowed) and
    /// rewrites `crl.pem` with every revoked certificate.
    public func revoke(
        serialNumber: String, reason: RevocationReason = .unspecified,
        crlValidityDays: Int = CertificateAuthority.defaultCRLValidityDays
    ) throws(CertificateAuthorityError) -> Revocation {
        guard let serialNumber = CertificateSerialNumber.normalize(serialNumber) else {
            throw .invalidRequest("'\(serialNumber)' is not a hexadecimal serial number")
        }
        return try revoke(reason: reason, crlValidityDays: crlValidityDays) { index throws(CertificateAuthorityError) in
            guard let position = index.firstIndex(ofSerialNumber: serialNumber) else {
                throw CertificateAuthorityError(
                    code: .unknownCertificate,
                    message: "this CA issued no certificate with serial number \(serialNumber) (see `gearlock certs list`)")
            }
            return position
        }
    }

    /// Revokes the certificate in the PEM file at `path`, which this CA must have signed, and
    /// rewrites `crl.pem`. A certificate the index does not list (issued by another copy of the
    /// CA, or before the index was lost) is added to it, revoked.
    public func revoke(
        certificateAt path: String, reason: RevocationReason = .unspecified,
        crlValidityDays: Int = CertificateAuthority.defaultCRLValidityDays
    ) throws(CertificateAuthorityError) -> Revocation {
        let certificate = try OpenSSLCertificate.load(path)
        return try revoke(reason: reason, crlValidityDays: crlValidityDays) { index throws(CertificateAuthorityError) in
            guard certificate.isIssued(by: try Self.loadCertificate(layout)) else {
                throw CertificateAuthorityError(
                    code: .unknownCertificate, message: "\(path) was not issued by the CA in \(layout.directory)",
                    path: path)
            }
            if let position = index.firstIndex(ofSerialNumber: certificate.serialNumber) { return position }
            index.entries.append(
                CertificateIndex.Entry(
                    expiry: certificate.notAfterText, revocation: nil, serialNumber: certificate.serialNumber,
                    file: "unknown", subject: certificate.subject))
            return index.entries.count - 1
        }
    }

    /// Rewrites `crl.pem` from the index without revoking anything: to renew it before its
    /// nextUpdate, or after the file was lost.
    public func publishRevocationList(
        validityDays: Int = CertificateAuthority.defaultCRLValidityDays
    ) throws(CertificateAuthorityError) -> RevocationList {
        try Self.validateDays(validityDays, option: "CRL validity")
        return try PKIFileSystem.withLock(on: layout.directory) { () throws(CertificateAuthorityError) in
            try writeRevocationList(index: loadIndex(), signer: loadSigner(), validityDays: validityDays)
        }
    }

    private func revoke(
        reason: RevocationReason, crlValidityDays: Int,
        find: (inout CertificateIndex) throws(CertificateAuthorityError) -> Int
    ) throws(CertificateAuthorityError) -> Revocation {
        try Self.validateDays(crlValidityDays, option: "CRL validity")
        return try PKIFileSystem.withLock(on: layout.directory) { () throws(CertificateAuthorityError) in
            let signer = try loadSigner()
            var index = try loadIndex()
            let position = try find(&index)
            let wasAlreadyRevoked = index.entries[position].revocation != nil
            if !wasAlreadyRevoked {
                guard let now = ASN1TimeText.text(epoch: Int64(time(nil))) else {
                    throw .crypto("cannot format the revocation time")
                }
                index.entries[position].revocation = (now, reason)
                try save(index)
            }
            let list = try writeRevocationList(index: index, signer: signer, validityDays: crlValidityDays)
            return Revocation(
                certificate: IssuedCertificateRecord(index.entries[position]), wasAlreadyRevoked: wasAlreadyRevoked,
                revocationList: list)
        }
    }

    /// Writes `crl.pem` listing every revoked certificate of `index`. The caller holds the lock.
    func writeRevocationList(
        index: CertificateIndex, signer: (OpenSSLCertificate, OpenSSLPrivateKey), validityDays: Int
    ) throws(CertificateAuthorityError) -> RevocationList {
        let previous = (try? PKIFileSystem.readFile(layout.crlPath)).flatMap(CertificateRevocationList.number(ofPEM:))
        let number = (previous ?? 0) + 1
        let pem = try CertificateRevocationList.make(
            revoked: index.entries, number: number, validityDays: validityDays, signer: signer)
        try PKIFileSystem.writeFile(pem, to: layout.crlPath, mode: PKIFileSystem.publicMode, overwrite: true)
        return RevocationList(
            path: layout.crlPath, number: number, revokedCount: index.entries.count { $0.revocation != nil },
            nextUpdate: Int64(time(nil)) + Int64(validityDays) * 86_400)
    }
}
