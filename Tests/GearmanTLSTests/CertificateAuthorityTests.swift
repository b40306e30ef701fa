import Foundation
import GearlockTestSupport
import GearmanTLS
import NIOEmbedded
import Testing

/// `gearlock certs`' CA, checked from the outside with the `openssl` CLI (what it writes is what
/// any other TLS stack would read), and by a real mutual-TLS handshake through `TLSHandler`.
@Suite("CertificateAuthority", .timeLimit(.minutes(5)))
struct CertificateAuthorityTests {
    // MARK: The CA

    @Test("init makes a self-signed CA: CA:TRUE critical, keyCertSign + cRLSign, SKID, 128-bit serial, key 0600")
    func createsAuthority() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let authority = try CertificateAuthority.create(
            in: scratch.pki, options: .init(name: "Test CA", validityDays: 30))
        let layout = authority.layout

        #expect(authority.subject == "/CN=Test CA")
        #expect(authority.notAfter > Int64(Date.now.timeIntervalSince1970) + 29 * 86_400)
        // 128 random bits: 16 bytes, fewer only when the top byte happens to be zero.
        #expect((28...32).contains(authority.serialNumber.count), "\(authority.serialNumber)")

        let text = try openssl(["x509", "-in", layout.certificatePath, "-noout", "-text"])
        #expect(text.contains("Issuer: CN = Test CA") && text.contains("Subject: CN = Test CA"))
        #expect(text.contains("X509v3 Basic Constraints: critical\n                CA:TRUE"), "\(text)")
        #expect(text.contains("X509v3 Key Usage: critical\n                Certificate Sign, CRL Sign"))
        #expect(text.contains("X509v3 Subject Key Identifier"))
        #expect(text.contains("ASN1 OID: prime256v1") && text.contains("ecdsa-with-SHA256"))
        _ = try openssl(["verify", "-CAfile", layout.certificatePath, layout.certificatePath])

        #expect(try mode(of: layout.privateKeyPath) == 0o600)
        #expect(try mode(of: layout.certificatePath) & 0o077 != 0o077)
        #expect(try mode(of: scratch.pki) == 0o700)
        #expect(try String(contentsOfFile: layout.indexPath, encoding: .utf8).isEmpty)
        #expect(try authority.issuedCertificates().isEmpty)
        // The key matches the certificate.
        let publicKeyOfKey = try openssl(["pkey", "-in", layout.privateKeyPath, "-pubout"])
        let publicKeyOfCertificate = try openssl(["x509", "-in", layout.certificatePath, "-noout", "-pubkey"])
        #expect(publicKeyOfKey == publicKeyOfCertificate)

        // The first CRL is there, empty, and verifies with the CA.
        let crl = try openssl(["crl", "-in", layout.crlPath, "-CAfile", layout.certificatePath, "-noout", "-text"])
        #expect(crl.contains("Version 2") && crl.contains("No Revoked Certificates") && crl.contains("CRL Number"))
        #expect(crl.contains("Next Update"))

