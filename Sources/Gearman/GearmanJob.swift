public import NIOCore
import GearmanProtocol

/// A job handed to a worker's handler: its data, and the means to report progress.
public struct GearmanJob: Sendable {
    /// The handle the server gave the job.
    public let handle: String
    public let function: String
    /// The job's unique key (empty when the client gave none).
    public let unique: String
    public let payload: ByteBuffer
    /// The server the job came from.
    public let server: GearmanServerAddress

    let connection: GearmanConnection
    let handleBytes: ByteBuffer

    init(handle: ByteBuffer, function: ByteBuffer, unique: ByteBuffer, payload: ByteBuffer, connection: GearmanConnection) {
        self.handle = String(buffer: handle)
        self.function = String(buffer: function)
        self.unique = String(buffer: unique)
        self.payload = payload
        self.server = connection.address
        self.connection = connection
        self.handleBytes = handle
    }

    /// Sends WORK_DATA: intermediate output, forwarded to every waiting client.
    public func sendData(_ data: ByteBuffer) {
        connection.send(.workData(handle: handleBytes, payload: data))
    }

    /// Sends WORK_WARNING.
    public func sendWarning(_ data: ByteBuffer) {
        connection.send(.workWarning(handle: handleBytes, payload: data))
    }

    /// Sends WORK_STATUS: progress as numerator/denominator.
    public func sendStatus(numerator: Int, denominator: Int) {
        connection.send(
            .workStatus(
                handle: handleBytes, numerator: ByteBuffer(string: String(numerator)),
                denominator: ByteBuffer(string: String(denominator))))
    }
}

/// Throw this from a worker's handler to end the job with WORK_EXCEPTION carrying `payload`.
/// Any other error ends the job with WORK_FAIL.
public struct GearmanJobException: Error, Sendable {
    public var payload: ByteBuffer

    public init(payload: ByteBuffer) {
        self.payload = payload
    }

    public init(_ message: String) {
        self.payload = ByteBuffer(string: message)
    }
}
