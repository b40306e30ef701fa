import GearmanProtocol
import GearmanTLS
import NIOCore

/// The per-connection channel handler: collects the frames of one read cycle and hands them to the
/// core in one call. It does no protocol reasoning of its own.
final class ServerConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = GearmanFrame

    private let core: JobServerCore
    private let id: ConnectionID
    private var frames: [GearmanFrame] = []

    init(core: JobServerCore, id: ConnectionID) {
        self.core = core
        self.id = id
    }

    func channelActive(context: ChannelHandlerContext) {
        let channel = context.channel
        onCore { core, id in core.connectionOpened(id, channel: channel) }
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        frames.append(unwrapInboundIn(data))
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        deliverFrames()
        context.fireChannelReadComplete()
    }

    func channelInactive(context: ChannelHandlerContext) {
        deliverFrames()
        onCore { core, id in core.connectionClosed(id) }
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .handshakeCompleted(let identity) = event as? TLSEvent {
            onCore { core, id in core.peerIdentified(id, identity: identity) }
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        deliverFrames()
        switch error {
        case let error as GearmanProtocolError:
            onCore { core, id in core.protocolError(error, from: id) }
        case let error as TLSError:
            onCore { core, id in core.tlsFailed(id, error: error) }
            context.close(promise: nil)
        default:
            context.close(promise: nil)
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
