import GearmanProtocol
public import Logging
public import NIOCore
import NIOConcurrencyHelpers
public import NIOPosix
public import ServiceLifecycle

/// Runs jobs for the functions it registers, from every configured server.
///
/// A `Service`: `run()` connects to each server, registers the functions (CAN_DO, or
/// CAN_DO_TIMEOUT when a timeout is given) and loops GRAB_JOB_UNIQ → run → result, sleeping with
/// PRE_SLEEP until the server's NOOP when there is no work. At most `concurrency` jobs run at a
/// time across all servers. A lost server is reconnected with backoff, and so is one that refused
/// `connection.credentials` (logged as a warning: the ACL may change). On graceful shutdown it
/// stops taking jobs, finishes the jobs in hand, sends their results, and returns.
///
/// ```swift
/// let worker = GearmanWorker(configuration: .init(connection: .init(servers: [.init(host: "127.0.0.1")])))
/// worker.register(function: "reverse") { job in
///     ByteBuffer(string: String(String(buffer: job.payload).reversed()))
/// }
/// try await ServiceGroup(services: [worker], gracefulShutdownSignals: [.sigterm], logger: logger).run()
/// ```
public final class GearmanWorker: Service, Sendable {
    /// A job handler: returns the result (WORK_COMPLETE), throws ``GearmanJobException``
    /// (WORK_EXCEPTION) or any other error (WORK_FAIL). A handler that throws because the worker's
    /// task was cancelled sends nothing: the server requeues the job when the connection closes.
    public typealias Handler = @Sendable (GearmanJob) async throws -> ByteBuffer

    public struct Configuration: Sendable {
        /// The servers and how to connect to them.
        public var connection: GearmanConnectionOptions
        /// Jobs run at the same time, across all servers. Default: 1.
        public var concurrency: Int
        /// While asleep, ask for work again after this long even without a NOOP (a safety net
        /// for servers that miss a wake-up). Default: 10 seconds, as libgearman.
        public var pollInterval: Duration

        public init(connection: GearmanConnectionOptions = .init(), concurrency: Int = 1, pollInterval: Duration = .seconds(10)) {
            self.connection = connection
            self.concurrency = max(1, concurrency)
            self.pollInterval = pollInterval
        }
    }

    private struct Registration: Sendable {
        var timeout: Duration?
        var handler: Handler
    }

    public let configuration: Configuration
    private let logger: Logger
    let pool: ConnectionPool
    private let registrations: NIOLockedValueBox<[String: Registration]>
    private let wakeSignals: [WakeSignal]
    private let isStopping = NIOLockedValueBox(false)

    /// Graceful shutdown began: no new jobs are taken.
    var isShuttingDown: Bool { isStopping.withLockedValue { $0 } }

