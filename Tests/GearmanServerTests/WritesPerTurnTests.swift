import GearmanProtocol
import GearmanQueue
import Logging
import NIOCore
import NIOEmbedded
import Testing

@testable import GearmanServer

/// The core writes what connections were sent once per event loop turn, after every readable
/// connection was processed; a close waits for nothing but still comes after the replies.
@Suite struct WritesPerTurnTests {
    static func packet(_ packet: GearmanPacket) -> [GearmanFrame] { [.packet(packet, magic: .request)] }

    static func makeCore(on loop: EmbeddedEventLoop) -> JobServerCore {
        JobServerCore(
            eventLoop: loop, configuration: .init(), access: nil, shutdownTimeout: .seconds(1),
            store: InMemoryQueueStore(), logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() })
    }

    /// Every packet in the buffers `channel` wrote, and how many buffers (writes) they came in.
    static func written(by channel: EmbeddedChannel) throws -> (packets: [GearmanPacket], writes: Int) {
        var packets: [GearmanPacket] = []
        var writes = 0
        var decoder = GearmanFrameDecoder()
        while var buffer = try channel.readOutbound(as: ByteBuffer.self) {
            writes += 1
            while let frame = try decoder.decode(buffer: &buffer) {
                if case .packet(let packet, _) = frame { packets.append(packet) }
            }
        }
        return (packets, writes)
    }

    @Test func aClientWhoseJobsTwoWorkersCompletedInOneTurnGetsOneWrite() throws {
        let loop = EmbeddedEventLoop()
        let core = Self.makeCore(on: loop)
        let client = ConnectionID(1)
        let workers = [ConnectionID(2), ConnectionID(3)]
        let clientChannel = EmbeddedChannel(loop: loop)
        let workerChannels = [EmbeddedChannel(loop: loop), EmbeddedChannel(loop: loop)]
        core.connectionOpened(client, channel: clientChannel, listener: 0)
        for (worker, channel) in zip(workers, workerChannels) {
            core.connectionOpened(worker, channel: channel, listener: 0)
            core.process(Self.packet(.canDo(function: buf("f"))), from: worker)
        }
        for index in 0..<2 {
            core.process(
                Self.packet(.submitJob(function: buf("f"), unique: buf(""), payload: buf("p\(index)"), priority: .normal, background: false)),
                from: client)
        }
        var handles: [ByteBuffer] = []
        for (worker, channel) in zip(workers, workerChannels) {
            core.process(Self.packet(.grabJob), from: worker)
            loop.run()
            for case .jobAssign(let handle, _, _) in try Self.written(by: channel).packets { handles.append(handle) }
        }
        try #require(handles.count == 2)
        _ = try Self.written(by: clientChannel)

        // Both workers' completions are read in the same turn (two readable connections).
        for (worker, handle) in zip(workers, handles) {
            core.process(Self.packet(.workComplete(handle: handle, payload: buf("done \(String(buffer: handle))"))), from: worker)
        }
        #expect(try clientChannel.readOutbound(as: ByteBuffer.self) == nil, "nothing is written before the turn ends")
        loop.run()
        let (packets, writes) = try Self.written(by: clientChannel)
        #expect(writes == 1, "one write for both replies")
        #expect(packets == handles.map { .workComplete(handle: $0, payload: buf("done \(String(buffer: $0))")) })
        core.stopNow()
        loop.run()
        try core.stopped.futureResult.wait()
    }

    @Test func repliesStillWaitingForTheTurnAreWrittenBeforeTheServerStops() throws {
        let loop = EmbeddedEventLoop()
        let core = Self.makeCore(on: loop)
        let client = ConnectionID(1)
        let channel = EmbeddedChannel(loop: loop)
        core.connectionOpened(client, channel: channel, listener: 0)
        core.process(Self.packet(.echoRequest(payload: buf("before the stop"))), from: client)
        core.stopNow()
        #expect(try Self.written(by: channel).packets == [.echoResponse(payload: buf("before the stop"))])
        loop.run()
        try core.stopped.futureResult.wait()
    }
}
