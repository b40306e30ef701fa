import ArgumentParser
import Foundation
import GearlockCLI
import Testing

@Suite("Configuration file → arguments")
struct ConfigurationFileTests {
    @Test("each kind of key becomes the arguments ArgumentParser expects")
    func conversion() throws {
        let arguments = try sampleArguments(
            """
            listen: ["127.0.0.1:4730", "[::1]:4730"]
            port: 4731
            exceptions: true
            verbose: 2
            queue: memory
            """)
        #expect(
            arguments == ["--listen=127.0.0.1:4730", "--listen=[::1]:4730", "--port=4731", "--exceptions", "--verbose", "--verbose",
                          "--queue=memory"])
        let command = try SampleCommand.parse(arguments)
        #expect(command.listen == ["127.0.0.1:4730", "[::1]:4730"] && command.port == 4731 && command.exceptions)
        #expect(command.verbose == 2 && command.queue == "memory")
    }

    @Test("false leaves a flag out; one value for a repeatable option is a list of one; values stay as written")
    func shapes() throws {
        let arguments = try sampleArguments(
            """
            exceptions: no
            listen: 10.0.0.1:1
            queue: 1.20
            tls-cert: "-dash.pem"
            """)
        #expect(arguments == ["--listen=10.0.0.1:1", "--queue=1.20", "--tls-cert=/etc/gearlock/-dash.pem"])
        let command = try SampleCommand.parse(arguments)
        #expect(command.queue == "1.20" && !command.exceptions)
    }

    @Test("an empty file (or only comments) gives no arguments")
    func emptyFile() throws {
        #expect(try sampleArguments("") == [])
        #expect(try sampleArguments("# nothing yet\n") == [])
    }

    @Test("the command line wins: a single option is replaced, a repeatable option's whole list too")
    func commandLineWins() throws {
        let yaml = """
            listen: ["a:1", "b:2"]
            port: 1
            queue: memory
            exceptions: true
            """
        let commandLine = ["--listen", "c:3", "-p", "2", "--exceptions"]
        let fromFile = try sampleArguments(yaml, commandLine: commandLine)
        #expect(fromFile == ["--queue=memory"])
        let command = try SampleCommand.parse(fromFile + commandLine)
        #expect(command.listen == ["c:3"] && command.port == 2 && command.queue == "memory" && command.exceptions)
    }

    @Test("relative paths in file-valued options are relative to the file's directory; others are not touched")
    func relativePaths() throws {
        let arguments = try sampleArguments(
            """
            tls-cert: certs/server.pem
            state-directory: /var/lib/gearlock
            queue: sqlite:queue.sqlite
            listen: relative:1
            """, path: "/srv/gearlock/conf/gearlock.yaml")
        #expect(
            arguments == ["--tls-cert=/srv/gearlock/conf/certs/server.pem", "--state-directory=/var/lib/gearlock",
                          "--queue=sqlite:/srv/gearlock/conf/queue.sqlite", "--listen=relative:1"])
    }

    @Test("a file named by a relative path has its directory made absolute from the working directory")
    func relativeFilePath() throws {
        let file = try ConfigurationFile(path: "conf/gearlock.yaml", yaml: "tls-cert: a.pem")
        #expect(file.directory == FileManager.default.currentDirectoryPath + "/conf")
        #expect(try sampleArguments("tls-cert: a.pem", path: "g.yaml") == ["--tls-cert=\(FileManager.default.currentDirectoryPath)/a.pem"])
    }

    @Test("an unknown key is an error naming the key and its line; every problem is reported")
    func unknownKeys() {
        let error = #expect(throws: ConfigurationFileError.self) {
            try sampleArguments(
                """
                port: 1
                colour: blue
                exceptions: maybe
                lisen: ["a:1"]
                """)
        }
        #expect(error?.problems.map(\.code) == [.unknownKey, .invalidValue, .unknownKey])
        #expect(error?.problems.map(\.line) == [2, 3, 4])
        #expect(
            error?.description == """
                /etc/gearlock/gearlock.yaml:2: unknown key `colour`: not an option of the command
                /etc/gearlock/gearlock.yaml:3: `exceptions` is a flag: true or false
                /etc/gearlock/gearlock.yaml:4: unknown key `lisen`: not an option of the command
                """)
    }

    @Test(
        "values of the wrong shape are errors naming the key",
        arguments: [
            ("port: [1, 2]", "`port` takes one value, not a list"),
            ("exceptions: [true]", "`exceptions` is a flag: true or false, not a list"),
            ("verbose: lots", "`verbose` is a counted flag: a count, or true or false"),
            ("port:", "`port` has no value (leave the key out to get the default)"),
            ("port: ~", "`port` has no value (leave the key out to get the default)"),
            ("listen: {a: 1}", "`listen` cannot take a mapping"),
            ("listen: [[a]]", "`listen` cannot take a list of lists or mappings"),
        ])
    func wrongShapes(yaml: String, message: String) {
        let error = #expect(throws: ConfigurationFileError.self) { try sampleArguments(yaml) }
        #expect(error?.problems == [.init(code: .invalidValue, message: message, line: 1)])
    }

    @Test("a command-line-only option in the file is refused")
    func commandLineOnly() {
        let error = #expect(throws: ConfigurationFileError.self) { try sampleArguments("config: other.yaml") }
        #expect(error?.problems.first?.code == .notAllowed)
        #expect(error?.description.contains("`config` can only be given on the command line") == true)
    }

    @Test("a file that is not a YAML mapping is refused", arguments: ["- a\n- b\n", "just a string", "a: [unclosed\n", "\tport: 1"])
    func notAMapping(yaml: String) {
        let error = #expect(throws: ConfigurationFileError.self) { try sampleArguments(yaml) }
        #expect(error?.problems.first?.code == .invalidYAML, "\(String(describing: error))")
    }

    @Test("a key given twice is refused")
    func duplicateKey() {
        let error = #expect(throws: ConfigurationFileError.self) { try sampleArguments("port: 1\nport: 2\n") }
        #expect(error?.problems.first?.code == .invalidYAML)
        #expect(error?.description.contains("port") == true)
    }

    @Test("a missing file, or a directory, cannot be loaded")
    func unreadable() {
        let missing = #expect(throws: ConfigurationFileError.self) {
            try ConfigurationFile.load(path: "/nonexistent/gearlock.yaml")
        }
        #expect(missing?.description == "/nonexistent/gearlock.yaml: no such file")
        let directory = #expect(throws: ConfigurationFileError.self) { try ConfigurationFile.load(path: "/tmp") }
        #expect(directory?.problems.first?.code == .unreadableFile)
    }

    @Test("a file on disk is loaded and converted")
    func load() throws {
        let path = NSTemporaryDirectory() + "gearlock-config-\(UUID().uuidString).yaml"
        try Data("port: 9\ntls-cert: s.pem\n".utf8).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let file = try ConfigurationFile.load(path: path)
        let arguments = try file.arguments(for: CommandOptions(of: SampleCommand.self))
        #expect(arguments == ["--port=9", "--tls-cert=" + (path as NSString).deletingLastPathComponent + "/s.pem"])
    }
}
