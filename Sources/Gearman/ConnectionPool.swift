import GearmanProtocol
import GearmanTLS
import Logging
import NIOConcurrencyHelpers
import NIOCore

/// One lazily opened connection per server, with exponential backoff for servers that fail.
final class ConnectionPool: Sendable {
    private struct ServerState {
        var connection: GearmanConnection?
        var connecting: EventLoopPromise<GearmanConnection>?
        var failures = 0
        var retryAt: NIODeadline?
        /// The server's refusal of the credentials that began the current backoff, repeated to
        /// callers until the next attempt.
        var refusal: GearmanError?
    }

    let options: GearmanConnectionOptions
    let eventLoopGroup: any EventLoopGroup
    private let logger: Logger
    private let setUp: @Sendable (GearmanConnection) -> EventLoopFuture<Void>
    private let tlsContextCache = NIOLockedValueBox<TLSContext?>(nil)
    private let onWake: (@Sendable (_ server: Int) -> Void)?
    private let dialect: ConnectionAuthentication.Dialect
    private let states: NIOLockedValueBox<[ServerState]>
    private let isShutDown = NIOLockedValueBox(false)

    /// - Parameters:
    ///   - dialect: how connections authenticate when `options.credentials` is set (binary
    ///     OPTION_REQ, or the admin `auth` line).
    ///   - onWake: called (on an event loop) when a server sends NOOP on its connection.
    ///   - setUp: runs on every new connection before it is used (e.g. OPTION_REQ, CAN_DO), after
    ///     the authentication; a failed future (best a `GearmanError`) means the connection is not used.
    init(
        options: GearmanConnectionOptions, eventLoopGroup: any EventLoopGroup, logger: Logger,
        dialect: ConnectionAuthentication.Dialect = .binary,
        onWake: (@Sendable (_ server: Int) -> Void)? = nil,
        setUp: @escaping @Sendable (GearmanConnection) -> EventLoopFuture<Void> = {
            $0.channel.eventLoop.makeSucceededVoidFuture()
        }
    ) {
        self.onWake = onWake
        self.dialect = dialect
        self.options = options
        self.eventLoopGroup = eventLoopGroup
        self.logger = logger
        self.setUp = setUp
        self.states = NIOLockedValueBox(Array(repeating: ServerState(), count: options.servers.count))
    }

    var serverCount: Int { options.servers.count }

    /// Whether a server is waiting out its backoff after a failure.
    func isBackingOff(_ index: Int) -> Bool {
        states.withLockedValue { states in
            states[index].retryAt.map { $0 > .now() } ?? false
        }
    }

    /// The server's connection, opened if needed. Fails at once while the server is backing off:
    /// with `.authenticationFailed` when it last refused the credentials, else `.connectionFailed`.
    ///
    /// The connect and set-up run on the event loop, apart from any caller: a caller that is
    /// cancelled or runs out of time (`deadline`) stops waiting, and the others, and the next
    /// caller, still get the connection.
    func connection(to index: Int, deadline: NIODeadline? = nil) async throws(GearmanError) -> GearmanConnection {
        let address = options.servers[index]
        enum Step {
            case ready(GearmanConnection)
            case wait(EventLoopFuture<GearmanConnection>)
            case connect(EventLoopPromise<GearmanConnection>)
            case backingOff(TimeAmount, refusal: GearmanError?)
            case shutDown
        }
        let step = states.withLockedValue { states -> Step in
            if isShutDown.withLockedValue({ $0 }) { return .shutDown }
            if let connection = states[index].connection, connection.isActive { return .ready(connection) }
            states[index].connection = nil
            if let connecting = states[index].connecting { return .wait(connecting.futureResult) }
            if let retryAt = states[index].retryAt, retryAt > .now() {
                return .backingOff(retryAt - .now(), refusal: states[index].refusal)
            }
            let promise = eventLoopGroup.any().makePromise(of: GearmanConnection.self)
            states[index].connecting = promise
            return .connect(promise)
        }
        switch step {
        case .ready(let connection):
            return connection
        case .shutDown:
            throw GearmanError(.shutDown, "the client was shut down")
        case .backingOff(let remaining, let refusal?):
            throw GearmanError(
                .authenticationFailed, "\(refusal.message); next attempt in \(remaining.nanoseconds / 1_000_000) ms",
                serverCode: refusal.serverCode, server: address.description)
        case .backingOff(let remaining, nil):
            throw GearmanError(
                .connectionFailed,
                "\(address) failed recently; next attempt in \(remaining.nanoseconds / 1_000_000) ms",
                server: address.description)
        case .wait(let future):
            return try await Self.wait(for: future, deadline: deadline, server: address.description)
        case .connect(let promise):
            open(index, completing: promise)
            return try await Self.wait(for: promise.futureResult, deadline: deadline, server: address.description)
        }
    }

    /// The TLS context for `options.tls`, built on first use (it reads the certificate files) and
    /// shared by every connection.
    private func tlsContext() throws(GearmanError) -> TLSContext? {
        guard let configuration = options.tls else { return nil }
        let result = tlsContextCache.withLockedValue { cached -> Result<TLSContext, GearmanError> in
            if let cached { return .success(cached) }
            do {
                let context = try TLSContext(configuration: configuration)
                cached = context
                return .success(context)
            } catch {
                return .failure(GearmanError(.invalidArgument, "TLS configuration: \(error)", underlying: error))
            }
        }
        return try result.get()
    }

