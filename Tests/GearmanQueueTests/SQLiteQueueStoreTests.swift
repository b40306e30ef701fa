import Foundation
import GearmanProtocol
import NIOCore
import Testing

@testable import GearmanQueue

@Suite(.serialized) struct SQLiteQueueStoreTests {
    /// Jobs that between them use every field's every shape.
    static let variedJobs: [StoredJob] = [
        StoredJob(
            handle: buffer("H:host:1"), function: buffer("resize"), unique: buffer("u-1"),
            payload: buffer([0, 0, 1, 255, 0, 10, 13, 0]), priority: .high),
        StoredJob(
            handle: buffer("H:host:2"), function: buffer("resize"), unique: buffer(""), payload: buffer(""),
            priority: .normal, epoch: 1_900_000_000, reducer: buffer("count"), retries: 3),
        StoredJob(
            handle: buffer([0x48, 0, 0xFF, 0x7F]), function: buffer([0, 1]), unique: buffer([0, 0]),
            payload: ByteBuffer(repeating: 0xAB, count: 300_000), priority: .low, epoch: 0, reducer: buffer(""),
            retries: Int(Int32.max)),
        StoredJob(
            handle: buffer("H:host:4"), function: buffer("f"), unique: buffer("ü-ñ"), payload: buffer("x"),
            priority: .normal, epoch: -5, reducer: nil, retries: 0),
    ]

    @Test func everyFieldRoundTripsByteForByte() async throws {
        try await withTemporaryStore { store, _ in
            try await store.commit(QueueBatch(added: Self.variedJobs))
            let loaded = try await store.loadAll()
            #expect(loaded == Self.variedJobs)
            #expect(loaded[2].reducer == buffer(""))
            #expect(loaded[3].reducer == nil)
            #expect(loaded[0].epoch == nil)
        }
    }

    @Test func reopeningReturnsTheSameJobs() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.file("queue.sqlite")
        let store = try await openStore(path)
        try await store.commit(QueueBatch(added: Self.variedJobs))
        try await store.commit(QueueBatch(removedHandles: [Self.variedJobs[0].handle]))
        await store.close()

        let reopened = try await openStore(path)
        #expect(try await reopened.loadAll() == Array(Self.variedJobs.dropFirst()))
        try await reopened.commit(QueueBatch(added: [sampleJob(9)]))
        await reopened.close()

