import CoreMetrics
import GearmanACL
import GearmanProtocol
import OrderedCollections
import GearmanQueue
import GearmanTLS
import Logging
import NIOCore

/// Owns the state machine and performs its actions. Confined to one event loop: every method runs
/// on `eventLoop`, and connection handlers on other loops hop onto it.
final class JobServerCore: @unchecked Sendable {
    let eventLoop: any EventLoop
    private var machine: JobServerStateMachine<SystemJobServerClock>
    private var outputs: [ConnectionID: ConnectionOutput] = [:]
    /// Connections with output not yet written: written once per event loop turn (`writeDirty`).
    private var dirty: [ConnectionID] = []
    private var writeScheduled = false
    private var actionBuffer: [JobServerAction] = []
    private var timer: (deadline: UInt64, task: Scheduled<Void>)?
    private let store: any QueueStore
    private let logger: Logger
    private let shutdownTimeout: TimeAmount
    private var shutdownState = ShutdownState.running
    private var isPerformingActions = false
    /// Persists and removals not yet handed to the store.
    private var pendingBatch = QueueBatch()
    private var commitInFlight = false
    /// Set while a removal-only batch waits for more work before it is committed.
    private var deferredRemovals: Scheduled<Void>?
    private var storeIdle: EventLoopPromise<Void>?
    /// The listening channels, closed first when the server stops.
    private var listeners: [any Channel] = []
    /// Succeeded once the server has stopped and every connection is closed.
    let stopped: EventLoopPromise<Void>
    /// Where metric updates go; nil when metrics are off (then the machine observes nothing).
    private let metrics: ServerMetrics?
    private var observationBuffer: [ServerObservation] = []
    /// Commits are timed for metrics only when the store is durable.
    private let timesCommits: Bool

    private enum ShutdownState {
        case running
        case draining(deadline: Scheduled<Void>)
        case stopped
    }

    init(
        eventLoop: any EventLoop, configuration: JobServerStateMachine<SystemJobServerClock>.Configuration,
        access: AccessControl?, shutdownTimeout: TimeAmount, store: any QueueStore, logger: Logger,
        metrics: ServerMetrics? = nil
    ) {
        self.eventLoop = eventLoop
        var configuration = configuration
        configuration.observesMetrics = metrics != nil
        self.machine = JobServerStateMachine(
            configuration: configuration, clock: SystemJobServerClock(), access: access)
        self.metrics = metrics
        self.timesCommits = metrics != nil && !(store is VolatileQueueStore)
        self.store = store
        self.logger = logger
        self.shutdownTimeout = shutdownTimeout
        self.stopped = eventLoop.makePromise()
    }

    // MARK: Events from connections

    /// - Parameter listener: the index of the listener (in the configuration) that accepted it.
    func connectionOpened(_ id: ConnectionID, channel: any Channel, listener: Int) {
        eventLoop.preconditionInEventLoop()
        guard case .running = shutdownState else {
            channel.close(promise: nil)
            return
        }
        outputs[id] = ConnectionOutput(channel: channel)
        metrics?.connectionOpened(id, listener: listener)
        machine.connectionOpened(id, peerAddress: channel.remoteAddress?.ipAddress ?? "-")
        logger.debug("connection opened", metadata: ["gearman.connection": "\(id)"])
        performActions()
    }

    func process(_ frames: [GearmanFrame], from id: ConnectionID) {
        eventLoop.preconditionInEventLoop()
        guard outputs[id] != nil else { return }
        for frame in frames {
            switch frame {
            case .packet(let packet, let magic):
                machine.packetReceived(packet, magic: magic, from: id)
            case .text(let line):
                machine.textReceived(line, from: id)
            }
        }
        performActions()
    }

    func connectionClosed(_ id: ConnectionID) {
        eventLoop.preconditionInEventLoop()
        guard outputs.removeValue(forKey: id) != nil else { return }
        metrics?.connectionClosed(id)
        machine.connectionClosed(id)
        logger.debug("connection closed", metadata: ["gearman.connection": "\(id)"])
        performActions()
    }

