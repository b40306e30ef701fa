import Testing

@testable import GearmanQueue

/// Reading `postgres://` URLs: no database needed. Errors never repeat a password.
@Suite struct PostgresQueueLocationTests {
    @Test func readsAFullURL() throws {
        let location = try PostgresQueueLocation(url: "postgres://gearlock:s3cret@db.example:6543/queue")
        #expect(location.host == "db.example")
        #expect(location.port == 6543)
        #expect(location.username == "gearlock")
        #expect(location.password == "s3cret")
        #expect(location.database == "queue")
        #expect(location.endpoint == "db.example:6543/queue")
        #expect(location.description == "postgres://gearlock@db.example:6543/queue")
    }

    @Test func takesThePostgresqlSchemeTheDefaultPortAndNoPassword() throws {
        let location = try PostgresQueueLocation(url: "PostgreSQL://user@localhost/db")
        #expect(location.port == 5432)
        #expect(location.password == nil)
        #expect(location.description == "postgres://user@localhost:5432/db")
    }

    @Test func takesSSLModeDisable() throws {
        let location = try PostgresQueueLocation(url: "postgres://u:p@127.0.0.1:5432/db?sslmode=disable")
        #expect(location.database == "db")
        #expect(location.password == "p")
    }

    @Test func refusesTLSModesAndUnknownParameters() {
        for mode in ["require", "verify-ca", "verify-full", "prefer"] {
            let error = #expect(throws: QueueStoreError.self) {
                try PostgresQueueLocation(url: "postgres://u:p@h/db?sslmode=\(mode)")
            }
            #expect(error?.code == .cannotOpen)
            #expect(error?.message.contains("does not speak TLS to PostgreSQL yet") == true)
        }
        let error = #expect(throws: QueueStoreError.self) {
            try PostgresQueueLocation(url: "postgres://u:p@h/db?connect_timeout=3")
        }
        #expect(error?.message.contains("connect_timeout") == true)
    }

    @Test func decodesPercentEncodingAndTakesTheLastAtSign() throws {
        let encoded = try PostgresQueueLocation(url: "postgres://us%40er:p%40ss%2Fw%3Ard@h:1/d%20b")
        #expect(encoded.username == "us@er")
        #expect(encoded.password == "p@ss/w:rd")
        #expect(encoded.database == "d b")
        let raw = try PostgresQueueLocation(url: "postgres://user:p@ss?w/rd#x@host:2/db")
        #expect(raw.password == "p@ss?w/rd#x")
        #expect(raw.host == "host")
        #expect(raw.port == 2)
        #expect(raw.description == "postgres://user@host:2/db")
    }

    @Test func readsIPv6Addresses() throws {
        let location = try PostgresQueueLocation(url: "postgres://u:p@[::1]:5433/db")
        #expect(location.host == "::1")
        #expect(location.port == 5433)
        #expect(location.endpoint == "[::1]:5433/db")
        #expect(try PostgresQueueLocation(url: "postgres://u@[fe80::1]/db").port == 5432)
    }

    @Test func refusesMalformedURLsWithoutRepeatingThePassword() {
        let password = "TopSecret-42"
        let cases: [(String, String)] = [
            ("mysql://u:\(password)@h/db", "does not start with postgres://"),
            ("postgres://h/db", "names no user"),
            ("postgres://:\(password)@h/db", "names no user"),
            ("postgres://u:\(password)@/db", "names no host"),
            ("postgres://u:\(password)@h:0/db", "port"),
            ("postgres://u:\(password)@h:99999/db", "port"),
            ("postgres://u:\(password)@h:x/db", "port"),
            ("postgres://u:\(password)@h", "names no database"),
            ("postgres://u:\(password)@h/", "names no database"),
            ("postgres://u:\(password)@h/a/b", "database name with a /"),
            ("postgres://u:\(password)@[::1/db", "closing ]"),
            ("postgres://u:%zz\(password)@h/db", "percent-encoding"),
            ("postgres://u:\(password)@h/db#frag", "fragment"),
        ]
        for (url, problem) in cases {
            let error = #expect(throws: QueueStoreError.self, "\(url)") { try PostgresQueueLocation(url: url) }
            #expect(error?.code == .cannotOpen, "\(url)")
            #expect(error?.message.contains(problem) == true, "\(url): \(error?.message ?? "")")
            #expect(error?.message.contains(password) == false, "\(url)")
            #expect(error?.message.contains("postgres://USER:PASSWORD@HOST:PORT/DATABASE") == true, "\(url)")
        }
    }
}
