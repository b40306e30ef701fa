import GearmanACL
import GearmanProtocol
import Logging
import NIOCore
import OrderedCollections

/// The kinds of audit event, as the `audit` metadata value of their log line.
enum AuditEvent: String {
    case authenticated = "authenticated"
    case authenticationFailed = "authentication_failed"
    case certificateUnknown = "certificate_unknown"
    case permissionDenied = "permission_denied"
    case quotaExceeded = "quota_exceeded"
    case registrationWithdrawn = "registration_withdrawn"
    case principalRemoved = "principal_removed"
}

/// What an admin connection sees: the whole server, or one tenant's part of it (nil: the part
/// no tenant owns, for anonymous connections with admin rights).
enum AdminScope: Equatable {
    case everything
    case tenant(String?)

    func sees(functionOf tenant: String?) -> Bool {
        switch self {
        case .everything: true
        case .tenant(let scope): scope == tenant
        }
    }

    func sees(_ connection: ConnectionState) -> Bool {
        switch self {
        case .everything: true
        case .tenant(nil): connection.principal == nil
        case .tenant(let scope?): connection.tenant == scope
        }
    }
}

extension JobServerStateMachine {
    /// Logs an audit event: who (principal, tenant, address), what (packet, function) and why —
    /// never a secret.
    mutating func audit(
        _ event: AuditEvent, _ message: Logger.Message, connection id: ConnectionID, packet: String,
        function: ByteBuffer? = nil, reason: String? = nil, level: Logger.Level,
        principal: PrincipalRule? = nil, claimedPrincipal: String? = nil
    ) {
        let connection = connections[id]
        let principal = principal ?? connection?.principal
        var metadata: Logger.Metadata = [
            "audit": "\(event.rawValue)",
            "gearman.connection": "\(id)",
            "peer.address": "\(connection?.peerAddress ?? "-")",
            "auth.principal": "\(principal?.name ?? claimedPrincipal.map { "\($0) (claimed)" } ?? "anonymous")",
            "auth.tenant": "\(principal?.tenant ?? "-")",
            "gearman.packet": "\(packet)",
        ]
        if let certificate = connection?.certificateIdentity { metadata["tls.identity"] = "\(certificate)" }
        if let function { metadata["gearman.function"] = "\(String(buffer: function))" }
        if let reason { metadata["reason"] = "\(reason)" }
        actions.append(.log(level, message, metadata))
        switch event {
        case .authenticated:
            observe(.authenticated(id))
        case .authenticationFailed:
            let claimedTenant = claimedPrincipal.flatMap { access?.policy.principal(named: $0)?.tenant }
            observe(.authenticationFailed(tenant: principal?.tenant ?? claimedTenant))
        case .permissionDenied:
            observe(.accessDenied(tenant: principal?.tenant))
        case .certificateUnknown, .quotaExceeded, .registrationWithdrawn, .principalRemoved:
            break
        }
    }

    // MARK: Workers and clients

    /// CAN_DO / CAN_DO_TIMEOUT: a denied registration is not made, is audited, and gets no reply
    /// unless the connection asked for permission errors.
    mutating func mayRegister(_ function: ByteBuffer, packet: PacketType, from id: ConnectionID) -> Bool {
        guard let access else { return true }
        let connection = connections[id]!
        guard !access.policy.mayRegister(connection.principal, function: function.readableBytesView) else { return true }
        audit(.permissionDenied, "registration denied", connection: id, packet: packet.protocolName,
              function: function, level: .notice)
        if connection.permissionErrors {
            send(.error(code: ErrorCode.permissionDenied, text: "Not permitted to register this function"), to: id)
        }
        return false
    }

