import Gearman
import GearmanProtocol
import Logging
import NIOCore
import ServiceLifecycle
import Testing

@Suite("Swift client and worker")
struct ClientWorkerSmokeTests {
    @Test("a foreground job: events in order, then the result", arguments: ServerKind.allCases)
    func foregroundJob(kind: ServerKind) async throws {
        try await withTestServer(kind) { server in
            let options = GearmanConnectionOptions(servers: [.init(host: server.host, port: server.port)])
            let worker = GearmanWorker(configuration: .init(connection: options))
            worker.register(function: "reverse") { job in
                job.sendStatus(numerator: 1, denominator: 2)
                job.sendData(ByteBuffer(string: "half"))
                return ByteBuffer(string: String(String(buffer: job.payload).reversed()))
            }
            let client = GearmanClient(configuration: .init(connection: options))
            defer { client.shutdown() }
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await worker.run() }
                let job = try await client.submitJob(function: "reverse", payload: ByteBuffer(string: "hello"))
                var events: [GearmanJobEvent] = []
                for try await event in job.events { events.append(event) }
                #expect(events == [.status(numerator: 1, denominator: 2), .data(ByteBuffer(string: "half")), .completed(ByteBuffer(string: "olleh"))])
                group.cancelAll()
            }
        }
    }
}
