import DequeModule
import GearmanProtocol
import NIOCore

/// The client side of one Gearman connection, without I/O: which response answers which request,
/// and which job events go to which listener.
///
/// Gearman answers requests in order (JOB_CREATED, STATUS_RES, ECHO_RES, OPTION_RES, the reply to
/// a GRAB, admin text), so pending requests are matched first in, first out. WORK_* packets and
/// NOOP arrive unsolicited and are routed by job handle. An ERROR answers the oldest pending
/// request — except JOB_NOT_FOUND, which only ever answers a WORK_* packet (which expects no reply)
/// and so must not be matched against the queue.
///
/// Generic over the request and listener tokens so tests can use plain values.
struct ConnectionStateMachine<Request: AnyObject, Listener: AnyObject> {
    enum Expectation: Equatable {
        case jobCreated
        case status
        case statusUnique
        case echo
        case option
        case grab
        /// An admin list reply: lines until `.`.
        case adminList
        /// A one-line admin reply.
        case adminLine
    }

    enum Reply {
        case packet(GearmanPacket)
        case text([String])
    }

    enum JobEvent {
        case data(ByteBuffer)
        case warning(ByteBuffer)
        case status(numerator: ByteBuffer, denominator: ByteBuffer)
        case complete(ByteBuffer)
        case fail
        case exception(ByteBuffer)

        var isFinal: Bool {
            switch self {
            case .complete, .fail, .exception: true
            case .data, .warning, .status: false
            }
        }
    }

    enum Action {
        case succeed(Request, Reply)
        case fail(Request, GearmanError)
        /// Deliver a job event; a final event also ends the listeners' subscriptions.
        case deliver(JobEvent, handle: ByteBuffer, to: [Listener])
        /// The server woke this (worker) connection.
        case wake
        /// An ERROR that answers no pending request (JOB_NOT_FOUND for a late WORK_*): log it.
        case unmatchedError(code: String, text: String)
        /// The peer broke the protocol: close the connection (then call `closed`).
        case closeConnection(GearmanError)
        case none
    }

    private struct Pending {
        var expectation: Expectation
        var request: Request?  // nil once abandoned
        var listener: Listener?
    }

    private var pending = Deque<Pending>()
    private var listeners: [ByteBuffer: [Listener]] = [:]
    private var adminLines: [String] = []
    private(set) var isClosed = false

    var pendingCount: Int { pending.count }
    var listenerCount: Int { listeners.values.reduce(0) { $0 + $1.count } }

    /// A request went out; `listener`, for a foreground submission, subscribes to the job's events
    /// as soon as its JOB_CREATED arrives (before any WORK_* that follows it can be missed).
    mutating func requestSent(_ expectation: Expectation, request: Request, listener: Listener? = nil) {
        precondition(!isClosed, "request sent on a closed connection")
        pending.append(Pending(expectation: expectation, request: request, listener: listener))
    }

    /// The caller stopped waiting (cancelled or timed out). Its reply is still consumed when it
    /// comes, but nobody hears of it.
    /// - Returns: true if it was still waiting, so the caller fails it.
    mutating func abandon(_ request: Request) -> Bool {
        guard let index = pending.firstIndex(where: { $0.request === request }) else { return false }
        pending[index].request = nil
        pending[index].listener = nil
        return true
    }

    /// Stops delivering a job's events to `listener`.
    /// - Returns: true when it was subscribed.
    mutating func removeListener(_ listener: Listener, handle: ByteBuffer) -> Bool {
        guard var list = listeners[handle], let index = list.firstIndex(where: { $0 === listener }) else { return false }
        list.remove(at: index)
        listeners[handle] = list.isEmpty ? nil : list
        return true
    }

    mutating func frameReceived(_ frame: GearmanFrame) -> Action {
        switch frame {
        case .text(let line):
            return textReceived(String(buffer: line))
        case .packet(let packet, let magic):
            guard magic == .response else {
                return .closeConnection(GearmanError(.protocolViolation, "the server sent a packet with request magic"))
            }
            return packetReceived(packet)
        }
    }

