import GearmanServer
import Logging
import ServiceLifecycle
import UnixSignals

/// Reloads the server's TLS material on every SIGHUP, for as long as the server runs.
struct ReloadOnHangupService: Service {
    let server: JobServer
    let logger: Logger

    func run() async throws {
        let hangups = await UnixSignalsSequence(trapping: .sighup)
        for await _ in hangups.cancelOnGracefulShutdown() {
            logger.info("SIGHUP: reloading")
            // A bad file keeps the old material; the server logged why.
            try? server.reloadTLS()
        }
    }
}
