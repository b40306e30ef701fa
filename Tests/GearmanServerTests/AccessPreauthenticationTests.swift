import GearmanACL
import GearmanProtocol
import NIOCore
import Testing

@testable import GearmanServer

/// What a connection may do before it authenticates: with no anonymous rights, only authenticate
/// and ECHO, within a deadline and a packet-size cap.
@Suite struct AccessPreauthenticationTests {
    @Test func connectingWithoutAnonymousRightsKeepsThePacketCap() throws {
        let h = try Harness.secured()
        h.machine.connectionOpened(ConnectionID(1000), peerAddress: "127.0.0.1")
        #expect(Outbox(actions: h.machine.takeActions()).isEmpty)
        #expect(h.machine.nextTimerDeadline == h.clock.monotonicNanoseconds + 10_000_000_000)
    }

    @Test func submissionBeforeAuthenticationIsDeniedAndNothingIsQueued() throws {
        let h = try Harness.secured()
        let id = h.connect()
        for packet in [Pkt.submit("acme.resize", unique: "u", "x"), Pkt.submitBG("acme.resize", "x"), Pkt.submitBG("pub.x")] {
            let outbox = h.send(packet, from: id)
            #expect(outbox.effects == [.send(AccessRes.submitDenied, to: id)])
            #expect(outbox.auditNames == ["permission_denied"])
            #expect(outbox.audit("permission_denied")?["auth.principal"] == "anonymous")
        }
        #expect(h.machine.jobs.isEmpty)
        let ops = h.authenticated("ops")
        #expect(h.adminReply("status", from: ops) == ".\n")
        #expect(h.adminReply("show jobs", from: ops) == ".\n")
    }

    @Test func registrationBeforeAuthenticationIsSilentAndNotMade() throws {
        let h = try Harness.secured()
        let anonymous = h.connect()
        #expect(h.send(Pkt.canDo("acme.resize"), from: anonymous).isEmpty)
        #expect(h.send(Pkt.canDoTimeout("acme.resize", "5000"), from: anonymous).isEmpty)
        #expect(h.send(.grabJob, from: anonymous).packets(to: anonymous) == [.noJob])
        #expect(h.send(.preSleep, from: anonymous).isEmpty)

        // An authorised client's job neither wakes nor reaches it.
        let web = h.authenticated("acme-web")
        let submitted = h.send(Pkt.submit("acme.resize", "img"), from: web)
        #expect(submitted.packets(to: anonymous).isEmpty)
        #expect(h.send(.grabJob, from: anonymous).packets(to: anonymous) == [.noJob])
        let ops = h.authenticated("ops")
        #expect(h.adminReply("status", from: ops) == "acme.resize\t1\t0\t0\n.\n")
        #expect(h.listedFunctions(of: anonymous, seenBy: ops) == [])
    }

    @Test func echoWorksBeforeAuthentication() throws {
        let h = try Harness.secured()
        let id = h.connect()
        #expect(h.send(.echoRequest(payload: buf("ping")), from: id).effects == [.send(.echoResponse(payload: buf("ping")), to: id)])
    }

