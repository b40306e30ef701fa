internal import COpenSSL

/// A small private certificate authority for one Gearlock deployment, kept in one directory
/// (`gearlock certs`): it issues server certificates and per-worker client certificates, keeps an
/// index of everything it issued, and publishes a CRL of what it revoked.
///
/// The directory (see ``Layout``):
///
/// | file | what | secret |
/// |---|---|---|
/// | `ca.pem` | the CA certificate: servers' `--tls-ca`, clients' and workers' trust root | no |
/// | `ca.key` | the CA private key (mode 0600) | **yes** |
/// | `index.txt` | every certificate issued, and which are revoked (`openssl ca` format) | no |
/// | `crl.pem` | the CRL for servers' `--tls-crl`, rebuilt from the index | no |
/// | `servers/NAME.pem`, `.key` | server certificates and keys (default place) | the keys |
/// | `clients/NAME.pem`, `.key` | client (worker) certificates and keys (default place) | the keys |
///
/// Every operation reads the files it needs, writes whole files (private keys created with mode
/// 0600), and holds an exclusive lock on the directory while it changes the index. All of it
/// blocks: call it from a command-line tool or a thread of its own, never on an event loop.
public struct CertificateAuthority: Sendable, Hashable {
    /// The key types the CA can generate. P-256 is the default: small, fast, and accepted by every
    /// Gearman peer with TLS (OpenSSL, Python `ssl`).
    public enum KeyAlgorithm: String, Sendable, Hashable, CaseIterable {
        case ecP256 = "ec-p256"
        case ecP384 = "ec-p384"
        case rsa2048 = "rsa-2048"
        case rsa3072 = "rsa-3072"
        case rsa4096 = "rsa-4096"
    }

    /// Where the CA keeps its files.
    public struct Layout: Sendable, Hashable {
        public var directory: String

        public init(directory: String) {
            self.directory = directory.count > 1 && directory.hasSuffix("/") ? String(directory.dropLast()) : directory
        }

        public var certificatePath: String { path("ca.pem") }
        public var privateKeyPath: String { path("ca.key") }
        public var indexPath: String { path("index.txt") }
        public var crlPath: String { path("crl.pem") }
        /// Default home of server certificates: `servers/NAME.pem` and `servers/NAME.key`.
        public var serversDirectory: String { path("servers") }
        /// Default home of client (worker) certificates: `clients/NAME.pem` and `clients/NAME.key`.
        public var clientsDirectory: String { path("clients") }

        func path(_ name: String) -> String {
            directory == "/" ? "/" + name : "\(directory)/\(name)"
        }
    }

    /// How a new CA is made.
    public struct Options: Sendable, Hashable {
        /// The CA's common name. Default: `Gearlock CA`.
        public var name: String
        /// Default: 3650 (ten years).
        public var validityDays: Int
        /// Default: `.ecP256`.
        public var keyAlgorithm: KeyAlgorithm
        /// How long the first (empty) CRL is valid. Default: ``defaultCRLValidityDays``.
        public var crlValidityDays: Int

        public init(
            name: String = "Gearlock CA", validityDays: Int = 3650, keyAlgorithm: KeyAlgorithm = .ecP256,
            crlValidityDays: Int = CertificateAuthority.defaultCRLValidityDays
        ) {
            self.name = name
            self.validityDays = validityDays
            self.keyAlgorithm = keyAlgorithm
            self.crlValidityDays = crlValidityDays
        }
    }

    /// The PKI directory `gearlock certs` uses unless told otherwise. Deliberately not `certs`: the
    /// repository's `certs/` holds documentation and must never receive a private key.
    public static let defaultDirectory = "gearlock-pki"
    /// A CRL's nextUpdate, in days after it is written. A server refuses every client certificate
    /// once its CRL is past nextUpdate, so the CRL must be rewritten (`gearlock certs crl`) before.
    public static let defaultCRLValidityDays = 365
    /// Validity is capped at 100 years.
    static let validityDays = 1...36_500

    public let layout: Layout
    /// The CA certificate's subject, e.g. `/CN=Gearlock CA`.
    public let subject: String
    /// Uppercase hexadecimal.
    public let serialNumber: String
    /// When the CA certificate expires, in seconds since 1970.
    public let notAfter: Int64

    /// Opens the CA in `directory`: reads its certificate and checks that its key and index are
    /// there (a lost CRL is rebuilt from the index by ``publishRevocationList(validityDays:)``).
    public init(directory: String) throws(CertificateAuthorityError) {
        let layout = Layout(directory: directory)
        guard PKIFileSystem.exists(layout.certificatePath) else {
            throw CertificateAuthorityError(
                code: .invalidAuthority,
                message: "no certificate authority in \(layout.directory) (no ca.pem; create one with `gearlock certs init`)",
                path: layout.certificatePath)
        }
        for path in [layout.privateKeyPath, layout.indexPath] where !PKIFileSystem.exists(path) {
            throw CertificateAuthorityError(
                code: .invalidAuthority, message: "the certificate authority in \(layout.directory) lacks \(path)",
                path: path)
        }
        let certificate = try Self.loadCertificate(layout)
        self.init(layout: layout, certificate: certificate)
    }

