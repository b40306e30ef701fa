/// The outcome of `AccessPolicy.authenticate(principal:secret:certificateIdentity:)`.
public enum AuthenticationResult: Sendable, Hashable {
    case authenticated(PrincipalRule)
    case failed(AuthenticationFailure)

    /// The principal, when authentication succeeded.
    public var principal: PrincipalRule? {
        switch self {
        case .authenticated(let principal): principal
        case .failed: nil
        }
    }
}

/// Why authentication failed — for the audit log only. Peers get a bare `AUTH_FAILED` whatever the
/// reason, so the wire does not tell an unknown principal from a wrong secret.
///
/// Holds no secret: neither the reason nor the description ever includes what was presented as
/// one. `claimedPrincipal` is the name the peer sent (untrusted text, for the log).
public struct AuthenticationFailure: Sendable, Hashable, CustomStringConvertible {
    /// New reasons may be added; don't switch over them exhaustively.
    public struct Reason: Sendable, Hashable, CustomStringConvertible {
        enum Base: Sendable, Hashable {
            case noCredentials, unknownPrincipal, unknownCertificate, wrongSecret, secretRequired
            case certificateRequired, certificateMismatch
        }

        let base: Base

        /// Neither a principal name with a secret nor a certificate identity was presented.
        public static let noCredentials = Reason(base: .noCredentials)
        /// No principal has the claimed name.
        public static let unknownPrincipal = Reason(base: .unknownPrincipal)
        /// Only a certificate was presented, and no principal has its identity.
        public static let unknownCertificate = Reason(base: .unknownCertificate)
        /// The secret does not match, or the principal has no secret configured.
        public static let wrongSecret = Reason(base: .wrongSecret)
        /// The principal requires its secret, and none was presented.
        public static let secretRequired = Reason(base: .secretRequired)
        /// The principal requires its certificate, and it was not presented.
        public static let certificateRequired = Reason(base: .certificateRequired)
        /// The certificate presented belongs to a different principal than the one claimed.
        public static let certificateMismatch = Reason(base: .certificateMismatch)

        public var description: String {
            switch base {
            case .noCredentials: "no credentials presented"
            case .unknownPrincipal: "unknown principal"
            case .unknownCertificate: "no principal has this certificate identity"
            case .wrongSecret: "wrong secret"
            case .secretRequired: "the principal requires its secret"
            case .certificateRequired: "the principal requires its certificate"
            case .certificateMismatch: "the certificate belongs to another principal"
            }
        }
    }

    public var reason: Reason
    /// The name the peer claimed, if it sent one.
    public var claimedPrincipal: String?

    public init(reason: Reason, claimedPrincipal: String?) {
        self.reason = reason
        self.claimedPrincipal = claimedPrincipal
    }

    public var description: String {
        guard let claimedPrincipal else { return "authentication failed: \(reason)" }
        return "authentication failed for principal \"\(claimedPrincipal)\": \(reason)"
    }
}
