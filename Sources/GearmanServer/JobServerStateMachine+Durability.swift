import DequeModule
import GearmanProtocol
import GearmanQueue
import Logging
import NIOCore
import OrderedCollections

extension JobServerStateMachine {
    /// A background submission's JOB_CREATED waits for the commit of its job: the reply is queued
    /// on the connection, and everything sent to it afterwards queues behind.
    mutating func awaitCommit(of handle: ByteBuffer, createdJob: Bool, for id: ConnectionID) {
        pendingPersists[handle, default: PendingPersist(createdJob: createdJob, waiters: [])].waiters.append(id)
        if connections[id]!.held.isEmpty { connectionsHoldingReplies += 1 }
        connections[id]!.held.append(.awaitingCommit(handle))
    }

    /// Whether a commit covering `handle` is still in flight (a joining background submitter waits too).
    func isAwaitingCommit(_ handle: ByteBuffer) -> Bool {
        pendingPersists[handle] != nil
    }

    /// The store committed these jobs: their submitters get JOB_CREATED.
    mutating func persistCompleted(handles: [ByteBuffer]) {
        for handle in handles {
            guard let pending = pendingPersists.removeValue(forKey: handle) else { continue }
            for waiter in pending.waiters {
                resolveHeldReply(of: waiter, handle: handle, with: .jobCreated(handle: handle))
            }
        }
    }

    /// The store could not commit these jobs: their submitters get ERROR QUEUE_ERROR and the
    /// submissions are undone (a created job is dropped, a foreground job made durable is
    /// foreground again), so nothing unacknowledged stays queued as if it were durable.
    mutating func persistFailed(handles: [ByteBuffer], reason: String) {
        for handle in handles {
            guard let pending = pendingPersists.removeValue(forKey: handle) else { continue }
            for waiter in pending.waiters {
                resolveHeldReply(
                    of: waiter, handle: handle,
                    with: .error(code: ErrorCode.queueError, text: "The job could not be stored durably"))
            }
            guard let jobID = jobsByHandle[handle], var job = jobs[jobID] else { continue }
            actions.append(
                .log(
                    .error, "queue store commit failed; submission refused",
                    ["gearman.job_handle": "\(String(buffer: handle))", "error": "\(reason)"]))
            if pending.createdJob {
                for listener in job.listeners {
                    send(.workFail(handle: job.handle), to: listener)
                }
                removeJob(jobID)
            } else {
                job.isBackground = false
                jobs[jobID] = job
                if job.listeners.isEmpty && !job.isRunning { removeJob(jobID) }
            }
        }
    }

    /// Replaces the connection's held reply for `handle` by `packet`, then sends everything at the
    /// front of its queue up to the next reply still waiting for a commit.
    private mutating func resolveHeldReply(of id: ConnectionID, handle: ByteBuffer, with packet: GearmanPacket) {
        // In place: a copy of the queue taken out of `connections` would be copied again (it is
        // shared) by the first change, for every reply resolved.
        guard connections[id]?.held.isEmpty == false else { return }
        if connections[id]!.releaseHeld(handle: handle, as: packet, into: &actions) {
            connectionsHoldingReplies -= 1
        }
    }

    /// Queues the jobs a store kept (before any connection is accepted), in their stored order,
    /// with their handles, priorities, epoch times and retry counts.
    mutating func restore(_ storedJobs: [StoredJob]) {
        for stored in storedJobs where jobsByHandle[stored.handle] == nil {
            let function = ensureFunction(stored.function)
            var key = Self.coalescingKey(function: function, unique: stored.unique, payload: stored.payload)
            if let existing = key, jobsByKey[existing] != nil { key = nil }
            nextJobID += 1
            let id = jobs.reserveID()
            let job = Job(
                id: id, sequence: nextJobID, handle: stored.handle, function: function, unique: stored.unique,
                coalescing: key.map { $0.byPayload ? .byPayload : .byUnique } ?? .none,
                payload: stored.payload, priority: stored.priority, reducer: stored.reducer, epoch: stored.epoch,
                isBackground: true, state: .queued, retries: stored.retries, listeners: [])
            jobs[id] = job
            queuedBytes += Self.heldBytes(payload: job.payload, unique: job.unique, reducer: job.reducer)
            jobsByHandle[stored.handle] = id
            if let key = job.coalescingKey { jobsByKey[key] = id }
            if let tenant = functions[function]!.tenant { tenantJobCounts[tenant, default: 0] += 1 }
            schedule(id)
        }
    }
}
