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
            if !peer.uriNames.isEmpty { return Self.single(peer.uriNames, kind: "URI SANs") }
            return Self.single(peer.dnsNames, kind: "DNS SANs")
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
