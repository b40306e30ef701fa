public import NIOCore

/// Where background jobs are kept so they outlive the server process.
///
/// The server hands a store batches of changes; a store may commit a batch in one transaction
/// (group commit). `commit` must not block the calling thread on I/O: a store that does I/O
/// performs it elsewhere and calls `completion` when the batch is durable.
public protocol QueueStore: Sendable {
    /// Applies `batch` and calls `completion` once it is durable (or failed). `completion` may run
    /// on any thread, possibly before `commit` returns.
    func commit(_ batch: QueueBatch, completion: @escaping @Sendable (Result<Void, QueueStoreError>) -> Void)

    /// Every stored job, in the order the jobs were first added.
    func loadAll() throws(QueueStoreError) -> [StoredJob]
}

/// One group of changes to a queue store.
public struct QueueBatch: Sendable, Hashable {
    public var added: [StoredJob]
    public var removedHandles: [ByteBuffer]

    public init(added: [StoredJob] = [], removedHandles: [ByteBuffer] = []) {
        self.added = added
        self.removedHandles = removedHandles
    }

    public var isEmpty: Bool { added.isEmpty && removedHandles.isEmpty }
}

/// A queue store could not do what it was asked.
public struct QueueStoreError: Error, Sendable, Hashable, CustomStringConvertible {
    public var message: String

    public init(message: String) {
        self.message = message
    }

    public var description: String { "QueueStoreError: \(message)" }
}
