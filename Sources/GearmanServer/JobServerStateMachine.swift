import DequeModule
import GearmanACL
import GearmanProtocol
import GearmanQueue
import HeapModule
import Logging
import NIOCore
import OrderedCollections

/// The job server's logic: functions, priority queues, sleeping workers, coalescing, retries and
/// timers. It performs no I/O: each event appends actions to `actions`, which the caller drains and
/// performs in order. Time comes from the injected clock.
struct JobServerStateMachine<Clock: JobServerClock> {
    struct Configuration: Sendable {
        /// Requeues of an assigned job before it fails (0 = unlimited, as gearmand 1.1.20).
        var jobRetries = 0
        /// NOOPs sent per queued job (0 = every sleeping worker).
        var workerWakeup = 0
        /// Forward WORK_EXCEPTION to every client, not only those that asked with OPTION_REQ.
        var exceptions = false
        var jobHandlePrefix = "H:gearlock"
        var processID: Int32 = 0
        var version = "0.1.0"
        var verboseLevel = "ERROR"
        var limits = ServerLimits()
        /// Report `observations` for metrics (and time jobs for them). Off: nothing is recorded.
        var observesMetrics = false
        /// Background jobs go to the queue store (`persist`/`unpersist` actions; JOB_CREATED waits for
        /// the commit). Off for a server without durability: JOB_CREATED at once, no store traffic.
        var persistsBackgroundJobs = true
    }

    /// Changed while running only by `limitsChanged(_:)` and `verboseLevelChanged(_:)`.
    var configuration: Configuration
    let clock: Clock
    var actions: [JobServerAction] = []
    /// What happened, for metrics; only filled when `configuration.observesMetrics`.
    var observations: [ServerObservation] = []

    var connections: [ConnectionID: ConnectionState] = [:]
    var functions: OrderedDictionary<ByteBuffer, FunctionState> = [:]
    var jobs = JobTable()
    var jobsByHandle: [ByteBuffer: JobID] = [:]
    var jobsByKey: [CoalescingKey: JobID] = [:]
    /// WORK_STATUS progress of running jobs that reported any; the others are at 0 of 0.
    var progress: [JobID: JobProgress] = [:]
    /// Open connections per peer address, for `limits.maxConnectionsPerAddress`.
    var connectionsPerAddress: [String: Int] = [:]
    /// Bytes held by live jobs, for `limits.maxQueueBytes`.
    var queuedBytes: UInt64 = 0
    var handles: JobHandleGenerator
    var nextJobID: UInt64 = 0
    var nextAssignment: UInt64 = 0
    /// CAN_DO_TIMEOUT deadlines of running jobs (monotonic nanoseconds); stale entries are skipped.
    var timeouts = Heap<TimeoutEntry>()
    /// Epoch jobs waiting for their time (seconds since the epoch); stale entries are skipped.
    var scheduled = Heap<ScheduledEntry>()
    /// Large foreground payloads still sharing a read buffer, oldest first, and when to copy them out.
    var deferredCompactions = Deque<DeferredCompaction>()
    /// Set once a graceful shutdown began: no new assignments, so running jobs can drain.
    var isDraining = false

    /// The ACL and its settings; nil when every connection may do everything.
    var access: AccessControl?
    var throttle: AuthenticationThrottle
    /// When each connection that has not authenticated must have done so; stale entries skipped.
    var authenticationDeadlines = Heap<AuthenticationDeadline>()
    /// Live jobs per tenant (all of its functions), for its `max_queued_jobs`.
    var tenantJobCounts: [String: Int] = [:]
    /// Connections authenticated as each tenant's principals, for its `max_connections`.
    var tenantConnectionCounts: [String: Int] = [:]
    /// Background jobs whose commit submitters wait on, by handle.
    var pendingPersists: [ByteBuffer: PendingPersist] = [:]
    /// Connections whose `held` queue is not empty; while it is 0, `send` skips looking.
    var connectionsHoldingReplies = 0

