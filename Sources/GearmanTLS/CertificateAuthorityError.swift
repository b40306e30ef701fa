/// A failure of the ``CertificateAuthority`` (`gearlock certs`): a request that cannot become a
/// certificate, a file that exists or cannot be written, a CA directory that is missing or damaged,
/// or a certificate this CA does not know.
///
/// Messages name files and serial numbers, never key material.
public struct CertificateAuthorityError: Error, Sendable, Hashable, CustomStringConvertible {
    /// New codes may be added; don't switch over them exhaustively.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        enum Base: Sendable, Hashable {
            case invalidRequest, fileExists, fileSystem, invalidAuthority, unknownCertificate, cryptoFailed
        }

        let base: Base

        /// A name, tenant, address or validity that cannot go into a certificate.
        public static let invalidRequest = Code(base: .invalidRequest)
        /// A file to be written exists, and overwriting was not asked for.
        public static let fileExists = Code(base: .fileExists)
        /// Reading, writing, locking or creating a file or directory failed.
        public static let fileSystem = Code(base: .fileSystem)
        /// The CA directory is missing, incomplete or damaged (certificate, key, index).
        public static let invalidAuthority = Code(base: .invalidAuthority)
        /// A serial number or certificate that this CA did not issue.
        public static let unknownCertificate = Code(base: .unknownCertificate)
        /// OpenSSL failed to generate a key, or to build or sign a certificate or CRL.
        public static let cryptoFailed = Code(base: .cryptoFailed)

        public var description: String {
            switch base {
            case .invalidRequest: "invalidRequest"
            case .fileExists: "fileExists"
            case .fileSystem: "fileSystem"
            case .invalidAuthority: "invalidAuthority"
            case .unknownCertificate: "unknownCertificate"
            case .cryptoFailed: "cryptoFailed"
            }
        }
    }

    public var code: Code
    public var message: String
    /// The file concerned, if any.
    public var path: String?
    /// The reasons OpenSSL gave, if it was involved.
    public var openSSLErrors: [String]

    public init(code: Code, message: String, path: String? = nil, openSSLErrors: [String] = []) {
        self.code = code
        self.message = message
        self.path = path
        self.openSSLErrors = openSSLErrors
    }

    public var description: String {
        let reasons = openSSLErrors.isEmpty ? "" : " (\(openSSLErrors.joined(separator: "; ")))"
        return "CertificateAuthorityError.\(code): \(message)\(reasons)"
    }

    /// An OpenSSL failure, with OpenSSL's queued reasons.
    static func crypto(_ message: String) -> CertificateAuthorityError {
        CertificateAuthorityError(code: .cryptoFailed, message: message, openSSLErrors: OpenSSLErrorQueue.drain())
    }

    static func invalidRequest(_ message: String) -> CertificateAuthorityError {
        CertificateAuthorityError(code: .invalidRequest, message: message)
    }
}
