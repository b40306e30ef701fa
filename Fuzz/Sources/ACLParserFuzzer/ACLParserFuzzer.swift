import GearmanACL

/// Feeds the input, as the text of an ACL file, to the ACL loader. A load error is fine; a crash,
/// a hang or unbounded memory is a bug. An accepted policy is asked a few questions, so its
/// lookups run on whatever the parser let through.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: start, count: count)
    // `AccessPolicy.load(contentsOfFile:)` refuses a file that is not UTF-8 the same way.
    guard let text = String(validating: bytes, as: UTF8.self) else { return 0 }
    let policy: AccessPolicy
    do {
        policy = try AccessPolicy(yaml: text)
    } catch {
        // The operator-facing rendering of the errors must not crash either.
        _ = error.errors.map(\.description)
        return 0
    }
    // What `AccessPolicy` promises of every policy it holds.
    let names = policy.principals.map(\.name)
    precondition(Set(names).count == names.count, "two principals share a name")
    let tenantNames = policy.tenants.map(\.name)
    precondition(Set(tenantNames).count == tenantNames.count, "two tenants share a name")
    let certificates = policy.principals.compactMap(\.certificate)
    precondition(Set(certificates).count == certificates.count, "two principals share a certificate identity")
    for principal in policy.principals {
        if let tenant = principal.tenant {
            precondition(policy.tenant(named: tenant) != nil, "a principal names an unknown tenant")
        }
    }
    let function = "acme.resize"
    for principal in policy.principals + [nil] {
        _ = policy.mayRegister(principal, function: function)
        _ = policy.maySubmit(principal, function: Array(function.utf8))
        _ = policy.adminLevel(for: principal)
        _ = policy.tenant(of: principal)
        _ = policy.mayShutdown(principal)
        if let principal {
            precondition(policy.principal(named: principal.name) != nil, "a loaded principal is found by its name")
        }
    }
    _ = policy.owningTenant(ofFunction: Array(function.utf8))
    return 0
}