    private mutating func packetReceived(_ packet: GearmanPacket) -> Action {
        switch packet {
        case .jobCreated(let handle):
            return answer(packet, expected: .jobCreated, handle: handle)
        case .statusResponse:
            return answer(packet, expected: .status)
        case .statusResponseUnique:
            return answer(packet, expected: .statusUnique)
        case .echoResponse:
            return answer(packet, expected: .echo)
        case .optionResponse:
            return answer(packet, expected: .option)
        case .jobAssign, .jobAssignUnique, .jobAssignAll, .noJob:
            return answer(packet, expected: .grab)
        case .noop:
            return .wake
        case .workData(let handle, let payload):
            return event(.data(payload), handle: handle)
        case .workWarning(let handle, let payload):
            return event(.warning(payload), handle: handle)
        case .workStatus(let handle, let numerator, let denominator):
            return event(.status(numerator: numerator, denominator: denominator), handle: handle)
        case .workComplete(let handle, let payload):
            return event(.complete(payload), handle: handle)
        case .workFail(let handle):
            return event(.fail, handle: handle)
        case .workException(let handle, let payload):
            return event(.exception(payload), handle: handle)
        case .error(let code, let text):
            let codeText = String(buffer: code)
            let message = String(buffer: text)
            if codeText == "JOB_NOT_FOUND" || pending.isEmpty {
                return .unmatchedError(code: codeText, text: message)
            }
            let head = pending.removeFirst()
            guard let request = head.request else { return .none }
            return .fail(request, GearmanError(.serverError, message, serverCode: codeText))
        case .canDo, .cantDo, .resetAbilities, .preSleep, .grabJob, .grabJobUnique, .grabJobAll, .canDoTimeout,
            .allYours, .submitJob, .submitJobEpoch, .submitJobSched, .submitReduceJob, .getStatus, .getStatusUnique,
            .optionRequest, .echoRequest, .setClientID, .unused:
            return .closeConnection(
                GearmanError(.protocolViolation, "the server sent \(packet.type.protocolName), a request-only packet"))
        }
    }

    private mutating func answer(_ packet: GearmanPacket, expected: Expectation, handle: ByteBuffer? = nil) -> Action {
        guard let head = pending.first, head.expectation == expected else {
            return .closeConnection(
                GearmanError(
                    .protocolViolation,
                    "unexpected \(packet.type.protocolName) from the server"
                        + (pending.first.map { " while waiting for \($0.expectation)" } ?? " with no request pending")))
        }
        pending.removeFirst()
        if let handle, let listener = head.listener {
            listeners[ByteBuffer(buffer: handle), default: []].append(listener)
        }
        guard let request = head.request else { return .none }
        return .succeed(request, .packet(packet))
    }

    private mutating func event(_ event: JobEvent, handle: ByteBuffer) -> Action {
        let subscribed = event.isFinal ? listeners.removeValue(forKey: handle) : listeners[handle]
        guard let subscribed, !subscribed.isEmpty else { return .none }
        return .deliver(event, handle: handle, to: subscribed)
    }

    private mutating func textReceived(_ line: String) -> Action {
        guard let head = pending.first else {
            return .closeConnection(GearmanError(.protocolViolation, "unexpected text line from the server"))
        }
        switch head.expectation {
        case .adminLine:
            pending.removeFirst()
            guard let request = head.request else { return .none }
            return .succeed(request, .text([line]))
        case .adminList:
            if adminLines.isEmpty && line.hasPrefix("ERR ") {
                pending.removeFirst()
                guard let request = head.request else { return .none }
                return .succeed(request, .text([line]))
            }
            if line == "." {
                pending.removeFirst()
                let lines = adminLines
                adminLines.removeAll()
                guard let request = head.request else { return .none }
                return .succeed(request, .text(lines))
            }
            adminLines.append(line)
            return .none
        case .jobCreated, .status, .statusUnique, .echo, .option, .grab:
            return .closeConnection(
                GearmanError(.protocolViolation, "unexpected text line while waiting for \(head.expectation)"))
        }
    }

    /// The connection is gone: every waiting request and every listener hears of it.
    mutating func closed(_ error: GearmanError) -> (requests: [Request], listeners: [(ByteBuffer, Listener)]) {
        isClosed = true
        let requests = pending.compactMap(\.request)
        var orphaned: [(ByteBuffer, Listener)] = []
        for (handle, list) in listeners {
            for listener in list { orphaned.append((handle, listener)) }
        }
        pending.removeAll()
        listeners.removeAll()
        return (requests, orphaned)
    }
}
