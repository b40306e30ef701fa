/// TLS policy and material for one side of a connection. A value type with no OpenSSL in it;
/// ``TLSContext`` turns it into an OpenSSL context.
public struct TLSConfiguration: Sendable, Hashable {
    public enum Version: Sendable, Hashable {
        case tls12
        case tls13
    }

    /// Whether a server asks clients for a certificate.
    public enum ClientAuthentication: String, Sendable, Hashable, CaseIterable {
        /// Don't ask.
        case none
        /// Ask, and verify one if given; a client without a certificate is still accepted.
        case optional
        /// A verified client certificate is required.
        case require
    }

    public enum Role: Sendable, Hashable {
        case server
        case client
    }

    public var role: Role
    /// PEM file with the certificate, followed by its intermediates.
    public var certificateChainPath: String?
    /// PEM file with the private key.
    public var privateKeyPath: String?
    /// PEM bundle of CA certificates that verify the peer. For a client, nil means the system's
    /// default trust store.
    public var trustRootsPath: String?
    /// PEM file of certificate revocation lists, checked for the peer's certificate when set.
    public var crlPath: String?
    /// Server only. Default: `.none`.
    public var clientAuthentication: ClientAuthentication
    /// Client only: verify the server's certificate chain. Default: true.
    public var verifyPeer: Bool
    /// Client only: the name to send as SNI and to verify the server's certificate against (a DNS
    /// name or an IP address). nil skips the name check but not the chain check.
    public var serverName: String?
    /// The lowest protocol version accepted. Default: TLS 1.2 (Python `gear` cannot do 1.3).
    public var minimumVersion: Version
    /// The highest protocol version offered or accepted. Default: nil, the newest OpenSSL has.
    public var maximumVersion: Version?
    /// OpenSSL cipher list for TLS 1.2: forward-secret AEAD suites only.
    public var cipherList: String
    /// OpenSSL TLS 1.3 cipher suites.
    public var cipherSuites: String
    /// Key-exchange groups, most preferred first.
    public var groups: String
    /// How long a handshake may take before the connection is dropped. Default: 10 seconds.
    public var handshakeTimeout: Duration

    public static let defaultCipherList =
        "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:"
        + "ECDHE-RSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256"
    public static let defaultCipherSuites = "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256"
    public static let defaultGroups = "X25519:P-256:P-384"

    private init(role: Role) {
        self.role = role
        self.clientAuthentication = .none
        self.verifyPeer = true
        self.minimumVersion = .tls12
        self.cipherList = Self.defaultCipherList
        self.cipherSuites = Self.defaultCipherSuites
        self.groups = Self.defaultGroups
        self.handshakeTimeout = .seconds(10)
    }

    /// A server configuration: certificate chain and key are required.
    public static func makeServerConfiguration(
        certificateChainPath: String, privateKeyPath: String, clientAuthentication: ClientAuthentication = .none,
        trustRootsPath: String? = nil, crlPath: String? = nil
    ) -> TLSConfiguration {
        var configuration = TLSConfiguration(role: .server)
        configuration.certificateChainPath = certificateChainPath
        configuration.privateKeyPath = privateKeyPath
        configuration.clientAuthentication = clientAuthentication
        configuration.trustRootsPath = trustRootsPath
        configuration.crlPath = crlPath
        return configuration
    }

    /// A client configuration that verifies the server (against `trustRootsPath`, or the system's
    /// trust store) and, with `serverName`, its name. A certificate and key make it present a
    /// client certificate.
    public static func makeClientConfiguration(
        trustRootsPath: String? = nil, serverName: String? = nil, certificateChainPath: String? = nil,
        privateKeyPath: String? = nil
    ) -> TLSConfiguration {
        var configuration = TLSConfiguration(role: .client)
        configuration.trustRootsPath = trustRootsPath
        configuration.serverName = serverName
        configuration.certificateChainPath = certificateChainPath
        configuration.privateKeyPath = privateKeyPath
        return configuration
    }
}
