internal import COpenSSL

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

extension CertificateAuthority {
    /// A client certificate names its principal in this subjectAltName URI
    /// (`urn:gearlock:principal:worker-1`), besides its CN, for `gearlock serve --tls-identity san`.
    public static let principalURIPrefix = "urn:gearlock:principal:"
    /// A client certificate issued for a tenant carries this subjectAltName URI
    /// (`urn:gearlock:tenant:acme`).
    public static let tenantURIPrefix = "urn:gearlock:tenant:"

    /// A server certificate: CN = `name`, extendedKeyUsage serverAuth, and the names clients connect
    /// to as subjectAltName.
    public struct ServerCertificateRequest: Sendable, Hashable {
        public static let defaultValidityDays = 825

        /// The common name, and the default file name. Letters, digits, `.`, `_`, `-`.
        public var name: String
        /// Host names clients connect to (a leading `*.` makes a wildcard).
        public var dnsNames: [String]
        /// IPv4 or IPv6 addresses clients connect to. Without any DNS name or address, `name`
        /// itself is the one DNS name.
        public var ipAddresses: [String]
        /// Default: 825.
        public var validityDays: Int
        /// Default: `.ecP256`.
        public var keyAlgorithm: KeyAlgorithm

        public init(
            name: String, dnsNames: [String] = [], ipAddresses: [String] = [],
            validityDays: Int = Self.defaultValidityDays, keyAlgorithm: KeyAlgorithm = .ecP256
        ) {
            self.name = name
            self.dnsNames = dnsNames
            self.ipAddresses = ipAddresses
            self.validityDays = validityDays
            self.keyAlgorithm = keyAlgorithm
        }
    }

    /// A client (worker) certificate: CN = `principal`, extendedKeyUsage clientAuth, and the
    /// subjectAltName URIs `urn:gearlock:principal:<principal>` and, with a tenant,
    /// `urn:gearlock:tenant:<tenant>`.
    public struct ClientCertificateRequest: Sendable, Hashable {
        public static let defaultValidityDays = 365

        /// The principal: the common name, the principal URI, and the default file name. Letters,
        /// digits, `.`, `_`, `-`.
        public var principal: String
        /// Same alphabet as `principal`.
        public var tenant: String?
        /// Default: 365.
        public var validityDays: Int
        /// Default: `.ecP256`.
        public var keyAlgorithm: KeyAlgorithm

        public init(
            principal: String, tenant: String? = nil, validityDays: Int = Self.defaultValidityDays,
            keyAlgorithm: KeyAlgorithm = .ecP256
        ) {
            self.principal = principal
            self.tenant = tenant
            self.validityDays = validityDays
            self.keyAlgorithm = keyAlgorithm
        }
    }

    /// A certificate just issued, and where it and its key were written.
    public struct IssuedCertificate: Sendable, Hashable {
        /// Uppercase hexadecimal: what `gearlock certs revoke --serial` takes.
        public var serialNumber: String
        /// `/CN=worker-1`.
        public var subject: String
        /// As `openssl x509 -text` shows them: `DNS:localhost`, `IP:127.0.0.1`, `URI:urn:gearlock:…`.
        public var subjectAlternativeNames: [String]
        /// Seconds since 1970.
        public var notAfter: Int64
        public var certificatePath: String
        /// Mode 0600.
        public var privateKeyPath: String
    }

    /// Issues a server certificate and a new key, written to `<outputPrefix>.pem` and
    /// `<outputPrefix>.key` (default prefix: `servers/<name>` in the CA directory).
    public func issueServerCertificate(
        _ request: ServerCertificateRequest, outputPrefix: String? = nil, overwrite: Bool = false
    ) throws(CertificateAuthorityError) -> IssuedCertificate {
        try CertificateName.validateIdentifier(request.name, kind: "server name")
        var names: [String] = []
        for name in request.dnsNames {
            names.append("DNS:" + (try CertificateName.dnsName(name)))
        }
        for address in request.ipAddresses {
            names.append("IP:" + (try CertificateName.ipAddress(address)))
        }
        if names.isEmpty {
            guard let name = try? CertificateName.dnsName(request.name) else {
                throw .invalidRequest("give the server's DNS names or IP addresses ('\(request.name)' is not a DNS name)")
            }
            names.append("DNS:" + name)
        }
        return try issue(
            commonName: request.name, subjectAlternativeNames: names, extendedKeyUsage: "serverAuth",
            validityDays: request.validityDays, keyAlgorithm: request.keyAlgorithm,
            outputPrefix: outputPrefix ?? "\(layout.serversDirectory)/\(request.name)", overwrite: overwrite)
    }

