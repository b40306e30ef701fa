import Foundation
import GearlockTestSupport
import GearmanProtocol
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `gearlock serve --config FILE`: the real binary started from a configuration file.
@Suite("gearlock serve --config", .serialized, .timeLimit(.minutes(3)))
struct ConfigurationFileServeTests {
    @Test("a server started from a file listens where the file says and applies its options")
    func roundTrip() async throws {
        let directory = try ConfigDirectory()
        defer { directory.remove() }
        try await withGearlockServe({ port in
            let file = try directory.write(
                "gearlock.yaml",
                """
                # every kind of value: a list, strings, a number, a flag
                listen: ["127.0.0.1:\(port)"]
                job-handle-prefix: "CFG:"
                queue: memory
                log-level: error
                job-retries: 2
                exceptions: true
                """)
            return ["--config", file]
        }) { port, _ in
            let client = try await RawClient.connect(host: "127.0.0.1", port: port, label: "client")
            let handle = try await client.submit("configured", payload: "p", type: .submitJobBackground)
            #expect(handle.hasPrefix("CFG:"), "the file's job-handle-prefix: \(handle)")
            await client.close()
        }
    }

    @Test("options on the command line override the file; a repeated option's list is replaced, not extended")
    func commandLineWins() async throws {
        let directory = try ConfigDirectory()
        defer { directory.remove() }
        let filePort = try freeLoopbackPort()
        try await withGearlockServe({ port in
            let file = try directory.write(
                "gearlock.yaml",
                """
                listen: ["127.0.0.1:\(filePort)"]
                job-handle-prefix: "FILE:"
                queue: memory
                log-level: error
                """)
            return ["--config", file, "--job-handle-prefix", "CLI:", "--listen", "127.0.0.1:\(port)"]
        }) { port, _ in
            let client = try await RawClient.connect(host: "127.0.0.1", port: port, label: "client")
            let handle = try await client.submit("overridden", payload: "p", type: .submitJobBackground)
            #expect(handle.hasPrefix("CLI:"), "\(handle)")
            await client.close()
            await #expect(throws: (any Error).self, "the file's listener was replaced") {
                try await RawClient.connect(host: "127.0.0.1", port: filePort, label: "file-port")
            }
        }
    }

    @Test("relative paths in the file are relative to the file's directory, not the working directory")
    func relativePaths() async throws {
        let directory = try ConfigDirectory()
        defer { directory.remove() }
        try directory.write("acl.yaml", ACLServeCommandTests.servedYAML())
        try await withGearlockServe({ port in
            let file = try directory.write(
                "gearlock.yaml",
                "listen: 127.0.0.1:\(port)\nacl: acl.yaml\nqueue: sqlite:jobs.sqlite\nlog-level: error\n")
            return ["--config", file]
        }) { port, _ in
            #expect(FileManager.default.fileExists(atPath: directory.path + "/jobs.sqlite"), "the queue is beside the file")
            let client = try await RawClient.connect(host: "127.0.0.1", port: port, label: "anonymous")
            try await client.send(RawPacket.request(.optionRequest, "auth:acme-web:wrong"))
            let reply = try await client.receivePacket()
            #expect(reply.type == PacketType.error.rawValue, "the ACL beside the file is enforced: \(reply)")
        }
    }

    @Test("an unknown key stops start-up with the key's name and line")
    func unknownKey() async throws {
        let (file, result) = try await runGearlockServe(config: "queue: memory\ncolour: blue\nlisen: [\"127.0.0.1:1\"]\n")
        #expect(result.exitCode != 0 && !result.timedOut, "\(result)")
        #expect(result.stderrString.contains("\(file):2: unknown key `colour`"), "\(result)")
        #expect(result.stderrString.contains("\(file):3: unknown key `lisen`"), "every problem is reported: \(result)")
    }

    @Test(
        "a value of the wrong shape stops start-up naming the key",
        arguments: [
            ("job-retries: [1, 2]", "`job-retries` takes one value, not a list"),
            ("exceptions: sometimes", "`exceptions` is a flag: true or false"),
            ("acl:", "`acl` has no value"),
            ("listen: {host: x}", "`listen` cannot take a mapping"),
            ("config: other.yaml", "`config` can only be given on the command line"),
        ])
    func wrongShape(yaml: String, message: String) async throws {
        let (file, result) = try await runGearlockServe(config: "queue: memory\n" + yaml + "\n", ["--check-config"])
        #expect(result.exitCode != 0 && !result.timedOut, "\(result)")
        #expect(result.stderrString.contains("\(file):2: \(message)"), "\(result)")
    }

    @Test(
        "a bad value is ArgumentParser's error, with a note pointing at the file's line",
        arguments: [
            ("job-retries: lots", "'lots' is invalid for '--job-retries"),
            ("job-retries: -1", "--job-retries must be 0 (unlimited) or more"),
            ("tls-min-version: \"1.1\"", "'1.1' is invalid for '--tls-min-version"),
            ("queue: mongodb://x", "'mongodb://x' is invalid for '--queue"),
            ("listen: [\"127.0.0.1:99999\"]", "'127.0.0.1:99999' is invalid for '--listen"),
        ])
    func badValue(yaml: String, message: String) async throws {
        // With --check-config, and as a real start-up (which the bad value stops before it binds).
        for extra in [["--check-config"], []] {
            let (file, result) = try await runGearlockServe(config: "log-level: error\n" + yaml + "\n", extra)
            #expect(result.exitCode == 64 && !result.timedOut, "\(result)")
            #expect(result.stderrString.contains(message), "\(result)")
            let key = String(yaml.prefix { $0 != ":" })
            #expect(result.stderrString.contains("note: `\(key)` is set in \(file):2"), "\(result)")
        }
    }

    @Test("a missing file stops start-up")
    func missingFile() async throws {
        let result = try await runGearlockServe(["--config", "/nonexistent/gearlock.yaml", "--queue", "memory"])
        #expect(result.exitCode != 0 && !result.timedOut, "\(result)")
        #expect(result.stderrString.contains("/nonexistent/gearlock.yaml: no such file"), "\(result)")
    }

    @Test("invalid YAML stops start-up")
    func invalidYAML() async throws {
        let (file, result) = try await runGearlockServe(config: "listen: [unclosed\n", ["--check-config"])
        #expect(result.exitCode != 0 && !result.timedOut, "\(result)")
        #expect(result.stderrString.contains("\(file): invalid YAML"), "\(result)")
    }

    /// The options `gearlock serve --help` lists, each with whether it takes a value.
    static func helpOptions() async throws -> [(name: String, takesValue: Bool)] {
        let help = try await runProcess(GearlockBinary.path, ["serve", "--help"])
        #expect(help.exitCode == 0, "\(help)")
        var options: [(String, Bool)] = []
        // An option's line starts with two spaces; wrapped help text is indented further.
        for line in help.stdoutString.split(separator: "\n") where line.hasPrefix("  --") {
            let words = line.split(separator: " ")
            guard let first = words.first else { continue }
            options.append((String(first.dropFirst(2)), words.dropFirst().first?.hasPrefix("<") == true))
        }
        return options
    }

    @Test("every option `gearlock serve --help` lists is a valid key; a key that is none is reported")
    func everyOptionIsAKey() async throws {
        let options = try await Self.helpOptions()
        #expect(options.count >= 25, "the help lists the serve options: \(options.map(\.name))")
        // `--version` is the tool's (shown in every subcommand's help), not an option of serve.
        let keys = options.filter { !["version", "config", "check-config"].contains($0.name) }
        let yaml = keys.map { "\($0.name): " + ($0.takesValue ? "\"x\"" : "true") }.joined(separator: "\n")
        let (file, result) = try await runGearlockServe(config: yaml + "\nno-such-option: 1\n", ["--check-config"])
        #expect(result.exitCode != 0, "\(result)")
        let reported = result.stderrString.split(separator: "\n").filter { $0.contains("unknown key") || $0.contains("can only") }
        #expect(reported == ["Error: \(file):\(keys.count + 1): unknown key `no-such-option`: not an option of the command"], "\(result)")
    }
}
