public import ArgumentParser
import GearmanTLS

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// `gearlock certs`: a small PKI for one deployment (see certs/README.md).
struct CertsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "certs",
        abstract: "A small PKI: a CA, server certificates, per-worker client certificates, revocation.",
        discussion: """
            Everything lives in one directory, ./gearlock-pki unless --dir says otherwise: ca.pem (the CA \
            certificate, public), ca.key (the CA key, secret, mode 0600), index.txt (what was issued and \
            revoked), crl.pem (the revocation list for `gearlock serve --tls-crl`), and the issued \
            certificates and keys under servers/ and clients/. Keys are written with mode 0600; nothing \
            is overwritten without --force. Keep the directory out of any repository.

            Exit status: 0 on success; 1 when the CA refused or failed (the reason goes to stderr); 64 \
            for a usage error.
            """,
        subcommands: [Init.self, Issue.self, Revoke.self, RevocationList.self, List.self]
    )

    struct DirectoryOption: ParsableArguments {
        @Option(name: .customLong("dir"), help: "The PKI directory.")
        var directory: String = CertificateAuthority.defaultDirectory

        func open() throws -> CertificateAuthority {
            try CertsCommand.run { () throws(CertificateAuthorityError) in try CertificateAuthority(directory: directory) }
        }
    }

    /// Runs `body`, turning a CA error into a message on stderr and exit status 1.
    static func run<Result>(_ body: () throws(CertificateAuthorityError) -> Result) throws -> Result {
        do {
            return try body()
        } catch {
            let reasons = error.openSSLErrors.isEmpty ? "" : " (OpenSSL: \(error.openSSLErrors.joined(separator: "; ")))"
            StandardStream.printError("gearlock certs: \(error.message)\(reasons)")
            throw ExitCode.failure
        }
    }


    /// `2035-05-01 12:00 UTC`.
    static func date(_ epoch: Int64) -> String {
        var seconds = time_t(epoch)
        var parts = tm()
        guard gmtime_r(&seconds, &parts) != nil else { return "\(epoch)" }
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday)) "
            + "\(two(parts.tm_hour)):\(two(parts.tm_min)) UTC"
    }

    static func printFiles(_ files: [(path: String, what: String)]) {
        let width = files.map(\.path.count).max() ?? 0
        for file in files {
            print("  " + file.path + String(repeating: " ", count: width - file.path.count) + "  " + file.what)
        }
    }

    static func printRevocationList(_ list: CertificateAuthority.RevocationList) {
        print(
            "Wrote \(list.path): CRL number \(list.number), \(list.revokedCount) revoked, "
                + "valid until \(date(list.nextUpdate)).")
        print("Running servers load it on SIGHUP (kill -HUP <pid of gearlock serve>).")
    }
}

extension CertificateAuthority.KeyAlgorithm: ExpressibleByArgument {}

extension CertificateAuthority.RevocationReason: ExpressibleByArgument {}

// MARK: init

extension CertsCommand {
    struct Init: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create the certificate authority: ca.key, ca.pem, an empty index and CRL.")

        @OptionGroup var pki: DirectoryOption

        @Option(help: "The CA's name (its certificate's common name).")
        var name = "Gearlock CA"

        @Option(help: "Days the CA certificate is valid.")
        var days = 3650

        @Option(help: "Key type of the new key.")
        var keyType = CertificateAuthority.KeyAlgorithm.ecP256

        @Option(help: "Days the CRL is valid before it must be rewritten (`gearlock certs crl`).")
        var crlDays = CertificateAuthority.defaultCRLValidityDays

        @Flag(help: "Replace an existing CA. Every certificate it issued stops verifying.")
        var force = false

        func run() throws {
            let options = CertificateAuthority.Options(
                name: name, validityDays: days, keyAlgorithm: keyType, crlValidityDays: crlDays)
            let authority = try CertsCommand.run { () throws(CertificateAuthorityError) in
                try CertificateAuthority.create(in: pki.directory, options: options, overwrite: force)
            }
            let layout = authority.layout
            print("Created the certificate authority \(authority.subject) in \(layout.directory), valid until \(CertsCommand.date(authority.notAfter)):")
            CertsCommand.printFiles([
                (layout.certificatePath, "CA certificate: the --tls-ca of servers, clients and workers"),
                (layout.privateKeyPath, "CA private key (mode 0600): SECRET, never leaves this machine"),
                (layout.indexPath, "record of issued and revoked certificates"),
                (layout.crlPath, "revocation list (empty): the --tls-crl of servers"),
            ])
            print("Next: gearlock certs issue server --dir \(layout.directory) --name NAME --dns HOST --ip ADDRESS")
        }
    }
}