    init(configuration: Configuration, clock: Clock, access: AccessControl? = nil) {
        self.configuration = configuration
        self.clock = clock
        self.handles = JobHandleGenerator(prefix: configuration.jobHandlePrefix)
        self.access = access
        self.throttle = AuthenticationThrottle(threshold: access?.failuresBeforeThrottling ?? 5)
    }

    /// Takes the actions accumulated since the last call.
    mutating func takeActions() -> [JobServerAction] {
        defer { actions.removeAll(keepingCapacity: true) }
        return actions
    }

    /// Swaps the accumulated actions into `buffer` (which must be empty), avoiding an allocation.
    mutating func drainActions(into buffer: inout [JobServerAction]) {
        precondition(buffer.isEmpty)
        swap(&buffer, &actions)
    }

    /// Jobs assigned to workers right now (O(functions)).
    var runningJobCount: Int { functions.values.reduce(0) { $0 + $1.runningCount } }

    // MARK: Connections

    mutating func connectionOpened(_ id: ConnectionID, peerAddress: String) {
        precondition(connections[id] == nil, "connection \(id) opened twice")
        connections[id] = ConnectionState(id: id, peerAddress: peerAddress)
        connectionsPerAddress[peerAddress, default: 0] += 1
        guard admitConnection(id) else { return }
        accessConnectionOpened(id)
    }

    mutating func connectionClosed(_ id: ConnectionID) {
        guard let connection = connections[id] else { return }
        // Withdrawn first, so a requeue below doesn't spend its wake-up on this connection.
        for ability in connection.abilities {
            functions[ability.function]?.workers.remove(id)
            functions[ability.function]?.sleepers.remove(id)
            observe(.workersChanged(function: ability.function))
        }
        // A lost worker's jobs go back to the queue; a retry is counted for each.
        for jobID in byAge(connection.assignedJobs) {
            requeue(jobID, countRetry: true)
        }
        for jobID in byAge(connection.listeningJobs) {
            detachListener(id, from: jobID)
        }
        if let tenant = connection.tenant {
            tenantConnectionCounts[tenant, default: 1] -= 1
        }
        if !connection.held.isEmpty { connectionsHoldingReplies -= 1 }
        if connectionsPerAddress[connection.peerAddress, default: 1] <= 1 {
            connectionsPerAddress[connection.peerAddress] = nil
        } else {
            connectionsPerAddress[connection.peerAddress]! -= 1
        }
        connections[id] = nil
    }

    // MARK: Packets

