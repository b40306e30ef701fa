import GearmanACL
import GearmanProtocol
import NIOCore
import Testing

/// The per-tenant quotas `max_payload_bytes` and `max_connections` on a live server (the queue quota:
/// `ACLEnforcementTests.queueQuota`).
@Suite("ACL tenant quotas on a live server", .serialized, .timeLimit(.minutes(2)))
struct ACLQuotaTests {
    static func policy() throws -> AccessPolicy {
        try AccessPolicy(
            yaml: """
                tenants:
                  acme:
                    functions: ["acme.*"]
                    max_payload_bytes: 100
                    max_connections: 2
                  globex:
                    functions: ["globex.*"]
                principals:
                  acme-web:
                    tenant: acme
                    secret: "\(ACLFixture.hash("acme-web"))"
                    submit: ["acme.*"]
                  acme-worker:
                    tenant: acme
                    secret: "\(ACLFixture.hash("acme-worker"))"
                    can_do: ["acme.*"]
                  globex-web:
                    tenant: globex
                    secret: "\(ACLFixture.hash("globex-web"))"
                    submit: ["globex.*"]
                """)
    }

    @Test("max_connections: the tenant's third authentication gets QUOTA_EXCEEDED and is closed; another tenant is not counted; room again once one leaves")
    func connectionQuota() async throws {
        try await withACLServer(policy: try Self.policy()) { server in
            let first = try await server.connect(as: "acme-web")
            let second = try await server.connect(as: "acme-worker")
            let third = try await server.connect("third")
            try await third.send(RawPacket.request(.optionRequest, "auth:acme-web:\(ACLFixture.secret("acme-web"))"))
            let frames = try await third.framesUntilClose()
            guard case .packet(let refusal)? = frames.first else {
                Issue.record("expected an ERROR, got \(frames)")
                return
            }
            #expect(refusal.type == PacketType.error.rawValue && field(refusal, 0) == "QUOTA_EXCEEDED", "\(refusal)")
            let globex = try await server.connect(as: "globex-web")
            #expect(try await globex.ping(), "another tenant has its own count")
            #expect(try await first.ping(), "the admitted connections go on")
            #expect(try await second.ping())
            await second.close()
            var admitted = false
            for _ in 0..<100 where !admitted {
                let again = try await server.connect("again")
                try await again.send(RawPacket.request(.optionRequest, "auth:acme-worker:\(ACLFixture.secret("acme-worker"))"))
                admitted = try await again.receivePacket() == .response(.optionResponse, "auth:acme-worker")
                await again.close()
                if !admitted { try await Task.sleep(for: .milliseconds(50)) }
            }
            #expect(admitted, "room again once a connection of the tenant closed")
            #expect(server.logs.audits("quota_exceeded").count >= 1)
            await first.close()
            await globex.close()
        }
    }

    @Test("max_payload_bytes: a submission over it gets ARGUMENT_TOO_LARGE and queues nothing; an oversized WORK_COMPLETE fails the job")
    func payloadQuota() async throws {
        try await withACLServer(policy: try Self.policy()) { server in
            let client = try await server.connect(as: "acme-web")
            try await client.send(RawPacket.request(.submitJob, "acme.f", "", String(repeating: "x", count: 500)))
            let refused = try await client.receivePacket()
            #expect(refused.type == PacketType.error.rawValue && field(refused, 0) == "ARGUMENT_TOO_LARGE", "\(refused)")
            let worker = try await server.connect(as: "acme-worker")
            try await worker.canDo("acme.f")
            #expect(try await worker.grab() == .response(.noJob), "nothing was queued")

            let handle = try await client.submit("acme.f", payload: "small")
            #expect(try await worker.grab() == .response(.jobAssign, handle, "acme.f", "small"))
            try await worker.send(.request(.workComplete, handle, String(repeating: "r", count: 500)))
            let workerError = try await worker.receivePacket()
            #expect(workerError.type == PacketType.error.rawValue && field(workerError, 0) == "ARGUMENT_TOO_LARGE", "\(workerError)")
            #expect(try await client.receive() == .packet(.response(.workFail, handle)))
            await worker.close()
            await client.close()
        }
    }
}
