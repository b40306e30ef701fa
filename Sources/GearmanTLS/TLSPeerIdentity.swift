/// Who the peer is, as its certificate says, and what the handshake negotiated. Delivered as the
/// ``TLSEvent/handshakeCompleted(_:)`` user event before any application byte.
public struct TLSPeerIdentity: Sendable, Hashable {
    /// The subject's common names (a well-formed certificate has one).
    public var commonNames: [String]
    public var dnsNames: [String]
    public var uriNames: [String]
    public var ipAddresses: [String]
    /// SHA-256 of the DER certificate, lowercase hex; nil without a peer certificate.
    public var fingerprintSHA256: String?
    /// When the certificate expires, in seconds since 1970.
    public var notAfter: Int64?
    /// The certificate chain was verified against the trust roots (and the CRL, when set).
    public var isVerified: Bool
    /// `TLSv1.2` or `TLSv1.3`.
    public var protocolVersion: String
    public var cipher: String

    public init(
        commonNames: [String] = [], dnsNames: [String] = [], uriNames: [String] = [], ipAddresses: [String] = [],
        fingerprintSHA256: String? = nil, notAfter: Int64? = nil, isVerified: Bool = false,
        protocolVersion: String = "", cipher: String = ""
    ) {
        self.commonNames = commonNames
        self.dnsNames = dnsNames
        self.uriNames = uriNames
        self.ipAddresses = ipAddresses
        self.fingerprintSHA256 = fingerprintSHA256
        self.notAfter = notAfter
        self.isVerified = isVerified
        self.protocolVersion = protocolVersion
        self.cipher = cipher
    }

    /// The peer presented a certificate.
    public var hasCertificate: Bool { fingerprintSHA256 != nil }
}

/// Events the TLS handler sends up the pipeline.
public enum TLSEvent: Sendable, Hashable {
    /// The handshake finished; application data may flow.
    case handshakeCompleted(TLSPeerIdentity)
}