        // Opening it again reads the same CA.
        #expect(try CertificateAuthority(directory: scratch.pki) == authority)
    }

    @Test("a P-384 CA signs with SHA-384")
    func p384AuthoritySignsWithSHA384() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let authority = try CertificateAuthority.create(
            in: scratch.pki, options: .init(validityDays: 30, keyAlgorithm: .ecP384))
        let issued = try authority.issueClientCertificate(.init(principal: "worker-1", validityDays: 10))
        let text = try openssl(["x509", "-in", issued.certificatePath, "-noout", "-text"])
        #expect(text.contains("ecdsa-with-SHA384"))
        #expect(text.contains("ASN1 OID: prime256v1"), "the worker's own key is still P-256 by default")
        _ = try openssl(["verify", "-CAfile", authority.layout.certificatePath, issued.certificatePath])
    }

    @Test("init refuses to replace a CA unless asked, and a forced key file is created 0600")
    func refusesToOverwrite() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let first = try CertificateAuthority.create(in: scratch.pki, options: .init(validityDays: 30))
        let error = try #require(throws: CertificateAuthorityError.self) {
            try CertificateAuthority.create(in: scratch.pki, options: .init(validityDays: 30))
        }
        #expect(error.code == .fileExists)
        #expect(try CertificateAuthority(directory: scratch.pki) == first, "the existing CA is untouched")

        // A key file someone made world-readable is replaced by a new file, not re-used.
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: first.layout.privateKeyPath)
        let second = try CertificateAuthority.create(in: scratch.pki, options: .init(validityDays: 30), overwrite: true)
        #expect(second.serialNumber != first.serialNumber)
        #expect(try mode(of: second.layout.privateKeyPath) == 0o600)
    }

    @Test("a directory without a CA is reported as such")
    func missingAuthority() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let error = try #require(throws: CertificateAuthorityError.self) {
            try CertificateAuthority(directory: scratch.pki)
        }
        #expect(error.code == .invalidAuthority)
        #expect(error.message.contains("gearlock certs init"))
    }

    // MARK: Issuing

    @Test("a server certificate verifies, is for serverAuth, and carries its DNS and IP SANs")
    func issuesServerCertificate() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let authority = try CertificateAuthority.create(in: scratch.pki, options: .init(validityDays: 30))
        let issued = try authority.issueServerCertificate(
            .init(name: "gearlock-1", dnsNames: ["localhost", "Gearman.Example.com"], ipAddresses: ["127.0.0.1", "::1"],
                  validityDays: 20))
        #expect(issued.certificatePath == scratch.pki + "/servers/gearlock-1.pem")
        #expect(issued.privateKeyPath == scratch.pki + "/servers/gearlock-1.key")
        #expect(issued.subject == "/CN=gearlock-1")
        #expect(
            issued.subjectAlternativeNames == [
                "DNS:localhost", "DNS:gearman.example.com", "IP:127.0.0.1", "IP:::1",
            ])

        let ca = authority.layout.certificatePath
        _ = try openssl(["verify", "-CAfile", ca, "-purpose", "sslserver", issued.certificatePath])
        let text = try openssl(["x509", "-in", issued.certificatePath, "-noout", "-text"])
        #expect(text.contains("Subject: CN = gearlock-1") && text.contains("Issuer: CN = Gearlock CA"))
        #expect(text.contains("DNS:localhost, DNS:gearman.example.com, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1"))
        #expect(text.contains("X509v3 Extended Key Usage: \n                TLS Web Server Authentication\n"))
        #expect(text.contains("X509v3 Key Usage: critical\n                Digital Signature\n"))
        #expect(text.contains("CA:FALSE"))
        #expect(text.contains("X509v3 Authority Key Identifier") && text.contains("X509v3 Subject Key Identifier"))
        #expect(text.contains("Serial Number:"))
        let serial = try openssl(["x509", "-in", issued.certificatePath, "-noout", "-serial"])
        #expect(serial == "serial=\(issued.serialNumber)\n")
        #expect(try openssl(["x509", "-in", issued.certificatePath, "-noout", "-checkhost", "localhost"]).contains("does match"))
        #expect(try openssl(["x509", "-in", issued.certificatePath, "-noout", "-checkip", "::1"]).contains("does match"))
        #expect(try mode(of: issued.privateKeyPath) == 0o600)
        #expect(try mode(of: scratch.pki + "/servers") == 0o700)

        // A server certificate does not authenticate a client.
        let asClient = try openssl(
            ["verify", "-CAfile", ca, "-purpose", "sslclient", issued.certificatePath], expectFailure: true)
        #expect(asClient.contains("unsuitable certificate purpose"), "\(asClient)")

        let records = try authority.issuedCertificates()
        #expect(records.map(\.serialNumber) == [issued.serialNumber])
        #expect(records.first?.subject == "/CN=gearlock-1")
        #expect(records.first?.certificatePath == "servers/gearlock-1.pem")
        #expect(records.first?.notAfter == issued.notAfter)
        #expect(records.first?.isRevoked == false)
    }

    @Test("without DNS names or addresses, a server's name is its DNS name")
    func serverNameIsDefaultDNSName() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let authority = try CertificateAuthority.create(in: scratch.pki, options: .init(validityDays: 30))
        let issued = try authority.issueServerCertificate(.init(name: "gearman.internal", validityDays: 10))
        #expect(issued.subjectAlternativeNames == ["DNS:gearman.internal"])
        let text = try openssl(["x509", "-in", issued.certificatePath, "-noout", "-ext", "subjectAltName"])
        #expect(text.contains("DNS:gearman.internal"))
    }

    @Test("a client certificate verifies, is for clientAuth, and names its principal and tenant as SAN URIs")
    func issuesClientCertificate() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let authority = try CertificateAuthority.create(in: scratch.pki, options: .init(validityDays: 30))
        let issued = try authority.issueClientCertificate(
            .init(principal: "acme-resizer-1", tenant: "acme", validityDays: 10))
        #expect(issued.certificatePath == scratch.pki + "/clients/acme-resizer-1.pem")
        #expect(
            issued.subjectAlternativeNames == [
                "URI:urn:gearlock:principal:acme-resizer-1", "URI:urn:gearlock:tenant:acme",
            ])

        let ca = authority.layout.certificatePath
        _ = try openssl(["verify", "-CAfile", ca, "-purpose", "sslclient", issued.certificatePath])
        let text = try openssl(["x509", "-in", issued.certificatePath, "-noout", "-text"])
        #expect(text.contains("Subject: CN = acme-resizer-1\n"))
        #expect(text.contains("X509v3 Extended Key Usage: \n                TLS Web Client Authentication\n"))
        #expect(text.contains("URI:urn:gearlock:principal:acme-resizer-1, URI:urn:gearlock:tenant:acme"))
        #expect(try mode(of: issued.privateKeyPath) == 0o600)

        // Without a tenant: only the principal URI.
        let plain = try authority.issueClientCertificate(.init(principal: "ops", validityDays: 10))
        let plainText = try openssl(["x509", "-in", plain.certificatePath, "-noout", "-ext", "subjectAltName"])
        #expect(plainText.contains("URI:urn:gearlock:principal:ops") && !plainText.contains("tenant"))
    }

    @Test("an RSA client key gets keyEncipherment too, and its output prefix is honoured")
    func issuesRSAClientCertificate() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let authority = try CertificateAuthority.create(in: scratch.pki, options: .init(validityDays: 30))
        let prefix = scratch.root + "/elsewhere/worker-7"
        try FileManager.default.createDirectory(atPath: scratch.root + "/elsewhere", withIntermediateDirectories: true)
        let issued = try authority.issueClientCertificate(
            .init(principal: "worker-7", validityDays: 10, keyAlgorithm: .rsa2048), outputPrefix: prefix)
        #expect(issued.certificatePath == prefix + ".pem" && issued.privateKeyPath == prefix + ".key")
        _ = try openssl(["verify", "-CAfile", authority.layout.certificatePath, issued.certificatePath])
        let text = try openssl(["x509", "-in", issued.certificatePath, "-noout", "-text"])
        #expect(text.contains("Public-Key: (2048 bit)"))
        #expect(text.contains("Digital Signature, Key Encipherment"))
        #expect(try mode(of: issued.privateKeyPath) == 0o600)
        #expect(try authority.issuedCertificates().first?.certificatePath == prefix + ".pem")
    }

    @Test("issuing refuses existing files unless asked, and a forced key is a new 0600 file")
    func issueRefusesToOverwrite() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let authority = try CertificateAuthority.create(in: scratch.pki, options: .init(validityDays: 30))
        let first = try authority.issueClientCertificate(.init(principal: "worker-1", validityDays: 10))
        let error = try #require(throws: CertificateAuthorityError.self) {
            try authority.issueClientCertificate(.init(principal: "worker-1", validityDays: 10))
        }
        #expect(error.code == .fileExists)
        #expect(try authority.issuedCertificates().count == 1, "nothing was issued")

        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: first.privateKeyPath)
        let second = try authority.issueClientCertificate(
            .init(principal: "worker-1", validityDays: 10), overwrite: true)
        #expect(second.serialNumber != first.serialNumber)
        #expect(try mode(of: second.privateKeyPath) == 0o600)
        #expect(try authority.issuedCertificates().map(\.serialNumber) == [first.serialNumber, second.serialNumber])
    }

    @Test(
        "requests that cannot become certificates are refused",
        arguments: [
            ("principal", "bad name"), ("principal", "-dash-first"), ("principal", String(repeating: "a", count: 65)),
            ("tenant", "acme:evil"), ("tenant", ""), ("ip", "999.1.1.1"), ("dns", "bad_host.example"),
            ("dns", "a..b"), ("days", "0"), ("days", "40"),
        ])
    func refusesInvalidRequests(field: String, value: String) throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let authority = try CertificateAuthority.create(in: scratch.pki, options: .init(validityDays: 30))
        let error = try #require(throws: CertificateAuthorityError.self) {
            switch field {
            case "principal": _ = try authority.issueClientCertificate(.init(principal: value, validityDays: 10))
            case "tenant": _ = try authority.issueClientCertificate(.init(principal: "w", tenant: value, validityDays: 10))
            case "ip": _ = try authority.issueServerCertificate(.init(name: "s", ipAddresses: [value], validityDays: 10))
            case "dns": _ = try authority.issueServerCertificate(.init(name: "s", dnsNames: [value], validityDays: 10))
            default: _ = try authority.issueClientCertificate(.init(principal: "w", validityDays: Int(value)!))
            }
        }
        #expect(error.code == .invalidRequest, "\(error)")
        #expect(try authority.issuedCertificates().isEmpty)
        #expect(!FileManager.default.fileExists(atPath: scratch.pki + "/clients/w.key"))
    }

    // MARK: Revoking

    @Test("a revoked certificate fails `openssl verify -crl_check` as revoked, another still passes")
    func revokesIntoCRL() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let authority = try CertificateAuthority.create(in: scratch.pki, options: .init(validityDays: 30))
        let layout = authority.layout
        let keep = try authority.issueClientCertificate(.init(principal: "worker-1", validityDays: 10))
        let drop = try authority.issueClientCertificate(.init(principal: "worker-2", tenant: "acme", validityDays: 10))
        let server = try authority.issueServerCertificate(.init(name: "localhost", validityDays: 10))
        let firstNumber = try crlNumber(layout.crlPath)

        // By serial, written as openssl prints it (lowercase with colons).
        let colons = stride(from: 0, to: drop.serialNumber.count, by: 2).map { offset in
            let start = drop.serialNumber.index(drop.serialNumber.startIndex, offsetBy: offset)
            return drop.serialNumber[start..<drop.serialNumber.index(start, offsetBy: 2)].lowercased()
        }.joined(separator: ":")
        let revocation = try authority.revoke(serialNumber: colons, reason: .keyCompromise, crlValidityDays: 7)
        #expect(!revocation.wasAlreadyRevoked)
        #expect(revocation.certificate.serialNumber == drop.serialNumber)
        #expect(revocation.certificate.revocationReason == .keyCompromise)
        #expect(revocation.revocationList.path == layout.crlPath && revocation.revocationList.revokedCount == 1)
        #expect(revocation.revocationList.number == firstNumber + 1)
        #expect(try crlNumber(layout.crlPath) == firstNumber + 1)

        let ca = layout.certificatePath
        let crlCheck = ["verify", "-CAfile", ca, "-crl_check", "-CRLfile", layout.crlPath]
        let refused = try openssl(crlCheck + [drop.certificatePath], expectFailure: true)
        #expect(refused.contains("certificate revoked"), "\(refused)")
        _ = try openssl(crlCheck + [keep.certificatePath])
        _ = try openssl(crlCheck + [server.certificatePath])

        let crl = try openssl(["crl", "-in", layout.crlPath, "-CAfile", ca, "-noout", "-text"])
        #expect(crl.contains("Version 2 (0x1)") && crl.contains("Issuer: CN = Gearlock CA"))
        #expect(crl.contains("Serial Number: \(drop.serialNumber)") && !crl.contains(keep.serialNumber))
        #expect(crl.contains("Key Compromise") && crl.contains("X509v3 Authority Key Identifier"))
        #expect(crl.contains("Last Update") && crl.contains("Next Update"))

        // Revocations accumulate: revoking another by its file keeps the first in the CRL.
        let second = try authority.revoke(certificateAt: keep.certificatePath)
        #expect(second.revocationList.revokedCount == 2)
        let bothRefused = try openssl(crlCheck + [keep.certificatePath], expectFailure: true)
        #expect(bothRefused.contains("certificate revoked"))
        _ = try openssl(crlCheck + [drop.certificatePath], expectFailure: true)
        _ = try openssl(crlCheck + [server.certificatePath])

        // Revoking again changes nothing but renews the CRL.
        let again = try authority.revoke(serialNumber: drop.serialNumber)
        #expect(again.wasAlreadyRevoked && again.certificate.revocationReason == .keyCompromise)
        #expect(again.revocationList.revokedCount == 2)

        let records = try authority.issuedCertificates()
        #expect(records.map(\.isRevoked) == [true, true, false])
        #expect(records.map(\.revocationReason) == [.unspecified, .keyCompromise, nil])
        let index = try String(contentsOfFile: layout.indexPath, encoding: .utf8)
        #expect(index.split(separator: "\n").map { $0.prefix(1) } == ["R", "R", "V"])
        #expect(index.contains(",keyCompromise\t\(drop.serialNumber)\tclients/worker-2.pem\t/CN=worker-2\n"))

        // Renewing the CRL keeps every revocation and counts up.
        let renewed = try authority.publishRevocationList(validityDays: 30)
        #expect(renewed.revokedCount == 2 && renewed.number == again.revocationList.number + 1)
        _ = try openssl(crlCheck + [keep.certificatePath], expectFailure: true)
    }

    @Test("revoking what this CA did not issue is refused")
    func refusesUnknownCertificates() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let authority = try CertificateAuthority.create(in: scratch.pki, options: .init(validityDays: 30))
        let other = try CertificateAuthority.create(in: scratch.root + "/other", options: .init(validityDays: 30))
        let foreign = try other.issueClientCertificate(.init(principal: "worker-1", validityDays: 10))

        let unknownSerial = try #require(throws: CertificateAuthorityError.self) {
            try authority.revoke(serialNumber: "0123456789ABCDEF")
        }
        #expect(unknownSerial.code == .unknownCertificate)
        let notHex = try #require(throws: CertificateAuthorityError.self) {
            try authority.revoke(serialNumber: "xyz")
        }
        #expect(notHex.code == .invalidRequest)
        let foreignFile = try #require(throws: CertificateAuthorityError.self) {
            try authority.revoke(certificateAt: foreign.certificatePath)
        }
        #expect(foreignFile.code == .unknownCertificate)
        #expect(try authority.issuedCertificates().isEmpty)
        #expect(try crlNumber(authority.layout.crlPath) == 1, "the CRL was not rewritten")
    }

    // MARK: Mutual TLS with the issued certificates

    @Test("a worker with an issued certificate connects with mutual TLS; once revoked, it is refused")
    func mutualTLSWithIssuedCertificates() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let authority = try CertificateAuthority.create(in: scratch.pki, options: .init(validityDays: 30))
        let layout = authority.layout
        let server = try authority.issueServerCertificate(
            .init(name: "gearlock-1", dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"], validityDays: 10))
        let worker = try authority.issueClientCertificate(
            .init(principal: "acme-resizer-1", tenant: "acme", validityDays: 10))

        func serverContext(crl: Bool) throws -> TLSContext {
            try TLSContext(
                configuration: .makeServerConfiguration(
                    certificateChainPath: server.certificatePath, privateKeyPath: server.privateKeyPath,
                    clientAuthentication: .require, trustRootsPath: layout.certificatePath,
                    crlPath: crl ? layout.crlPath : nil))
        }
        let workerContext = try TLSContext(
            configuration: .makeClientConfiguration(
                trustRootsPath: layout.certificatePath, serverName: "localhost",
                certificateChainPath: worker.certificatePath, privateKeyPath: worker.privateKeyPath))

        let accepted = try TLSPair(server: serverContext(crl: true), client: workerContext)
        try accepted.pump()
        let seenByServer = try #require(accepted.serverPeer.identity, "\(accepted.serverPeer)")
        #expect(seenByServer.isVerified)
        #expect(seenByServer.commonNames == ["acme-resizer-1"])
        #expect(seenByServer.uriNames == ["urn:gearlock:principal:acme-resizer-1", "urn:gearlock:tenant:acme"])
        let seenByWorker = try #require(accepted.clientPeer.identity, "\(accepted.clientPeer)")
        #expect(seenByWorker.isVerified && seenByWorker.commonNames == ["gearlock-1"])
        #expect(seenByWorker.dnsNames == ["localhost"] && seenByWorker.ipAddresses == ["127.0.0.1"])
        try accepted.exchange("GRAB_JOB", from: .client)
        #expect(accepted.serverPeer.errors.isEmpty && accepted.clientPeer.errors.isEmpty)
        accepted.finish()

        _ = try authority.revoke(serialNumber: worker.serialNumber, reason: .keyCompromise)
        let refused = try TLSPair(server: serverContext(crl: true), client: workerContext)
        try refused.pump()
        #expect(refused.serverPeer.identity == nil)
        #expect(refused.serverPeer.tlsErrorCodes == [.handshakeFailed], "\(refused.serverPeer)")
        let reasons = refused.serverPeer.errors.compactMap { ($0 as? TLSError)?.openSSLErrors }.joined()
        #expect(reasons.contains("certificate revoked"), "\(reasons)")
        #expect(!refused.server.isActive)
        refused.finish()

        // The same revoked certificate still passes a server that has no CRL: the CRL is what refuses it.
        let withoutCRL = try TLSPair(server: serverContext(crl: false), client: workerContext)
        try withoutCRL.pump()
        #expect(withoutCRL.serverPeer.identity?.commonNames == ["acme-resizer-1"], "\(withoutCRL.serverPeer)")
        withoutCRL.finish()
    }
}

