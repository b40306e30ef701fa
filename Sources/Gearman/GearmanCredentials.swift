#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A principal and its shared secret, with which a connection authenticates to a Gearlock server.
///
/// Binary connections (client, worker) send the token `auth:<principal>:<secret>` as an
/// OPTION_REQ before anything else; admin connections send the line `auth <principal> <secret>`.
/// The server answers with the principal only, and so does everything here: `description`,
/// `debugDescription`, `dump` and every error show the principal and never the secret.
///
/// Both parts are checked when the value is made, so they always fit on the wire: the principal
/// is non-empty and holds no `:`, whitespace or control character; the secret is non-empty and
/// holds no whitespace or control character (the admin line separates its words with spaces).
///
/// ```swift
/// let credentials = try GearmanCredentials(principal: "acme-web", secret: try GearmanCredentials.readSecret(fromFile: "/run/secrets/gearman"))
/// let client = GearmanClient(configuration: .init(connection: .init(credentials: credentials)))
/// ```
public struct GearmanCredentials: Sendable, Hashable {
    /// Who the connection claims to be (a principal of the server's ACL).
    public let principal: String
    /// The shared secret proving it. Never printed.
    public let secret: String

    /// - Throws: `.invalidArgument` when either part cannot be sent (see the type's description);
    ///   the message names what is wrong but never quotes the secret.
    public init(principal: String, secret: String) throws(GearmanError) {
        try Self.validate(principal: principal)
        try Self.validate(secret: secret)
        self.principal = principal
        self.secret = secret
    }

    /// Checks a principal: non-empty, with no `:` (it ends the principal in the OPTION_REQ
    /// token), whitespace or control character.
    public static func validate(principal: String) throws(GearmanError) {
        guard !principal.isEmpty else { throw GearmanError(.invalidArgument, "the principal is empty") }
        if let bad = principal.unicodeScalars.first(where: { $0 == ":" || isWhitespaceOrControl($0) }) {
            throw GearmanError(
                .invalidArgument,
                "the principal \(String(reflecting: principal)) contains \(describe(bad)), which cannot be sent")
        }
    }

    /// Checks a secret: non-empty, with no whitespace (the admin `auth` line separates its words
    /// with spaces) or control character (a line break would end the line). The message never
    /// quotes the secret.
    public static func validate(secret: String) throws(GearmanError) {
        guard !secret.isEmpty else { throw GearmanError(.invalidArgument, "the secret is empty") }
        if let bad = secret.unicodeScalars.first(where: isWhitespaceOrControl) {
            throw GearmanError(.invalidArgument, "the secret contains \(describe(bad)), which cannot be sent")
        }
    }

    private static func isWhitespaceOrControl(_ scalar: Unicode.Scalar) -> Bool {
        scalar.properties.isWhitespace || scalar.properties.generalCategory == .control
    }

    private static func describe(_ scalar: Unicode.Scalar) -> String {
        if scalar == ":" { return "a colon" }
        if scalar == " " { return "a space" }
        if scalar == "\n" || scalar == "\r" { return "a line break" }
        return scalar.properties.isWhitespace ? "whitespace" : "a control character"
    }

    // MARK: On the wire

    /// The OPTION_REQ option name a binary connection authenticates with.
    var optionToken: String { "auth:\(principal):\(secret)" }

    /// The OPTION_RES option name with which the server accepts `optionToken`.
    var acceptedOption: String { "auth:\(principal)" }

    /// The admin line an admin connection authenticates with (the connection adds the line ending).
    var adminLine: String { "auth \(principal) \(secret)" }

    /// `text` with every occurrence of the secret replaced, for text that came from elsewhere (a
    /// server's error message) and will be shown.
    func redacting(_ text: String) -> String {
        text.replacing(secret, with: "<redacted>")
    }
}

extension GearmanCredentials: CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    /// `GearmanCredentials(principal: "acme-web", secret: <redacted>)`.
    public var description: String {
        "GearmanCredentials(principal: \(String(reflecting: principal)), secret: <redacted>)"
    }

    public var debugDescription: String { description }

    /// What `dump` and the debugger show: the principal, and the secret redacted.
    public var customMirror: Mirror {
        Mirror(self, children: ["principal": principal, "secret": "<redacted>"], displayStyle: .struct)
    }
}

// MARK: Secret files

extension GearmanCredentials {
    /// The largest secret file read; a secret is a line, not a document.
    static let maximumSecretFileSize = 64 * 1024

