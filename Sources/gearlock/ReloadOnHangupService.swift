import GearmanACL
import GearmanServer
import Logging
import ServiceLifecycle
import UnixSignals

/// Reloads the server's TLS material and ACL on every SIGHUP, for as long as the server runs.
struct ReloadOnHangupService: Service {
    let server: JobServer
    /// The ACL file to read again; nil when the server runs without one.
    let aclPath: String?
    let logger: Logger

    func run() async throws {
        let hangups = await UnixSignalsSequence(trapping: .sighup)
        for await _ in hangups.cancelOnGracefulShutdown() {
            logger.info("SIGHUP: reloading")
            // A bad file keeps the old material; the server logged why.
            try? server.reloadTLS()
            reloadACL()
        }
    }

    /// All or nothing: a file that fails to load or validate keeps the ACL in force.
    private func reloadACL() {
        guard let aclPath else { return }
        do {
            server.reloadAccessPolicy(try AccessPolicy.load(contentsOfFile: aclPath))
        } catch {
            logger.error(
                "ACL reload failed; keeping the previous ACL", metadata: ["acl.file": "\(aclPath)", "error": "\(error)"])
        }
    }
}