    public init(
        configuration: Configuration, eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "gearman.worker", factory: { _ in SwiftLogNoOpLogHandler() })
    ) {
        self.configuration = configuration
        self.logger = logger
        let registrations = NIOLockedValueBox<[String: Registration]>([:])
        self.registrations = registrations
        let wakeSignals = configuration.connection.servers.map { _ in WakeSignal() }
        self.wakeSignals = wakeSignals
        self.pool = ConnectionPool(
            options: configuration.connection, eventLoopGroup: eventLoopGroup, logger: logger,
            onWake: { index in wakeSignals[index].signal() },
            setUp: { connection in
                for (function, registration) in registrations.withLockedValue({ $0 }).sorted(by: { $0.key < $1.key }) {
                    connection.send(Self.registrationPacket(function: function, timeout: registration.timeout))
                }
                return connection.channel.eventLoop.makeSucceededVoidFuture()
            })
    }

    /// Registers a function. Register before `run()`; a registration made while running reaches a
    /// server when the worker next connects to it.
    /// - Parameters:
    ///   - timeout: sent as CAN_DO_TIMEOUT: the server takes the job back (and counts a retry) if
    ///     the result doesn't arrive in time. Whole milliseconds; under a second counts as a second.
    ///     gearmand keeps one such timer per connection and drops it when the connection sends
    ///     PRE_SLEEP, which a worker with free slots does while a job runs: with gearmand, rely on
    ///     it only with `concurrency` 1.
    public func register(function: String, timeout: Duration? = nil, handler: @escaping Handler) {
        registrations.withLockedValue { $0[function] = Registration(timeout: timeout, handler: handler) }
    }

    static func registrationPacket(function: String, timeout: Duration?) -> GearmanPacket {
        let name = ByteBuffer(string: function)
        guard let timeout else { return .canDo(function: name) }
        let milliseconds = max(1, timeout.nanoseconds / 1_000_000)
        return .canDoTimeout(function: name, timeout: ByteBuffer(string: String(milliseconds)))
    }

    public func run() async throws {
        let slots = JobSlots(count: configuration.concurrency)
        await withGracefulShutdownHandler {
            await withDiscardingTaskGroup { group in
                for index in configuration.connection.servers.indices {
                    group.addTask { await self.serve(server: index, slots: slots) }
                }
            }
        } onGracefulShutdown: {
            self.logger.info("worker stopping: finishing the jobs in hand")
            self.isStopping.withLockedValue { $0 = true }
            slots.close()
            for signal in self.wakeSignals { signal.signal() }
        }
        pool.shutdown()
    }

    private var stopping: Bool { isStopping.withLockedValue { $0 } || Task.isCancelled }

    /// The loop for one server. Its jobs run in its own task group, so it returns only after they
    /// have finished and their results were sent.
    private func serve(server index: Int, slots: JobSlots) async {
        let address = configuration.connection.servers[index]
        let signal = wakeSignals[index]
        await withDiscardingTaskGroup { jobs in
            var waiter = signal.makeWaiter()
            var watched: ObjectIdentifier?
            while !stopping {
                let connection: GearmanConnection
                do {
                    connection = try await pool.connection(to: index)
                } catch {
                    // Wait out this server's backoff (or a stop), then try again.
                    let delay = max(pool.timeUntilNextAttempt(index), .milliseconds(10))
                    await waiter.wait(upTo: delay, on: pool.eventLoopGroup.any())
                    continue
                }
                if watched != ObjectIdentifier(connection) {
                    // A loop asleep after PRE_SLEEP must hear of a lost connection at once, not
                    // at the next poll, to reconnect promptly.
                    watched = ObjectIdentifier(connection)
                    connection.closeFuture.whenComplete { _ in signal.signal() }
                }
                do {
                    try await slots.acquire()
                } catch {
                    break
                }
                let reply: ConnectionReply
                do throws(GearmanError) {
                    // The stop flag is checked and the GRAB queued under one lock: once graceful
                    // shutdown has begun, no GRAB goes out.
                    guard
                        let answer = try await connection.request(
                            .packet(.grabJobUnique), expecting: .grab, timeout: .seconds(60), unless: isStopping, { $0 })
                    else {
                        slots.release()
                        break
                    }
                    reply = answer
                } catch {
                    slots.release()
                    logger.info("lost the server", metadata: ["gearman.server": "\(address)", "error": "\(error.message)"])
                    if error.code == .connectionClosed || error.code == .timeout {
                        pool.recordFailure(index)
                        connection.close()
                    }
                    continue
                }
                switch reply {
                case .packet(.jobAssignUnique(let handle, let function, let unique, let payload)),
                    .packet(.jobAssignAll(let handle, let function, let unique, _, let payload)):
                    let job = GearmanJob(handle: handle, function: function, unique: unique, payload: payload, connection: connection)
                    jobs.addTask {
                        await self.execute(job)
                        slots.release()
                    }
                case .packet(.jobAssign(let handle, let function, let payload)):
                    let job = GearmanJob(handle: handle, function: function, unique: ByteBuffer(), payload: payload, connection: connection)
                    jobs.addTask {
                        await self.execute(job)
                        slots.release()
                    }
                case .packet(.noJob):
                    slots.release()
                    connection.send(.preSleep)
                    await waiter.wait(upTo: .nanoseconds(configuration.pollInterval.nanoseconds), on: connection.channel.eventLoop)
                case .packet, .text:
                    slots.release()
                    logger.warning("unexpected reply to GRAB_JOB_UNIQ", metadata: ["gearman.server": "\(address)"])
                }
            }
        }
    }

    private func execute(_ job: GearmanJob) async {
        var metadata: Logger.Metadata = ["gearman.job_handle": "\(job.handle)", "gearman.function": "\(job.function)"]
        guard let registration = registrations.withLockedValue({ $0[job.function] }) else {
            logger.warning("job for a function this worker has not registered", metadata: metadata)
            await job.connection.sendAndWait(.workFail(handle: job.handleBytes))
            return
        }
        let outcome: GearmanPacket
        do {
            let result = try await registration.handler(job)
            outcome = .workComplete(handle: job.handleBytes, payload: result)
        } catch let exception as GearmanJobException {
            outcome = .workException(handle: job.handleBytes, payload: exception.payload)
        } catch {
            if Task.isCancelled {
                // The worker is being cancelled, not the job failing: send nothing, so the server
                // requeues the job when the connection closes (PROTOCOL c.6) and another worker
                // runs it.
                logger.info("job interrupted by cancellation; the server will requeue it", metadata: metadata)
                return
            }
            metadata["error"] = "\(error)"
            logger.info("job failed", metadata: metadata)
            outcome = .workFail(handle: job.handleBytes)
        }
        // Wait for the write: a stopping worker closes its connections once its jobs return.
        if await !job.connection.sendAndWait(outcome) {
            logger.info("the job's server is gone; its result was not delivered", metadata: metadata)
        }
    }
}

/// Wakes a worker loop: on NOOP, on a poll timeout, or on shutdown.
final class WakeSignal: Sendable {
    private let stream: AsyncStream<Void>
    private let continuation: AsyncStream<Void>.Continuation

    init() {
        (stream, continuation) = AsyncStream.makeStream(bufferingPolicy: .bufferingNewest(1))
    }

    func signal() {
        continuation.yield()
    }

    func makeWaiter() -> Waiter {
        Waiter(signal: self, iterator: stream.makeAsyncIterator())
    }

    struct Waiter {
        let signal: WakeSignal
        var iterator: AsyncStream<Void>.Iterator

        /// Returns on the next signal, or after `timeout`.
        mutating func wait(upTo timeout: TimeAmount, on eventLoop: any EventLoop) async {
            let timer = eventLoop.scheduleTask(in: timeout) { [signal] in signal.signal() }
            _ = await iterator.next()
            timer.cancel()
        }
    }
}
