import NIOConcurrencyHelpers
import NIOCore

/// A queue store that keeps jobs in memory only: nothing survives the process, but what was
/// committed can be read back (`loadAll`). For tests, and for embedding a server that restarts
/// inside one process. (`--queue memory` uses `VolatileQueueStore`, which keeps nothing.)
public final class InMemoryQueueStore: QueueStore {
    private struct Storage {
        /// Each job with the number that orders it for replay, given when its handle was first added.
        var jobs: [ByteBuffer: (order: UInt64, job: StoredJob)] = [:]
        var nextOrder: UInt64 = 0
    }

    private let storage = NIOLockedValueBox(Storage())

    public init() {}

    public func commit(_ batch: QueueBatch, completion: @escaping @Sendable (Result<Void, QueueStoreError>) -> Void) {
        self.storage.withLockedValue { storage in
            for job in batch.added {
                if let existing = storage.jobs[job.handle] {
                    storage.jobs[job.handle] = (existing.order, job)
                } else {
                    storage.jobs[job.handle] = (storage.nextOrder, job)
                    storage.nextOrder += 1
                }
            }
            for handle in batch.removedHandles {
                storage.jobs[handle] = nil
            }
        }
        completion(.success(()))
    }

    public func loadAll() async throws(QueueStoreError) -> [StoredJob] {
        self.storage.withLockedValue { storage in
            storage.jobs.values.sorted { $0.order < $1.order }.map(\.job)
        }
    }

    /// Does nothing: the store holds no resource, and its jobs stay, so a test can stop a server and
    /// start another on the same store to see the jobs replayed.
    public func close() async {}

    /// How many jobs the store holds.
    public var count: Int {
        self.storage.withLockedValue { $0.jobs.count }
    }
}