    /// A TLS handshake completed: the connection's peer is known.
    func peerIdentified(_ id: ConnectionID, identity: TLSPeerIdentity) {
        eventLoop.preconditionInEventLoop()
        guard outputs[id] != nil else { return }
        logger.debug(
            "TLS handshake completed",
            metadata: [
                "gearman.connection": "\(id)", "tls.protocol": "\(identity.protocolVersion)",
                "tls.cipher": "\(identity.cipher)", "tls.peer_cn": "\(identity.commonNames.joined(separator: ","))",
                "tls.peer_verified": "\(identity.isVerified)",
            ])
        metrics?.connectionHandshakeCompleted(id)
        machine.peerIdentified(id, identity: identity)
        performActions()
    }

    /// A connection that has not authenticated declared a packet over the pre-authentication cap;
    /// its handler has stopped decoding until told to go on (or the connection is closed).
    func preauthenticationLimitReached(_ id: ConnectionID, declaredSize: UInt32) {
        eventLoop.preconditionInEventLoop()
        guard outputs[id] != nil else { return }
        machine.preauthenticationLimitReached(id, declaredSize: declaredSize)
        performActions()
    }

    /// Swaps in a new ACL and re-checks live connections against it.
    func reloadAccessPolicy(_ policy: AccessPolicy) {
        eventLoop.preconditionInEventLoop()
        machine.accessPolicyReloaded(policy)
        performActions()
    }

    /// New limits from a live reload.
    func updateLimits(_ limits: JobServer.Limits) {
        eventLoop.preconditionInEventLoop()
        machine.limitsChanged(limits)
    }

    /// The level `verbose` reports, after the log level changed.
    func updateVerboseLevel(_ level: String) {
        eventLoop.preconditionInEventLoop()
        machine.verboseLevelChanged(level)
    }

    /// A TLS handshake or stream failed; the handler closes that connection alone.
    func tlsFailed(_ id: ConnectionID, error: TLSError) {
        eventLoop.preconditionInEventLoop()
        if let metrics, let reason = TLSHandshakeFailureReason(error) {
            metrics.tlsHandshakeFailed(reason)
        }
        let level: Logger.Level = error.code == .uncleanShutdown ? .debug : .info
        logger.log(
            level: level, "TLS failure; connection closed",
            metadata: ["gearman.connection": "\(id)", "error": "\(error)"])
    }

    /// A connection sent bytes that cannot be decoded: tell it why and close it.
    func protocolError(_ error: GearmanProtocolError, from id: ConnectionID) {
        eventLoop.preconditionInEventLoop()
        logger.info(
            "closing connection after a protocol error",
            metadata: ["gearman.connection": "\(id)", "error": "\(error.message)"])
        guard outputs[id] != nil else { return }
        if error.code == .textLineTooLong {
            outputs[id]!.append(text: AdminReply.error("INVALID_PACKET", error.message))
        } else {
            outputs[id]!.append(.error(code: ErrorCode.invalidPacket, text: error.message))
        }
        flushAndClose(id)
    }

    /// A packet (or admin line) began to arrive but did not complete before its deadline (a
    /// slow-loris, or a peer that stalled mid-packet): the connection gets an error in its own
    /// dialect and is closed.
    func incompletePacketTimedOut(_ id: ConnectionID, isText: Bool, bufferedBytes: Int) {
        eventLoop.preconditionInEventLoop()
        logger.notice(
            "closing connection: a packet did not complete in time",
            metadata: ["gearman.connection": "\(id)", "gearman.buffered_bytes": "\(bufferedBytes)"])
        guard outputs[id] != nil else { return }
        let message = "Packet not completed in time (\(bufferedBytes) bytes received)"
        if isText {
            outputs[id]!.append(text: AdminReply.error(ErrorCode.timeout, message))
        } else {
            outputs[id]!.append(.error(code: ErrorCode.timeout, text: message))
        }
        flushAndClose(id)
    }

