public import GearmanACL
public import GearmanQueue
public import GearmanTLS
public import Logging
public import NIOCore
import GearmanProtocol
import NIOConcurrencyHelpers
public import NIOPosix
public import ServiceLifecycle

/// A Gearman job server, runnable in any Swift program as a swift-service-lifecycle `Service`.
///
/// `run()` binds the listeners, serves until graceful shutdown (or cancellation), then stops
/// accepting, lets running jobs finish within `shutdownTimeout`, and closes every connection.
///
/// ```swift
/// let server = JobServer(configuration: .init(), logger: logger)
/// let group = ServiceGroup(services: [server], gracefulShutdownSignals: [.sigterm], logger: logger)
/// try await group.run()
/// ```
public final class JobServer: Service, Sendable {
    public static let version = "0.1.0"

    public let configuration: Configuration
    private let logger: Logger
    let core: JobServerCore
    private let listening: EventLoopPromise<[SocketAddress]>
    private let queueStore: any QueueStore
    /// Where connections live when `configuration.spreadsConnectionsOverGroup` is set.
    private let eventLoopGroup: any EventLoopGroup
    private let nextConnectionID = NIOLockedValueBox<UInt64>(0)
    private let tlsContexts = NIOLockedValueBox<[Int: TLSContext]>([:])
    /// The TLS configuration of each TLS listener, by index: the configuration's, until a reload
    /// replaces it.
    private let tlsConfigurations: NIOLockedValueBox<[Int: TLSConfiguration]>

    /// Creates a server; nothing is bound until `run()`.
    /// - Parameters:
    ///   - configuration: listeners, limits and semantics.
    ///   - queueStore: where background jobs are made durable. Default: nowhere (`VolatileQueueStore`):
    ///     they live only in the server's memory. The server closes the store when it stops.
    ///   - eventLoopGroup: the loops to run on; the job state lives on one loop of it.
    ///   - logger: where the server logs.
    public init(
        configuration: Configuration, queueStore: any QueueStore = VolatileQueueStore(),
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton, logger: Logger
    ) {
        self.configuration = configuration
        self.logger = logger
        self.queueStore = queueStore
        let eventLoop = eventLoopGroup.next()
        self.eventLoopGroup = eventLoopGroup
        var machineConfiguration = JobServerStateMachine<SystemJobServerClock>.Configuration()
        machineConfiguration.jobRetries = configuration.jobRetries
        machineConfiguration.workerWakeup = configuration.workerWakeup
        machineConfiguration.exceptions = configuration.exceptions
        machineConfiguration.jobHandlePrefix = configuration.jobHandlePrefix ?? Self.defaultJobHandlePrefix()
        machineConfiguration.processID = getpid()
        machineConfiguration.version = Self.version
        machineConfiguration.verboseLevel = logger.logLevel.gearmanName
        machineConfiguration.persistsBackgroundJobs = !(queueStore is VolatileQueueStore)
        machineConfiguration.limits = ServerLimits(
            maxConnections: configuration.maxConnections,
            maxConnectionsPerAddress: configuration.maxConnectionsPerAddress,
            maxQueueBytes: configuration.maxQueueBytes)
        let metrics = configuration.metricsFactory.map { factory in
            ServerMetrics(
                factory: factory, listeners: configuration.listeners.map { ($0.description, $0.tls != nil) },
                hasAccessControl: configuration.accessControl != nil)
        }
        self.core = JobServerCore(
            eventLoop: eventLoop, configuration: machineConfiguration, access: configuration.accessControl,
            shutdownTimeout: configuration.shutdownTimeout, store: queueStore, logger: logger, metrics: metrics)
        self.listening = eventLoop.makePromise()
        var tlsConfigurations: [Int: TLSConfiguration] = [:]
        for (index, listener) in configuration.listeners.enumerated() {
            tlsConfigurations[index] = listener.tls
        }
        self.tlsConfigurations = NIOLockedValueBox(tlsConfigurations)
    }

    /// The addresses the server listens on, once `run()` has bound them (useful with port 0).
    public func listeningAddresses() async throws -> [SocketAddress] {
        try await listening.futureResult.get()
    }

    public func run() async throws {
        let core = self.core
        do {
            try loadTLSContexts()
            try await replayStoredJobs()
            try await bindListeners()
        } catch {
            listening.fail(error)
            core.eventLoop.execute { core.stopNow() }
            try? await core.stopped.futureResult.get()
            await queueStore.close()
            throw error
        }
        try await withTaskCancellationHandler {
            try await withGracefulShutdownHandler {
                try await core.stopped.futureResult.get()
            } onGracefulShutdown: {
                self.logger.info("graceful shutdown: no longer accepting connections")
                core.eventLoop.execute { core.beginGracefulShutdown() }
            }
        } onCancel: {
            core.eventLoop.execute { core.stopNow() }
        }
        await queueStore.close()
        logger.info("stopped")
    }

    /// Queues every job the store kept, in its stored order and with its handle, before any
    /// connection is accepted.
    private func replayStoredJobs() async throws(QueueStoreError) {
        let stored = try await queueStore.loadAll()
        guard !stored.isEmpty else { return }
        let core = self.core
        try? await core.eventLoop.submit { core.restore(stored) }.get()
        logger.notice("replayed background jobs from the queue store", metadata: ["gearman.jobs": "\(stored.count)"])
    }

