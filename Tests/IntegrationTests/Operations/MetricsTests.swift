import Foundation
import GearlockTestSupport
import GearmanProtocol
import NIOCore
import NIOPosix
import Testing

/// `gearlock serve --metrics-listen`: the Prometheus endpoint of the real binary, scraped during a
/// loopback run.
@Suite("gearlock serve --metrics-listen", .serialized, .timeLimit(.minutes(3)))
struct MetricsTests {
    @Test("a scrape shows the jobs, queues, workers, connections, security events and commits of the run")
    func countsOfALoopbackRun() async throws {
        let directory = try ConfigDirectory()
        defer { directory.remove() }
        let acl = try directory.write("acl.yaml", ACLServeCommandTests.servedYAML())
        try await withMetricsServer(tls: true, ["--acl", acl, "--queue", "sqlite:\(directory.path)/jobs.sqlite"]) {
            ports, _ in
            let worker = try await RawClient.connect(host: "127.0.0.1", port: ports.plaintext, label: "worker")
            try await worker.authenticate("acme-worker", secret: ACLFixture.secret("acme-worker"))
            try await worker.canDo("acme.a")
            let client = try await RawClient.connect(host: "127.0.0.1", port: ports.plaintext, label: "client")
            try await client.authenticate("acme-web", secret: ACLFixture.secret("acme-web"))

            // acme.a: four durable jobs; three complete, one fails.
            for index in 0..<4 {
                _ = try await client.submit("acme.a", payload: "job \(index)", type: .submitJobBackground)
            }
            for index in 0..<4 {
                let handle = field(try await worker.grabUntilAssigned(timeout: .seconds(20)), 0)
                if index < 3 {
                    try await worker.send(RawPacket.request(.workComplete, handle, "done"))
                } else {
                    try await worker.send(RawPacket.request(.workFail, handle))
                }
            }
            #expect(try await worker.ping())

            // acme.b: two low-priority jobs stay queued; a second worker registers but does not grab.
            for index in 0..<2 {
                _ = try await client.submit("acme.b", payload: "queued \(index)", type: .submitJobLowBackground)
            }
            let idle = try await RawClient.connect(host: "127.0.0.1", port: ports.plaintext, label: "idle worker")
            try await idle.authenticate("acme-worker", secret: ACLFixture.secret("acme-worker"))
            try await idle.canDo("acme.b")
            #expect(try await idle.ping())

            // acme.c: a worker takes a job and vanishes: requeued.
            _ = try await client.submit("acme.c", payload: "lost", type: .submitJobBackground)
            let vanishing = try await RawClient.connect(host: "127.0.0.1", port: ports.plaintext, label: "vanishing")
            try await vanishing.authenticate("acme-worker", secret: ACLFixture.secret("acme-worker"))
            try await vanishing.canDo("acme.c")
            _ = try await vanishing.grabUntilAssigned(timeout: .seconds(20))
            await vanishing.abort()

            // A denied submission, a failed authentication, plaintext on the TLS port.
            try await client.send(RawPacket.request(.submitJob, "globex.x", "", "p"))
            #expect(try await client.receivePacket().type == PacketType.error.rawValue)
            let intruder = try await RawClient.connect(host: "127.0.0.1", port: ports.plaintext, label: "intruder")
            try await intruder.send(RawPacket.request(.optionRequest, "auth:acme-web:wrong"))
            _ = try? await intruder.framesUntilClose(timeout: .seconds(20))
            let plaintext = try await RawClient.connect(host: "127.0.0.1", port: ports.tls!, label: "plaintext on TLS")
            try await plaintext.send(RawPacket.request(.echoRequest, "hello"))
            _ = try? await plaintext.framesUntilClose(timeout: .seconds(20))

            let a = ["function": "acme.a", "tenant": "acme"]
            let b = ["function": "acme.b", "tenant": "acme"]
            let c = ["function": "acme.c", "tenant": "acme"]
            let plain = "127.0.0.1:\(ports.plaintext)"
            let expected: [(String, [String: String], Double)] = [
                ("gearlock_jobs_submitted_total", a, 4),
                ("gearlock_jobs_completed_total", a, 3),
                ("gearlock_jobs_failed_total", a, 1),
                ("gearlock_jobs_requeued_total", a, 0),
                ("gearlock_job_queue_wait_seconds_count", a, 4),
                ("gearlock_job_run_seconds_count", a, 4),
                ("gearlock_jobs_submitted_total", b, 2),
                ("gearlock_jobs_submitted_total", c, 1),
                ("gearlock_jobs_requeued_total", c, 1),
                ("gearlock_queue_depth", ["function": "acme.a", "priority": "normal"], 0),
                ("gearlock_queue_depth", ["function": "acme.b", "priority": "low"], 2),
                ("gearlock_queue_depth", ["function": "acme.b", "priority": "normal"], 0),
                ("gearlock_queue_depth", ["function": "acme.b", "priority": "high"], 0),
                ("gearlock_queue_depth", ["function": "acme.c", "priority": "normal"], 1),
                ("gearlock_workers", ["function": "acme.a"], 1),
                ("gearlock_workers", ["function": "acme.b"], 1),
                ("gearlock_workers", ["function": "acme.c"], 0),
                ("gearlock_acl_denials_total", ["tenant": "acme"], 1),
                ("gearlock_authentication_failures_total", ["tenant": "acme"], 1),
                ("gearlock_tls_handshake_failures_total", ["reason": "plaintext"], 1),
                ("gearlock_connections", ["listener": plain, "state": "authenticated"], 3),
                ("gearlock_connections", ["listener": plain, "state": "unauthenticated"], 0),
                ("gearlock_connections", ["listener": "tls://127.0.0.1:\(ports.tls!)", "state": "handshaking"], 0),
            ]
            @Sendable func mismatches(_ scraped: PrometheusText) -> [String] {
                expected.compactMap { name, labels, value in
                    let found = scraped.value(name, labels)
                    return found == value ? nil : "\(name)\(labels): \(found.map { "\($0)" } ?? "absent"), expected \(value)"
                }
            }
            // The last updates (the vanished worker, the handshake failure) land asynchronously.
            let port = ports.metrics
            try? await eventually("the metrics reach the expected counts", timeout: .seconds(20)) {
                mismatches(try await scrape(port: port)).isEmpty
            }
            let scraped = try await scrape(port: port)
            #expect(mismatches(scraped) == [], "\(scraped)")
            // Every durable job was committed, in one or more batches: 4 + 2 + 1 additions, a
            // requeue's rewrite, and the removals of the 4 jobs that ended.
            let commits = try #require(scraped.value("gearlock_queue_commit_duration_seconds_count"), "\(scraped)")
            #expect(commits >= 1)
            #expect(scraped.value("gearlock_queue_commit_batch_size_count") == commits)
            #expect(try #require(scraped.value("gearlock_queue_commit_batch_size_sum")) >= 8, "\(scraped)")
            #expect(scraped.value("gearlock_queue_commit_failures_total") == 0)
            #expect(scraped.text.contains("# TYPE gearlock_job_run_seconds histogram"))
            #expect(scraped.value("gearlock_job_run_seconds_bucket", a.merging(["le": "3600.0"]) { $1 }) == 4, "\(scraped)")

            for connection in [worker, client, idle] { await connection.close() }
        }
    }

