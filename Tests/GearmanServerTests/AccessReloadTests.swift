import GearmanACL
import GearmanProtocol
import NIOCore
import OrderedCollections
import Testing

@testable import GearmanServer

/// A live ACL reload re-checks every connection.
@Suite struct AccessReloadTests {
    /// acme-worker may only register acme.thumb.* after the reload.
    static func narrowed(acme quotas: AccessFixture.Quotas = .init()) throws -> AccessPolicy {
        let hash = AccessSecrets.hashes[AccessSecrets.acmeWorker]!
        return try AccessFixture.policy(
            acme: quotas,
            overrides: ["acme-worker": ["tenant: acme", "secret: \"\(hash)\"", "can_do: [\"acme.thumb.*\"]", "submit: [\"acme.*\"]"]])
    }

    @Test func aRegistrationNoLongerAllowedIsWithdrawnAndItsRunningJobRequeued() throws {
        let h = try Harness.secured()
        let worker = h.worker(as: "acme-worker", "acme.resize", "acme.thumb.small")
        let web = h.authenticated("acme-web")
        let running = try h.submit(Pkt.submit("acme.resize", unique: "r", "img"), from: web)
        #expect(try h.grabHandle(worker) == running)

        let outbox = h.reload(try Self.narrowed())
        #expect(outbox.auditNames == ["registration_withdrawn"])
        let audit = try #require(outbox.audit("registration_withdrawn"))
        #expect(audit["gearman.function"] == "acme.resize")
        #expect(audit["auth.principal"] == "acme-worker")
        #expect(outbox.effects.allSatisfy { if case .close = $0 { false } else { true } })
        #expect(h.machine.connections[worker]?.abilities.map { String(buffer: $0.function) } == ["acme.thumb.small"])

        // The running job went back to the queue, one retry counted.
        let job = try #require(h.machine.job(withHandle: running))
        #expect(job.state == .queued)
        #expect(job.retries == 1)
        #expect(h.send(Pkt.workComplete(running, "late"), from: worker).effects == [.send(Res.jobNotFoundResult, to: worker)])

        // Neither it nor a new job for the function reaches that worker.
        _ = try h.submit(Pkt.submit("acme.resize", unique: "n", "img"), from: web)
        #expect(h.send(.grabJob, from: worker).packets(to: worker) == [.noJob])
        let auditor = h.authenticated("auditor")
        #expect(h.listedFunctions(of: worker, seenBy: auditor) == ["acme.thumb.small"])
        #expect(h.adminReply("status", from: auditor).contains("acme.resize\t2\t0\t0\n"))
        // A new CAN_DO for it is now denied too.
        #expect(h.send(Pkt.canDo("acme.resize"), from: worker).isEmpty)
        #expect(h.machine.connections[worker]?.abilities.count == 1)
        // An allowed worker picks the requeued job up first.
        let ops = h.worker(as: "ops", "acme.resize")
        #expect(try h.grabHandle(ops) == running)
    }

    @Test func aSleepingWorkerLosesItsWithdrawnRegistration() throws {
        let h = try Harness.secured()
        let worker = h.worker(as: "acme-worker", "acme.resize")
        h.send(.grabJob, from: worker)
        h.send(.preSleep, from: worker)
        h.reload(try Self.narrowed())
        let submitted = h.send(Pkt.submit("acme.resize", "img"), from: h.authenticated("acme-web"))
        #expect(submitted.packets(to: worker).isEmpty)  // no NOOP
    }

