/// Malformed input on a Gearman connection: what was wrong, and where.
///
/// The connection that sent it cannot be trusted to stay in step, so the receiver closes it.
/// The `description` never contains payload bytes; `offendingBytes` keeps up to 32 of them for debugging.
public struct GearmanProtocolError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What kind of malformation this is. New codes may be added; don't switch over them exhaustively.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        enum Base: Sendable, Hashable {
            case invalidMagic
            case unknownPacketType
            case packetTooLarge
            case missingArgument
            case fieldTooLong
            case textLineTooLong
            case unexpectedPayload
        }

        let base: Base

        /// The 4 bytes after a NUL first byte are neither `\0REQ` nor `\0RES`.
        public static let invalidMagic = Code(base: .invalidMagic)
        /// The packet number is 0 or not one of the protocol's packet types.
        public static let unknownPacketType = Code(base: .unknownPacketType)
        /// The header declares a payload larger than the configured maximum packet size.
        public static let packetTooLarge = Code(base: .packetTooLarge)
        /// The payload has fewer NUL-separated arguments than the packet type requires.
        public static let missingArgument = Code(base: .missingArgument)
        /// An argument other than a data tail is longer than the configured maximum field size.
        public static let fieldTooLong = Code(base: .fieldTooLong)
        /// A text (admin) line reached the maximum line length without a newline.
        public static let textLineTooLong = Code(base: .textLineTooLong)
        /// A packet type that carries no arguments arrived with a payload.
        public static let unexpectedPayload = Code(base: .unexpectedPayload)

        public var description: String {
            switch base {
            case .invalidMagic: "invalidMagic"
            case .unknownPacketType: "unknownPacketType"
            case .packetTooLarge: "packetTooLarge"
            case .missingArgument: "missingArgument"
            case .fieldTooLong: "fieldTooLong"
            case .textLineTooLong: "textLineTooLong"
            case .unexpectedPayload: "unexpectedPayload"
            }
        }
    }

    public var code: Code
    /// A human-readable explanation, free of payload bytes.
    public var message: String
    /// Up to 32 of the bytes that could not be decoded.
    public var offendingBytes: [UInt8]

    public init(code: Code, message: String, offendingBytes: [UInt8] = []) {
        self.code = code
        self.message = message
        self.offendingBytes = Array(offendingBytes.prefix(32))
    }

    public var description: String { "GearmanProtocolError.\(code): \(message)" }
}
