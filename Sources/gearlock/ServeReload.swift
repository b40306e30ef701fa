import ArgumentParser
import GearlockCLI
import GearmanServer
import GearmanTLS
import NIOCore

/// What a SIGHUP does to the settings of `gearlock serve --config FILE`: the file is read again,
/// with the command line's options still overriding it, and the options are sorted into those a
/// running server takes at once and those that need a restart.
///
/// Live: `log-level`, the limits (`max-connections`, `max-connections-per-address`,
/// `max-queue-bytes`, `job-retries`, `auth-timeout`, `auth-failures-before-throttle`), the TLS
/// files and settings (`tls-cert`, `tls-key`, `tls-ca`, `tls-crl`, `tls-client-auth`,
/// `tls-min-version`, `tls-handshake-timeout`; for new handshakes) and the `acl` file's path, when
/// the server already has TLS listeners / an ACL. Everything else needs a restart.
enum ServeReload {
    /// An option, how to tell whether two settings differ in it and, for one a running server can
    /// take, how to take it from new settings.
    struct Key: Sendable {
        let name: String
        let differs: @Sendable (ServeCommand, ServeCommand) -> Bool
        /// Copies the option's value from the second settings into the first (nil: restart only).
        let adopt: (@Sendable (inout ServeCommand, ServeCommand) -> Void)?

        /// A restart-only option, compared by `value`.
        init<Value: Equatable & Sendable>(_ name: String, _ value: @escaping @Sendable (ServeCommand) -> Value) {
            self.name = name
            self.differs = { value($0) != value($1) }
            self.adopt = nil
        }

        /// An option a reload can apply: the setting at `path`.
        init<Value: Equatable & Sendable>(_ name: String, live path: any WritableKeyPath<ServeCommand, Value> & Sendable) {
            self.name = name
            self.differs = { $0[keyPath: path] != $1[keyPath: path] }
            self.adopt = { $0[keyPath: path] = $1[keyPath: path] }
        }
    }

    /// Applied at once (the TLS and ACL keys only where `tlsIsLive` / `aclIsLive`).
    static let liveKeys: [Key] = [
        Key("log-level", live: \.logLevel),
        Key("max-connections", live: \.maxConnections),
        Key("max-connections-per-address", live: \.maxConnectionsPerAddress),
        Key("max-queue-bytes", live: \.maxQueueBytes),
        Key("job-retries", live: \.jobRetries),
        Key("auth-timeout", live: \.authTimeout),
        Key("auth-failures-before-throttle", live: \.authFailuresBeforeThrottle),
    ]

    static let tlsKeys: [Key] = [
        Key("tls-cert", live: \.tlsCert),
        Key("tls-key", live: \.tlsKey),
        Key("tls-ca", live: \.tlsCA),
        Key("tls-crl", live: \.tlsCRL),
        Key("tls-client-auth", live: \.tlsClientAuth),
        Key("tls-min-version", live: \.tlsMinVersion),
        Key("tls-handshake-timeout", live: \.tlsHandshakeTimeout),
    ]

    static let aclKey = Key("acl", live: \.acl)

    /// Take effect only when the server starts.
    static let restartKeys: [Key] = [
        Key("listen") { $0.listen.map(\.listener) },
        Key("tls-listen") { $0.tlsListen.map(\.listener) },
        Key("allow-plaintext-on-network") { $0.allowPlaintextOnNetwork },
        Key("tls-identity") { $0.tlsIdentity },
        Key("preauth-max-packet") { $0.preauthMaxPacket },
        Key("queue") { $0.queue },
        Key("server-name") { $0.serverName },
        Key("queue-sync-normal") { $0.queueSyncNormal },
        Key("worker-wakeup") { $0.workerWakeup },
        Key("threads") { $0.threads },
        Key("exceptions") { $0.exceptions },
        Key("job-handle-prefix") { $0.jobHandlePrefix },
        Key("max-packet-size") { $0.maxPacketSize },
        Key("shutdown-timeout") { $0.shutdownTimeout },
        Key("log-format") { $0.logFormat },
        Key("metrics-listen") { $0.metricsListen?.description },
        Key("packet-timeout") { $0.packetTimeout },
        Key("packet-min-rate") { $0.packetMinRate },
    ]

    /// Options of `serve` that no list above names (a new option nobody sorted): the reload
    /// cannot tell whether they changed, and says so.
    static var unsortedOptions: [String] {
        let sorted = Set((liveKeys + tlsKeys + [aclKey] + restartKeys).map(\.name))
            .union(ServeConfigurationFile.commandLineOnly)
        return ServeConfigurationFile.options.all.map(\.name).filter { !sorted.contains($0) }
    }

    /// The settings `gearlock serve <commandLine>` gives now: the `--config` file read again and
    /// the command line's options over it, checked as at start-up.
    /// - Throws: the file's problems or the options' (a message for the log).
    static func parse(commandLine: [String]) throws -> ServeCommand {
        let expanded = try ServeConfigurationFile.expand([ServeCommand.configuration.commandName!] + commandLine)
        return try ServeCommand.parse(Array(expanded.arguments.dropFirst()))
    }

    /// What a reload from `running` to `next` does.
    struct Plan {
        let running: ServeCommand
        let next: ServeCommand

        /// The TLS settings can change live when the server has TLS listeners and still will.
        var tlsIsLive: Bool { running.tlsConfiguration() != nil && next.tlsConfiguration() != nil }
        /// The ACL's path can change live when the server has an ACL and still will.
        var aclIsLive: Bool { running.acl != nil && next.acl != nil }

        /// The options this reload can apply.
        var liveNow: [Key] {
            ServeReload.liveKeys + (tlsIsLive ? ServeReload.tlsKeys : []) + (aclIsLive ? [ServeReload.aclKey] : [])
        }

        /// The options that changed and are applied now.
        var applied: [String] {
            liveNow.filter { $0.differs(running, next) }.map(\.name)
        }

        /// The options that changed but take effect after a restart.
        var needRestart: [String] {
            (ServeReload.restartKeys + (tlsIsLive ? [] : ServeReload.tlsKeys) + (aclIsLive ? [] : [ServeReload.aclKey]))
                .filter { $0.differs(running, next) }.map(\.name)
        }

        /// The server's new limits.
        var limits: JobServer.Limits {
            JobServer.Limits(
                maxConnections: next.maxConnections, maxConnectionsPerAddress: next.maxConnectionsPerAddress,
                maxQueueBytes: next.maxQueueBytes, jobRetries: next.jobRetries,
                authenticationTimeout: .milliseconds(Int64(next.authTimeout * 1000)),
                failuresBeforeThrottling: next.authFailuresBeforeThrottle)
        }

        /// `running` with what was applied taken from `next`: the settings now in force, against
        /// which the next reload compares (so a change that needs a restart is reported again).
        var inForce: ServeCommand {
            var settings = running
            for key in liveNow { key.adopt?(&settings, next) }
            return settings
        }
    }
}
