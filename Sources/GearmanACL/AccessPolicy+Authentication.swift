extension AccessPolicy {
    /// A hash no secret is known to produce (SHA-256 of nothing would do just as well, but an
    /// explicit constant says what it is for): compared against when the claimed principal does not
    /// exist, so an unknown name costs the same time as a wrong secret.
    private static let decoyHash = SecretHash(hashing: "gearlock: no such principal")

    /// Decides which principal a connection is.
    ///
    /// - Parameters:
    ///   - principal: the name from an `auth:<principal>:<secret>` token (OPTION_REQ or
    ///     SET_CLIENT_ID) or the admin `auth` line; nil when only a certificate is presented.
    ///   - secret: the secret from that token.
    ///   - certificateIdentity: the identity of the connection's verified client certificate
    ///     (CN or SAN, as the server is configured); nil without one.
    ///
    /// Rules:
    /// - With a name, the named principal must exist, and each factor is counted when it is
    ///   presented *and* matches: the secret against the stored hash (constant time), the
    ///   certificate identity against the principal's `certificate`. A presented secret that does
    ///   not match fails outright; a presented certificate that belongs to another principal fails
    ///   (`certificateMismatch`); a certificate the ACL does not know is simply not a factor.
    /// - Without a name, the certificate identity alone selects the principal.
    /// - Success needs every factor in `requiredFactors`, or, when that is empty, at least one.
    public func authenticate(
        principal name: String?, secret: String?, certificateIdentity: String?
    ) -> AuthenticationResult {
        func fail(_ reason: AuthenticationFailure.Reason) -> AuthenticationResult {
            .failed(AuthenticationFailure(reason: reason, claimedPrincipal: name))
        }

        let rule: PrincipalRule
        if let name {
            guard let named = principalsByName[name] else {
                if let secret { _ = Self.decoyHash.matches(secret) }
                return fail(.unknownPrincipal)
            }
            rule = named
        } else if let certificateIdentity {
            guard let byCertificate = principalsByCertificate[certificateIdentity] else {
                return fail(.unknownCertificate)
            }
            rule = byCertificate
        } else {
            return fail(.noCredentials)
        }

        var presented: Set<AuthenticationFactor> = []
        if let secret {
            // Hash and compare even when no hash is configured, to keep the timing uniform.
            let matches = (rule.secret ?? Self.decoyHash).matches(secret)
            guard matches, rule.secret != nil else { return fail(.wrongSecret) }
            presented.insert(.secret)
        }
        if let certificateIdentity {
            if certificateIdentity == rule.certificate {
                presented.insert(.certificate)
            } else if principalsByCertificate[certificateIdentity] != nil {
                return fail(.certificateMismatch)
            }
        }

        if rule.requiredFactors.contains(.certificate) && !presented.contains(.certificate) {
            return fail(.certificateRequired)
        }
        if rule.requiredFactors.contains(.secret) && !presented.contains(.secret) {
            return fail(.secretRequired)
        }
        guard !presented.isEmpty else {
            // A name with neither a secret nor its certificate.
            return fail(rule.certificate != nil ? .certificateRequired : .secretRequired)
        }
        return .authenticated(rule)
    }
}
