public import NIOCore

/// A foreground job the server has accepted: its handle and its events.
///
/// Iterate ``events`` for WORK_DATA, WORK_WARNING and WORK_STATUS as they happen and the result
/// at the end, or call ``result()`` to wait for the result alone. If the server is lost before
/// the job ends and the client's `resubmitOnServerLoss` is on, the job is submitted again to the
/// next server and the events continue from there.
public struct GearmanForegroundJob: Sendable {
    private let client: GearmanClient
    private let submission: JobSubmission
    private let deadline: NIODeadline?
    private let first: GearmanClient.ForegroundAttempt

    init(client: GearmanClient, submission: JobSubmission, deadline: NIODeadline?, first: GearmanClient.ForegroundAttempt) {
        self.client = client
        self.submission = submission
        self.deadline = deadline
        self.first = first
    }

    /// The handle the server gave the job (of the first attempt).
    public var handle: GearmanJobHandle {
        GearmanJobHandle(handle: String(buffer: first.handle), server: first.connection.address)
    }

    /// The job's events; the last is `.completed`. A failure or exception ends it by throwing.
    /// Iterate it once, from one task.
    public var events: Events { Events(job: self) }

    /// Waits for the job's result, ignoring intermediate events.
    ///
    /// A job's events can be consumed once: call this or iterate ``events``, not both.
    public func result() async throws(GearmanError) -> ByteBuffer {
        var iterator = events.makeAsyncIterator()
        while let event = try await iterator.next() {
            if case .completed(let result) = event { return result }
        }
        if Task.isCancelled {
            throw GearmanError(.cancelled, "the waiting task was cancelled", jobHandle: handle.handle)
        }
        throw GearmanError(.invalidArgument, "the job's events were already consumed", jobHandle: handle.handle)
    }

    public struct Events: AsyncSequence, Sendable {
        public typealias Element = GearmanJobEvent
        public typealias Failure = GearmanError
        let job: GearmanForegroundJob

        public func makeAsyncIterator() -> Iterator {
            Iterator(job: job, attempt: job.first)
        }

        public struct Iterator: AsyncIteratorProtocol {
            let job: GearmanForegroundJob
            var attempt: GearmanClient.ForegroundAttempt
            var inner: AsyncThrowingStream<GearmanJobEvent, any Error>.Iterator
            var finished = false

            init(job: GearmanForegroundJob, attempt: GearmanClient.ForegroundAttempt) {
                self.job = job
                self.attempt = attempt
                self.inner = attempt.sink.stream.makeAsyncIterator()
            }

            public mutating func next() async throws(GearmanError) -> GearmanJobEvent? {
                try await next(isolation: nil)
            }

            public mutating func next(isolation actor: isolated (any Actor)?) async throws(GearmanError) -> GearmanJobEvent? {
                guard !finished else { return nil }
                while true {
                    do {
                        guard let event = try await inner.next(isolation: actor) else {
                            finished = true
                            attempt.timer?.cancel()
                            if Task.isCancelled {
                                throw GearmanError(.cancelled, "the waiting task was cancelled", jobHandle: job.handle.handle)
                            }
                            return nil
                        }
                        if case .completed = event {
                            finished = true
                            attempt.timer?.cancel()
                        }
                        return event
                    } catch let error as GearmanError {
                        attempt.timer?.cancel()
                        guard error.code == .connectionClosed, job.client.configuration.resubmitOnServerLoss else {
                            finished = true
                            throw error
                        }
                        // The server went away with the job: submit it again elsewhere.
                        attempt = try await job.client.startForeground(job.submission, deadline: job.deadline)
                        inner = attempt.sink.stream.makeAsyncIterator()
                    } catch {
                        finished = true
                        throw GearmanError(.protocolViolation, "\(error)")
                    }
                }
            }
        }
    }
}
