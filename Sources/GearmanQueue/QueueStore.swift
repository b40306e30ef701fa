public import NIOCore

/// Where background jobs are kept so they outlive the server process.
///
/// The server hands a store batches of changes; a store commits each batch atomically (group
/// commit: many submissions share one durable write). `commit` must not block the calling thread
/// on I/O: a store that does I/O performs it elsewhere and calls `completion` when the batch is
/// durable.
public protocol QueueStore: Sendable {
    /// Applies `batch` atomically and calls `completion` exactly once, when the batch is durable or
    /// has failed (then none of it was applied). `completion` may run on any thread, possibly
    /// before `commit` returns. Batches are applied in the order `commit` was called.
    ///
    /// An added job whose handle is already stored replaces it but keeps its place in the replay
    /// order. Within one batch the additions are applied before the removals; removing a handle
    /// that is not stored is not an error.
    func commit(_ batch: QueueBatch, completion: @escaping @Sendable (Result<Void, QueueStoreError>) -> Void)

    /// Every stored job, in the order the jobs were first added.
    func loadAll() async throws(QueueStoreError) -> [StoredJob]

    /// Finishes the commits already asked for and releases the store's resources; afterwards
    /// `commit` and `loadAll` fail with `QueueStoreError.Code.closed`. A store that holds no
    /// resource may do nothing (the default).
    func close() async
}

extension QueueStore {
    public func close() async {}
}

/// One group of changes to a queue store.
public struct QueueBatch: Sendable, Hashable {
    /// Jobs to store; a job whose handle is already stored replaces it in place.
    public var added: [StoredJob]
    /// Handles of jobs to forget, applied after `added`.
    public var removedHandles: [ByteBuffer]

    public init(added: [StoredJob] = [], removedHandles: [ByteBuffer] = []) {
        self.added = added
        self.removedHandles = removedHandles
    }

    public var isEmpty: Bool { added.isEmpty && removedHandles.isEmpty }
}