        let again = try await openStore(path)
        #expect(try await again.loadAll() == Array(Self.variedJobs.dropFirst()) + [sampleJob(9)])
        await again.close()
    }

    /// What a `kill -9` leaves on disk: the files as they are while the store is open, copied by
    /// another process (copying them from this one would drop the store's POSIX lock).
    @Test func theFilesOfAStoreThatWasNeverClosedHoldEveryCommittedJob() async throws {
        try await withTemporaryStore { store, directory in
            let jobs = (0..<600).map { sampleJob($0) }
            for batch in 0..<3 {
                try await store.commit(QueueBatch(added: Array(jobs[(batch * 200)..<(batch * 200 + 200)])))
            }
            try await store.commit(QueueBatch(added: [sampleJob(5, retries: 1)], removedHandles: [sampleJob(7).handle]))
            let copy = directory.file("copy")
            #expect(mkdir(copy, 0o755) == 0)
            let cp = Process()
            cp.executableURL = URL(fileURLWithPath: "/bin/cp")
            cp.arguments = [directory.file("queue.sqlite"), directory.file("queue.sqlite-wal"), copy]
            try cp.run()
            cp.waitUntilExit()
            #expect(cp.terminationStatus == 0)

            let recovered = try await openStore("\(copy)/queue.sqlite")
            var expected = jobs
            expected[5] = sampleJob(5, retries: 1)
            expected.remove(at: 7)
            #expect(try await recovered.loadAll() == expected)
            await recovered.close()
        }
    }

    @Test func anUpsertKeepsTheJobsPlaceInTheReplayOrder() async throws {
        try await withTemporaryStore { store, _ in
            try await store.commit(QueueBatch(added: [sampleJob(1), sampleJob(2), sampleJob(3)]))
            try await store.commit(QueueBatch(added: [sampleJob(4), sampleJob(1, retries: 1)]))
            try await store.commit(QueueBatch(added: [sampleJob(1, retries: 2), sampleJob(3, retries: 1)]))
            #expect(
                try await store.loadAll() == [
                    sampleJob(1, retries: 2), sampleJob(2), sampleJob(3, retries: 1), sampleJob(4),
                ])
        }
    }

    @Test func aJobAddedAgainAfterItsRemovalGoesToTheEnd() async throws {
        try await withTemporaryStore { store, _ in
            try await store.commit(QueueBatch(added: [sampleJob(1), sampleJob(2)]))
            try await store.commit(QueueBatch(removedHandles: [sampleJob(1).handle]))
            try await store.commit(QueueBatch(added: [sampleJob(1)]))
            #expect(try await store.loadAll() == [sampleJob(2), sampleJob(1)])
        }
    }

    @Test func removesJobsAndIgnoresHandlesItDoesNotHold() async throws {
        try await withTemporaryStore { store, _ in
            try await store.commit(QueueBatch(added: (1...5).map { sampleJob($0) }))
            try await store.commit(
                QueueBatch(removedHandles: [sampleJob(2).handle, buffer("H:unknown"), sampleJob(4).handle]))
            #expect(try await store.loadAll() == [sampleJob(1), sampleJob(3), sampleJob(5)])
            try await store.commit(QueueBatch(removedHandles: [sampleJob(2).handle]))
            #expect(try await store.loadAll().count == 3)
        }
    }

    @Test func aBatchAppliesItsAdditionsBeforeItsRemovals() async throws {
        try await withTemporaryStore { store, _ in
            try await store.commit(QueueBatch(added: [sampleJob(1)]))
            let handles = [sampleJob(2).handle, sampleJob(1).handle]
            try await store.commit(QueueBatch(added: [sampleJob(2), sampleJob(3)], removedHandles: handles))
            #expect(try await store.loadAll() == [sampleJob(3)])
        }
    }

    @Test func jobsWithAnEmptyUniqueAreSeparateRows() async throws {
        try await withTemporaryStore { store, _ in
            let jobs = (1...3).map { sampleJob($0, unique: "") }
            try await store.commit(QueueBatch(added: jobs))
            #expect(try await store.loadAll() == jobs)
        }
    }

    @Test func anEmptyBatchSucceeds() async throws {
        try await withTemporaryStore { store, _ in
            try await store.commit(QueueBatch())
            #expect(try await store.loadAll().isEmpty)
        }
    }

    @Test func aBatchLargerThanOneStatementIsOneTransaction() async throws {
        try await withTemporaryStore { store, _ in
            let jobs = (0..<2_500).map { sampleJob($0) }
            try await store.commit(QueueBatch(added: jobs, removedHandles: jobs[..<1_200].map(\.handle)))
            #expect(try await store.loadAll() == Array(jobs[1_200...]))
        }
    }

    @Test func aFailedBatchChangesNothingAndTheStoreGoesOn() async throws {
        try await withTemporaryStore { store, _ in
            let kept = (0..<10).map { sampleJob($0) }
            try await store.commit(QueueBatch(added: kept))
            // Let the file grow by a few pages only: the first statement of the next batch (1,000 small
            // jobs) fits, the second (large payloads) does not, so the batch fails half-way, as on a
            // full disk.
            let pages = try #require(Int(try await store.execute(sqlForTesting: "PRAGMA page_count").first ?? ""))
            _ = try await store.execute(sqlForTesting: "PRAGMA max_page_count = \(pages + 80)")
            var batch = QueueBatch(removedHandles: kept[..<5].map(\.handle))
            batch.added = (100..<1_100).map { sampleJob($0) }
            batch.added += (2_000..<2_020).map { number in
                var job = sampleJob(number)
                job.payload = ByteBuffer(repeating: 7, count: 100_000)
                return job
            }
            let error = await #expect(throws: QueueStoreError.self) { try await store.commit(batch) }
            #expect(error?.code == .ioError)
            #expect(error?.message.contains("full") == true)
            #expect(try await store.loadAll() == kept)

            _ = try await store.execute(sqlForTesting: "PRAGMA max_page_count = 1073741823")
            try await store.commit(batch)
            #expect(try await store.loadAll() == Array(kept[5...]) + batch.added)
        }
    }

    @Test func aClosedStoreRefusesWork() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let store = try await openStore(directory.file("queue.sqlite"))
        await store.close()
        await store.close()
        let commitError = await #expect(throws: QueueStoreError.self) {
            try await store.commit(QueueBatch(added: [sampleJob(1)]))
        }
        #expect(commitError?.code == .closed)
        let loadError = await #expect(throws: QueueStoreError.self) { try await store.loadAll() }
        #expect(loadError?.code == .closed)
    }

    @Test func commitsAskedForConcurrentlyAreAllApplied() async throws {
        try await withTemporaryStore { store, _ in
            try await withThrowingTaskGroup(of: Void.self) { group in
                for batch in 0..<20 {
                    group.addTask {
                        try await store.commit(QueueBatch(added: (0..<50).map { sampleJob(batch * 50 + $0) }))
                    }
                }
                try await group.waitForAll()
            }
            let loaded = try await store.loadAll()
            #expect(Set(loaded.map(\.handle)) == Set((0..<1_000).map { sampleJob($0).handle }))
        }
    }

    @Test func usesWALModeAndTheAskedForSynchronousSetting() async throws {
        try await withTemporaryStore { store, _ in
            let journalMode = try await store.execute(sqlForTesting: "PRAGMA journal_mode")
            let synchronous = try await store.execute(sqlForTesting: "PRAGMA synchronous")
            let lockingMode = try await store.execute(sqlForTesting: "PRAGMA locking_mode")
            #expect(journalMode == ["wal"])
            #expect(synchronous == ["2"])
            #expect(lockingMode == ["exclusive"])
        }
        try await withTemporaryStore(synchronous: .normal) { store, _ in
            let synchronous = try await store.execute(sqlForTesting: "PRAGMA synchronous")
            #expect(synchronous == ["1"])
        }
    }

    /// Not a timed assertion: 50 group commits of 200 jobs, as the server makes them, all come back
    /// in order.
    @Test func manyBatchesLoadBackInOrder() async throws {
        try await withTemporaryStore { store, _ in
            for batch in 0..<50 {
                try await store.commit(QueueBatch(added: (0..<200).map { sampleJob(batch * 200 + $0) }))
            }
            let loaded = try await store.loadAll()
            #expect(loaded.count == 10_000)
            #expect(loaded == (0..<10_000).map { sampleJob($0) })
        }
    }
}
