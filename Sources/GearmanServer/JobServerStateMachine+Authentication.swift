import GearmanACL
import GearmanProtocol
import GearmanTLS
import HeapModule
import Logging
import NIOCore
import OrderedCollections

/// How a connection presented its credentials; decides the reply.
enum AuthenticationRoute {
    /// OPTION_REQ `auth:<principal>:<secret>`: answered with OPTION_RES `auth:<principal>`.
    case optionRequest
    /// SET_CLIENT_ID `auth:<principal>:<secret>`: no reply; the client id becomes the principal.
    case clientID
    /// The admin line `auth <principal> <secret>`: answered `OK`.
    case adminLine
    /// The verified client certificate, at the end of the TLS handshake: no reply.
    case certificate

    var packetName: String {
        switch self {
        case .optionRequest: "OPTION_REQ"
        case .clientID: "SET_CLIENT_ID"
        case .adminLine: "admin auth"
        case .certificate: "TLS handshake"
        }
    }
}

extension JobServerStateMachine {
    /// Whether the connection is held to the pre-authentication rules: an ACL is loaded, the
    /// connection has not authenticated, and anonymous connections have no rights.
    func isRestricted(_ connection: ConnectionState) -> Bool {
        guard let access else { return false }
        return connection.principal == nil && access.policy.anonymous == .none
    }

    /// Starts the authentication deadline, or lifts the packet cap when none is needed.
    mutating func accessConnectionOpened(_ id: ConnectionID) {
        guard let access else { return }
        if isRestricted(connections[id]!) {
            let deadline = Self.deadline(
                clock.monotonicNanoseconds, plus: UInt64(max(0, access.authenticationTimeout.nanoseconds)), times: 1)
            authenticationDeadlines.insert(AuthenticationDeadline(deadline: deadline, connection: id))
        } else {
            actions.append(.liftPacketLimit(id))
        }
    }

    /// Closes connections that did not authenticate in time.
    mutating func authenticationDeadlinesPassed(now: UInt64) {
        while let entry = authenticationDeadlines.min, entry.deadline <= now {
            authenticationDeadlines.removeMin()
            guard let connection = connections[entry.connection], isRestricted(connection) else { continue }
            audit(.authenticationFailed, "authentication deadline passed; connection closed", connection: entry.connection,
                  packet: "-", reason: "did not authenticate in time", level: .notice)
            send(.error(code: ErrorCode.authenticationFailed, text: "Authentication deadline passed"), to: entry.connection)
            actions.append(.close(entry.connection))
        }
    }

    /// The TLS handshake completed: a verified certificate may identify the principal.
    mutating func peerIdentified(_ id: ConnectionID, identity peer: TLSPeerIdentity) {
        guard connections[id] != nil, let access else { return }
        switch access.certificateIdentity.identity(of: peer) {
        case .none:
            return
        case .ambiguous(let why):
            // Verified by the CA, so not a guess: not counted towards throttling.
            rejectAuthentication(
                id, route: .certificate, claimed: nil, reason: "ambiguous certificate identity: \(why)", countFailure: false)
        case .identity(let identity):
            connections[id]!.certificateIdentity = identity
            guard let rule = access.policy.principal(certificateIdentity: identity) else {
                audit(.certificateUnknown, "certificate identity not in the ACL; connection stays anonymous",
                      connection: id, packet: "TLS handshake", reason: "certificate \(identity)", level: .info)
                return
            }
            // A principal that also requires its secret authenticates when the secret arrives.
            guard !rule.requiredFactors.contains(.secret) else { return }
            authenticate(id, principal: nil, secret: nil, via: .certificate)
        }
    }

