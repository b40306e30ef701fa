import GearmanACL
import GearmanTLS
import NIOCore
import Testing

@testable import GearmanServer

/// Which name of a verified client certificate identifies its holder.
@Suite struct CertificateIdentityTests {
    private func peer(
        cn: [String] = [], dns: [String] = [], uri: [String] = [], ip: [String] = [], verified: Bool = true,
        certificate: Bool = true
    ) -> TLSPeerIdentity {
        TLSPeerIdentity(
            commonNames: cn, dnsNames: dns, uriNames: uri, ipAddresses: ip,
            fingerprintSHA256: certificate ? String(repeating: "0f", count: 32) : nil, isVerified: verified)
    }

    @Test func commonNameSource() {
        let source = AccessControl.CertificateIdentitySource.commonName
        #expect(source.identity(of: peer(cn: ["w1"])) == .identity("w1"))
        #expect(source.identity(of: peer(cn: ["w1"], dns: ["d"], uri: ["u"])) == .identity("w1"))
        #expect(source.identity(of: peer(dns: ["d"], uri: ["u"])) == .none)
        #expect(source.identity(of: peer(cn: ["w1", "w2"])) == .ambiguous("the certificate has 2 common names"))
    }

    @Test func subjectAlternativeNameSourcePrefersTheURI() {
        let source = AccessControl.CertificateIdentitySource.subjectAlternativeName
        #expect(source.identity(of: peer(cn: ["c"], dns: ["d"], uri: ["spiffe://x/y"])) == .identity("spiffe://x/y"))
        #expect(source.identity(of: peer(cn: ["c"], dns: ["d"])) == .identity("d"))
        #expect(source.identity(of: peer(cn: ["c"])) == .none)
        #expect(source.identity(of: peer(ip: ["10.0.0.1"])) == .none)
    }

    @Test func subjectAlternativeNameSourceRefusesSeveralOfTheDecidingKind() {
        let source = AccessControl.CertificateIdentitySource.subjectAlternativeName
        #expect(source.identity(of: peer(uri: ["u1", "u2"])) == .ambiguous("the certificate has 2 URI SANs"))
        // Several URIs decide even when one DNS name would have been clear.
        #expect(source.identity(of: peer(dns: ["d"], uri: ["u1", "u2"])) == .ambiguous("the certificate has 2 URI SANs"))
        #expect(source.identity(of: peer(dns: ["d1", "d2", "d3"])) == .ambiguous("the certificate has 3 DNS SANs"))
        // One URI decides even with several DNS names.
        #expect(source.identity(of: peer(dns: ["d1", "d2"], uri: ["u"])) == .identity("u"))
    }

    /// Certificates from `gearlock certs` carry `urn:gearlock:principal:<name>` (the identity, named
    /// in the ACL as just `<name>`) and `urn:gearlock:tenant:<tenant>` (not an identity).
    @Test func gearlockIssuedURIs() {
        let source = AccessControl.CertificateIdentitySource.subjectAlternativeName
        #expect(
            source.identity(of: peer(cn: ["c"], uri: ["urn:gearlock:principal:acme-cert", "urn:gearlock:tenant:acme"]))
                == .identity("acme-cert"))
        #expect(source.identity(of: peer(uri: ["urn:gearlock:tenant:acme"])) == .none)
        #expect(source.identity(of: peer(dns: ["d"], uri: ["urn:gearlock:tenant:acme"])) == .identity("d"))
        #expect(
            source.identity(of: peer(uri: ["urn:gearlock:principal:a", "urn:gearlock:principal:b"]))
                == .ambiguous("the certificate has 2 URI SANs"))
        // Other URIs are identities as they stand.
        #expect(source.identity(of: peer(uri: ["spiffe://acme/w", "urn:gearlock:tenant:acme"])) == .identity("spiffe://acme/w"))
    }

    @Test(arguments: AccessControl.CertificateIdentitySource.allCases)
    func unverifiedOrAbsentCertificatesIdentifyNobody(source: AccessControl.CertificateIdentitySource) {
        #expect(source.identity(of: peer(cn: ["w"], dns: ["w"], uri: ["w"], verified: false)) == .none)
        #expect(source.identity(of: peer(cn: ["w"], dns: ["w"], uri: ["w"], certificate: false)) == .none)
        // Not even an ambiguous one is reported: it is not believed at all.
        #expect(source.identity(of: peer(cn: ["a", "b"], dns: ["a", "b"], uri: ["a", "b"], verified: false)) == .none)
    }

    @Test func sourcesHaveTheirConfigurationNames() {
        #expect(AccessControl.CertificateIdentitySource.commonName.rawValue == "commonName")
        #expect(AccessControl.CertificateIdentitySource(rawValue: "subjectAlternativeName") == .subjectAlternativeName)
    }

    @Test func accessControlDefaults() {
        let access = AccessControl(policy: .denyAll)
        #expect(access.certificateIdentity == .commonName)
        #expect(access.preauthenticationMaxPacketSize == 64 * 1024)
        #expect(access.authenticationTimeout == .seconds(10))
        #expect(access.failuresBeforeThrottling == 5)
    }
}
