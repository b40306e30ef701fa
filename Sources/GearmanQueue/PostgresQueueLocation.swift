/// Where a PostgreSQL queue lives, read from a `postgres://user:password@host:port/database` URL.
///
/// `description` is the URL without its password: the only form of it that goes into messages and
/// logs.
struct PostgresQueueLocation: Sendable, Hashable, CustomStringConvertible {
    var host: String
    var port: Int
    var username: String
    var password: String?
    var database: String

    static let defaultPort = 5432

    /// `host:port/database`, with an IPv6 address in brackets.
    var endpoint: String {
        let host = self.host.contains(":") ? "[\(self.host)]" : self.host
        return "\(host):\(port)/\(database)"
    }

    /// The URL without its password.
    var description: String { "postgres://\(username)@\(endpoint)" }

    /// Reads `url`. Errors never repeat the URL, which may hold a password; they say what is wrong
    /// with it and what the URL should look like.
    init(url: String) throws(QueueStoreError) {
        func invalid(_ problem: String) -> QueueStoreError {
            QueueStoreError(
                .cannotOpen,
                "the PostgreSQL queue URL \(problem); write it as postgres://USER:PASSWORD@HOST:PORT/DATABASE "
                    + "(percent-encode special characters in the user and password)")
        }
        let lowercased = url.lowercased()
        var rest: Substring
        if lowercased.hasPrefix("postgres://") {
            rest = url.dropFirst("postgres://".count)
        } else if lowercased.hasPrefix("postgresql://") {
            rest = url.dropFirst("postgresql://".count)
        } else {
            throw invalid("does not start with postgres:// or postgresql://")
        }

        // The user information ends at the last "@": "@", "/", "?" and "#" are common enough in
        // passwords that only what follows the last "@" is read as host, database and parameters, so
        // no part of a password is ever taken for (and quoted as) something else.
        let hostStart = rest.lastIndex(of: "@").map { rest.index(after: $0) } ?? rest.startIndex
        if rest[hostStart...].contains("#") { throw invalid("has a fragment (#…)") }
        if let question = rest[hostStart...].firstIndex(of: "?") {
            try Self.checkParameters(rest[rest.index(after: question)...])
            rest = rest[..<question]
        }
        let authorityEnd = rest[hostStart...].firstIndex(of: "/") ?? rest.endIndex
        let authority = rest[..<authorityEnd]
        let path = rest[authorityEnd...].drop { $0 == "/" }

        guard let at = authority.lastIndex(of: "@") else {
            throw invalid("names no user (postgres://USER@HOST/… at least)")
        }
        let userInfo = authority[..<at]
        let hostAndPort = authority[authority.index(after: at)...]
        if let colon = userInfo.firstIndex(of: ":") {
            guard let user = Self.percentDecoded(userInfo[..<colon]),
                let password = Self.percentDecoded(userInfo[userInfo.index(after: colon)...])
            else { throw invalid("has a malformed percent-encoding in its user or password") }
            self.username = user
            self.password = password
        } else {
            guard let user = Self.percentDecoded(userInfo) else {
                throw invalid("has a malformed percent-encoding in its user")
            }
            self.username = user
            self.password = nil
        }
        guard !username.isEmpty else { throw invalid("names no user") }

        var host: Substring
        var portText: Substring?
        if hostAndPort.hasPrefix("[") {
            guard let close = hostAndPort.firstIndex(of: "]") else {
                throw invalid("has an IPv6 address without its closing ]")
            }
            host = hostAndPort[hostAndPort.index(after: hostAndPort.startIndex)..<close]
            let afterClose = hostAndPort[hostAndPort.index(after: close)...]
            if afterClose.hasPrefix(":") {
                portText = afterClose.dropFirst()
            } else if !afterClose.isEmpty {
                throw invalid("has something other than :PORT after its IPv6 address")
            }
        } else if let colon = hostAndPort.lastIndex(of: ":") {
            host = hostAndPort[..<colon]
            portText = hostAndPort[hostAndPort.index(after: colon)...]
        } else {
            host = hostAndPort
        }
        guard !host.isEmpty, let decodedHost = Self.percentDecoded(host) else { throw invalid("names no host") }
        self.host = decodedHost
        if let portText {
            guard let port = Int(portText), (1...65_535).contains(port) else {
                throw invalid("has a port that is not a number from 1 to 65535")
            }
            self.port = port
        } else {
            self.port = Self.defaultPort
        }

        guard let database = Self.percentDecoded(path) else {
            throw invalid("has a malformed percent-encoding in its database name")
        }
        guard !database.isEmpty else { throw invalid("names no database (…/DATABASE at its end)") }
        guard !database.contains("/") else { throw invalid("has a database name with a / in it") }
        self.database = database
    }

    /// Accepts only `sslmode=disable` (and `allow`, which libpq also starts without TLS): the store
    /// speaks to PostgreSQL without TLS for now, and a URL that asks for TLS must not be served
    /// silently without it.
    private static func checkParameters(_ query: Substring) throws(QueueStoreError) {
        for parameter in query.split(separator: "&") where !parameter.isEmpty {
            let parts = parameter.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = percentDecoded(parts[0]) ?? String(parts[0])
            let value = parts.count > 1 ? percentDecoded(parts[1]) ?? String(parts[1]) : ""
            switch (name, value) {
            case ("sslmode", "disable"), ("sslmode", "allow"):
                continue
            case ("sslmode", _):
                throw QueueStoreError(
                    .cannotOpen,
                    "the PostgreSQL queue URL asks for sslmode=\(value), but gearlock does not speak TLS to "
                        + "PostgreSQL yet; use sslmode=disable on a network you trust (or a TLS tunnel)")
            default:
                throw QueueStoreError(
                    .cannotOpen,
                    "the PostgreSQL queue URL has the parameter \"\(name)\", which gearlock does not know; the only "
                        + "parameter it takes is sslmode=disable")
            }
        }
    }

    /// `text` with its %XX escapes decoded, or nil when an escape is malformed or the bytes are not
    /// UTF-8.
    static func percentDecoded(_ text: Substring) -> String? {
        guard text.contains("%") else { return String(text) }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count)
        var iterator = text.utf8.makeIterator()
        while let byte = iterator.next() {
            guard byte == UInt8(ascii: "%") else {
                bytes.append(byte)
                continue
            }
            guard let high = iterator.next().flatMap(hexValue), let low = iterator.next().flatMap(hexValue) else {
                return nil
            }
            bytes.append(high << 4 | low)
        }
        return String(validating: bytes, as: UTF8.self)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