// MARK: issue

extension CertsCommand {
    struct Issue: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Issue a certificate and a new key.",
            subcommands: [Server.self, Client.self])

        struct Common: ParsableArguments {
            @OptionGroup var pki: DirectoryOption

            @Option(
                help: ArgumentHelp(
                    "Write PREFIX.pem and PREFIX.key instead of the default place in the PKI directory.",
                    valueName: "prefix"))
            var out: String?

            @Option(help: "Key type of the new key.")
            var keyType = CertificateAuthority.KeyAlgorithm.ecP256

            @Flag(help: "Overwrite existing certificate and key files.")
            var force = false
        }

        struct Server: ParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Issue a server certificate (extendedKeyUsage serverAuth).",
                discussion: """
                    Clients verify the name they connect to against the certificate's DNS names and IP \
                    addresses, so list every one of them. Without --dns and --ip, --name is the one DNS name. \
                    Files: DIR/servers/NAME.pem and DIR/servers/NAME.key, unless --out.
                    """)

            @OptionGroup var common: Common

            @Option(help: "The server's name: the certificate's common name and default file name.")
            var name: String

            @Option(help: "A DNS name clients connect to (repeatable; *.example.com for a wildcard).")
            var dns: [String] = []

            @Option(help: "An IP address clients connect to (repeatable).")
            var ip: [String] = []

            @Option(help: "Days the certificate is valid.")
            var days = CertificateAuthority.ServerCertificateRequest.defaultValidityDays

            func run() throws {
                let authority = try common.pki.open()
                let request = CertificateAuthority.ServerCertificateRequest(
                    name: name, dnsNames: dns, ipAddresses: ip, validityDays: days, keyAlgorithm: common.keyType)
                let issued = try CertsCommand.run { () throws(CertificateAuthorityError) in
                    try authority.issueServerCertificate(request, outputPrefix: common.out, overwrite: common.force)
                }
                Issue.printIssued(issued, kind: "server")
                CertsCommand.printFiles([
                    (issued.certificatePath, "certificate: --tls-cert"),
                    (issued.privateKeyPath, "private key (mode 0600): --tls-key; secret, copy it only to the server"),
                ])
                let layout = authority.layout
                print(
                    "Serve with: gearlock serve --tls-listen 0.0.0.0:4730 --tls-cert \(issued.certificatePath) "
                        + "--tls-key \(issued.privateKeyPath) --tls-ca \(layout.certificatePath) "
                        + "--tls-crl \(layout.crlPath)")
            }
        }

        struct Client: ParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Issue a client (worker) certificate (extendedKeyUsage clientAuth).",
                discussion: """
                    The principal is the certificate's common name and also a subjectAltName URI, \
                    urn:gearlock:principal:NAME; --tenant adds urn:gearlock:tenant:TENANT. Issue one \
                    certificate per worker, so each can be told apart in the ACL and revoked alone. \
                    Files: DIR/clients/NAME.pem and DIR/clients/NAME.key, unless --out.
                    """)

            @OptionGroup var common: Common

            @Option(help: "The principal (worker or client application) the certificate identifies.")
            var name: String

            @Option(help: "The tenant the principal belongs to.")
            var tenant: String?

            @Option(help: "Days the certificate is valid.")
            var days = CertificateAuthority.ClientCertificateRequest.defaultValidityDays

            func run() throws {
                let authority = try common.pki.open()
                let request = CertificateAuthority.ClientCertificateRequest(
                    principal: name, tenant: tenant, validityDays: days, keyAlgorithm: common.keyType)
                let issued = try CertsCommand.run { () throws(CertificateAuthorityError) in
                    try authority.issueClientCertificate(request, outputPrefix: common.out, overwrite: common.force)
                }
                Issue.printIssued(issued, kind: "client")
                CertsCommand.printFiles([
                    (issued.certificatePath, "certificate"),
                    (issued.privateKeyPath, "private key (mode 0600): secret, copy it only to that worker"),
                    (authority.layout.certificatePath, "CA certificate the worker verifies the server with"),
                ])
            }
        }

        static func printIssued(_ issued: CertificateAuthority.IssuedCertificate, kind: String) {
            print("Issued a \(kind) certificate for \(issued.subject), valid until \(CertsCommand.date(issued.notAfter)):")
            print("  serial          \(issued.serialNumber)")
            print("  subjectAltName  \(issued.subjectAlternativeNames.joined(separator: ", "))")
        }
    }
}

