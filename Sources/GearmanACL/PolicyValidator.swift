/// Where in the ACL file each part of a policy came from, so validation errors can name a line.
struct SourceLines: Sendable {
    enum Owner: Hashable, Sendable {
        case tenant(String)
        case principal(String)
        case anonymous
    }

    struct Site: Hashable, Sendable {
        var owner: Owner
        var field: String
        var index: Int?
    }

    /// The line of each tenant's or principal's name.
    var owners: [Owner: Int] = [:]
    /// The line of a field's value, or of one list item when `index` is set.
    var sites: [Site: Int] = [:]

    func line(_ owner: Owner, _ field: String? = nil, index: Int? = nil) -> Int? {
        guard let field else { return owners[owner] }
        return sites[Site(owner: owner, field: field, index: index)]
            ?? sites[Site(owner: owner, field: field, index: nil)] ?? owners[owner]
    }
}

/// Checks the invariants that an `AccessPolicy` promises (see its documentation).
struct PolicyValidator {
    var tenants: [Tenant]
    var principals: [PrincipalRule]
    var anonymous: AnonymousRights
    var lines = SourceLines()
    /// Principals (by name) whose fields did not parse: their credential checks would only repeat
    /// the parse error, so they are skipped.
    var incompletePrincipals: Set<String> = []
    /// Tenants whose namespace did not parse: namespace checks against them are skipped.
    var incompleteTenants: Set<String> = []

    /// Every problem, in file order (problems without a line first).
    func validate() -> [ACLError] {
        var errors: [ACLError] = []
        func report(_ code: ACLError.Code, _ message: String, line: Int?) {
            errors.append(ACLError(code: code, message: message, line: line))
        }

        var tenantNames: Set<String> = []
        for tenant in tenants {
            let owner = SourceLines.Owner.tenant(tenant.name)
            if let problem = Self.nameProblem(tenant.name) {
                report(.invalidName, "tenant name \"\(tenant.name)\" \(problem)", line: lines.line(owner))
            }
            if !tenantNames.insert(tenant.name).inserted {
                report(.invalidValue, "tenant \"\(tenant.name)\" is defined twice", line: lines.line(owner))
            }
            if tenant.functions.isEmpty && !incompleteTenants.contains(tenant.name) {
                report(
                    .invalidValue, "tenant \"\(tenant.name)\" needs `functions`: at least one namespace pattern",
                    line: lines.line(owner, "functions"))
            }
            let quotas: [(String, Int?)] = [
                ("max_queued_jobs", tenant.quotas.maxQueuedJobs), ("max_connections", tenant.quotas.maxConnections),
                ("max_payload_bytes", tenant.quotas.maxPayloadBytes),
            ]
            for (key, value) in quotas {
                if let value, value < 1 {
                    report(.invalidValue, "\(key) must be a positive integer, not \(value)", line: lines.line(owner, key))
                }
            }
        }

        // Namespaces of different tenants must not overlap: a function belongs to one tenant at most.
        for (firstIndex, first) in tenants.enumerated() {
            for second in tenants[(firstIndex + 1)...] where second.name != first.name {
                for (index, pattern) in second.functions.enumerated() {
                    guard let clash = first.functions.first(where: { $0.mayOverlap(with: pattern) }) else { continue }
                    report(
                        .overlappingNamespaces,
                        "namespace \"\(pattern)\" of tenant \"\(second.name)\" may overlap \"\(clash)\" of tenant "
                            + "\"\(first.name)\"; a function must belong to one tenant at most",
                        line: lines.line(.tenant(second.name), "functions", index: index))
                }
            }
        }

        let tenantsByName = Dictionary(tenants.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        var principalNames: Set<String> = []
        var certificateOwners: [String: String] = [:]
        for principal in principals {
            let owner = SourceLines.Owner.principal(principal.name)
            let label = "principal \"\(principal.name)\""
            if let problem = Self.nameProblem(principal.name) {
                report(.invalidName, "principal name \"\(principal.name)\" \(problem)", line: lines.line(owner))
            }
            if !principalNames.insert(principal.name).inserted {
                report(.invalidValue, "\(label) is defined twice", line: lines.line(owner))
            }

            if let identity = principal.certificate {
                if identity.isEmpty || identity.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) {
                    report(
                        .invalidValue, "\(label): `certificate` must be a non-empty identity without control characters",
                        line: lines.line(owner, "certificate"))
                } else if let other = certificateOwners[identity] {
                    report(
                        .duplicateIdentity,
                        "\(label): certificate identity \"\(identity)\" is already principal \"\(other)\"'s",
                        line: lines.line(owner, "certificate"))
                } else {
                    certificateOwners[identity] = principal.name
                }
            }

            if !incompletePrincipals.contains(principal.name) {
                let configured = principal.configuredFactors
                if configured.isEmpty {
                    report(
                        .noCredentials, "\(label) has neither `certificate` nor `secret`, so it can never authenticate",
                        line: lines.line(owner))
                }
                for factor in AuthenticationFactor.allCases
                where principal.requiredFactors.contains(factor) && !configured.contains(factor) {
                    report(
                        .missingFactor, "\(label): `require` lists \(factor.rawValue), but it has no `\(factor.rawValue)`",
                        line: lines.line(owner, "require"))
                }
            }

            guard let tenantName = principal.tenant else { continue }
            guard let tenant = tenantsByName[tenantName] else {
                report(.unknownTenant, "\(label): unknown tenant \"\(tenantName)\"", line: lines.line(owner, "tenant"))
                continue
            }
            guard !incompleteTenants.contains(tenantName) else { continue }
            for (field, patterns) in [("can_do", principal.canDo), ("submit", principal.submit)] {
                for (index, pattern) in patterns.enumerated() where !tenant.contains(pattern) {
                    let namespace = tenant.functions.map { "\"\($0)\"" }.joined(separator: ", ")
                    report(
                        .patternOutsideNamespace,
                        "\(label): \(field) pattern \"\(pattern)\" is not within tenant \"\(tenantName)\"'s namespace "
                            + "(\(namespace))",
                        line: lines.line(owner, field, index: index))
                }
            }
        }

        return errors.enumerated()
            .sorted { ($0.element.line ?? 0, $0.offset) < ($1.element.line ?? 0, $1.offset) }
            .map(\.element)
    }

    static func nameProblem(_ name: String) -> String? { PrincipalRule.nameProblem(name) }
}
