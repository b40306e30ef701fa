import GearmanACL
import Testing

@Suite("Authentication")
struct AuthenticationTests {
    func failure(_ result: AuthenticationResult, sourceLocation: SourceLocation = #_sourceLocation) -> AuthenticationFailure? {
        switch result {
        case .authenticated(let principal):
            Issue.record("unexpectedly authenticated as \(principal.name)", sourceLocation: sourceLocation)
            return nil
        case .failed(let failure):
            return failure
        }
    }

    @Test("secret-only principal: right secret, wrong secret, unknown principal")
    func secretOnly() throws {
        let policy = try loadSketch()
        let ok = policy.authenticate(principal: "acme-web", secret: Secrets.web, certificateIdentity: nil)
        #expect(ok.principal?.name == "acme-web")

        let wrong = try #require(failure(policy.authenticate(principal: "acme-web", secret: "nope", certificateIdentity: nil)))
        let unknown = try #require(failure(policy.authenticate(principal: "nobody", secret: Secrets.web, certificateIdentity: nil)))
        // Same shape for both: a failure with the claimed name and a reason for the audit log.
        #expect(wrong.reason == .wrongSecret && wrong.claimedPrincipal == "acme-web")
        #expect(unknown.reason == .unknownPrincipal && unknown.claimedPrincipal == "nobody")

        // A name without any factor.
        #expect(failure(policy.authenticate(principal: "acme-web", secret: nil, certificateIdentity: nil))?.reason == .secretRequired)
        // A secret for a principal that has none configured.
        #expect(failure(policy.authenticate(principal: "ops", secret: "x", certificateIdentity: "ops-admin"))?.reason == .wrongSecret)
    }

    @Test("certificate-only principal")
    func certificateOnly() throws {
        let policy = try loadSketch()
        #expect(policy.authenticate(principal: nil, secret: nil, certificateIdentity: "ops-admin").principal?.name == "ops")
        #expect(policy.authenticate(principal: "ops", secret: nil, certificateIdentity: "ops-admin").principal?.name == "ops")
        #expect(failure(policy.authenticate(principal: nil, secret: nil, certificateIdentity: "stranger"))?.reason == .unknownCertificate)
        #expect(failure(policy.authenticate(principal: "ops", secret: nil, certificateIdentity: nil))?.reason == .certificateRequired)
        #expect(failure(policy.authenticate(principal: nil, secret: nil, certificateIdentity: nil))?.reason == .noCredentials)
    }

    @Test("require both certificate and secret")
    func requireBoth() throws {
        let policy = try loadSketch()
        let both = policy.authenticate(principal: "acme-resizer-1", secret: Secrets.resizer, certificateIdentity: "acme-resizer-1")
        #expect(both.principal?.name == "acme-resizer-1")
        #expect(failure(policy.authenticate(principal: "acme-resizer-1", secret: Secrets.resizer, certificateIdentity: nil))?.reason == .certificateRequired)
        #expect(failure(policy.authenticate(principal: nil, secret: nil, certificateIdentity: "acme-resizer-1"))?.reason == .secretRequired)
        #expect(failure(policy.authenticate(principal: "acme-resizer-1", secret: "wrong", certificateIdentity: "acme-resizer-1"))?.reason == .wrongSecret)
        // The certificate of a principal that does not exist in the ACL is simply not a factor.
        #expect(failure(policy.authenticate(principal: "acme-resizer-1", secret: Secrets.resizer, certificateIdentity: "unknown-cn"))?.reason == .certificateRequired)
    }

    @Test("either factor by default; a certificate of another principal conflicts")
    func eitherByDefault() throws {
        let policy = try AccessPolicy(yaml: """
            principals:
              w:
                certificate: w-cert
                secret: "\(Secrets.webHash)"
              other:
                certificate: other-cert
            """)
        #expect(policy.authenticate(principal: "w", secret: Secrets.web, certificateIdentity: nil).principal?.name == "w")
        #expect(policy.authenticate(principal: nil, secret: nil, certificateIdentity: "w-cert").principal?.name == "w")
        #expect(policy.authenticate(principal: "w", secret: Secrets.web, certificateIdentity: "unlisted").principal?.name == "w")
        #expect(failure(policy.authenticate(principal: "w", secret: Secrets.web, certificateIdentity: "other-cert"))?.reason == .certificateMismatch)
        // A wrong secret fails even when the certificate alone would do.
        #expect(failure(policy.authenticate(principal: "w", secret: "bad", certificateIdentity: "w-cert"))?.reason == .wrongSecret)
    }

    @Test("the secret appears in no failure description")
    func secretNeverShown() throws {
        let policy = try loadSketch()
        let secrets = ["S3cr3t-Value-1", Secrets.web, Secrets.resizer]
        let principals: [String?] = ["acme-web", "acme-resizer-1", "ops", "nobody", nil]
        let certificates: [String?] = [nil, "acme-resizer-1", "ops-admin", "stranger"]
        for secret in secrets {
            for principal in principals {
                for certificate in certificates {
                    let result = policy.authenticate(principal: principal, secret: secret, certificateIdentity: certificate)
                    guard case .failed(let failure) = result else { continue }
                    #expect(!failure.description.contains(secret))
                    #expect(!"\(failure.reason)".contains(secret))
                    #expect(!String(reflecting: failure).contains(secret))
                }
            }
        }
    }
}