    mutating func packetReceived(_ packet: GearmanPacket, magic: PacketMagic, from id: ConnectionID) {
        guard connections[id] != nil else { preconditionFailure("packet from unknown connection \(id)") }
        guard magic == .request else {
            send(.error(code: ErrorCode.invalidMagic, text: "Request magic expected"), to: id)
            return
        }
        switch packet {
        case .canDo(let function):
            guard mayRegister(function, packet: .canDo, from: id) else { return }
            canDo(function, timeoutMilliseconds: nil, from: id)
        case .canDoTimeout(let function, let timeout):
            guard mayRegister(function, packet: .canDoTimeout, from: id) else { return }
            canDo(function, timeoutMilliseconds: Self.parseTimeout(timeout), from: id)
        case .cantDo(let function):
            cantDo(function, from: id)
        case .resetAbilities:
            resetAbilities(of: id)
        case .preSleep:
            preSleep(id)
        case .grabJob:
            grab(id, variant: .plain)
        case .grabJobUnique:
            grab(id, variant: .unique)
        case .grabJobAll:
            grab(id, variant: .all)
        case .submitJob(let function, let unique, let payload, let priority, let background):
            submit(
                Submission(
                    function: function, unique: unique, payload: payload, priority: priority,
                    background: background, epoch: nil, reducer: nil), packet: packet.type, from: id)
        case .submitJobEpoch(let function, let unique, let epochText, let payload):
            guard let epoch = Int64(String(buffer: epochText)) else {
                send(.error(code: ErrorCode.invalidArgument, text: "Epoch time is not a decimal number"), to: id)
                return
            }
            submit(
                Submission(
                    function: function, unique: unique, payload: payload, priority: .normal, background: true,
                    epoch: epoch, reducer: nil), packet: packet.type, from: id)
        case .submitReduceJob(let function, let unique, let reducer, _, let payload, let background):
            submit(
                Submission(
                    function: function, unique: unique, payload: payload, priority: .normal,
                    background: background, epoch: nil, reducer: reducer), packet: packet.type, from: id)
        case .workStatus(let handle, let numerator, let denominator):
            workStatus(handle: handle, numerator: numerator, denominator: denominator, from: id)
        case .workData(let handle, let payload):
            forwardToListeners(.workData(handle: handle, payload: payload), handle: handle, from: id)
        case .workWarning(let handle, let payload):
            forwardToListeners(.workWarning(handle: handle, payload: payload), handle: handle, from: id)
        case .workComplete(let handle, let payload):
            finishWork(.workComplete(handle: handle, payload: payload), handle: handle, from: id)
        case .workFail(let handle):
            finishWork(.workFail(handle: handle), handle: handle, from: id)
        case .workException(let handle, let payload):
            finishWork(.workException(handle: handle, payload: payload), handle: handle, from: id)
        case .getStatus(let handle):
            getStatus(handle: handle, from: id)
        case .getStatusUnique(let unique):
            getStatusUnique(unique: unique, from: id)
        case .echoRequest(let payload):
            send(.echoResponse(payload: payload), to: id)
        case .setClientID(let clientID):
            switch AuthenticationToken(clientID) {
            case .token(let principal, let secret):
                authenticate(id, principal: principal, secret: secret, via: .clientID)
                return
            case .malformed:
                rejectMalformedToken(id, via: .clientID)
                return
            case .notAToken:
                break
            }
            connections[id]!.clientID = clientID.getSlice(
                at: clientID.readerIndex, length: min(clientID.readableBytes, Self.maxClientIDLength))
                .map { ByteBuffer(buffer: $0) }
        case .optionRequest(let name):
            optionRequest(name, from: id)
        case .submitJobSched, .allYours, .unused, .noop, .jobCreated, .noJob, .jobAssign, .jobAssignUnique,
            .jobAssignAll, .echoResponse, .error, .statusResponse, .statusResponseUnique, .optionResponse:
            send(.error(code: ErrorCode.invalidCommand, text: "Command not expected"), to: id)
        }
    }

    static var maxClientIDLength: Int { 127 }
    static var maxUniqueLength: Int { 64 }
    static var maxReducerLength: Int { 512 }

    private mutating func optionRequest(_ name: ByteBuffer, from id: ConnectionID) {
        switch AuthenticationToken(name) {
        case .token(let principal, let secret):
            authenticate(id, principal: principal, secret: secret, via: .optionRequest)
            return
        case .malformed:
            rejectMalformedToken(id, via: .optionRequest)
            return
        case .notAToken:
            break
        }
        switch String(buffer: name).lowercased() {
        case "exceptions":
            connections[id]!.exceptions = true
            send(.optionResponse(name: name), to: id)
        case "permission-errors":
            connections[id]!.permissionErrors = true
            send(.optionResponse(name: name), to: id)
        default:
            send(.error(code: ErrorCode.unknownOption, text: "Server does not recognize given option"), to: id)
        }
    }

    /// CAN_DO_TIMEOUT's milliseconds: 1–999 are raised to a second, 0, negative or unreadable mean none.
    static func parseTimeout(_ text: ByteBuffer) -> Int64? {
        guard let value = Int64(String(buffer: text)), value > 0 else { return nil }
        return max(value, 1000)
    }

    // MARK: Timers

