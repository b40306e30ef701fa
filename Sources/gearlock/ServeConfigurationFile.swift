import ArgumentParser
import Foundation
import GearlockCLI

/// `gearlock serve --config FILE`: the file's options, as arguments, go before the command line's,
/// and ArgumentParser parses both as one command line. The valid keys are `ServeCommand`'s own
/// options, read from its definition, so a new option is a key with no change here.
enum ServeConfigurationFile {
    static let options = CommandOptions(of: ServeCommand.self)

    /// Options that have no meaning inside the file.
    static let commandLineOnly: Set<String> = ["config", "check-config", "help"]

    /// Options whose values hold a path inside a larger syntax.
    static let embeddedPaths: [String: ConfigurationFile.PathResolver] = ["queue": QueueOption.resolvingRelativePath]

    /// The program's arguments (without its name), with a `serve --config FILE` file expanded in
    /// place; the file too, to annotate errors about its values.
    static func expand(_ arguments: [String]) throws(ConfigurationFileError) -> (arguments: [String], file: ConfigurationFile?) {
        guard arguments.first == ServeCommand.configuration.commandName else { return (arguments, nil) }
        let commandLine = Array(arguments.dropFirst())
        let config = options.occurrences(in: commandLine).last { $0.option.name == "config" }
        guard let path = config?.value else { return (arguments, nil) }
        let file = try ConfigurationFile.load(path: path)
        let fromFile = try file.arguments(
            for: options, commandLineOnly: commandLineOnly, overriddenBy: commandLine, embeddedPaths: embeddedPaths)
        return ([arguments[0]] + fromFile + commandLine, file)
    }

    /// Lines pointing at the file's lines for the options an error `message` names (`--job-retries`),
    /// so that a bad value in the file is found as quickly as one on the command line.
    static func notes(on message: String, from file: ConfigurationFile, commandLine: [String]) -> [String] {
        let overridden = Set(options.occurrences(in: commandLine).map(\.option.name))
        return file.entries.compactMap { entry in
            guard !overridden.contains(entry.key), mentions(message, "--" + entry.key) else { return nil }
            return "note: `\(entry.key)` is set in \(file.path)" + (entry.line.map { ":\($0)" } ?? "")
        }
    }

    /// Whether `message` holds `spelling` as a whole option name (`--queue`, not `--queue-sync-normal`).
    private static func mentions(_ message: String, _ spelling: String) -> Bool {
        var rest = message[...]
        while let range = rest.range(of: spelling) {
            let next = rest[range.upperBound...].first
            if next.map({ !($0.isLetter || $0.isNumber || $0 == "-") }) ?? true { return true }
            rest = rest[range.upperBound...]
        }
        return false
    }
}