    /// Issues a client (worker) certificate and a new key, written to `<outputPrefix>.pem` and
    /// `<outputPrefix>.key` (default prefix: `clients/<principal>` in the CA directory).
    public func issueClientCertificate(
        _ request: ClientCertificateRequest, outputPrefix: String? = nil, overwrite: Bool = false
    ) throws(CertificateAuthorityError) -> IssuedCertificate {
        try CertificateName.validateIdentifier(request.principal, kind: "principal")
        var names = ["URI:" + Self.principalURIPrefix + request.principal]
        if let tenant = request.tenant {
            try CertificateName.validateIdentifier(tenant, kind: "tenant")
            names.append("URI:" + Self.tenantURIPrefix + tenant)
        }
        return try issue(
            commonName: request.principal, subjectAlternativeNames: names, extendedKeyUsage: "clientAuth",
            validityDays: request.validityDays, keyAlgorithm: request.keyAlgorithm,
            outputPrefix: outputPrefix ?? "\(layout.clientsDirectory)/\(request.principal)", overwrite: overwrite)
    }

    private func issue(
        commonName: String, subjectAlternativeNames: [String], extendedKeyUsage: String, validityDays: Int,
        keyAlgorithm: KeyAlgorithm, outputPrefix: String, overwrite: Bool
    ) throws(CertificateAuthorityError) -> IssuedCertificate {
        try Self.validateDays(validityDays, option: "validity")
        let now = Int64(time(nil))
        guard now + Int64(validityDays) * 86_400 <= notAfter else {
            let remaining = max(0, (notAfter - now) / 86_400)
            throw .invalidRequest(
                "a certificate valid for \(validityDays) days would outlive the CA, which expires in \(remaining) "
                    + "days: ask for fewer days, or create a new CA")
        }
        guard !outputPrefix.isEmpty, !outputPrefix.hasSuffix("/") else {
            throw .invalidRequest("output prefix '\(outputPrefix)': expected a path without the .pem or .key suffix")
        }
        let certificatePath = outputPrefix + ".pem"
        let privateKeyPath = outputPrefix + ".key"
        try PKIFileSystem.makeDirectory(PKIFileSystem.directoryName(of: outputPrefix))

        return try PKIFileSystem.withLock(on: layout.directory) { () throws(CertificateAuthorityError) in
            if !overwrite, let existing = [privateKeyPath, certificatePath].first(where: PKIFileSystem.exists) {
                throw CertificateAuthorityError(
                    code: .fileExists, message: "\(existing) exists (pass --force to overwrite it, or --out elsewhere)",
                    path: existing)
            }
            let (authority, authorityKey) = try loadSigner()
            var index = try loadIndex()
            let key = try OpenSSLPrivateKey.generate(keyAlgorithm)
            // RSA keys may also be used for key transport by peers that offer it.
            let keyUsage = key.isRSA ? "critical,digitalSignature,keyEncipherment" : "critical,digitalSignature"
            let certificate = try OpenSSLCertificate.issue(
                commonName: commonName, key: key, validityDays: validityDays,
                extensions: [
                    .init(nid: NID_basic_constraints, value: "CA:FALSE"),
                    .init(nid: NID_key_usage, value: keyUsage),
                    .init(nid: NID_ext_key_usage, value: extendedKeyUsage),
                    .init(nid: NID_subject_key_identifier, value: "hash"),
                    .init(nid: NID_authority_key_identifier, value: "keyid:always"),
                    .init(nid: NID_subject_alt_name, value: subjectAlternativeNames.joined(separator: ",")),
                ],
                signer: .authority(authority, authorityKey))

            try PKIFileSystem.writeFile(
                key.pem(), to: privateKeyPath, mode: PKIFileSystem.privateMode, overwrite: overwrite)
            do throws(CertificateAuthorityError) {
                try PKIFileSystem.writeFile(
                    certificate.pem(), to: certificatePath, mode: PKIFileSystem.publicMode, overwrite: overwrite)
                index.entries.append(
                    CertificateIndex.Entry(
                        expiry: certificate.notAfterText, revocation: nil, serialNumber: certificate.serialNumber,
                        file: indexFileField(certificatePath), subject: certificate.subject))
                try save(index)
            } catch {
                // A certificate the index does not know could not be revoked by serial: don't leave one.
                PKIFileSystem.remove(certificatePath)
                PKIFileSystem.remove(privateKeyPath)
                throw error
            }
            return IssuedCertificate(
                serialNumber: certificate.serialNumber, subject: certificate.subject,
                subjectAlternativeNames: subjectAlternativeNames, notAfter: certificate.notAfter,
                certificatePath: certificatePath, privateKeyPath: privateKeyPath)
        }
    }

    /// The certificate's file as the index records it: relative to the CA directory when inside it.
    private func indexFileField(_ path: String) -> String {
        guard !path.contains("\t"), !path.contains("\n") else { return "unknown" }
        let prefix = layout.directory + "/"
        return path.hasPrefix(prefix) ? String(path.dropFirst(prefix.count)) : path
    }
}