    /// The monotonic time at which `timerFired` has work to do, if any.
    var nextTimerDeadline: UInt64? {
        var timeout = timeouts.min?.deadline
        if let authentication = authenticationDeadlines.min?.deadline {
            timeout = min(timeout ?? .max, authentication)
        }
        if let compaction = deferredCompactions.first?.deadline {
            timeout = min(timeout ?? .max, compaction)
        }
        var epochDeadline: UInt64?
        if let next = scheduled.min {
            let now = clock.monotonicNanoseconds
            let delay = next.epoch - clock.wallClockSeconds
            // Capped: a client may send an epoch centuries away.
            epochDeadline = delay <= 0 ? now : Self.deadline(now, plus: UInt64(delay), times: 1_000_000_000)
        }
        switch (timeout, epochDeadline) {
        case (nil, nil): return nil
        case (let value?, nil), (nil, let value?): return value
        case (let a?, let b?): return min(a, b)
        }
    }

    /// `base + count × unit` nanoseconds, but at most `Int64.max` nanoseconds (≈ 292 years) after
    /// `base`: a hostile epoch or timeout must neither trap here nor in a caller that turns the
    /// delay into a `TimeAmount`.
    static func deadline(_ base: UInt64, plus count: UInt64, times unit: UInt64) -> UInt64 {
        let (product, overflow) = count.multipliedReportingOverflow(by: unit)
        let delay = overflow ? UInt64(Int64.max) : min(product, UInt64(Int64.max))
        let (sum, sumOverflow) = base.addingReportingOverflow(delay)
        return sumOverflow ? .max : sum
    }

    /// Runs what is due: expired CAN_DO_TIMEOUT jobs are requeued, due epoch jobs become runnable,
    /// large payloads still in read buffers are copied out.
    mutating func timerFired() {
        let now = clock.monotonicNanoseconds
        while let entry = timeouts.min, entry.deadline <= now {
            timeouts.removeMin()
            guard let job = jobs[entry.job], case .running(_, let assignment) = job.state,
                assignment == entry.assignment
            else { continue }
            emitLog(.info, "job timed out; requeued", job: job)
            requeue(entry.job, countRetry: true)
        }
        authenticationDeadlinesPassed(now: now)
        compactDeferredPayloads(now: now)
        let wallNow = clock.wallClockSeconds
        while let entry = scheduled.min, entry.epoch <= wallNow {
            scheduled.removeMin()
            guard let job = jobs[entry.job], case .scheduled = job.state else { continue }
            functions[job.function]!.scheduledCount -= 1
            enqueue(entry.job)
        }
    }

    // MARK: Shared helpers

    mutating func send(_ packet: GearmanPacket, to id: ConnectionID) {
        if connectionsHoldingReplies > 0, connections[id]?.held.isEmpty == false {
            connections[id]!.held.append(.packet(packet))
            return
        }
        actions.append(.send(packet, to: id))
    }

    mutating func sendText(_ text: String, to id: ConnectionID) {
        if connectionsHoldingReplies > 0, connections[id]?.held.isEmpty == false {
            connections[id]!.held.append(.text(text))
            return
        }
        actions.append(.sendText(text, to: id))
    }

    /// Records an observation for metrics, if they are on.
    mutating func observe(_ observation: @autoclosure () -> ServerObservation) {
        guard configuration.observesMetrics else { return }
        observations.append(observation())
    }

    /// The monotonic time for a job's `since`, read only when metrics are on.
    var observationTime: UInt64 { configuration.observesMetrics ? clock.monotonicNanoseconds : 0 }

    mutating func emitLog(_ level: Logger.Level, _ message: Logger.Message, job: Job) {
        actions.append(
            .log(
                level, message,
                [
                    "gearman.job_handle": "\(String(buffer: job.handle))",
                    "gearman.function": "\(String(buffer: job.function))",
                    "gearman.retries": "\(job.retries)",
                ]))
    }

