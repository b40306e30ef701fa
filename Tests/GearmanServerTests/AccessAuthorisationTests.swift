import GearmanACL
import GearmanProtocol
import NIOCore
import Testing

@testable import GearmanServer

/// Per-packet authorisation of authenticated connections.
@Suite struct AccessAuthorisationTests {
    // MARK: Registration

    @Test func deniedRegistrationIsSilentAndNotMade() throws {
        let h = try Harness.secured()
        let globex = h.authenticated("globex-worker")
        let outbox = h.send(Pkt.canDo("acme.resize"), from: globex)
        #expect(outbox.isEmpty)
        #expect(outbox.auditNames == ["permission_denied"])
        #expect(h.machine.connections[globex]?.abilities.isEmpty == true)
        // A job for it is never offered to that connection.
        #expect(h.send(.grabJob, from: globex).packets(to: globex) == [.noJob])
        #expect(h.send(.preSleep, from: globex).isEmpty)
        let submitted = h.send(Pkt.submit("acme.resize", "img"), from: h.authenticated("acme-web"))
        #expect(submitted.packets(to: globex).isEmpty)
        #expect(h.send(.grabJob, from: globex).packets(to: globex) == [.noJob])
    }

    @Test func aPrincipalWithoutCanDoRightsMayNotRegisterEvenInItsTenant() throws {
        let h = try Harness.secured()
        let web = h.authenticated("acme-web")  // may submit to acme.*, register nothing
        #expect(h.send(Pkt.canDo("acme.resize"), from: web).isEmpty)
        #expect(h.machine.connections[web]?.abilities.isEmpty == true)
        // A global principal with can_do "*" may register in any tenant's namespace.
        let ops = h.authenticated("ops")
        #expect(h.send(Pkt.canDo("acme.resize"), from: ops).isEmpty)
        #expect(h.machine.connections[ops]?.abilities.count == 1)
    }

