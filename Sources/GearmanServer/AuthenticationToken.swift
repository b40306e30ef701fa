import NIOCore

/// The shared-secret token `auth:<principal>:<secret>`, as sent in OPTION_REQ or SET_CLIENT_ID.
enum AuthenticationToken: Equatable {
    /// The text is not a token (no `auth:` prefix): an ordinary option or client id.
    case notAToken
    /// A token; the secret may itself contain `:`.
    case token(principal: String, secret: String)
    /// `auth:` without a second `:`. What follows may well be a secret pasted in the wrong place,
    /// so it is kept nowhere.
    case malformed

    init(_ text: ByteBuffer) {
        let view = text.readableBytesView
        let prefix = "auth:".utf8
        guard view.starts(with: prefix) else {
            self = .notAToken
            return
        }
        let rest = view.dropFirst(prefix.count)
        guard let colon = rest.firstIndex(of: UInt8(ascii: ":")) else {
            self = .malformed
            return
        }
        self = .token(
            principal: String(decoding: rest[..<colon], as: UTF8.self),
            secret: String(decoding: rest[rest.index(after: colon)...], as: UTF8.self))
    }
}
