import GearmanProtocol
import GearmanTLS
import NIOCore

/// Events the core sends down to a connection's handler.
enum ServerConnectionEvent: Sendable {
    /// The connection authenticated (or needs not): lift the pre-authentication packet cap.
    case packetLimitLifted
}

/// The per-connection channel handler: decodes frames, collects those of one read cycle and hands
/// them to the core in one call. It does no protocol reasoning of its own. While a connection is
/// paused at the pre-authentication cap it holds further reads, so a waiting peer cannot make the
/// server buffer without bound. A packet that has begun to arrive must complete before its
/// `IncompletePacketDeadline` (the slow-loris guard), or the connection is closed with an error.
final class ServerConnectionHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = Any

    private let core: JobServerCore
    private let id: ConnectionID
    /// The index of the listener that accepted the connection.
    private let listener: Int
    private let gate: PreauthenticationGate
    private let processor: NIOSingleStepByteToMessageProcessor<ServerFrameDecoder>
    private var frames: [GearmanFrame] = []
    private var failed = false
    private var pauseReported = false
    private var readHeld = false
    private let bufferedKind = BufferedFrameKind()
    private var packetDeadline: IncompletePacketDeadline?
    private var packetTimer: (deadline: UInt64, task: Scheduled<Void>)?

    /// - Parameters:
    ///   - preauthenticationLimit: the packet cap until the core lifts it; nil for none.
    ///   - packetDeadline: the slow-loris guard; nil for none.
    init(
        core: JobServerCore, id: ConnectionID, listener: Int, limits: GearmanFrameDecoder.Limits,
        preauthenticationLimit: UInt32?, packetDeadline: IncompletePacketDeadline.Settings?
    ) {
        self.core = core
        self.id = id
        self.listener = listener
        self.gate = PreauthenticationGate(limit: preauthenticationLimit)
        self.processor = NIOSingleStepByteToMessageProcessor(
            ServerFrameDecoder(frames: GearmanFrameDecoder(limits: limits), gate: gate, bufferedKind: bufferedKind))
        self.packetDeadline = packetDeadline.map(IncompletePacketDeadline.init(settings:))
    }

    func channelActive(context: ChannelHandlerContext) {
        let channel = context.channel
        let listener = self.listener
        onCore { core, id in core.connectionOpened(id, channel: channel, listener: listener) }
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        decode(unwrapInboundIn(data), context: context)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        deliverFrames()
        context.fireChannelReadComplete()
    }

    func channelInactive(context: ChannelHandlerContext) {
        cancelPacketTimer()
        if !failed && gate.pausedAtSize == nil {
            try? processor.finishProcessing(seenEOF: true) { frames.append($0) }
        }
        deliverFrames()
        onCore { core, id in core.connectionClosed(id) }
        context.fireChannelInactive()
    }

    func read(context: ChannelHandlerContext) {
        if gate.pausedAtSize != nil {
            readHeld = true
            return
        }
        context.read()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        switch event {
        case let event as TLSEvent:
            if case .handshakeCompleted(let identity) = event {
                onCore { core, id in core.peerIdentified(id, identity: identity) }
            }
            context.fireUserInboundEventTriggered(event)
        case let event as ServerConnectionEvent:
            switch event {
            case .packetLimitLifted: liftPacketLimit(context: context)
            }
        default:
            context.fireUserInboundEventTriggered(event)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        deliverFrames()
        if let error = error as? TLSError {
            onCore { core, id in core.tlsFailed(id, error: error) }
        }
        context.close(promise: nil)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        cancelPacketTimer()
    }

    private func decode(_ buffer: ByteBuffer, context: ChannelHandlerContext) {
        guard !failed else { return }
        let received = buffer.readableBytes
        defer { if !failed { timePartialPacket(received: received, context: context) } }
        do {
            try processor.process(buffer: buffer) { frames.append($0) }
        } catch let error as GearmanProtocolError {
            failed = true
            deliverFrames()
            onCore { core, id in core.protocolError(error, from: id) }
            return
        } catch {
            failed = true
            deliverFrames()
            context.close(promise: nil)
            return
        }
        if let size = gate.pausedAtSize, !pauseReported {
            pauseReported = true
            deliverFrames()
            onCore { core, id in core.preauthenticationLimitReached(id, declaredSize: size) }
        }
    }

    private func liftPacketLimit(context: ChannelHandlerContext) {
        gate.limit = nil
        guard gate.pausedAtSize != nil else { return }
        gate.pausedAtSize = nil
        pauseReported = false
        decode(ByteBuffer(), context: context)
        deliverFrames()
        if readHeld {
            readHeld = false
            context.read()
        }
    }

    // MARK: Slow-loris guard

    /// Starts, extends or stops the incomplete-packet deadline after a read was decoded.
    private func timePartialPacket(received: Int, context: ChannelHandlerContext) {
        guard var deadline = packetDeadline else { return }
        if gate.pausedAtSize != nil {
            deadline.suspend()  // the server holds this packet, not the peer
        } else {
            deadline.bytesArrived(received, unprocessed: processor.unprocessedBytes, now: Self.now)
        }
        packetDeadline = deadline
        armPacketTimer(context: context)
    }

    private func armPacketTimer(context: ChannelHandlerContext) {
        guard let due = packetDeadline?.deadline else {
            cancelPacketTimer()
            return
        }
        // A timer due no later than needed is kept: firing early only re-arms it.
        if let packetTimer, packetTimer.deadline <= due { return }
        cancelPacketTimer()
        let now = Self.now
        let delay = due > now ? Int64(clamping: due - now) : 0
        let bound = NIOLoopBound((handler: self, context: context), eventLoop: context.eventLoop)
        let task = context.eventLoop.scheduleTask(in: .nanoseconds(delay)) {
            let (handler, context) = bound.value
            handler.packetTimer = nil
            handler.packetTimerFired(context: context)
        }
        packetTimer = (due, task)
    }

    private func packetTimerFired(context: ChannelHandlerContext) {
        guard !failed, let deadline = packetDeadline else { return }
        guard deadline.hasExpired(now: Self.now) else {
            armPacketTimer(context: context)
            return
        }
        failed = true
        deliverFrames()
        let buffered = processor.unprocessedBytes
        let isText = bufferedKind.isText
        onCore { core, id in core.incompletePacketTimedOut(id, isText: isText, bufferedBytes: buffered) }
    }

    private func cancelPacketTimer() {
        packetTimer?.task.cancel()
        packetTimer = nil
    }

    private static var now: UInt64 { NIODeadline.now().uptimeNanoseconds }

    private func deliverFrames() {
        guard !frames.isEmpty else { return }
        let batch = frames
        frames.removeAll(keepingCapacity: true)
        onCore { core, id in core.process(batch, from: id) }
    }

    private func onCore(_ body: @escaping @Sendable (JobServerCore, ConnectionID) -> Void) {
        let core = self.core
        let id = self.id
        if core.eventLoop.inEventLoop {
            body(core, id)
        } else {
            core.eventLoop.execute { body(core, id) }
        }
    }
}
