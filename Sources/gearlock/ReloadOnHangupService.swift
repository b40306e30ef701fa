import ArgumentParser
import GearlockCLI
import GearmanACL
import GearmanServer
import GearmanTLS
import Logging
import ServiceLifecycle
import UnixSignals

/// Reloads on every SIGHUP, for as long as the server runs: the TLS material and the ACL file
/// always; with `--config FILE`, the file too (see `ServeReload`): the settings that can change
/// live are applied, and each changed one that needs a restart is named in a warning.
struct ReloadOnHangupService: Service {
    let server: JobServer
    /// The settings the server started with.
    let settings: ServeCommand
    /// The `serve` command line (after `serve`) that named a `--config` file; nil without one.
    let commandLine: [String]?
    /// The log level of every handler of the server's logger.
    let logLevel: LogLevelSwitch
    let logger: Logger

    func run() async throws {
        let hangups = await UnixSignalsSequence(trapping: .sighup)
        var running = settings
        for await _ in hangups.cancelOnGracefulShutdown() {
            logger.info("SIGHUP: reloading")
            if let commandLine {
                running = await reloadConfiguration(running, commandLine: commandLine)
            } else {
                // A bad file keeps the old material; the server logged why.
                try? server.reloadTLS()
                reloadACL(path: running.acl)
            }
        }
    }

    /// Reads the configuration again and applies it, all or nothing: when the file, an option, the
    /// TLS material or the ACL is bad, nothing changes and the error says why. Returns the
    /// settings in force afterwards.
    private func reloadConfiguration(_ running: ServeCommand, commandLine: [String]) async -> ServeCommand {
        let file = running.config ?? "?"
        func failed(_ problem: String) -> ServeCommand {
            logger.error(
                "configuration reload failed; nothing was reloaded, the previous settings stay in force",
                metadata: ["config.file": "\(file)", "error": "\(problem)"])
            return running
        }
        let next: ServeCommand
        do {
            next = try ServeReload.parse(commandLine: commandLine)
        } catch {
            return failed(ServeCommand.message(for: error))
        }
        let plan = ServeReload.Plan(running: running, next: next)

        // Everything is loaded before anything is applied: the file's TLS material and ACL even
        // where they need a restart (a broken file is reported now, not at the restart), and the
        // files in force where the file's can't be applied.
        let tls = plan.tlsIsLive ? next.tlsConfiguration() : running.tlsConfiguration()
        for configuration in Set([next.tlsConfiguration(), tls].compactMap { $0 }) {
            do {
                _ = try TLSContext(configuration: configuration)
            } catch {
                return failed("TLS: \(error.message)" + error.openSSLErrors.map { " (\($0))" }.joined())
            }
        }
        var policy: AccessPolicy?
        let aclInForce = plan.aclIsLive ? next.acl : running.acl
        for acl in Set([next.acl, aclInForce].compactMap { $0 }) {
            do {
                let loaded = try AccessPolicy.load(contentsOfFile: acl)
                if acl == aclInForce { policy = loaded }
            } catch {
                return failed("ACL \(acl): \(error)")
            }
        }

        for key in plan.needRestart {
            logger.warning(
                "`\(key)` changed in the config file; it takes effect after a restart",
                metadata: ["config.file": "\(file)", "config.key": "\(key)"])
        }
        for key in ServeReload.unsortedOptions {
            logger.warning(
                "`\(key)` is not checked on reload; a change to it takes effect after a restart",
                metadata: ["config.key": "\(key)"])
        }
        await server.updateLimits(plan.limits)
        if tls != nil {
            // Checked above; a file replaced since then keeps the material in force (logged).
            try? server.reloadTLS(replacingConfigurationWith: tls)
        }
        if let policy { server.reloadAccessPolicy(policy) }
        let applied = plan.applied
        logger.info(
            "configuration reloaded",
            metadata: [
                "config.file": "\(file)",
                "config.applied": "\(applied.isEmpty ? "no changed settings" : applied.joined(separator: ", "))",
                "config.restart_needed": "\(plan.needRestart.isEmpty ? "none" : plan.needRestart.joined(separator: ", "))",
            ])
        // The level changes last, so that the line above is written at the level it was read under.
        logLevel.current = next.logLevel
        await server.logLevelChanged(to: next.logLevel)
        return plan.inForce
    }

    /// All or nothing: a file that fails to load or validate keeps the ACL in force.
    private func reloadACL(path: String?) {
        guard let path else { return }
        do {
            server.reloadAccessPolicy(try AccessPolicy.load(contentsOfFile: path))
        } catch {
            logger.error(
                "ACL reload failed; keeping the previous ACL", metadata: ["acl.file": "\(path)", "error": "\(error)"])
        }
    }
}