    @Test func permissionErrorsOptionTurnsDenialsIntoErrors() throws {
        let h = try Harness.secured()
        let globex = h.authenticated("globex-worker")
        #expect(
            h.send(Pkt.option("permission-errors"), from: globex).effects
                == [.send(.optionResponse(name: buf("permission-errors")), to: globex)])
        for packet in [Pkt.canDo("acme.resize"), Pkt.canDoTimeout("acme.resize", "1000")] {
            let outbox = h.send(packet, from: globex)
            #expect(outbox.effects == [.send(AccessRes.registerDenied, to: globex)])
        }
        #expect(h.machine.connections[globex]?.abilities.isEmpty == true)
        // Allowed registrations are still silent.
        #expect(h.send(Pkt.canDo("globex.render"), from: globex).isEmpty)
        #expect(h.machine.connections[globex]?.abilities.count == 1)
    }

    @Test func permissionErrorsOptionIsCaseInsensitiveAndPerConnection() throws {
        let h = try Harness.secured()
        let a = h.authenticated("globex-worker")
        let b = h.authenticated("globex-worker")
        h.send(Pkt.option("Permission-Errors"), from: a)
        #expect(h.send(Pkt.canDo("acme.x"), from: a).effects == [.send(AccessRes.registerDenied, to: a)])
        #expect(h.send(Pkt.canDo("acme.x"), from: b).isEmpty)
    }

    @Test(arguments: [PacketType.canDo, .canDoTimeout])
    func registrationDenialAuditNamesWhoWhatAndWhereButNoSecret(packetType: PacketType) throws {
        let h = try Harness.secured()
        let globex = h.connect(peer: "203.0.113.4")
        h.send(Harness.authClientID("globex-worker", AccessSecrets.globexWorker), from: globex)
        let packet = packetType == .canDo ? Pkt.canDo("acme.resize") : Pkt.canDoTimeout("acme.resize", "2000")
        let outbox = h.send(packet, from: globex)
        let audit = try #require(outbox.audit("permission_denied"))
        #expect(audit["auth.principal"] == "globex-worker")
        #expect(audit["auth.tenant"] == "globex")
        #expect(audit["gearman.function"] == "acme.resize")
        #expect(audit["gearman.packet"] == packetType.protocolName)
        #expect(audit["peer.address"] == "203.0.113.4")
        #expect(audit["gearman.connection"] == "\(globex)")
        for secret in AccessSecrets.all {
            #expect(!audit.values.contains { $0.contains(secret) })
        }
    }

    // MARK: Submission

    static let submissions: [(String, GearmanPacket)] = [
        ("SUBMIT_JOB", Pkt.submit("acme.resize", unique: "u", "x")),
        ("SUBMIT_JOB_BG", Pkt.submitBG("acme.resize", unique: "u", "x")),
        ("SUBMIT_JOB_HIGH", Pkt.submit("acme.resize", unique: "u", "x", priority: .high)),
        ("SUBMIT_JOB_HIGH_BG", Pkt.submitBG("acme.resize", unique: "u", "x", priority: .high)),
        ("SUBMIT_JOB_LOW", Pkt.submit("acme.resize", unique: "u", "x", priority: .low)),
        ("SUBMIT_JOB_LOW_BG", Pkt.submitBG("acme.resize", unique: "u", "x", priority: .low)),
        ("SUBMIT_JOB_EPOCH", Pkt.submitEpoch("acme.resize", unique: "u", epoch: "1700000100", "x")),
        ("SUBMIT_REDUCE_JOB", Pkt.submitReduce("acme.resize", unique: "u", reducer: "acme.sum", "x")),
        ("SUBMIT_REDUCE_JOB_BACKGROUND", Pkt.submitReduce("acme.resize", unique: "u", reducer: "acme.sum", "x", background: true)),
    ]

    @Test(arguments: submissions)
    func everySubmitVariantIsDeniedOutsideTheGrant(label: String, packet: GearmanPacket) throws {
        let h = try Harness.secured()
        // A registered acme worker, so a queued job would show and wake it.
        let worker = h.worker(as: "acme-worker", "acme.resize")
        h.send(.grabJob, from: worker)
        h.send(.preSleep, from: worker)
        let globex = h.authenticated("globex-worker")
        let outbox = h.send(packet, from: globex)
        #expect(outbox.effects == [.send(AccessRes.submitDenied, to: globex)], "\(label)")
        let audit = try #require(outbox.audit("permission_denied"))
        #expect(audit["gearman.packet"] == label)
        #expect(audit["gearman.function"] == "acme.resize")
        #expect(audit["auth.tenant"] == "globex")
        #expect(h.machine.jobs.isEmpty)
        #expect(h.adminReply("status", from: h.authenticated("auditor")) == "acme.resize\t0\t0\t1\n.\n")
        // The same packet from a principal granted the function is accepted.
        let web = h.authenticated("acme-web")
        let accepted = h.send(packet, from: web)
        guard case .jobCreated = accepted.packets(to: web).first else {
            Issue.record("\(label) was not accepted from acme-web: \(accepted.effects)")
            return
        }
    }

    @Test func aTenantPrincipalCannotSubmitToAFunctionNoTenantOwns() throws {
        let h = try Harness.secured()
        let web = h.authenticated("acme-web")
        #expect(h.send(Pkt.submit("misc"), from: web).effects == [.send(AccessRes.submitDenied, to: web)])
        #expect(h.send(Pkt.submit("acmex.y"), from: web).effects == [.send(AccessRes.submitDenied, to: web)])
        // A principal without submit rights may submit nothing, even in its tenant.
        let reader = h.authenticated("acme-reader")
        #expect(h.send(Pkt.submit("acme.x"), from: reader).effects == [.send(AccessRes.submitDenied, to: reader)])
    }

    // MARK: Work results

    @Test func onlyTheAssignedWorkerMaySendResults() throws {
        let h = try Harness.secured()
        let worker = h.worker(as: "acme-worker", "acme.resize")
        let sameTenant = h.worker(as: "acme-worker", "acme.resize")
        let ops = h.worker(as: "ops", "acme.resize")
        let web = h.authenticated("acme-web")
        let handle = try h.submit(Pkt.submit("acme.resize", "img"), from: web)
        #expect(try h.grabHandle(worker) == handle)

        for intruder in [sameTenant, ops] {
            #expect(h.send(Pkt.workComplete(handle, "forged"), from: intruder).effects == [.send(Res.jobNotFoundResult, to: intruder)])
            #expect(h.send(.workFail(handle: handle), from: intruder).effects == [.send(Res.jobNotFoundResult, to: intruder)])
            #expect(h.send(Pkt.workData(handle, "forged"), from: intruder).effects == [.send(Res.jobNotFoundData, to: intruder)])
            #expect(h.send(Pkt.workWarning(handle, "forged"), from: intruder).effects == [.send(Res.jobNotFoundData, to: intruder)])
            #expect(h.send(Pkt.workStatus(handle, "1", "2"), from: intruder).effects == [.send(Res.jobNotFoundResult, to: intruder)])
            #expect(
                h.send(Pkt.workException(handle, "forged"), from: intruder).effects
                    == [.send(Res.jobNotFoundException, to: intruder)])
        }
        // The real worker's result still reaches the client.
        let complete = Pkt.workComplete(handle, "real")
        #expect(h.send(complete, from: worker).effects == [.send(complete, to: web)])
    }

    // MARK: Status queries

    @Test func getStatusOfAnotherTenantsJobIsUnknown() throws {
        let h = try Harness.secured()
        let globex = h.authenticated("globex-worker")
        let handle = try h.submit(Pkt.submitBG("globex.render", unique: "g1", "x"), from: globex)
        let unknown = Res.status(handle, known: false, running: false, "0", "0")
        let known = Res.status(handle, known: true, running: false, "0", "0")
        let web = h.authenticated("acme-web")
        #expect(h.send(Pkt.getStatus(handle), from: web).effects == [.send(unknown, to: web)])
        #expect(h.send(Pkt.getStatus(handle), from: globex).effects == [.send(known, to: globex)])
        // A global principal that may submit anywhere sees it; one that may not (admin only) doesn't.
        let ops = h.authenticated("ops")
        #expect(h.send(Pkt.getStatus(handle), from: ops).effects == [.send(known, to: ops)])
        let auditor = h.authenticated("auditor")
        #expect(h.send(Pkt.getStatus(handle), from: auditor).effects == [.send(unknown, to: auditor)])
        // Same answer as for a handle that does not exist at all.
        let missing = buf("H:gearlock:999")
        #expect(h.send(Pkt.getStatus(missing), from: web).packets(to: web) == [Res.status(missing, known: false, running: false, "0", "0")])
    }

    @Test func getStatusUniqueOfAnotherTenantsJobIsUnknown() throws {
        let h = try Harness.secured()
        let globex = h.authenticated("globex-worker")
        let globexWorker = h.worker(as: "globex-worker", "globex.render")
        _ = try h.submit(Pkt.submit("globex.render", unique: "shared", "x"), from: globex)
        _ = try h.grabHandle(globexWorker)
        func reply(known: Bool, running: Bool, clients: String) -> GearmanPacket {
            .statusResponseUnique(
                unique: buf("shared"), known: known, running: running, numerator: buf("0"), denominator: buf("0"),
                clients: buf(clients))
        }
        let web = h.authenticated("acme-web")
        #expect(h.send(Pkt.getStatusUnique("shared"), from: web).effects == [.send(reply(known: false, running: false, clients: "0"), to: web)])
        #expect(
            h.send(Pkt.getStatusUnique("shared"), from: globex).effects
                == [.send(reply(known: true, running: true, clients: "1"), to: globex)])
    }

    @Test func getStatusUniqueFindsTheCallersOwnJobWhenAnotherTenantUsesTheSameUnique() throws {
        let h = try Harness.secured()
        let globex = h.authenticated("globex-worker")
        _ = try h.submit(Pkt.submitBG("globex.render", unique: "shared", "x"), from: globex)
        let web = h.authenticated("acme-web")
        _ = try h.submit(Pkt.submit("acme.resize", unique: "shared", "y"), from: web)
        let acmeWorker = h.worker(as: "acme-worker", "acme.resize")
        _ = try h.grabHandle(acmeWorker)
        h.send(Pkt.workStatus(try #require(h.machine.jobs.values.first { $0.function == buf("acme.resize") }?.handle), "3", "4"), from: acmeWorker)
        #expect(
            h.send(Pkt.getStatusUnique("shared"), from: web).packets(to: web) == [
                .statusResponseUnique(
                    unique: buf("shared"), known: true, running: true, numerator: buf("3"), denominator: buf("4"),
                    clients: buf("1"))
            ])
    }
}
