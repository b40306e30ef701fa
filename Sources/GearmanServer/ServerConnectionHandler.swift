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
/// server buffer without bound.
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

    /// - Parameter preauthenticationLimit: the packet cap until the core lifts it; nil for none.
    init(
        core: JobServerCore, id: ConnectionID, listener: Int, limits: GearmanFrameDecoder.Limits,
        preauthenticationLimit: UInt32?
    ) {
        self.core = core
        self.id = id
        self.listener = listener
        self.gate = PreauthenticationGate(limit: preauthenticationLimit)
        self.processor = NIOSingleStepByteToMessageProcessor(
            ServerFrameDecoder(frames: GearmanFrameDecoder(limits: limits), gate: gate))
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

    private func decode(_ buffer: ByteBuffer, context: ChannelHandlerContext) {
        guard !failed else { return }
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
