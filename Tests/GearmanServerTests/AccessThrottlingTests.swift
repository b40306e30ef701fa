import GearmanACL
import GearmanProtocol
import NIOCore
import Testing

@testable import GearmanServer

/// Repeated authentication failures from one address throttle that address, and only it.
@Suite struct AccessThrottlingTests {
    private static let attacker = "198.51.100.9"
    private static let bystander = "198.51.100.10"

    /// `count` failed attempts from `peer`, each on its own connection, which the server closes.
    private func fail(_ h: Harness, times count: Int, from peer: String) {
        for _ in 0..<count {
            let id = h.connect(peer: peer)
            let outbox = h.send(Harness.authOption("acme-web", AccessSecrets.wrong), from: id)
            #expect(outbox.effects == [.send(AccessRes.authFailed, to: id), .close(id)])
            h.close(id)
        }
    }

    /// One attempt with the right secret from `peer`; whether it authenticated.
    private func tryCorrect(_ h: Harness, from peer: String, route: Int = 0) -> Bool {
        let id = h.connect(peer: peer)
        let outbox: Outbox
        switch route {
        case 0: outbox = h.send(Harness.authOption("acme-web", AccessSecrets.acmeWeb), from: id)
        case 1: outbox = h.send(Harness.authClientID("acme-web", AccessSecrets.acmeWeb), from: id)
        default: outbox = h.admin("auth acme-web \(AccessSecrets.acmeWeb)", from: id)
        }
        let authenticated = h.machine.connections[id]?.principal != nil
        if !authenticated {
            #expect(outbox.effects.last == .close(id))
            #expect(outbox.effects.count == 2)
        }
        h.close(id)
        return authenticated
    }

    @Test func belowTheThresholdTheRightSecretStillWorks() throws {
        let h = try Harness.secured(failuresBeforeThrottling: 3)
        fail(h, times: 2, from: Self.attacker)
        #expect(tryCorrect(h, from: Self.attacker))
    }

    @Test func pastTheThresholdEvenTheRightSecretIsRefusedFromThatAddressOnly() throws {
        let h = try Harness.secured(failuresBeforeThrottling: 3)
        fail(h, times: 3, from: Self.attacker)
        for route in 0..<3 {
            #expect(!tryCorrect(h, from: Self.attacker, route: route), "route \(route)")
        }
        // The refusal looks exactly like any other failure.
        let id = h.connect(peer: Self.attacker)
        let outbox = h.send(Harness.authOption("acme-web", AccessSecrets.acmeWeb), from: id)
        #expect(outbox.effects == [.send(AccessRes.authFailed, to: id), .close(id)])
        #expect(outbox.audit("authentication_failed")?["reason"]?.contains("throttled") == true)
        // Another address is not affected.
        #expect(tryCorrect(h, from: Self.bystander))
    }

    /// A CA-verified certificate can't be guessed: it is neither refused from a throttled address
    /// nor does it clear the address's record.
    @Test func certificateAuthenticationIsNotThrottled() throws {
        let h = try Harness.secured(failuresBeforeThrottling: 2)
        fail(h, times: 2, from: Self.attacker)
        let id = h.connect(peer: Self.attacker)
        #expect(h.identify(id, AccessFixture.certificate(commonNames: ["acme-cert"])).effects == [.liftPacketLimit(id)])
        #expect(h.machine.connections[id]?.principal?.name == "acme-cert")
        #expect(!tryCorrect(h, from: Self.attacker))
    }

    /// A CA-verified certificate with an ambiguous identity is refused, but it is no guess either:
    /// it should not count towards throttling the address.
    @Test func ambiguousCertificatesDoNotThrottleTheAddress() throws {
        let h = try Harness.secured(failuresBeforeThrottling: 2)
        for _ in 0..<2 {
            let id = h.connect(peer: Self.attacker)
            let outbox = h.identify(id, AccessFixture.certificate(commonNames: ["acme-cert", "dual-cert"]))
            #expect(outbox.effects == [.send(AccessRes.authFailed, to: id), .close(id)])
            h.close(id)
        }
        #expect(tryCorrect(h, from: Self.attacker))
    }

    /// The secret half of a two-factor login is guessable, so it is throttled like any secret.
    @Test func theSecretOfATwoFactorPrincipalIsThrottled() throws {
        let h = try Harness.secured(failuresBeforeThrottling: 2)
        fail(h, times: 2, from: Self.attacker)
        let id = h.connect(peer: Self.attacker)
        #expect(h.identify(id, AccessFixture.certificate(commonNames: ["dual-cert"])).isEmpty)
        #expect(
            h.send(Harness.authOption("dual", AccessSecrets.dual), from: id).effects
                == [.send(AccessRes.authFailed, to: id), .close(id)])
    }

    @Test func theBackOffEndsAndThenDoubles() throws {
        let h = try Harness.secured(failuresBeforeThrottling: 3)
        fail(h, times: 3, from: Self.attacker)  // throttled for 1 s
        h.clock.advance(milliseconds: 900)
        #expect(!tryCorrect(h, from: Self.attacker))
        h.clock.advance(milliseconds: 101)
        // The back-off ran out: one more failure throttles again, now for 2 s.
        fail(h, times: 1, from: Self.attacker)
        h.clock.advance(milliseconds: 1500)
        #expect(!tryCorrect(h, from: Self.attacker))
        h.clock.advance(milliseconds: 501)
        #expect(tryCorrect(h, from: Self.attacker))
    }

    @Test func aSuccessClearsTheAddressRecord() throws {
        let h = try Harness.secured(failuresBeforeThrottling: 3)
        fail(h, times: 3, from: Self.attacker)
        h.clock.advance(seconds: 2)
        #expect(tryCorrect(h, from: Self.attacker))
        // Counting starts again from nothing: two failures don't throttle.
        fail(h, times: 2, from: Self.attacker)
        #expect(tryCorrect(h, from: Self.attacker))
    }

    @Test func refusalsWhileThrottledDoNotExtendTheBackOff() throws {
        let h = try Harness.secured(failuresBeforeThrottling: 3)
        fail(h, times: 3, from: Self.attacker)  // 1 s
        for _ in 0..<5 {
            let id = h.connect(peer: Self.attacker)
            h.send(Harness.authOption("acme-web", AccessSecrets.wrong), from: id)
            h.close(id)
        }
        h.clock.advance(milliseconds: 1001)
        #expect(tryCorrect(h, from: Self.attacker))
    }
}
