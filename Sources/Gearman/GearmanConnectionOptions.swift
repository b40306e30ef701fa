public import GearmanTLS

/// How the client, worker and admin client reach their servers. Shared by all three, so one set
/// of command-line options configures any of them.
public struct GearmanConnectionOptions: Sendable {
    /// The job servers. Default: `127.0.0.1:4730`.
    public var servers: [GearmanServerAddress]
    /// How long a TCP connect may take. Default: 5 seconds.
    public var connectTimeout: Duration
    /// The first wait before reconnecting to a server that failed; doubled on every failure up to
    /// `maximumReconnectDelay`. Default: 100 ms.
    public var initialReconnectDelay: Duration
    /// The longest wait between reconnect attempts. Default: 10 seconds.
    public var maximumReconnectDelay: Duration
    /// The id sent with SET_CLIENT_ID (shown by the admin `workers` command). Default: none.
    public var clientID: String?
    /// The largest packet accepted from a server. Default: the protocol's maximum, 4 GiB − 1.
    public var maxPacketSize: UInt32
    /// TLS for every connection (a client configuration: see
    /// `TLSConfiguration.makeClientConfiguration`). The server's certificate is verified, and so is
    /// its name: `serverName` when set, else the host of each server address. Default: nil, plaintext.
    public var tls: TLSConfiguration?
    /// The principal and shared secret every connection authenticates with before anything else
    /// (binary connections with OPTION_REQ `auth:…`, admin connections with the `auth` line). A
    /// connection is used only once the server accepted them; a refusal fails it with
    /// `.authenticationFailed`, and the server is retried after the usual backoff. With TLS, a
    /// client certificate may identify the connection instead (or as well). Default: nil, none.
    public var credentials: GearmanCredentials?

    public init(
        servers: [GearmanServerAddress] = [GearmanServerAddress(host: "127.0.0.1")],
        connectTimeout: Duration = .seconds(5),
        initialReconnectDelay: Duration = .milliseconds(100),
        maximumReconnectDelay: Duration = .seconds(10),
        clientID: String? = nil,
        maxPacketSize: UInt32 = .max,
        tls: TLSConfiguration? = nil,
        credentials: GearmanCredentials? = nil
    ) {
        self.servers = servers
        self.connectTimeout = connectTimeout
        self.initialReconnectDelay = initialReconnectDelay
        self.maximumReconnectDelay = maximumReconnectDelay
        self.clientID = clientID
        self.maxPacketSize = maxPacketSize
        self.tls = tls
        self.credentials = credentials
    }
}

extension Duration {
    var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        let (secondsPart, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        if overflow { return seconds < 0 ? .min : .max }
        let (sum, overflow2) = secondsPart.addingReportingOverflow(attoseconds / 1_000_000_000)
        return overflow2 ? .max : sum
    }
}
