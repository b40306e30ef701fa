import GearmanACL
import GearmanProtocol
import NIOCore
import Testing

@testable import GearmanServer

/// Per-tenant quotas: queued jobs, payload size and connections.
@Suite struct AccessQuotaTests {
    static let queueFull = Res.error("QUEUE_ERROR", "Tenant queue quota reached")

    // MARK: max_queued_jobs

    @Test func theTenantsQueueQuotaRefusesNewJobsButNotCoalescing() throws {
        let h = try Harness.secured(acme: .init(maxQueuedJobs: 2))
        let web = h.authenticated("acme-web")
        let first = try h.submit(Pkt.submit("acme.resize", unique: "u1", "a"), from: web)
        _ = try h.submit(Pkt.submitBG("acme.thumb", unique: "u2", "b"), from: web)  // another function, same tenant
        let refused = h.send(Pkt.submit("acme.resize", unique: "u3", "c"), from: web)
        #expect(refused.effects == [.send(Self.queueFull, to: web)])
        #expect(refused.auditNames == ["quota_exceeded"])
        #expect(refused.audit("quota_exceeded")?["reason"] == "max_queued_jobs 2")
        #expect(h.send(Pkt.submitBG("acme.resize", "d"), from: web).effects == [.send(Self.queueFull, to: web)])
        #expect(h.machine.jobs.count == 2)
        // Joining a live job is not a new job.
        let other = h.authenticated("acme-web")
        #expect(try h.submit(Pkt.submit("acme.resize", unique: "u1", "a"), from: other) == first)
        // Another tenant is unaffected.
        let globex = h.authenticated("globex-worker")
        for index in 0..<3 {
            _ = try h.submit(Pkt.submitBG("globex.render", unique: "g\(index)"), from: globex)
        }
    }

    @Test func aFinishedJobMakesRoomAgain() throws {
        let h = try Harness.secured(acme: .init(maxQueuedJobs: 2))
        let web = h.authenticated("acme-web")
        let worker = h.worker(as: "acme-worker", "acme.resize")
        let handle = try h.submit(Pkt.submit("acme.resize", unique: "u1"), from: web)
        _ = try h.submit(Pkt.submit("acme.resize", unique: "u2"), from: web)
        #expect(h.send(Pkt.submit("acme.resize", unique: "u3"), from: web).packets(to: web) == [Self.queueFull])
        // A running job still counts.
        #expect(try h.grabHandle(worker) == handle)
        #expect(h.send(Pkt.submit("acme.resize", unique: "u3"), from: web).packets(to: web) == [Self.queueFull])
        h.send(Pkt.workComplete(handle, "done"), from: worker)
        _ = try h.submit(Pkt.submit("acme.resize", unique: "u3"), from: web)
        #expect(h.send(Pkt.submit("acme.resize", unique: "u4"), from: web).packets(to: web) == [Self.queueFull])
    }

    @Test func cancelledAndAbandonedJobsMakeRoomAgain() throws {
        let h = try Harness.secured(acme: .init(maxQueuedJobs: 1))
        let admin = h.authenticated("acme-admin")
        let handle = try h.submit(Pkt.submitBG("acme.resize", unique: "u1"), from: admin)
        #expect(h.send(Pkt.submitBG("acme.resize", unique: "u2"), from: admin).packets(to: admin) == [Self.queueFull])
        #expect(h.adminReply("cancel job \(String(buffer: handle))", from: admin) == "OK\r\n")
        // A foreground job whose client leaves is dropped and frees its place too.
        let web = h.authenticated("acme-web")
        _ = try h.submit(Pkt.submit("acme.resize", unique: "u2"), from: web)
        #expect(h.send(Pkt.submit("acme.resize", unique: "u3"), from: admin).packets(to: admin) == [Self.queueFull])
        h.close(web)
        _ = try h.submit(Pkt.submit("acme.resize", unique: "u3"), from: admin)
    }

