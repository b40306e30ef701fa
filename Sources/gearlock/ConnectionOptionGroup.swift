import ArgumentParser
import Gearman
import GearmanTLS

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

    @Flag(help: "Connect with TLS, trusting the system's CA store (implied by the other --tls options).")
    var tls = false

    @Option(help: "PEM bundle of the CAs that issue server certificates (turns TLS on).")
    var tlsCA: String?

    @Option(help: "PEM file with this client's certificate chain, for mutual TLS (turns TLS on).")
    var tlsCert: String?

    @Option(help: "PEM file with this client's private key.")
    var tlsKey: String?

    @Option(help: "Name to verify the server's certificate against (default: the --server host).")
    var tlsServerName: String?

    func validate() throws {
        for server in servers where GearmanServerAddress(server) == nil {
            throw ValidationError("--server \(server): expected HOST, HOST:PORT or [IPv6]:PORT")
        }
        guard connectTimeout > 0 else { throw ValidationError("--connect-timeout must be positive") }
        guard (tlsCert == nil) == (tlsKey == nil) else {
            throw ValidationError("--tls-cert and --tls-key go together")
        }
    }

    var connectionOptions: GearmanConnectionOptions {
        var options = GearmanConnectionOptions()
        if !servers.isEmpty {
            options.servers = servers.compactMap(GearmanServerAddress.init)
        }
        options.connectTimeout = .milliseconds(Int64(connectTimeout * 1000))
        options.clientID = clientID
        if tls || tlsCA != nil || tlsCert != nil || tlsServerName != nil {
            options.tls = TLSConfiguration.makeClientConfiguration(
                trustRootsPath: tlsCA, serverName: tlsServerName, certificateChainPath: tlsCert, privateKeyPath: tlsKey)
        }
        return options
    }
}
