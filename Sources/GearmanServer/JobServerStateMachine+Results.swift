import GearmanProtocol
import OrderedCollections
import NIOCore

extension JobServerStateMachine {
    /// The job a WORK_* packet names, if the sending connection is the worker it is assigned to.
    /// Anyone else (including a worker whose assignment timed out) gets JOB_NOT_FOUND.
    private mutating func assignedJob(_ handle: ByteBuffer, packet: PacketType, from id: ConnectionID) -> Job? {
        if let job = job(withHandle: handle), case .running(let worker, _) = job.state, worker == id {
            return job
        }
        // gearmand's texts differ by packet; clients show them, so match them.
        let text: String
        switch packet {
        case .workException: text = "An exception was received for a job that does not exist"
        case .workData, .workWarning: text = "Job does not exist on server"
        default: text = "Job given in work result not found"
        }
        send(.error(code: ErrorCode.jobNotFound, text: text), to: id)
        return nil
    }

    mutating func workStatus(handle: ByteBuffer, numerator: ByteBuffer, denominator: ByteBuffer, from id: ConnectionID) {
        guard let job = assignedJob(handle, packet: .workStatus, from: id) else { return }
        // Forwarded as sent, but kept as numbers (read like atoi, as gearmand does) for GET_STATUS.
        progress[job.id] = JobProgress(
            numerator: ByteBuffer(string: String(DecimalText.leadingInteger(String(buffer: numerator)))),
            denominator: ByteBuffer(string: String(DecimalText.leadingInteger(String(buffer: denominator)))))
        for listener in job.listeners {
            send(.workStatus(handle: job.handle, numerator: numerator, denominator: denominator), to: listener)
        }
    }

    /// WORK_DATA and WORK_WARNING go to every attached client; nothing is stored.
    mutating func forwardToListeners(_ packet: GearmanPacket, handle: ByteBuffer, from id: ConnectionID) {
        guard let job = assignedJob(handle, packet: packet.type, from: id) else { return }
        if case .workData(_, let payload) = packet, !resultWithinTenantLimit(payload, packet: .workData, job: job, from: id) {
            return
        }
        if case .workWarning(_, let payload) = packet,
            !resultWithinTenantLimit(payload, packet: .workWarning, job: job, from: id)
        {
            return
        }
        for listener in job.listeners {
            send(packet, to: listener)
        }
    }

    /// WORK_COMPLETE, WORK_FAIL and WORK_EXCEPTION end the job: forwarded to every attached client
    /// (an exception only to clients that asked for exceptions, WORK_FAIL to the others), and the
    /// job is removed. Failures are final: no retry.
    mutating func finishWork(_ packet: GearmanPacket, handle: ByteBuffer, from id: ConnectionID) {
        guard let job = assignedJob(handle, packet: packet.type, from: id) else { return }
        var packet = packet
        switch packet {
        case .workComplete(_, let payload), .workException(_, let payload):
            // A result over the tenant's limit is refused; the job fails rather than hang.
            if !resultWithinTenantLimit(payload, packet: packet.type, job: job, from: id) {
                packet = .workFail(handle: job.handle)
            }
        default: break
        }
        if configuration.observesMetrics {
            let now = clock.monotonicNanoseconds
            let ran = now &- min(now, job.since)
            if case .workComplete = packet {
                observations.append(.jobCompleted(function: job.function, ranNanoseconds: ran))
            } else {
                observations.append(.jobFailed(function: job.function, ranNanoseconds: ran))
            }
        }
        for listener in job.listeners {
            if case .workException = packet,
                !(configuration.exceptions || connections[listener]?.exceptions == true)
            {
                send(.workFail(handle: job.handle), to: listener)
            } else {
                send(packet, to: listener)
            }
        }
        removeJob(job.id)
    }
}
