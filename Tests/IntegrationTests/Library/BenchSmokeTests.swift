import Foundation
import Testing

/// `gearlock bench`, the binary, for a second at a time: it runs, verifies, and reports, so the
/// benchmark can't rot. No thresholds: only that work was done and every result matched.
@Suite("gearlock bench smoke")
struct BenchSmokeTests {
    /// Runs `gearlock bench -s SERVER --json <arguments>` and returns its JSON object.
    private func bench(_ server: TestServer, _ arguments: [String]) async throws -> (ProcessResult, [String: Any]) {
        try requireExecutable(GearlockBinary.path)
        let result = try await runProcess(
            GearlockBinary.path, ["bench", "-s", server.address, "--json", "--server-pid", String(server.pid)] + arguments,
            timeout: .seconds(60))
        let lines = result.stdoutString.split(separator: "\n")
        #expect(lines.count == 1, "one JSON line: \(result)")
        let object = try #require(
            try JSONSerialization.jsonObject(with: Data((lines.first ?? "").utf8)) as? [String: Any], "\(result)")
        return (result, object)
    }

    @Test("foreground, 3 s: exit 0, jobs/s > 0, 0 mismatches, server stats read", arguments: ServerKind.allCases)
    func foreground(kind: ServerKind) async throws {
        try await withTestServer(kind) { server in
            let (result, report) = try await bench(
                server,
                // 3 s: a debug build beside the other suites on 2 cores can take a second to warm up.
                ["--duration", "3", "--workers", "1", "--clients", "1", "--in-flight", "2", "--payload-size", "100"])
            #expect(result.exitCode == 0, "\(result)")
            #expect(report["mode"] as? String == "foreground")
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

    @Test("a usage error exits 64")
    func usageError() async throws {
        try requireExecutable(GearlockBinary.path)
        let result = try await runProcess(GearlockBinary.path, ["bench", "--in-flight", "0"])
        #expect(result.exitCode == 64, "\(result)")
    }
}
