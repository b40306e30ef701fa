import GearmanACL
import GearmanProtocol
import GearmanTLS
import NIOCore
import Testing

@testable import GearmanServer

/// Authentication by verified client certificate, alone and together with the secret.
@Suite struct AccessCertificateTests {
    @Test func verifiedCertificateWithOneCommonNameAuthenticates() throws {
        let h = try Harness.secured()
        let id = h.connect()
        let outbox = h.identify(id, AccessFixture.certificate(commonNames: ["acme-cert"]))
        #expect(outbox.effects == [.liftPacketLimit(id)])
        #expect(outbox.auditNames == ["authenticated"])
        let audit = try #require(outbox.audit("authenticated"))
        #expect(audit["auth.principal"] == "acme-cert")
        #expect(audit["gearman.packet"] == "TLS handshake")
        #expect(audit["tls.identity"] == "acme-cert")
        // It may now register its functions, and gets work.
        #expect(h.send(Pkt.canDo("acme.resize"), from: id).isEmpty)
        let handle = try h.submit(Pkt.submit("acme.resize", "img"), from: h.authenticated("acme-web"))
        #expect(try h.grabHandle(id) == handle)
    }

    @Test func certificateWithSeveralCommonNamesIsRefused() throws {
        let h = try Harness.secured()
        let id = h.connect()
        let outbox = h.identify(id, AccessFixture.certificate(commonNames: ["acme-cert", "ops-admin"]))
        #expect(outbox.effects == [.send(AccessRes.authFailed, to: id), .close(id)])
        #expect(outbox.auditNames == ["authentication_failed"])
        #expect(outbox.audit("authentication_failed")?["reason"]?.contains("ambiguous") == true)
        #expect(h.machine.connections[id]?.principal == nil)
    }

    @Test func certificateWithTheSameCommonNameTwiceIsStillAmbiguous() throws {
        let h = try Harness.secured()
        let id = h.connect()
        let outbox = h.identify(id, AccessFixture.certificate(commonNames: ["acme-cert", "acme-cert"]))
        #expect(outbox.effects == [.send(AccessRes.authFailed, to: id), .close(id)])
    }

    @Test func unverifiedCertificateLeavesTheConnectionAnonymous() throws {
        let h = try Harness.secured()
        let id = h.connect()
        #expect(h.identify(id, AccessFixture.certificate(commonNames: ["acme-cert"], verified: false)).isEmpty)
        #expect(h.machine.connections[id]?.principal == nil)
        #expect(h.machine.connections[id]?.certificateIdentity == nil)
        // Still held to the pre-authentication rules: a registration is silently not made.
        #expect(h.send(Pkt.canDo("acme.resize"), from: id).isEmpty)
        #expect(h.machine.connections[id]?.abilities.isEmpty == true)
        #expect(h.send(Pkt.submit("acme.resize"), from: id).packets(to: id) == [AccessRes.submitDenied])
    }

    @Test func noPeerCertificateLeavesTheConnectionAnonymous() throws {
        let h = try Harness.secured()
        let id = h.connect()
        let noCertificate = TLSPeerIdentity(commonNames: ["acme-cert"], isVerified: true, protocolVersion: "TLSv1.3")
        #expect(h.identify(id, noCertificate).isEmpty)
        #expect(h.machine.connections[id]?.principal == nil)
    }

    @Test func certificateUnknownToTheACLIsAuditedAndStaysAnonymous() throws {
        let h = try Harness.secured()
        let id = h.connect()
        let outbox = h.identify(id, AccessFixture.certificate(commonNames: ["stranger"]))
        #expect(outbox.isEmpty)
        #expect(outbox.auditNames == ["certificate_unknown"])
        #expect(h.machine.connections[id]?.principal == nil)
        // It may still authenticate with a secret.
        h.send(Harness.authOption("acme-web", AccessSecrets.acmeWeb), from: id)
        #expect(h.machine.connections[id]?.principal?.name == "acme-web")
    }

    // MARK: Subject alternative names

    @Test func subjectAlternativeNamePrefersTheSingleURI() throws {
        let h = try Harness.secured(certificateIdentity: .subjectAlternativeName)
        let id = h.connect()
        let outbox = h.identify(
            id,
            AccessFixture.certificate(
                commonNames: ["acme-cert"], dnsNames: ["dns-worker.acme.example"], uriNames: ["spiffe://acme/uri-worker"]))
        #expect(outbox.effects == [.liftPacketLimit(id)])
        #expect(h.machine.connections[id]?.principal?.name == "acme-uri")
    }

    @Test func subjectAlternativeNameFallsBackToTheSingleDNSName() throws {
        let h = try Harness.secured(certificateIdentity: .subjectAlternativeName)
        let id = h.connect()
        let outbox = h.identify(
            id, AccessFixture.certificate(commonNames: ["acme-cert"], dnsNames: ["dns-worker.acme.example"]))
        #expect(outbox.effects == [.liftPacketLimit(id)])
        #expect(h.machine.connections[id]?.principal?.name == "acme-dns")
    }

    @Test func subjectAlternativeNameOfAGearlockIssuedCertificateNamesThePrincipal() throws {
        let h = try Harness.secured(certificateIdentity: .subjectAlternativeName)
        let id = h.connect()
        let certificate = AccessFixture.certificate(
            commonNames: ["whatever"], uriNames: ["urn:gearlock:tenant:acme", "urn:gearlock:principal:acme-cert"])
        #expect(h.identify(id, certificate).effects == [.liftPacketLimit(id)])
        #expect(h.machine.connections[id]?.principal?.name == "acme-cert")
    }

