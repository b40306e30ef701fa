import ServiceLifecycle
import Synchronization

/// `gearlock work -c COUNT`: counts the jobs the worker takes and shuts the service group down
/// gracefully when the last allowed job starts, so the worker takes no more and exits once the
/// jobs in hand are done.
///
/// A `Service` that returns when the budget is spent (run it with `.gracefullyShutdownGroup`).
final class JobBudget: Service, Sendable {
    private let remaining: Mutex<Int>
    private let spent: AsyncStream<Void>
    private let spentContinuation: AsyncStream<Void>.Continuation

    init(jobs: Int) {
        precondition(jobs > 0, "a job budget must allow at least one job")
        remaining = Mutex(jobs)
        (spent, spentContinuation) = AsyncStream.makeStream()
    }

    func run() async {
        for await _ in spent.cancelOnGracefulShutdown() {}
    }

    /// Call from the worker's handler as a job starts. For the last job of the budget it returns
    /// only once the worker has been told to stop, so the worker asks for no further job. (With
    /// `--concurrency` above 1 a job requested before that may still arrive; it runs normally.)
    func jobStarted() async {
        let isLast = remaining.withLock { remaining in
            remaining -= 1
            return remaining == 0
        }
        guard isLast else { return }
        spentContinuation.finish()
        // This runs inside the worker's task, so this waits for the worker's own shutdown signal.
        try? await gracefulShutdown()
    }
}
