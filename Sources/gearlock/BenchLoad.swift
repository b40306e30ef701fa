import Gearman
import NIOCore
import Synchronization

/// Monotonic nanoseconds (CLOCK_MONOTONIC), the bench's only clock.
@inline(__always)
func benchNow() -> UInt64 {
    NIODeadline.now().uptimeNanoseconds
}

/// Sleeps until `deadline` (a ``benchNow()`` value); returns at once if it has passed.
func benchSleep(until deadline: UInt64) async {
    let now = benchNow()
    guard deadline > now else { return }
    try? await Task.sleep(nanoseconds: deadline - now)
}

/// The measured part of a run: jobs that complete within it are counted and their latencies kept.
/// Before it is the warm-up; at its end the load tasks stop submitting.
struct LoadWindow: Sendable {
    var start: UInt64
    var end: UInt64

    var seconds: Double { Double(end - start) / 1e9 }
}

/// What the load tasks saw. Each task keeps its own, merged when the run is over.
struct LoadTally: Sendable {
    var latencies = LatencyRecorder()
    /// Jobs that completed inside the window (latencies has one entry for each).
    var jobs = 0
    /// Every job that completed without error, warm-up and stragglers included.
    var completed = 0
    var errors = 0
    var mismatches = 0
    var firstError: String?
    /// When the last job counted in the window completed.
    var lastCompletion: UInt64 = 0

    mutating func merge(_ other: LoadTally) {
        latencies.merge(other.latencies)
        jobs += other.jobs
        completed += other.completed
        errors += other.errors
        mismatches += other.mismatches
        firstError = firstError ?? other.firstError
        lastCompletion = max(lastCompletion, other.lastCompletion)
    }
}

/// A shared allowance of queued bytes for background mode, so a fast server does not have to hold
/// an unbounded queue. Each job is charged its payload plus 64 bytes.
final class QueueBudget: Sendable {
    private let remaining: Atomic<Int>
    private let exhausted = Atomic<Bool>(false)

    init(bytes: Int) {
        remaining = Atomic(bytes)
    }

    /// Takes `bytes` from the budget; false (and taking nothing more) once it is spent.
    func take(_ bytes: Int) -> Bool {
        let (_, left) = remaining.subtract(bytes, ordering: .relaxed)
        if left < 0 {
            exhausted.store(true, ordering: .relaxed)
            return false
        }
        return true
    }

    var isExhausted: Bool { exhausted.load(ordering: .relaxed) }
}

/// `--jobs N`: hands out the job indices 0..<N, each once, to the load tasks.
final class JobTickets: Sendable {
    let count: Int
    private let next = Atomic<Int>(0)

    init(count: Int) {
        self.count = count
    }

    /// The next index, or nil once all `count` are taken.
    func take() -> Int? {
        let index = next.wrappingAdd(1, ordering: .relaxed).oldValue
        return index < count ? index : nil
    }
}

/// Background mode's drain: counts the jobs the workers ran and notes when the last one arrived.
///
/// With `deliveries` (`--jobs`, where every payload is its job's own), it also counts how often
/// each job index arrived: `count` is then the number of different jobs delivered, and a job that
/// arrives again is a duplicate.
final class DrainProgress: Sendable {
    let target: Int
    private let drained = Atomic<Int>(0)
    private let mismatched = Atomic<Int>(0)
    private let duplicated = Atomic<Int>(0)
    private let finished = Atomic<UInt64>(0)
    /// Per job index: deliveries so far (saturating at 255); empty without `indices`.
    private let deliveries: Mutex<[UInt8]>

    init(target: Int, indices: Int? = nil) {
        self.target = target
        deliveries = Mutex([UInt8](repeating: 0, count: indices ?? 0))
    }

    func jobDone(verified: Bool) {
        if !verified { mismatched.add(1, ordering: .relaxed) }
        countDelivery()
    }

    /// A job whose payload is job `index` (nil: it was none of the payloads sent).
    func jobDone(index: Int?) {
        let first = deliveries.withLock { counts -> Bool? in
            guard let index, counts.indices.contains(index) else { return nil }
            let seen = counts[index]
            if seen < UInt8.max { counts[index] = seen + 1 }
            return seen == 0
        }
        guard let first else {
            mismatched.add(1, ordering: .relaxed)
            return
        }
        if first {
            countDelivery()
        } else {
            duplicated.add(1, ordering: .relaxed)
        }
    }

    private func countDelivery() {
        let (_, count) = drained.add(1, ordering: .relaxed)
        if count == target { finished.store(benchNow(), ordering: .relaxed) }
    }

    var count: Int { drained.load(ordering: .relaxed) }
    var mismatches: Int { mismatched.load(ordering: .relaxed) }
    /// Deliveries of a job that had already been delivered.
    var duplicates: Int { duplicated.load(ordering: .relaxed) }
    /// When the target count was reached, or nil.
    var finishedAt: UInt64? {
        let value = finished.load(ordering: .relaxed)
        return value == 0 ? nil : value
    }
}