    /// Writes what `id` was sent and closes it. The writes are taken out of `outputs` first:
    /// a failing write closes the channel, which removes the output at once.
    private func flushAndClose(_ id: ConnectionID) {
        guard let channel = outputs[id]?.channel else { return }
        let writes = outputs[id]?.take()
        writes?.writeAndFlush()
        channel.close(promise: nil)
    }

    // MARK: Actions

    /// Performs what the machine asked for. Closing a channel can re-enter (its `channelInactive`
    /// reports the closed connection at once), so closes and shutdowns run only after the replies
    /// of this cycle are flushed, and a nested call just leaves its actions for the running loop.
    private func performActions() {
        guard !isPerformingActions else { return }
        isPerformingActions = true
        defer { isPerformingActions = false }
        repeat {
            performPendingActions()
            recordObservations()
            rearmTimer()
            checkDrained()
        } while !machine.actions.isEmpty
    }

    private func performPendingActions() {
        while !machine.actions.isEmpty {
            var deferred: [JobServerAction] = []
            machine.drainActions(into: &actionBuffer)
            var batch = QueueBatch()
            for action in actionBuffer {
                switch action {
                case .send(let packet, let id):
                    // Only the flag is read: a copy of the output kept across the append below
                    // would make it copy its buffer.
                    guard let isDirty = outputs[id]?.isDirty else { continue }
                    // Listed once per turn, however many packets it is sent.
                    if !isDirty { dirty.append(id) }
                    outputs[id]!.append(packet)
                case .sendText(let text, let id):
                    guard let isDirty = outputs[id]?.isDirty else { continue }
                    if !isDirty { dirty.append(id) }
                    outputs[id]!.append(text: text)
                case .persist(let job):
                    batch.added.append(job)
                case .unpersist(let handle):
                    batch.removedHandles.append(handle)
                case .liftPacketLimit(let id):
                    let channel = outputs[id]?.channel
                    channel?.pipeline.fireUserInboundEventTriggered(ServerConnectionEvent.packetLimitLifted)
                case .close, .shutdown:
                    deferred.append(action)
                case .log(let level, let message, let metadata):
                    logger.log(level: level, message, metadata: metadata)
                }
            }
            actionBuffer.removeAll(keepingCapacity: true)
            if !batch.isEmpty {
                pendingBatch.added.append(contentsOf: batch.added)
                pendingBatch.removedHandles.append(contentsOf: batch.removedHandles)
                startCommitIfIdle()
            }
            if deferred.isEmpty {
                scheduleWrites()
            } else {
                // A connection's replies go out before it is closed.
                writeDirty()
            }
            for action in deferred {
                switch action {
                case .close(let id):
                    let channel = outputs[id]?.channel
                    channel?.close(promise: nil)
                case .shutdown(let graceful):
                    logger.notice("shutdown requested on the admin protocol", metadata: ["graceful": "\(graceful)"])
                    if graceful { beginGracefulShutdown() } else { stopNow() }
                case .send, .sendText, .persist, .unpersist, .log, .liftPacketLimit:
                    preconditionFailure("only closes and shutdowns are deferred")
                }
            }
        }
    }

    /// Writes the output collected for connections at the end of this event loop turn, after
    /// every connection the loop found readable has been processed: a connection sent packets by
    /// several others' read cycles (a client whose jobs several workers completed) then gets one
    /// write and one flush, one system call and one wake-up of its peer, instead of one for each.
    private func scheduleWrites() {
        guard !dirty.isEmpty, !writeScheduled else { return }
        writeScheduled = true
        eventLoop.execute { [self] in
            writeScheduled = false
            writeDirty()
        }
    }

    /// Writes and flushes every connection's collected output now.
    private func writeDirty() {
        guard !dirty.isEmpty else { return }
        // Taken out first: a failing write or flush closes its channel, whose handler reports it at
        // once, re-entering this core, which may mark connections again (or write them itself).
        let ids = dirty
        dirty = []
        for id in ids {
            // Taken out before writing, for the same reason: the output may be removed meanwhile.
            let writes = outputs[id]?.take()
            writes?.writeAndFlush()
        }
    }

    // MARK: Metrics

