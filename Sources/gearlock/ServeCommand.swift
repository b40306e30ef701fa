public import ArgumentParser
import GearmanServer
public import Logging
import NIOCore
import ServiceLifecycle
import UnixSignals

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the job server.",
        discussion: """
            SIGTERM or SIGINT stop the server gracefully: it stops accepting connections, lets running \
            jobs finish (up to --shutdown-timeout), closes every connection and exits 0.
            """
    )

    @Option(
        name: .customLong("listen"),
        help: "Address to accept plaintext connections on, HOST:PORT (repeatable; default 127.0.0.1:4730).")
    var listen: [ListenAddress] = []

    @Flag(help: "Allow a plaintext listener on an address other than loopback.")
    var allowPlaintextOnNetwork = false

    @Option(help: "Requeues of a job whose worker was lost before its clients get WORK_FAIL (0 = unlimited).")
    var jobRetries: Int = 0

    @Option(help: "Sleeping workers woken per new job (0 = all).")
    var workerWakeup: Int = 0

    @Flag(help: "Forward WORK_EXCEPTION to all clients, not only those that asked for exceptions.")
    var exceptions = false

    @Option(help: "Prefix of job handles (default: H:<hostname>).")
    var jobHandlePrefix: String?

    @Option(help: "Largest packet payload accepted, in bytes (default: 4294967295, the protocol's limit).")
    var maxPacketSize: UInt32 = .max

    @Option(help: "Seconds a graceful stop waits for running jobs.")
    var shutdownTimeout: Int = 30

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: Logger.Level = .info

    func validate() throws {
        guard jobRetries >= 0 else { throw ValidationError("--job-retries must be 0 (unlimited) or more") }
        guard workerWakeup >= 0 else { throw ValidationError("--worker-wakeup must be 0 (all) or more") }
        guard shutdownTimeout >= 0 else { throw ValidationError("--shutdown-timeout must not be negative") }
        if let prefix = jobHandlePrefix {
            let limit = JobServer.Configuration.maxJobHandlePrefixLength
            guard !prefix.isEmpty, prefix.utf8.count <= limit else {
                throw ValidationError("--job-handle-prefix must be 1 to \(limit) bytes")
            }
        }
        if !allowPlaintextOnNetwork, let exposed = listen.first(where: { !$0.isLoopback }) {
            throw ValidationError(
                "refusing a plaintext listener on \(exposed.listener): not loopback. "
                    + "Pass --allow-plaintext-on-network to accept unencrypted, unauthenticated traffic from the network.")
        }
    }

    func run() async throws {
        var logger = Logger(label: "gearlock")
        logger.logLevel = logLevel
        var configuration = JobServer.Configuration()
        if !listen.isEmpty {
            configuration.listeners = listen.map(\.listener)
        }
        configuration.jobRetries = jobRetries
        configuration.workerWakeup = workerWakeup
        configuration.exceptions = exceptions
        configuration.jobHandlePrefix = jobHandlePrefix
        configuration.maxPacketSize = maxPacketSize
        configuration.shutdownTimeout = .seconds(Int64(shutdownTimeout))

        let server = JobServer(configuration: configuration, logger: logger)
        let group = ServiceGroup(
            configuration: .init(
                services: [.init(service: server, successTerminationBehavior: .gracefullyShutdownGroup)],
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger))
        try await group.run()
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}
