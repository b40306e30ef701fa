import GearmanProtocol
import NIOCore
import Testing

@Suite("Large payloads", .serialized, .timeLimit(.minutes(5)))
struct LargePayloadTests {
    static let size = 64 << 20

    @Test("a 64 MiB payload makes a byte-exact round trip client → worker → client", arguments: ServerKind.allCases)
    func roundTrip64MiB(kind: ServerKind) async throws {
        try await withTestServer(kind) { server in
            let payload = seededRandomBytes(count: Self.size, seed: 0x6765_6172_6C6F_636B)
            let worker = try await server.connect("worker")
            try await worker.canDo("big")
            let client = try await server.connect("client")
            try await client.sendPacket(.submitJob, fields: ["big", ""], data: payload)
            let created = try await client.receivePacket(timeout: .seconds(60))
            try #require(created.type == PacketType.jobCreated.rawValue, "\(created)")
            let handle = String(buffer: created.payload)

            try await worker.send(RawPacket.request(.grabJob))
            let assign = try await worker.receivePacket(timeout: .seconds(60))
            let assigned = assign.arguments(3)
            try #require(assign.type == PacketType.jobAssign.rawValue && assigned.count == 3, "\(assign)")
            #expect(String(buffer: assigned[0]) == handle && String(buffer: assigned[1]) == "big")
            #expect(assigned[2].readableBytes == Self.size)
            let workerGotPayload = assigned[2] == payload  // a Bool, so a failure doesn't print 64 MiB
            #expect(workerGotPayload, "the worker got the bytes the client sent")

            // Echo it back as the result, straight from the received slice.
            try await worker.sendPacket(.workComplete, fields: [handle], data: assigned[2])
            let complete = try await client.receivePacket(timeout: .seconds(60))
            let result = complete.arguments(2)
            #expect(complete.type == PacketType.workComplete.rawValue && String(buffer: result[0]) == handle)
            #expect(result[1].readableBytes == Self.size)
            let clientGotPayload = result[1] == payload
            #expect(clientGotPayload, "the client got the bytes the worker sent")
        }
    }
}
