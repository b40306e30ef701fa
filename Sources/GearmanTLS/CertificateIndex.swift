/// The CA's record of every certificate it issued, `index.txt` next to `ca.pem`, in the format of
/// `openssl ca`: one line per certificate, six tab-separated fields:
///
///     V	351231235959Z		5F0C…E1	servers/gearlock-1.pem	/CN=gearlock-1
///     R	260101000000Z	250301120000Z,superseded	3A…07	clients/worker-1.pem	/CN=worker-1
///
/// status (`V` valid, `R` revoked; `E`, which `openssl ca` writes for expired, reads as valid),
/// expiry, revocation time with an optional `,reason`, serial number (uppercase hex), the
/// certificate's file as written when issued (`unknown` if not known), and the subject.
/// The CRL is rebuilt from the `R` lines, so revocations accumulate.
struct CertificateIndex {
    struct Entry {
        var expiry: String
        /// Set for a revoked certificate.
        var revocation: (time: String, reason: CertificateAuthority.RevocationReason)?
        var serialNumber: String
        var file: String
        var subject: String
    }

    var entries: [Entry] = []

    init() {}

    init(parsing text: String, path: String) throws(CertificateAuthorityError) {
        for (offset, line) in text.split(separator: "\n", omittingEmptySubsequences: true).enumerated() {
            guard let entry = Self.entry(line) else {
                throw CertificateAuthorityError(
                    code: .invalidAuthority, message: "\(path), line \(offset + 1): not an index entry", path: path)
            }
            entries.append(entry)
        }
    }

    private static func entry(_ line: Substring) -> Entry? {
        let fields = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
        guard fields.count == 6, ASN1TimeText.epoch(fields[1]) != nil,
            let serialNumber = CertificateSerialNumber.normalize(fields[3])
        else { return nil }
        var entry = Entry(
            expiry: fields[1], revocation: nil, serialNumber: serialNumber, file: fields[4], subject: fields[5])
        switch fields[0] {
        case "V", "E":
            guard fields[2].isEmpty else { return nil }
        case "R":
            let parts = fields[2].split(separator: ",", maxSplits: 1).map(String.init)
            guard let time = parts.first, ASN1TimeText.epoch(time) != nil else { return nil }
            var reason = CertificateAuthority.RevocationReason.unspecified
            if parts.count == 2 {
                guard let named = CertificateAuthority.RevocationReason(rawValue: parts[1]) else { return nil }
                reason = named
            }
            entry.revocation = (time, reason)
        default:
            return nil
        }
        return entry
    }

    var text: String {
        entries.map { entry in
            let revocation = entry.revocation.map { revocation in
                revocation.reason == .unspecified ? revocation.time : "\(revocation.time),\(revocation.reason.rawValue)"
            }
            let fields = [
                revocation == nil ? "V" : "R", entry.expiry, revocation ?? "", entry.serialNumber, entry.file,
                entry.subject,
            ]
            return fields.joined(separator: "\t") + "\n"
        }.joined()
    }

    func firstIndex(ofSerialNumber serialNumber: String) -> Int? {
        entries.firstIndex { $0.serialNumber == serialNumber }
    }
}

extension CertificateAuthority {
    /// Why a certificate was revoked: the CRL reason codes of RFC 5280 §5.3.1 that apply to a
    /// Gearlock PKI. The raw values are the names `openssl ca` uses.
    public enum RevocationReason: String, Sendable, Hashable, CaseIterable {
        /// No reason given (the CRL entry then carries no reason code, as RFC 5280 asks).
        case unspecified
        /// The private key was (or may have been) disclosed.
        case keyCompromise
        /// The CA's private key was disclosed.
        case caCompromise
        /// The subject's name or tenant changed.
        case affiliationChanged
        /// Replaced by a new certificate (rotation).
        case superseded
        /// The worker or server is gone for good.
        case cessationOfOperation

        /// The CRLReason code.
        var code: Int {
            switch self {
            case .unspecified: 0
            case .keyCompromise: 1
            case .caCompromise: 2
            case .affiliationChanged: 3
            case .superseded: 4
            case .cessationOfOperation: 5
            }
        }
    }

    /// One certificate the CA issued, from its index.
    public struct IssuedCertificateRecord: Sendable, Hashable {
        /// Uppercase hexadecimal, e.g. `5F0C41…E1`.
        public var serialNumber: String
        /// OpenSSL's one-line form, e.g. `/CN=worker-1`.
        public var subject: String
        /// Seconds since 1970.
        public var notAfter: Int64
        /// When it was revoked (seconds since 1970); nil while it is not.
        public var revocationDate: Int64?
        public var revocationReason: RevocationReason?
        /// Where the certificate was written when it was issued, if known.
        public var certificatePath: String?

        public var isRevoked: Bool { revocationDate != nil }

        public func isExpired(at now: Int64) -> Bool { notAfter < now }

        init(_ entry: CertificateIndex.Entry) {
            serialNumber = entry.serialNumber
            subject = entry.subject
            notAfter = ASN1TimeText.epoch(entry.expiry) ?? 0
            revocationDate = entry.revocation.flatMap { ASN1TimeText.epoch($0.time) }
            revocationReason = entry.revocation?.reason
            certificatePath = entry.file == "unknown" ? nil : entry.file
        }
    }
}
