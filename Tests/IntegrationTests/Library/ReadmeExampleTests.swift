import Gearman
import NIOCore
import Testing

/// The README's library example, run as written (only the server address differs).
@Suite("README example", .serialized, .timeLimit(.minutes(5)))
struct ReadmeExampleTests {
    @Test("the worker-and-client example works against both servers", arguments: ServerKind.allCases)
    func example(kind: ServerKind) async throws {
        try await withTestServer(kind) { server in
            let options = GearmanConnectionOptions(servers: [GearmanServerAddress(host: "127.0.0.1", port: server.port)])

            // A worker: up to 4 jobs at a time; returns the result, or throws (WORK_FAIL / WORK_EXCEPTION).
            let worker = GearmanWorker(configuration: .init(connection: options, concurrency: 4))
            worker.register(function: "reverse") { job in
                job.sendStatus(numerator: 1, denominator: 2)
                return ByteBuffer(string: String(String(buffer: job.payload).reversed()))
            }

            let client = GearmanClient(configuration: .init(connection: options))
            var printed: [String] = []
            try await withThrowingDiscardingTaskGroup { group in
                group.addTask { try await worker.run() }  // in production: a ServiceGroup with signal handling
                let result = try await client.submit(function: "reverse", payload: "hello", timeout: .seconds(30))
                printed.append(String(buffer: result))  // olleh
                let handle = try await client.submitBackground(function: "reverse", payload: ByteBuffer(string: "later"))
                printed.append("\(handle)")  // returned once the server acknowledged the job (JOB_CREATED)
                group.cancelAll()
            }
            client.shutdown()

            #expect(printed.first == "olleh")
            #expect(printed.count == 2 && !printed[1].isEmpty)
        }
    }
}