    /// The function's state, created on first mention. The name is copied into its own storage so
    /// the key does not keep a large read buffer alive.
    mutating func ensureFunction(_ name: ByteBuffer) -> ByteBuffer {
        if let index = functions.index(forKey: name) {
            return functions.keys[index]
        }
        let key = ByteBuffer(buffer: name)
        functions[key] = FunctionState(name: key, tenant: access?.policy.owningTenant(ofFunction: key.readableBytesView)?.name)
        return key
    }

    // MARK: Job lifecycle

    /// Puts a job at the tail of its priority queue and wakes sleeping workers.
    mutating func enqueue(_ jobID: JobID) {
        let job = jobs[jobID]!
        jobs[jobID]!.state = .queued
        jobs[jobID]!.since = observationTime
        let priority = job.priority.rawValue
        functions[job.function]!.queues[priority].append(jobID)
        functions[job.function]!.queuedCounts[priority] += 1
        observe(.queueChanged(function: job.function))
        wakeWorkers(for: job.function)
    }

    /// Payloads up to this size share one allocation with the job's handle and unique.
    static var packedPayloadLimit: Int { 4096 }

    /// Creates a job in the tables, queued or scheduled. Its handle, unique and (small) payload are
    /// copied into one buffer of their own: a queued job then costs one allocation for its bytes
    /// and holds no slice of a read buffer.
    mutating func createJob(_ submission: Submission, function: ByteBuffer, key: CoalescingKey?) -> JobID {
        nextJobID += 1
        let id = jobs.reserveID()
        let packsPayload = submission.payload.readableBytes <= Self.packedPayloadLimit
        var bytes = ByteBuffer()
        bytes.reserveCapacity(
            JobHandleGenerator.maxHandleLength + submission.unique.readableBytes
                + (packsPayload ? submission.payload.readableBytes : 0))
        // Everything is written before the first slice is taken: a write into a buffer that a
        // slice shares would copy it.
        handles.write(into: &bytes)
        let handleLength = bytes.writerIndex
        bytes.writeImmutableBuffer(submission.unique)
        if packsPayload { bytes.writeImmutableBuffer(submission.payload) }
        let handle = bytes.getSlice(at: 0, length: handleLength)!
        let unique = bytes.getSlice(at: handleLength, length: submission.unique.readableBytes)!
        let payload: ByteBuffer
        if packsPayload {
            payload = bytes.getSlice(at: handleLength + unique.readableBytes, length: submission.payload.readableBytes)!
        } else if submission.background || !Self.pinsLargerBuffer(submission.payload) {
            payload = Self.compact(submission.payload)
        } else {
            // A foreground job usually ends within milliseconds: copying its payload out of the read
            // buffer then costs more than the buffer it keeps alive for that while (4–5 % of the
            // server's CPU at 64 KiB). One still alive after `compactionDelay` is copied then.
            payload = submission.payload
            deferredCompactions.append(
                DeferredCompaction(
                    deadline: clock.monotonicNanoseconds &+ Self.compactionDelayNanoseconds, job: id, sequence: nextJobID))
        }
        let coalescing: Coalescing = key.map { $0.byPayload ? .byPayload : .byUnique } ?? .none
        let job = Job(
            id: id, sequence: nextJobID, handle: handle, function: function, unique: unique, coalescing: coalescing,
            payload: payload, priority: submission.priority,
            reducer: submission.reducer.map(Self.compact), epoch: submission.epoch,
            isBackground: submission.background, state: .queued, retries: 0, listeners: [])
        jobs[id] = job
        queuedBytes += Self.heldBytes(payload: payload, unique: unique, reducer: job.reducer)
        jobsByHandle[handle] = id
        if let key = job.coalescingKey { jobsByKey[key] = id }
        if let tenant = functions[function]!.tenant { tenantJobCounts[tenant, default: 0] += 1 }
        return id
    }

    /// `ids` of live jobs, oldest first (ended jobs are left out).
    func byAge(_ ids: Set<JobID>) -> [JobID] {
        ids.compactMap { jobs[$0] }.sorted { $0.sequence < $1.sequence }.map(\.id)
    }

