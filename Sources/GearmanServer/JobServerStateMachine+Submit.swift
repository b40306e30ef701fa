import GearmanProtocol
import OrderedCollections
import NIOCore

extension JobServerStateMachine {
    /// Every SUBMIT_* variant: coalesce on (function, unique), check maxqueue, create, persist,
    /// answer JOB_CREATED, then make the job runnable.
    mutating func submit(_ submission: Submission, packet: PacketType, from id: ConnectionID) {
        guard maySubmit(submission, packet: packet, from: id) else { return }
        guard submission.unique.readableBytes <= Self.maxUniqueLength else {
            send(.error(code: ErrorCode.argumentTooLarge, text: "Unique value too large"), to: id)
            return
        }
        if let reducer = submission.reducer, reducer.readableBytes > Self.maxReducerLength {
            send(.error(code: ErrorCode.argumentTooLarge, text: "Reducer name too large"), to: id)
            return
        }
        let function = ensureFunction(submission.function)
        let key = Self.coalescingKey(function: function, unique: submission.unique, payload: submission.payload)

        if let key, let existing = jobsByKey[key] {
            observe(.jobSubmitted(function: function))
            attach(id, to: existing, background: submission.background)
            return
        }

        guard tenantHasRoom(for: function, packet: packet, from: id) else { return }
        if isQueueFull(function, priority: submission.priority) {
            send(.error(code: ErrorCode.queueError, text: "Job queue is full"), to: id)
            return
        }
        let bytes = Self.heldBytes(payload: submission.payload, unique: submission.unique, reducer: submission.reducer)
        guard queueHasRoom(for: bytes, function: function, packet: packet, from: id) else { return }

        let jobID = createJob(submission, function: function, key: key)
        observe(.jobSubmitted(function: function))
        let job = jobs[jobID]!
        if submission.background {
            if configuration.persistsBackgroundJobs {
                // JOB_CREATED only once the job is durable.
                actions.append(.persist(storedJob(job)))
                awaitCommit(of: job.handle, createdJob: true, for: id)
            } else {
                send(.jobCreated(handle: job.handle), to: id)
            }
        } else {
            jobs[jobID]!.listeners.append(id)
            connections[id]!.listeningJobs.insert(jobID)
            send(.jobCreated(handle: job.handle), to: id)
        }
        schedule(jobID)
    }

    /// Whether `maxqueue` refuses another job. Reads only the counters: a binding of the whole
    /// `FunctionState` kept alive across the enqueue would make the queue append copy the queue.
    private func isQueueFull(_ function: ByteBuffer, priority: JobPriority) -> Bool {
        let limit = functions[function]!.maxQueue[priority]
        return limit > 0 && functions[function]!.totalCount >= limit
    }

    /// A submission that matches a live job joins it: a foreground submitter starts listening, a
    /// background one makes the job durable if it wasn't. Either way it gets the existing handle.
    private mutating func attach(_ id: ConnectionID, to jobID: JobID, background: Bool) {
        var job = jobs[jobID]!
        if background {
            if !job.isBackground {
                job.isBackground = true
                jobs[jobID] = job
                if configuration.persistsBackgroundJobs {
                    actions.append(.persist(storedJob(job)))
                    awaitCommit(of: job.handle, createdJob: false, for: id)
                    return
                }
            }
            if isAwaitingCommit(job.handle) {
                awaitCommit(of: job.handle, createdJob: true, for: id)
                return
            }
        } else if !job.listeners.contains(id) {
            job.listeners.insert(id, at: 0)
            jobs[jobID] = job
            connections[id]!.listeningJobs.insert(jobID)
        }
        send(.jobCreated(handle: job.handle), to: id)
    }

    /// The key a submission coalesces on, or nil when it must not coalesce: an empty unique never
    /// coalesces; `-` coalesces on identical non-empty payloads.
    static func coalescingKey(function: ByteBuffer, unique: ByteBuffer, payload: ByteBuffer) -> CoalescingKey? {
        if unique.readableBytes == 0 { return nil }
        if unique.readableBytes == 1 && unique.getInteger(at: unique.readerIndex, as: UInt8.self) == UInt8(ascii: "-") {
            if payload.readableBytes == 0 { return nil }
            return CoalescingKey(function: function, unique: payload, byPayload: true)
        }
        return CoalescingKey(function: function, unique: unique, byPayload: false)
    }

    // MARK: Status

    mutating func getStatus(handle: ByteBuffer, from id: ConnectionID) {
        guard let job = job(withHandle: handle), mayQueryStatus(of: job.function, from: id) else {
            send(
                .statusResponse(handle: handle, known: false, running: false, numerator: Self.zero, denominator: Self.zero),
                to: id)
            return
        }
        let progress = progress[job.id] ?? .none
        send(
            .statusResponse(
                handle: handle, known: true, running: job.isRunning, numerator: progress.numerator,
                denominator: progress.denominator), to: id)
    }

    /// GET_STATUS_UNIQUE looks the unique up across all functions and answers for the first match.
    mutating func getStatusUnique(unique: ByteBuffer, from id: ConnectionID) {
        var found: Job?
        for function in functions.keys where mayQueryStatus(of: function, from: id) {
            guard let key = Self.coalescingKey(function: function, unique: unique, payload: ByteBuffer()),
                let jobID = jobsByKey[key]
            else { continue }
            found = jobs[jobID]
            break
        }
        guard let job = found else {
            send(
                .statusResponseUnique(
                    unique: unique, known: false, running: false, numerator: Self.zero, denominator: Self.zero,
                    clients: Self.zero), to: id)
            return
        }
        let progress = progress[job.id] ?? .none
        send(
            .statusResponseUnique(
                unique: unique, known: true, running: job.isRunning, numerator: progress.numerator,
                denominator: progress.denominator, clients: ByteBuffer(string: String(job.listeners.count))), to: id)
    }
}
