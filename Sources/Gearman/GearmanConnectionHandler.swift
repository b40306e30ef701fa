import GearmanProtocol
import GearmanTLS
import Logging
import NIOCore

/// What the connection writes: a packet or an admin line, and what it waits for in return.
struct OutboundMessage {
    enum Body {
        case packet(GearmanPacket)
        case text(String)
    }

    var body: Body
    var expectation: ResponseExpectation?
    var request: PendingRequest?
    var listener: JobEventSink?
    /// For a foreground submission: the job it coalesces on, if any.
    var jobKey: JobKey?
    /// How long the request may wait for its reply. The timer starts once the request is
    /// registered, so it can never fire before the request is known.
    var timeout: Duration?
}

/// Runs a connection's `ConnectionStateMachine`: writes requests, matches replies, routes job
/// events, and fails everything outstanding when the connection ends.
///
/// With credentials, the handler authenticates as soon as the transport is up (at once, or after
/// the TLS handshake) and holds back every write until the server has accepted them; `ready`
/// completes only then. A refusal closes the connection with `.authenticationFailed`.
final class GearmanConnectionHandler: ChannelDuplexHandler {
    typealias InboundIn = GearmanFrame
    typealias OutboundIn = OutboundMessage
    typealias OutboundOut = ByteBuffer

    private var machine = ConnectionStateMachine<PendingRequest, JobEventSink>()
    private var closeReason: GearmanError?
    private let server: String
    private let onWake: (@Sendable () -> Void)?
    private let logger: Logger

    private let expectsTLS: Bool
    /// Completed when the connection may be used: once the TLS handshake has finished (at once
    /// without TLS) and, with credentials, the server has accepted them; failed if the connection
    /// ends or errs before.
    private(set) var ready: EventLoopPromise<Void>?

    private let authentication: ConnectionAuthentication?
    private var hasSentAuthentication = false
    /// Whether requests may go out: with no credentials at once, else once they were accepted.
    private var isAuthenticated: Bool
    /// Writes made before the credentials were accepted, sent in order once they are.
    private var heldBack: [(message: OutboundMessage, promise: EventLoopPromise<Void>?)] = []
    private var authenticationTimer: Scheduled<Void>?
    /// A flush is queued on the event loop: writes until it runs share its one `write(2)`.
    private var isFlushScheduled = false

