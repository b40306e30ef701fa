import ArgumentParser
import GearmanServer

@main
struct Gearlock: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gearlock",
        abstract: "A Gearman job server for untrusted networks.",
        version: JobServer.version,
        subcommands: [ServeCommand.self, SubmitCommand.self, WorkCommand.self, AdminCommand.self, CertsCommand.self, BenchCommand.self, ACLCommand.self]
    )
}