// MARK: - Support

/// A temporary directory for one test; `pki` inside it does not exist until the CA makes it.
private struct Scratch {
    let root: String
    var pki: String { root + "/pki" }

    init() throws {
        root = NSTemporaryDirectory() + "gearlock-ca-test-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
    }

    func remove() {
        try? FileManager.default.removeItem(atPath: root)
    }
}

private struct OpenSSLCommandError: Error, CustomStringConvertible {
    var description: String
}

/// Runs the `openssl` CLI and returns its stdout and stderr together. Fails unless it exits 0 —
/// or, with `expectFailure`, unless it exits non-zero.
private func openssl(_ arguments: [String], expectFailure: Bool = false) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
    process.arguments = arguments
    let output = Pipe()
    process.standardOutput = output
    process.standardError = output
    process.standardInput = FileHandle.nullDevice
    try process.run()
    let data = readToEnd(output.fileHandleForReading)
    process.waitUntilExit()
    let text = String(decoding: data, as: UTF8.self)
    guard (process.terminationStatus == 0) != expectFailure else {
        throw OpenSSLCommandError(
            description: "openssl \(arguments.joined(separator: " ")) exited \(process.terminationStatus): \(text)")
    }
    return text
}

private func mode(of path: String) throws -> Int {
    let attributes = try FileManager.default.attributesOfItem(atPath: path)
    return (attributes[.posixPermissions] as? Int ?? -1) & 0o777
}

private func crlNumber(_ path: String) throws -> Int {
    let text = try openssl(["crl", "-in", path, "-noout", "-crlnumber"])  // crlNumber=0x05
    let hex = text.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: "0x").last ?? ""
    return Int(hex, radix: 16) ?? -1
}
