public import NIOCore

/// TLS over OpenSSL for any NIO channel: plaintext above, ciphertext below. Knows nothing of
/// Gearman.
///
/// The handshake starts when the channel is active. When it completes, the handler sends
/// ``TLSEvent/handshakeCompleted(_:)`` (with the peer's identity) up the pipeline before any
/// application data; writes made earlier are held and sent then. A handshake that does not finish
/// within the configuration's `handshakeTimeout` closes the channel with `.handshakeTimeout`.
/// `close` sends close_notify without waiting for the peer's; an EOF without close_notify after the
/// handshake is reported as `.uncleanShutdown`. Every failure affects this channel only.
public final class TLSHandler: ChannelDuplexHandler, RemovableChannelHandler {
    public typealias InboundIn = ByteBuffer
    public typealias InboundOut = ByteBuffer
    public typealias OutboundIn = ByteBuffer
    public typealias OutboundOut = ByteBuffer

    private enum State {
        case idle
        case handshaking(TLSConnection)
        case active(TLSConnection)
        case closing(TLSConnection)
        case closed
    }

    private let context: TLSContext
    private let serverName: String?
    private var state = State.idle
    private var handshakeTimer: Scheduled<Void>?
    /// Writes made before the handshake completed, sent once it has.
    private var heldWrites: [(ByteBuffer, EventLoopPromise<Void>?)] = []
    private var flushHeld = false
    /// Promises of writes encrypted but not yet handed to the network.
    private var unflushedPromises: [EventLoopPromise<Void>] = []
    /// Small writes since the last flush, encrypted together at the flush so that they share TLS
    /// records (one record per write costs a header, a tag and an encryption call each), and
    /// the promises of those writes.
    private var pendingPlaintext = ByteBuffer()
    private var pendingPromises: [EventLoopPromise<Void>] = []
    /// Writes up to this size wait for the flush in `pendingPlaintext`; larger ones are encrypted
    /// at once (after what waits), without a copy.
    public static let coalescingLimit = 4096
    private var receivedCloseNotify = false

    /// - Parameters:
    ///   - context: the shared TLS context (its configuration says client or server).
    ///   - serverName: client only: the name to send as SNI and verify the server against,
    ///     overriding the configuration's `serverName` (typically the host connected to).
    public init(context: TLSContext, serverName: String? = nil) {
        self.context = context
        self.serverName = serverName
    }

    // MARK: Lifecycle

