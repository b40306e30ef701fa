import GearmanACL
import GearmanProtocol
import NIOCore
import Testing

@testable import GearmanServer

/// Shared-secret authentication over its three routes: OPTION_REQ, SET_CLIENT_ID and the admin line.
@Suite struct AccessAuthenticationTests {
    // MARK: OPTION_REQ

    @Test func optionRequestTokenAuthenticatesAndAnswersWithThePrincipalOnly() throws {
        let h = try Harness.secured()
        let id = h.connect()
        let outbox = h.send(Harness.authOption("acme-web", AccessSecrets.acmeWeb), from: id)
        #expect(outbox.effects == [.liftPacketLimit(id), .send(.optionResponse(name: buf("auth:acme-web")), to: id)])
        guard case .optionResponse(let name) = outbox.packets(to: id).first else {
            Issue.record("no OPTION_RES")
            return
        }
        #expect(!String(buffer: name).contains(AccessSecrets.acmeWeb))
        #expect(outbox.auditNames == ["authenticated"])
        let audit = try #require(outbox.audit("authenticated"))
        #expect(audit["auth.principal"] == "acme-web")
        #expect(audit["auth.tenant"] == "acme")
        #expect(audit["gearman.packet"] == "OPTION_REQ")
        // It now acts as the principal: it may submit to its tenant's functions.
        _ = try h.submit(Pkt.submit("acme.resize", "img"), from: id)
        #expect(h.machine.connections[id]?.principal?.name == "acme-web")
    }

    @Test func secretHoldingAColonAuthenticates() throws {
        let h = try Harness.secured()
        let id = h.authenticated("colon")
        #expect(h.machine.connections[id]?.principal?.name == "colon")
    }

    static let badTokens: [(String, String)] = [
        ("wrong secret", "auth:acme-web:\(AccessSecrets.wrong)"),
        ("another principal's secret", "auth:acme-web:\(AccessSecrets.acmeReader)"),
        ("unknown principal", "auth:nobody:\(AccessSecrets.acmeWeb)"),
        ("no secret", "auth:acme-web"),
        ("empty secret", "auth:acme-web:"),
        ("empty principal", "auth::\(AccessSecrets.acmeWeb)"),
        ("secret prefix", "auth:colon:co:lon"),
        ("certificate principal without its certificate", "auth:acme-cert:anything"),
    ]

    @Test(arguments: badTokens)
    func badOptionRequestTokenIsRefusedAndClosed(label: String, token: String) throws {
        let h = try Harness.secured()
        let id = h.connect()
        let outbox = h.send(.optionRequest(name: buf(token)), from: id)
        #expect(outbox.effects == [.send(AccessRes.authFailed, to: id), .close(id)], "\(label)")
        #expect(outbox.auditNames == ["authentication_failed"], "\(label)")
        let audit = try #require(outbox.audit("authentication_failed"))
        #expect(audit["gearman.packet"] == "OPTION_REQ")
        #expect(audit["auth.tenant"] == "-")
        #expect(h.machine.connections[id]?.principal == nil)
    }

    @Test(arguments: badTokens)
    func badSetClientIDTokenIsRefusedAndClosed(label: String, token: String) throws {
        let h = try Harness.secured()
        let id = h.connect()
        let outbox = h.send(.setClientID(id: buf(token)), from: id)
        #expect(outbox.effects == [.send(AccessRes.authFailed, to: id), .close(id)], "\(label)")
        #expect(outbox.auditNames == ["authentication_failed"], "\(label)")
        #expect(h.machine.connections[id]?.principal == nil)
        #expect(h.machine.connections[id]?.clientID == nil)
    }

    @Test func failureAuditNamesTheClaimedPrincipalAndReasonButNotTheSecret() throws {
        let h = try Harness.secured()
        let id = h.connect(peer: "192.0.2.7")
        let outbox = h.send(Harness.authOption("acme-web", AccessSecrets.wrong), from: id)
        let audit = try #require(outbox.audit("authentication_failed"))
        #expect(audit["auth.principal"] == "acme-web (claimed)")
        #expect(audit["peer.address"] == "192.0.2.7")
        #expect(audit["reason"] == "wrong secret")
        #expect(!audit.values.contains { $0.contains(AccessSecrets.wrong) })
        let unknown = h.send(Harness.authOption("nobody", AccessSecrets.wrong), from: h.connect())
        #expect(unknown.audit("authentication_failed")?["reason"] == "unknown principal")
    }

    @Test func malformedTokenIsRefusedWithoutLoggingWhatFollowed() throws {
        let h = try Harness.secured()
        for packet in [
            GearmanPacket.optionRequest(name: buf("auth:pasted-alone")), .setClientID(id: buf("auth:pasted-alone")),
        ] {
            let id = h.connect()
            let outbox = h.send(packet, from: id)
            #expect(outbox.effects == [.send(AccessRes.authFailed, to: id), .close(id)])
            let audit = try #require(outbox.audit("authentication_failed"))
            #expect(audit["auth.principal"] == "anonymous")
            #expect(audit["reason"]?.hasPrefix("malformed token") == true)
            #expect(!audit.values.contains { $0.contains("pasted-alone") })
        }
    }

