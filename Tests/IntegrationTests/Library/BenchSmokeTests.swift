import Foundation
import Testing

/// `gearlock bench`, the binary, for a second at a time: it runs, verifies, and reports, so the
/// benchmark can't rot. No thresholds: only that work was done and every result matched.
@Suite("gearlock bench smoke", .serialized, .timeLimit(.minutes(5)))
struct BenchSmokeTests {
    /// Runs `gearlock bench -s SERVER --json <arguments>` and returns its JSON object.
    private func bench(_ server: TestServer, _ arguments: [String]) async throws -> (ProcessResult, [String: Any]) {
        try await bench(address: server.address, pid: server.pid, arguments)
    }

    private func bench(address: String, pid: Int32, _ arguments: [String]) async throws -> (ProcessResult, [String: Any]) {
        try await runBench(address: address, pid: pid, arguments)
    }

    @Test(
        "foreground, 3 s, with the library and the raw driver: exit 0, jobs/s > 0, 0 mismatches, server stats read",
        arguments: ServerKind.allCases, ["library", "raw"])
    func foreground(kind: ServerKind, driver: String) async throws {
        try await withTestServer(kind) { server in
            let (result, report) = try await bench(
                server,
                // 3 s: a debug build beside the other suites on 2 cores can take a second to warm up.
                ["--duration", "3", "--workers", "2", "--worker-concurrency", "2", "--clients", "2", "--in-flight", "3",
                 "--payload-size", "100", "--driver", driver])
            #expect(result.exitCode == 0, "\(result)")
            #expect(report["mode"] as? String == "foreground")
            #expect(report["driver"] as? String == driver)
            #expect((report["jobs_per_s"] as? Double ?? 0) > 0, "\(result)")
            #expect((report["jobs"] as? Int ?? 0) > 0, "\(result)")
            #expect(report["mismatches"] as? Int == 0, "\(result)")
            #expect(report["errors"] as? Int == 0, "\(result)")
            #expect((report["latency_p50_us"] as? Double ?? 0) > 0, "\(result)")
            #expect(report["server_cpu_s"] is Double, "the server's /proc/PID/stat was read: \(result)")
            #expect((report["server_peak_rss_bytes"] as? Int ?? 0) > 0, "\(result)")
        }
    }

    @Test("echo, 1 s: exit 0, echoes/s > 0, 0 mismatches")
    func echo() async throws {
        try await withTestServer(.gearlock) { server in
            let (result, report) = try await bench(
                server, ["--mode", "echo", "--duration", "1", "--warmup", "0", "--clients", "1", "--in-flight", "2"])
            #expect(result.exitCode == 0, "\(result)")
            #expect((report["jobs_per_s"] as? Double ?? 0) > 0, "\(result)")
            #expect(report["mismatches"] as? Int == 0, "\(result)")
        }
    }

    @Test("background, 1 s with a small queue budget: every enqueued job is drained and verified")
    func background() async throws {
        try await withTestServer(.gearlock) { server in
            let (result, report) = try await bench(
                server,
                [
                    "--mode", "background", "--duration", "1", "--warmup", "0", "--workers", "1", "--clients", "1",
                    "--in-flight", "2", "--payload-size", "100", "--max-queued-bytes", "50000",
                ])
            #expect(result.exitCode == 0, "\(result)")
            let enqueued = report["enqueued"] as? Int ?? 0
            #expect(enqueued > 0, "\(result)")
            #expect(report["drained"] as? Int == enqueued, "\(result)")
            #expect((report["drain_per_s"] as? Double ?? 0) > 0, "\(result)")
            #expect(report["mismatches"] as? Int == 0, "\(result)")
        }
    }

    @Test(
        "background --jobs 2000 with unique keys, library and raw drivers: every job enqueued once, drained once, none left",
        arguments: ServerKind.allCases, ["library", "raw"])
    func backgroundCounted(kind: ServerKind, driver: String) async throws {
        try await withTestServer(kind) { server in
            let (result, report) = try await bench(
                server,
                [
                    "--mode", "background", "--jobs", "2000", "--unique-keys", "--workers", "2", "--clients", "2",
                    "--in-flight", "8", "--payload-size", "100", "--driver", driver,
                ])
            #expect(result.exitCode == 0, "\(result)")
            #expect(report["driver"] as? String == driver)
            #expect(report["enqueued"] as? Int == 2000, "\(result)")
            #expect(report["drained"] as? Int == 2000, "\(result)")
            #expect(report["duplicates"] as? Int == 0 && report["missing"] as? Int == 0, "\(result)")
            #expect(report["left_on_server"] as? Int == 0, "\(result)")
            #expect(report["mismatches"] as? Int == 0 && report["errors"] as? Int == 0, "\(result)")
        }
    }

