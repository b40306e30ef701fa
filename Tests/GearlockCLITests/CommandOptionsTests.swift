import ArgumentParser
import GearlockCLI
import Testing

@Suite("Command options read from ArgumentParser's definition")
struct CommandOptionsTests {
    let options = CommandOptions(of: SampleCommand.self)

    @Test("every option and flag with a long name is there, in order; the positional is not")
    func names() {
        #expect(
            options.names.filter { $0 != "help" }
                == ["listen", "port", "tls-cert", "state-directory", "queue", "exceptions", "verbose", "config"])
        #expect(options.option(named: "rest") == nil)
    }

    @Test("every @Option and @Flag property of the command has a key (checked against Mirror, independently)")
    func everyPropertyHasAKey() {
        let declared = Mirror(reflecting: SampleCommand()).children.filter { child in
            let type = String(describing: type(of: child.value))
            return type.hasPrefix("Option<") || type.hasPrefix("Flag<")
        }
        #expect(declared.count == 8)
        #expect(options.names.filter { $0 != "help" }.count == declared.count)
    }

    @Test("kinds, repetition, other spellings and file-valued options")
    func details() throws {
        let listen = try #require(options.option(named: "listen"))
        #expect(listen.kind == .option && listen.isRepeating && !listen.namesPath)
        let port = try #require(options.option(named: "port"))
        #expect(port.kind == .option && !port.isRepeating && port.otherSpellings == ["-p"])
        #expect(try #require(options.option(named: "tls-cert")).namesPath)
        #expect(try #require(options.option(named: "state-directory")).namesPath)
        #expect(try #require(options.option(named: "queue")).namesPath == false)
        let exceptions = try #require(options.option(named: "exceptions"))
        #expect(exceptions.kind == .flag && !exceptions.isRepeating)
        let verbose = try #require(options.option(named: "verbose"))
        #expect(verbose.kind == .flag && verbose.isRepeating && verbose.otherSpellings == ["-v"])
        #expect(options.option(spelled: "-p")?.name == "port")
        #expect(options.option(spelled: "--port")?.name == "port")
        #expect(options.option(spelled: "port") == nil)
    }

    @Test("a command line is scanned as ArgumentParser reads it, up to --")
    func occurrences() {
        let found = options.occurrences(
            in: ["--listen", "a:1", "--listen=b:2", "-p", "5", "stray", "--exceptions", "--nope", "--tls-cert=x=y", "--",
                 "--port", "9"])
        #expect(found.map(\.option.name) == ["listen", "listen", "port", "exceptions", "tls-cert"])
        #expect(found.map(\.value) == ["a:1", "b:2", "5", nil, "x=y"])
    }

    @Test("an option at the very end without its value is still seen (ArgumentParser reports it)")
    func trailingOption() {
        let found = options.occurrences(in: ["--config"])
        #expect(found.map(\.option.name) == ["config"] && found.first?.value == nil)
    }
}