    /// Makes a job runnable now or when its epoch time comes.
    mutating func schedule(_ jobID: JobID) {
        let job = jobs[jobID]!
        if let epoch = job.epoch, epoch > clock.wallClockSeconds {
            jobs[jobID]!.state = .scheduled(epoch: epoch)
            functions[job.function]!.scheduledCount += 1
            scheduled.insert(ScheduledEntry(epoch: epoch, job: jobID))
        } else {
            enqueue(jobID)
        }
    }

    /// Removes a job from every table. Its queue entry, if any, goes stale and is skipped later.
    mutating func removeJob(_ jobID: JobID) {
        guard let job = jobs.removeValue(forKey: jobID) else { return }
        jobsByHandle[job.handle] = nil
        progress[jobID] = nil
        queuedBytes -= Self.heldBytes(payload: job.payload, unique: job.unique, reducer: job.reducer)
        if let tenant = functions[job.function]!.tenant { tenantJobCounts[tenant, default: 1] -= 1 }
        if let key = job.coalescingKey, jobsByKey[key] == jobID { jobsByKey[key] = nil }
        switch job.state {
        case .queued:
            functions[job.function]!.queuedCounts[job.priority.rawValue] -= 1
            observe(.queueChanged(function: job.function))
        case .scheduled: functions[job.function]!.scheduledCount -= 1
        case .running(let worker, _):
            functions[job.function]!.runningCount -= 1
            connections[worker]?.assignedJobs.remove(jobID)
        }
        for listener in job.listeners {
            connections[listener]?.listeningJobs.remove(jobID)
        }
        if job.isBackground && configuration.persistsBackgroundJobs {
            actions.append(.unpersist(handle: job.handle))
        }
    }

    /// Takes a running job back from its worker: to the tail of its queue, or failed when the retry
    /// cap is reached, or dropped when nobody wants its result any more.
    mutating func requeue(_ jobID: JobID, countRetry: Bool) {
        guard var job = jobs[jobID], case .running(let worker, _) = job.state else { return }
        connections[worker]?.assignedJobs.remove(jobID)
        functions[job.function]!.runningCount -= 1
        if countRetry { job.retries += 1 }
        progress[jobID] = nil
        job.state = .queued
        // Counted as queued for a moment so that `removeJob` below balances the counts.
        functions[job.function]!.queuedCounts[job.priority.rawValue] += 1
        jobs[jobID] = job
        if countRetry { observe(.jobRequeued(function: job.function)) }
        if configuration.jobRetries > 0 && job.retries >= configuration.jobRetries {
            emitLog(.notice, "job reached the retry limit; failed", job: job)
            observe(.jobFailed(function: job.function, ranNanoseconds: nil))
            for listener in job.listeners {
                send(.workFail(handle: job.handle), to: listener)
            }
            removeJob(jobID)
            return
        }
        if job.listeners.isEmpty && !job.isBackground {
            removeJob(jobID)
            return
        }
        if job.isBackground && countRetry && configuration.persistsBackgroundJobs {
            actions.append(.persist(storedJob(job)))
        }
        functions[job.function]!.queuedCounts[job.priority.rawValue] -= 1
        enqueue(jobID)
    }

    /// A foreground client stops waiting on a job. A foreground job nobody waits for any more is
    /// dropped if it has not started; a running one finishes and its result goes nowhere.
    mutating func detachListener(_ client: ConnectionID, from jobID: JobID) {
        guard var job = jobs[jobID] else { return }
        job.listeners.removeAll { $0 == client }
        jobs[jobID] = job
        connections[client]?.listeningJobs.remove(jobID)
        if job.listeners.isEmpty && !job.isBackground && !job.isRunning {
            removeJob(jobID)
        }
    }

    func storedJob(_ job: Job) -> StoredJob {
        StoredJob(
            handle: job.handle, function: job.function, unique: job.unique, payload: job.payload,
            priority: job.priority, epoch: job.epoch, reducer: job.reducer, retries: job.retries)
    }

