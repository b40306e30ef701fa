import ArgumentParser
import Gearman

/// The connection options every client-side subcommand shares (`submit`, `work`, `admin`).
struct ConnectionOptionGroup: ParsableArguments {
    @Option(
        name: [.customLong("server"), .customShort("s")],
        help: "Job server HOST[:PORT] (repeatable; default 127.0.0.1:4730).")
    var servers: [String] = []

    @Option(help: "Seconds to wait for a TCP connection.")
    var connectTimeout: Double = 5

    @Option(help: "Client id sent with SET_CLIENT_ID (shown by `gearlock admin workers`).")
    var clientID: String?

    func validate() throws {
        for server in servers where GearmanServerAddress(server) == nil {
            throw ValidationError("--server \(server): expected HOST, HOST:PORT or [IPv6]:PORT")
        }
        guard connectTimeout > 0 else { throw ValidationError("--connect-timeout must be positive") }
    }

    var connectionOptions: GearmanConnectionOptions {
        var options = GearmanConnectionOptions()
        if !servers.isEmpty {
            options.servers = servers.compactMap(GearmanServerAddress.init)
        }
        options.connectTimeout = .milliseconds(Int64(connectTimeout * 1000))
        options.clientID = clientID
        return options
    }
}
