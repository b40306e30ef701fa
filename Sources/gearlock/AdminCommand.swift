import ArgumentParser

struct AdminCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "admin", abstract: "(not yet implemented)")

    @OptionGroup var connection: ConnectionOptionGroup

    func run() async throws {
        throw ValidationError("gearlock admin is not implemented yet")
    }
}
