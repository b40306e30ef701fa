import GearmanACL
import GearmanProtocol
import GearmanTLS
import Logging
import GearmanQueue
import NIOCore
import Testing

@testable import GearmanServer

typealias Machine = JobServerStateMachine<MockClock>

/// A buffer holding the UTF-8 bytes of `string`.
func buf(_ string: String) -> ByteBuffer {
    ByteBuffer(string: string)
}

/// One observable effect of an event, in the order the state machine asked for it (logs left out).
enum Effect: Equatable {
    case send(GearmanPacket, to: ConnectionID)
    case text(String, to: ConnectionID)
    case persist(StoredJob)
    case unpersist(handle: ByteBuffer)
    case close(ConnectionID)
    case shutdown(graceful: Bool)
    case liftPacketLimit(ConnectionID)
}

/// The actions one event produced, with ways to look at them per connection.
struct Outbox {
    var actions: [JobServerAction]

    var effects: [Effect] {
        actions.compactMap { action in
            switch action {
            case .send(let packet, let id): .send(packet, to: id)
            case .sendText(let text, let id): .text(text, to: id)
            case .persist(let job): .persist(job)
            case .unpersist(let handle): .unpersist(handle: handle)
            case .close(let id): .close(id)
            case .shutdown(let graceful): .shutdown(graceful: graceful)
            case .liftPacketLimit(let id): .liftPacketLimit(id)
            case .log: nil
            }
        }
    }

    /// The packets sent to `id`, in order.
    func packets(to id: ConnectionID) -> [GearmanPacket] {
        actions.compactMap { action in
            if case .send(let packet, let target) = action, target == id { return packet }
            return nil
        }
    }

    /// Every packet sent, with its recipient, in order.
    var sent: [(GearmanPacket, ConnectionID)] {
        actions.compactMap { action in
            if case .send(let packet, let target) = action { return (packet, target) }
            return nil
        }
    }

    /// The connections that received `packet`, in order.
    func recipients(of packet: GearmanPacket) -> [ConnectionID] {
        sent.filter { $0.0 == packet }.map(\.1)
    }

    /// The admin text sent to `id`, concatenated.
    func text(to id: ConnectionID) -> String {
        actions.compactMap { action -> String? in
            if case .sendText(let text, let target) = action, target == id { return text }
            return nil
        }.joined()
    }

    var persisted: [StoredJob] {
        actions.compactMap { action in
            if case .persist(let job) = action { return job }
            return nil
        }
    }

    var unpersisted: [ByteBuffer] {
        actions.compactMap { action in
            if case .unpersist(let handle) = action { return handle }
            return nil
        }
    }

    /// True when the event had no effect but logging.
    var isEmpty: Bool { effects.isEmpty }
}

/// Drives a `JobServerStateMachine` with a mock clock, no sockets.
final class Harness {
    let clock: MockClock
    var machine: Machine
    private var lastConnection: UInt64 = 0

    init(
        clock: MockClock = MockClock(), access: AccessControl? = nil,
        configure: (inout Machine.Configuration) -> Void = { _ in }
    ) {
        var configuration = Machine.Configuration()
        configure(&configuration)
        self.clock = clock
        self.machine = Machine(configuration: configuration, clock: clock, access: access)
    }

    /// Commit every persist at once, as the in-memory store does (so JOB_CREATED follows in the same
    /// outbox). Set to false to hold commits and drive them with `commit` / `failCommit`.
    var autoCommit = true

    /// The actions of the last event, with the commits of its persists when `autoCommit` is on.
    private func collect() -> Outbox {
        var actions = machine.takeActions()
        if autoCommit {
            let handles = actions.compactMap { action -> ByteBuffer? in
                if case .persist(let job) = action { return job.handle }
                return nil
            }
            if !handles.isEmpty {
                machine.persistCompleted(handles: handles)
                actions += machine.takeActions()
            }
        }
        return Outbox(actions: actions)
    }

    /// The store committed these jobs.
    @discardableResult
    func commit(_ handles: [ByteBuffer]) -> Outbox {
        machine.persistCompleted(handles: handles)
        return collect()
    }

    /// The store failed to commit these jobs.
    @discardableResult
    func failCommit(_ handles: [ByteBuffer]) -> Outbox {
        machine.persistFailed(handles: handles, reason: "disk full")
        return collect()
    }

    // MARK: Events