// MARK: revoke, crl, list

extension CertsCommand {
    struct Revoke: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Revoke a certificate and rewrite DIR/crl.pem.",
            discussion: """
                The CRL lists every certificate revoked so far. Servers read it at start and on SIGHUP; \
                a revoked client certificate fails its next handshake.
                """)

        @OptionGroup var pki: DirectoryOption

        @Option(
            help: ArgumentHelp(
                "Serial number of the certificate, in hex (as `gearlock certs list` shows it).", valueName: "hex"))
        var serial: String?

        @Option(help: ArgumentHelp("PEM file of the certificate.", valueName: "file"))
        var cert: String?

        @Option(help: "Why it is revoked (recorded in the CRL).")
        var reason = CertificateAuthority.RevocationReason.unspecified

        @Option(help: "Days the rewritten CRL is valid.")
        var crlDays = CertificateAuthority.defaultCRLValidityDays

        func validate() throws {
            guard (serial == nil) != (cert == nil) else { throw ValidationError("give either --serial or --cert") }
        }

        func run() throws {
            let authority = try pki.open()
            let revocation = try CertsCommand.run { () throws(CertificateAuthorityError) in
                if let serial {
                    try authority.revoke(serialNumber: serial, reason: reason, crlValidityDays: crlDays)
                } else {
                    try authority.revoke(certificateAt: cert!, reason: reason, crlValidityDays: crlDays)
                }
            }
            let certificate = revocation.certificate
            if revocation.wasAlreadyRevoked {
                print("\(certificate.serialNumber) (\(certificate.subject)) was already revoked on \(CertsCommand.date(certificate.revocationDate ?? 0)).")
            } else {
                print("Revoked \(certificate.serialNumber) (\(certificate.subject)), reason \(reason.rawValue).")
            }
            CertsCommand.printRevocationList(revocation.revocationList)
        }
    }

    struct RevocationList: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "crl",
            abstract: "Rewrite DIR/crl.pem without revoking anything (renew it before it expires).",
            discussion: """
                A server refuses every client certificate once its CRL is past its next-update time: \
                renew the CRL well before (a cron job running this command, then SIGHUP, will do).
                """)

        @OptionGroup var pki: DirectoryOption

        @Option(help: "Days the CRL is valid.")
        var crlDays = CertificateAuthority.defaultCRLValidityDays

        func run() throws {
            let authority = try pki.open()
            let list = try CertsCommand.run { () throws(CertificateAuthorityError) in
                try authority.publishRevocationList(validityDays: crlDays)
            }
            CertsCommand.printRevocationList(list)
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List the certificates the CA issued: serial, status, expiry, subject, file.")

        @OptionGroup var pki: DirectoryOption

        func run() throws {
            let authority = try pki.open()
            let records = try CertsCommand.run { () throws(CertificateAuthorityError) in
                try authority.issuedCertificates()
            }
            let now = Int64(time(nil))
            var table = TableRenderer(columns: [
                .init("SERIAL"), .init("STATUS"), .init("EXPIRES"), .init("SUBJECT"), .init("FILE"),
            ])
            for record in records {
                let status =
                    if let date = record.revocationDate {
                        "revoked \(CertsCommand.date(date))"
                            + (record.revocationReason.map { $0 == .unspecified ? "" : " (\($0.rawValue))" } ?? "")
                    } else if record.isExpired(at: now) {
                        "expired"
                    } else {
                        "valid"
                    }
                table.append([
                    record.serialNumber, status, CertsCommand.date(record.notAfter), record.subject,
                    record.certificatePath ?? "-",
                ])
            }
            print("CA \(authority.subject) in \(authority.layout.directory), valid until \(CertsCommand.date(authority.notAfter))")
            print(table.render(), terminator: "")
        }
    }
}
