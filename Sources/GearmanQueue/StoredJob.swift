public import GearmanProtocol
public import NIOCore

/// A background job as a queue store keeps it: everything needed to queue it again after a restart,
/// with the same handle.
public struct StoredJob: Sendable, Hashable {
    public var handle: ByteBuffer
    public var function: ByteBuffer
    public var unique: ByteBuffer
    public var payload: ByteBuffer
    public var priority: JobPriority
    /// When an epoch job falls due (seconds since the UNIX epoch); nil for an ordinary job.
    public var epoch: Int64?
    /// The reducer of a reduce submission; nil for an ordinary job.
    public var reducer: ByteBuffer?
    /// How often the job was requeued after its worker was lost.
    public var retries: Int

    public init(
        handle: ByteBuffer, function: ByteBuffer, unique: ByteBuffer, payload: ByteBuffer, priority: JobPriority,
        epoch: Int64? = nil, reducer: ByteBuffer? = nil, retries: Int = 0
    ) {
        self.handle = handle
        self.function = function
        self.unique = unique
        self.payload = payload
        self.priority = priority
        self.epoch = epoch
        self.reducer = reducer
        self.retries = retries
    }
}
