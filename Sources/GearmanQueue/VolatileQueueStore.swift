/// The store of a server without durability (`--queue memory`): it keeps nothing, because the
/// server already holds every job in memory, and a copy here would only double that memory.
/// Every commit succeeds at once; nothing survives the process, as with gearmand without a queue.
public struct VolatileQueueStore: QueueStore {
    public init() {}

    public func commit(_ batch: QueueBatch, completion: @escaping @Sendable (Result<Void, QueueStoreError>) -> Void) {
        completion(.success(()))
    }

    public func loadAll() async throws(QueueStoreError) -> [StoredJob] { [] }
}