/// The kind of request a load task repeats.
enum BenchOperation: Sendable {
    case foreground(function: String)
    case background(function: String, budget: QueueBudget)
    /// `--jobs`: background job `i` carries payload `i`, with the unique key `"i"` when
    /// `uniqueKeys`; the tasks stop when the tickets run out.
    case backgroundCounted(function: String, tickets: JobTickets, uniqueKeys: Bool)
    case echo
}

enum BenchLoad {
    /// Runs `slotsPerClient` loops on every client until the window ends, and merges what they saw.
    static func run(
        clients: [GearmanClient], slotsPerClient: Int, operation: BenchOperation, payloads: BenchPayloads,
        window: LoadWindow, jobTimeout: Duration
    ) async -> LoadTally {
        await withTaskGroup(of: LoadTally.self) { group in
            for (clientIndex, client) in clients.enumerated() {
                for slot in 0..<slotsPerClient {
                    // Two payloads per slot, alternating: a late or repeated result of the slot's
                    // previous job does not pass for the current one.
                    let first = (clientIndex * slotsPerClient + slot) * 2
                    group.addTask {
                        await loop(
                            client: client, operation: operation, payloads: payloads, first: first, window: window,
                            jobTimeout: jobTimeout)
                    }
                }
            }
            var total = LoadTally()
            for await tally in group {
                total.merge(tally)
            }
            return total
        }
    }

    /// One slot: submit, wait, verify, record; again until the window ends.
    private static func loop(
        client: GearmanClient, operation: BenchOperation, payloads: BenchPayloads, first: Int, window: LoadWindow,
        jobTimeout: Duration
    ) async -> LoadTally {
        var tally = LoadTally()
        var sequence = 0
        while !Task.isCancelled {
            let started = benchNow()
            guard started < window.end else { break }
            var payload = payloads[first + (sequence & 1)]
            sequence &+= 1
            var unique: String?
            if case .backgroundCounted(_, let tickets, let uniqueKeys) = operation {
                guard let index = tickets.take() else { return tally }
                payload = payloads[index]
                if uniqueKeys { unique = String(index) }
            }
            do throws(GearmanError) {
                let verified: Bool
                switch operation {
                case .foreground(let function):
                    let result = try await client.submit(function: function, payload: payload, timeout: jobTimeout)
                    verified = BenchPayloads.same(result, payload)
                case .background(let function, let budget):
                    guard budget.take(payload.readableBytes + 64) else { return tally }
                    _ = try await client.submitBackground(function: function, payload: payload, timeout: jobTimeout)
                    verified = true
                case .backgroundCounted(let function, _, _):
                    _ = try await client.submitBackground(
                        function: function, payload: payload, unique: unique, timeout: jobTimeout)
                    verified = true
                case .echo:
                    let echoed = try await client.echo(payload, timeout: jobTimeout)
                    verified = BenchPayloads.same(echoed, payload)
                }
                let finished = benchNow()
                tally.completed += 1
                if !verified { tally.mismatches += 1 }
                if finished >= window.start && finished <= window.end {
                    tally.latencies.record(nanoseconds: finished - started)
                    tally.jobs += 1
                    tally.lastCompletion = finished
                }
            } catch {
                tally.errors += 1
                if tally.firstError == nil { tally.firstError = error.description }
                // Don't spin against a server that refuses everything.
                try? await Task.sleep(nanoseconds: 10_000_000)
            }
        }
        return tally
    }
}

/// Samples of the server and of this process around a window.
struct WindowSamples: Sendable {
    var server: (before: ProcessSample?, after: ProcessSample?) = (nil, nil)
    var bench: (before: ProcessSample?, after: ProcessSample?) = (nil, nil)
    /// Whether the server's peak RSS was reset at the window's start.
    var peakReset = false

    /// Samples at `window.start` (resetting the server's peak RSS) and at `window.end`.
    static func take(serverPID: Int32?, window: LoadWindow) async -> WindowSamples {
        var samples = WindowSamples()
        await benchSleep(until: window.start)
        samples.start(serverPID: serverPID, resetPeak: true)
        await benchSleep(until: window.end)
        samples.finish(serverPID: serverPID)
        return samples
    }

    mutating func start(serverPID: Int32?, resetPeak: Bool) {
        if let serverPID {
            if resetPeak { peakReset = ProcessStats.resetPeakRSS(pid: serverPID) }
            server.before = ProcessStats.sample(pid: serverPID)
        }
        bench.before = ProcessStats.sample(pid: "self")
    }

    mutating func finish(serverPID: Int32?) {
        if let serverPID { server.after = ProcessStats.sample(pid: serverPID) }
        bench.after = ProcessStats.sample(pid: "self")
    }

    var serverCPU: Double? {
        guard let before = server.before, let after = server.after else { return nil }
        return after.cpuSeconds - before.cpuSeconds
    }

    var benchCPU: Double? {
        guard let before = bench.before, let after = bench.after else { return nil }
        return after.cpuSeconds - before.cpuSeconds
    }
}
