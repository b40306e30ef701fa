import Foundation
import GearlockTestSupport
import GearmanProtocol
import GearmanServer
import NIOCore
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `gearlock serve --config FILE` and SIGHUP: the file is read again, what can change live is
/// applied, what needs a restart is named, and a broken file changes nothing.
@Suite("gearlock serve --config: reload on SIGHUP", .serialized, .timeLimit(.minutes(3)))
struct ConfigReloadTests {
    /// The server's stderr so far.
    static func log(_ process: ChildProcess) -> String {
        String(decoding: process.outputSoFar.stderr, as: UTF8.self)
    }

    static func occurrences(of text: String, in log: String) -> Int {
        log.components(separatedBy: text).count - 1
    }

    /// Sends SIGHUP and waits until the server logged the outcome of that reload (the
    /// `count`-th "configuration reload…" line); returns the log.
    @discardableResult
    static func hangUp(_ process: ChildProcess, reloadNumber count: Int) async throws -> String {
        process.signal(SIGHUP)
        try await eventually("reload #\(count) is logged", timeout: .seconds(20)) {
            occurrences(of: "configuration reload", in: log(process)) >= count
        }
        return log(process)
    }

    /// A connection that the server admitted (it answers `version`), retrying while a connection
    /// that just closed (a probe) still counts.
    static func admittedConnection(port: Int, label: String) async throws -> RawClient? {
        for _ in 0..<50 {
            // A connection refused over a limit may be closed before `connect` returns (and throws).
            guard let client = try? await RawClient.connect(host: "127.0.0.1", port: port, label: label) else {
                try await Task.sleep(for: .milliseconds(100))
                continue
            }
            if (try? await client.adminCommand("version", timeout: .seconds(5)))?.hasPrefix("OK ") == true { return client }
            await client.close()
            try await Task.sleep(for: .milliseconds(100))
        }
        return nil
    }

    /// The first reply of a new connection: ERROR when the server refuses it; nil when none came.
    static func refusal(port: Int) async throws -> RawPacket? {
        for _ in 0..<50 {
            // The server may close it before `connect` returns (which then throws): try again.
            if let client = try? await RawClient.connect(host: "127.0.0.1", port: port, label: "refused") {
                let reply = try? await client.receivePacket()
                await client.close()
                return reply
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        return nil
    }

    /// Polls `verbose` on `admin` until it answers `level`; returns the last answer.
    static func verbose(_ admin: RawClient, becomes level: String) async throws -> String {
        let deadline = ContinuousClock.now + .seconds(20)
        var reply = try await admin.adminCommand("verbose")
        while reply != "OK \(level)\n" && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(50))
            reply = try await admin.adminCommand("verbose")
        }
        return reply
    }

