import ArgumentParser
import Gearman
import GearmanTLS

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

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

    @Option(
        help: ArgumentHelp(
            "Principal to authenticate as with a shared secret (default: $\(GearmanCredentials.principalVariable)); "
                + "not needed when a client certificate alone identifies this client.",
            valueName: "name"))
    var principal: String?

    @Option(
        help: ArgumentHelp(
            "File whose first line is the principal's secret (else $\(GearmanCredentials.secretVariable)).",
            valueName: "path"))
    var secretFile: String?

    @Option(
        help: ArgumentHelp(
            "The principal's secret itself. Visible to other users in the process list and kept in "
                + "shell history: prefer --secret-file or $\(GearmanCredentials.secretVariable).",
            valueName: "value"))
    var secret: String?

    func validate() throws {
        for server in servers where GearmanServerAddress(server) == nil {
            throw ValidationError("--server \(server): expected HOST, HOST:PORT or [IPv6]:PORT")
        }
        guard connectTimeout > 0 else { throw ValidationError("--connect-timeout must be positive") }
        guard (tlsCert == nil) == (tlsKey == nil) else {
            throw ValidationError("--tls-cert and --tls-key go together")
        }
        _ = try credentials()
    }

    /// The principal and secret from the options and the environment: the secret from --secret,
    /// else --secret-file, else $GEARLOCK_SECRET; nil when neither part is given.
    /// - Throws: `ValidationError` for one part without the other, an unreadable or empty secret
    ///   file, or a part that cannot be sent.
    func credentials() throws -> GearmanCredentials? {
        let environment = ProcessInfo.processInfo.environment
        let hasPrincipal = principal != nil || !(environment[GearmanCredentials.principalVariable] ?? "").isEmpty
        let hasSecret = secret != nil || secretFile != nil || !(environment[GearmanCredentials.secretVariable] ?? "").isEmpty
        if hasSecret && !hasPrincipal {
            throw ValidationError(
                "a secret (--secret, --secret-file or $\(GearmanCredentials.secretVariable)) needs --principal NAME "
                    + "(or $\(GearmanCredentials.principalVariable)); a certificate-only identity needs neither")
        }
        if hasPrincipal && !hasSecret {
            throw ValidationError(
                "--principal (or $\(GearmanCredentials.principalVariable)) needs a secret: --secret-file PATH, "
                    + "$\(GearmanCredentials.secretVariable) or --secret VALUE")
        }
        do {
            return try GearmanCredentials.resolve(
                principal: principal, secret: secret, secretFile: secretFile, environment: environment)
        } catch {
            throw ValidationError(error.message)
        }
    }

    /// The options for a client, worker or admin client, credentials included.
    /// - Throws: `ValidationError` when the credentials cannot be resolved (see ``credentials()``).
    func connectionOptions() throws -> GearmanConnectionOptions {
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
        options.credentials = try credentials()
        return options
    }
}