    /// Runs `body` against a server of `kind` in a process of its own: `gearlock serve --queue
    /// memory` or gearmand. (Idle mode's connections then count against the server's descriptors,
    /// not this test process's.)
    private func withServerProcess(_ kind: ServerKind, _ body: (_ address: String, _ pid: Int32) async throws -> Void) async throws {
        switch kind {
        case .gearlock:
            try await withGearlockBinary { port, process in try await body("127.0.0.1:\(port)", process.pid) }
        case .gearmand:
            try await withTestServer(.gearmand) { server in try await body(server.address, server.pid) }
        }
    }

    @Test(
        "idle, 300 connections (150 sleeping workers): all set up, registered, still open; load before and during",
        arguments: ServerKind.allCases, ["library", "raw"])
    func idle(kind: ServerKind, driver: String) async throws {
        try await withServerProcess(kind) { address, pid in
            let (result, report) = try await bench(
                address: address, pid: pid,
                [
                    "--mode", "idle", "--connections", "300", "--sleeping-workers", "150", "--duration", "1",
                    "--load-duration", "1", "--warmup", "0", "--workers", "1", "--clients", "1", "--in-flight", "2",
                    "--driver", driver,
                ])
            #expect(result.exitCode == 0, "\(result)")
            #expect(report["mode"] as? String == "idle")
            #expect(report["driver"] as? String == driver)
            #expect(report["connect_failures"] as? Int == 0, "\(result)")
            #expect(report["workers_registered"] as? Int == 150, "\(result)")
            #expect(report["connections_open"] as? Int == 300, "\(result)")
            #expect(report["connections_lost"] as? Int == 0, "\(result)")
            #expect(report["unexpected_packets"] as? Int == 0, "\(result)")
            #expect((report["baseline_jobs_per_s"] as? Double ?? 0) > 0, "\(result)")
            #expect((report["jobs_per_s"] as? Double ?? 0) > 0, "\(result)")
            #expect(report["load_ratio"] is Double, "\(result)")
            #expect(report["idle_server_cpu_s"] is Double, "\(result)")
            #expect(report["server_rss_per_connection_bytes"] is Double, "\(result)")
            #expect(report["noops_idle"] is Int, "\(result)")
            if kind == .gearlock {
                // No job for the sleeping workers' function: nothing may wake them.
                #expect(report["noops"] as? Int == 0, "\(result)")
            }
            #expect(report["mismatches"] as? Int == 0, "\(result)")
            #expect(report["errors"] as? Int == 0, "\(result)")
        }
    }

    @Test("huge, one 8 MiB payload: echoed, verified, timed, peak RSS read", arguments: ServerKind.allCases)
    func huge(kind: ServerKind) async throws {
        try await withServerProcess(kind) { address, pid in
            let (result, report) = try await bench(
                address: address, pid: pid, ["--mode", "huge", "--payload-size", String(8 << 20), "--job-timeout", "50"])
            #expect(result.exitCode == 0, "\(result)")
            #expect(report["mode"] as? String == "huge")
            #expect(report["jobs"] as? Int == 1, "\(result)")
            #expect(report["mismatches"] as? Int == 0, "\(result)")
            #expect(report["first_difference_at"] is NSNull, "\(result)")
            #expect(report["errors"] as? Int == 0, "\(result)")
            #expect((report["round_trip_s"] as? Double ?? 0) > 0, "\(result)")
            #expect((report["payload_mb_per_s"] as? Double ?? 0) > 0, "\(result)")
            #expect((report["server_peak_rss_bytes"] as? Int ?? 0) > 0, "\(result)")
            #expect((report["bench_peak_rss_bytes"] as? Int ?? 0) >= 8 << 20, "the bench held the payload: \(result)")
        }
    }

    @Test("a usage error exits 64")
    func usageError() async throws {
        try requireExecutable(GearlockBinary.path)
        let result = try await runProcess(GearlockBinary.path, ["bench", "--in-flight", "0"])
        #expect(result.exitCode == 64, "\(result)")
    }
}