    @Test func aRemovedPrincipalsConnectionIsClosedAndItsJobsRequeued() throws {
        let h = try Harness.secured()
        let worker = h.worker(as: "acme-worker", "acme.resize")
        let web = h.authenticated("acme-web")
        let handle = try h.submit(Pkt.submit("acme.resize", "img"), from: web)
        _ = try h.grabHandle(worker)

        let outbox = h.reload(try AccessFixture.policy(remove: ["acme-worker"]))
        #expect(
            outbox.effects == [
                .send(Res.error("AUTH_FAILED", "Principal no longer allowed"), to: worker), .close(worker),
            ])
        #expect(outbox.auditNames == ["principal_removed"])
        #expect(h.machine.connections[worker]?.principal == nil)
        #expect(h.machine.connections[worker]?.abilities.isEmpty == true)
        #expect(h.machine.job(withHandle: handle)?.state == .queued)
        h.close(worker)
        // Its name no longer authenticates.
        let again = h.connect()
        #expect(
            h.send(Harness.authOption("acme-worker", AccessSecrets.acmeWorker), from: again).effects
                == [.send(AccessRes.authFailed, to: again), .close(again)])
    }

    @Test func aPrincipalRequiringItsCertificateIsClosedWhenTheCertificateChanges() throws {
        let h = try Harness.secured()
        let id = h.connect()
        h.identify(id, AccessFixture.certificate(commonNames: ["dual-cert"]))
        h.send(Harness.authOption("dual", AccessSecrets.dual), from: id)
        #expect(h.machine.connections[id]?.principal?.name == "dual")
        let hash = AccessSecrets.hashes[AccessSecrets.dual]!
        let policy = try AccessFixture.policy(overrides: [
            "dual": ["tenant: acme", "certificate: dual-cert-2", "secret: \"\(hash)\"", "require: [certificate, secret]"]
        ])
        let outbox = h.reload(policy)
        #expect(outbox.effects == [.send(Res.error("AUTH_FAILED", "Principal no longer allowed"), to: id), .close(id)])
        #expect(outbox.auditNames == ["principal_removed"])
    }

    /// A connection that authenticated by its certificate alone has no credential left once the
    /// ACL gives the principal another certificate identity (or the identity to someone else).
    @Test func aPrincipalAuthenticatedByACertificateItNoLongerHasIsClosed() throws {
        let h = try Harness.secured()
        let id = h.connect()
        h.identify(id, AccessFixture.certificate(commonNames: ["acme-cert"]))
        #expect(h.machine.connections[id]?.principal?.name == "acme-cert")
        #expect(h.send(Pkt.canDo("acme.resize"), from: id).isEmpty)
        let policy = try AccessFixture.policy(
            overrides: ["acme-cert": ["tenant: acme", "certificate: acme-cert-2", "can_do: [\"acme.*\"]"]])
        let outbox = h.reload(policy)
        #expect(outbox.effects == [.send(Res.error("AUTH_FAILED", "Principal no longer allowed"), to: id), .close(id)])
        #expect(outbox.auditNames == ["principal_removed"])
        // A new connection with the old certificate is refused (not in the ACL any more)...
        let fresh = h.connect()
        #expect(h.identify(fresh, AccessFixture.certificate(commonNames: ["acme-cert"])).isEmpty)
        #expect(h.machine.connections[fresh]?.principal == nil)
        // ...and so is the old connection: it no longer acts as acme-cert nor keeps its registration.
        #expect(h.machine.connections[id]?.principal == nil)
        #expect(h.machine.connections[id]?.abilities.isEmpty == true)
    }

    /// Rotating a secret in the ACL ends the connections that proved themselves with the old one.
    @Test func aRotatedSecretClosesConnectionsThatUsedTheOldOne() throws {
        let h = try Harness.secured()
        let web = h.authenticated("acme-web")
        let worker = h.worker(as: "acme-worker", "acme.resize")
        let rotated = "sha256:1579b9b71e2c8a7f27f01831f59155210f8d9e53d00defbc7ed3e2197fdf7874"  // of wrong-s3cret
        let outbox = h.reload(try AccessFixture.policy(overrides: [
            "acme-web": ["tenant: acme", "secret: \"\(rotated)\"", "submit: [\"acme.*\"]"]
        ]))
        #expect(outbox.effects == [.send(Res.error("AUTH_FAILED", "Principal no longer allowed"), to: web), .close(web)])
        #expect(h.machine.connections[worker]?.principal?.name == "acme-worker")
        h.close(web)
        // The new secret works, the old one no longer does.
        let fresh = h.connect()
        #expect(h.send(Harness.authOption("acme-web", AccessSecrets.wrong), from: fresh).effects.count == 2)
        #expect(h.machine.connections[fresh]?.principal?.name == "acme-web")
        let stale = h.connect()
        #expect(h.send(Harness.authOption("acme-web", AccessSecrets.acmeWeb), from: stale).effects.last == .close(stale))
    }

    /// A connection is re-checked against the factors it used: changing a factor it did not use
    /// leaves it alone.
    @Test func changingAFactorAConnectionDidNotUseLeavesItAlone() throws {
        let h = try Harness.secured()
        let byCertificate = h.connect()
        h.identify(byCertificate, AccessFixture.certificate(commonNames: ["globex-cert"]))
        let bySecret = h.authenticated("globex-admin")
        #expect(h.machine.connections[byCertificate]?.principal?.name == "globex-admin")

        // New secret: only the connection that used the secret goes.
        let rotatedSecret = "sha256:1579b9b71e2c8a7f27f01831f59155210f8d9e53d00defbc7ed3e2197fdf7874"
        let first = h.reload(try AccessFixture.policy(overrides: [
            "globex-admin": ["tenant: globex", "certificate: globex-cert", "secret: \"\(rotatedSecret)\"", "admin: write"]
        ]))
        #expect(first.effects.filter { if case .close = $0 { true } else { false } } == [.close(bySecret)])
        h.close(bySecret)

        // A second connection by secret, then a new certificate identity: only the certificate one goes.
        let bySecretAgain = h.connect()
        h.send(Harness.authOption("globex-admin", AccessSecrets.wrong), from: bySecretAgain)
        #expect(h.machine.connections[bySecretAgain]?.principal?.name == "globex-admin")
        let second = h.reload(try AccessFixture.policy(overrides: [
            "globex-admin": ["tenant: globex", "certificate: globex-cert-2", "secret: \"\(rotatedSecret)\"", "admin: write"]
        ]))
        #expect(second.effects.filter { if case .close = $0 { true } else { false } } == [.close(byCertificate)])
        #expect(h.machine.connections[bySecretAgain]?.principal?.name == "globex-admin")
    }

    /// A principal that comes to require a factor a connection never presented loses that connection.
    @Test func aNewlyRequiredFactorClosesConnectionsWithoutIt() throws {
        let h = try Harness.secured()
        let web = h.authenticated("acme-web")
        let dual = h.connect()
        h.identify(dual, AccessFixture.certificate(commonNames: ["dual-cert"]))
        h.send(Harness.authOption("dual", AccessSecrets.dual), from: dual)
        let hash = AccessSecrets.hashes[AccessSecrets.acmeWeb]!
        let outbox = h.reload(try AccessFixture.policy(overrides: [
            "acme-web": ["tenant: acme", "certificate: web-cert", "secret: \"\(hash)\"", "require: [certificate, secret]",
                         "submit: [\"acme.*\"]"]
        ]))
        #expect(outbox.effects == [.send(Res.error("AUTH_FAILED", "Principal no longer allowed"), to: web), .close(web)])
        #expect(h.machine.connections[dual]?.principal?.name == "dual")
    }

    @Test func unchangedConnectionsAreLeftAlone() throws {
        let h = try Harness.secured()
        let worker = h.worker(as: "acme-worker", "acme.resize")
        let web = h.authenticated("acme-web")
        let anonymous = h.connect()
        let outbox = h.reload(try AccessFixture.policy())
        #expect(outbox.isEmpty)
        #expect(outbox.auditNames.isEmpty)
        #expect(h.machine.connections[worker]?.abilities.count == 1)
        #expect(h.machine.connections[web]?.principal?.name == "acme-web")
        #expect(h.machine.connections[anonymous]?.principal == nil)
    }

    @Test func grantingAnonymousRightsLiftsTheCapOfWaitingConnections() throws {
        let h = try Harness.secured()
        let anonymous = h.connect()
        let web = h.authenticated("acme-web")
        let outbox = h.reload(try AccessFixture.policy(anonymous: "{submit: [\"pub.*\"]}"))
        #expect(outbox.effects == [.liftPacketLimit(anonymous)])
        _ = web
        h.clock.advance(seconds: 11)
        #expect(h.fireTimer().isEmpty)
        _ = try h.submit(Pkt.submit("pub.x"), from: anonymous)
    }

    @Test func withdrawingAnonymousRightsWithdrawsAnonymousRegistrations() throws {
        let h = try Harness.secured(anonymous: "{can_do: [\"pub.*\"], submit: [\"pub.*\"]}")
        let anonymous = h.connect()
        #expect(h.send(Pkt.canDo("pub.x"), from: anonymous).isEmpty)
        #expect(h.machine.connections[anonymous]?.abilities.count == 1)
        let outbox = h.reload(try AccessFixture.policy())
        #expect(outbox.auditNames == ["registration_withdrawn"])
        #expect(h.machine.connections[anonymous]?.abilities.isEmpty == true)
        #expect(h.send(Pkt.submit("pub.x"), from: anonymous).effects == [.send(AccessRes.submitDenied, to: anonymous)])
    }

    /// After a reload takes anonymous rights away, a connection that never authenticated is held to
    /// the pre-authentication rules again, deadline included (DESIGN.md: "Before authentication a
    /// connection … must authenticate within a deadline").
    @Test func withdrawingAnonymousRightsRestartsTheAuthenticationDeadline() throws {
        let h = try Harness.secured(anonymous: "{submit: [\"pub.*\"]}")
        let anonymous = h.connect()
        h.reload(try AccessFixture.policy())
        h.clock.advance(seconds: 11)
        let outbox = h.fireTimer()
        #expect(outbox.effects == [.send(Res.error("AUTH_FAILED", "Authentication deadline passed"), to: anonymous), .close(anonymous)])
    }

    @Test func tenantCountsAreRecomputedAndQuotasStillHold() throws {
        let quotas = AccessFixture.Quotas(maxQueuedJobs: 2, maxConnections: 2)
        let h = try Harness.secured(acme: quotas)
        let worker = h.worker(as: "acme-worker", "acme.resize")
        let web = h.authenticated("acme-web")
        let running = try h.submit(Pkt.submit("acme.resize", unique: "u1"), from: web)
        _ = try h.grabHandle(worker)
        _ = try h.submit(Pkt.submitBG("acme.thumb", unique: "u2"), from: web)

        h.reload(try Self.narrowed(acme: quotas))
        #expect(h.machine.tenantJobCounts["acme"] == 2)
        #expect(h.machine.tenantConnectionCounts["acme"] == 2)
        // Still two queued jobs (one requeued) and two connections: both quotas still bite.
        #expect(h.send(Pkt.submit("acme.resize", unique: "u3"), from: web).packets(to: web) == [AccessQuotaTests.queueFull])
        let third = h.connect()
        #expect(h.send(Harness.authOption("acme-reader", AccessSecrets.acmeReader), from: third).effects.last == .close(third))
        h.close(third)
        // And they free up as before.
        h.close(worker)
        _ = h.authenticated("acme-reader")
        #expect(h.machine.job(withHandle: running) != nil)
    }

    @Test func aReloadWithTighterQuotasAppliesToTheNextJob() throws {
        let h = try Harness.secured()
        let web = h.authenticated("acme-web")
        for index in 0..<3 {
            _ = try h.submit(Pkt.submitBG("acme.resize", unique: "u\(index)"), from: web)
        }
        h.reload(try AccessFixture.policy(acme: .init(maxQueuedJobs: 3, maxPayloadBytes: 4)))
        #expect(h.send(Pkt.submitBG("acme.resize", unique: "u9"), from: web).packets(to: web) == [AccessQuotaTests.queueFull])
        #expect(
            h.send(Pkt.submitBG("acme.resize", unique: "u0", "12345"), from: web).packets(to: web)
                == [Res.error("ARGUMENT_TOO_LARGE", "Payload exceeds the tenant's limit of 4 bytes")])
    }

    @Test func functionsChangeTenantWithTheNamespace() throws {
        let h = try Harness.secured()
        let ops = h.authenticated("ops")
        _ = try h.submit(Pkt.submitBG("misc.job", unique: "m"), from: ops)
        #expect(h.machine.functions[buf("misc.job")]?.tenant == nil)
        let yaml = AccessFixture.yaml().replacing("functions: [\"globex.*\"]", with: "functions: [\"globex.*\", \"misc.*\"]")
        h.reload(try AccessPolicy(yaml: yaml))
        #expect(h.machine.functions[buf("misc.job")]?.tenant == "globex")
        #expect(h.machine.tenantJobCounts["globex"] == 1)
        let globexAdmin = h.authenticated("globex-admin")
        #expect(h.adminReply("status", from: globexAdmin) == "misc.job\t1\t0\t0\n.\n")
    }

    @Test func reloadWithoutAnACLDoesNothing() throws {
        let h = Harness()
        let worker = h.worker("acme.resize")
        #expect(h.reload(try AccessFixture.policy()).isEmpty)
        #expect(h.machine.access == nil)
        #expect(h.machine.connections[worker]?.abilities.count == 1)
    }
}
