import GearmanProtocol
import HeapModule
import DequeModule
import OrderedCollections
import NIOCore

extension JobServerStateMachine {
    enum GrabVariant {
        /// GRAB_JOB → JOB_ASSIGN
        case plain
        /// GRAB_JOB_UNIQ → JOB_ASSIGN_UNIQ
        case unique
        /// GRAB_JOB_ALL → JOB_ASSIGN_ALL for reduce jobs, JOB_ASSIGN_UNIQ otherwise
        case all
    }

    // MARK: Registration

    mutating func canDo(_ name: ByteBuffer, timeoutMilliseconds: Int64?, from id: ConnectionID) {
        let function = ensureFunction(name)
        if let index = connections[id]!.abilityIndex(function) {
            connections[id]!.abilities[index].timeoutMilliseconds = timeoutMilliseconds
            return
        }
        connections[id]!.abilities.append(.init(function: function, timeoutMilliseconds: timeoutMilliseconds))
        functions[function]!.workers.insert(id)
        observe(.workersChanged(function: function))
        let connection = connections[id]!
        guard connection.isSleeping && !connection.noopSent else { return }
        if functions[function]!.hasRunnableJobs && !isDraining {
            noop(id)
        } else {
            functions[function]!.sleepers.insert(id)
        }
    }

    mutating func cantDo(_ name: ByteBuffer, from id: ConnectionID) {
        guard let index = connections[id]!.abilityIndex(name) else { return }
        let function = connections[id]!.abilities.remove(at: index).function
        functions[function]?.workers.remove(id)
        functions[function]?.sleepers.remove(id)
        observe(.workersChanged(function: function))
        // A job running under the withdrawn registration goes back to the queue (as gearmand).
        for jobID in byAge(connections[id]!.assignedJobs) where jobs[jobID]?.function == function {
            requeue(jobID, countRetry: true)
        }
    }

    mutating func resetAbilities(of id: ConnectionID) {
        for ability in connections[id]!.abilities {
            functions[ability.function]?.workers.remove(id)
            functions[ability.function]?.sleepers.remove(id)
            observe(.workersChanged(function: ability.function))
        }
        connections[id]!.abilities.removeAll()
        for jobID in byAge(connections[id]!.assignedJobs) {
            requeue(jobID, countRetry: true)
        }
    }

    // MARK: Sleep and wake

    /// PRE_SLEEP: NOOP at once when one of the worker's functions has a runnable job (this closes
    /// the race between NO_JOB and a new submission); otherwise the worker sleeps until woken.
    mutating func preSleep(_ id: ConnectionID) {
        connections[id]!.isSleeping = true
        connections[id]!.noopSent = false
        let abilities = connections[id]!.abilities
        if !isDraining && abilities.contains(where: { functions[$0.function]!.hasRunnableJobs }) {
            noop(id)
            return
        }
        for ability in abilities {
            functions[ability.function]!.sleepers.insert(id)
        }
    }

    /// Sends one NOOP to a sleeping worker and takes it out of every sleeper set: one NOOP per sleep.
    private mutating func noop(_ id: ConnectionID) {
        connections[id]!.noopSent = true
        for ability in connections[id]!.abilities {
            functions[ability.function]!.sleepers.remove(id)
        }
        send(.noop, to: id)
    }

    /// A job became runnable for `function`: wake its sleeping workers, at most `workerWakeup` of them.
    mutating func wakeWorkers(for function: ByteBuffer) {
        guard !isDraining else { return }
        let sleepers = functions[function]!.sleepers
        guard !sleepers.isEmpty else { return }
        let limit = configuration.workerWakeup > 0 ? configuration.workerWakeup : Int.max
        var ordered = sleepers.sorted()
        // Start after the sleeper woken last, so successive jobs wake different workers.
        if let last = functions[function]!.lastWoken, let start = ordered.firstIndex(where: { $0 > last }) {
            ordered = Array(ordered[start...] + ordered[..<start])
        }
        let woken = ordered.prefix(limit)
        for worker in woken {
            noop(worker)
        }
        if configuration.workerWakeup > 0 {
            functions[function]!.lastWoken = woken.last
        }
    }

    // MARK: Grabbing

    /// GRAB_JOB*: the highest priority first across all the worker's functions, and among functions
    /// of one priority the one that yielded a job longest ago (round-robin).
    mutating func grab(_ id: ConnectionID, variant: GrabVariant) {
        connections[id]!.isSleeping = false
        connections[id]!.noopSent = false
        for ability in connections[id]!.abilities {
            functions[ability.function]!.sleepers.remove(id)
        }
        guard !isDraining, let (jobID, abilityIndex) = nextJob(for: id) else {
            send(.noJob, to: id)
            return
        }
        let ability = connections[id]!.abilities.remove(at: abilityIndex)
        connections[id]!.abilities.append(ability)

        nextAssignment += 1
        let assignment = nextAssignment
        var job = jobs[jobID]!
        job.state = .running(worker: id, assignment: assignment)
        if configuration.observesMetrics {
            let now = clock.monotonicNanoseconds
            observations.append(.jobAssigned(function: job.function, waitedNanoseconds: now &- min(now, job.since)))
            job.since = now
        }
        jobs[jobID] = job
        functions[job.function]!.queuedCounts[job.priority.rawValue] -= 1
        functions[job.function]!.runningCount += 1
        observe(.queueChanged(function: job.function))
        connections[id]!.assignedJobs.insert(jobID)
        if let timeout = ability.timeoutMilliseconds {
            // Capped: a worker may send an absurd timeout.
            let deadline = Self.deadline(clock.monotonicNanoseconds, plus: UInt64(timeout), times: 1_000_000)
            timeouts.insert(TimeoutEntry(deadline: deadline, job: jobID, assignment: assignment))
        }

        switch variant {
        case .plain:
            send(.jobAssign(handle: job.handle, function: job.function, payload: job.payload), to: id)
        case .unique:
            send(
                .jobAssignUnique(handle: job.handle, function: job.function, unique: job.unique, payload: job.payload),
                to: id)
        case .all:
            if let reducer = job.reducer {
                send(
                    .jobAssignAll(
                        handle: job.handle, function: job.function, unique: job.unique, reducer: reducer,
                        payload: job.payload), to: id)
            } else {
                send(
                    .jobAssignUnique(
                        handle: job.handle, function: job.function, unique: job.unique, payload: job.payload), to: id)
            }
        }
    }

    /// Pops the next runnable job for a worker, skipping stale queue entries.
    private mutating func nextJob(for id: ConnectionID) -> (JobID, abilityIndex: Int)? {
        let abilities = connections[id]!.abilities
        for priority in JobPriority.allCases {
            for (index, ability) in abilities.enumerated() {
                guard functions[ability.function]!.queuedCounts[priority.rawValue] > 0 else { continue }
                while let candidate = functions[ability.function]!.queues[priority.rawValue].popFirst() {
                    if let job = jobs[candidate], job.state == .queued, job.priority == priority {
                        return (candidate, index)
                    }
                }
            }
        }
        return nil
    }
}