    /// - Parameter authentication: credentials to authenticate with before anything else is sent.
    init(
        server: String, onWake: (@Sendable () -> Void)?, expectsTLS: Bool = false,
        authentication: ConnectionAuthentication? = nil, logger: Logger
    ) {
        self.server = server
        self.onWake = onWake
        self.expectsTLS = expectsTLS
        self.authentication = authentication
        self.isAuthenticated = authentication == nil
        self.logger = logger
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let ready = context.eventLoop.makePromise(of: Void.self)
        self.ready = ready
        if !expectsTLS {
            if authentication == nil {
                ready.succeed()
            } else if context.channel.isActive {
                authenticate(context: context)
            }
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        // A channel closed before it ever became active (a connect that failed or was given up at
        // its deadline) sees no channelInactive; `ready` must still be completed, not leaked.
        ready?.fail(
            closeReason ?? GearmanError(.connectionClosed, "the connection closed before it was ready", server: server))
    }

    func channelActive(context: ChannelHandlerContext) {
        context.fireChannelActive()
        if !expectsTLS { authenticate(context: context) }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .handshakeCompleted(let identity) = event as? TLSEvent {
            logger.debug(
                "TLS handshake completed",
                metadata: [
                    "gearman.server": "\(server)", "tls.protocol": "\(identity.protocolVersion)",
                    "tls.peer_cn": "\(identity.commonNames.joined(separator: ","))",
                ])
            if authentication == nil {
                ready?.succeed()
            } else {
                authenticate(context: context)
            }
        }
        context.fireUserInboundEventTriggered(event)
    }

    // MARK: Authentication

    /// Sends the credentials, once, as the connection's first bytes, and bounds the wait for the answer.
    private func authenticate(context: ChannelHandlerContext) {
        guard let authentication, !hasSentAuthentication, !machine.isClosed else { return }
        hasSentAuthentication = true
        machine.authenticationSent(principal: authentication.credentials.principal)
        context.writeAndFlush(wrapOutboundOut(authentication.encoded(allocator: context.channel.allocator)), promise: nil)
        if let timeout = authentication.timeout {
            let channel = context.channel
            authenticationTimer = context.eventLoop.assumeIsolated().scheduleTask(in: .nanoseconds(timeout.nanoseconds)) {
                [self] in
                guard machine.isAuthenticating, closeReason == nil else { return }
                closeReason = GearmanError(
                    .timeout, "the server did not answer the authentication within \(timeout)", server: server)
                channel.close(promise: nil)
            }
        }
    }

    /// The server accepted the credentials: send what was held back, then let the connection be used.
    private func authenticated(context: ChannelHandlerContext) {
        isAuthenticated = true
        authenticationTimer?.cancel()
        authenticationTimer = nil
        logger.debug(
            "authenticated",
            metadata: ["gearman.server": "\(server)", "gearman.principal": "\(authentication?.credentials.principal ?? "")"])
        let held = heldBack
        heldBack.removeAll()
        for (message, promise) in held {
            send(message, context: context, promise: promise)
        }
        if !held.isEmpty { context.flush() }
        ready?.succeed()
    }

    // MARK: Outbound

    /// Flushes once per turn of the event loop rather than once per request: the requests of the
    /// tasks that run in one turn (a client with many jobs in flight, resumed by results read
    /// together) leave in one `write(2)` instead of one each. The queued flush runs after the
    /// tasks already queued on the loop, so it adds no wait of its own.
    func flush(context: ChannelHandlerContext) {
        guard !isFlushScheduled else { return }
        isFlushScheduled = true
        context.eventLoop.assumeIsolated().execute { [self] in
            isFlushScheduled = false
            context.flush()
        }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let message = unwrapOutboundIn(data)
        guard !machine.isClosed else {
            let error = closeReason ?? GearmanError(.connectionClosed, "connection closed", server: server)
            message.request?.promise.fail(error)
            message.listener?.continuation.finish(throwing: error)
            promise?.fail(error)
            return
        }
        guard isAuthenticated else {
            heldBack.append((message, promise))
            return
        }
        send(message, context: context, promise: promise)
    }

    /// Registers a request with the machine (and its timeout) and writes it.
    private func send(_ message: OutboundMessage, context: ChannelHandlerContext, promise: EventLoopPromise<Void>?) {
        var isWaitingForCreation = false
        if let request = message.request, let listener = message.listener, message.expectation == .jobCreated {
            switch machine.foregroundSubmitted(key: message.jobKey, request: request, listener: listener) {
            case .send:
                break
            case .joined(let handle):
                request.promise.succeed(.packet(.jobCreated(handle: handle)))
                promise?.succeed()
                return
            case .waitingForCreation:
                isWaitingForCreation = true
            }
        } else if let expectation = message.expectation, let request = message.request {
            machine.requestSent(expectation, request: request, listener: message.listener)
        }
        if let request = message.request, let timeout = message.timeout {
            let timer = context.eventLoop.assumeIsolated().scheduleTask(in: .nanoseconds(timeout.nanoseconds)) { [self] in
                self.abandon(request, error: GearmanError(.timeout, "no reply within \(timeout)", server: server))
            }
            request.promise.futureResult.whenComplete { _ in timer.cancel() }
        }
        if isWaitingForCreation {
            promise?.succeed()
            return
        }
        var buffer = context.channel.allocator.buffer(capacity: 64)
        var tail: ByteBuffer?
        switch message.body {
        case .packet(let packet):
            tail = GearmanPacketEncoder.encode(packet, magic: .request, into: &buffer)
        case .text(let line):
            buffer.writeString(line)
            buffer.writeString("\r\n")
        }
        if let tail {
            context.write(wrapOutboundOut(buffer), promise: nil)
            context.write(wrapOutboundOut(tail), promise: promise)
        } else {
            context.write(wrapOutboundOut(buffer), promise: promise)
        }
    }

    // MARK: Inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        run(machine.frameReceived(unwrapInboundIn(data)), context: context)
    }

