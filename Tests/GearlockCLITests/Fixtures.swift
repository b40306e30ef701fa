import ArgumentParser
import GearlockCLI

/// A command with one of each kind of option, standing in for `gearlock serve`.
struct SampleCommand: ParsableCommand {
    @Option(name: .customLong("listen"), help: "Repeatable.")
    var listen: [String] = []

    @Option(name: [.customShort("p"), .long], help: "One value.")
    var port: Int = 4730

    @Option(help: "A file.", completion: .file())
    var tlsCert: String?

    @Option(help: "A directory.", completion: .directory)
    var stateDirectory: String?

    @Option(help: "A store with a path inside.")
    var queue: String = "memory"

    @Flag(help: "A flag.")
    var exceptions = false

    @Flag(name: [.customShort("v"), .long], help: "A counted flag.")
    var verbose: Int

    @Option(help: "The file itself.")
    var config: String?

    @Argument(help: "A positional: no key.")
    var rest: [String] = []
}

/// `sqlite:PATH` resolved against the file's directory, as the real queue option does.
let sampleQueueResolver: ConfigurationFile.PathResolver = { value, directory in
    guard value.hasPrefix("sqlite:") else { return value }
    return "sqlite:" + ConfigurationFile.resolve(String(value.dropFirst("sqlite:".count)), against: directory)
}

func sampleArguments(
    _ yaml: String, commandLine: [String] = [], path: String = "/etc/gearlock/gearlock.yaml"
) throws(ConfigurationFileError) -> [String] {
    try ConfigurationFile(path: path, yaml: yaml).arguments(
        for: CommandOptions(of: SampleCommand.self), commandLineOnly: ["config"], overriddenBy: commandLine,
        embeddedPaths: ["queue": sampleQueueResolver])
}
