internal import Yams

/// Turns the YAML text of an ACL file into an `AccessPolicy`, strictly: unknown keys, wrong shapes
/// and invalid values are errors naming their line, and all of them are reported, not just the first.
///
/// The format (SECURITY.md documents it for operators):
/// ```yaml
/// tenants:
///   NAME: { functions: [PATTERN, …], max_queued_jobs: N, max_connections: N, max_payload_bytes: N }
/// principals:
///   NAME: { tenant: NAME, certificate: ID, secret: "sha256:…", require: [certificate, secret],
///           can_do: [PATTERN, …], submit: [PATTERN, …], admin: none|read|write }
/// anonymous: { can_do: [PATTERN, …], submit: [PATTERN, …], admin: none|read|write }
/// ```
struct ACLFileParser {
    private var errors: [ACLError] = []
    private var lines = SourceLines()
    private var incompletePrincipals: Set<String> = []
    private var incompleteTenants: Set<String> = []
    private var visitedNodes = 0
    static let nodeBudget = 1_000_000

    static func parse(_ yaml: String) -> Result<AccessPolicy, ACLLoadError> {
        var parser = ACLFileParser()
        return parser.parse(yaml)
    }

    private mutating func parse(_ yaml: String) -> Result<AccessPolicy, ACLLoadError> {
        let root: Node?
        do {
            root = try Yams.compose(yaml: yaml)
        } catch {
            return .failure(ACLLoadError(errors: [Self.describe(error)]))
        }
        var tenants: [Tenant] = []
        var principals: [PrincipalRule] = []
        var anonymous = AnonymousRights.none
        if let root, let top = mapping(root, "the ACL file") {
            for (key, value) in top {
                guard let name = keyName(key) else { continue }
                switch name {
                case "tenants":
                    guard !isNull(value), let entries = mapping(value, "`tenants`") else { continue }
                    for (tenantKey, body) in entries {
                        guard let tenantName = keyName(tenantKey) else { continue }
                        tenants.append(parseTenant(tenantName, line: tenantKey.mark?.line, body))
                    }
                case "principals":
                    guard !isNull(value), let entries = mapping(value, "`principals`") else { continue }
                    for (principalKey, body) in entries {
                        guard let principalName = keyName(principalKey) else { continue }
                        principals.append(parsePrincipal(principalName, line: principalKey.mark?.line, body))
                    }
                case "anonymous":
                    guard !isNull(value) else { continue }
                    anonymous = parseAnonymous(value)
                default:
                    unknownKey(name, key, allowed: ["tenants", "principals", "anonymous"])
                }
            }
        }

        var validator = PolicyValidator(tenants: tenants, principals: principals, anonymous: anonymous)
        validator.lines = lines
        validator.incompletePrincipals = incompletePrincipals
        validator.incompleteTenants = incompleteTenants
        let all = (errors + validator.validate()).enumerated()
            .sorted { ($0.element.line ?? 0, $0.offset) < ($1.element.line ?? 0, $1.offset) }
            .map(\.element)
        guard all.isEmpty else { return .failure(ACLLoadError(errors: all)) }
        return .success(AccessPolicy(validated: tenants, principals: principals, anonymous: anonymous))
    }

    // MARK: - Sections

    private mutating func parseTenant(_ name: String, line: Int?, _ body: Node) -> Tenant {
        let owner = SourceLines.Owner.tenant(name)
        lines.owners[owner] = line
        var tenant = Tenant(name: name, functions: [])
        guard let fields = mapping(body, "tenant \"\(name)\"") else {
            incompleteTenants.insert(name)
            return tenant
        }
        for (key, value) in fields {
            guard let field = keyName(key) else { continue }
            lines.sites[SourceLines.Site(owner: owner, field: field)] = value.mark?.line ?? key.mark?.line
            switch field {
            case "functions":
                let (patterns, complete) = patternList(value, owner: owner, field: field)
                tenant.functions = patterns
                if !complete { incompleteTenants.insert(name) }
            case "max_queued_jobs": tenant.quotas.maxQueuedJobs = positiveInteger(value, field)
            case "max_connections": tenant.quotas.maxConnections = positiveInteger(value, field)
            case "max_payload_bytes": tenant.quotas.maxPayloadBytes = positiveInteger(value, field)
            default:
                unknownKey(field, key, allowed: ["functions", "max_queued_jobs", "max_connections", "max_payload_bytes"])
            }
        }
        return tenant
    }

