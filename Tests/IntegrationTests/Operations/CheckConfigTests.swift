import Foundation
import GearlockTestSupport
import Testing

/// `gearlock serve --check-config`: validates everything start-up would load, starts nothing.
@Suite("gearlock serve --check-config", .serialized, .timeLimit(.minutes(3)))
struct CheckConfigTests {
    @Test("a good configuration: exit 0 and a short summary, without serving")
    func success() async throws {
        let pki = try TestPKI.shared()
        let directory = try ConfigDirectory()
        defer { directory.remove() }
        try directory.write("acl.yaml", ACLFixture.yaml())
        let file = try directory.write(
            "gearlock.yaml",
            """
            listen: ["127.0.0.1:4730", "[::1]:4730"]
            tls-listen: ["127.0.0.1:4731"]
            tls-cert: \(pki.certificate("server"))
            tls-key: \(pki.key("server"))
            tls-ca: \(pki.certificate("ca"))
            tls-crl: \(pki.crl)
            acl: acl.yaml
            queue: sqlite:queue.sqlite
            log-format: json
            """)
        let result = try await runGearlockServe(["--config", file, "--check-config"])
        #expect(result.exitCode == 0 && !result.timedOut, "\(result)")
        #expect(
            result.stdoutString == """
                configuration OK (\(file))
                  listeners: 127.0.0.1:4730, [::1]:4730, tls://127.0.0.1:4731
                  acl: \(directory.path)/acl.yaml (2 tenants, 6 principals)
                  queue: sqlite:\(directory.path)/queue.sqlite
                  log: json, level info

                """, "\(result)")
        #expect(!FileManager.default.fileExists(atPath: directory.path + "/queue.sqlite"), "the queue is not opened")
    }

    @Test("without --config, the command line alone is checked")
    func commandLineOnly() async throws {
        let result = try await runGearlockServe(["--check-config", "--queue", "memory", "--listen", "127.0.0.1:1"])
        #expect(result.exitCode == 0 && !result.timedOut, "\(result)")
        #expect(result.stdoutString.hasPrefix("configuration OK\n  listeners: 127.0.0.1:1\n"), "\(result)")
        #expect(result.stdoutString.contains("  acl: none"), "\(result)")
    }

    @Test("a PostgreSQL queue: the URL's form is checked without connecting, and never echoed")
    func postgresQueue() async throws {
        let good = try await runGearlockServe([
            "--check-config", "--listen", "127.0.0.1:1", "--queue", "postgres://user:s3cr3t-pw@127.0.0.1:1/db",
            "--server-name", "alpha",
        ])
        #expect(good.exitCode == 0 && !good.timedOut, "\(good)")
        #expect(good.stdoutString.contains("  queue database: postgres://user@127.0.0.1:1/db\n"), "\(good)")
        #expect(!good.stdoutString.contains("s3cr3t-pw") && !good.stderrString.contains("s3cr3t-pw"), "\(good)")

        let badPort = try await runGearlockServe([
            "--check-config", "--listen", "127.0.0.1:1", "--queue", "postgres://user:s3cr3t-pw@127.0.0.1:99999/db",
            "--server-name", "alpha",
        ])
        #expect(badPort.exitCode == 1 && !badPort.timedOut, "\(badPort)")
        #expect(badPort.stderrString.contains("port that is not a number from 1 to 65535"), "\(badPort)")
        #expect(!badPort.stdoutString.contains("s3cr3t-pw") && !badPort.stderrString.contains("s3cr3t-pw"), "\(badPort)")

        let unnamed = try await runGearlockServe([
            "--check-config", "--listen", "127.0.0.1:1", "--queue", "postgres://user@127.0.0.1/db",
        ])
        #expect(unnamed.exitCode != 0 && unnamed.stderrString.contains("needs --server-name"), "\(unnamed)")
    }

    @Test("an invalid ACL, missing TLS files and a missing queue directory: non-zero, every problem listed")
    func failures() async throws {
        let pki = try TestPKI.shared()
        let directory = try ConfigDirectory()
        defer { directory.remove() }
        try directory.write("acl.yaml", "tenants:\n  acme:\n    functions: [\"acme.*\"]\n    colour: blue\n")
        let file = try directory.write(
            "gearlock.yaml",
            """
            tls-listen: 127.0.0.1:4731
            tls-cert: missing.pem
            tls-key: \(pki.key("server"))
            acl: acl.yaml
            queue: sqlite:no-such-directory/queue.sqlite
            """)
        let result = try await runGearlockServe(["--config", file, "--check-config"])
        #expect(result.exitCode == 1 && !result.timedOut, "\(result)")
        let stderr = result.stderrString
        #expect(stderr.hasPrefix("Error: configuration has ") && stderr.contains(" problems:"), "\(result)")
        #expect(stderr.contains("TLS: ") && stderr.contains("\(directory.path)/missing.pem"), "\(result)")
        #expect(stderr.contains("ACL: \(directory.path)/acl.yaml:4:") && stderr.contains("colour"), "\(result)")
        #expect(stderr.contains("queue: the directory of \(directory.path)/no-such-directory/queue.sqlite does not exist"), "\(result)")
        #expect(result.stdoutString.isEmpty, "\(result)")
    }

    @Test("an option error is reported with the parser's exit code 64")
    func optionError() async throws {
        let result = try await runGearlockServe(["--check-config", "--tls-cert", "x.pem"])
        #expect(result.exitCode == 64 && !result.timedOut, "\(result)")
        #expect(result.stderrString.contains("TLS options need at least one --tls-listen address"), "\(result)")
    }
}
