import GearmanACL
import GearmanProtocol
import HeapModule
import Logging
import NIOCore
import OrderedCollections

extension JobServerStateMachine {
    /// Replaces the ACL (SIGHUP) and re-checks every live connection against it: a connection whose
    /// principal is gone (or no longer matches its certificate) is closed, and registrations that
    /// are no longer allowed are withdrawn (their running jobs go back to the queue).
    mutating func accessPolicyReloaded(_ policy: AccessPolicy) {
        guard access != nil else { return }
        access!.policy = policy

        tenantJobCounts = [:]
        for key in functions.keys {
            let tenant = policy.owningTenant(ofFunction: key.readableBytesView)?.name
            functions[key]!.tenant = tenant
            if let tenant { tenantJobCounts[tenant, default: 0] += functions[key]!.totalCount }
        }

        tenantConnectionCounts = [:]
        for id in connections.keys.sorted() {
            let connection = connections[id]!
            if let previous = connection.principal {
                guard let rule = policy.principal(named: previous.name), connection.proof?.holds(for: rule) == true else {
                    audit(.principalRemoved, "principal no longer in the ACL; connection closed", connection: id,
                          packet: "ACL reload", level: .notice)
                    resetAbilities(of: id)
                    connections[id]!.principal = nil
                    send(.error(code: ErrorCode.authenticationFailed, text: "Principal no longer allowed"), to: id)
                    actions.append(.close(id))
                    continue
                }
                connections[id]!.principal = rule
                if let tenant = rule.tenant { tenantConnectionCounts[tenant, default: 0] += 1 }
            } else if !isRestricted(connection) {
                actions.append(.liftPacketLimit(id))
            } else if let timeout = access?.authenticationTimeout {
                // Anonymous rights were taken away: it must now authenticate, in time.
                let deadline = Self.deadline(clock.monotonicNanoseconds, plus: UInt64(max(0, timeout.nanoseconds)), times: 1)
                authenticationDeadlines.insert(AuthenticationDeadline(deadline: deadline, connection: id))
            }
            let principal = connections[id]!.principal
            for ability in connection.abilities
            where !policy.mayRegister(principal, function: ability.function.readableBytesView) {
                audit(.registrationWithdrawn, "registration withdrawn by ACL reload", connection: id,
                      packet: "ACL reload", function: ability.function, level: .notice)
                cantDo(ability.function, from: id)
            }
        }
    }
}
