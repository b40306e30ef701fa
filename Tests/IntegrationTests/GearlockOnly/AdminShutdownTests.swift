import GearmanProtocol
import GearmanServer
import NIOCore
import Testing

/// The admin `shutdown` command (Gearlock keeps it; gearmand 1.1.15+ answers UNKNOWN_COMMAND).
///
/// Each scenario runs in a child process (an exit test), so a crash in the server fails this test
/// instead of killing the whole test run.
@Suite("Admin shutdown (Gearlock)", .serialized, .timeLimit(.minutes(5)))
struct AdminShutdownTests {
    @Test("`shutdown` answers OK and stops the server without crashing the process")
    func shutdown() async {
        await #expect(processExitsWith: .success) {
            try await AdminShutdownTests.scenario(command: "shutdown", runningJob: false)
        }
    }

    @Test("`shutdown graceful` lets a running job finish, then stops, without crashing the process")
    func shutdownGraceful() async {
        await #expect(processExitsWith: .success) {
            try await AdminShutdownTests.scenario(command: "shutdown graceful", runningJob: true)
        }
    }

    @Test("`shutdown graceful` on an idle server stops it without crashing the process")
    func shutdownGracefulIdle() async {
        await #expect(processExitsWith: .success) {
            try await AdminShutdownTests.scenario(command: "shutdown graceful", runningJob: false)
        }
    }

    static func scenario(command: String, runningJob: Bool) async throws {
        let server = JobServer(configuration: gearlockConfiguration(ServerOptions()), logger: testLogger())
        try await withThrowingTaskGroup(of: String.self) { tasks in
            tasks.addTask {
                try await server.run()
                return "run returned"
            }
            let port = try #require(try await server.listeningAddresses().first?.port)
            let admin = try await RawClient.connect(host: "127.0.0.1", port: port, label: "admin")
            var job: (client: RawClient, worker: RawClient, handle: String)?
            if runningJob {
                let client = try await RawClient.connect(host: "127.0.0.1", port: port, label: "client")
                let worker = try await RawClient.connect(host: "127.0.0.1", port: port, label: "worker")
                try await worker.canDo("sd")
                let handle = try await client.submit("sd", unique: "", payload: "x")
                _ = try await worker.grab()
                job = (client, worker, handle)
            }
            let reply = try await admin.adminCommand(command)
            guard reply == "OK\r\n" else { throw RawClientError(description: "\(command) answered \(reprString(reply))") }
            if let job {
                try await job.worker.send(RawPacket.request(.workComplete, job.handle, "done"))
                let result = try await job.client.receive()
                guard result == .packet(.response(.workComplete, job.handle, "done")) else {
                    throw RawClientError(description: "running job's result: \(result)")
                }
            }
            tasks.addTask {
                try await Task.sleep(for: .seconds(10))
                return "timeout"
            }
            let first = try await tasks.next()
            tasks.cancelAll()
            guard first == "run returned" else { throw RawClientError(description: "run() did not return after \(command)") }
        }
    }
}
