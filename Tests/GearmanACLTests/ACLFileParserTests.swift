import GearmanACL
import Testing

@Suite("ACL file parsing")
struct ACLFileParserTests {
    @Test("the DESIGN.md sketch, with real hashes, loads")
    func sketch() throws {
        let policy = try loadSketch()
        #expect(policy.tenants.map(\.name) == ["acme", "globex"])
        #expect(policy.principals.map(\.name) == ["acme-resizer-1", "acme-web", "globex-worker", "ops", "auditor"])

        let acme = try #require(policy.tenant(named: "acme"))
        #expect(acme.functions == [pattern("acme.*")])
        #expect(acme.quotas == Tenant.Quotas(maxQueuedJobs: 100_000, maxConnections: 50, maxPayloadBytes: 1_048_576))
        #expect(policy.tenant(named: "globex")?.quotas == Tenant.Quotas())

        let resizer = try #require(policy.principal(named: "acme-resizer-1"))
        #expect(resizer.tenant == "acme")
        #expect(resizer.certificate == "acme-resizer-1")
        #expect(resizer.secret == SecretHash(parsing: Secrets.resizerHash))
        #expect(resizer.requiredFactors == [.certificate, .secret])
        #expect(resizer.canDo == [pattern("acme.resize"), pattern("acme.thumb.*")])
        #expect(resizer.submit.isEmpty)
        #expect(resizer.admin == .none)

        let web = try #require(policy.principal(named: "acme-web"))
        #expect(web.requiredFactors.isEmpty)
        #expect(web.admin == .read)
        #expect(policy.principal(named: "ops")?.tenant == nil)
        #expect(policy.principal(named: "ops")?.admin == .write)
        #expect(policy.principal(certificateIdentity: "ops-admin")?.name == "ops")
        #expect(policy.anonymous == .none)
    }

    @Test("empty sections and a file with only comments-free empty sections load")
    func emptySections() throws {
        let policy = try AccessPolicy(yaml: "tenants:\nprincipals:\nanonymous:\n")
        #expect(policy.tenants.isEmpty && policy.principals.isEmpty && policy.anonymous == .none)
        #expect(try AccessPolicy(yaml: "{}") == AccessPolicy.denyAll)
    }

    @Test("anonymous rights")
    func anonymous() throws {
        let policy = try AccessPolicy(yaml: """
            anonymous:
              submit: ["public.*"]
              can_do: ["public.echo"]
              admin: read
            """)
        #expect(policy.anonymous == AnonymousRights(canDo: [pattern("public.echo")], submit: [pattern("public.*")], admin: .read))
    }

    /// One broken file per case: the marker names the line the error must point at.
    static let errorCases: [(name: String, yaml: String, marker: String, code: ACLError.Code, says: String)] = [
        ("unknown top-level key", "tenants: {}\nprincipal:\n  x: {}\n", "principal:", .unknownKey, "\"principal\""),
        ("unknown tenant key", """
            tenants:
              acme:
                functions: ["acme.*"]
                max_jobs: 5
            """, "max_jobs", .unknownKey, "\"max_jobs\""),
        ("unknown principal key", """
            principals:
              w:
                certificate: w
                cando: ["x"]
            """, "cando", .unknownKey, "\"cando\""),
        ("unknown anonymous key", "anonymous:\n  subit: []\n", "subit", .unknownKey, "\"subit\""),
        ("bad secret hash: too short", """
            principals:
              w:
                secret: "sha256:abcd"
            """, "secret:", .invalidSecretHash, "64 hex digits"),
        ("bad secret hash: not hex", """
            principals:
              w:
                secret: "sha256:zz1b1a37f25eff33f2793896f34755397b3e2b57af49c35d394315edd5aa42"
            """, "secret:", .invalidSecretHash, "sha256:"),
        ("bad secret hash: no prefix (a plaintext secret)", """
            principals:
              w:
                secret: "hunter2"
            """, "secret:", .invalidSecretHash, "never the secret itself"),
        ("unknown tenant", """
            tenants:
              acme: { functions: ["acme.*"] }
            principals:
              w:
                tenant: acne
                certificate: w
            """, "acne", .unknownTenant, "\"acne\""),
        ("principal with neither certificate nor secret", """
            principals:
              ghost:
                admin: read
            """, "ghost:", .noCredentials, "neither"),
        ("require lists a missing factor", """
            principals:
              w:
                certificate: w
                require: [certificate, secret]
            """, "require:", .missingFactor, "secret"),
        ("require lists an unknown factor", """
            principals:
              w:
                certificate: w
                require: [certificate, password]
            """, "require:", .invalidValue, "\"password\""),
        ("empty require", """
            principals:
              w:
                certificate: w
                require: []
            """, "require:", .invalidValue, "omit it"),
        ("can_do outside the tenant namespace", """
            tenants:
              acme: { functions: ["acme.*"] }
            principals:
              w:
                tenant: acme
                certificate: w
                can_do:
                  - acme.resize
                  - "other.*"
            """, "other.*", .patternOutsideNamespace, "\"other.*\""),
        ("submit `*` in a tenant", """
            tenants:
              acme: { functions: ["acme.*"] }
            principals:
              w:
                tenant: acme
                secret: "\(Secrets.webHash)"
                submit: ["*"]
            """, "submit:", .patternOutsideNamespace, "\"*\""),
        ("empty pattern", """
            principals:
              w:
                certificate: w
                submit: ["ok", ""]
            """, "submit:", .invalidPattern, "non-empty"),
        ("pattern list that is a string", """
            principals:
              w:
                certificate: w
                can_do: "acme.*"
            """, "can_do:", .invalidValue, "list"),
        ("bad admin level", """
            principals:
              w:
                certificate: w
                admin: root
            """, "admin:", .invalidValue, "none, read or write"),
        ("negative quota", """
            tenants:
              acme:
                functions: ["acme.*"]
                max_connections: -1
            """, "max_connections", .invalidValue, "positive integer"),
        ("quota that is not a number", """
            tenants:
              acme:
                functions: ["acme.*"]
                max_payload_bytes: 1MB
            """, "max_payload_bytes", .invalidValue, "positive integer"),
        ("tenant without functions", """
            tenants:
              acme:
                max_connections: 3
            """, "acme:", .invalidValue, "functions"),
        ("overlapping tenant namespaces", """
            tenants:
              acme: { functions: ["acme.*"] }
              sub:
                functions:
                  - "acme.sub.*"
            """, "acme.sub.*", .overlappingNamespaces, "\"acme.*\""),
        ("duplicate certificate identity", """
            principals:
              a: { certificate: "shared" }
              b:
                certificate: shared
            """, "certificate: shared", .duplicateIdentity, "\"a\""),
        ("principal name with a colon", """
            principals:
              "a:b":
                certificate: x
            """, "a:b", .invalidName, "':'"),
        ("duplicate key", """
            principals:
              w:
                certificate: w
                certificate: v
            """, "certificate: w", .invalidYAML, "more than once"),
        ("broken YAML", """
            principals:
              w:
                can_do: ["a", "b"
            admin: x
            """, "admin: x", .invalidYAML, "invalid YAML"),
        ("root that is a list", "- a\n- b\n", "- a", .invalidValue, "mapping"),
    ]

