/// A loaded, validated ACL: tenants, principals and the rights of unauthenticated connections.
///
/// Everything is denied unless granted. An `AccessPolicy` can only exist in a valid state: every
/// principal's tenant exists, every tenant principal's grants lie inside its tenant's namespace,
/// tenants' namespaces do not overlap, certificate identities are unique, and every `require`
/// names a configured factor. Build one from a file with `AccessPolicy.load(contentsOfFile:)`, from
/// text with `AccessPolicy(yaml:)`, or from values with `init(tenants:principals:anonymous:)`.
public struct AccessPolicy: Sendable, Hashable {
    /// In the order they were given.
    public let tenants: [Tenant]
    /// In the order they were given.
    public let principals: [PrincipalRule]
    public let anonymous: AnonymousRights

    let tenantsByName: [String: Tenant]
    let principalsByName: [String: PrincipalRule]
    let principalsByCertificate: [String: PrincipalRule]

    /// Validates and builds a policy; throws every problem found.
    public init(
        tenants: [Tenant], principals: [PrincipalRule], anonymous: AnonymousRights = .none
    ) throws(ACLLoadError) {
        let errors = PolicyValidator(tenants: tenants, principals: principals, anonymous: anonymous).validate()
        guard errors.isEmpty else { throw ACLLoadError(errors: errors) }
        self.init(validated: tenants, principals: principals, anonymous: anonymous)
    }

    /// The empty policy: no tenants, no principals, nothing granted to anyone.
    public static let denyAll = AccessPolicy(validated: [], principals: [], anonymous: .none)

    init(validated tenants: [Tenant], principals: [PrincipalRule], anonymous: AnonymousRights) {
        self.tenants = tenants
        self.principals = principals
        self.anonymous = anonymous
        self.tenantsByName = Dictionary(tenants.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        self.principalsByName = Dictionary(principals.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        self.principalsByCertificate = Dictionary(
            principals.compactMap { principal in principal.certificate.map { ($0, principal) } },
            uniquingKeysWith: { first, _ in first })
    }

    public func principal(named name: String) -> PrincipalRule? { principalsByName[name] }

    public func principal(certificateIdentity identity: String) -> PrincipalRule? {
        principalsByCertificate[identity]
    }

    public func tenant(named name: String) -> Tenant? { tenantsByName[name] }
}
