import GearmanACL
import GearmanProtocol
import GearmanQueue
import Logging
import NIOCore
import Testing

@testable import GearmanServer

/// No secret presented to the server, right or wrong, comes out of it again: not in a packet, an
/// admin reply, a log message or a log metadata value.
@Suite struct AccessSecretLeakTests {
    /// Every fixture secret ends in this, and nothing else the server says contains it.
    static let marker = "s3cret"

    /// Collects every outbox of a scenario.
    private final class Recorder {
        let h: Harness
        var outboxes: [Outbox] = []

        init(_ h: Harness) { self.h = h }

        @discardableResult
        func send(_ packet: GearmanPacket, from id: ConnectionID) -> Outbox { record(h.send(packet, from: id)) }
        @discardableResult
        func admin(_ line: String, from id: ConnectionID) -> Outbox { record(h.admin(line, from: id)) }
        @discardableResult
        func identify(_ id: ConnectionID, _ names: [String]) -> Outbox {
            record(h.identify(id, AccessFixture.certificate(commonNames: names)))
        }
        func connect(peer: String = "127.0.0.1") -> ConnectionID {
            let id = ConnectionID(UInt64(10_000 + outboxes.count))
            h.machine.connectionOpened(id, peerAddress: peer)
            record(Outbox(actions: h.machine.takeActions()))
            return id
        }
        func close(_ id: ConnectionID) { record(h.close(id)) }
        func fireTimer() { record(h.fireTimer()) }
        func reload(_ policy: AccessPolicy) { record(h.reload(policy)) }

        @discardableResult
        func record(_ outbox: Outbox) -> Outbox {
            outboxes.append(outbox)
            return outbox
        }

        var actions: [JobServerAction] { outboxes.flatMap(\.actions) }
    }

    /// Every text an action carries to the outside world.
    static func texts(of action: JobServerAction) -> [String] {
        func bytes(_ buffer: ByteBuffer) -> String { String(decoding: buffer.readableBytesView, as: UTF8.self) }
        switch action {
        case .send(let packet, _):
            return [bytes(GearmanPacketEncoder.encode(packet, magic: .response)), "\(packet)"]
        case .sendText(let text, _):
            return [text]
        case .persist(let job):
            return [job.handle, job.function, job.unique, job.payload].map(bytes) + (job.reducer.map { [bytes($0)] } ?? [])
        case .unpersist(let handle):
            return [bytes(handle)]
        case .log(_, let message, let metadata):
            return ["\(message)"] + metadata.flatMap { ["\($0.key)", "\($0.value)"] }
        case .close, .shutdown, .liftPacketLimit:
            return []
        }
    }

    private func expectNoSecret(in actions: [JobServerAction], sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(!actions.isEmpty, sourceLocation: sourceLocation)
        var logs = 0
        for action in actions {
            if case .log = action { logs += 1 }
            for text in Self.texts(of: action) {
                for secret in AccessSecrets.all + [Self.marker] where text.contains(secret) {
                    Issue.record("\"\(secret)\" leaked in \(text)", sourceLocation: sourceLocation)
                }
            }
        }
        // The scenario did log: the check above looked at something.
        #expect(logs > 5, sourceLocation: sourceLocation)
    }