    /// Connects to server `index`, sets the connection up, and records the outcome.
    private func open(_ index: Int, completing promise: EventLoopPromise<GearmanConnection>) {
        let address = options.servers[index]
        var wake: (@Sendable () -> Void)?
        if let onWake = self.onWake {
            wake = { onWake(index) }
        }
        let setUp = self.setUp
        let connecting: EventLoopFuture<GearmanConnection>
        do {
            connecting = GearmanConnection.connect(
                to: address, options: options, eventLoopGroup: eventLoopGroup, tlsContext: try tlsContext(),
                dialect: dialect, onWake: wake, logger: logger)
        } catch {
            connecting = eventLoopGroup.any().makeFailedFuture(error)
        }
        connecting
            .flatMap { connection in
                setUp(connection).map { connection }.flatMapErrorThrowing { error in
                    // A connection whose set-up failed (e.g. its OPTION_REQ was refused) is not used.
                    connection.close()
                    throw error
                }
            }
            .whenComplete { [self] result in
                switch result {
                case .success(let connection):
                    let isShutDown = self.isShutDown
                    let stored = states.withLockedValue { states -> Bool in
                        states[index].connecting = nil
                        // Checked under the lock `shutdown` takes, so no connection outlives it.
                        if isShutDown.withLockedValue({ $0 }) { return false }
                        states[index].connection = connection
                        states[index].failures = 0
                        states[index].retryAt = nil
                        states[index].refusal = nil
                        return true
                    }
                    if stored {
                        logger.debug("connected", metadata: ["gearman.server": "\(address)"])
                        promise.succeed(connection)
                    } else {
                        connection.close()
                        promise.fail(GearmanError(.shutDown, "the client was shut down"))
                    }
                case .failure(let error):
                    var failure =
                        error as? GearmanError
                        ?? GearmanError(.connectionFailed, "\(error)", server: address.description, underlying: error)
                    if failure.code != .serverError && failure.code != .authenticationFailed {
                        // A set-up that timed out or lost its connection: the server is not usable.
                        failure = GearmanError(
                            .connectionFailed, "cannot set up \(address): \(failure.message)", server: address.description,
                            underlying: failure)
                    }
                    // Refused credentials back off like any failure: no tight reconnect loop.
                    let delay = recordFailure(index, refusal: failure.code == .authenticationFailed ? failure : nil)
                    states.withLockedValue { $0[index].connecting = nil }
                    logger.log(
                        level: failure.code == .authenticationFailed ? .warning : .info,
                        "connection failed",
                        metadata: [
                            "gearman.server": "\(address)", "error": "\(failure.message)",
                            "retry_in_ms": "\(delay.nanoseconds / 1_000_000)",
                        ])
                    promise.fail(failure)
                }
            }
    }

    /// Waits for `future`, or until `deadline`, or until the task is cancelled; only the waiting
    /// stops, not the work behind the future.
    static func wait<Value: Sendable>(
        for future: EventLoopFuture<Value>, deadline: NIODeadline?, server: String
    ) async throws(GearmanError) -> Value {
        let eventLoop = future.eventLoop
        let waiter = eventLoop.makePromise(of: Value.self)
        future.cascade(to: waiter)
        if let deadline {
            let timer = eventLoop.scheduleTask(deadline: deadline) {
                waiter.fail(GearmanError(.timeout, "no connection to \(server) before the deadline", server: server))
            }
            waiter.futureResult.whenComplete { _ in timer.cancel() }
        }
        do {
            return try await withTaskCancellationHandler {
                try await waiter.futureResult.get()
            } onCancel: {
                waiter.fail(GearmanError(.cancelled, "the waiting task was cancelled"))
            }
        } catch let error as GearmanError {
            throw error
        } catch {
            throw GearmanError(.connectionFailed, "\(error)", server: server, underlying: error)
        }
    }

    /// Notes that a server failed (connect error, lost connection, refused credentials); it is
    /// skipped until its backoff ends.
    /// - Parameter refusal: the server's refusal of the credentials, which callers get (as
    ///   `.authenticationFailed`) until the backoff ends.
    @discardableResult
    func recordFailure(_ index: Int, refusal: GearmanError? = nil) -> TimeAmount {
        let initial = options.initialReconnectDelay.nanoseconds
        let maximum = options.maximumReconnectDelay.nanoseconds
        return states.withLockedValue { states in
            states[index].failures += 1
            states[index].refusal = refusal
            states[index].connection = nil
            let exponent = min(states[index].failures - 1, 30)
            let delay = TimeAmount.nanoseconds(min(maximum, initial.multipliedReportingOverflow(by: 1 << exponent).overflow ? maximum : initial << exponent))
            states[index].retryAt = .now() + delay
            return delay
        }
    }

    /// The delay until the earliest server leaves its backoff (zero if one is available now).
    func timeUntilNextAttempt() -> TimeAmount {
        states.withLockedValue { states in
            let now = NIODeadline.now()
            let waits = states.map { state -> TimeAmount in
                guard let retryAt = state.retryAt, retryAt > now else { return .zero }
                return retryAt - now
            }
            return waits.min() ?? .zero
        }
    }

    /// The delay until server `index` leaves its backoff (zero if it may be tried now).
    func timeUntilNextAttempt(_ index: Int) -> TimeAmount {
        states.withLockedValue { states in
            guard let retryAt = states[index].retryAt else { return .zero }
            let now = NIODeadline.now()
            return retryAt > now ? retryAt - now : .zero
        }
    }

    /// The server's open connection, if there is one (no connect attempt).
    func currentConnection(to index: Int) -> GearmanConnection? {
        states.withLockedValue { states in
            states[index].connection.flatMap { $0.isActive ? $0 : nil }
        }
    }

    /// Closes every connection; later calls fail with `.shutDown`.
    func shutdown() {
        let connections = states.withLockedValue { states in
            isShutDown.withLockedValue { $0 = true }
            defer { for index in states.indices { states[index].connection = nil } }
            return states.compactMap(\.connection)
        }
        for connection in connections {
            connection.close()
        }
    }
}
