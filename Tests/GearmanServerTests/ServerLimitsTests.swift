import GearmanProtocol
import NIOCore
import Testing

@testable import GearmanServer

/// Server-wide limits: connections in all, connections per address, bytes held by jobs.
@Suite struct ServerLimitsTests {
    static let queueFull = Res.error("QUEUE_ERROR", "Queue memory limit reached")

    static func refused(_ outbox: Outbox, _ id: ConnectionID, reason: String) {
        #expect(
            outbox.effects == [
                .send(Res.error("QUOTA_EXCEEDED", "Too many connections: \(reason)"), to: id), .close(id),
            ])
        #expect(outbox.auditNames == ["quota_exceeded"])
    }

    @Test func theConnectionLimitRefusesOneMoreAndAdmitsAgainOnceOneLeaves() {
        let h = Harness { $0.limits.maxConnections = 2 }
        let first = h.connect(peer: "10.0.0.1")
        _ = h.connect(peer: "10.0.0.2")
        let (third, outbox) = h.open(peer: "10.0.0.3")
        Self.refused(outbox, third, reason: "the server's connection limit (2) is reached")
        h.close(third)
        h.close(first)
        let (fourth, admitted) = h.open(peer: "10.0.0.3")
        #expect(admitted.effects.isEmpty)
        #expect(h.send(.echoRequest(payload: buf("x")), from: fourth).packets(to: fourth) == [.echoResponse(payload: buf("x"))])
    }

    @Test func limitsChangedLiveApplyToWhatComesNextOnly() throws {
        let h = Harness { $0.limits.maxConnections = 10 }
        let admin = h.connect(peer: "10.0.0.1")
        _ = h.connect(peer: "10.0.0.2")
        _ = h.connect(peer: "10.0.0.3")
        h.machine.limitsChanged(.init(maxConnections: 2, maxQueueBytes: 150, jobRetries: 3))
        h.machine.verboseLevelChanged("DEBUG")
        #expect(h.machine.connections.count == 3, "the connections already open stay")
        let (fourth, outbox) = h.open(peer: "10.0.0.4")
        Self.refused(outbox, fourth, reason: "the server's connection limit (2) is reached")
        _ = try h.submit(Pkt.submitBG("f", unique: "u1", String(repeating: "p", count: 100)), from: admin)
        let refused = h.send(Pkt.submitBG("f", unique: "u2", String(repeating: "p", count: 100)), from: admin)
        #expect(refused.effects == [.send(Self.queueFull, to: admin)])
        #expect(h.machine.configuration.jobRetries == 3)
        #expect(h.adminReply("verbose", from: admin) == "OK DEBUG\n")
    }

    @Test func limitsChangedUpdateTheAuthenticationSettingsOnlyWithAccessControl() throws {
        let plain = Harness()
        plain.machine.limitsChanged(.init(authenticationTimeout: .seconds(1), failuresBeforeThrottling: 2))
        #expect(plain.machine.access == nil)
        #expect(plain.machine.throttle.threshold == 5)

        let secured = try Harness.secured()
        secured.machine.limitsChanged(.init(authenticationTimeout: .seconds(1), failuresBeforeThrottling: 2))
        #expect(secured.machine.access?.authenticationTimeout == .seconds(1))
        #expect(secured.machine.access?.failuresBeforeThrottling == 2)
        #expect(secured.machine.throttle.threshold == 2)
    }

    @Test func theLimitPerAddressCountsEachAddressOnItsOwn() {
        let h = Harness { $0.limits.maxConnectionsPerAddress = 2 }
        let a1 = h.connect(peer: "10.0.0.1")
        _ = h.connect(peer: "10.0.0.1")
        let (a3, outbox) = h.open(peer: "10.0.0.1")
        Self.refused(outbox, a3, reason: "the connection limit per address (2) is reached")
        _ = h.connect(peer: "10.0.0.2")
        _ = h.connect(peer: "10.0.0.2")
        h.close(a3)
        h.close(a1)
        let (again, admitted) = h.open(peer: "10.0.0.1")
        #expect(admitted.effects.isEmpty, "\(again) admitted once one of that address's connections left")
        #expect(h.machine.connectionsPerAddress == ["10.0.0.1": 2, "10.0.0.2": 2])
    }

    @Test func theQueueByteLimitRefusesSubmissionsOverItAndFreesBytesWhenJobsEnd() throws {
        // 100-byte payloads with 2-byte uniques: 102 bytes a job, so two fit under 250 and three don't.
        let h = Harness { $0.limits.maxQueueBytes = 250 }
        let client = h.connect()
        let payload = String(repeating: "p", count: 100)
        let first = try h.submit(Pkt.submitBG("f", unique: "u1", payload), from: client)
        _ = try h.submit(Pkt.submit("f", unique: "u2", payload), from: client)
        #expect(h.machine.queuedBytes == 204)
        let refused = h.send(Pkt.submitBG("f", unique: "u3", payload), from: client)
        #expect(refused.effects == [.send(Self.queueFull, to: client)], "nothing persisted, nothing queued")
        #expect(h.machine.jobs.count == 2)
        // Joining a live job adds no bytes.
        #expect(try h.submit(Pkt.submitBG("f", unique: "u1", payload), from: h.connect()) == first)
        // A running job still holds its bytes; a finished one frees them.
        let worker = h.worker("f")
        #expect(try h.grabHandle(worker) == first)
        #expect(h.send(Pkt.submitBG("f", unique: "u3", payload), from: client).packets(to: client) == [Self.queueFull])
        h.send(Pkt.workComplete(first, "done"), from: worker)
        #expect(h.machine.queuedBytes == 102)
        _ = try h.submit(Pkt.submitBG("f", unique: "u3", payload), from: client)
    }

    @Test func aCancelledJobFreesItsBytes() throws {
        let h = Harness { $0.limits.maxQueueBytes = 1000 }
        let client = h.connect()
        let handle = try h.submit(Pkt.submitBG("f", unique: "u", "12345678"), from: client)
        #expect(h.machine.queuedBytes == 9)
        _ = h.admin("cancel job \(String(buffer: handle))", from: h.connect())
        #expect(h.machine.queuedBytes == 0)
    }
}