    /// Checks credentials and, on success, makes the connection act as the principal. A failure
    /// is answered AUTH_FAILED and closes the connection; the secret goes nowhere.
    mutating func authenticate(_ id: ConnectionID, principal name: String?, secret: String?, via route: AuthenticationRoute) {
        guard let access else {
            // No ACL: there is nothing to authenticate against. Never keep the secret.
            switch route {
            case .clientID:
                connections[id]!.clientID = name.map { ByteBuffer(bytes: $0.utf8.prefix(Self.maxClientIDLength)) }
            case .optionRequest:
                send(.error(code: ErrorCode.unknownOption, text: "Authentication is not enabled on this server"), to: id)
            case .adminLine: sendText(AdminReply.error("UNKNOWN_COMMAND", "Authentication+is+not+enabled"), to: id)
            case .certificate: break
            }
            return
        }
        let connection = connections[id]!
        // A certificate was verified by the CA: it cannot be guessed, so it is neither throttled
        // nor counted as a guess.
        let isGuessable = route != .certificate
        if isGuessable && throttle.isThrottled(connection.peerAddress, now: clock.monotonicNanoseconds) {
            rejectAuthentication(id, route: route, claimed: name, reason: "too many failures from this address; throttled",
                                 countFailure: false)
            return
        }
        if let current = connection.principal, name != nil, name != current.name {
            rejectAuthentication(id, route: route, claimed: name, reason: "already authenticated as \(current.name)")
            return
        }
        let result = access.policy.authenticate(
            principal: name, secret: secret, certificateIdentity: connection.certificateIdentity)
        switch result {
        case .failed(let failure):
            rejectAuthentication(id, route: route, claimed: name, reason: failure.reason.description, countFailure: isGuessable)
        case .authenticated(let rule):
            if isGuessable { throttle.recordSuccess(connection.peerAddress) }
            let proof = AuthenticationProof(
                certificate: connection.certificateIdentity == rule.certificate ? rule.certificate : nil,
                secretHash: secret == nil ? connection.proof?.secretHash : rule.secret)
            if connection.principal == nil {
                if let tenant = rule.tenant, let limit = access.policy.tenant(named: tenant)?.quotas.maxConnections,
                    tenantConnectionCounts[tenant, default: 0] >= limit
                {
                    audit(.quotaExceeded, "tenant connection quota reached; connection closed", connection: id,
                          packet: route.packetName, reason: "max_connections \(limit)", level: .notice, principal: rule)
                    replyFailure(id, route: route, code: ErrorCode.quotaExceeded,
                                 text: "Tenant connection limit of \(limit) reached")
                    return
                }
                if let tenant = rule.tenant { tenantConnectionCounts[tenant, default: 0] += 1 }
                connections[id]!.principal = rule
                audit(.authenticated, "authenticated", connection: id, packet: route.packetName, level: .info)
                actions.append(.liftPacketLimit(id))
            }
            connections[id]!.proof = proof
            switch route {
            case .optionRequest: send(.optionResponse(name: ByteBuffer(string: "auth:" + rule.name)), to: id)
            case .clientID: connections[id]!.clientID = nil
            case .adminLine: sendText(AdminReply.ok, to: id)
            case .certificate: break
            }
        }
    }

    /// `auth:` with no second `:`: refused, and what followed is not logged (it may be a secret).
    mutating func rejectMalformedToken(_ id: ConnectionID, via route: AuthenticationRoute) {
        guard access != nil else {
            if route == .optionRequest {
                send(.error(code: ErrorCode.unknownOption, text: "Authentication is not enabled on this server"), to: id)
            }
            return
        }
        rejectAuthentication(id, route: route, claimed: nil, reason: "malformed token (expected auth:<principal>:<secret>)")
    }

    /// A connection that has not authenticated sent a packet over the pre-authentication cap. It
    /// may have authenticated in the packets just before it; otherwise it is refused and closed.
    mutating func preauthenticationLimitReached(_ id: ConnectionID, declaredSize: UInt32) {
        guard let connection = connections[id] else { return }
        guard isRestricted(connection) else {
            actions.append(.liftPacketLimit(id))
            return
        }
        let limit = access?.preauthenticationMaxPacketSize ?? 0
        audit(.permissionDenied, "packet over the pre-authentication limit; connection closed", connection: id,
              packet: "-", reason: "declared \(declaredSize) bytes, limit \(limit)", level: .notice)
        send(.error(code: ErrorCode.argumentTooLarge,
                    text: "Packet of \(declaredSize) bytes exceeds the \(limit)-byte limit before authentication"), to: id)
        actions.append(.close(id))
    }

    private mutating func rejectAuthentication(
        _ id: ConnectionID, route: AuthenticationRoute, claimed: String?, reason: String, countFailure: Bool = true
    ) {
        let address = connections[id]!.peerAddress
        // A name no principal has is not logged as given: it may be a secret typed in the wrong place.
        let claimed = claimed.map { access?.policy.principal(named: $0) != nil ? $0 : "<unknown name of \($0.utf8.count) bytes>" }
        var reason = reason
        if countFailure, let delay = throttle.recordFailure(address, now: clock.monotonicNanoseconds) {
            reason += "; address throttled for \(delay / 1_000_000_000) s"
        }
        audit(.authenticationFailed, "authentication failed; connection closed", connection: id,
              packet: route.packetName, reason: reason, level: .warning, claimedPrincipal: claimed)
        replyFailure(id, route: route, code: ErrorCode.authenticationFailed, text: "Authentication failed")
    }

    private mutating func replyFailure(_ id: ConnectionID, route: AuthenticationRoute, code: String, text: String) {
        switch route {
        case .adminLine: sendText(AdminReply.error(code, String(text.map { $0 == " " ? "+" : $0 })), to: id)
        case .optionRequest, .clientID, .certificate: send(.error(code: code, text: text), to: id)
        }
        actions.append(.close(id))
    }
}