    @Test func theQueueQuotaCountsJobsWhoeverSubmitsThem() throws {
        let h = try Harness.secured(acme: .init(maxQueuedJobs: 1))
        let ops = h.authenticated("ops")  // global, may submit anywhere
        _ = try h.submit(Pkt.submitBG("acme.resize", unique: "u1"), from: ops)
        #expect(h.send(Pkt.submitBG("acme.resize", unique: "u2"), from: ops).packets(to: ops) == [Self.queueFull])
        _ = try h.submit(Pkt.submitBG("misc", unique: "u2"), from: ops)
    }

    // MARK: max_payload_bytes

    @Test func oversizedSubmissionIsRefused() throws {
        let h = try Harness.secured(acme: .init(maxPayloadBytes: 16))
        let web = h.authenticated("acme-web")
        _ = try h.submit(Pkt.submit("acme.resize", String(repeating: "x", count: 16)), from: web)
        let tooLarge = Res.error("ARGUMENT_TOO_LARGE", "Payload exceeds the tenant's limit of 16 bytes")
        for packet in [
            Pkt.submit("acme.resize", String(repeating: "x", count: 17)),
            Pkt.submitBG("acme.resize", String(repeating: "x", count: 17)),
            Pkt.submitEpoch("acme.resize", epoch: "1", String(repeating: "x", count: 17)),
            Pkt.submitReduce("acme.resize", reducer: "acme.sum", String(repeating: "x", count: 17)),
        ] {
            let outbox = h.send(packet, from: web)
            #expect(outbox.effects == [.send(tooLarge, to: web)])
            #expect(outbox.auditNames == ["quota_exceeded"])
        }
        #expect(h.machine.jobs.count == 1)
        // Another tenant's principals are not held to it.
        _ = try h.submit(Pkt.submit("globex.render", String(repeating: "x", count: 1000)), from: h.authenticated("globex-worker"))
    }

