import GearmanProtocol
import Logging
import NIOCore

/// Server-wide limits (the ACL's per-tenant quotas are in `+Authorisation`): connections in all,
/// connections per peer address, and the bytes queued jobs hold.
struct ServerLimits: Sendable, Equatable {
    /// Open connections, all listeners together; nil for no limit.
    var maxConnections: Int?
    /// Open connections from one IP address; nil for no limit.
    var maxConnectionsPerAddress: Int?
    /// Bytes of payload, unique and reducer held by live jobs (queued, scheduled or running); nil
    /// for no limit. A submission that would go over it is refused with ERROR QUEUE_ERROR.
    var maxQueueBytes: UInt64?
}

extension JobServerStateMachine {
    /// Refuses a new connection over a connection limit: ERROR QUOTA_EXCEEDED, then closed. Returns
    /// whether it may stay.
    mutating func admitConnection(_ id: ConnectionID) -> Bool {
        let address = connections[id]!.peerAddress
        var reason: String?
        if let limit = configuration.limits.maxConnections, connections.count > limit {
            reason = "the server's connection limit (\(limit)) is reached"
        } else if let limit = configuration.limits.maxConnectionsPerAddress,
            connectionsPerAddress[address, default: 0] > limit
        {
            reason = "the connection limit per address (\(limit)) is reached"
        }
        guard let reason else { return true }
        audit(.quotaExceeded, "connection refused", connection: id, packet: "-", reason: reason, level: .warning)
        send(.error(code: ErrorCode.quotaExceeded, text: "Too many connections: \(reason)"), to: id)
        actions.append(.close(id))
        return false
    }

    /// The bytes a job holds for the queue-bytes limit.
    static func heldBytes(payload: ByteBuffer, unique: ByteBuffer, reducer: ByteBuffer?) -> UInt64 {
        UInt64(payload.readableBytes + unique.readableBytes + (reducer?.readableBytes ?? 0))
    }

    /// Whether a new job of `bytes` fits under `maxQueueBytes`; when not, the submitter gets ERROR
    /// QUEUE_ERROR and nothing is queued.
    mutating func queueHasRoom(for bytes: UInt64, function: ByteBuffer, packet: PacketType, from id: ConnectionID) -> Bool {
        guard let limit = configuration.limits.maxQueueBytes, queuedBytes + bytes > limit else { return true }
        actions.append(
            .log(
                .warning, "submission refused: the queue's memory limit is reached",
                [
                    "gearman.connection": "\(id)", "gearman.function": "\(String(buffer: function))",
                    "gearman.packet": "\(packet.protocolName)", "gearman.queue_bytes": "\(queuedBytes)",
                    "gearman.max_queue_bytes": "\(limit)",
                ]))
        send(.error(code: ErrorCode.queueError, text: "Queue memory limit reached"), to: id)
        return false
    }
}