    func connect(peer: String = "127.0.0.1") -> ConnectionID {
        let (id, outbox) = open(peer: peer)
        // With an ACL whose anonymous connections have rights, the packet cap is lifted at once.
        #expect(outbox.effects.allSatisfy { $0 == .liftPacketLimit(id) })
        return id
    }

    /// A new connection and what its arrival caused.
    func open(peer: String = "127.0.0.1") -> (ConnectionID, Outbox) {
        lastConnection += 1
        let id = ConnectionID(lastConnection)
        machine.connectionOpened(id, peerAddress: peer)
        return (id, collect())
    }

    /// A TLS handshake completed with `identity`.
    @discardableResult
    func identify(_ id: ConnectionID, _ identity: TLSPeerIdentity) -> Outbox {
        machine.peerIdentified(id, identity: identity)
        return collect()
    }

    /// The handler paused at a packet over the pre-authentication cap.
    @discardableResult
    func preauthenticationLimitReached(_ id: ConnectionID, declaredSize: UInt32) -> Outbox {
        machine.preauthenticationLimitReached(id, declaredSize: declaredSize)
        return collect()
    }

    /// The ACL was replaced (SIGHUP).
    @discardableResult
    func reload(_ policy: AccessPolicy) -> Outbox {
        machine.accessPolicyReloaded(policy)
        return collect()
    }

    /// The audit log lines of an outbox: their `audit` metadata value and their metadata.
    static func auditEvents(_ outbox: Outbox) -> [(event: String, metadata: Logger.Metadata)] {
        outbox.actions.compactMap { action in
            guard case .log(_, _, let metadata) = action, let event = metadata["audit"] else { return nil }
            return ("\(event)", metadata)
        }
    }

    @discardableResult
    func send(_ packet: GearmanPacket, from id: ConnectionID, magic: PacketMagic = .request) -> Outbox {
        machine.packetReceived(packet, magic: magic, from: id)
        return collect()
    }

    @discardableResult
    func admin(_ line: String, from id: ConnectionID) -> Outbox {
        machine.textReceived(buf(line), from: id)
        return collect()
    }

    /// The whole text reply to one admin line.
    func adminReply(_ line: String, from id: ConnectionID) -> String {
        admin(line, from: id).text(to: id)
    }

    @discardableResult
    func close(_ id: ConnectionID) -> Outbox {
        machine.connectionClosed(id)
        return collect()
    }

    @discardableResult
    func fireTimer() -> Outbox {
        machine.timerFired()
        return collect()
    }

    // MARK: Shortcuts

    /// A connection that registered `functions` with CAN_DO.
    func worker(_ functions: String..., peer: String = "127.0.0.1") -> ConnectionID {
        let id = connect(peer: peer)
        for function in functions {
            #expect(send(Pkt.canDo(function), from: id).isEmpty)
        }
        return id
    }

    /// A worker that grabbed, got NO_JOB and went to sleep.
    func sleepingWorker(_ functions: String...) -> ConnectionID {
        let id = connect()
        for function in functions {
            send(Pkt.canDo(function), from: id)
        }
        #expect(send(.grabJob, from: id).packets(to: id) == [.noJob])
        #expect(send(.preSleep, from: id).isEmpty)
        return id
    }

    /// Sends a submission and returns the handle of the JOB_CREATED it got.
    func submit(
        _ packet: GearmanPacket, from id: ConnectionID, sourceLocation: SourceLocation = #_sourceLocation
    ) throws -> ByteBuffer {
        let outbox = send(packet, from: id)
        let created = try #require(outbox.packets(to: id).last, sourceLocation: sourceLocation)
        guard case .jobCreated(let handle) = created else {
            Issue.record("expected JOB_CREATED, got \(created)", sourceLocation: sourceLocation)
            throw HarnessError.unexpectedReply
        }
        return handle
    }

    /// Submits with a fresh client connection; returns the client and the handle.
    func submitFromNewClient(
        _ packet: GearmanPacket, sourceLocation: SourceLocation = #_sourceLocation
    ) throws -> (ConnectionID, ByteBuffer) {
        let client = connect()
        return (client, try submit(packet, from: client, sourceLocation: sourceLocation))
    }

    /// GRAB_JOB's reply to `worker`.
    func grab(_ worker: ConnectionID, _ grab: GearmanPacket = .grabJob) -> GearmanPacket? {
        let replies = send(grab, from: worker).packets(to: worker)
        #expect(replies.count == 1)
        return replies.first
    }