    /// Reads a secret from a file: its first line, without the line ending and any trailing
    /// whitespace (so files written by `echo` or an editor work).
    /// - Throws: `.invalidArgument` when the file cannot be read, is larger than 64 KiB, its first
    ///   line is empty, or the secret is not valid (see ``validate(secret:)``). The message names
    ///   the file, never its contents.
    public static func readSecret(fromFile path: String) throws(GearmanError) -> String {
        let contents = try readSmallFile(path)
        guard let secret = secret(fromFileContents: contents) else {
            throw GearmanError(.invalidArgument, "the secret file \(path) is empty (its first line holds no secret)")
        }
        do {
            try validate(secret: secret)
        } catch {
            throw GearmanError(.invalidArgument, "the secret file \(path): \(error.message)")
        }
        return secret
    }

    /// The secret in a secret file's contents: the first line with trailing ASCII whitespace removed;
    /// nil when that leaves nothing.
    static func secret(fromFileContents contents: [UInt8]) -> String? {
        let firstLine = contents.split(separator: UInt8(ascii: "\n"), maxSplits: 1, omittingEmptySubsequences: false).first ?? []
        // ASCII whitespace only: other whitespace stays, and validation names it.
        let trimmed = firstLine.reversed().drop { [0x20, 0x09, 0x0A, 0x0B, 0x0C, 0x0D].contains($0) }.reversed()
        return trimmed.isEmpty ? nil : String(decoding: Array(trimmed), as: UTF8.self)
    }

    private static func readSmallFile(_ path: String) throws(GearmanError) -> [UInt8] {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            throw GearmanError(.invalidArgument, "cannot read the secret file \(path): \(String(cString: strerror(errno)))")
        }
        defer { close(descriptor) }
        var contents: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw GearmanError(.invalidArgument, "cannot read the secret file \(path): \(String(cString: strerror(errno)))")
            }
            if count == 0 { return contents }
            contents.append(contentsOf: chunk[..<count])
            if contents.count > maximumSecretFileSize {
                throw GearmanError(
                    .invalidArgument, "the secret file \(path) is larger than \(maximumSecretFileSize / 1024) KiB; is it the right file?")
            }
        }
    }
}

// MARK: Command-line sources

extension GearmanCredentials {
    /// The environment variable ``resolve(principal:secret:secretFile:environment:)`` takes a
    /// principal from when none is given: `GEARLOCK_PRINCIPAL`.
    public static let principalVariable = "GEARLOCK_PRINCIPAL"
    /// The environment variable ``resolve(principal:secret:secretFile:environment:)`` takes a
    /// secret from when none is given directly or in a file: `GEARLOCK_SECRET`.
    public static let secretVariable = "GEARLOCK_SECRET"

    /// Credentials from the places a command-line program takes them, as `gearlock` does.
    ///
    /// The principal is `principal`, else `GEARLOCK_PRINCIPAL`. The secret is, first found:
    /// `secret`, the first line of `secretFile` (see ``readSecret(fromFile:)``), `GEARLOCK_SECRET`.
    /// An empty environment variable counts as unset.
    /// - Returns: nil when there is neither a principal nor a secret (no shared-secret identity;
    ///   a client certificate may still identify the connection).
    /// - Throws: `.invalidArgument` for a principal without a secret or the reverse, an unreadable
    ///   or empty secret file, or a part that cannot be sent. The message never quotes the secret.
    public static func resolve(
        principal: String?, secret: String?, secretFile: String?, environment: [String: String]
    ) throws(GearmanError) -> GearmanCredentials? {
        let principal = principal ?? environment[principalVariable].flatMap { $0.isEmpty ? nil : $0 }
        let found: String?
        if let secret {
            found = secret
        } else if let secretFile {
            found = try readSecret(fromFile: secretFile)
        } else {
            found = environment[secretVariable].flatMap { $0.isEmpty ? nil : $0 }
        }
        switch (principal, found) {
        case (nil, nil):
            return nil
        case (let principal?, nil):
            throw GearmanError(
                .invalidArgument, "the principal \(String(reflecting: principal)) has no secret; give one as well")
        case (nil, .some):
            throw GearmanError(.invalidArgument, "a secret was given without a principal; give the principal as well")
        case (let principal?, let secret?):
            return try GearmanCredentials(principal: principal, secret: secret)
        }
    }
}
