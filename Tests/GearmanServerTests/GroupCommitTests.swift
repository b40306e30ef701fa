import GearmanProtocol
import GearmanQueue
import Logging
import NIOCore
import NIOEmbedded
import Testing

@testable import GearmanServer

/// The core's group commit on an embedded event loop, whose clock the test moves.
@Suite struct GroupCommitTests {
    final class RecordingStore: QueueStore, @unchecked Sendable {
        var batches: [QueueBatch] = []

        func commit(_ batch: QueueBatch, completion: @escaping @Sendable (Result<Void, QueueStoreError>) -> Void) {
            batches.append(batch)
            completion(.success(()))
        }

        func loadAll() async throws(QueueStoreError) -> [StoredJob] { [] }
    }

    static func packet(_ packet: GearmanPacket) -> [GearmanFrame] { [.packet(packet, magic: .request)] }

    @Test func removalsAloneWaitToShareACommitAndAdditionsTakeThemAlong() throws {
        let loop = EmbeddedEventLoop()
        let store = RecordingStore()
        let core = JobServerCore(
            eventLoop: loop, configuration: .init(), access: nil, shutdownTimeout: .seconds(1), store: store,
            logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() })
        let client = ConnectionID(1)
        let worker = ConnectionID(2)
        core.connectionOpened(client, channel: EmbeddedChannel(loop: loop), listener: 0)
        core.connectionOpened(worker, channel: EmbeddedChannel(loop: loop), listener: 0)
        for index in 0..<3 {
            core.process(
                Self.packet(.submitJob(function: buf("f"), unique: buf("u\(index)"), payload: buf("p"), priority: .normal, background: true)),
                from: client)
        }
        #expect(store.batches.map(\.added.count) == [1, 1, 1], "additions are committed at once")
        core.process(Self.packet(.canDo(function: buf("f"))), from: worker)
        var handles: [ByteBuffer] = []
        for _ in 0..<3 {
            core.process(Self.packet(.grabJob), from: worker)
            let handle = store.batches[handles.count].added[0].handle
            handles.append(handle)
        }
        // Two jobs finish in separate reads: their removals wait.
        core.process(Self.packet(.workComplete(handle: handles[0], payload: buf("done"))), from: worker)
        loop.advanceTime(by: .milliseconds(5))
        core.process(Self.packet(.workComplete(handle: handles[1], payload: buf("done"))), from: worker)
        #expect(store.batches.count == 3, "no commit yet")
        loop.advanceTime(by: .milliseconds(16))
        #expect(store.batches.count == 4, "one commit at most 20 ms after the first removal")
        #expect(store.batches[3].added.isEmpty && store.batches[3].removedHandles == [handles[0], handles[1]])

        // A waiting removal goes with the next addition.
        core.process(Self.packet(.workComplete(handle: handles[2], payload: buf("done"))), from: worker)
        core.process(
            Self.packet(.submitJob(function: buf("f"), unique: buf("u9"), payload: buf("p"), priority: .normal, background: true)),
            from: client)
        #expect(store.batches.count == 5)
        #expect(store.batches[4].added.count == 1 && store.batches[4].removedHandles == [handles[2]])
        loop.advanceTime(by: .seconds(1))
        #expect(store.batches.count == 5, "nothing left to commit")

        // A removal still waiting when the server stops is committed before it stops.
        core.process(Self.packet(.grabJob), from: worker)
        let last = store.batches[4].added[0].handle
        core.process(Self.packet(.workComplete(handle: last, payload: buf("done"))), from: worker)
        #expect(store.batches.count == 5)
        core.stopNow()
        loop.run()
        #expect(store.batches.count == 6 && store.batches[5].removedHandles == [last])
        try core.stopped.futureResult.wait()
    }
}
