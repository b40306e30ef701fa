import NIOCore
import NIOConcurrencyHelpers

/// A queue store that keeps jobs in memory only: nothing survives the process. Useful for tests
/// and for `--queue memory`.
public final class InMemoryQueueStore: QueueStore {
    private struct Storage {
        var jobs: [ByteBuffer: (order: UInt64, job: StoredJob)] = [:]
        var nextOrder: UInt64 = 0
    }

    private let storage = NIOLockedValueBox(Storage())

    public init() {}

    public func commit(_ batch: QueueBatch, completion: @escaping @Sendable (Result<Void, QueueStoreError>) -> Void) {
        self.storage.withLockedValue { storage in
            for job in batch.added {
                let order = storage.jobs[job.handle]?.order ?? storage.nextOrder
                storage.nextOrder += 1
                storage.jobs[job.handle] = (order, job)
            }
            for handle in batch.removedHandles {
                storage.jobs[handle] = nil
            }
        }
        completion(.success(()))
    }

    public func loadAll() throws(QueueStoreError) -> [StoredJob] {
        self.storage.withLockedValue { storage in
            storage.jobs.values.sorted { $0.order < $1.order }.map(\.job)
        }
    }

    /// How many jobs the store holds.
    public var count: Int {
        self.storage.withLockedValue { $0.jobs.count }
    }
}
