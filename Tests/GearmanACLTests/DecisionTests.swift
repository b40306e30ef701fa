import GearmanACL
import Testing

@Suite("Decisions")
struct DecisionTests {
    @Test("can_do per principal")
    func canDo() throws {
        let policy = try loadSketch()
        let resizer = policy.principal(named: "acme-resizer-1")
        #expect(policy.mayRegister(resizer, function: "acme.resize"))
        #expect(policy.mayRegister(resizer, function: "acme.thumb.small"))
        #expect(!policy.mayRegister(resizer, function: "acme.thumb"))
        #expect(!policy.mayRegister(resizer, function: "acme.other"))
        #expect(!policy.mayRegister(resizer, function: "globex.resize"))
        // Submitting is a separate grant.
        #expect(!policy.maySubmit(resizer, function: "acme.resize"))

        let globexWorker = policy.principal(named: "globex-worker")
        #expect(policy.mayRegister(globexWorker, function: "globex.anything.at.all"))
        #expect(policy.mayRegister(globexWorker, function: "gx-1"))
        #expect(!policy.mayRegister(globexWorker, function: "gx-2"))
        #expect(!policy.mayRegister(globexWorker, function: "acme.resize"))
    }

    @Test("submit per principal")
    func submit() throws {
        let policy = try loadSketch()
        let web = policy.principal(named: "acme-web")
        #expect(policy.maySubmit(web, function: "acme.resize"))
        #expect(policy.maySubmit(web, function: Array("acme.x".utf8)))
        #expect(!policy.maySubmit(web, function: "acmex.y"))
        #expect(!policy.maySubmit(web, function: "globex.resize"))
        #expect(!policy.mayRegister(web, function: "acme.resize"))
    }

    @Test("anonymous gets nothing by default")
    func anonymousDefault() throws {
        for policy in [try loadSketch(), AccessPolicy.denyAll] {
            for function in ["acme.resize", "globex.x", "", "anything"] {
                #expect(!policy.mayRegister(nil, function: function))
                #expect(!policy.maySubmit(nil, function: function))
            }
            #expect(policy.adminLevel(for: nil) == .none)
            #expect(policy.tenant(of: nil) == nil)
            #expect(!policy.mayShutdown(nil))
        }
    }

    @Test("anonymous rights, when granted, are exactly what is granted")
    func anonymousGranted() throws {
        let policy = try AccessPolicy(yaml: "anonymous:\n  submit: [\"public.*\"]\n  admin: write\n")
        #expect(policy.maySubmit(nil, function: "public.echo"))
        #expect(!policy.maySubmit(nil, function: "private.echo"))
        #expect(!policy.mayRegister(nil, function: "public.echo"))
        #expect(policy.adminLevel(for: nil) == .write)
        #expect(!policy.isGlobal(nil))
        #expect(!policy.mayShutdown(nil))  // anonymous never shuts the server down
    }

    @Test("admin levels")
    func adminLevels() throws {
        let policy = try loadSketch()
        #expect(policy.adminLevel(for: policy.principal(named: "ops")) == .write)
        #expect(policy.adminLevel(for: policy.principal(named: "acme-web")) == .read)
        #expect(policy.adminLevel(for: policy.principal(named: "acme-resizer-1")) == .none)
        #expect(AdminLevel.none < .read && AdminLevel.read < .write)
    }

    @Test("global and tenant principals")
    func globalAndTenant() throws {
        let policy = try loadSketch()
        let ops = policy.principal(named: "ops")
        let auditor = policy.principal(named: "auditor")
        let web = policy.principal(named: "acme-web")
        #expect(policy.isGlobal(ops) && policy.isGlobal(auditor))
        #expect(!policy.isGlobal(web))
        #expect(policy.tenant(of: ops) == nil)
        #expect(policy.tenant(of: web)?.name == "acme")
        #expect(policy.mayShutdown(ops))
        #expect(!policy.mayShutdown(auditor))  // global, but read only
        #expect(!policy.mayShutdown(web))
        // A global principal's grants are not limited to any namespace, but still only what is granted.
        #expect(!policy.maySubmit(ops, function: "acme.resize"))
        #expect(policy.owningTenant(ofFunction: Array("acme.resize".utf8))?.name == "acme")
        #expect(policy.owningTenant(ofFunction: Array("gx-7".utf8))?.name == "globex")
        #expect(policy.owningTenant(ofFunction: Array("nobody.x".utf8)) == nil)
    }

    @Test("a global principal may be granted anything")
    func globalGrants() throws {
        let policy = try AccessPolicy(
            tenants: [Tenant(name: "acme", functions: [pattern("acme.*")])],
            principals: [PrincipalRule(name: "root", certificate: "root", canDo: [pattern("*")], submit: [pattern("*")])])
        let root = policy.principal(named: "root")
        #expect(policy.mayRegister(root, function: "acme.resize"))
        #expect(policy.maySubmit(root, function: "anything"))
    }

    @Test("a principal from another policy whose tenant is gone gets nothing, and is not global")
    func stalePrincipal() throws {
        let old = try loadSketch()
        let web = try #require(old.principal(named: "acme-web"))
        let reloaded = try AccessPolicy(yaml: "tenants:\n  other: { functions: [\"acme.*\"] }\n")
        #expect(!reloaded.maySubmit(web, function: "acme.resize"))
        #expect(reloaded.tenant(of: web) == nil)
        #expect(!reloaded.isGlobal(web))
        #expect(!reloaded.mayShutdown(web))
    }
}