    @Test func noSecretLeavesTheServerWithAnACL() throws {
        let h = try Harness.secured(acme: .init(maxConnections: 4), failuresBeforeThrottling: 3)
        let r = Recorder(h)

        // Successes over the three routes, the certificate and the two-factor principal.
        let web = r.connect()
        r.send(Harness.authOption("acme-web", AccessSecrets.acmeWeb), from: web)
        let worker = r.connect()
        r.send(Harness.authClientID("acme-worker", AccessSecrets.acmeWorker), from: worker)
        r.send(Pkt.canDo("acme.resize"), from: worker)
        let auditor = r.connect()
        r.admin("auth auditor \(AccessSecrets.auditor)", from: auditor)
        let colon = r.connect()
        r.admin("auth colon \(AccessSecrets.colon)", from: colon)
        let dual = r.connect()
        r.identify(dual, ["dual-cert"])
        r.send(Harness.authOption("dual", AccessSecrets.dual), from: dual)
        let ops = r.connect()
        r.send(Harness.authClientID("ops", AccessSecrets.ops), from: ops)

        // Repeats, and attempts to switch principal with a real secret.
        r.send(Harness.authOption("acme-web", AccessSecrets.acmeWeb), from: web)
        r.admin("auth auditor \(AccessSecrets.auditor)", from: auditor)
        r.send(Harness.authOption("globex-admin", AccessSecrets.globexAdmin), from: web)

        // Failures with real and wrong secrets, over every route.
        let failures: [(ConnectionID) -> Void] = [
            { r.send(Harness.authOption("acme-reader", AccessSecrets.acmeWeb), from: $0) },
            { r.send(Harness.authOption("nobody", AccessSecrets.globexWorker), from: $0) },
            { r.send(Harness.authClientID("acme-reader", AccessSecrets.wrong), from: $0) },
            { r.send(Harness.authClientID("dual", AccessSecrets.dual), from: $0) },
            { r.admin("auth acme-admin \(AccessSecrets.acmeReader)", from: $0) },
            { r.admin("auth colon co:lon:\(Self.marker)x", from: $0) },
            { r.admin("auth acme-admin \(AccessSecrets.acmeAdmin) extra", from: $0) },
            { r.send(.optionRequest(name: buf("auth:acme-reader")), from: $0) },
        ]
        for (index, attempt) in failures.enumerated() {
            let id = r.connect(peer: "192.0.2.\(index)")
            attempt(id)
            r.close(id)
        }
        // A certificate of another principal with a valid token.
        let mismatch = r.connect()
        r.identify(mismatch, ["dual-cert"])
        r.send(Harness.authOption("acme-web", AccessSecrets.acmeWeb), from: mismatch)
        r.close(mismatch)

        // Throttled: the correct secret, refused unchecked.
        for _ in 0..<3 {
            let id = r.connect(peer: "198.51.100.1")
            r.send(Harness.authOption("acme-admin", AccessSecrets.wrong), from: id)
            r.close(id)
        }
        for route in 0..<3 {
            let id = r.connect(peer: "198.51.100.1")
            switch route {
            case 0: r.send(Harness.authOption("acme-admin", AccessSecrets.acmeAdmin), from: id)
            case 1: r.send(Harness.authClientID("acme-admin", AccessSecrets.acmeAdmin), from: id)
            default: r.admin("auth acme-admin \(AccessSecrets.acmeAdmin)", from: id)
            }
            r.close(id)
        }

        // Over the tenant's connection quota (acme has web, worker, colon, dual).
        let over = r.connect()
        r.send(Harness.authOption("acme-reader", AccessSecrets.acmeReader), from: over)
        r.close(over)

        // Work and admin output.
        r.send(Pkt.submit("acme.resize", unique: "u", "img"), from: web)
        r.send(.grabJob, from: worker)
        r.admin("workers", from: auditor)
        r.admin("status", from: auditor)
        r.admin("show jobs", from: auditor)
        r.admin("show unique jobs", from: auditor)
        r.admin("workers", from: ops)

        // The deadline, a reload that removes a principal, an oversized pre-auth packet.
        let slow = r.connect()
        h.clock.advance(seconds: 11)
        r.fireTimer()
        r.close(slow)
        let capped = r.connect()
        r.record(h.preauthenticationLimitReached(capped, declaredSize: 1 << 20))
        r.reload(try AccessFixture.policy(remove: ["acme-worker"]))

        #expect(h.machine.connections[worker]?.principal == nil)  // the scenario got this far
        expectNoSecret(in: r.actions)
        for connection in h.machine.connections.values {
            let clientID = connection.clientID.map { String(buffer: $0) } ?? ""
            #expect(!clientID.contains(Self.marker))
        }
    }

    /// A client that leaves out its principal name (`auth:<secret>`) presents its secret where the
    /// name goes. The server can't tell a secret from a name, so a name no principal has is not
    /// logged as given.
    @Test func aSecretSentInThePrincipalsPlaceIsNotLogged() throws {
        let h = try Harness.secured()
        let r = Recorder(h)
        for packet in [
            GearmanPacket.optionRequest(name: buf("auth:\(AccessSecrets.acmeReader)")),
            .setClientID(id: buf("auth:\(AccessSecrets.acmeReader)")),
        ] {
            let id = r.connect()
            let outbox = r.send(packet, from: id)
            // The wire is clean: a bare AUTH_FAILED.
            #expect(outbox.effects == [.send(AccessRes.authFailed, to: id), .close(id)])
        }
        let id = r.connect()
        r.admin("auth \(AccessSecrets.acmeReader) x", from: id)
        let logged = r.actions.filter { if case .log = $0 { true } else { false } }.flatMap(Self.texts)
        #expect(!logged.isEmpty)
        #expect(!logged.contains { $0.contains(AccessSecrets.acmeReader) })
    }

    @Test func noSecretLeavesTheServerWithoutAnACL() {
        let h = Harness()
        let r = Recorder(h)
        let a = r.connect()
        r.send(Harness.authOption("acme-web", AccessSecrets.acmeWeb), from: a)
        r.send(Harness.authClientID("colon", AccessSecrets.colon), from: a)
        r.admin("auth acme-web \(AccessSecrets.acmeWeb)", from: a)
        r.admin("workers", from: a)
        r.send(Pkt.submit("f", unique: "u", "x"), from: a)
        r.admin("show unique jobs", from: a)
        for action in r.actions {
            for text in Self.texts(of: action) {
                #expect(!text.contains(Self.marker), "leaked in \(text)")
            }
        }
        #expect(h.machine.connections[a]?.clientID == buf("colon"))
        #expect(r.actions.contains { if case .sendText(let text, _) = $0 { text.contains(" colon :") } else { false } })
    }
}
