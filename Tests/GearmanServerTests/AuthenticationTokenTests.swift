import NIOCore
import Testing

@testable import GearmanServer

/// Parsing the `auth:<principal>:<secret>` token of OPTION_REQ and SET_CLIENT_ID.
@Suite struct AuthenticationTokenTests {
    @Test(arguments: [
        ("auth:acme-web:s3cret", "acme-web", "s3cret"),
        // The secret runs to the end, `:` included; the principal ends at the first `:`.
        ("auth:p:a:b:c", "p", "a:b:c"),
        ("auth:p::", "p", ":"),
        ("auth:p:", "p", ""),
        ("auth::s", "", "s"),
        ("auth::", "", ""),
        ("auth:p:with space", "p", "with space"),
        ("auth:ü:ß", "ü", "ß"),
    ])
    func tokensParse(text: String, principal: String, secret: String) {
        #expect(AuthenticationToken(ByteBuffer(string: text)) == .token(principal: principal, secret: secret))
    }

    /// `auth:` without a second `:` is neither an ordinary option nor a token: what follows may be a
    /// secret pasted without its principal, so the parse keeps none of it.
    @Test(arguments: ["auth:p", "auth:", "auth:acme-web-s3cret", "auth:with space"])
    func tokensWithoutASecondColonAreMalformed(text: String) {
        #expect(AuthenticationToken(ByteBuffer(string: text)) == .malformed)
    }

    @Test(arguments: ["", "auth", "AUTH:p:s", "Auth:p:s", " auth:p:s", "exceptions", "permission-errors", "author:x", "xauth:p:s"])
    func otherTextIsNotAToken(text: String) {
        #expect(AuthenticationToken(ByteBuffer(string: text)) == .notAToken)
    }

    @Test func theReadableBytesAreParsedNotTheWholeBuffer() {
        var buffer = ByteBuffer(string: "junkauth:p:s")
        buffer.moveReaderIndex(forwardBy: 4)
        #expect(AuthenticationToken(buffer) == .token(principal: "p", secret: "s"))
        let slice = ByteBuffer(string: "auth:p:secret-and-more").getSlice(at: 0, length: 13)!
        #expect(AuthenticationToken(slice) == .token(principal: "p", secret: "secret"))
    }

    @Test func binaryBytesDoNotTrap() {
        var buffer = ByteBuffer(string: "auth:")
        buffer.writeBytes([0xFF, 0x00, 0x3A, 0xFE])
        guard case .token(let principal, _) = AuthenticationToken(buffer) else {
            Issue.record("expected a token")
            return
        }
        #expect(principal.utf8.count > 0)
    }
}
