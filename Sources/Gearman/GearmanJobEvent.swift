public import NIOCore

/// What a foreground job reports while it runs, and how it ends.
///
/// A job that fails or raises an exception ends its event sequence by throwing a ``GearmanError``
/// (`.jobFailed`, or `.jobException` with the worker's payload).
public enum GearmanJobEvent: Sendable, Hashable {
    /// WORK_DATA: a chunk of intermediate output.
    case data(ByteBuffer)
    /// WORK_WARNING: a warning payload.
    case warning(ByteBuffer)
    /// WORK_STATUS: progress as numerator/denominator (values the worker sent that are not
    /// numbers read as 0).
    case status(numerator: Int, denominator: Int)
    /// WORK_COMPLETE: the result. Always the last event.
    case completed(ByteBuffer)
}

/// Receives one foreground job's events on behalf of one waiting caller.
final class JobEventSink: Sendable {
    let continuation: AsyncThrowingStream<GearmanJobEvent, any Error>.Continuation
    let stream: AsyncThrowingStream<GearmanJobEvent, any Error>

    init() {
        (stream, continuation) = AsyncThrowingStream.makeStream(bufferingPolicy: .unbounded)
    }
}

/// A request on a connection waiting for its reply.
final class PendingRequest: Sendable {
    let promise: EventLoopPromise<ConnectionReply>

    init(promise: EventLoopPromise<ConnectionReply>) {
        self.promise = promise
    }
}

typealias ConnectionReply = ConnectionStateMachine<PendingRequest, JobEventSink>.Reply
typealias ResponseExpectation = ConnectionStateMachine<PendingRequest, JobEventSink>.Expectation
