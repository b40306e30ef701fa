import GearmanProtocol
import Logging
import NIOCore
import NIOPosix

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

    /// Opens a connection and, when configured, sends SET_CLIENT_ID.
    static func connect(
        to address: GearmanServerAddress, options: GearmanConnectionOptions, eventLoopGroup: any EventLoopGroup,
        onWake: (@Sendable () -> Void)? = nil, logger: Logger
    ) async throws(GearmanError) -> GearmanConnection {
        let server = address.description
        let limits = GearmanFrameDecoder.Limits(maxPacketSize: options.maxPacketSize)
        let bootstrap = ClientBootstrap(group: eventLoopGroup)
            .connectTimeout(.nanoseconds(options.connectTimeout.nanoseconds))
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelOption(.socketOption(.so_keepalive), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandlers(
                        ByteToMessageHandler(GearmanFrameDecoder(limits: limits)),
                        GearmanConnectionHandler(server: server, onWake: onWake, logger: logger))
                }
            }
        let channel: any Channel
        do {
            channel = try await bootstrap.connect(host: address.host, port: address.port).get()
        } catch {
            throw GearmanError(
                .connectionFailed, "cannot connect to \(server): \(error)", server: server,
                underlying: error)
        }
        let handler: NIOLoopBound<GearmanConnectionHandler>
        do {
            handler = try await channel.eventLoop.submit {
                NIOLoopBound(try channel.pipeline.syncOperations.handler(type: GearmanConnectionHandler.self), eventLoop: channel.eventLoop)
            }.get()
        } catch {
            channel.close(promise: nil)
            throw GearmanError(.connectionFailed, "connection to \(server) closed during set-up", server: server)
        }
        let connection = GearmanConnection(address: address, channel: channel, handler: handler)
        if let clientID = options.clientID {
            connection.send(.setClientID(id: ByteBuffer(string: clientID)))
        }
        return connection
    }

    /// Sends a packet that expects no reply.
    func send(_ packet: GearmanPacket) {
        channel.writeAndFlush(OutboundMessage(body: .packet(packet)), promise: nil)
    }

    /// Sends a request and waits for its reply.
    /// - Parameters:
    ///   - listener: for a foreground submission, subscribed to the job's events when JOB_CREATED arrives.
    ///   - timeout: how long to wait; nil waits until the reply or the connection's end.
    func request(
        _ body: OutboundMessage.Body, expecting expectation: ResponseExpectation, listener: JobEventSink? = nil,
        timeout: Duration? = nil
    ) async throws(GearmanError) -> ConnectionReply {
        let eventLoop = channel.eventLoop
        let request = PendingRequest(promise: eventLoop.makePromise())
        let writePromise = eventLoop.makePromise(of: Void.self)
        writePromise.futureResult.whenFailure { [request, server = address.description] error in
            request.promise.fail(
                error as? GearmanError
                    ?? GearmanError(.connectionClosed, "cannot send: \(error)", server: server))
        }
        channel.writeAndFlush(
            OutboundMessage(body: body, expectation: expectation, request: request, listener: listener),
            promise: writePromise)
        let handler = self.handler
        let timer = timeout.map { timeout in
            eventLoop.scheduleTask(in: .nanoseconds(timeout.nanoseconds)) { [server = address.description] in
                handler.value.abandon(
                    request, error: GearmanError(.timeout, "no reply within \(timeout)", server: server))
            }
        }
        defer { timer?.cancel() }
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