    /// The handle of the job `worker` grabs (GRAB_JOB); fails when it gets NO_JOB.
    func grabHandle(_ worker: ConnectionID, sourceLocation: SourceLocation = #_sourceLocation) throws -> ByteBuffer {
        let reply = grab(worker)
        guard case .jobAssign(let handle, _, _) = reply else {
            Issue.record("expected JOB_ASSIGN, got \(String(describing: reply))", sourceLocation: sourceLocation)
            throw HarnessError.unexpectedReply
        }
        return handle
    }

    /// `show jobs` as lines.
    func showJobs(from id: ConnectionID) -> [String] {
        adminReply("show jobs", from: id).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    }
}

enum HarnessError: Error {
    case unexpectedReply
}

/// Request packets built from strings.
enum Pkt {
    static func canDo(_ function: String) -> GearmanPacket { .canDo(function: buf(function)) }
    static func cantDo(_ function: String) -> GearmanPacket { .cantDo(function: buf(function)) }
    static func canDoTimeout(_ function: String, _ milliseconds: String) -> GearmanPacket {
        .canDoTimeout(function: buf(function), timeout: buf(milliseconds))
    }

    static func submit(
        _ function: String, unique: String = "", _ payload: String = "", priority: JobPriority = .normal,
        background: Bool = false
    ) -> GearmanPacket {
        .submitJob(
            function: buf(function), unique: buf(unique), payload: buf(payload), priority: priority,
            background: background)
    }

    static func submitBG(
        _ function: String, unique: String = "", _ payload: String = "", priority: JobPriority = .normal
    ) -> GearmanPacket {
        submit(function, unique: unique, payload, priority: priority, background: true)
    }

    static func submitEpoch(_ function: String, unique: String = "", epoch: String, _ payload: String = "")
        -> GearmanPacket
    {
        .submitJobEpoch(function: buf(function), unique: buf(unique), epoch: buf(epoch), payload: buf(payload))
    }

    static func submitReduce(
        _ function: String, unique: String = "", reducer: String, _ payload: String = "", background: Bool = false
    ) -> GearmanPacket {
        .submitReduceJob(
            function: buf(function), unique: buf(unique), reducer: buf(reducer), aggregator: ByteBuffer(),
            payload: buf(payload), background: background)
    }

    static func option(_ name: String) -> GearmanPacket { .optionRequest(name: buf(name)) }
    static func getStatus(_ handle: ByteBuffer) -> GearmanPacket { .getStatus(handle: handle) }
    static func getStatusUnique(_ unique: String) -> GearmanPacket { .getStatusUnique(unique: buf(unique)) }

    static func workStatus(_ handle: ByteBuffer, _ numerator: String, _ denominator: String) -> GearmanPacket {
        .workStatus(handle: handle, numerator: buf(numerator), denominator: buf(denominator))
    }
    static func workComplete(_ handle: ByteBuffer, _ payload: String = "") -> GearmanPacket {
        .workComplete(handle: handle, payload: buf(payload))
    }
    static func workData(_ handle: ByteBuffer, _ payload: String) -> GearmanPacket {
        .workData(handle: handle, payload: buf(payload))
    }
    static func workWarning(_ handle: ByteBuffer, _ payload: String) -> GearmanPacket {
        .workWarning(handle: handle, payload: buf(payload))
    }
    static func workException(_ handle: ByteBuffer, _ payload: String) -> GearmanPacket {
        .workException(handle: handle, payload: buf(payload))
    }
}

/// Server packets built from strings, for expectations.
enum Res {
    static func error(_ code: String, _ text: String) -> GearmanPacket { .error(code: code, text: text) }
    static func jobAssign(_ handle: ByteBuffer, _ function: String, _ payload: String) -> GearmanPacket {
        .jobAssign(handle: handle, function: buf(function), payload: buf(payload))
    }
    static func jobAssignUnique(_ handle: ByteBuffer, _ function: String, _ unique: String, _ payload: String)
        -> GearmanPacket
    {
        .jobAssignUnique(handle: handle, function: buf(function), unique: buf(unique), payload: buf(payload))
    }
    static func status(_ handle: ByteBuffer, known: Bool, running: Bool, _ numerator: String, _ denominator: String)
        -> GearmanPacket
    {
        .statusResponse(
            handle: handle, known: known, running: running, numerator: buf(numerator), denominator: buf(denominator))
    }

    static let jobNotFoundResult = error("JOB_NOT_FOUND", "Job given in work result not found")
    static let jobNotFoundData = error("JOB_NOT_FOUND", "Job does not exist on server")
    static let jobNotFoundException = error(
        "JOB_NOT_FOUND", "An exception was received for a job that does not exist")
}
