import GearmanProtocol
import GearmanServer
import Logging
import NIOCore
import ServiceLifecycle
import Testing

/// `JobServer` as a swift-service-lifecycle `Service` inside a host program's `ServiceGroup`.
@Suite("Embedded JobServer", .serialized, .timeLimit(.minutes(5)))
struct EmbeddedServerTests {
    /// Runs `group` and `body` side by side; returns once `group.run()` has returned, failing if
    /// that takes longer than `timeout` after `body` finished.
    static func withServiceGroup(
        _ group: ServiceGroup, timeout: Duration = .seconds(10), _ body: () async throws -> Void
    ) async throws {
        try await withThrowingTaskGroup(of: String.self) { tasks in
            tasks.addTask {
                try await group.run()
                return "run returned"
            }
            do {
                try await body()
            } catch {
                await group.triggerGracefulShutdown()
                tasks.cancelAll()
                throw error
            }
            tasks.addTask {
                try await Task.sleep(for: timeout)
                return "timeout"
            }
            let first = try await tasks.next()
            tasks.cancelAll()
            #expect(first == "run returned", "ServiceGroup.run() did not return within \(timeout) after shutdown")
        }
    }

    @Test("serves a job, and triggerGracefulShutdown lets the running job finish before run() returns")
    func gracefulShutdownDrainsRunningJob() async throws {
        let logger = testLogger()
        let server = JobServer(configuration: gearlockConfiguration(ServerOptions()), logger: logger)
        let group = ServiceGroup(configuration: .init(services: [server], logger: logger))
        try await Self.withServiceGroup(group) {
            let port = try #require(try await server.listeningAddresses().first?.port)
            let client = try await RawClient.connect(host: "127.0.0.1", port: port, label: "client")
            let worker = try await RawClient.connect(host: "127.0.0.1", port: port, label: "worker")
            try await worker.canDo("emb")

            // A first job, served normally.
            let warmup = try await client.submit("emb", unique: "", payload: "one")
            #expect(try await worker.grab() == .response(.jobAssign, warmup, "emb", "one"))
            try await worker.send(RawPacket.request(.workComplete, warmup, "eno"))
            #expect(try await client.receive() == .packet(.response(.workComplete, warmup, "eno")))

            // A second one is running when shutdown is triggered.
            let handle = try await client.submit("emb", unique: "", payload: "in-flight")
            #expect(try await worker.grab() == .response(.jobAssign, handle, "emb", "in-flight"))
            await group.triggerGracefulShutdown()

            // The listener closes first: new connections are refused.
            #expect(try await Self.waitUntilRefused(port: port), "the listener still accepts after graceful shutdown began")

            // The running job still completes and its result reaches the client.
            try await worker.send(RawPacket.request(.workComplete, handle, "done"))
            #expect(try await client.receive() == .packet(.response(.workComplete, handle, "done")))
            // Then the server closes every connection.
            _ = try await client.framesUntilClose()
            _ = try await worker.framesUntilClose()
        }
    }

    @Test("no new jobs are handed out while draining")
    func drainingHandsOutNothing() async throws {
        let logger = testLogger()
        let server = JobServer(configuration: gearlockConfiguration(ServerOptions()), logger: logger)
        let group = ServiceGroup(configuration: .init(services: [server], logger: logger))
        try await Self.withServiceGroup(group) {
            let port = try #require(try await server.listeningAddresses().first?.port)
            let client = try await RawClient.connect(host: "127.0.0.1", port: port, label: "client")
            let worker = try await RawClient.connect(host: "127.0.0.1", port: port, label: "worker")
            try await worker.canDo("dr")
            let running = try await client.submit("dr", unique: "1", payload: "")
            let queued = try await client.submit("dr", unique: "2", payload: "", type: .submitJobBackground)
            #expect(try await worker.grab() == .response(.jobAssign, running, "dr", ""))
            await group.triggerGracefulShutdown()
            // The trigger only starts the stop; draining has begun once the listener refuses.
            #expect(try await Self.waitUntilRefused(port: port), "the listener still accepts while draining")
            #expect(try await worker.grab() == .noJob, "draining: \(queued) stays queued")
            try await worker.send(RawPacket.request(.workComplete, running, ""))
            #expect(try await client.receive() == .packet(.response(.workComplete, running, "")))
        }
    }

    @Test("an idle server stops at once on graceful shutdown")
    func idleShutdown() async throws {
        let logger = testLogger()
        let server = JobServer(configuration: gearlockConfiguration(ServerOptions()), logger: logger)
        let group = ServiceGroup(configuration: .init(services: [server], logger: logger))
        // 20 s bounds: hang guards that still tell "at once" from the 30 s shutdown timeout a
        // server with work in hand would wait for (a loaded CI start-up once took over 5 s).
        try await Self.withServiceGroup(group, timeout: .seconds(20)) {
            let port = try #require(try await server.listeningAddresses().first?.port)
            let client = try await RawClient.connect(host: "127.0.0.1", port: port, label: "client")
            #expect(try await client.ping())
            await group.triggerGracefulShutdown()
            _ = try await client.framesUntilClose(timeout: .seconds(20))
        }
    }

    /// Polls until a connection to `port` is refused (at most 20 s): the server has stopped accepting.
    static func waitUntilRefused(port: Int) async throws -> Bool {
        let deadline = ContinuousClock.now + .seconds(20)
        while ContinuousClock.now < deadline {
            guard let late = try? await RawClient.connect(host: "127.0.0.1", port: port, label: "late") else {
                return true
            }
            await late.close()
            try await Task.sleep(for: .milliseconds(20))
        }
        return false
    }
}
