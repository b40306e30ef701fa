import Gearman
import Logging
import NIOCore
import ServiceLifecycle

/// `gearlock bench`'s workers: `count` GearmanWorker instances (one connection each) for one
/// function, run together as a ServiceGroup and stopped gracefully.
struct BenchWorkerPool {
    private let group: ServiceGroup
    private let task: Task<Void, any Error>

    /// Starts the workers. `handler` runs for every job.
    init(
        count: Int, concurrency: Int, options: GearmanConnectionOptions, function: String,
        handler: @escaping GearmanWorker.Handler
    ) {
        let logger = Logger(label: "gearlock.bench", factory: { _ in SwiftLogNoOpLogHandler() })
        let workers = (0..<count).map { _ in
            let worker = GearmanWorker(configuration: .init(connection: options, concurrency: concurrency), logger: logger)
            worker.register(function: function, handler: handler)
            return worker
        }
        let group = ServiceGroup(
            configuration: .init(services: workers.map { .init(service: $0) }, gracefulShutdownSignals: [], logger: logger))
        self.group = group
        task = Task { try await group.run() }
    }

    /// Stops taking jobs, lets the jobs in hand finish, and waits until every worker has returned.
    func stop() async {
        await group.triggerGracefulShutdown()
        _ = try? await task.value
    }
}

extension GearmanAdminClient {
    /// Waits until the server's `status` shows at least `workers` workers for `function`, so load
    /// starts against registered workers. Returns false if that did not happen within `timeout`
    /// (or the server does not answer admin commands).
    func waitForWorkers(_ workers: Int, function: String, timeout: Duration) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let status = try? await status(timeout: .seconds(2)),
                let entry = status.first(where: { $0.name == function }), entry.availableWorkers >= workers
            {
                return true
            }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return false
    }
}