    @Test("a new max-connections is enforced and a new log level takes effect, both without a restart")
    func limitsAndLogLevel() async throws {
        let directory = try ConfigDirectory()
        defer { directory.remove() }
        var file = ""
        try await withGearlockServe({ port in
            file = try directory.write(
                "gearlock.yaml", "listen: [\"127.0.0.1:\(port)\"]\nqueue: memory\nlog-level: info\nmax-connections: 50\n")
            return ["--config", file]
        }) { port, process in
            let admin = try #require(try await Self.admittedConnection(port: port, label: "admin"))
            #expect(try await admin.adminCommand("verbose") == "OK INFO\n")
            #expect(!Self.log(process).contains("connection opened"), "no debug lines at info")

            try directory.write(
                "gearlock.yaml", "listen: [\"127.0.0.1:\(port)\"]\nqueue: memory\nlog-level: debug\nmax-connections: 3\n")
            let log = try await Self.hangUp(process, reloadNumber: 1)
            #expect(log.contains("configuration reloaded"), "\(log)")
            #expect(log.contains("config.applied=log-level, max-connections"), "\(log)")
            #expect(!log.contains("takes effect after a restart"), "\(log)")
            #expect(!log.contains("is not checked on reload"), "every option of serve is sorted into live or restart: \(log)")
            #expect(try await Self.verbose(admin, becomes: "DEBUG") == "OK DEBUG\n", "`verbose` reports the new level")

            // admin and two more fill the new limit of 3; the fourth is refused.
            var kept = [admin]
            for index in 0..<2 {
                kept.append(try #require(try await Self.admittedConnection(port: port, label: "kept-\(index)")))
            }
            try await eventually("the debug line of a new connection", timeout: .seconds(20)) {
                Self.log(process).contains("connection opened")
            }
            let refusal = try #require(try await Self.refusal(port: port))
            #expect(refusal.type == PacketType.error.rawValue, "\(refusal)")
            #expect(String(buffer: refusal.payload).hasPrefix("QUOTA_EXCEEDED\0Too many connections"), "\(refusal)")

            // Back to warning: debug lines stop.
            try directory.write(
                "gearlock.yaml", "listen: [\"127.0.0.1:\(port)\"]\nqueue: memory\nlog-level: warning\nmax-connections: 3\n")
            try await Self.hangUp(process, reloadNumber: 2)
            #expect(try await Self.verbose(admin, becomes: "WARNING") == "OK WARNING\n")
            await kept.removeLast().close()
            let before = Self.occurrences(of: "connection opened", in: Self.log(process))
            let quiet = try #require(try await Self.admittedConnection(port: port, label: "quiet"))
            #expect(Self.occurrences(of: "connection opened", in: Self.log(process)) == before, "no debug line at warning")
            await quiet.close()
            for client in kept { await client.close() }
        }
    }

    @Test("an option the command line sets still wins over the reloaded file")
    func commandLineStillWins() async throws {
        let directory = try ConfigDirectory()
        defer { directory.remove() }
        try await withGearlockServe({ port in
            let file = try directory.write("gearlock.yaml", "listen: [\"127.0.0.1:\(port)\"]\nqueue: memory\nlog-level: info\n")
            return ["--config", file, "--log-level", "error"]
        }) { port, process in
            try directory.write("gearlock.yaml", "listen: [\"127.0.0.1:\(port)\"]\nqueue: memory\nlog-level: debug\n")
            process.signal(SIGHUP)
            // At level error the reload's own info line is not logged: ask the server instead.
            let admin = try #require(try await Self.admittedConnection(port: port, label: "admin"))
            try await Task.sleep(for: .milliseconds(500))
            #expect(try await admin.adminCommand("verbose") == "OK ERROR\n")
            #expect(!Self.log(process).contains("connection opened"), "\(Self.log(process))")
            await admin.close()
        }
    }

    @Test("a changed listen address is named as needing a restart; the old listener goes on, the new is not opened")
    func restartWarning() async throws {
        let directory = try ConfigDirectory()
        defer { directory.remove() }
        let otherPort = try freeLoopbackPort()
        try await withGearlockServe({ port in
            let file = try directory.write(
                "gearlock.yaml", "listen: [\"127.0.0.1:\(port)\"]\nqueue: memory\nlog-level: info\njob-handle-prefix: \"A:\"\n")
            return ["--config", file]
        }) { port, process in
            try directory.write(
                "gearlock.yaml",
                "listen: [\"127.0.0.1:\(otherPort)\"]\nqueue: memory\nlog-level: info\njob-handle-prefix: \"B:\"\nmax-queue-bytes: 1000\n")
            let log = try await Self.hangUp(process, reloadNumber: 1)
            #expect(log.contains("`listen` changed in the config file; it takes effect after a restart"), "\(log)")
            #expect(log.contains("`job-handle-prefix` changed in the config file; it takes effect after a restart"), "\(log)")
            #expect(log.contains("config.applied=max-queue-bytes"), "\(log)")
            #expect(log.contains("config.restart_needed=listen, job-handle-prefix"), "\(log)")

            let client = try #require(try await Self.admittedConnection(port: port, label: "old listener"))
            let handle = try await client.submit("reload.f", payload: "p", type: .submitJobBackground)
            #expect(handle.hasPrefix("A:"), "the prefix in force stays: \(handle)")
            // The new max-queue-bytes is in force.
            try await client.send(RawPacket.request(.submitJobBackground, "reload.f", "", String(repeating: "x", count: 2000)))
            #expect(try await client.receivePacket() == .error("QUEUE_ERROR", "Queue memory limit reached"))
            await client.close()
            await #expect(throws: (any Error).self, "the new listener is not opened") {
                try await RawClient.connect(host: "127.0.0.1", port: otherPort, label: "new listener")
            }

            // A second reload names the pending change again (it is still not in force).
            let again = try await Self.hangUp(process, reloadNumber: 2)
            #expect(Self.occurrences(of: "`listen` changed in the config file", in: again) == 2, "\(again)")
        }
    }

