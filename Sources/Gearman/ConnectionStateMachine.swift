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
/// A foreground submission whose job this connection already listens to is not sent again: it
/// joins the job here. gearmand attaches a connection to a job once per submission and then sends
/// every WORK_* once per attachment (PROTOCOL c.12), so a second submission of one unique on one
/// connection would duplicate every event; joining locally is what the server would have done,
/// without the copies.
///
/// A connection with credentials authenticates first (OPTION_REQ `auth:…`, or the admin `auth`
/// line): until that is answered nothing else is sent, so the first reply is the authentication's
/// and is not matched against the queue.
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

    /// What a foreground submission does: go to the server, or join a job this connection
    /// already has (or is about to have) with the same function and unique.
    enum SubmitDecision: Equatable {
        case send
        /// The job is known: answer the request with this handle, the listener is subscribed.
        case joined(handle: ByteBuffer)
        /// The same job's JOB_CREATED is still awaited; the request is answered with it.
        case waitingForCreation
    }

    enum Action {
        /// Answer the requests (more than one when submissions joined a pending one).
        case succeed([Request], Reply)
        case fail([Request], GearmanError)
        /// Deliver a job event; a final event also ends the listeners' subscriptions.
        case deliver(JobEvent, handle: ByteBuffer, to: [Listener])
        /// The server woke this (worker) connection.
        case wake
        /// An ERROR that answers no pending request (JOB_NOT_FOUND for a late WORK_*): log it.
        case unmatchedError(code: String, text: String)
        /// The server accepted the connection's credentials: it may be used now.
        case authenticated
        /// The peer broke the protocol, or refused the credentials: close the connection (then
        /// call `closed`).
        case closeConnection(GearmanError)
        case none
    }

    private struct Pending {
        var expectation: Expectation
        var request: Request?  // nil once abandoned
        var listener: Listener?
        /// For a foreground submission: the job it coalesces on, if any.
        var key: JobKey?
        /// Foreground submissions of the same job that joined this one instead of being sent.
        var joined: [(request: Request, listener: Listener)] = []

        /// Everyone still waiting for this reply.
        var requests: [Request] {
            (request.map { [$0] } ?? []) + joined.map(\.request)
        }
    }

    private var pending = Deque<Pending>()
    private var listeners: [ByteBuffer: [Listener]] = [:]
    /// Jobs the server attached this connection to, by coalescing key, until their final event
    /// (also when nobody listens any more: the server's attachment stays).
    private var attachedJobs: [JobKey: ByteBuffer] = [:]
    private var keysByHandle: [ByteBuffer: JobKey] = [:]
    private var adminLines: [String] = []
    /// The principal whose authentication awaits its reply.
    private var authenticatingAs: String?
    private(set) var isClosed = false

    /// Whether an authentication awaits its reply (and nothing else may be sent yet).
    var isAuthenticating: Bool { authenticatingAs != nil }

    var pendingCount: Int { pending.count }
    var listenerCount: Int { listeners.values.reduce(0) { $0 + $1.count } }

    /// The connection's authentication went out, as its first request. Its reply — OPTION_RES
    /// `auth:<principal>` or the admin line `OK` — yields `.authenticated`; an ERROR, an `ERR`
    /// line or another confirmation yields `.closeConnection` with `.authenticationFailed`.
    mutating func authenticationSent(principal: String) {
        precondition(!isClosed, "authentication sent on a closed connection")
        precondition(pending.isEmpty && authenticatingAs == nil, "authentication must be the first request")
        authenticatingAs = principal
    }

    /// A request went out; `listener`, for a foreground submission, subscribes to the job's events
    /// as soon as its JOB_CREATED arrives (before any WORK_* that follows it can be missed).
    mutating func requestSent(_ expectation: Expectation, request: Request, listener: Listener? = nil) {
        precondition(!isClosed, "request sent on a closed connection")
        precondition(authenticatingAs == nil, "request sent before the authentication was answered")
        pending.append(Pending(expectation: expectation, request: request, listener: listener))
    }

    /// A foreground submission with its listener: sent, or joined to the same job on this connection.
    /// - Parameter key: the job's coalescing key; nil when the submission cannot coalesce.
    mutating func foregroundSubmitted(key: JobKey?, request: Request, listener: Listener) -> SubmitDecision {
        precondition(!isClosed, "request sent on a closed connection")
        precondition(authenticatingAs == nil, "request sent before the authentication was answered")
        if let key {
            if let handle = attachedJobs[key] {
                listeners[handle, default: []].append(listener)
                return .joined(handle: handle)
            }
            if let index = pending.lastIndex(where: { $0.key == key }) {
                pending[index].joined.append((request, listener))
                return .waitingForCreation
            }
        }
        pending.append(Pending(expectation: .jobCreated, request: request, listener: listener, key: key))
        return .send
    }

    /// The caller stopped waiting (cancelled or timed out). Its reply is still consumed when it
    /// comes, but nobody hears of it.
    /// - Returns: true if it was still waiting, so the caller fails it.
    mutating func abandon(_ request: Request) -> Bool {
        for index in pending.indices {
            if pending[index].request === request {
                pending[index].request = nil
                pending[index].listener = nil
                return true
            }
            if let position = pending[index].joined.firstIndex(where: { $0.request === request }) {
                pending[index].joined.remove(at: position)
                return true
            }
        }
        return false
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
            if let principal = authenticatingAs {
                authenticatingAs = nil
                return authenticationAnswered(line: String(buffer: line), principal: principal)
            }
            return textReceived(String(buffer: line))
        case .packet(let packet, let magic):
            guard magic == .response else {
                return .closeConnection(GearmanError(.protocolViolation, "the server sent a packet with request magic"))
            }
            if let principal = authenticatingAs {
                authenticatingAs = nil
                return authenticationAnswered(packet: packet, principal: principal)
            }
            return packetReceived(packet)
        }
    }

    // MARK: Authentication

    /// The reply to OPTION_REQ `auth:<principal>:<secret>`.
    private func authenticationAnswered(packet: GearmanPacket, principal: String) -> Action {
        if case .optionResponse(let name) = packet {
            guard String(buffer: name) == "auth:" + principal else {
                // The name is not quoted: a broken server might echo the whole token.
                return .closeConnection(
                    GearmanError(
                        .authenticationFailed,
                        "the server answered the authentication with an OPTION_RES other than auth:\(principal)"))
            }
            return .authenticated
        }
        if case .error(let code, let text) = packet {
            return .closeConnection(
                Self.authenticationError(code: String(buffer: code), text: String(buffer: text), principal: principal))
        }
        return .closeConnection(
            GearmanError(
                .protocolViolation,
                "unexpected \(packet.type.protocolName) from the server while waiting for the authentication's answer"))
    }

    /// The reply to the admin line `auth <principal> <secret>`.
    private func authenticationAnswered(line: String, principal: String) -> Action {
        if line == "OK" { return .authenticated }
        guard let error = AdminReplyParser.serverError(line) else {
            return .closeConnection(
                GearmanError(.protocolViolation, "unexpected reply to the admin auth line (expected OK or ERR)"))
        }
        // Admin replies carry their text with `+` for spaces (`ERR AUTH_FAILED Authentication+failed`).
        let text = line == "ERR" || error.message == error.serverCode ? "" : error.message.replacing("+", with: " ")
        return .closeConnection(Self.authenticationError(code: error.serverCode, text: text, principal: principal))
    }

    /// An authentication the server refused (ERROR packet or `ERR` line): `code` and `text` as it sent them.
    private static func authenticationError(code: String?, text: String, principal: String) -> GearmanError {
        let detail = [code, text.isEmpty ? nil : text].compactMap { $0 }.joined(separator: ": ")
        switch code {
        case "UNKNOWN_OPTION", "UNKNOWN_COMMAND":
            return GearmanError(
                .authenticationFailed, "the server does not support authentication (it answered \(detail))",
                serverCode: code)
        case "AUTH_FAILED":
            return GearmanError(
                .authenticationFailed,
                "the server refused the credentials of principal \(String(reflecting: principal)) (\(detail))",
                serverCode: code)
        default:
            return GearmanError(
                .authenticationFailed,
                "authentication as principal \(String(reflecting: principal)) failed (the server answered "
                    + (detail.isEmpty ? "ERR" : detail) + ")",
                serverCode: code)
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
        case .workFail(var handle):
            // gearmand turns a WORK_EXCEPTION into WORK_FAIL for clients without the `exceptions`
            // option and then sends the handle with a trailing NUL (PROTOCOL c.11).
            if handle.readableBytes > 0, handle.getInteger(at: handle.writerIndex - 1, as: UInt8.self) == 0 {
                handle.moveWriterIndex(to: handle.writerIndex - 1)
            }
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
            let requests = head.requests
            guard !requests.isEmpty else { return .none }
            return .fail(requests, GearmanError(.serverError, message, serverCode: codeText))
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
        if let handle {
            let handle = ByteBuffer(buffer: handle)
            let subscribing = (head.listener.map { [$0] } ?? []) + head.joined.map(\.listener)
            if !subscribing.isEmpty {
                listeners[handle, default: []].append(contentsOf: subscribing)
            }
            // Even when abandoned, a foreground submission attached this connection to the job.
            if let key = head.key {
                attachedJobs[key] = handle
                keysByHandle[handle] = key
            }
        }
        let requests = head.requests
        guard !requests.isEmpty else { return .none }
        return .succeed(requests, .packet(packet))
    }

    private mutating func event(_ event: JobEvent, handle: ByteBuffer) -> Action {
        if event.isFinal, let key = keysByHandle.removeValue(forKey: handle) {
            attachedJobs[key] = nil
        }
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
            return .succeed([request], .text([line]))
        case .adminList:
            if adminLines.isEmpty && line.hasPrefix("ERR ") {
                pending.removeFirst()
                guard let request = head.request else { return .none }
                return .succeed([request], .text([line]))
            }
            if line == "." {
                pending.removeFirst()
                let lines = adminLines
                adminLines.removeAll()
                guard let request = head.request else { return .none }
                return .succeed([request], .text(lines))
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
        authenticatingAs = nil
        let requests = pending.flatMap(\.requests)
        var orphaned: [(ByteBuffer, Listener)] = []
        for (handle, list) in listeners {
            for listener in list { orphaned.append((handle, listener)) }
        }
        pending.removeAll()
        listeners.removeAll()
        attachedJobs.removeAll()
        keysByHandle.removeAll()
        return (requests, orphaned)
    }
}

/// What a server coalesces foreground jobs on: (function, unique), or (function, payload) for the
/// unique `-` (PROTOCOL a.3).
struct JobKey: Hashable, Sendable {
    var function: ByteBuffer
    var unique: ByteBuffer
    var byPayload: Bool

    /// The key of a submission, or nil when the server would not coalesce it.
    init?(function: ByteBuffer, unique: ByteBuffer, payload: ByteBuffer) {
        if unique.readableBytes == 0 { return nil }
        if unique.readableBytes == 1 && unique.getInteger(at: unique.readerIndex, as: UInt8.self) == UInt8(ascii: "-") {
            if payload.readableBytes == 0 { return nil }
            self.init(function: function, unique: payload, byPayload: true)
        } else {
            self.init(function: function, unique: unique, byPayload: false)
        }
    }

    init(function: ByteBuffer, unique: ByteBuffer, byPayload: Bool) {
        self.function = function
        self.unique = unique
        self.byPayload = byPayload
    }
}
