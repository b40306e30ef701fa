import ArgumentParser
import Foundation
import GearlockCLI
import GearmanServer

@main
struct Gearlock: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gearlock",
        abstract: "A Gearman job server for untrusted networks.",
        version: JobServer.version,
        subcommands: [ServeCommand.self, SubmitCommand.self, WorkCommand.self, AdminCommand.self, TopCommand.self, CertsCommand.self, BenchCommand.self, ACLCommand.self]
    )

    /// ArgumentParser's own `main`, with `serve --config FILE` expanded before parsing, and errors
    /// about options set in that file pointing at their lines.
    static func main() async {
        let commandLine = Array(CommandLine.arguments.dropFirst())
        let expanded: (arguments: [String], file: ConfigurationFile?)
        do {
            expanded = try ServeConfigurationFile.expand(commandLine)
        } catch {
            exit(withError: error)
        }
        do {
            var command = try parseAsRoot(expanded.arguments)
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            guard let file = expanded.file, exitCode(for: error) != .success else { exit(withError: error) }
            let message = fullMessage(for: error)
            let notes = ServeConfigurationFile.notes(on: message, from: file, commandLine: Array(commandLine.dropFirst()))
            guard !notes.isEmpty else { exit(withError: error) }
            FileHandle.standardError.write(Data((message + "\n" + notes.joined(separator: "\n") + "\n").utf8))
            exit(withError: exitCode(for: error))
        }
    }
}