    @Test("the endpoint answers only GET /metrics and /healthz, survives garbage, and the job server keeps working")
    func endpointRefusesOtherRequests() async throws {
        try await withMetricsServer(tls: false, ["--queue", "memory"]) { ports, _ in
            let port = ports.metrics
            let post = try await httpExchange(port: port, "POST /metrics HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nhi")
            #expect(post.hasPrefix("HTTP/1.1 405 Method Not Allowed\r\n") && post.contains("Allow: GET, HEAD"), "\(post)")
            let missing = try await httpExchange(port: port, "GET /admin HTTP/1.1\r\nHost: t\r\n\r\n")
            #expect(missing.hasPrefix("HTTP/1.1 404 Not Found\r\n"), "\(missing)")
            let garbage = try await httpExchange(port: port, "\u{1}\u{2}\u{3} not http at all\r\n\r\n")
            #expect(garbage.hasPrefix("HTTP/1.1 400 Bad Request\r\n"), "\(garbage)")
            let gearman = try await httpExchange(port: port, "\0REQ\0\0\0\u{10}\0\0\0\u{5}hello")
            #expect(gearman.isEmpty || gearman.hasPrefix("HTTP/1.1 400"), "\(gearman)")
            let health = try await httpExchange(port: port, "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
            #expect(health.hasPrefix("HTTP/1.1 200 OK\r\n") && health.hasSuffix("\r\n\r\nok\n"), "\(health)")
            let head = try await httpExchange(port: port, "HEAD /metrics HTTP/1.1\r\nHost: t\r\n\r\n")
            #expect(head.hasPrefix("HTTP/1.1 200 OK\r\n") && head.hasSuffix("\r\n\r\n"), "\(head)")

            let client = try await RawClient.connect(host: "127.0.0.1", port: ports.plaintext, label: "client")
            #expect(try await client.ping())
            _ = try await client.submit("after.garbage", payload: "p", type: .submitJobBackground)
            let scraped = try await scrape(port: port)
            #expect(
                scraped.value("gearlock_jobs_submitted_total", ["function": "after.garbage", "tenant": ""]) == 1,
                "\(scraped)")
            #expect(
                scraped.value("gearlock_connections", ["listener": "127.0.0.1:\(ports.plaintext)", "state": "open"]) == 1,
                "without an ACL connections are open: \(scraped)")
            await client.close()
        }
    }

    @Test("metrics-listen in the configuration file turns the endpoint on")
    func fromConfigurationFile() async throws {
        let directory = try ConfigDirectory()
        defer { directory.remove() }
        let metricsPort = try freeLoopbackPort()
        try await withGearlockServe({ port in
            let file = try directory.write(
                "gearlock.yaml",
                "listen: [\"127.0.0.1:\(port)\"]\nqueue: memory\nlog-level: error\nmetrics-listen: \"127.0.0.1:\(metricsPort)\"\n")
            return ["--config", file]
        }) { port, _ in
            let client = try await RawClient.connect(host: "127.0.0.1", port: port, label: "client")
            _ = try await client.submit("from.file", payload: "p", type: .submitJobBackground)
            try await eventually("the endpoint answers", timeout: .seconds(20)) {
                (try? await scrape(port: metricsPort)) != nil
            }
            let scraped = try await scrape(port: metricsPort)
            #expect(scraped.value("gearlock_queue_depth", ["function": "from.file", "priority": "normal"]) == 1, "\(scraped)")
            await client.close()
        }
    }

    @Test("a metrics port already taken stops start-up with a clear error, before the queue is opened")
    func portTaken() async throws {
        let directory = try ConfigDirectory()
        defer { directory.remove() }
        let holder = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(host: "127.0.0.1", port: 0).get()
        defer { holder.close(promise: nil) }
        let taken = try #require(holder.localAddress?.port)
        let result = try await runGearlockServe([
            "--listen", "127.0.0.1:\(try freeLoopbackPort())", "--queue", "sqlite:\(directory.path)/jobs.sqlite",
            "--metrics-listen", "127.0.0.1:\(taken)",
        ])
        #expect(result.exitCode != 0 && !result.timedOut, "\(result)")
        #expect(result.stderrString.contains("cannot listen for metrics on 127.0.0.1:\(taken)"), "\(result)")
        #expect(!FileManager.default.fileExists(atPath: directory.path + "/jobs.sqlite"), "the queue was not opened")
    }

    @Test("--check-config shows the metrics address, warns when it is not loopback, and refuses a bad one")
    func checkConfig() async throws {
        let bare = try await runGearlockServe(["--check-config", "--queue", "memory", "--metrics-listen", "9464"])
        #expect(bare.exitCode == 0 && bare.stdoutString.contains("\n  metrics: http://127.0.0.1:9464/metrics\n"), "\(bare)")
        let exposed = try await runGearlockServe(["--check-config", "--queue", "memory", "--metrics-listen", "0.0.0.0:9464"])
        #expect(
            exposed.exitCode == 0
                && exposed.stdoutString.contains(
                    "  metrics: http://0.0.0.0:9464/metrics (warning: not loopback; metrics name functions and tenants)"),
            "\(exposed)")
        let bad = try await runGearlockServe(["--check-config", "--queue", "memory", "--metrics-listen", "nowhere"])
        #expect(bad.exitCode == 64 && bad.stderrString.contains("'nowhere' is invalid for '--metrics-listen"), "\(bad)")
        let clash = try await runGearlockServe(
            ["--check-config", "--queue", "memory", "--listen", "127.0.0.1:9464", "--metrics-listen", "127.0.0.1:9464"])
        #expect(
            clash.exitCode == 64 && clash.stderrString.contains("--metrics-listen 127.0.0.1:9464 is also a job server listener"),
            "\(clash)")
        let (file, fromFile) = try await runGearlockServe(config: "queue: memory\nmetrics-listen: \"127.0.0.1:99999\"\n", ["--check-config"])
        #expect(fromFile.exitCode == 64 && fromFile.stderrString.contains("'127.0.0.1:99999' is invalid for '--metrics-listen"), "\(fromFile)")
        #expect(fromFile.stderrString.contains("note: `metrics-listen` is set in \(file):2"), "\(fromFile)")
    }
}
