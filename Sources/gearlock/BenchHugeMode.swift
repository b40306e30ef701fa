import Gearman
import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// `gearlock bench --mode huge`: one foreground job with one very large payload, echoed by one
/// worker, timed, and checked byte for byte without keeping a second copy.
extension BenchCommand {
    /// The payload is generated (as payload 0 of ``BenchPayloads`` with a random seed) before the
    /// clock starts; the result is compared with the same bytes computed again. The bench then
    /// holds at most: the payload (the client library keeps a submitted payload until the job
    /// ends) and the result, plus, for a while, the worker's copy of the job.
    func runHuge(
        report: BenchReport, options: GearmanConnectionOptions, function: String, jobTimeout: Duration
    ) async -> BenchOutcome {
        var outcome = BenchOutcome(report: report)
        let client = GearmanClient(configuration: .init(connection: options, resubmitOnServerLoss: false))
        defer { client.shutdown() }
        if let failure = await Self.connect([client], timeout: options.connectTimeout) {
            outcome.fail("cannot reach \(options.servers[0]): \(failure)")
            return outcome
        }
        let pool = BenchWorkerPool(
            count: 1, concurrency: 1, options: options, function: function, handler: { job in job.payload })
        await waitForWorkers(1, options: options, function: function)

        let seed = UInt64.random(in: 0...UInt64.max)
        let generationStart = benchNow()
        var payload: ByteBuffer? = BenchPayloads(size: payloadSize, count: 1, seed: seed)[0]
        let generationSeconds = Double(benchNow() - generationStart) / 1e9

        var samples = WindowSamples()
        samples.start(serverPID: serverPid, resetPeak: true)
        let benchPeakReset = ProcessStats.resetPeakRSS(pid: getpid())
        let start = benchNow()
        var result: ByteBuffer?
        do throws(GearmanError) {
            let job = try await client.submitJob(function: function, payload: payload!, timeout: jobTimeout)
            payload = nil
            result = try await job.result()
        } catch {
            outcome.fail(error.description)
        }
        let end = benchNow()
        samples.finish(serverPID: serverPid)
        let benchPeak = ProcessStats.sample(pid: "self")?.peakRSSBytes
        payload = nil
        await pool.stop()

        let seconds = Double(end - start) / 1e9
        var tally = LoadTally()
        if let result {
            let checkStart = benchNow()
            let difference = BenchPayloads.firstDifference(in: result, size: payloadSize, seed: seed)
            outcome.report.add("verify_s", .double(Double(benchNow() - checkStart) / 1e9, digits: 3))
            outcome.report.add("first_difference_at", difference.map { .int($0) } ?? .null)
            if let difference {
                outcome.mismatches += 1
                outcome.report.row(
                    "result", "\(result.readableBytes) bytes, differing from the \(payloadSize)-byte payload at byte \(difference)")
            }
            tally.jobs = 1
            tally.completed = 1
            tally.latencies.record(nanoseconds: end - start)
        } else {
            outcome.report.add("verify_s", .null)
            outcome.report.add("first_difference_at", .null)
        }
        result = nil
        Self.addLoadResults(to: &outcome.report, tally: tally, seconds: seconds, labels: ("jobs", "jobs/s"))
        let megabytesPerSecond = tally.jobs > 0 ? Double(payloadSize) / seconds / 1e6 : nil
        outcome.report.add("generate_s", .double(generationSeconds, digits: 3))
        outcome.report.add("round_trip_s", .double(seconds, digits: 3))
        outcome.report.add("payload_mb_per_s", megabytesPerSecond.map { .double($0, digits: 1) } ?? .null)
        outcome.report.row("round trip", "\(BenchReport.fixed(seconds, 3)) s for \(BenchReport.bytes(payloadSize))")
        outcome.report.row("payload MB/s", megabytesPerSecond.map { BenchReport.fixed($0, 1) } ?? "–")
        Self.addProcessStats(
            to: &outcome.report, prefix: "", samples: samples, seconds: seconds, jobs: tally.jobs, serverPID: serverPid)
        if serverPid != nil {
            let before = samples.server.before?.rssBytes
            let peak = samples.server.after?.peakRSSBytes
            outcome.report.add("server_rss_before_bytes", before.map { .int($0) } ?? .null)
            outcome.report.add("server_peak_rss_bytes", peak.map { .int($0) } ?? .null)
            outcome.report.add("server_peak_rss_since_start", .bool(!samples.peakReset))
            outcome.report.row("server RSS before", before.map(BenchReport.bytes) ?? "–")
            outcome.report.row(
                "server peak RSS",
                peak.map { BenchReport.bytes($0) + (samples.peakReset ? "" : " (since the server started)") } ?? "–")
        }
        outcome.report.add("bench_peak_rss_bytes", benchPeak.map { .int($0) } ?? .null)
        outcome.report.row(
            "bench peak RSS", benchPeak.map { BenchReport.bytes($0) + (benchPeakReset ? "" : " (since the bench started)") } ?? "–")
        return outcome
    }
}