    private mutating func parsePrincipal(_ name: String, line: Int?, _ body: Node) -> PrincipalRule {
        let owner = SourceLines.Owner.principal(name)
        lines.owners[owner] = line
        var principal = PrincipalRule(name: name)
        guard let fields = mapping(body, "principal \"\(name)\"") else {
            incompletePrincipals.insert(name)
            return principal
        }
        for (key, value) in fields {
            guard let field = keyName(key) else { continue }
            lines.sites[SourceLines.Site(owner: owner, field: field)] = value.mark?.line ?? key.mark?.line
            switch field {
            case "tenant":
                principal.tenant = string(value, field)
            case "certificate":
                principal.certificate = string(value, field)
                if principal.certificate == nil { incompletePrincipals.insert(name) }
            case "secret":
                guard let text = string(value, field) else {
                    incompletePrincipals.insert(name)
                    continue
                }
                guard let hash = SecretHash(parsing: text) else {
                    incompletePrincipals.insert(name)
                    // A malformed value might be a plaintext secret pasted by mistake: never echo it.
                    report(
                        .invalidSecretHash,
                        "`secret` must be \"sha256:\" followed by 64 hex digits (the hash from "
                            + "`gearlock acl new-secret`), never the secret itself",
                        value)
                    continue
                }
                principal.secret = hash
            case "require":
                guard let factors = factorList(value) else {
                    incompletePrincipals.insert(name)
                    continue
                }
                principal.requiredFactors = factors
            case "can_do":
                principal.canDo = patternList(value, owner: owner, field: field).patterns
            case "submit":
                principal.submit = patternList(value, owner: owner, field: field).patterns
            case "admin":
                principal.admin = adminLevel(value) ?? .none
            default:
                unknownKey(
                    field, key,
                    allowed: ["tenant", "certificate", "secret", "require", "can_do", "submit", "admin"])
            }
        }
        return principal
    }

    private mutating func parseAnonymous(_ body: Node) -> AnonymousRights {
        var rights = AnonymousRights.none
        guard let fields = mapping(body, "`anonymous`") else { return rights }
        for (key, value) in fields {
            guard let field = keyName(key) else { continue }
            switch field {
            case "can_do": rights.canDo = patternList(value, owner: .anonymous, field: field).patterns
            case "submit": rights.submit = patternList(value, owner: .anonymous, field: field).patterns
            case "admin": rights.admin = adminLevel(value) ?? .none
            default: unknownKey(field, key, allowed: ["can_do", "submit", "admin"])
            }
        }
        return rights
    }

    // MARK: - Values

    private mutating func report(_ code: ACLError.Code, _ message: String, _ node: Node) {
        errors.append(ACLError(code: code, message: message, line: node.mark?.line, column: node.mark?.column))
    }

    private mutating func unknownKey(_ name: String, _ key: Node, allowed: [String]) {
        report(.unknownKey, "unknown key \"\(name)\" (expected one of: \(allowed.joined(separator: ", ")))", key)
    }

    /// Counts the nodes visited. YAML aliases share one node among many places, so a small file
    /// can describe an exponentially large tree ("billion laughs"); the walk stops at a budget far
    /// beyond any real ACL.
    private mutating func plain(_ node: Node) -> Bool {
        visitedNodes += 1
        if visitedNodes == Self.nodeBudget + 1 {
            report(.invalidYAML, "the ACL expands to more than \(Self.nodeBudget) YAML nodes (aliases?)", node)
        }
        return visitedNodes <= Self.nodeBudget
    }

    private func isNull(_ node: Node) -> Bool {
        guard case .scalar = node else { return false }
        return node.tag.rawValue == Tag.Name.null.rawValue
    }

    private mutating func mapping(_ node: Node, _ what: String) -> Node.Mapping? {
        guard plain(node) else { return nil }
        guard case .mapping(let mapping) = node else {
            report(.invalidValue, "\(what) must be a mapping of keys to values", node)
            return nil
        }
        return mapping
    }

    private mutating func keyName(_ key: Node) -> String? {
        guard plain(key) else { return nil }
        guard case .scalar(let scalar) = key, key.tag.rawValue != Tag.Name.null.rawValue else {
            report(.invalidValue, "a key must be a plain string", key)
            return nil
        }
        return scalar.string
    }

    private mutating func string(_ node: Node, _ field: String) -> String? {
        guard plain(node) else { return nil }
        guard case .scalar(let scalar) = node, node.tag.rawValue != Tag.Name.null.rawValue else {
            report(.invalidValue, "`\(field)` must be a string", node)
            return nil
        }
        return scalar.string
    }