    @Test("each error names its line and its problem", arguments: errorCases)
    func errorCase(_ row: (name: String, yaml: String, marker: String, code: ACLError.Code, says: String)) throws {
        let errors = loadErrors(row.yaml)
        let error = try #require(errors.first, "\(row.name)")
        #expect(errors.count == 1, "\(row.name): \(errors)")
        #expect(error.code == row.code, "\(row.name): \(error)")
        #expect(error.line == line(of: row.marker, in: row.yaml), "\(row.name): \(error)")
        #expect(error.message.contains(row.says), "\(row.name): \(error.message)")
    }

    @Test("all problems are reported, in file order, as FILE:LINE: problem")
    func severalErrors() {
        let yaml = """
            tenants:
              acme: { functions: ["acme.*"] }
            principals:
              a:
                tenant: nope
                certificate: a
              b:
                certificat: b
            bogus: 1
            """
        do {
            _ = try AccessPolicy(yaml: yaml)
            Issue.record("expected errors")
        } catch {
            var located = error
            located.file = "acl.yaml"
            #expect(located.lines == [
                "acl.yaml:5: principal \"a\": unknown tenant \"nope\"",
                "acl.yaml:7: principal \"b\" has neither `certificate` nor `secret`, so it can never authenticate",
                "acl.yaml:8: unknown key \"certificat\" (expected one of: tenant, certificate, secret, require, can_do, submit, admin)",
                "acl.yaml:9: unknown key \"bogus\" (expected one of: tenants, principals, anonymous)",
            ])
        }
    }

    @Test("an alias bomb is stopped by the node budget")
    func aliasBomb() {
        // 1,100 principals share one body whose list has 1,000 items: a 20 KB file, 1.1 million nodes.
        let items = Array(repeating: "a", count: 1_000).joined(separator: ", ")
        var yaml = "anonymous:\n  submit: &list [\(items)]\nprincipals:\n  p0: &body { can_do: *list }\n"
        for index in 1..<1_100 { yaml += "  p\(index): *body\n" }
        let errors = loadErrors(yaml)
        #expect(errors.contains { $0.code == .invalidYAML && $0.message.contains("YAML nodes") })
    }

    @Test("a malformed secret is never echoed")
    func malformedSecretNotEchoed() {
        let yaml = "principals:\n  w:\n    secret: \"correct horse battery staple\"\n"
        let errors = loadErrors(yaml)
        #expect(!errors.isEmpty)
        for error in errors {
            #expect(!error.description.contains("horse"))
        }
    }

    @Test("validation of values built in code")
    func programmaticValidation() {
        #expect(throws: ACLLoadError.self) {
            try AccessPolicy(
                tenants: [Tenant(name: "acme", functions: [pattern("acme.*")])],
                principals: [PrincipalRule(name: "w", tenant: "acme", certificate: "w", canDo: [pattern("*")])])
        }
        #expect(throws: Never.self) {
            try AccessPolicy(
                tenants: [Tenant(name: "acme", functions: [pattern("acme.*")])],
                principals: [PrincipalRule(name: "w", tenant: "acme", certificate: "w", canDo: [pattern("acme.x")])])
        }
    }
}