    /// Turns what the machine observed into metric updates: counters and histograms by cached
    /// handle, gauges set from the machine's current counts.
    private func recordObservations() {
        guard let metrics, !machine.observations.isEmpty else { return }
        swap(&observationBuffer, &machine.observations)
        defer { observationBuffer.removeAll(keepingCapacity: true) }
        for observation in observationBuffer {
            switch observation {
            case .jobSubmitted(let function):
                handles(function, metrics).submitted.increment()
            case .jobAssigned(let function, let waited):
                handles(function, metrics).queueWait.recordNanoseconds(Int64(clamping: waited))
            case .jobCompleted(let function, let ran):
                let handles = handles(function, metrics)
                handles.completed.increment()
                handles.runTime.recordNanoseconds(Int64(clamping: ran))
            case .jobFailed(let function, let ran):
                let handles = handles(function, metrics)
                handles.failed.increment()
                if let ran { handles.runTime.recordNanoseconds(Int64(clamping: ran)) }
            case .jobRequeued(let function):
                handles(function, metrics).requeued.increment()
            case .queueChanged(let function):
                guard let gauges = handles(function, metrics).queueDepth,
                    let counts = machine.functions[function]?.queuedCounts
                else { continue }
                for (gauge, count) in zip(gauges, counts) { gauge.record(count) }
            case .workersChanged(let function):
                guard let gauge = handles(function, metrics).workers else { continue }
                gauge.record(machine.functions[function]?.workers.count ?? 0)
            case .authenticated(let id):
                metrics.connectionAuthenticated(id)
            case .authenticationFailed(let tenant):
                metrics.authenticationFailed(tenant: tenant)
            case .accessDenied(let tenant):
                metrics.accessDenied(tenant: tenant)
            }
        }
    }

    private func handles(_ function: ByteBuffer, _ metrics: ServerMetrics) -> ServerMetrics.FunctionHandles {
        metrics.handles(for: function) { machine.functions[function]?.tenant }
    }

    // MARK: Group commit

    /// How long removals alone may wait to be committed, and how many may wait: a removal that a
    /// crash loses only makes its job run again (at least once, as for a job running at the time
    /// of the crash), so while workers drain a queue their removals share a few commits instead of
    /// each paying for one. Additions are never held back: their submitters wait for them.
    static let removalDelay: TimeAmount = .milliseconds(20)
    static let removalBatchTarget = 512

    /// One commit in flight at a time; what the machine asks to persist meanwhile waits in
    /// `pendingBatch` and goes in the next commit, so a busy server commits many jobs at once.
    private func startCommitIfIdle(flushingRemovals: Bool = false) {
        guard !commitInFlight, !pendingBatch.isEmpty else { return }
        if pendingBatch.added.isEmpty && pendingBatch.removedHandles.count < Self.removalBatchTarget
            && !flushingRemovals && storeIdle == nil
        {
            if deferredRemovals == nil {
                deferredRemovals = eventLoop.scheduleTask(in: Self.removalDelay) { [self] in
                    deferredRemovals = nil
                    startCommitIfIdle(flushingRemovals: true)
                }
            }
            return
        }
        deferredRemovals?.cancel()
        deferredRemovals = nil
        let batch = pendingBatch
        pendingBatch = QueueBatch()
        commitInFlight = true
        let handles = batch.added.map(\.handle)
        let started = timesCommits ? NIODeadline.now().uptimeNanoseconds : 0
        let operations = batch.added.count + batch.removedHandles.count
        store.commit(batch) { [self] result in
            let finished = timesCommits ? NIODeadline.now().uptimeNanoseconds : 0
            // An in-memory store completes at once, on this loop; a durable one on its own thread.
            if eventLoop.inEventLoop {
                commitFinished(result, handles: handles, operations: operations, nanoseconds: finished &- started)
            } else {
                eventLoop.execute {
                    self.commitFinished(result, handles: handles, operations: operations, nanoseconds: finished &- started)
                }
            }
        }
    }

