import GearmanQueue
import GearmanProtocol
import Logging
import NIOCore

/// What the state machine asks its handler to do. The handler performs each in order.
enum JobServerAction {
    /// Write a binary packet (with `\0RES` magic) to a connection.
    case send(GearmanPacket, to: ConnectionID)
    /// Write an admin text reply to a connection.
    case sendText(String, to: ConnectionID)
    /// Make a background job durable.
    case persist(StoredJob)
    /// Forget a durable background job that ended.
    case unpersist(handle: ByteBuffer)
    /// The connection authenticated (or needs no authentication): lift the pre-authentication cap
    /// on its packet size.
    case liftPacketLimit(ConnectionID)
    /// Close a connection after writing what is pending.
    case close(ConnectionID)
    /// Stop the server (admin `shutdown`); `graceful` lets running jobs finish first.
    case shutdown(graceful: Bool)
    /// Log a notable event.
    case log(Logger.Level, Logger.Message, Logger.Metadata)
}