    @Test func subjectAlternativeNameIgnoresTheCommonName() throws {
        let h = try Harness.secured(certificateIdentity: .subjectAlternativeName)
        let id = h.connect()
        #expect(h.identify(id, AccessFixture.certificate(commonNames: ["acme-cert"])).isEmpty)
        #expect(h.machine.connections[id]?.principal == nil)
    }

    @Test(arguments: [
        AccessFixture.certificate(uriNames: ["spiffe://acme/uri-worker", "spiffe://acme/other"]),
        // Several URIs are ambiguous even when a single DNS name would have decided.
        AccessFixture.certificate(dnsNames: ["dns-worker.acme.example"], uriNames: ["spiffe://acme/uri-worker", "x:y"]),
        AccessFixture.certificate(dnsNames: ["dns-worker.acme.example", "other.acme.example"]),
    ])
    func severalSubjectAlternativeNamesOfTheDecidingKindAreRefused(certificate: TLSPeerIdentity) throws {
        let h = try Harness.secured(certificateIdentity: .subjectAlternativeName)
        let id = h.connect()
        #expect(h.identify(id, certificate).effects == [.send(AccessRes.authFailed, to: id), .close(id)])
        #expect(h.machine.connections[id]?.principal == nil)
    }

    // MARK: Both factors

    @Test func principalRequiringBothFactorsNeedsTheSecretAfterItsCertificate() throws {
        let h = try Harness.secured()
        let id = h.connect()
        let handshake = h.identify(id, AccessFixture.certificate(commonNames: ["dual-cert"]))
        #expect(handshake.isEmpty)  // no close, no lift
        #expect(h.machine.connections[id]?.principal == nil)
        #expect(h.machine.connections[id]?.certificateIdentity == "dual-cert")
        // Still anonymous: its registration is not made.
        #expect(h.send(Pkt.canDo("acme.resize"), from: id).isEmpty)
        #expect(h.machine.connections[id]?.abilities.isEmpty == true)

        let outbox = h.send(Harness.authOption("dual", AccessSecrets.dual), from: id)
        #expect(outbox.effects == [.liftPacketLimit(id), .send(.optionResponse(name: buf("auth:dual")), to: id)])
        #expect(h.send(Pkt.canDo("acme.resize"), from: id).isEmpty)
        #expect(h.machine.connections[id]?.abilities.map { String(buffer: $0.function) } == ["acme.resize"])
    }

    @Test func principalRequiringBothFactorsFailsWithTheSecretAlone() throws {
        let h = try Harness.secured()
        let id = h.connect()
        let outbox = h.send(Harness.authOption("dual", AccessSecrets.dual), from: id)
        #expect(outbox.effects == [.send(AccessRes.authFailed, to: id), .close(id)])
        #expect(outbox.audit("authentication_failed")?["reason"] == "the principal requires its certificate")
    }

    @Test func principalRequiringBothFactorsFailsWithItsCertificateAndAWrongSecret() throws {
        let h = try Harness.secured()
        let id = h.connect()
        h.identify(id, AccessFixture.certificate(commonNames: ["dual-cert"]))
        let outbox = h.send(Harness.authClientID("dual", AccessSecrets.wrong), from: id)
        #expect(outbox.effects == [.send(AccessRes.authFailed, to: id), .close(id)])
    }

    @Test func anotherPrincipalsCertificateWithTheTokenFails() throws {
        let h = try Harness.secured()
        let id = h.connect()
        // acme-cert authenticates by its certificate alone...
        #expect(h.identify(id, AccessFixture.certificate(commonNames: ["acme-cert"])).effects == [.liftPacketLimit(id)])
        // ...and then claims `dual` with dual's secret: refused, and it stays acme-cert.
        let outbox = h.send(Harness.authOption("dual", AccessSecrets.dual), from: id)
        #expect(outbox.effects == [.send(AccessRes.authFailed, to: id), .close(id)])
        #expect(h.machine.connections[id]?.principal?.name == "acme-cert")
    }

    @Test func certificateOfAPrincipalThatNeedsItsSecretWithAnotherPrincipalsTokenFails() throws {
        let h = try Harness.secured()
        let id = h.connect()
        // dual's certificate (which waits for dual's secret), then acme-web's valid token.
        #expect(h.identify(id, AccessFixture.certificate(commonNames: ["dual-cert"])).isEmpty)
        let outbox = h.send(Harness.authOption("acme-web", AccessSecrets.acmeWeb), from: id)
        #expect(outbox.effects == [.send(AccessRes.authFailed, to: id), .close(id)])
        #expect(outbox.audit("authentication_failed")?["reason"] == "the certificate belongs to another principal")
        #expect(h.machine.connections[id]?.principal == nil)
    }

    @Test func principalWithEitherFactorAuthenticatesByCertificateAlone() throws {
        let h = try Harness.secured()
        let id = h.connect()
        #expect(h.identify(id, AccessFixture.certificate(commonNames: ["globex-cert"])).effects == [.liftPacketLimit(id)])
        #expect(h.machine.connections[id]?.principal?.name == "globex-admin")
        // ...or by its secret alone.
        #expect(h.authenticated("globex-admin") != id)
    }
}