    private func bindListeners() async throws {
        var addresses: [SocketAddress] = []
        let decoderLimits = GearmanFrameDecoder.Limits(maxPacketSize: configuration.maxPacketSize)
        let preauthenticationLimit = configuration.accessControl.map {
            min($0.preauthenticationMaxPacketSize, configuration.maxPacketSize)
        }
        let packetDeadline = configuration.incompletePacketTimeout.flatMap { timeout -> IncompletePacketDeadline.Settings? in
            guard timeout.nanoseconds > 0 else { return nil }
            return IncompletePacketDeadline.Settings(
                timeoutNanoseconds: UInt64(timeout.nanoseconds), minimumRate: UInt64(max(1, configuration.incompletePacketMinimumRate)))
        }
        for (index, listener) in configuration.listeners.enumerated() {
            let tlsContexts = self.tlsContexts
            let bootstrap = ServerBootstrap(
                group: core.eventLoop,
                childGroup: configuration.spreadsConnectionsOverGroup ? eventLoopGroup : core.eventLoop)
                .serverChannelOption(.backlog, value: 256)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
                .childChannelOption(.socketOption(.so_keepalive), value: 1)
                // Reads grow up to 1 MiB (NIO's default stops at 64 KiB): a large payload arrives
                // in fewer reads and is merged less often (~5–10 % less server CPU per 64 KiB job).
                .childChannelOption(
                    .recvAllocator, value: AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 2048, maximum: 1 << 20))
                .childChannelInitializer { [core, nextConnectionID] channel in
                    let id = nextConnectionID.withLockedValue { value -> ConnectionID in
                        value += 1
                        return ConnectionID(value)
                    }
                    // Read at accept time, so a reload applies to new handshakes only.
                    let tlsContext = tlsContexts.withLockedValue { $0[index] }
                    return channel.eventLoop.makeCompletedFuture {
                        if let tlsContext {
                            try channel.pipeline.syncOperations.addHandler(TLSHandler(context: tlsContext))
                        }
                        try channel.pipeline.syncOperations.addHandler(
                            ServerConnectionHandler(
                                core: core, id: id, listener: index, limits: decoderLimits,
                                preauthenticationLimit: preauthenticationLimit, packetDeadline: packetDeadline))
                    }
                }
            let channel = try await bootstrap.bind(host: listener.host, port: listener.port).get()
            core.eventLoop.execute { [core] in core.addListener(channel) }
            if let address = channel.localAddress { addresses.append(address) }
            logger.info("listening", metadata: ["gearman.listener": "\(listener)", "address": "\(channel.localAddress.map { "\($0)" } ?? "?")"])
        }
        listening.succeed(addresses)
    }

    // MARK: TLS material

    /// Builds the TLS context of every TLS listener from its files. All or nothing: on any error
    /// the contexts (and configurations) in use stay as they are.
    private func loadTLSContexts(_ replacement: TLSConfiguration? = nil) throws(TLSError) {
        var configurations = tlsConfigurations.withLockedValue { $0 }
        if let replacement {
            for index in configurations.keys { configurations[index] = replacement }
        }
        var contexts: [Int: TLSContext] = [:]
        for (index, tls) in configurations {
            do {
                contexts[index] = try TLSContext(configuration: tls)
            } catch {
                var error = error
                error.message = "listener \(configuration.listeners[index]): \(error.message)"
                throw error
            }
        }
        tlsConfigurations.withLockedValue { $0 = configurations }
        tlsContexts.withLockedValue { $0 = contexts }
    }

    /// Reloads certificates, keys, CA bundles and CRLs from their files (on SIGHUP). New handshakes
    /// use the new material; live connections stay up. If any file is bad, nothing changes and the
    /// error says why.
    public func reloadTLS() throws(TLSError) {
        try reloadTLS(replacingConfigurationWith: nil)
    }

    /// Like `reloadTLS()`, with every TLS listener's configuration (files, client authentication,
    /// versions, handshake deadline) replaced by `configuration` — when a reloaded configuration
    /// file names other files. Nil keeps the configurations. All or nothing.
    public func reloadTLS(replacingConfigurationWith configuration: TLSConfiguration?) throws(TLSError) {
        do {
            try loadTLSContexts(configuration)
            logger.notice("TLS material reloaded")
        } catch {
            logger.error("TLS reload failed; keeping the previous material", metadata: ["error": "\(error)"])
            throw error
        }
    }

    // MARK: Access control

    /// Replaces the ACL (on SIGHUP). Live connections are re-checked at once: a connection whose
    /// principal was removed is closed, and registrations no longer allowed are withdrawn. Does
    /// nothing on a server started without access control (that needs a restart).
    public func reloadAccessPolicy(_ policy: AccessPolicy) {
        guard configuration.accessControl != nil else {
            logger.warning("ACL reload ignored: the server was started without an ACL")
            return
        }
        let core = self.core
        core.eventLoop.execute { core.reloadAccessPolicy(policy) }
        logger.notice("ACL reloaded", metadata: ["acl.tenants": "\(policy.tenants.count)", "acl.principals": "\(policy.principals.count)"])
    }

    /// `H:` plus the host name, shortened so handles stay within 63 bytes.
    static func defaultJobHandlePrefix() -> String {
        var name = [CChar](repeating: 0, count: 256)
        let host =
            gethostname(&name, name.count) == 0
            ? String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) : "gearlock"
        return "H:" + String(host.prefix(Configuration.maxJobHandlePrefixLength - 2))
    }
}

extension Logger.Level {
    /// The level as gearmand's `verbose` command names it.
    var gearmanName: String {
        switch self {
        case .trace, .debug: "DEBUG"
        case .info: "INFO"
        case .notice: "NOTICE"
        case .warning: "WARNING"
        case .error: "ERROR"
        case .critical: "CRITICAL"
        }
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