    @Test func oversizedWorkCompleteFailsTheJob() throws {
        let h = try Harness.secured(acme: .init(maxPayloadBytes: 16))
        let web = h.authenticated("acme-web")
        let worker = h.worker(as: "acme-worker", "acme.resize")
        let handle = try h.submit(Pkt.submit("acme.resize", "in"), from: web)
        _ = try h.grabHandle(worker)
        let outbox = h.send(Pkt.workComplete(handle, String(repeating: "r", count: 17)), from: worker)
        #expect(
            outbox.effects == [
                .send(Res.error("ARGUMENT_TOO_LARGE", "Payload exceeds the tenant's limit of 16 bytes"), to: worker),
                .send(.workFail(handle: handle), to: web),
            ])
        #expect(h.machine.jobs.isEmpty)
        #expect(h.send(Pkt.workComplete(handle, "late"), from: worker).effects == [.send(Res.jobNotFoundResult, to: worker)])
    }

    @Test func oversizedWorkExceptionFailsTheJobToo() throws {
        let h = try Harness.secured(acme: .init(maxPayloadBytes: 16))
        let web = h.authenticated("acme-web")
        h.send(Pkt.option("exceptions"), from: web)
        let worker = h.worker(as: "acme-worker", "acme.resize")
        let handle = try h.submit(Pkt.submit("acme.resize", "in"), from: web)
        _ = try h.grabHandle(worker)
        let outbox = h.send(Pkt.workException(handle, String(repeating: "e", count: 17)), from: worker)
        #expect(outbox.packets(to: web) == [.workFail(handle: handle)])
        #expect(outbox.packets(to: worker).count == 1)
    }

    @Test func oversizedWorkDataIsRefusedAndTheJobGoesOn() throws {
        let h = try Harness.secured(acme: .init(maxPayloadBytes: 16))
        let web = h.authenticated("acme-web")
        let worker = h.worker(as: "acme-worker", "acme.resize")
        let handle = try h.submit(Pkt.submit("acme.resize", "in"), from: web)
        _ = try h.grabHandle(worker)
        let tooLarge = Res.error("ARGUMENT_TOO_LARGE", "Payload exceeds the tenant's limit of 16 bytes")
        #expect(h.send(Pkt.workData(handle, String(repeating: "d", count: 17)), from: worker).effects == [.send(tooLarge, to: worker)])
        #expect(h.send(Pkt.workWarning(handle, String(repeating: "w", count: 17)), from: worker).effects == [.send(tooLarge, to: worker)])
        let small = Pkt.workData(handle, "ok")
        #expect(h.send(small, from: worker).effects == [.send(small, to: web)])
        let complete = Pkt.workComplete(handle, String(repeating: "r", count: 16))
        #expect(h.send(complete, from: worker).effects == [.send(complete, to: web)])
    }

    // MARK: max_connections

    @Test func theTenantsConnectionQuotaRefusesTheNextAuthentication() throws {
        let h = try Harness.secured(acme: .init(maxConnections: 1))
        let first = h.authenticated("acme-web")
        let quotaExceeded = Res.error("QUOTA_EXCEEDED", "Tenant connection limit of 1 reached")

        let second = h.connect()
        let outbox = h.send(Harness.authOption("acme-worker", AccessSecrets.acmeWorker), from: second)
        #expect(outbox.effects == [.send(quotaExceeded, to: second), .close(second)])
        #expect(outbox.auditNames == ["quota_exceeded"])
        #expect(outbox.audit("quota_exceeded")?["auth.principal"] == "acme-worker")
        #expect(h.machine.connections[second]?.principal == nil)
        h.close(second)

        // Every route is held to it, the certificate and the admin line included.
        let third = h.connect()
        #expect(h.send(Harness.authClientID("acme-web", AccessSecrets.acmeWeb), from: third).effects == [.send(quotaExceeded, to: third), .close(third)])
        let fourth = h.connect()
        #expect(h.identify(fourth, AccessFixture.certificate(commonNames: ["acme-cert"])).effects == [.send(quotaExceeded, to: fourth), .close(fourth)])
        let fifth = h.connect()
        #expect(
            h.admin("auth acme-reader \(AccessSecrets.acmeReader)", from: fifth).effects
                == [.text("ERR QUOTA_EXCEEDED Tenant+connection+limit+of+1+reached\r\n", to: fifth), .close(fifth)])
        h.close(third)
        h.close(fourth)
        h.close(fifth)

        // Another tenant and a global principal are not counted against it.
        _ = h.authenticated("globex-worker")
        _ = h.authenticated("ops")
        // Once the first leaves, a new connection may authenticate.
        h.close(first)
        _ = h.authenticated("acme-worker")
    }

    @Test func aRefusedOrReauthenticatingConnectionIsNotCountedTwice() throws {
        let h = try Harness.secured(acme: .init(maxConnections: 2))
        let first = h.authenticated("acme-web")
        // Repeating the token on the same connection does not take a second place.
        h.send(Harness.authOption("acme-web", AccessSecrets.acmeWeb), from: first)
        h.admin("auth acme-web \(AccessSecrets.acmeWeb)", from: first)
        _ = h.authenticated("acme-worker")
        let third = h.connect()
        #expect(h.send(Harness.authOption("acme-web", AccessSecrets.acmeWeb), from: third).effects.last == .close(third))
        h.close(third)
        h.close(first)
        _ = h.authenticated("acme-web")
    }

    @Test func aFailedAuthenticationOfAnAuthenticatedConnectionFreesItsPlaceWhenItCloses() throws {
        let h = try Harness.secured(acme: .init(maxConnections: 1))
        let first = h.authenticated("acme-web")
        #expect(h.send(Harness.authOption("acme-web", AccessSecrets.wrong), from: first).effects.last == .close(first))
        h.close(first)
        _ = h.authenticated("acme-web")
    }
}