    @Test func anUnknownClaimedNameIsLoggedOnlyByItsLength() throws {
        let h = try Harness.secured()
        let id = h.connect()
        let outbox = h.send(Harness.authOption("nobody", AccessSecrets.acmeWeb), from: id)
        let audit = try #require(outbox.audit("authentication_failed"))
        #expect(audit["auth.principal"] == "<unknown name of 6 bytes> (claimed)")
        #expect(!audit.values.contains { $0.contains("nobody") })
    }

    @Test func theWireDoesNotTellUnknownPrincipalFromWrongSecret() throws {
        let h = try Harness.secured()
        let a = h.connect()
        let b = h.connect()
        let wrongSecret = h.send(Harness.authOption("acme-web", AccessSecrets.wrong), from: a).packets(to: a)
        let unknown = h.send(Harness.authOption("nobody", AccessSecrets.wrong), from: b).packets(to: b)
        #expect(wrongSecret == unknown)
        #expect(wrongSecret == [AccessRes.authFailed])
    }

    @Test func aSecondTokenNamingAnotherPrincipalFails() throws {
        let h = try Harness.secured()
        let id = h.authenticated("acme-web")
        let outbox = h.send(Harness.authOption("acme-reader", AccessSecrets.acmeReader), from: id)
        #expect(outbox.effects == [.send(AccessRes.authFailed, to: id), .close(id)])
        #expect(outbox.audit("authentication_failed")?["reason"]?.contains("already authenticated as acme-web") == true)
        // The connection was not switched to the other principal.
        #expect(h.machine.connections[id]?.principal?.name == "acme-web")
        // Nor over SET_CLIENT_ID or the admin line.
        let second = h.authenticated("acme-web")
        #expect(
            h.send(Harness.authClientID("ops", AccessSecrets.ops), from: second).effects
                == [.send(AccessRes.authFailed, to: second), .close(second)])
        let third = h.authenticated("acme-web")
        #expect(h.admin("auth ops \(AccessSecrets.ops)", from: third).effects
            == [.text(AccessRes.adminAuthFailed, to: third), .close(third)])
        #expect(h.machine.connections[third]?.principal?.name == "acme-web")
    }

    @Test func repeatingTheSameTokenIsAnsweredAgainWithoutASecondLift() throws {
        let h = try Harness.secured()
        let id = h.authenticated("acme-web")
        let again = h.send(Harness.authOption("acme-web", AccessSecrets.acmeWeb), from: id)
        #expect(again.effects == [.send(.optionResponse(name: buf("auth:acme-web")), to: id)])
        // The same principal with a wrong secret is still a failure.
        #expect(
            h.send(Harness.authOption("acme-web", AccessSecrets.wrong), from: id).effects
                == [.send(AccessRes.authFailed, to: id), .close(id)])
    }

    // MARK: SET_CLIENT_ID

    @Test func setClientIDTokenAuthenticatesSilentlyAndWorkersShowsThePrincipal() throws {
        let h = try Harness.secured()
        let id = h.connect()
        let outbox = h.send(Harness.authClientID("acme-worker", AccessSecrets.acmeWorker), from: id)
        #expect(outbox.effects == [.liftPacketLimit(id)])
        #expect(outbox.auditNames == ["authenticated"])
        #expect(outbox.audit("authenticated")?["gearman.packet"] == "SET_CLIENT_ID")
        #expect(h.machine.connections[id]?.principal?.name == "acme-worker")
        #expect(h.machine.connections[id]?.clientID == nil)
        #expect(h.send(Pkt.canDo("acme.resize"), from: id).isEmpty)

        let auditor = h.authenticated("auditor")
        let workers = h.adminReply("workers", from: auditor)
        #expect(workers.contains("\(id) 127.0.0.1 acme-worker : acme.resize\n"))
        #expect(!workers.contains(AccessSecrets.acmeWorker))
        #expect(!workers.contains("auth:"))
    }

    @Test func aPlainClientIDAfterAuthenticationShowsBesideThePrincipal() throws {
        let h = try Harness.secured()
        let id = h.authenticated("acme-web")
        #expect(h.send(.setClientID(id: buf("web-7")), from: id).isEmpty)
        let auditor = h.authenticated("auditor")
        #expect(h.listedName(of: id, seenBy: auditor) == "acme-web/web-7")
        // An earlier plain client id is replaced by the token, which leaves only the principal.
        let other = h.connect()
        h.send(.setClientID(id: buf("before")), from: other)
        h.send(Harness.authClientID("acme-worker", AccessSecrets.acmeWorker), from: other)
        #expect(h.listedName(of: other, seenBy: auditor) == "acme-worker")
    }

    // MARK: Admin line

    @Test func adminAuthLineAnswersOK() throws {
        let h = try Harness.secured()
        let id = h.connect()
        let outbox = h.admin("auth auditor \(AccessSecrets.auditor)", from: id)
        #expect(outbox.effects == [.liftPacketLimit(id), .text("OK\r\n", to: id)])
        #expect(outbox.auditNames == ["authenticated"])
        #expect(outbox.audit("authenticated")?["gearman.packet"] == "admin auth")
        // Now it may read.
        #expect(h.adminReply("status", from: id) == ".\n")
    }

    @Test(arguments: [
        "auth auditor \(AccessSecrets.wrong)", "auth nobody \(AccessSecrets.auditor)",
        "AUTH auditor \(AccessSecrets.acmeWeb)",
    ])
    func badAdminAuthLineIsRefusedAndClosed(line: String) throws {
        let h = try Harness.secured()
        let id = h.connect()
        let outbox = h.admin(line, from: id)
        #expect(outbox.effects == [.text(AccessRes.adminAuthFailed, to: id), .close(id)])
        #expect(outbox.auditNames == ["authentication_failed"])
        #expect(outbox.audit("authentication_failed")?["gearman.packet"] == "admin auth")
        #expect(h.machine.connections[id]?.principal == nil)
    }

    @Test func adminAuthLineWithTheWrongArityIsAnInvalidCommandNotAnAttempt() throws {
        let h = try Harness.secured()
        let id = h.connect()
        let outbox = h.admin("auth auditor", from: id)
        #expect(
            outbox.effects == [
                .text("ERR INVALID_ARGUMENTS An+incomplete+set+of+arguments+was+sent+to+this+command+auth\r\n", to: id)
            ])
        #expect(h.machine.connections[id]?.principal == nil)
        let extra = h.admin("auth auditor \(AccessSecrets.auditor) more", from: id)
        #expect(!extra.text(to: id).contains(AccessSecrets.auditor))
        #expect(h.machine.connections[id]?.principal == nil)
    }

    // MARK: Without an ACL

    @Test func withoutAnACLTheOptionTokenIsAnUnknownOption() {
        let h = Harness()
        let id = h.connect()
        let outbox = h.send(Harness.authOption("acme-web", AccessSecrets.acmeWeb), from: id)
        #expect(outbox.effects == [.send(Res.error("UNKNOWN_OPTION", "Authentication is not enabled on this server"), to: id)])
        #expect(outbox.auditNames.isEmpty)
    }

    @Test func withoutAnACLTheClientIDTokenKeepsOnlyThePrincipalName() {
        let h = Harness()
        let id = h.connect()
        #expect(h.send(Harness.authClientID("acme-web", AccessSecrets.acmeWeb), from: id).isEmpty)
        #expect(h.machine.connections[id]?.clientID == buf("acme-web"))
        let workers = h.adminReply("workers", from: id)
        #expect(workers == "\(id) 127.0.0.1 acme-web :\n.\n")
        #expect(!workers.contains(AccessSecrets.acmeWeb))
        // A secret holding `:` is not split into the client id either.
        h.send(Harness.authClientID("colon", AccessSecrets.colon), from: id)
        #expect(h.machine.connections[id]?.clientID == buf("colon"))
    }

    /// Any other SET_CLIENT_ID is cut to 127 bytes; the name taken from a token should be too.
    @Test func withoutAnACLALongTokenNameIsTruncatedLikeAnyClientID() {
        let h = Harness()
        let id = h.connect()
        h.send(Harness.authClientID(String(repeating: "p", count: 200), "s"), from: id)
        #expect(h.machine.connections[id]?.clientID != nil)
        #expect(h.machine.connections[id]?.clientID == buf(String(repeating: "p", count: Machine.maxClientIDLength)))
    }

    @Test func withoutAnACLAMalformedTokenIsNeitherAnOptionNorAClientID() {
        let h = Harness()
        let id = h.connect()
        #expect(
            h.send(Pkt.option("auth:pasted-alone"), from: id).effects
                == [.send(Res.error("UNKNOWN_OPTION", "Authentication is not enabled on this server"), to: id)])
        h.send(.setClientID(id: buf("before")), from: id)
        #expect(h.send(.setClientID(id: buf("auth:pasted-alone")), from: id).isEmpty)
        #expect(h.machine.connections[id]?.clientID == buf("before"))
    }

    @Test func withoutAnACLTheAdminAuthLineIsUnknownAndTheConnectionStays() {
        let h = Harness()
        let id = h.connect()
        let outbox = h.admin("auth acme-web \(AccessSecrets.acmeWeb)", from: id)
        #expect(outbox.effects == [.text("ERR UNKNOWN_COMMAND Authentication+is+not+enabled\r\n", to: id)])
        #expect(h.adminReply("status", from: id) == ".\n")
    }

    @Test func withoutAnACLOrdinaryOptionsAndClientIDsAreUntouched() {
        let h = Harness()
        let id = h.connect()
        #expect(h.send(Pkt.option("exceptions"), from: id).effects == [.send(.optionResponse(name: buf("exceptions")), to: id)])
        #expect(h.send(.setClientID(id: buf("author:x")), from: id).isEmpty)
        #expect(h.machine.connections[id]?.clientID == buf("author:x"))
    }
}