    private func commitFinished(
        _ result: Result<Void, QueueStoreError>, handles: [ByteBuffer], operations: Int, nanoseconds: UInt64
    ) {
        commitInFlight = false
        if timesCommits, let metrics {
            let succeeded = if case .success = result { true } else { false }
            metrics.commitFinished(operations: operations, nanoseconds: nanoseconds, succeeded: succeeded)
        }
        switch result {
        case .success:
            machine.persistCompleted(handles: handles)
        case .failure(let error):
            logger.error(
                "queue store commit failed; its submissions are refused",
                metadata: ["error": "\(error.message)", "gearman.jobs": "\(handles.count)"])
            machine.persistFailed(handles: handles, reason: error.message)
        }
        startCommitIfIdle()
        if !commitInFlight && pendingBatch.isEmpty, let promise = storeIdle {
            storeIdle = nil
            promise.succeed()
        }
        performActions()
    }

    /// Succeeds once nothing is waiting to be committed.
    private func whenStoreIdle() -> EventLoopFuture<Void> {
        startCommitIfIdle(flushingRemovals: true)
        if !commitInFlight && pendingBatch.isEmpty { return eventLoop.makeSucceededVoidFuture() }
        let promise = storeIdle ?? eventLoop.makePromise()
        storeIdle = promise
        return promise.futureResult
    }

    /// Queues the jobs the store kept, before any connection is accepted.
    func restore(_ jobs: [StoredJob]) {
        eventLoop.preconditionInEventLoop()
        machine.restore(jobs)
        performActions()
    }

    private func rearmTimer() {
        guard let deadline = machine.nextTimerDeadline else {
            timer?.task.cancel()
            timer = nil
            return
        }
        // A timer that fires early is harmless (nothing is due yet, and it is armed again), so keep
        // one that is due no later than needed instead of rescheduling on every cycle.
        if let timer, timer.deadline <= deadline { return }
        timer?.task.cancel()
        let now = machine.clock.monotonicNanoseconds
        let delay = deadline > now ? Int64(clamping: deadline - now) : 0
        let task = eventLoop.scheduleTask(in: .nanoseconds(delay)) { [self] in
            self.timer = nil
            self.machine.timerFired()
            self.performActions()
        }
        timer = (deadline, task)
    }

    // MARK: Listeners and shutdown

    /// Adopts a bound listener; it is closed when the server stops.
    func addListener(_ channel: any Channel) {
        eventLoop.preconditionInEventLoop()
        guard case .running = shutdownState else {
            channel.close(promise: nil)
            return
        }
        listeners.append(channel)
    }

    private func closeListeners() {
        for channel in listeners {
            channel.close(promise: nil)
        }
        listeners.removeAll()
    }

    /// Stops handing out jobs and waits (up to the shutdown timeout) for running jobs to finish,
    /// then closes every connection.
    func beginGracefulShutdown() {
        eventLoop.preconditionInEventLoop()
        guard case .running = shutdownState else { return }
        closeListeners()
        machine.isDraining = true
        let deadline = eventLoop.scheduleTask(in: shutdownTimeout) { [self] in
            logger.warning("shutdown timeout reached with jobs still running")
            self.stopNow()
        }
        shutdownState = .draining(deadline: deadline)
        logger.info("draining: waiting for running jobs", metadata: ["gearman.running_jobs": "\(machine.runningJobCount)"])
        checkDrained()
    }


    private func checkDrained() {
        guard case .draining = shutdownState, machine.runningJobCount == 0 else { return }
        stopNow()
    }

    /// Closes every connection at once and completes `stopped`.
    func stopNow() {
        eventLoop.preconditionInEventLoop()
        if case .stopped = shutdownState { return }
        if case .draining(let deadline) = shutdownState { deadline.cancel() }
        shutdownState = .stopped
        writeDirty()
        closeListeners()
        timer?.task.cancel()
        timer = nil
        let closes = outputs.values.map { output -> EventLoopFuture<Void> in
            output.channel.close().recover { _ in }
        }
        // Every job acknowledged or not, what is on its way to the store gets there first.
        EventLoopFuture.andAllComplete(closes, on: eventLoop).flatMap { [self] in
            whenStoreIdle()
        }.whenComplete { [stopped] _ in
            stopped.succeed()
        }
    }
}
