public import NIOCore

/// An error from the Gearman client, worker or admin client.
///
/// `description` is safe to log: it never contains payload bytes. A job's exception payload is
/// in `payload`.
public struct GearmanError: Error, Sendable, CustomStringConvertible {
    /// What went wrong. New codes may be added; don't switch over them exhaustively.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        enum Base: Sendable, Hashable {
            case connectionFailed, connectionClosed, noServerAvailable, serverError, jobFailed, jobException
            case timeout, cancelled, protocolViolation, invalidArgument, shutDown, authenticationFailed
        }

        let base: Base

        /// A connection to a server could not be made.
        public static let connectionFailed = Code(base: .connectionFailed)
        /// The connection closed while a request or job was outstanding.
        public static let connectionClosed = Code(base: .connectionClosed)
        /// Every configured server is down or failed.
        public static let noServerAvailable = Code(base: .noServerAvailable)
        /// The server answered with an ERROR packet or an `ERR` admin line (`serverCode` says which).
        public static let serverError = Code(base: .serverError)
        /// The job ended with WORK_FAIL.
        public static let jobFailed = Code(base: .jobFailed)
        /// The job ended with WORK_EXCEPTION; `payload` holds the worker's data.
        public static let jobException = Code(base: .jobException)
        /// A wait ran past its timeout.
        public static let timeout = Code(base: .timeout)
        /// The waiting task was cancelled.
        public static let cancelled = Code(base: .cancelled)
        /// The server sent something the protocol does not allow here.
        public static let protocolViolation = Code(base: .protocolViolation)
        /// An argument cannot be sent (too long, contains NUL, …).
        public static let invalidArgument = Code(base: .invalidArgument)
        /// The client or worker was shut down.
        public static let shutDown = Code(base: .shutDown)
        /// The server refused the connection's credentials (ERROR or `ERR` `AUTH_FAILED`, in
        /// `serverCode`), does not support authentication (`UNKNOWN_OPTION`, `UNKNOWN_COMMAND`),
        /// or closed the connection before accepting them. The message never contains the secret.
        public static let authenticationFailed = Code(base: .authenticationFailed)

        public var description: String {
            switch base {
            case .connectionFailed: "connectionFailed"
            case .connectionClosed: "connectionClosed"
            case .noServerAvailable: "noServerAvailable"
            case .serverError: "serverError"
            case .jobFailed: "jobFailed"
            case .jobException: "jobException"
            case .timeout: "timeout"
            case .cancelled: "cancelled"
            case .protocolViolation: "protocolViolation"
            case .invalidArgument: "invalidArgument"
            case .shutDown: "shutDown"
            case .authenticationFailed: "authenticationFailed"
            }
        }
    }

    public var code: Code
    public var message: String
    /// The ERROR code string the server sent (e.g. `QUEUE_ERROR`), for `.serverError`.
    public var serverCode: String?
    /// The job handle the error is about, when there is one.
    public var jobHandle: String?
    /// The worker's exception data, for `.jobException`.
    public var payload: ByteBuffer?
    /// The server the error came from, as `host:port`.
    public var server: String?
    public var underlying: (any Error)?

    public init(
        _ code: Code, _ message: String, serverCode: String? = nil, jobHandle: String? = nil,
        payload: ByteBuffer? = nil, server: String? = nil, underlying: (any Error)? = nil
    ) {
        self.code = code
        self.message = message
        self.serverCode = serverCode
        self.jobHandle = jobHandle
        self.payload = payload
        self.server = server
        self.underlying = underlying
    }

    public var description: String {
        var text = "GearmanError.\(code): \(message)"
        if let serverCode { text += " [\(serverCode)]" }
        if let jobHandle { text += " (job \(jobHandle))" }
        if let server { text += " (server \(server))" }
        return text
    }
}
