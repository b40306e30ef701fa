import GearmanTLS

/// What a verified client certificate says about who its holder is.
enum CertificateIdentity: Equatable {
    /// No verified certificate, or none carrying the configured kind of name.
    case none
    case identity(String)
    /// Several names of the deciding kind: refused, as it is unclear who the holder is.
    case ambiguous(String)
}

extension AccessControl.CertificateIdentitySource {
    /// The principal identity `peer`'s certificate carries under this source.
    func identity(of peer: TLSPeerIdentity) -> CertificateIdentity {
        guard peer.hasCertificate, peer.isVerified else { return .none }
        switch self {
        case .commonName:
            return Self.single(peer.commonNames, kind: "common names")
        case .subjectAlternativeName:
            // A tenant URI says which tenant the certificate was issued for, not who holds it.
            let uris = peer.uriNames.filter { !$0.hasPrefix(CertificateAuthority.tenantURIPrefix) }
            guard !uris.isEmpty else { return Self.single(peer.dnsNames, kind: "DNS SANs") }
            guard case .identity(let uri) = Self.single(uris, kind: "URI SANs") else {
                return Self.single(uris, kind: "URI SANs")
            }
            // `gearlock certs` names the principal as `urn:gearlock:principal:<name>`: the ACL
            // then says just `<name>`, as it does for the common name.
            let prefix = CertificateAuthority.principalURIPrefix
            return .identity(uri.hasPrefix(prefix) ? String(uri.dropFirst(prefix.count)) : uri)
        }
    }

    private static func single(_ names: [String], kind: String) -> CertificateIdentity {
        switch names.count {
        case 0: .none
        case 1: .identity(names[0])
        default: .ambiguous("the certificate has \(names.count) \(kind)")
        }
    }
}
