import ArgumentParser

struct WorkCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "work", abstract: "(not yet implemented)")

    @OptionGroup var connection: ConnectionOptionGroup

    func run() async throws {
        throw ValidationError("gearlock work is not implemented yet")
    }
}
