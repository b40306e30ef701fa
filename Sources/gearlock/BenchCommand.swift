import ArgumentParser
import Gearman
import NIOCore
import NIOPosix

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
            idle: opens --connections idle connections (--sleeping-workers of them register a \
            function and sleep, as workers with nothing to do), measures the server's CPU over \
            --duration seconds while they are open and counts the NOOPs the sleeping workers get \
            (there is no job: each is a needless wake-up), and runs a foreground load of \
            --load-duration seconds before opening them and again while they are open, to compare. \
            Every idle connection must still answer an ECHO_REQ at the end.
            huge: one client submits one foreground job of --payload-size bytes (up to 4 GiB - 1 \
            minus the packet's other fields) to one worker that sends it back; the result is \
            checked byte for byte against the payload computed again, so no second copy is kept.

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
        case foreground, background, echo, idle, huge
    }

    enum Driver: String, ExpressibleByArgument, CaseIterable {
        case library, raw
    }

    @OptionGroup var connection: ConnectionOptionGroup

    @Option(help: "What to measure: foreground, background, echo, idle or huge.")
    var mode: Mode = .foreground

    @Option(
        help: ArgumentHelp(
            "What drives the load — library (GearmanClient and GearmanWorker) or raw (NIO handlers speaking the protocol, the cheapest load generator): foreground jobs (also idle mode's load), and background mode's enqueue and drain with --jobs.",
            discussion: "raw needs no credentials: it does not authenticate."))
    var driver: Driver = .library

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

    @Option(help: "Idle mode: connections to hold open (this process raises its open-file limit to fit them).")
    var connections = 1000

    @Option(help: "Idle mode: how many of the idle connections register a function and sleep (default: half).")
    var sleepingWorkers: Int?

    @Option(help: "Idle mode: seconds of foreground load before the idle connections open and again while they are open (0: none).")
    var loadDuration: Double = 5

    @Flag(help: "Print one JSON line instead of the table.")
    var json = false

    func validate() throws {
        guard connection.servers.count <= 1 else { throw ValidationError("bench measures one server: give --server once") }
        guard workers >= 1 || mode == .echo || mode == .huge else { throw ValidationError("--workers must be 1 or more") }
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
        if mode == .idle {
            guard connections >= 1 else { throw ValidationError("--connections must be 1 or more") }
            if let sleepingWorkers, !(0...connections).contains(sleepingWorkers) {
                throw ValidationError("--sleeping-workers must be between 0 and --connections (\(connections))")
            }
            guard loadDuration >= 0 else { throw ValidationError("--load-duration must not be negative") }
        } else if sleepingWorkers != nil {
            throw ValidationError("--sleeping-workers needs --mode idle")
        }
        if driver == .raw {
            guard mode == .foreground || mode == .idle || (mode == .background && jobs != nil) else {
                throw ValidationError("--driver raw needs --mode foreground or idle, or --mode background with --jobs")
            }
            guard connection.principal == nil else { throw ValidationError("--driver raw does not authenticate: use --driver library with credentials") }
        }
        if mode == .huge {
            // SUBMIT_JOB carries the function and an empty unique, WORK_COMPLETE the handle (at most
            // 63 bytes), each NUL-terminated, within the protocol's 4 GiB - 1.
            let largest = Int(UInt32.max) - 2 - max(function?.utf8.count ?? 64, 64)
            guard payloadSize <= largest else {
                throw ValidationError("--payload-size: at most \(largest) bytes fit in one Gearman packet")
            }
        }
        if let serverPid, ProcessStats.sample(pid: serverPid) == nil {
            throw ValidationError("--server-pid \(serverPid): no such process in /proc")
        }
        if let function, function.isEmpty || function.utf8.contains(0) {
            throw ValidationError("-f: the function name must be non-empty and contain no NUL byte")
        }
    }

    static func nanoseconds(_ seconds: Double) -> UInt64 { UInt64((seconds * 1e9).rounded()) }

    func run() async throws {
        // The load generator's tasks run on the event loops that do its I/O, not on Swift's
        // cooperative pool: no thread hop per request and reply, so the bench takes less of the
        // machine it shares with the server it measures (the same for every server).
        NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
        let options = try connection.connectionOptions()
        let server = options.servers[0]
        let function = self.function ?? "gearlock-bench-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        // --jobs: job i carries payload i. Otherwise two payloads per in-flight slot.
        let counted = mode == .background ? jobs : nil
        let jobTimeout = Duration.nanoseconds(Int64(Self.nanoseconds(self.jobTimeout)))
        // Huge mode: one worker, one client, one job.
        let (workers, clients, inFlight) = mode == .huge ? (1, 1, 1) : (self.workers, self.clients, self.inFlight)
        let seconds: (Double) -> String = { BenchReport.fixed($0, $0.rounded() == $0 ? 0 : 1) }

        var report = BenchReport()
        report.heading = [
            "gearlock bench: \(mode.rawValue), \(server)\(options.tls == nil ? "" : " over TLS")"
                + (serverPid.map { " (server pid \($0))" } ?? ""),
            (mode == .echo ? "" : "\(workers) workers (concurrency \(workerConcurrency)), ")
                + "\(clients) clients × \(inFlight) in flight, \(payloadSize)-byte payloads, "
                + (counted.map { "\($0) jobs" + (uniqueKeys ? " with unique keys" : "") }
                    ?? (mode == .huge
                        ? "one job"
                        : "\(seconds(mode == .idle ? loadDuration : duration)) s measured after \(seconds(warmup)) s warm-up")),
        ]
        if mode == .idle {
            report.heading.append(
                "\(connections) idle connections (\(sleepingWorkers ?? connections / 2) sleeping workers), \(seconds(duration)) s idle")
        }
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
        if mode == .huge {
            return try await finish(await runHuge(report: report, options: options, function: function, jobTimeout: jobTimeout))
        }
        let payloads = BenchPayloads(
            size: payloadSize, count: counted ?? clients * inFlight * 2, seed: UInt64.random(in: 0...UInt64.max))
        report.add("driver", .string(driver.rawValue))
        if driver == .raw && mode == .foreground {
            return try await finish(
                await runRawForeground(
                    report: report, options: options, function: function, payloads: payloads, jobTimeout: jobTimeout))
        }

        // Idle mode with the raw driver opens its own clients for each load window.
        let libraryClients = driver == .raw && mode == .idle ? 0 : clients
        let clientList = (0..<libraryClients).map { _ in GearmanClient(configuration: .init(connection: options)) }
        defer { for client in clientList { client.shutdown() } }
        if let failure = await Self.connect(clientList, timeout: options.connectTimeout) {
            StandardStream.printError("gearlock bench: cannot reach \(server): \(failure)")
            throw ExitCode.failure
        }

        // Foreground: the workers are up and registered before the clock starts.
        var pool: BenchWorkerPool?
        if mode == .foreground || (mode == .idle && driver == .library) {
            pool = BenchWorkerPool(
                count: workers, concurrency: workerConcurrency, options: options, function: function,
                handler: { job in job.payload })
            await waitForWorkers(workers, options: options, function: function)
        }
        if mode == .idle {
            let outcome = await runIdle(
                report: report, clients: clientList, options: options, function: function, payloads: payloads,
                jobTimeout: jobTimeout)
            await pool?.stop()
            return try await finish(outcome)
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
        case .idle, .huge: preconditionFailure("\(mode) is measured by its own function")
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
            if driver == .raw, case .backgroundCounted(let function, let tickets, let uniqueKeys) = operation {
                tally = await BenchRawDriver.enqueue(
                    count: clients, inFlight: inFlight, function: function, payloads: payloads, tickets: tickets,
                    uniqueKeys: uniqueKeys, options: options, timeout: .nanoseconds(Int64(Self.nanoseconds(enqueueTimeout))))
            } else {
                tally = await BenchLoad.run(
                    clients: clientList, slotsPerClient: inFlight, operation: operation, payloads: payloads,
                    window: window, jobTimeout: jobTimeout)
            }
            samples.finish(serverPID: serverPid)
            measured = LoadWindow(start: begin, end: max(tally.lastCompletion, begin + 1))
        } else {
            let window: LoadWindow
            (tally, samples, window) = await measure(
                operation, clients: clientList, payloads: payloads, seconds: duration, jobTimeout: jobTimeout)
            // Background mode stops early when the queue budget runs out: the rate is over the time used.
            measured = window
            if mode == .background && budget.isExhausted && tally.lastCompletion > window.start {
                measured.end = tally.lastCompletion
            }
        }
        await pool?.stop()
        var errors = tally.errors
        var mismatches = tally.mismatches
        var firstError = tally.firstError

        Self.addLoadResults(
            to: &report, tally: tally, seconds: measured.seconds,
            labels: mode == .background ? ("jobs enqueued", "enqueued/s") : (mode == .echo ? ("jobs", "echoes/s") : ("jobs", "jobs/s")))
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

        if serverPid != nil { Self.addPeakRSS(to: &report, samples: samples) }
        try await finish(BenchOutcome(report: report, errors: errors, mismatches: mismatches, firstError: firstError))
    }

    /// Ends every mode: adds the error counts, prints the table or the JSON line, and exits 1
    /// when anything failed or differed.
    private func finish(_ outcome: BenchOutcome) async throws {
        var report = outcome.report
        report.add("errors", .int(outcome.errors))
        report.add("mismatches", .int(outcome.mismatches))
        report.add("first_error", outcome.firstError.map { .string($0) } ?? .null)
        report.row("errors", "\(outcome.errors)")
        report.row("mismatches", "\(outcome.mismatches)")

        let output = json ? report.json() : report.table()
        try await StandardStream.writeAll(output, to: STDOUT_FILENO)
        if let firstError = outcome.firstError {
            StandardStream.printError("gearlock bench: \(outcome.errors) error(s); the first: \(firstError)")
        }
        if outcome.mismatches > 0 {
            StandardStream.printError("gearlock bench: \(outcome.mismatches) result(s) differed from the payload sent")
        }
        if outcome.errors > 0 || outcome.mismatches > 0 { throw ExitCode.failure }
    }

    /// Runs `operation` on every client's `--in-flight` slots for `--warmup` and then `seconds`
    /// measured, sampling the server and this process over the measured window.
    func measure(
        _ operation: BenchOperation, clients: [GearmanClient], payloads: BenchPayloads, seconds: Double, jobTimeout: Duration
    ) async -> (LoadTally, WindowSamples, LoadWindow) {
        let begin = benchNow()
        let window = LoadWindow(
            start: begin + Self.nanoseconds(warmup), end: begin + Self.nanoseconds(warmup) + Self.nanoseconds(seconds))
        async let sampled = WindowSamples.take(serverPID: serverPid, window: window)
        let tally = await BenchLoad.run(
            clients: clients, slotsPerClient: inFlight, operation: operation, payloads: payloads, window: window,
            jobTimeout: jobTimeout)
        return (tally, await sampled, window)
    }

    /// The count, rate and latencies of a load: `jobs`, `jobs_per_s`, `latency_*` (with `prefix`
    /// before each key, e.g. `baseline_`), and their table rows (the latency rows with `rowPrefix`).
    static func addLoadResults(
        to report: inout BenchReport, tally: LoadTally, seconds: Double, labels: (count: String, rate: String),
        prefix: String = "", rowPrefix: String = ""
    ) {
        let rate = Double(tally.jobs) / seconds
        report.add("\(prefix)jobs", .int(tally.jobs))
        report.add("\(prefix)jobs_per_s", .double(rate, digits: 1))
        report.row(labels.count, "\(tally.jobs)")
        report.row(labels.rate, BenchReport.fixed(rate, 1))
        for (name, fraction) in [("p50", 0.5), ("p99", 0.99)] {
            let value = tally.latencies.percentile(fraction)
            report.add("\(prefix)latency_\(name)_us", value.map { .double(Double($0) / 1e3, digits: 1) } ?? .null)
            report.row("\(rowPrefix)latency \(name)", BenchReport.latency(value))
        }
        let maximum = tally.latencies.count > 0 ? tally.latencies.maximum : nil
        report.add("\(prefix)latency_max_us", maximum.map { .double(Double($0) / 1e3, digits: 1) } ?? .null)
        report.add("\(prefix)latency_mean_us", tally.latencies.mean.map { .double(Double($0) / 1e3, digits: 1) } ?? .null)
        report.row("\(rowPrefix)latency max", BenchReport.latency(maximum))
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
        let count: @Sendable (ByteBuffer) -> Void = { payload in
            if indexed {
                progress.jobDone(index: payloads.index(of: payload))
            } else {
                progress.jobDone(verified: payloads.isPayload(payload))
            }
        }
        var pool: BenchWorkerPool?
        var rawWorkers = BenchRawDriver.Connections()
        switch driver {
        case .library:
            pool = BenchWorkerPool(
                count: workers, concurrency: workerConcurrency, options: options, function: function,
                handler: { job in
                    count(job.payload)
                    return job.payload
                })
        case .raw:
            do {
                try await BenchRawDriver.startWorkers(
                    count: workers, concurrency: workerConcurrency, function: function, options: options,
                    tlsContext: try BenchRawDriver.tlsContext(options), onJob: count, into: &rawWorkers)
            } catch {
                StandardStream.printError("gearlock bench: drain workers cannot connect: \(error)")
            }
        }
        let deadline = start + Self.nanoseconds(drainTimeout)
        while progress.finishedAt == nil && benchNow() < deadline {
            try? await Task.sleep(nanoseconds: 2_000_000)
        }
        let end = progress.finishedAt ?? benchNow()
        samples.finish(serverPID: serverPID)
        await pool?.stop()
        await rawWorkers.close()
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

    func waitForWorkers(_ workers: Int, options: GearmanConnectionOptions, function: String) async {
        let admin = GearmanAdminClient(server: options.servers[0], options: options)
        defer { admin.close() }
        if await !admin.waitForWorkers(workers, function: function, timeout: .seconds(10)) {
            StandardStream.printError("gearlock bench: the server's `status` did not show \(workers) workers for \(function) within 10 s; starting anyway")
        }
    }

    /// Opens every client's connection (with an ECHO_REQ); the first failure, or nil.
    static func connect(_ clients: [GearmanClient], timeout: Duration) async -> String? {
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

    /// The server's RSS at the window's start and its peak.
    static func addPeakRSS(to report: inout BenchReport, samples: WindowSamples) {
        let peak = samples.server.after?.peakRSSBytes
        let before = samples.server.before?.rssBytes
        report.add("server_rss_before_bytes", before.map { .int($0) } ?? .null)
        report.add("server_peak_rss_bytes", peak.map { .int($0) } ?? .null)
        report.add("server_peak_rss_since_start", .bool(!samples.peakReset))
        report.row(
            "server peak RSS",
            peak.map { BenchReport.bytes($0) + (samples.peakReset ? "" : " (since the server started)") } ?? "–")
    }

    static func addProcessStats(
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

}
