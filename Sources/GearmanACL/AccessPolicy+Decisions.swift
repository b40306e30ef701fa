/// The questions the server asks at intake. `nil` as the principal means an unauthenticated
/// connection, which gets `anonymous` rights.
extension AccessPolicy {
    /// Whether `principal` may register `function` as a worker (CAN_DO, CAN_DO_TIMEOUT).
    public func mayRegister(_ principal: PrincipalRule?, function: some Collection<UInt8>) -> Bool {
        guard let principal else { return anonymous.canDo.contains { $0.matches(function) } }
        return principal.canDo.contains { $0.matches(function) } && isInNamespace(of: principal, function: function)
    }

    public func mayRegister(_ principal: PrincipalRule?, function: String) -> Bool {
        mayRegister(principal, function: function.utf8)
    }

    /// Whether `principal` may submit a job to `function` (every SUBMIT_* variant).
    public func maySubmit(_ principal: PrincipalRule?, function: some Collection<UInt8>) -> Bool {
        guard let principal else { return anonymous.submit.contains { $0.matches(function) } }
        return principal.submit.contains { $0.matches(function) } && isInNamespace(of: principal, function: function)
    }

    public func maySubmit(_ principal: PrincipalRule?, function: String) -> Bool {
        maySubmit(principal, function: function.utf8)
    }

    /// The admin commands `principal` may run. For a tenant principal they apply only to its own
    /// tenant's functions and jobs.
    public func adminLevel(for principal: PrincipalRule?) -> AdminLevel {
        guard let principal else { return anonymous.admin }
        return principal.admin
    }

    /// The tenant `principal` belongs to; nil for a global principal and for anonymous connections.
    ///
    /// Also nil for a principal from another policy (say, before a reload) whose tenant this policy
    /// lacks; the decisions above deny such a principal everything rather than treat it as global.
    /// After a reload, look principals up again by name in the new policy.
    public func tenant(of principal: PrincipalRule?) -> Tenant? {
        guard let tenantName = principal?.tenant else { return nil }
        return tenantsByName[tenantName]
    }

    /// Whether `principal` sees the whole server (a principal with no tenant). Anonymous
    /// connections never do, whatever their admin level.
    public func isGlobal(_ principal: PrincipalRule?) -> Bool {
        guard let principal else { return false }
        return principal.tenant == nil
    }

    /// Only a global principal with `admin: write` may shut the server down.
    public func mayShutdown(_ principal: PrincipalRule?) -> Bool {
        isGlobal(principal) && adminLevel(for: principal) >= .write
    }

    /// The tenant that owns `function`, if any (namespaces do not overlap, so at most one).
    public func owningTenant(ofFunction function: some Collection<UInt8>) -> Tenant? {
        tenants.first { $0.owns(function: function) }
    }

    /// Defence in depth: loading already refuses grants outside the namespace, but the decision
    /// checks the function itself too, so a future bug in the containment rule cannot leak.
    private func isInNamespace(of principal: PrincipalRule, function: some Collection<UInt8>) -> Bool {
        guard let tenantName = principal.tenant else { return true }  // global
        guard let tenant = tenantsByName[tenantName] else { return false }  // stale rule: deny
        return tenant.owns(function: function)
    }
}
