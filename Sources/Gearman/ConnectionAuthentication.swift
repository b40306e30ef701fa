import GearmanProtocol
import NIOCore

/// How a connection authenticates, when its options carry credentials: what it sends first, and
/// how long it waits for the answer before giving up.
struct ConnectionAuthentication: Sendable {
    /// Which protocol the connection speaks, and so how it authenticates.
    enum Dialect: Sendable {
        /// Client and worker connections: OPTION_REQ `auth:<principal>:<secret>`, answered by
        /// OPTION_RES `auth:<principal>` or ERROR.
        case binary
        /// Admin connections: the line `auth <principal> <secret>`, answered by `OK` or `ERR …`.
        case admin
    }

    var credentials: GearmanCredentials
    var dialect: Dialect
    /// How long the server may take to answer; nil waits until the connection ends.
    var timeout: Duration?

    /// The bytes that authenticate: the OPTION_REQ packet or the admin line with its line ending.
    func encoded(allocator: ByteBufferAllocator) -> ByteBuffer {
        switch dialect {
        case .binary:
            GearmanPacketEncoder.encode(
                .optionRequest(name: ByteBuffer(string: credentials.optionToken)), magic: .request, allocator: allocator)
        case .admin:
            ByteBuffer(string: credentials.adminLine + "\r\n")
        }
    }
}
