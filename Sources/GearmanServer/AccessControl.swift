public import GearmanACL
public import NIOCore

/// How a server authenticates and authorises its connections. With none configured, every
/// connection may do everything (gearmand's behaviour).
public struct AccessControl: Sendable {
    /// Which part of a verified client certificate names its principal.
    public enum CertificateIdentitySource: String, Sendable, Hashable, CaseIterable {
        /// The subject's common name; a certificate with several CNs is ambiguous and refused.
        case commonName
        /// A subject alternative name: the URI SAN if the certificate has exactly one, else its
        /// single DNS SAN; several of the deciding kind are ambiguous and refused.
        case subjectAlternativeName
    }

    /// The ACL. Replace it live with `JobServer.reloadAccessPolicy(_:)`.
    public var policy: AccessPolicy
    public var certificateIdentity: CertificateIdentitySource
    /// The largest packet payload a connection may send before it has authenticated. Default 64 KiB.
    public var preauthenticationMaxPacketSize: UInt32
    /// How long a connection may take to authenticate before it is closed. Default 10 seconds.
    public var authenticationTimeout: TimeAmount
    /// Failed authentications from one address before further attempts from it are refused
    /// without being checked, for a back-off that doubles with each further failure (1 s up to
    /// 5 minutes). Default 5.
    public var failuresBeforeThrottling: Int

    public init(
        policy: AccessPolicy, certificateIdentity: CertificateIdentitySource = .commonName,
        preauthenticationMaxPacketSize: UInt32 = 64 * 1024, authenticationTimeout: TimeAmount = .seconds(10),
        failuresBeforeThrottling: Int = 5
    ) {
        self.policy = policy
        self.certificateIdentity = certificateIdentity
        self.preauthenticationMaxPacketSize = preauthenticationMaxPacketSize
        self.authenticationTimeout = authenticationTimeout
        self.failuresBeforeThrottling = failuresBeforeThrottling
    }
}