    public func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { start(context: context) }
    }

    public func channelActive(context: ChannelHandlerContext) {
        start(context: context)
        context.fireChannelActive()
    }

    private func start(context: ChannelHandlerContext) {
        guard case .idle = state else { return }
        let connection: TLSConnection
        do {
            connection = try TLSConnection(context: self.context, serverName: serverName)
        } catch {
            fail(error, context: context)
            return
        }
        state = .handshaking(connection)
        let timeout = self.context.configuration.handshakeTimeout
        let (seconds, attoseconds) = timeout.components
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        handshakeTimer = context.eventLoop.scheduleTask(
            in: .seconds(seconds) + .nanoseconds(attoseconds / 1_000_000_000)
        ) {
            let (handler, context) = loopBound.value
            guard case .handshaking = handler.state else { return }
            handler.fail(
                TLSError(code: .handshakeTimeout, message: "no TLS handshake within \(timeout)"), context: context)
        }
        if self.context.configuration.role == .client {
            handshakeStep(connection, context: context)
        }
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        handshakeTimer?.cancel()
        failHeldWrites(ChannelError.ioOnClosedChannel)
    }

    // MARK: Inbound

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let ciphertext = unwrapInboundIn(data)
        switch state {
        case .handshaking(let connection):
            connection.feed(ciphertext)
            handshakeStep(connection, context: context)
        case .active(let connection), .closing(let connection):
            connection.feed(ciphertext)
            readLoop(connection, context: context)
        case .idle, .closed:
            break
        }
    }

    public func channelInactive(context: ChannelHandlerContext) {
        handshakeTimer?.cancel()
        let wasActive: Bool
        switch state {
        case .active: wasActive = true
        case .idle, .handshaking, .closing, .closed: wasActive = false
        }
        state = .closed
        failHeldWrites(ChannelError.ioOnClosedChannel)
        if wasActive && !receivedCloseNotify {
            context.fireErrorCaught(
                TLSError(code: .uncleanShutdown, message: "the peer closed the connection without close_notify"))
        }
        context.fireChannelInactive()
    }

    private func handshakeStep(_ connection: TLSConnection, context: ChannelHandlerContext) {
        let outcome = connection.doHandshake()
        let wrote = writeNetwork(connection, context: context)
        switch outcome {
        case .complete:
            if wrote { context.flush() }
            handshakeTimer?.cancel()
            handshakeTimer = nil
            state = .active(connection)
            context.fireUserInboundEventTriggered(TLSEvent.handshakeCompleted(connection.peerIdentity()))
            sendHeldWrites(connection, context: context)
            // Application data may have arrived with the last handshake flight.
            readLoop(connection, context: context)
        case .incomplete:
            context.flush()
        case .closed:
            fail(TLSError(code: .handshakeFailed, message: "the peer closed during the handshake"), context: context)
        case .failed(let error):
            fail(error, context: context)
        }
    }

    /// Decrypts everything the ciphertext fed so far completes and passes it on as one buffer (one
    /// allocation and one channelRead per read, not a 16 KiB buffer per record).
    private func readLoop(_ connection: TLSConnection, context: ChannelHandlerContext) {
        var plaintext = context.channel.allocator.buffer(capacity: 0)
        let outcome = connection.readAvailable(into: &plaintext)
        if plaintext.readableBytes > 0 {
            context.fireChannelRead(wrapInboundOut(plaintext))
        }
        switch outcome {
        case .complete, .incomplete:
            // TLS 1.3 session tickets and key updates may want an answer.
            if writeNetwork(connection, context: context) { context.flush() }
        case .closed:
            receivedCloseNotify = true
            connection.shutdown()
            writeNetwork(connection, context: context)
            context.flush()
            state = .closing(connection)
            context.close(promise: nil)
        case .failed(let error):
            fail(error, context: context)
        }
    }

    // MARK: Outbound

    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let plaintext = unwrapOutboundIn(data)
        switch state {
        case .idle, .handshaking:
            heldWrites.append((plaintext, promise))
        case .active(let connection):
            if plaintext.readableBytes <= Self.coalescingLimit {
                var plaintext = plaintext
                pendingPlaintext.writeBuffer(&plaintext)
                if let promise { pendingPromises.append(promise) }
            } else {
                encryptPending(connection, context: context)
                encrypt(plaintext, promise: promise, connection: connection, context: context)
            }
        case .closing, .closed:
            promise?.fail(ChannelError.ioOnClosedChannel)
        }
    }

    /// Encrypts the small writes waiting for the flush, as one piece.
    private func encryptPending(_ connection: TLSConnection, context: ChannelHandlerContext) {
        guard pendingPlaintext.readableBytes > 0 else { return }
        let promises = pendingPromises
        pendingPromises.removeAll()
        let outcome = connection.write(pendingPlaintext)
        // The only reference again: cleared in place, its storage kept for the next writes.
        pendingPlaintext.clear()
        switch outcome {
        case .complete:
            unflushedPromises.append(contentsOf: promises)
        case .incomplete, .closed:
            for promise in promises { promise.fail(ChannelError.ioOnClosedChannel) }
        case .failed(let error):
            for promise in promises { promise.fail(error) }
            fail(error, context: context)
        }
    }

    public func flush(context: ChannelHandlerContext) {
        switch state {
        case .idle, .handshaking:
            flushHeld = true
        case .active(let connection), .closing(let connection):
            encryptPending(connection, context: context)
            writeNetwork(connection, context: context)
            context.flush()
        case .closed:
            break
        }
    }

    public func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        switch state {
        case .active(let connection), .handshaking(let connection):
            encryptPending(connection, context: context)
            state = .closing(connection)
            connection.shutdown()
            writeNetwork(connection, context: context)
            context.flush()
        case .idle, .closing, .closed:
            break
        }
        context.close(mode: mode, promise: promise)
    }

    private func encrypt(
        _ plaintext: ByteBuffer, promise: EventLoopPromise<Void>?, connection: TLSConnection,
        context: ChannelHandlerContext
    ) {
        switch connection.write(plaintext) {
        case .complete:
            if let promise { unflushedPromises.append(promise) }
        case .incomplete, .closed:
            promise?.fail(ChannelError.ioOnClosedChannel)
        case .failed(let error):
            promise?.fail(error)
            fail(error, context: context)
        }
    }

    private func sendHeldWrites(_ connection: TLSConnection, context: ChannelHandlerContext) {
        let writes = heldWrites
        heldWrites.removeAll()
        for (plaintext, promise) in writes {
            encrypt(plaintext, promise: promise, connection: connection, context: context)
        }
        if flushHeld || !writes.isEmpty {
            flushHeld = false
            writeNetwork(connection, context: context)
            context.flush()
        }
    }

    /// Hands OpenSSL's pending ciphertext to the network, completing the promises of the writes it
    /// carries once it is written.
    @discardableResult
    private func writeNetwork(_ connection: TLSConnection, context: ChannelHandlerContext) -> Bool {
        let promises = unflushedPromises
        unflushedPromises.removeAll()
        guard let ciphertext = connection.drainOutput(allocator: context.channel.allocator) else {
            for promise in promises { promise.succeed() }
            return false
        }
        if promises.isEmpty {
            context.write(wrapOutboundOut(ciphertext), promise: nil)
        } else {
            let written = context.eventLoop.makePromise(of: Void.self)
            for promise in promises { written.futureResult.cascade(to: promise) }
            context.write(wrapOutboundOut(ciphertext), promise: written)
        }
        return true
    }

    // MARK: Failure

    /// Sends whatever alert OpenSSL queued, reports the error, and closes this channel.
    private func fail(_ error: any Error, context: ChannelHandlerContext) {
        handshakeTimer?.cancel()
        switch state {
        case .handshaking(let connection), .active(let connection), .closing(let connection):
            writeNetwork(connection, context: context)
            context.flush()
        case .idle, .closed:
            break
        }
        state = .closed
        failHeldWrites(error)
        // Never encrypted: their bytes will not be sent.
        pendingPlaintext.clear()
        for promise in pendingPromises { promise.fail(error) }
        pendingPromises.removeAll()
        for promise in unflushedPromises { promise.fail(error) }
        unflushedPromises.removeAll()
        context.fireErrorCaught(error)
        context.close(promise: nil)
    }

    private func failHeldWrites(_ error: any Error) {
        let writes = heldWrites
        heldWrites.removeAll()
        for (_, promise) in writes { promise?.fail(error) }
    }
}