    func channelInactive(context: ChannelHandlerContext) {
        let error =
            closeReason
            ?? (machine.isAuthenticating
                ? GearmanError(
                    .authenticationFailed,
                    "the server closed the connection before accepting the credentials of principal "
                        + String(reflecting: authentication?.credentials.principal ?? ""), server: server)
                : GearmanError(.connectionClosed, "the server closed the connection", server: server))
        authenticationTimer?.cancel()
        authenticationTimer = nil
        ready?.fail(error)
        let held = heldBack
        heldBack.removeAll()
        for (message, promise) in held {
            message.request?.promise.fail(error)
            message.listener?.continuation.finish(throwing: error)
            promise?.fail(error)
        }
        let (requests, listeners) = machine.closed(error)
        for request in requests {
            request.promise.fail(error)
        }
        for (handle, listener) in listeners {
            var error = error
            error.jobHandle = String(buffer: handle)
            listener.continuation.finish(throwing: error)
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if closeReason == nil {
            if let error = error as? GearmanProtocolError {
                closeReason = GearmanError(
                    .protocolViolation, "the server sent malformed data: \(error.message)", server: server,
                    underlying: error)
            } else if let error = error as? TLSError {
                // During the handshake, or (TLS 1.3) the server's late refusal of our certificate.
                let reasons = error.openSSLErrors.isEmpty ? "" : ": " + error.openSSLErrors.joined(separator: "; ")
                closeReason = GearmanError(
                    .connectionClosed, "TLS with \(server) failed (\(error.message)\(reasons))", server: server,
                    underlying: error)
            } else {
                closeReason = GearmanError(
                    .connectionClosed, "connection error: \(error)", server: server, underlying: error)
            }
        }
        context.close(promise: nil)
    }

    // MARK: Calls from the connection (on the event loop)

    var bookkeeping: (pendingRequests: Int, listeners: Int) {
        (machine.pendingCount + heldBack.count(where: { $0.message.request != nil }), machine.listenerCount)
    }

    /// The caller gave up waiting; its reply will be dropped (or, if it was still held back for
    /// the authentication, it is not sent).
    func abandon(_ request: PendingRequest, error: GearmanError) {
        if let index = heldBack.firstIndex(where: { $0.message.request === request }) {
            let held = heldBack.remove(at: index)
            request.promise.fail(error)
            held.promise?.fail(error)
        } else if machine.abandon(request) {
            request.promise.fail(error)
        }
    }

    /// Stops delivering a job's events to `listener`, ending its sequence with `error`.
    func removeListener(_ listener: JobEventSink, handle: ByteBuffer, error: GearmanError) {
        if machine.removeListener(listener, handle: handle) {
            listener.continuation.finish(throwing: error)
        }
    }

    // MARK: Actions

    private func run(_ action: ConnectionStateMachine<PendingRequest, JobEventSink>.Action, context: ChannelHandlerContext) {
        switch action {
        case .succeed(let requests, let reply):
            for request in requests {
                request.promise.succeed(reply)
            }
        case .fail(let requests, var error):
            error.server = server
            for request in requests {
                request.promise.fail(error)
            }
        case .deliver(let event, let handle, let listeners):
            deliver(event, handle: handle, to: listeners)
        case .wake:
            onWake?()
        case .unmatchedError(let code, let text):
            logger.debug("server error not matched to a request", metadata: ["code": "\(code)", "text": "\(text)"])
        case .authenticated:
            authenticated(context: context)
        case .closeConnection(var error):
            error.server = server
            if let credentials = authentication?.credentials {
                // The server's own words may be in the message; they must not carry the secret on.
                error.message = credentials.redacting(error.message)
            }
            logger.warning("closing connection", metadata: ["error": "\(error.message)", "gearman.server": "\(server)"])
            closeReason = error
            context.close(promise: nil)
        case .none:
            break
        }
    }

    private func deliver(
        _ event: ConnectionStateMachine<PendingRequest, JobEventSink>.JobEvent, handle: ByteBuffer,
        to listeners: [JobEventSink]
    ) {
        let handleText = String(buffer: handle)
        for listener in listeners {
            switch event {
            case .data(let payload):
                listener.continuation.yield(.data(payload))
            case .warning(let payload):
                listener.continuation.yield(.warning(payload))
            case .status(let numerator, let denominator):
                listener.continuation.yield(
                    .status(numerator: Int(String(buffer: numerator)) ?? 0, denominator: Int(String(buffer: denominator)) ?? 0))
            case .complete(let payload):
                listener.continuation.yield(.completed(payload))
                listener.continuation.finish()
            case .fail:
                listener.continuation.finish(
                    throwing: GearmanError(.jobFailed, "the job failed", jobHandle: handleText, server: server))
            case .exception(let payload):
                listener.continuation.finish(
                    throwing: GearmanError(
                        .jobException, "the job raised an exception", jobHandle: handleText, payload: payload,
                        server: server))
            }
        }
    }
}
