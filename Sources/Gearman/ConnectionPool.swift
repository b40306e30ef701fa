import GearmanProtocol
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
    }

    let options: GearmanConnectionOptions
    let eventLoopGroup: any EventLoopGroup
    private let logger: Logger
    private let setUp: @Sendable (GearmanConnection) async throws(GearmanError) -> Void
    private let onWake: (@Sendable (_ server: Int) -> Void)?
    private let states: NIOLockedValueBox<[ServerState]>
    private let isShutDown = NIOLockedValueBox(false)

    /// - Parameters:
    ///   - onWake: called (on an event loop) when a server sends NOOP on its connection.
    ///   - setUp: runs on every new connection before it is used (e.g. OPTION_REQ, CAN_DO).
    init(
        options: GearmanConnectionOptions, eventLoopGroup: any EventLoopGroup, logger: Logger,
        onWake: (@Sendable (_ server: Int) -> Void)? = nil,
        setUp: @escaping @Sendable (GearmanConnection) async throws(GearmanError) -> Void = { _ in }
    ) {
        self.onWake = onWake
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

    /// The server's connection, opened if needed. Fails at once while the server is backing off.
    func connection(to index: Int) async throws(GearmanError) -> GearmanConnection {
        let address = options.servers[index]
        enum Step {
            case ready(GearmanConnection)
            case wait(EventLoopFuture<GearmanConnection>)
            case connect(EventLoopPromise<GearmanConnection>)
            case backingOff(TimeAmount)
            case shutDown
        }
        let step = states.withLockedValue { states -> Step in
            if isShutDown.withLockedValue({ $0 }) { return .shutDown }
            if let connection = states[index].connection, connection.isActive { return .ready(connection) }
            states[index].connection = nil
            if let connecting = states[index].connecting { return .wait(connecting.futureResult) }
            if let retryAt = states[index].retryAt, retryAt > .now() { return .backingOff(retryAt - .now()) }
            let promise = eventLoopGroup.any().makePromise(of: GearmanConnection.self)
            states[index].connecting = promise
            return .connect(promise)
        }
        switch step {
        case .ready(let connection):
            return connection
        case .shutDown:
            throw GearmanError(.shutDown, "the client was shut down")
        case .backingOff(let remaining):
            throw GearmanError(
                .connectionFailed,
                "\(address) failed recently; next attempt in \(remaining.nanoseconds / 1_000_000) ms",
                server: address.description)
        case .wait(let future):
            do {
                return try await future.get()
            } catch let error as GearmanError {
                throw error
            } catch {
                throw GearmanError(.connectionFailed, "\(error)", server: address.description)
            }
        case .connect(let promise):
            do throws(GearmanError) {
                var wake: (@Sendable () -> Void)?
                if let onWake = self.onWake {
                    wake = { onWake(index) }
                }
                let connection = try await GearmanConnection.connect(
                    to: address, options: options, eventLoopGroup: eventLoopGroup, onWake: wake, logger: logger)
                try await setUp(connection)
                states.withLockedValue { states in
                    states[index].connection = connection
                    states[index].connecting = nil
                    states[index].failures = 0
                    states[index].retryAt = nil
                }
                promise.succeed(connection)
                logger.debug("connected", metadata: ["gearman.server": "\(address)"])
                return connection
            } catch {
                let delay = recordFailure(index)
                logger.info(
                    "connection failed",
                    metadata: [
                        "gearman.server": "\(address)", "error": "\(error.message)",
                        "retry_in_ms": "\(delay.nanoseconds / 1_000_000)",
                    ])
                states.withLockedValue { $0[index].connecting = nil }
                promise.fail(error)
                throw error
            }
        }
    }

    /// Notes that a server failed (connect error or lost connection); it is skipped until its backoff ends.
    @discardableResult
    func recordFailure(_ index: Int) -> TimeAmount {
        let initial = options.initialReconnectDelay.nanoseconds
        let maximum = options.maximumReconnectDelay.nanoseconds
        return states.withLockedValue { states in
            states[index].failures += 1
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

    /// Closes every connection; later calls fail with `.shutDown`.
    func shutdown() {
        isShutDown.withLockedValue { $0 = true }
        let connections = states.withLockedValue { states in
            states.compactMap(\.connection)
        }
        for connection in connections {
            connection.close()
        }
    }
}
