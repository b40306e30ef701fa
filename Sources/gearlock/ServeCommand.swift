public import ArgumentParser
import Foundation
import GearlockCLI
import GearmanACL
import GearmanQueue
import GearmanServer
import GearmanTLS
public import Logging
import NIOCore
import NIOPosix
import Prometheus
import ServiceLifecycle
import UnixSignals

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the job server.",
        discussion: """
            SIGTERM or SIGINT stop the server gracefully: it stops accepting connections, lets running \
            jobs finish (up to --shutdown-timeout), closes every connection and exits 0.

            Every option can also come from a YAML file given with --config; see README.md, \
            "Configuration file".
            """
    )

    @Option(
        help: ArgumentHelp(
            "YAML file of options (keys: the long option names); options on the command line override it.",
            valueName: "file"),
        completion: .file(extensions: ["yaml", "yml"]))
    var config: String?

    @Flag(help: "Check the configuration (options, --config file, ACL, TLS files) and exit without serving.")
    var checkConfig = false

    @Option(
        name: .customLong("listen"),
        help: "Address to accept plaintext connections on, HOST:PORT (repeatable; default 127.0.0.1:4730).")
    var listen: [ListenAddress] = []

    @Flag(help: "Allow a plaintext listener on an address other than loopback.")
    var allowPlaintextOnNetwork = false

    @Option(name: .customLong("tls-listen"), help: "Address to accept TLS connections on, HOST:PORT (repeatable).")
    var tlsListen: [ListenAddress] = []

    @Option(help: "PEM file with the server's certificate chain (for --tls-listen).", completion: .file())
    var tlsCert: String?

    @Option(help: "PEM file with the server's private key (for --tls-listen).", completion: .file())
    var tlsKey: String?

    @Option(help: "PEM bundle of the CAs that issue client certificates.", completion: .file())
    var tlsCA: String?

    @Option(help: "Ask clients for a certificate: none, optional or require (default: require with --tls-ca, else none).")
    var tlsClientAuth: TLSConfiguration.ClientAuthentication?

    @Option(help: "PEM file of certificate revocation lists checked for client certificates.", completion: .file())
    var tlsCRL: String?

    @Option(help: "Where a client certificate's identity comes from: cn (its single common name) or san.")
    var tlsIdentity: TLSIdentitySource = .cn

    @Option(
        help: ArgumentHelp(
            "ACL file (YAML) deciding who may register, submit and administer what; reloaded on SIGHUP.",
            discussion: "Without it every connection may do everything, as with gearmand. See SECURITY.md.",
            valueName: "file"),
        completion: .file())
    var acl: String?

    @Option(help: "With --acl: largest packet, in bytes, accepted before a connection authenticates.")
    var preauthMaxPacket: UInt32 = 64 * 1024

    @Option(help: "With --acl: seconds a connection has to authenticate before it is closed.")
    var authTimeout: Double = 10

    @Option(help: "With --acl: failed authentications from one address before it is throttled.")
    var authFailuresBeforeThrottle: Int = 5

    @Option(help: "Seconds a TLS handshake may take before the connection is dropped.")
    var tlsHandshakeTimeout: Double = 10

    @Option(help: "Lowest TLS version accepted: 1.2 or 1.3.")
    var tlsMinVersion: TLSVersionArgument = .v12

    @Option(
        help: ArgumentHelp(
            "Where background jobs are kept: sqlite:PATH or postgres://USER@HOST:PORT/DATABASE (durable; committed before JOB_CREATED) or memory.",
            discussion: """
                The SQLite file is created when missing; a damaged or locked one stops start-up. PostgreSQL needs \
                --server-name; its password comes from the URL or, better, from the PGPASSWORD environment variable.
                """,
            valueName: "store"))
    var queue: QueueOption = .defaultValue

    @Option(
        help: ArgumentHelp(
            "With a PostgreSQL queue: the name this server's jobs are kept under.",
            discussion: """
                Servers with different names share one database. A server started with the name of one that was \
                lost replays that server's jobs; two running servers can't share a name.
                """,
            valueName: "name"))
    var serverName: String?

    @Flag(help: "With a SQLite queue: fsync less (PRAGMA synchronous=NORMAL): survives a crash of the server, not of the machine.")
    var queueSyncNormal = false

    @Option(help: "Requeues of a job whose worker was lost before its clients get WORK_FAIL (0 = unlimited).")
    var jobRetries: Int = 0

    @Option(help: "Sleeping workers woken per new job (0 = all).")
    var workerWakeup: Int = 0

    @Option(
        help: ArgumentHelp(
            "Event loops (threads) for connections; the job state stays on one of them.",
            discussion: """
                1 keeps every connection on the job state's loop (no hop between threads per packet). More                 spread reading, TLS, decoding and writing over that many threads, and each read cycle's packets                 hop to the job state's loop.
                """))
    var threads: Int = 1

    @Flag(help: "Forward WORK_EXCEPTION to all clients, not only those that asked for exceptions.")
    var exceptions = false

    @Option(help: "Prefix of job handles (default: H:<hostname>).")
    var jobHandlePrefix: String?

    @Option(help: "Largest packet payload accepted, in bytes (default: 4294967295, the protocol's limit).")
    var maxPacketSize: UInt32 = .max

    @Option(help: "Connections accepted in all; one more gets ERROR QUOTA_EXCEEDED and is closed (default: no limit).")
    var maxConnections: Int?

    @Option(help: "Connections accepted from one IP address (default: no limit).")
    var maxConnectionsPerAddress: Int?

    @Option(
        help: ArgumentHelp(
            "Bytes of payload that live jobs may hold in all; a submission over it gets ERROR QUEUE_ERROR (default: no limit).",
            valueName: "bytes"))
    var maxQueueBytes: UInt64?

    @Option(
        help: ArgumentHelp(
            "Seconds a packet or admin line that has begun to arrive may take to complete, plus one second per "
                + "--packet-min-rate bytes received; then ERROR TIMEOUT and the connection is closed (0 = off).",
            valueName: "seconds"))
    var packetTimeout: Double = 30

    @Option(help: ArgumentHelp("Bytes received that extend --packet-timeout by one second.", valueName: "bytes"))
    var packetMinRate: Int = 500

    @Option(help: "Seconds a graceful stop waits for running jobs.")
    var shutdownTimeout: Int = 30

    @Option(
        help: ArgumentHelp(
            "Address to serve Prometheus metrics on (GET /metrics): HOST:PORT, or PORT for 127.0.0.1 (default: off).",
            discussion: "Metrics name functions and tenants: an address other than loopback is allowed, with a warning.",
            valueName: "address"))
    var metricsListen: MetricsListenAddress?

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: Logger.Level = .info

    @Option(help: "Log format: text (readable) or json (one object per line); audit events are marked in both.")
    var logFormat: LogFormat = .text

    func validate() throws {
        guard jobRetries >= 0 else { throw ValidationError("--job-retries must be 0 (unlimited) or more") }
        guard (1...1024).contains(threads) else { throw ValidationError("--threads must be between 1 and 1024") }
        guard workerWakeup >= 0 else { throw ValidationError("--worker-wakeup must be 0 (all) or more") }
        if let maxConnections, maxConnections < 1 { throw ValidationError("--max-connections must be at least 1") }
        if let maxConnectionsPerAddress, maxConnectionsPerAddress < 1 {
            throw ValidationError("--max-connections-per-address must be at least 1")
        }
        if let maxQueueBytes, maxQueueBytes < 1 { throw ValidationError("--max-queue-bytes must be at least 1") }
        guard packetTimeout >= 0, packetTimeout.isFinite else {
            throw ValidationError("--packet-timeout must be 0 (off) or a positive number of seconds")
        }
        guard packetMinRate >= 1 else { throw ValidationError("--packet-min-rate must be at least 1") }
        guard shutdownTimeout >= 0 else { throw ValidationError("--shutdown-timeout must not be negative") }
        if let prefix = jobHandlePrefix {
            let limit = JobServer.Configuration.maxJobHandlePrefixLength
            guard !prefix.isEmpty, prefix.utf8.count <= limit else {
                throw ValidationError("--job-handle-prefix must be 1 to \(limit) bytes")
            }
        }
        if !tlsListen.isEmpty {
            guard tlsCert != nil, tlsKey != nil else {
                throw ValidationError("--tls-listen needs --tls-cert and --tls-key")
            }
            guard tlsHandshakeTimeout > 0 else { throw ValidationError("--tls-handshake-timeout must be positive") }
            if tlsClientAuth != nil && tlsClientAuth != TLSConfiguration.ClientAuthentication.none && tlsCA == nil {
                throw ValidationError("--tls-client-auth \(tlsClientAuth!.rawValue) needs --tls-ca")
            }
        } else if tlsCert != nil || tlsKey != nil || tlsCA != nil || tlsCRL != nil || tlsClientAuth != nil {
            throw ValidationError("TLS options need at least one --tls-listen address")
        }
        guard authTimeout > 0 else { throw ValidationError("--auth-timeout must be positive") }
        guard preauthMaxPacket > 0 else { throw ValidationError("--preauth-max-packet must be positive") }
        guard authFailuresBeforeThrottle > 0 else {
            throw ValidationError("--auth-failures-before-throttle must be at least 1")
        }
        switch queue {
        case .postgres:
            guard let serverName else {
                throw ValidationError(
                    "--queue postgres://… needs --server-name NAME: the name this server's jobs are kept under (a "
                        + "replacement for a lost server is started with the same name and replays its jobs)")
            }
            guard Self.isValidServerName(serverName) else {
                throw ValidationError(
                    "--server-name must be 1 to \(Self.maxServerNameLength) letters, digits, '.', '_' or '-'")
            }
        case .memory, .sqlite:
            if serverName != nil {
                throw ValidationError("--server-name applies to a PostgreSQL queue only (--queue postgres://…)")
            }
        }
        if let metricsListen, metricsListen.port != 0,
            let clash = (listen + tlsListen).first(where: {
                $0.listener.port == metricsListen.port && $0.listener.host == metricsListen.host
            })
        {
            throw ValidationError("--metrics-listen \(metricsListen) is also a job server listener (\(clash.listener))")
        }
        if !allowPlaintextOnNetwork, let exposed = listen.first(where: { !$0.isLoopback }) {
            throw ValidationError(
                "refusing a plaintext listener on \(exposed.listener): not loopback. "
                    + "Pass --allow-plaintext-on-network to accept unencrypted, unauthenticated traffic from the network.")
        }
    }

    func run() async throws {
        if checkConfig {
            print(try checkConfiguration())
            return
        }
        let logFormat = logFormat
        // One level for every copy of the logger's handlers, so that a reload changes it live.
        let levelSwitch = LogLevelSwitch(logLevel)
        let logger = Logger(label: "gearlock", factory: { logFormat.makeHandler(label: $0, level: levelSwitch) })
        var configuration = JobServer.Configuration()
        if let limit = FileDescriptorLimit.raiseSoftLimitToHard() {
            logger.info("open-file limit", metadata: ["limit": "\(limit)"])
            if let maxConnections, maxConnections > limit {
                logger.warning(
                    "--max-connections is above the open-file limit: connections beyond the limit fail at accept",
                    metadata: ["limit": "\(limit)", "max_connections": "\(maxConnections)"])
            }
        }
        configuration.listeners = listeners(replacing: configuration.listeners)
        configuration.jobRetries = jobRetries
        configuration.workerWakeup = workerWakeup
        configuration.spreadsConnectionsOverGroup = threads > 1
        configuration.exceptions = exceptions
        configuration.jobHandlePrefix = jobHandlePrefix
        configuration.maxPacketSize = maxPacketSize
        configuration.shutdownTimeout = .seconds(Int64(shutdownTimeout))
        configuration.maxConnections = maxConnections
        configuration.maxConnectionsPerAddress = maxConnectionsPerAddress
        configuration.maxQueueBytes = maxQueueBytes
        configuration.incompletePacketTimeout = packetTimeout > 0 ? .nanoseconds(Int64(packetTimeout * 1e9)) : nil
        configuration.incompletePacketMinimumRate = packetMinRate
        if let acl {
            let policy: AccessPolicy
            do {
                policy = try AccessPolicy.load(contentsOfFile: acl)
            } catch {
                throw ValidationError("--acl \(acl): \(error)")
            }
            configuration.accessControl = AccessControl(
                policy: policy, certificateIdentity: tlsIdentity.source, preauthenticationMaxPacketSize: preauthMaxPacket,
                authenticationTimeout: .milliseconds(Int64(authTimeout * 1000)),
                failuresBeforeThrottling: authFailuresBeforeThrottle)
            logger.info(
                "ACL loaded",
                metadata: ["acl.file": "\(acl)", "acl.tenants": "\(policy.tenants.count)",
                           "acl.principals": "\(policy.principals.count)"])
        }

        // Bound before the queue is opened, so a taken port stops start-up before anything else.
        // Listed first, the metrics endpoint is stopped last: it answers while the server drains.
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = []
        if let metricsListen {
            if !metricsListen.isLoopback {
                logger.warning(
                    "metrics are served on an address other than loopback; they name functions and tenants",
                    metadata: ["address": "\(metricsListen)"])
            }
            let registry = PrometheusCollectorRegistry()
            configuration.metricsFactory = Self.metricsFactory(registry: registry)
            let endpoint: MetricsEndpoint
            do {
                endpoint = try await MetricsEndpoint.bind(metricsListen, registry: registry, logger: logger)
            } catch {
                logger.critical("cannot listen for metrics", metadata: ["error": "\(error.error)"])
                throw error
            }
            services.append(.init(service: endpoint, successTerminationBehavior: .ignore))
        }
        let store: any QueueStore
        switch queue {
        case .memory:
            store = VolatileQueueStore()
        case .sqlite(let path):
            do {
                store = try await SQLiteQueueStore.open(
                    path: path, eventLoop: MultiThreadedEventLoopGroup.singleton.next(), logger: logger,
                    synchronous: queueSyncNormal ? .normal : .full)
            } catch {
                logger.critical("cannot open the queue store", metadata: ["error": "\(error.message)"])
                throw QueueOpenFailure(message: error.message)
            }
            logger.info("queue store opened", metadata: ["queue": "\(queue)"])
        case .postgres(let url):
            do {
                store = try await PostgresQueueStore.open(
                    url: url, serverName: serverName ?? "",
                    defaultPassword: ProcessInfo.processInfo.environment["PGPASSWORD"], logger: logger)
            } catch {
                logger.critical("cannot open the queue store", metadata: ["error": "\(error.message)"])
                throw QueueOpenFailure(message: error.message)
            }
        }
        // One loop: the shared group's (the queue store and metrics use it too). More: a group of
        // their own, for the connections and the job state.
        let server = JobServer(
            configuration: configuration, queueStore: store,
            eventLoopGroup: threads > 1
                ? MultiThreadedEventLoopGroup(numberOfThreads: threads) : MultiThreadedEventLoopGroup.singleton,
            logger: logger)
        services += [
            .init(service: server, successTerminationBehavior: .gracefullyShutdownGroup),
            .init(
                service: ReloadOnHangupService(
                    server: server, settings: self,
                    // `gearlock serve …` as typed: the reload reads the --config file again under it.
                    commandLine: config == nil ? nil : Array(CommandLine.arguments.dropFirst(2)),
                    logLevel: levelSwitch, logger: logger)),
        ]
        let group = ServiceGroup(
            configuration: .init(
                services: services,
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger))
        try await group.run()
    }

    /// The listeners the options ask for: `defaults` when they name none.
    func listeners(replacing defaults: [JobServer.Configuration.Listener]) -> [JobServer.Configuration.Listener] {
        guard !listen.isEmpty || !tlsListen.isEmpty else { return defaults }
        let tls = tlsConfiguration()
        return listen.map(\.listener)
            + tlsListen.map { address in
                var listener = address.listener
                listener.tls = tls
                return listener
            }
    }

    /// The TLS listeners' configuration, when the server has a certificate.
    func tlsConfiguration() -> TLSConfiguration? {
        guard let tlsCert, let tlsKey else { return nil }
        var tls = TLSConfiguration.makeServerConfiguration(
            certificateChainPath: tlsCert, privateKeyPath: tlsKey,
            clientAuthentication: tlsClientAuth ?? (tlsCA == nil ? .none : .require), trustRootsPath: tlsCA,
            crlPath: tlsCRL)
        tls.handshakeTimeout = .milliseconds(Int64(tlsHandshakeTimeout * 1000))
        tls.minimumVersion = tlsMinVersion.version
        return tls
    }
}

extension ServeCommand {
    static let maxServerNameLength = 64

    /// Server names are kept short and plain: they appear in logs, in the database and in commands.
    static func isValidServerName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= maxServerNameLength
            && name.utf8.allSatisfy { byte in
                switch byte {
                case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                    UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "-"):
                    true
                default: false
                }
            }
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}

extension TLSConfiguration.ClientAuthentication: ExpressibleByArgument {}

/// Where a client certificate's identity comes from (used by the ACL).
enum TLSIdentitySource: String, ExpressibleByArgument, CaseIterable {
    case cn
    case san

    var source: AccessControl.CertificateIdentitySource {
        switch self {
        case .cn: .commonName
        case .san: .subjectAlternativeName
        }
    }
}

enum TLSVersionArgument: String, ExpressibleByArgument, CaseIterable {
    case v12 = "1.2"
    case v13 = "1.3"

    var version: TLSConfiguration.Version {
        switch self {
        case .v12: .tls12
        case .v13: .tls13
        }
    }
}

/// The queue store could not be opened: printed as the reason the server did not start.
struct QueueOpenFailure: Error, CustomStringConvertible {
    var message: String
    var description: String { "gearlock serve: \(message)" }
}