    @Test(
        "a broken file keeps every old setting and logs an error naming the problem",
        arguments: [
            ("colour: blue\n", "unknown key `colour`"),
            ("max-connections: lots\n", "'lots' is invalid for '--max-connections"),
            ("max-connections: 0\n", "--max-connections must be at least 1"),
            ("acl: /nonexistent/acl.yaml\n", "/nonexistent/acl.yaml"),
            ("listen: [unclosed\n", "invalid YAML"),
        ])
    func brokenFile(addition: String, problem: String) async throws {
        let directory = try ConfigDirectory()
        defer { directory.remove() }
        try await withGearlockServe({ port in
            let file = try directory.write("gearlock.yaml", "listen: [\"127.0.0.1:\(port)\"]\nqueue: memory\nlog-level: info\n")
            return ["--config", file]
        }) { port, process in
            // With the problem, a valid change that must not be applied either.
            try directory.write(
                "gearlock.yaml", "listen: [\"127.0.0.1:\(port)\"]\nqueue: memory\nlog-level: debug\n" + addition)
            let log = try await Self.hangUp(process, reloadNumber: 1)
            #expect(log.contains("configuration reload failed; nothing was reloaded"), "\(log)")
            #expect(log.contains(problem), "\(log)")
            #expect(!log.contains("configuration reloaded"), "\(log)")
            let admin = try #require(try await Self.admittedConnection(port: port, label: "admin"))
            #expect(try await admin.adminCommand("verbose") == "OK INFO\n", "the old log level stays")
            #expect(process.isRunning)
            await admin.close()
        }
    }

    @Test("new TLS file paths in the file: new handshakes get the new certificate, live connections stay")
    func tlsPaths() async throws {
        let pki = try TestPKI.shared()
        let directory = try ConfigDirectory()
        defer { directory.remove() }
        func files(_ server: String) -> String {
            "tls-cert: \(pki.certificate(server))\ntls-key: \(pki.key(server))\ntls-ca: \(pki.certificate("ca"))\n"
        }
        let file = try directory.write("gearlock.yaml", files("server"))
        try await withGearlockTLSBinary(["--config", file]) { ports, process in
            let early = try await TLSRawClient.connect(port: ports.tls, context: pki.clientContext("alice"), label: "early")
            let before = try await sClient(port: ports.tls, pki: pki, certificate: "bob")
            #expect(before.peerCertificate == "CN = localhost" && before.stdout.hasPrefix("OK "), "\(before)")

            try directory.write("gearlock.yaml", files("server-renewed"))
            process.signal(SIGHUP)
            let reloaded = await process.waitFor(timeout: .seconds(20)) { _, err in err.contains("configuration reloaded") }
            #expect(reloaded, "\(process.stderr.suffix(2000))")
            #expect(process.stderr.contains("config.applied=tls-cert, tls-key"), "\(process.stderr.suffix(2000))")
            #expect(process.stderr.contains("config.restart_needed=none"), "\(process.stderr.suffix(2000))")
            let after = try await sClient(port: ports.tls, pki: pki, certificate: "bob")
            #expect(after.peerCertificate == "CN = gearlock-renewed" && after.stdout.hasPrefix("OK "), "\(after)")
            #expect(try await early.adminLine("version") == "OK \(JobServer.version)\n", "the live connection stays up")

            // A key that does not match: nothing is reloaded, the renewed certificate stays.
            try directory.write(
                "gearlock.yaml",
                "tls-cert: \(pki.certificate("server"))\ntls-key: \(pki.key("server-renewed"))\ntls-ca: \(pki.certificate("ca"))\n")
            process.signal(SIGHUP)
            let refused = await process.waitFor(timeout: .seconds(20)) { _, err in err.contains("configuration reload failed") }
            #expect(refused, "\(process.stderr.suffix(2000))")
            let still = try await sClient(port: ports.tls, pki: pki, certificate: "bob")
            #expect(still.peerCertificate == "CN = gearlock-renewed", "\(still)")
            await early.close()
        }
    }

    @Test("a reload without --config re-reads the TLS material and the ACL only, as before")
    func withoutConfig() async throws {
        try await withGearlockBinary(["--log-level", "info"]) { port, process in
            process.signal(SIGHUP)
            try await eventually("the reload is logged", timeout: .seconds(20)) {
                Self.log(process).contains("SIGHUP: reloading")
            }
            let admin = try #require(try await Self.admittedConnection(port: port, label: "admin"))
            #expect(try await admin.adminCommand("verbose") == "OK INFO\n")
            #expect(!Self.log(process).contains("configuration reload"))
            await admin.close()
        }
    }
}
