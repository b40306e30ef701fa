import Foundation
import Testing

/// `bench/compare.sh --quick` with the debug build: the comparison script starts Gearlock and
/// gearmand, runs every row of its matrix, and prints the table, so it can't rot. No thresholds:
/// the PASS/FAIL column is not looked at.
@Suite("bench/compare.sh smoke", .serialized, .timeLimit(.minutes(5)))
struct CompareScriptSmokeTests {
    static let script: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<4 { url.deleteLastPathComponent() }  // …/Tests/IntegrationTests/Library/<file>
        return url.appendingPathComponent("bench/compare.sh").path
    }()

    @Test("--quick with the debug build: exit 0, every row of the table with numbers for both servers")
    func quick() async throws {
        try requireExecutable(GearlockBinary.path)
        try requireExecutable(ReferenceTools.gearmand)
        try requireExecutable(Self.script)
        // Smaller than --quick's own sizes: the debug build beside the other suites on 2 cores. A
        // window of 1 s, not less: at the start of a loaded CI run a TLS 64 KiB run once completed no
        // job within 0.5 s, so it had no latency to report.
        let settings = [
            "GEARLOCK=\(GearlockBinary.path)", "JSON_OUT=", "DURATION=1", "WARMUP=0.3", "BG_JOBS=500",
            "IDLE_CONNECTIONS=100", "IDLE_LOAD_DURATION=0.5", "SLEEPERS=50", "HUGE_SIZE=1048576",
        ]
        let result = try await runProcess("/usr/bin/env", settings + [Self.script, "--quick"], timeout: .seconds(240))
        #expect(result.exitCode == 0, "\(result)")

        // | measurement | Gearlock | gearmand | ratio | target | vs target |
        let rows = result.stdoutString.split(separator: "\n").filter { $0.hasPrefix("| ") && !$0.hasPrefix("| ---") }
            .map { $0.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) } }
        let expected = [
            "foreground 100 B, jobs/s", "foreground 100 B, p99 latency ms", "foreground 100 B, server CPU µs per job",
            "TLS foreground 100 B, jobs/s", "TLS foreground 100 B, p99 latency ms",
            "foreground 64 KiB, jobs/s", "foreground 64 KiB, p99 latency ms", "foreground 64 KiB, server CPU µs per job",
            "TLS foreground 64 KiB, jobs/s", "TLS foreground 64 KiB, p99 latency ms",
            "background enqueue jobs/s, Gearlock memory", "background drain jobs/s, Gearlock memory",
            "background drain server CPU µs per job, Gearlock memory",
            "server RSS per queued 100 B job KiB, Gearlock memory",
            "background enqueue jobs/s, Gearlock SQLite FULL", "background drain jobs/s, Gearlock SQLite FULL",
            "server RSS per queued 100 B job KiB, Gearlock SQLite FULL",
            "100 idle connections: jobs/s while they are open", "100 idle connections: jobs/s with them / without",
            "100 idle connections: server RSS per connection KiB", "100 idle connections: still open at the end",
            "50 sleeping workers, no jobs: server CPU % of one core", "50 sleeping workers, no jobs: NOOPs sent to them",
            "one 1 MiB payload: round trip s", "one 1 MiB payload: payload MB/s", "one 1 MiB payload: server peak RSS MiB",
        ]
        for label in expected {
            let row = rows.first { $0.count == 6 && $0[0].hasPrefix(label) }
            #expect(row != nil, "no row \"\(label)\" in: \(result.stdoutString)")
            guard let row else { continue }
            #expect(Double(row[1]) != nil, "Gearlock's value in \"\(label)\": \(row); \(result.stderrString.suffix(2000))")
            if !label.hasPrefix("TLS") {
                #expect(Double(row[2]) != nil, "gearmand's value in \"\(label)\": \(row)")
            }
        }
        #expect(rows.count == expected.count + 1, "the header and one row each: \(rows)")
    }
}