    static var zero: ByteBuffer { JobProgress.zeroText }

    /// A copy of `buffer` in its own storage when it is a small slice of a much larger buffer
    /// (a read buffer), so a queued job doesn't keep the whole read buffer alive.
    static func compact(_ buffer: ByteBuffer) -> ByteBuffer {
        pinsLargerBuffer(buffer) ? ByteBuffer(buffer: buffer) : buffer
    }

    /// Whether `buffer` is a slice of storage much larger than itself.
    static func pinsLargerBuffer(_ buffer: ByteBuffer) -> Bool {
        buffer.storageCapacity > 2 * buffer.readableBytes + 1024
    }

    /// How long a foreground job may keep the read buffer its payload arrived in (100 ms): long enough
    /// for a job a worker takes at once to end first, short enough that a queue of waiting jobs holds
    /// only a fraction of a second's reads.
    static var compactionDelayNanoseconds: UInt64 { 100_000_000 }

    /// Copies the payloads of deferred compactions that are due into storage of their own.
    mutating func compactDeferredPayloads(now: UInt64) {
        while let first = deferredCompactions.first, first.deadline <= now {
            deferredCompactions.removeFirst()
            guard let job = jobs[first.job], job.sequence == first.sequence else { continue }
            jobs[first.job]!.payload = Self.compact(job.payload)
        }
    }

    func job(withHandle handle: ByteBuffer) -> Job? {
        jobsByHandle[handle].flatMap { jobs[$0] }
    }
}

/// A foreground job whose payload is still a slice of a read buffer, to be copied out at `deadline`
/// (monotonic nanoseconds) if the job is still alive; `sequence` tells it from a later job that
/// reused the slot.
struct DeferredCompaction {
    var deadline: UInt64
    var job: JobID
    var sequence: UInt64
}

struct TimeoutEntry: Comparable {
    var deadline: UInt64
    var job: JobID
    var assignment: UInt64
    static func < (lhs: TimeoutEntry, rhs: TimeoutEntry) -> Bool {
        (lhs.deadline, lhs.assignment) < (rhs.deadline, rhs.assignment)
    }
}

struct ScheduledEntry: Comparable {
    var epoch: Int64
    var job: JobID
    static func < (lhs: ScheduledEntry, rhs: ScheduledEntry) -> Bool { (lhs.epoch, lhs.job) < (rhs.epoch, rhs.job) }
}

/// A submission of any SUBMIT_* variant, normalised.
struct Submission {
    var function: ByteBuffer
    var unique: ByteBuffer
    var payload: ByteBuffer
    var priority: JobPriority
    var background: Bool
    var epoch: Int64?
    var reducer: ByteBuffer?
}

/// gearmand's ERROR code strings (libgearman's return-code names without `GEARMAN_`).
enum ErrorCode {
    static let invalidMagic = "INVALID_MAGIC"
    static let invalidCommand = "INVALID_COMMAND"
    static let argumentTooLarge = "ARGUMENT_TOO_LARGE"
    static let queueError = "QUEUE_ERROR"
    static let unknownOption = "UNKNOWN_OPTION"
    static let jobNotFound = "JOB_NOT_FOUND"
    static let invalidArgument = "INVALID_ARGUMENT"
    static let invalidPacket = "INVALID_PACKET"
    static let authenticationFailed = "AUTH_FAILED"
    static let permissionDenied = "PERMISSION_DENIED"
    static let quotaExceeded = "QUOTA_EXCEEDED"
    static let timeout = "TIMEOUT"
}

struct AuthenticationDeadline: Comparable {
    var deadline: UInt64
    var connection: ConnectionID
    static func < (lhs: AuthenticationDeadline, rhs: AuthenticationDeadline) -> Bool {
        (lhs.deadline, lhs.connection) < (rhs.deadline, rhs.connection)
    }
}