    @Test func statusQueriesBeforeAuthenticationSeeNothing() throws {
        let h = try Harness.secured()
        let web = h.authenticated("acme-web")
        let handle = try h.submit(Pkt.submit("acme.resize", unique: "u1", "img"), from: web)
        let anonymous = h.connect()
        #expect(h.send(Pkt.getStatus(handle), from: anonymous).packets(to: anonymous) == [Res.status(handle, known: false, running: false, "0", "0")])
        #expect(
            h.send(Pkt.getStatusUnique("u1"), from: anonymous).packets(to: anonymous) == [
                .statusResponseUnique(
                    unique: buf("u1"), known: false, running: false, numerator: buf("0"), denominator: buf("0"),
                    clients: buf("0"))
            ])
    }

    @Test func adminCommandsBeforeAuthenticationAreDenied() throws {
        let h = try Harness.secured()
        let id = h.connect()
        for line in ["status", "workers", "version", "show jobs", "shutdown"] {
            #expect(h.admin(line, from: id).effects == [.text(AccessRes.adminDenied, to: id)], "\(line)")
        }
    }

    // MARK: Deadline

    @Test func connectionsThatDoNotAuthenticateInTimeAreClosed() throws {
        let h = try Harness.secured()
        let slow = h.connect()
        let quick = h.connect()
        h.send(Harness.authOption("acme-web", AccessSecrets.acmeWeb), from: quick)
        h.clock.advance(milliseconds: 9_999)
        #expect(h.fireTimer().isEmpty)
        h.clock.advance(milliseconds: 1)
        let outbox = h.fireTimer()
        #expect(
            outbox.effects == [
                .send(Res.error("AUTH_FAILED", "Authentication deadline passed"), to: slow), .close(slow),
            ])
        #expect(outbox.auditNames == ["authentication_failed"])
        h.close(slow)
        h.clock.advance(seconds: 60)
        #expect(h.fireTimer().isEmpty)
    }

    @Test func theDeadlineFollowsTheConfiguredTimeout() throws {
        let h = try Harness.secured(authenticationTimeout: .seconds(2))
        let id = h.connect()
        #expect(h.machine.nextTimerDeadline == h.clock.monotonicNanoseconds + 2_000_000_000)
        h.clock.advance(seconds: 2)
        #expect(h.fireTimer().effects.contains(.close(id)))
    }

    @Test func aConnectionAuthenticatedByCertificateIsNotClosedAtTheDeadline() throws {
        let h = try Harness.secured()
        let id = h.connect()
        h.identify(id, AccessFixture.certificate(commonNames: ["acme-cert"]))
        h.clock.advance(seconds: 11)
        #expect(h.fireTimer().isEmpty)
    }

    @Test func aHalfAuthenticatedConnectionIsClosedAtTheDeadline() throws {
        let h = try Harness.secured()
        let id = h.connect()
        h.identify(id, AccessFixture.certificate(commonNames: ["dual-cert"]))
        h.clock.advance(seconds: 11)
        #expect(h.fireTimer().effects == [.send(Res.error("AUTH_FAILED", "Authentication deadline passed"), to: id), .close(id)])
    }

    // MARK: Packet cap

    @Test func oversizedPacketBeforeAuthenticationClosesTheConnection() throws {
        let h = try Harness.secured()
        let id = h.connect()
        let outbox = h.preauthenticationLimitReached(id, declaredSize: 70_000)
        #expect(outbox.effects.count == 2)
        guard case .send(.error(let code, _), let target) = outbox.effects.first else {
            Issue.record("expected an ERROR, got \(outbox.effects)")
            return
        }
        #expect(target == id)
        #expect(code == buf("ARGUMENT_TOO_LARGE"))
        #expect(outbox.effects.last == .close(id))
        #expect(outbox.auditNames == ["permission_denied"])
    }

    @Test func oversizedPacketAfterAuthenticationOnlyLiftsTheCap() throws {
        let h = try Harness.secured()
        let id = h.authenticated("acme-web")
        #expect(h.preauthenticationLimitReached(id, declaredSize: 70_000).effects == [.liftPacketLimit(id)])
    }

    @Test func oversizedPacketOnAnUnknownConnectionDoesNothing() throws {
        let h = try Harness.secured()
        #expect(h.preauthenticationLimitReached(ConnectionID(999), declaredSize: 70_000).isEmpty)
    }

    // MARK: Anonymous rights

    @Test func withAnonymousRightsConnectionsAreNotCappedNorTimed() throws {
        let h = try Harness.secured(anonymous: "{submit: [\"pub.*\"]}")
        let id = ConnectionID(1000)
        h.machine.connectionOpened(id, peerAddress: "127.0.0.1")
        #expect(Outbox(actions: h.machine.takeActions()).effects == [.liftPacketLimit(id)])
        h.clock.advance(seconds: 60)
        #expect(h.fireTimer().isEmpty)
        #expect(h.machine.connections[id] != nil)
        #expect(h.preauthenticationLimitReached(id, declaredSize: 70_000).effects == [.liftPacketLimit(id)])
    }

    @Test func anonymousMaySubmitOnlyWhatItIsGranted() throws {
        let h = try Harness.secured(anonymous: "{submit: [\"pub.*\"]}")
        let id = h.connect()
        _ = try h.submit(Pkt.submit("pub.x", "p"), from: id)
        _ = try h.submit(Pkt.submitBG("pub.y"), from: id)
        #expect(h.send(Pkt.submit("acme.x", "p"), from: id).effects == [.send(AccessRes.submitDenied, to: id)])
        #expect(h.send(Pkt.submit("pubx", "p"), from: id).effects == [.send(AccessRes.submitDenied, to: id)])
        // Submitting is all it may do: no registration, no admin.
        #expect(h.send(Pkt.canDo("pub.x"), from: id).isEmpty)
        #expect(h.machine.connections[id]?.abilities.isEmpty == true)
        #expect(h.adminReply("status", from: id) == AccessRes.adminDenied)
    }

    @Test func anonymousAdminReadSeesOnlyWhatNoTenantOwns() throws {
        let h = try Harness.secured(anonymous: "{submit: [\"pub.*\"], admin: read}")
        let anonymous = h.connect()
        _ = try h.submit(Pkt.submitBG("pub.x"), from: anonymous)
        _ = try h.submit(Pkt.submitBG("acme.x"), from: h.authenticated("acme-web"))
        #expect(h.adminReply("status", from: anonymous) == "pub.x\t1\t0\t0\n.\n")
        #expect(h.adminReply("show unique jobs", from: anonymous) == "\n.\n")
        #expect(h.admin("cancel job H:x:1", from: anonymous).text(to: anonymous) == AccessRes.adminDenied)
        #expect(h.admin("shutdown", from: anonymous).text(to: anonymous) == AccessRes.adminDenied)
    }
}
