import GearmanProtocol
import GearmanTLS
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// One connection to one server, shared by every request that goes there.
final class GearmanConnection: Sendable {
    let address: GearmanServerAddress
    let channel: any Channel
    private let handler: NIOLoopBound<GearmanConnectionHandler>

    private init(address: GearmanServerAddress, channel: any Channel, handler: NIOLoopBound<GearmanConnectionHandler>) {
        self.address = address
        self.channel = channel
        self.handler = handler
    }

    var isActive: Bool { channel.isActive }

    /// Opens a connection, authenticates with `options.credentials` when there are some, and then,
    /// when configured, sends SET_CLIENT_ID.
    ///
    /// Future-based, so the connect goes on (and its result is kept) whoever stops waiting for it.
    /// The future succeeds only once the server accepted the credentials; a refusal (or a close
    /// before the answer) fails it with `.authenticationFailed`.
    /// - Parameters:
    ///   - tlsContext: wraps the connection in TLS; the server is verified against
    ///     `options.tls?.serverName`, else the host connected to.
    ///   - dialect: how to authenticate: OPTION_REQ for client and worker connections, the `auth`
    ///     line for admin connections.
    static func connect(
        to address: GearmanServerAddress, options: GearmanConnectionOptions, eventLoopGroup: any EventLoopGroup,
        tlsContext: TLSContext? = nil, dialect: ConnectionAuthentication.Dialect = .binary,
        onWake: (@Sendable () -> Void)? = nil, logger: Logger
    ) -> EventLoopFuture<GearmanConnection> {
        let server = address.description
        // Admin replies (`workers` with many functions) may be long lines.
        let limits = GearmanFrameDecoder.Limits(maxPacketSize: options.maxPacketSize, maxTextLineLength: 1 << 20)
        let serverName = options.tls?.serverName ?? address.host
        let authentication = options.credentials.map {
            ConnectionAuthentication(credentials: $0, dialect: dialect, timeout: options.connectTimeout)
        }
        // The handler is kept from the initializer: looked up in the pipeline after the connect, it
        // may already be gone when the server refused the credentials and closed at once, and then
        // its AUTH_FAILED would be reported as a closed connection.
        let eventLoop = eventLoopGroup.next()
        let added = NIOLoopBoundBox.makeEmptyBox(valueType: GearmanConnectionHandler.self, eventLoop: eventLoop)
        let bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(.nanoseconds(options.connectTimeout.nanoseconds))
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelOption(.socketOption(.so_keepalive), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tlsContext {
                        try channel.pipeline.syncOperations.addHandler(TLSHandler(context: tlsContext, serverName: serverName))
                    }
                    let handler = GearmanConnectionHandler(
                        server: server, onWake: onWake, expectsTLS: tlsContext != nil, authentication: authentication,
                        logger: logger)
                    try channel.pipeline.syncOperations.addHandlers(
                        ByteToMessageHandler(GearmanFrameDecoder(limits: limits)), handler)
                    added.value = handler
                }
            }
        let clientID = options.clientID
        return bootstrap.connect(host: address.host, port: address.port)
            .flatMapErrorThrowing { error in
                throw GearmanError(
                    .connectionFailed, "cannot connect to \(server): \(Self.describe(error))", server: server,
                    underlying: error)
            }
            .flatMap { channel in
                // The connect future completes on the channel's own loop.
                channel.eventLoop.makeCompletedFuture {
                    guard let handler = added.value, let ready = handler.ready else {
                        channel.close(promise: nil)
                        throw GearmanError(.connectionFailed, "connection to \(server) closed during set-up", server: server)
                    }
                    let connection = GearmanConnection(
                        address: address, channel: channel, handler: NIOLoopBound(handler, eventLoop: channel.eventLoop))
                    return (connection, ready.futureResult)
                }
                .flatMap { (connection: GearmanConnection, ready: EventLoopFuture<Void>) in
                    // Usable once the TLS handshake has finished and the credentials were accepted.
                    ready.flatMapErrorThrowing { error in
                        connection.close()
                        if let error = error as? GearmanError, error.code == .authenticationFailed { throw error }
                        let message = (error as? GearmanError)?.message ?? "\(error)"
                        throw GearmanError(.connectionFailed, message, server: server, underlying: error)
                    }
                    .map {
                        if let clientID {
                            connection.send(.setClientID(id: ByteBuffer(string: clientID)))
                        }
                        return connection
                    }
                }
            }
    }

    /// NIO's connect errors, shortened to what a person needs ("Connection refused").
    static func describe(_ error: any Error) -> String {
        if let error = error as? NIOConnectionError {
            if let failure = error.connectionErrors.first {
                return describe(failure.error)
            }
            if let dns = error.dnsAAAAError ?? error.dnsAError { return "cannot resolve the host name (\(dns))" }
        }
        if let error = error as? IOError {
            return String(cString: strerror(error.errnoCode))
        }
        if error is ChannelError, case .connectTimeout = error as! ChannelError {
            return "timed out"
        }
        return "\(error)"
    }

    /// Sends a packet that expects no reply.
    func send(_ packet: GearmanPacket) {
        channel.writeAndFlush(OutboundMessage(body: .packet(packet)), promise: nil)
    }

    /// Sends a packet that expects no reply and waits until it was handed to the socket, so a
    /// connection closed right afterwards (a worker stopping) doesn't drop it.
    /// - Returns: false when the connection was gone before the packet could be written.
    @discardableResult
    func sendAndWait(_ packet: GearmanPacket) async -> Bool {
        do {
            try await channel.writeAndFlush(OutboundMessage(body: .packet(packet))).get()
            return true
        } catch {
            return false
        }
    }

    /// Requests waiting for their reply and listeners subscribed to job events: what the
    /// connection still keeps track of (for diagnostics and tests).
    func bookkeeping() async -> (pendingRequests: Int, listeners: Int) {
        let handler = self.handler
        return (try? await channel.eventLoop.submit { handler.value.bookkeeping }.get()) ?? (0, 0)
    }

    /// Sends a request and waits for its reply.
    /// - Parameters:
    ///   - listener: for a foreground submission, subscribed to the job's events when JOB_CREATED arrives.
    ///   - jobKey: for a foreground submission, the job it coalesces on (see `ConnectionStateMachine`).
    ///   - timeout: how long to wait; nil waits until the reply or the connection's end.
    func request(
        _ body: OutboundMessage.Body, expecting expectation: ResponseExpectation, listener: JobEventSink? = nil,
        jobKey: JobKey? = nil, timeout: Duration? = nil
    ) async throws(GearmanError) -> ConnectionReply {
        try await reply(to: start(body, expecting: expectation, listener: listener, jobKey: jobKey, timeout: timeout))
    }

    /// Sends a request unless `isSet(flag)` holds; the flag is read and the write queued under the
    /// flag's lock, so a flag set under that lock (a worker stopping) and this request are in a
    /// definite order.
    /// - Returns: nil when the flag was set and nothing was sent.
    func request<Guard: Sendable>(
        _ body: OutboundMessage.Body, expecting expectation: ResponseExpectation, timeout: Duration?,
        unless flag: NIOLockedValueBox<Guard>, _ isSet: @Sendable (Guard) -> Bool
    ) async throws(GearmanError) -> ConnectionReply? {
        let request = flag.withLockedValue { value -> PendingRequest? in
            isSet(value) ? nil : start(body, expecting: expectation, listener: nil, jobKey: nil, timeout: timeout)
        }
        guard let request else { return nil }
        return try await reply(to: request)
    }

    /// Waits for a started request's reply; cancellation abandons it.
    private func reply(to request: PendingRequest) async throws(GearmanError) -> ConnectionReply {
        let eventLoop = channel.eventLoop
        let handler = self.handler
        do {
            return try await withTaskCancellationHandler {
                try await request.promise.futureResult.get()
            } onCancel: {
                eventLoop.execute {
                    handler.value.abandon(request, error: GearmanError(.cancelled, "the waiting task was cancelled"))
                }
            }
        } catch let error as GearmanError {
            throw error
        } catch {
            throw GearmanError(.connectionClosed, "\(error)", server: address.description)
        }
    }

    /// ``request(_:expecting:listener:jobKey:timeout:)`` for callers that are not tasks (connection set-up).
    func requestFuture(
        _ body: OutboundMessage.Body, expecting expectation: ResponseExpectation, timeout: Duration?
    ) -> EventLoopFuture<ConnectionReply> {
        start(body, expecting: expectation, listener: nil, jobKey: nil, timeout: timeout).promise.futureResult
    }

    /// Writes a request; its promise completes with the reply, the connection's end, or the timeout.
    private func start(
        _ body: OutboundMessage.Body, expecting expectation: ResponseExpectation, listener: JobEventSink?,
        jobKey: JobKey?, timeout: Duration?
    ) -> PendingRequest {
        let eventLoop = channel.eventLoop
        let request = PendingRequest(promise: eventLoop.makePromise())
        let writePromise = eventLoop.makePromise(of: Void.self)
        writePromise.futureResult.whenFailure { [request, server = address.description] error in
            request.promise.fail(
                error as? GearmanError
                    ?? GearmanError(.connectionClosed, "cannot send: \(error)", server: server))
        }
        channel.writeAndFlush(
            OutboundMessage(
                body: body, expectation: expectation, request: request, listener: listener, jobKey: jobKey, timeout: timeout),
            promise: writePromise)
        return request
    }

    /// Sends one admin line and returns the reply's lines (without the closing `.` of a list).
    func admin(_ line: String, list: Bool, timeout: Duration?) async throws(GearmanError) -> [String] {
        let reply = try await request(.text(line), expecting: list ? .adminList : .adminLine, timeout: timeout)
        guard case .text(let lines) = reply else {
            throw GearmanError(.protocolViolation, "binary reply to an admin command", server: address.description)
        }
        return lines
    }

    /// Stops delivering a job's events to `listener`.
    func removeListener(_ listener: JobEventSink, handle: ByteBuffer, error: GearmanError) {
        let handler = self.handler
        channel.eventLoop.execute {
            handler.value.removeListener(listener, handle: handle, error: error)
        }
    }

    func close() {
        channel.close(promise: nil)
    }

    var closeFuture: EventLoopFuture<Void> { channel.closeFuture }
}
