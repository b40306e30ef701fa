import GearmanProtocol
import GearmanQueue
import Logging
import NIOCore
import NIOEmbedded
import Testing

@testable import GearmanServer

/// A write or flush that fails (the peer reset the connection) makes NIO close the channel at
/// once, and the connection's handler reports the close to the core while the core is still
/// flushing its replies. The core must not be holding its output table then: it was, and the
/// runtime's exclusivity check killed the server (found by `gearlock bench --driver raw`, whose
/// clients close with jobs in flight).
@Suite struct ReentrantCloseTests {
    /// Emulates a peer that has reset the connection: every flush reports the connection closed
    /// to the core, from inside the flush, as `ServerConnectionHandler.channelInactive` does.
    final class ResetOnFlush: ChannelOutboundHandler, @unchecked Sendable {
        typealias OutboundIn = ByteBuffer
        let core: JobServerCore
        let id: ConnectionID
        var isReset = false
        var flushes = 0

        init(core: JobServerCore, id: ConnectionID) {
            self.core = core
            self.id = id
        }

        func flush(context: ChannelHandlerContext) {
            flushes += 1
            if isReset {
                core.connectionClosed(id)
            } else {
                context.flush()
            }
        }
    }

    static func packet(_ packet: GearmanPacket) -> [GearmanFrame] { [.packet(packet, magic: .request)] }

    @Test func aConnectionClosedWhileItsRepliesAreFlushedIsForgottenAndTheServerGoesOn() throws {
        let loop = EmbeddedEventLoop()
        let core = JobServerCore(
            eventLoop: loop, configuration: .init(), access: nil, shutdownTimeout: .seconds(1),
            store: InMemoryQueueStore(), logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() })
        let clients = (1...3).map { ConnectionID(UInt64($0)) }
        let worker = ConnectionID(10)
        let workerChannel = EmbeddedChannel(loop: loop)
        var resetters: [ResetOnFlush] = []
        for client in clients {
            let resetter = ResetOnFlush(core: core, id: client)
            resetters.append(resetter)
            core.connectionOpened(client, channel: EmbeddedChannel(handler: resetter, loop: loop), listener: 0)
        }
        core.connectionOpened(worker, channel: workerChannel, listener: 0)
        core.process(Self.packet(.canDo(function: ByteBuffer(string: "f"))), from: worker)
        for client in clients {
            core.process(
                Self.packet(.submitJob(
                    function: ByteBuffer(string: "f"), unique: ByteBuffer(), payload: ByteBuffer(string: "\(client)"),
                    priority: .normal, background: false)),
                from: client)
        }
        var handles: [ByteBuffer] = []
        for _ in clients {
            core.process(Self.packet(.grabJob), from: worker)
        }
        loop.run()  // the core writes at the end of the loop's turn
        while let frame = try workerChannel.readOutbound(as: ByteBuffer.self) {
            var frame = frame
            var decoder = GearmanFrameDecoder()
            while let decoded = try decoder.decode(buffer: &frame) {
                if case .packet(.jobAssign(let handle, _, _), _) = decoded { handles.append(handle) }
            }
        }
        #expect(handles.count == 3)

        // Every client has reset its connection; one read from the worker completes all three
        // jobs, so the core flushes to the three in one turn, and each flush closes its client.
        for resetter in resetters { resetter.isReset = true }
        core.process(
            handles.flatMap { Self.packet(.workComplete(handle: $0, payload: ByteBuffer(string: "done"))) }, from: worker)
        loop.run()
        #expect(resetters.map(\.flushes).allSatisfy { $0 >= 2 }, "each client's reply was flushed: \(resetters.map(\.flushes))")

        // The clients are forgotten (a second close is ignored), and the server goes on.
        for client in clients { core.connectionClosed(client) }
        core.process(Self.packet(.echoRequest(payload: ByteBuffer(string: "still here"))), from: worker)
        loop.run()
        var reply = try #require(try workerChannel.readOutbound(as: ByteBuffer.self))
        var decoder = GearmanFrameDecoder()
        #expect(try decoder.decode(buffer: &reply) == .packet(.echoResponse(payload: ByteBuffer(string: "still here")), magic: .response))
        core.stopNow()
        loop.run()
        try core.stopped.futureResult.wait()
    }
}
