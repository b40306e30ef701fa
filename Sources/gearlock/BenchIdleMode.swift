import Gearman
import GearmanTLS

/// `gearlock bench --mode idle`: many idle connections, the server's CPU while they are open, the
/// NOOPs its sleeping workers get, and a foreground load before and while they are open.
extension BenchCommand {
    /// Runs idle mode once the load's clients are connected and its workers registered.
    ///
    /// 1. The foreground load alone (`--warmup` + `--load-duration`): the baseline.
    /// 2. The server's RSS; then `--connections` idle connections open, `--sleeping-workers` of
    ///    them registered for their own function and asleep; the server's RSS again.
    /// 3. `--duration` seconds with nothing to do: the server's CPU, and the NOOPs that arrive.
    /// 4. The same foreground load while the idle connections stay open.
    /// 5. ECHO_REQ on every idle connection: all must answer.
    func runIdle(
        report: BenchReport, clients: [GearmanClient], options: GearmanConnectionOptions, function: String,
        payloads: BenchPayloads, jobTimeout: Duration
    ) async -> BenchOutcome {
        var outcome = BenchOutcome(report: report)
        let sleeping = sleepingWorkers ?? connections / 2
        let idleFunction = function + "-idle"
        outcome.report.add("connections", .int(connections))
        outcome.report.add("sleeping_workers", .int(sleeping))
        outcome.report.add("load_duration_s", .double(loadDuration, digits: 3))

        // Every idle connection, the load's clients and workers, the admin connection, and NIO's own.
        let needed = connections + self.clients + workers + 64
        do {
            outcome.report.add("fd_limit", .int(try FileDescriptorLimit.raise(toAtLeast: needed)))
        } catch {
            outcome.fail(error.description)
            return outcome
        }

        if let serverPid, let limit = ProcessStats.openFileLimit(pid: serverPid), limit < connections + 64 {
            StandardStream.printError(
                "gearlock bench: the server may open \(limit) files (its RLIMIT_NOFILE), too few for \(connections) connections: "
                    + "start it with a higher `ulimit -n`")
        }
        outcome.report.add("server_fd_limit", serverPid.flatMap { ProcessStats.openFileLimit(pid: $0) }.map { .int($0) } ?? .null)

        // With the raw driver, its workers stay for both load windows; each window has its own clients.
        var rawWorkers = BenchRawDriver.Connections()
        let tlsContext: TLSContext?
        do {
            tlsContext = try BenchRawDriver.tlsContext(options)
            if driver == .raw && loadDuration > 0 {
                try await BenchRawDriver.startWorkers(
                    count: workers, concurrency: workerConcurrency, function: function, options: options,
                    tlsContext: tlsContext, into: &rawWorkers)
                await waitForWorkers(workers, options: options, function: function)
            }
        } catch {
            await rawWorkers.close()
            outcome.fail("cannot reach \(options.servers[0]): \(error)")
            return outcome
        }
        func measureLoad() async -> (LoadTally, WindowSamples, LoadWindow)? {
            guard loadDuration > 0 else { return nil }
            switch driver {
            case .library:
                return await measure(
                    .foreground(function: function), clients: clients, payloads: payloads, seconds: loadDuration,
                    jobTimeout: jobTimeout)
            case .raw:
                do {
                    return try await measureRawLoad(
                        function: function, payloads: payloads, seconds: loadDuration, jobTimeout: jobTimeout,
                        options: options, tlsContext: tlsContext)
                } catch {
                    let failed = LoadTally(errors: 1, firstError: "cannot reach \(options.servers[0]): \(error)")
                    let now = benchNow()
                    return (failed, WindowSamples(), LoadWindow(start: now, end: now + 1))
                }
            }
        }

        let baseline = await measureLoad()
        if case let (tally, samples, window)? = baseline {
            Self.addLoadResults(
                to: &outcome.report, tally: tally, seconds: window.seconds,
                labels: ("baseline jobs (no idle connections)", "baseline jobs/s"), prefix: "baseline_", rowPrefix: "baseline ")
            Self.addProcessStats(
                to: &outcome.report, prefix: "baseline ", samples: samples, seconds: window.seconds, jobs: tally.jobs,
                serverPID: serverPid)
            outcome.count(tally)
        }

        // Open the idle connections, from the server's RSS before to its RSS after.
        let rssBefore = serverPid.flatMap { ProcessStats.sample(pid: $0)?.rssBytes }
        let peakReset = serverPid.map { ProcessStats.resetPeakRSS(pid: $0) } ?? false
        let openStart = benchNow()
        let idle = await IdleConnectionSet.open(count: connections, sleeping: sleeping, function: idleFunction, options: options)
        let openSeconds = Double(benchNow() - openStart) / 1e9
        if idle.failures > 0 {
            outcome.fail(
                "\(idle.failures) of \(connections) idle connections could not be set up (none is tried after the first failure); "
                    + "the first: \(idle.firstFailure ?? "?")")
        }
        let registered = await registeredWorkers(
            for: idleFunction, expected: idle.sleepingWorkers, options: options, timeout: .seconds(10) + .milliseconds(connections))
        if registered != idle.sleepingWorkers {
            outcome.fail(
                "the server's `status` shows \(registered.map(String.init) ?? "no answer") workers for \(idleFunction), "
                    + "not the \(idle.sleepingWorkers) sleeping workers connected")
        }
        let rssConnected = serverPid.flatMap { ProcessStats.sample(pid: $0)?.rssBytes }
        outcome.report.add("connect_s", .double(openSeconds, digits: 3))
        outcome.report.add("connect_failures", .int(idle.failures))
        outcome.report.add("workers_registered", registered.map { .int($0) } ?? .null)
        outcome.report.row(
            "idle connections", "\(idle.channels.count) of \(connections) open in \(BenchReport.fixed(openSeconds, 2)) s")
        outcome.report.row("sleeping workers", "\(idle.sleepingWorkers) (status shows \(registered.map(String.init) ?? "–"))")
        if serverPid != nil {
            let perConnection: Double? =
                if let rssBefore, let rssConnected, !idle.channels.isEmpty {
                    Double(rssConnected - rssBefore) / Double(idle.channels.count)
                } else { nil }
            outcome.report.add("server_rss_before_bytes", rssBefore.map { .int($0) } ?? .null)
            outcome.report.add("server_rss_connected_bytes", rssConnected.map { .int($0) } ?? .null)
            outcome.report.add("server_rss_per_connection_bytes", perConnection.map { .double($0, digits: 0) } ?? .null)
            outcome.report.row(
                "server RSS",
                "\(rssBefore.map(BenchReport.bytes) ?? "–") → \(rssConnected.map(BenchReport.bytes) ?? "–")"
                    + (perConnection.map { " (\(BenchReport.fixed($0 / 1024, 2)) KiB per connection)" } ?? ""))
        }

        // Nothing to do: the server should sleep too.
        let noopsBefore = idle.counters.noopCount
        var idleSamples = WindowSamples()
        idleSamples.start(serverPID: serverPid, resetPeak: false)
        await benchSleep(until: benchNow() + Self.nanoseconds(duration))
        idleSamples.finish(serverPID: serverPid)
        let idleNoops = idle.counters.noopCount - noopsBefore
        Self.addProcessStats(
            to: &outcome.report, prefix: "idle ", samples: idleSamples, seconds: duration, jobs: 0, serverPID: serverPid)
        outcome.report.add("noops_idle", .int(idleNoops))
        outcome.report.row("NOOPs while idle", "\(idleNoops) (to \(idle.sleepingWorkers) sleeping workers, no job)")

        let loaded = await measureLoad()
        if driver == .raw {
            outcome.count(await BenchRawDriver.collect(rawWorkers, jobTimeout: jobTimeout))
            await rawWorkers.close()
        }
        if case let (tally, samples, window)? = loaded {
            Self.addLoadResults(
                to: &outcome.report, tally: tally, seconds: window.seconds,
                labels: ("jobs (idle connections open)", "jobs/s (idle connections open)"))
            Self.addProcessStats(
                to: &outcome.report, prefix: "", samples: samples, seconds: window.seconds, jobs: tally.jobs,
                serverPID: serverPid)
            outcome.count(tally)
        } else {
            for key in ["jobs", "jobs_per_s", "latency_p50_us", "latency_p99_us", "latency_max_us", "latency_mean_us"] {
                outcome.report.add(key, .null)
            }
        }
        let ratio: Double? =
            if case let (loadedTally, _, loadedWindow)? = loaded, case let (baseTally, _, baseWindow)? = baseline, baseTally.jobs > 0 {
                (Double(loadedTally.jobs) / loadedWindow.seconds) / (Double(baseTally.jobs) / baseWindow.seconds)
            } else { nil }
        outcome.report.add("load_ratio", ratio.map { .double($0, digits: 3) } ?? .null)
        if let ratio {
            outcome.report.row("jobs/s with / without idle connections", BenchReport.fixed(ratio, 2))
        }

        // Every idle connection must still be there.
        let answered = await idle.verify(timeout: .seconds(10) + .milliseconds(connections))
        let peak = serverPid.flatMap { ProcessStats.sample(pid: $0)?.peakRSSBytes }
        await idle.close()
        let noops = idle.counters.noopCount
        outcome.report.add("noops", .int(noops))
        outcome.report.add("unexpected_packets", .int(idle.counters.unexpectedCount))
        outcome.report.add("connections_open", .int(answered))
        outcome.report.add("connections_lost", .int(idle.counters.lostCount))
        outcome.report.row("NOOPs in all", "\(noops)")
        outcome.report.row(
            "still open at the end", "\(answered) of \(idle.channels.count) answered ECHO_REQ (\(idle.counters.lostCount) closed by the server)")
        if answered < idle.channels.count {
            outcome.fail("\(idle.channels.count - answered) of \(idle.channels.count) idle connections did not answer ECHO_REQ at the end")
        }
        if let unexpected = idle.counters.firstUnexpectedPacket {
            outcome.fail("\(idle.counters.unexpectedCount) unexpected packet(s) on the idle connections; the first: \(unexpected)")
        }
        if serverPid != nil {
            outcome.report.add("server_peak_rss_bytes", peak.map { .int($0) } ?? .null)
            outcome.report.add("server_peak_rss_since_start", .bool(!peakReset))
            outcome.report.row(
                "server peak RSS",
                peak.map { BenchReport.bytes($0) + (peakReset ? " (since the idle connections opened)" : " (since the server started)") }
                    ?? "–")
        }
        return outcome
    }

    /// The workers the server's `status` shows for `function`, asked until there are `expected`
    /// or `timeout` has passed; nil if it never answered.
    private func registeredWorkers(
        for function: String, expected: Int, options: GearmanConnectionOptions, timeout: Duration
    ) async -> Int? {
        let admin = GearmanAdminClient(server: options.servers[0], options: options)
        defer { admin.close() }
        let deadline = ContinuousClock.now + timeout
        var seen: Int?
        repeat {
            if let status = try? await admin.status(timeout: .seconds(5)) {
                seen = status.first(where: { $0.name == function })?.availableWorkers ?? 0
                if seen == expected { return seen }
            }
            try? await Task.sleep(for: .milliseconds(50))
        } while ContinuousClock.now < deadline
        return seen
    }
}

extension BenchOutcome {
    /// Adds a load's errors and mismatches.
    mutating func count(_ tally: LoadTally) {
        errors += tally.errors
        mismatches += tally.mismatches
        firstError = firstError ?? tally.firstError
    }
}