    private init(layout: Layout, certificate: OpenSSLCertificate) {
        self.layout = layout
        self.subject = certificate.subject
        self.serialNumber = certificate.serialNumber
        self.notAfter = certificate.notAfter
    }

    /// Creates a CA in `directory` (made, mode 0700, if missing): a new key (`ca.key`, mode 0600),
    /// a self-signed CA certificate (`ca.pem`: basicConstraints CA:TRUE with path length 0 and
    /// keyUsage keyCertSign and cRLSign, both critical; a subject key identifier), an empty index
    /// and an empty CRL.
    ///
    /// - Parameter overwrite: replace an existing CA. Every certificate the old CA issued stops
    ///   verifying against the new `ca.pem`, and the index starts empty.
    public static func create(
        in directory: String, options: Options = Options(), overwrite: Bool = false
    ) throws(CertificateAuthorityError) -> CertificateAuthority {
        try CertificateName.validateAuthorityName(options.name)
        try validateDays(options.validityDays, option: "CA validity")
        try validateDays(options.crlValidityDays, option: "CRL validity")
        let layout = Layout(directory: directory)
        try PKIFileSystem.makeDirectory(layout.directory)
        return try PKIFileSystem.withLock(on: layout.directory) { () throws(CertificateAuthorityError) in
            if !overwrite {
                let files = [layout.privateKeyPath, layout.certificatePath, layout.indexPath, layout.crlPath]
                if let existing = files.first(where: PKIFileSystem.exists) {
                    throw CertificateAuthorityError(
                        code: .fileExists,
                        message: "\(existing) exists: \(layout.directory) already holds a CA (pass --force to replace it)",
                        path: existing)
                }
            }
            let key = try OpenSSLPrivateKey.generate(options.keyAlgorithm)
            let certificate = try OpenSSLCertificate.issue(
                commonName: options.name, key: key, validityDays: options.validityDays,
                extensions: [
                    .init(nid: NID_basic_constraints, value: "critical,CA:TRUE,pathlen:0"),
                    .init(nid: NID_key_usage, value: "critical,keyCertSign,cRLSign"),
                    .init(nid: NID_subject_key_identifier, value: "hash"),
                ],
                signer: .selfSigned)
            try PKIFileSystem.writeFile(
                key.pem(), to: layout.privateKeyPath, mode: PKIFileSystem.privateMode, overwrite: true)
            try PKIFileSystem.writeFile(
                certificate.pem(), to: layout.certificatePath, mode: PKIFileSystem.publicMode, overwrite: true)
            let authority = CertificateAuthority(layout: layout, certificate: certificate)
            let index = CertificateIndex()
            try authority.save(index)
            _ = try authority.writeRevocationList(
                index: index, signer: (certificate, key), validityDays: options.crlValidityDays)
            return authority
        }
    }

    /// Every certificate the CA issued, oldest first.
    public func issuedCertificates() throws(CertificateAuthorityError) -> [IssuedCertificateRecord] {
        try loadIndex().entries.map(IssuedCertificateRecord.init)
    }

    // MARK: Internals shared by issuing and revoking

    /// The CA certificate and its key, checked to belong together.
    func loadSigner() throws(CertificateAuthorityError) -> (OpenSSLCertificate, OpenSSLPrivateKey) {
        let certificate = try Self.loadCertificate(layout)
        let key = try OpenSSLPrivateKey.load(layout.privateKeyPath)
        guard certificate.matches(key) else {
            throw CertificateAuthorityError(
                code: .invalidAuthority,
                message: "\(layout.privateKeyPath) is not the key of \(layout.certificatePath)",
                path: layout.privateKeyPath)
        }
        return (certificate, key)
    }

    static func loadCertificate(_ layout: Layout) throws(CertificateAuthorityError) -> OpenSSLCertificate {
        do {
            return try OpenSSLCertificate.load(layout.certificatePath)
        } catch {
            throw CertificateAuthorityError(
                code: .invalidAuthority, message: error.message, path: error.path, openSSLErrors: error.openSSLErrors)
        }
    }

    func loadIndex() throws(CertificateAuthorityError) -> CertificateIndex {
        let bytes = try PKIFileSystem.readFile(layout.indexPath)
        return try CertificateIndex(parsing: String(decoding: bytes, as: UTF8.self), path: layout.indexPath)
    }

    func save(_ index: CertificateIndex) throws(CertificateAuthorityError) {
        try PKIFileSystem.writeFile(
            Array(index.text.utf8), to: layout.indexPath, mode: PKIFileSystem.publicMode, overwrite: true)
    }

    static func validateDays(_ days: Int, option: String) throws(CertificateAuthorityError) {
        guard validityDays.contains(days) else {
            throw .invalidRequest(
                "\(option) of \(days) days: expected \(validityDays.lowerBound) to \(validityDays.upperBound)")
        }
    }
}