    private mutating func positiveInteger(_ node: Node, _ field: String) -> Int? {
        guard plain(node) else { return nil }
        guard case .scalar = node, node.tag.rawValue == Tag.Name.int.rawValue, let value = node.int, value > 0 else {
            report(.invalidValue, "`\(field)` must be a positive integer", node)
            return nil
        }
        return value
    }

    private mutating func adminLevel(_ node: Node) -> AdminLevel? {
        guard let text = string(node, "admin") else { return nil }
        guard let level = AdminLevel(rawValue: text) else {
            report(.invalidValue, "`admin` must be none, read or write, not \"\(text)\"", node)
            return nil
        }
        return level
    }

    /// The items of a list of strings, each with its node; nil (after reporting) when it is not a list.
    private mutating func stringItems(_ node: Node, _ field: String) -> [(String, Node)]? {
        guard plain(node) else { return nil }
        guard case .sequence(let sequence) = node else {
            report(.invalidValue, "`\(field)` must be a list, e.g. [\"a\", \"b\"]", node)
            return nil
        }
        var items: [(String, Node)] = []
        var complete = true
        for item in sequence {
            guard let text = string(item, "\(field)` item `") else {
                complete = false
                continue
            }
            items.append((text, item))
        }
        return complete ? items : nil
    }

    private mutating func patternList(
        _ node: Node, owner: SourceLines.Owner, field: String
    ) -> (patterns: [FunctionPattern], complete: Bool) {
        guard plain(node) else { return ([], false) }
        guard case .sequence(let sequence) = node else {
            report(.invalidValue, "`\(field)` must be a list of function patterns, e.g. [\"acme.*\"]", node)
            return ([], false)
        }
        var patterns: [FunctionPattern] = []
        var complete = true
        for item in sequence {
            guard let text = string(item, "\(field)` item `") else {
                complete = false
                continue
            }
            guard let pattern = FunctionPattern(text) else {
                report(.invalidPattern, "`\(field)`: a pattern must be non-empty and free of control characters", item)
                complete = false
                continue
            }
            lines.sites[SourceLines.Site(owner: owner, field: field, index: patterns.count)] = item.mark?.line
            patterns.append(pattern)
        }
        return (patterns, complete)
    }

    private mutating func factorList(_ node: Node) -> Set<AuthenticationFactor>? {
        guard let items = stringItems(node, "require") else { return nil }
        guard !items.isEmpty else {
            report(.invalidValue, "`require` must list certificate, secret or both (omit it to accept either)", node)
            return nil
        }
        var factors: Set<AuthenticationFactor> = []
        var valid = true
        for (text, item) in items {
            guard let factor = AuthenticationFactor(rawValue: text) else {
                report(.invalidValue, "`require`: unknown factor \"\(text)\" (expected certificate or secret)", item)
                valid = false
                continue
            }
            if !factors.insert(factor).inserted {
                report(.invalidValue, "`require` lists \(text) twice", item)
            }
        }
        return valid ? factors : nil
    }

    // MARK: - YAML errors

    /// A Yams error as an `ACLError`, without the document text Yams carries along.
    private static func describe(_ error: any Error) -> ACLError {
        guard let yamlError = error as? YamlError else {
            return ACLError(code: .invalidYAML, message: "not valid YAML")
        }
        func make(_ problem: String, _ context: YamlError.Context?, _ mark: Mark) -> ACLError {
            let detail = context.map { "\(problem) \($0.text)" } ?? problem
            return ACLError(code: .invalidYAML, message: "invalid YAML: \(detail)", line: mark.line, column: mark.column)
        }
        switch yamlError {
        case .scanner(let context, let problem, let mark, _): return make(problem, context, mark)
        case .parser(let context, let problem, let mark, _): return make(problem, context, mark)
        case .composer(let context, let problem, let mark, _): return make(problem, context, mark)
        case .duplicatedKeysInMapping(let duplicates, let context):
            let keys = duplicates.map { "\"\($0)\"" }.joined(separator: ", ")
            return ACLError(
                code: .invalidYAML, message: "key \(keys) appears more than once in this mapping (first here)", line: context.mark.line,
                column: context.mark.column)
        case .reader(let problem, _, _, _):
            return ACLError(code: .invalidYAML, message: "invalid YAML: \(problem)")
        default:
            return ACLError(code: .invalidYAML, message: "invalid YAML")
        }
    }
}