    /// Every SUBMIT_* variant: the function must be granted, and the tenant's payload limit kept.
    mutating func maySubmit(_ submission: Submission, packet: PacketType, from id: ConnectionID) -> Bool {
        guard let access else { return true }
        let principal = connections[id]!.principal
        guard access.policy.maySubmit(principal, function: submission.function.readableBytesView) else {
            audit(.permissionDenied, "submission denied", connection: id, packet: packet.protocolName,
                  function: submission.function, level: .notice)
            send(.error(code: ErrorCode.permissionDenied, text: "Not permitted to submit to this function"), to: id)
            return false
        }
        if let limit = access.policy.tenant(of: principal)?.quotas.maxPayloadBytes,
            submission.payload.readableBytes > limit
        {
            audit(.quotaExceeded, "submission over the tenant's payload limit", connection: id,
                  packet: packet.protocolName, function: submission.function,
                  reason: "\(submission.payload.readableBytes) bytes, limit \(limit)", level: .notice)
            send(.error(code: ErrorCode.argumentTooLarge, text: "Payload exceeds the tenant's limit of \(limit) bytes"), to: id)
            return false
        }
        return true
    }

    /// Before a new job is created: the tenant's `max_queued_jobs`.
    mutating func tenantHasRoom(for function: ByteBuffer, packet: PacketType, from id: ConnectionID) -> Bool {
        guard let access, let tenant = functions[function]?.tenant,
            let limit = access.policy.tenant(named: tenant)?.quotas.maxQueuedJobs,
            tenantJobCounts[tenant, default: 0] >= limit
        else { return true }
        audit(.quotaExceeded, "tenant queue quota reached", connection: id, packet: packet.protocolName,
              function: function, reason: "max_queued_jobs \(limit)", level: .notice)
        send(.error(code: ErrorCode.queueError, text: "Tenant queue quota reached"), to: id)
        return false
    }

    /// A worker's WORK_* payload over its tenant's payload limit is refused. Returns false after
    /// answering the worker.
    mutating func resultWithinTenantLimit(_ payload: ByteBuffer, packet: PacketType, job: Job, from id: ConnectionID) -> Bool {
        guard let access, let limit = access.policy.tenant(of: connections[id]!.principal)?.quotas.maxPayloadBytes,
            payload.readableBytes > limit
        else { return true }
        audit(.quotaExceeded, "work result over the tenant's payload limit", connection: id,
              packet: packet.protocolName, function: job.function,
              reason: "\(payload.readableBytes) bytes, limit \(limit)", level: .notice)
        send(.error(code: ErrorCode.argumentTooLarge, text: "Payload exceeds the tenant's limit of \(limit) bytes"), to: id)
        return false
    }

    /// GET_STATUS and GET_STATUS_UNIQUE answer only for functions the caller may submit to; any
    /// other job is reported unknown, never forbidden.
    func mayQueryStatus(of function: ByteBuffer, from id: ConnectionID) -> Bool {
        guard let access else { return true }
        return access.policy.maySubmit(connections[id]!.principal, function: function.readableBytesView)
    }

    // MARK: Admin

    /// The admin level a command needs; nil for commands anyone may send.
    static func requiredLevel(_ request: AdminRequest) -> AdminLevel? {
        switch request {
        case .workers, .status, .priorityStatus, .showJobs, .showUniqueJobs, .getPID, .verbose, .version:
            .read
        case .cancelJob, .createFunction, .dropFunction, .maxQueue, .shutdown:
            .write
        case .authenticate, .invalid:
            nil
        }
    }

    /// Whether the connection may run `request`; answers and audits a refusal.
    mutating func mayRunAdmin(_ request: AdminRequest, command: String, from id: ConnectionID) -> Bool {
        guard let access, let required = Self.requiredLevel(request) else { return true }
        let principal = connections[id]!.principal
        var allowed = access.policy.adminLevel(for: principal) >= required
        if case .shutdown = request { allowed = allowed && access.policy.mayShutdown(principal) }
        guard !allowed else { return true }
        audit(.permissionDenied, "admin command denied", connection: id, packet: "admin \(command)",
              reason: "needs admin \(required)", level: .notice)
        sendText(AdminReply.error(ErrorCode.permissionDenied, "Permission+denied"), to: id)
        return false
    }

    /// What the connection's admin commands see and change.
    func adminScope(of id: ConnectionID) -> AdminScope {
        guard let access else { return .everything }
        let principal = connections[id]!.principal
        return access.policy.isGlobal(principal) ? .everything : .tenant(principal?.tenant)
    }

    /// The tenant that would own a function of this name.
    func owningTenant(ofFunctionNamed name: String) -> String? {
        access?.policy.owningTenant(ofFunction: name.utf8)?.name
    }
}
