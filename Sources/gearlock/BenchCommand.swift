import ArgumentParser
import Gearman
import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// `gearlock bench`: load any Gearman server (Gearlock or gearmand) and measure it.
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure a job server: jobs/s, latency, and the server's CPU time and peak memory.",
        discussion: """
            Runs the load generator and the workers in this process, against the server given with \
            --server (plaintext, or TLS with the --tls options), so the same command measures \
            Gearlock and gearmand.

            foreground: --workers GearmanWorker connections echo every payload back; --clients \
            GearmanClient connections keep --in-flight jobs each outstanding for --warmup + \
            --duration seconds. Every result is compared byte for byte with what was sent.
            background: the clients enqueue background jobs for the same time with no worker \
            running (up to --max-queued-bytes), then the workers start and the drain is timed; the \
            workers check every payload. With --jobs N, the clients enqueue exactly N jobs instead \
            (as fast as the server acknowledges them; --warmup and --duration do not apply), job i \
            carrying payload i, and the drain checks that every job is delivered exactly once.
            echo: ECHO_REQ round trips, no workers.

            jobs/s and the latencies count the jobs that completed within the --duration window \
            (after the warm-up). With --server-pid, the server's CPU time (utime + stime from \
            /proc/PID/stat) over the window and its peak RSS (VmHWM from /proc/PID/status, reset \
            at the window's start when this user may write /proc/PID/clear_refs) are reported too.

            Exit status: 0 when every job completed and matched; 1 when any result differed from \
            its payload (a mismatch), any request failed, or the server could not be reached; 64 \
            for a usage error.
            """
    )

    enum Mode: String, ExpressibleByArgument, CaseIterable {
        case foreground, background, echo
    }

    @OptionGroup var connection: ConnectionOptionGroup

    @Option(help: "What to measure: foreground, background or echo.")
    var mode: Mode = .foreground

    @Option(help: "Worker connections (each its own GearmanWorker).")
    var workers = 4

    @Option(help: "Jobs each worker runs at once.")
    var workerConcurrency = 1

    @Option(help: "Client connections (each its own GearmanClient).")
    var clients = 4

    @Option(help: "Jobs (or echoes) each client keeps outstanding.")
    var inFlight = 16

    @Option(help: "Payload bytes per job.")
    var payloadSize = 100

    @Option(help: "Seconds measured.")
    var duration: Double = 10

    @Option(help: "Seconds of load before the measurement starts.")
    var warmup: Double = 1

    @Option(help: "The server's process id, to report its CPU time and peak RSS (Linux, same machine).")
    var serverPid: Int32?

    @Option(
        name: [.customShort("f"), .customLong("function")],
        help: "Function name for the jobs (default: a new name for every run).")
    var function: String?

    @Option(help: "Seconds one job may take before it counts as an error.")
    var jobTimeout: Double = 30

    @Option(help: "Background mode: stop enqueueing once this many bytes are queued (payload + 64 per job).")
    var maxQueuedBytes = 1 << 30

    @Option(help: "Background mode: seconds the drain may take.")
    var drainTimeout: Double = 120

    @Option(
        help: ArgumentHelp(
            "Background mode: enqueue exactly this many jobs, each with its own payload, and check that the drain delivers each exactly once.",
            discussion: "Replaces --warmup and --duration; needs --payload-size 8 or more (the payload carries the job's index)."))
    var jobs: Int?

    @Flag(help: "With --jobs: give job i the unique key \"i\" (as libgearman clients send a unique key with every job).")
    var uniqueKeys = false

    @Option(help: "With --jobs: seconds the enqueue may take.")
    var enqueueTimeout: Double = 120

    @Flag(help: "Print one JSON line instead of the table.")
    var json = false

    func validate() throws {
        guard connection.servers.count <= 1 else { throw ValidationError("bench measures one server: give --server once") }
        guard workers >= 1 || mode == .echo else { throw ValidationError("--workers must be 1 or more") }
        guard workerConcurrency >= 1 else { throw ValidationError("--worker-concurrency must be 1 or more") }
        guard clients >= 1 else { throw ValidationError("--clients must be 1 or more") }
        guard inFlight >= 1 else { throw ValidationError("--in-flight must be 1 or more") }
        guard payloadSize >= 0 else { throw ValidationError("--payload-size must not be negative") }
        guard duration > 0 else { throw ValidationError("--duration must be positive") }
        guard warmup >= 0 else { throw ValidationError("--warmup must not be negative") }
        guard jobTimeout > 0 else { throw ValidationError("--job-timeout must be positive") }
        guard drainTimeout > 0 else { throw ValidationError("--drain-timeout must be positive") }
        guard maxQueuedBytes > 0 else { throw ValidationError("--max-queued-bytes must be positive") }
        if let jobs {
            guard mode == .background else { throw ValidationError("--jobs needs --mode background") }
            guard jobs >= 1 else { throw ValidationError("--jobs must be 1 or more") }
            guard payloadSize >= 8 else { throw ValidationError("--jobs needs --payload-size 8 or more (the payload carries the job's index)") }
            guard enqueueTimeout > 0 else { throw ValidationError("--enqueue-timeout must be positive") }
        } else if uniqueKeys {
            throw ValidationError("--unique-keys needs --jobs")
        }
        if let serverPid, ProcessStats.sample(pid: serverPid) == nil {
            throw ValidationError("--server-pid \(serverPid): no such process in /proc")
        }
        if let function, function.isEmpty || function.utf8.contains(0) {
            throw ValidationError("-f: the function name must be non-empty and contain no NUL byte")
        }
    }

    private static func nanoseconds(_ seconds: Double) -> UInt64 { UInt64((seconds * 1e9).rounded()) }

    func run() async throws {
        let options = try connection.connectionOptions()
        let server = options.servers[0]
        let function = self.function ?? "gearlock-bench-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        // --jobs: job i carries payload i. Otherwise two payloads per in-flight slot.
        let counted = mode == .background ? jobs : nil
        let payloads = BenchPayloads(
            size: payloadSize, count: counted ?? clients * inFlight * 2, seed: UInt64.random(in: 0...UInt64.max))
        let jobTimeout = Duration.nanoseconds(Int64(Self.nanoseconds(self.jobTimeout)))

        var report = BenchReport()
        report.heading = [
            "gearlock bench: \(mode.rawValue), \(server)\(options.tls == nil ? "" : " over TLS")"
                + (serverPid.map { " (server pid \($0))" } ?? ""),
            (mode == .echo ? "" : "\(workers) workers (concurrency \(workerConcurrency)), ")
                + "\(clients) clients × \(inFlight) in flight, \(payloadSize)-byte payloads, "
                + (counted.map { "\($0) jobs" + (uniqueKeys ? " with unique keys" : "") }
                    ?? "\(BenchReport.fixed(duration, duration.rounded() == duration ? 0 : 1)) s measured after "
                    + "\(BenchReport.fixed(warmup, warmup.rounded() == warmup ? 0 : 1)) s warm-up"),
        ]
        report.add("mode", .string(mode.rawValue))
        report.add("server", .string(server.description))
        report.add("tls", .bool(options.tls != nil))
        report.add("function", .string(function))
        report.add("workers", .int(mode == .echo ? 0 : workers))
        report.add("worker_concurrency", .int(workerConcurrency))
        report.add("clients", .int(clients))
        report.add("in_flight", .int(inFlight))
        report.add("payload_size", .int(payloadSize))
        report.add("warmup_s", .double(warmup, digits: 3))
        report.add("duration_s", .double(duration, digits: 3))
        report.add("jobs_target", counted.map { .int($0) } ?? .null)
        report.add("unique_keys", .bool(counted != nil && uniqueKeys))

        let clientList = (0..<clients).map { _ in GearmanClient(configuration: .init(connection: options)) }
        defer { for client in clientList { client.shutdown() } }
        if let failure = await Self.connect(clientList, timeout: options.connectTimeout) {
            Self.printError("gearlock bench: cannot reach \(server): \(failure)")
            throw ExitCode.failure
        }

        // Foreground: the workers are up and registered before the clock starts.
        var pool: BenchWorkerPool?
        if mode == .foreground {
            pool = BenchWorkerPool(
                count: workers, concurrency: workerConcurrency, options: options, function: function,
                handler: { job in job.payload })
            await waitForWorkers(options: options, function: function)
        }

        let operation: BenchOperation
        let budget = QueueBudget(bytes: maxQueuedBytes)
        switch mode {
        case .foreground: operation = .foreground(function: function)
        case .background:
            operation =
                counted.map { .backgroundCounted(function: function, tickets: JobTickets(count: $0), uniqueKeys: uniqueKeys) }
                ?? .background(function: function, budget: budget)
        case .echo: operation = .echo
        }
        let begin = benchNow()
        let tally: LoadTally
        var samples: WindowSamples
        var measured: LoadWindow
        if counted != nil {
            // --jobs: no warm-up; measured from the start until the last JOB_CREATED.
            let window = LoadWindow(start: begin, end: begin + Self.nanoseconds(enqueueTimeout))
            samples = WindowSamples()
            samples.start(serverPID: serverPid, resetPeak: true)
            tally = await BenchLoad.run(
                clients: clientList, slotsPerClient: inFlight, operation: operation, payloads: payloads, window: window,
                jobTimeout: jobTimeout)
            samples.finish(serverPID: serverPid)
            measured = LoadWindow(start: begin, end: max(tally.lastCompletion, begin + 1))
        } else {
            let window = LoadWindow(
                start: begin + Self.nanoseconds(warmup), end: begin + Self.nanoseconds(warmup) + Self.nanoseconds(duration))
            async let sampled = WindowSamples.take(serverPID: serverPid, window: window)
            tally = await BenchLoad.run(
                clients: clientList, slotsPerClient: inFlight, operation: operation, payloads: payloads, window: window,
                jobTimeout: jobTimeout)
            samples = await sampled
            // Background mode stops early when the queue budget runs out: the rate is over the time used.
            measured = window
            if mode == .background && budget.isExhausted && tally.lastCompletion > window.start {
                measured.end = tally.lastCompletion
            }
        }
        await pool?.stop()
        let rate = Double(tally.jobs) / measured.seconds
        var errors = tally.errors
        var mismatches = tally.mismatches
        var firstError = tally.firstError

        report.add("jobs", .int(tally.jobs))
        report.add("jobs_per_s", .double(rate, digits: 1))
        report.row(mode == .background ? "jobs enqueued" : "jobs", "\(tally.jobs)")
        report.row(mode == .background ? "enqueued/s" : (mode == .echo ? "echoes/s" : "jobs/s"), BenchReport.fixed(rate, 1))
        for (name, fraction) in [("p50", 0.5), ("p99", 0.99)] {
            let value = tally.latencies.percentile(fraction)
            report.add("latency_\(name)_us", value.map { .double(Double($0) / 1e3, digits: 1) } ?? .null)
            report.row("latency \(name)", BenchReport.latency(value))
        }
        let maximum = tally.latencies.count > 0 ? tally.latencies.maximum : nil
        report.add("latency_max_us", maximum.map { .double(Double($0) / 1e3, digits: 1) } ?? .null)
        report.add("latency_mean_us", tally.latencies.mean.map { .double(Double($0) / 1e3, digits: 1) } ?? .null)
        report.row("latency max", BenchReport.latency(maximum))
        if mode == .background {
            report.add("enqueue_capped", .bool(budget.isExhausted))
            report.add("enqueue_s", .double(measured.seconds, digits: 3))
            if budget.isExhausted {
                report.row("enqueue stopped", "after \(BenchReport.fixed(measured.seconds, 2)) s: --max-queued-bytes reached")
            }
            if let counted {
                report.row("enqueue time", "\(BenchReport.fixed(measured.seconds, 2)) s")
                if tally.completed != counted {
                    errors += 1
                    firstError = firstError ?? "enqueued \(tally.completed) of \(counted) jobs within --enqueue-timeout"
                }
            }
        }
        Self.addProcessStats(
            to: &report, prefix: "", samples: samples, seconds: measured.seconds, jobs: tally.jobs, serverPID: serverPid)

        if mode == .background {
            let drain = await runDrain(
                enqueued: tally.completed, indexed: counted != nil, options: options, function: function,
                payloads: payloads, serverPID: serverPid)
            report.add("enqueued", .int(tally.completed))
            report.add("drained", .int(drain.progress.count))
            report.add("drain_s", .double(drain.seconds, digits: 3))
            let drainRate = drain.seconds > 0 ? Double(drain.progress.count) / drain.seconds : 0
            report.add("drain_per_s", .double(drainRate, digits: 1))
            report.row("drained", "\(drain.progress.count) of \(tally.completed) in \(BenchReport.fixed(drain.seconds, 2)) s")
            report.row("drained/s", BenchReport.fixed(drainRate, 1))
            Self.addProcessStats(
                to: &report, prefix: "drain ", samples: drain.samples, seconds: drain.seconds, jobs: drain.progress.count,
                serverPID: serverPid)
            mismatches += drain.progress.mismatches
            if counted != nil {
                // Exactly once: every acknowledged job delivered, none twice, none left on the server.
                let duplicates = drain.progress.duplicates
                let missing = max(0, tally.completed - drain.progress.count)
                let leftover = await leftoverJobs(options: options, function: function)
                report.add("duplicates", .int(duplicates))
                report.add("missing", .int(missing))
                report.add("left_on_server", leftover.map { .int($0) } ?? .null)
                report.row("duplicates", "\(duplicates)")
                report.row("missing", "\(missing)")
                report.row("left on server", leftover.map { "\($0)" } ?? "– (status did not answer)")
                if duplicates > 0 {
                    errors += 1
                    firstError = firstError ?? "\(duplicates) job(s) delivered more than once"
                }
                if let leftover, leftover > 0 {
                    errors += 1
                    firstError = firstError ?? "the server still holds \(leftover) job(s) of \(function) after the drain"
                }
            }
            if drain.progress.count != tally.completed {
                errors += 1
                firstError = firstError ?? "drained \(drain.progress.count) of \(tally.completed) jobs within --drain-timeout"
            }
            samples.server.after = drain.samples.server.after
        }

        if serverPid != nil {
            let peak = samples.server.after?.peakRSSBytes
            report.add("server_peak_rss_bytes", peak.map { .int($0) } ?? .null)
            report.add("server_peak_rss_since_start", .bool(!samples.peakReset))
            report.row(
                "server peak RSS",
                peak.map { BenchReport.bytes($0) + (samples.peakReset ? "" : " (since the server started)") } ?? "–")
        }
        report.add("errors", .int(errors))
        report.add("mismatches", .int(mismatches))
        report.add("first_error", firstError.map { .string($0) } ?? .null)
        report.row("errors", "\(errors)")
        report.row("mismatches", "\(mismatches)")

        let output = json ? report.json() : report.table()
        try await StandardStream.writeAll(output, to: STDOUT_FILENO)
        if let firstError {
            Self.printError("gearlock bench: \(errors) error(s); the first: \(firstError)")
        }
        if mismatches > 0 {
            Self.printError("gearlock bench: \(mismatches) result(s) differed from the payload sent")
        }
        if errors > 0 || mismatches > 0 { throw ExitCode.failure }
    }

    /// Background mode's second half: start the workers on the full queue and time the drain.
    /// With `indexed` (`--jobs`), each job's payload is its own and deliveries are counted per job.
    private func runDrain(
        enqueued: Int, indexed: Bool, options: GearmanConnectionOptions, function: String, payloads: BenchPayloads,
        serverPID: Int32?
    ) async -> (progress: DrainProgress, seconds: Double, samples: WindowSamples) {
        let progress = DrainProgress(target: enqueued, indices: indexed ? payloads.count : nil)
        var samples = WindowSamples()
        guard enqueued > 0 else { return (progress, 0, samples) }
        samples.start(serverPID: serverPID, resetPeak: false)
        let start = benchNow()
        let pool = BenchWorkerPool(
            count: workers, concurrency: workerConcurrency, options: options, function: function,
            handler: { job in
                if indexed {
                    progress.jobDone(index: payloads.index(of: job.payload))
                } else {
                    progress.jobDone(verified: payloads.isPayload(job.payload))
                }
                return job.payload
            })
        let deadline = start + Self.nanoseconds(drainTimeout)
        while progress.finishedAt == nil && benchNow() < deadline {
            try? await Task.sleep(nanoseconds: 2_000_000)
        }
        let end = progress.finishedAt ?? benchNow()
        samples.finish(serverPID: serverPID)
        await pool.stop()
        return (progress, Double(end - start) / 1e9, samples)
    }

    /// After the drain: the jobs the server's `status` still shows for `function` (queued or
    /// running), 0 once it no longer lists it; nil if it does not answer. The last WORK_COMPLETEs
    /// may still be on their way: a non-zero count is asked again for up to 2 s.
    private func leftoverJobs(options: GearmanConnectionOptions, function: String) async -> Int? {
        let admin = GearmanAdminClient(server: options.servers[0], options: options)
        defer { admin.close() }
        let deadline = ContinuousClock.now + .seconds(2)
        var left: Int?
        repeat {
            guard let status = try? await admin.status(timeout: .seconds(2)) else { return left }
            left = status.first(where: { $0.name == function })?.total ?? 0
            if left == 0 { return 0 }
            try? await Task.sleep(for: .milliseconds(20))
        } while ContinuousClock.now < deadline
        return left
    }

    private func waitForWorkers(options: GearmanConnectionOptions, function: String) async {
        let admin = GearmanAdminClient(server: options.servers[0], options: options)
        defer { admin.close() }
        if await !admin.waitForWorkers(workers, function: function, timeout: .seconds(10)) {
            Self.printError("gearlock bench: the server's `status` did not show \(workers) workers for \(function) within 10 s; starting anyway")
        }
    }

    /// Opens every client's connection (with an ECHO_REQ); the first failure, or nil.
    private static func connect(_ clients: [GearmanClient], timeout: Duration) async -> String? {
        await withTaskGroup(of: String?.self) { group in
            for client in clients {
                group.addTask {
                    do throws(GearmanError) {
                        _ = try await client.echo(ByteBuffer(string: "gearlock bench"), timeout: timeout + .seconds(5))
                        return nil
                    } catch {
                        return error.description
                    }
                }
            }
            var failure: String?
            for await result in group where failure == nil {
                failure = result
            }
            return failure
        }
    }

    private static func addProcessStats(
        to report: inout BenchReport, prefix: String, samples: WindowSamples, seconds: Double, jobs: Int, serverPID: Int32?
    ) {
        let key = prefix.isEmpty ? "" : String(prefix.dropLast()) + "_"
        if serverPID != nil {
            if let cpu = samples.serverCPU, seconds > 0 {
                let perJob = jobs > 0 ? cpu / Double(jobs) * 1e6 : nil
                report.add("\(key)server_cpu_s", .double(cpu, digits: 3))
                report.add("\(key)server_cpu_pct", .double(cpu / seconds * 100, digits: 1))
                report.add("\(key)server_cpu_us_per_job", perJob.map { .double($0, digits: 2) } ?? .null)
                report.row(
                    "\(prefix)server CPU",
                    "\(BenchReport.fixed(cpu, 2)) s (\(BenchReport.fixed(cpu / seconds * 100, 1)) % of one core"
                        + (perJob.map { ", \(BenchReport.fixed($0, 1)) µs/job" } ?? "") + ")")
            } else {
                report.add("\(key)server_cpu_s", .null)
                report.row("\(prefix)server CPU", "– (the server's /proc entry could not be read)")
            }
        }
        if let cpu = samples.benchCPU, seconds > 0 {
            report.add("\(key)bench_cpu_s", .double(cpu, digits: 3))
            report.add("\(key)bench_cpu_pct", .double(cpu / seconds * 100, digits: 1))
            report.row("\(prefix)bench CPU", "\(BenchReport.fixed(cpu, 2)) s (\(BenchReport.fixed(cpu / seconds * 100, 1)) % of one core)")
        }
    }

    private static func printError(_ text: String) {
        var bytes = Array((text + "\n").utf8)[...]
        while !bytes.isEmpty {
            let written = bytes.withUnsafeBytes { write(STDERR_FILENO, $0.baseAddress, $0.count) }
            if written < 0 && errno == EINTR { continue }
            guard written > 0 else { return }
            bytes = bytes.dropFirst(written)
        }
    }
}
