/// A TLS failure: bad configuration, a failed handshake, or a broken TLS stream.
///
/// `openSSLErrors` holds the reasons OpenSSL gave (e.g. `certificate verify failed`); they name no
/// secret material.
public struct TLSError: Error, Sendable, Hashable, CustomStringConvertible {
    /// New codes may be added; don't switch over them exhaustively.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        enum Base: Sendable, Hashable {
            case invalidConfiguration, handshakeFailed, handshakeTimeout, uncleanShutdown, ioFailed
        }

        let base: Base

        /// A file could not be read or does not fit (certificate, key, CA bundle, CRL, cipher list).
        public static let invalidConfiguration = Code(base: .invalidConfiguration)
        /// The handshake failed (verification, protocol version, not TLS at all, …).
        public static let handshakeFailed = Code(base: .handshakeFailed)
        /// The peer did not complete a handshake in time.
        public static let handshakeTimeout = Code(base: .handshakeTimeout)
        /// The peer closed the TCP connection without a close_notify alert.
        public static let uncleanShutdown = Code(base: .uncleanShutdown)
        /// Reading or writing the TLS stream failed after the handshake.
        public static let ioFailed = Code(base: .ioFailed)

        public var description: String {
            switch base {
            case .invalidConfiguration: "invalidConfiguration"
            case .handshakeFailed: "handshakeFailed"
            case .handshakeTimeout: "handshakeTimeout"
            case .uncleanShutdown: "uncleanShutdown"
            case .ioFailed: "ioFailed"
            }
        }
    }

    public var code: Code
    public var message: String
    public var openSSLErrors: [String]

    public init(code: Code, message: String, openSSLErrors: [String] = []) {
        self.code = code
        self.message = message
        self.openSSLErrors = openSSLErrors
    }

    public var description: String {
        let reasons = openSSLErrors.isEmpty ? "" : " (\(openSSLErrors.joined(separator: "; ")))"
        return "TLSError.\(code): \(message)\(reasons)"
    }
}
