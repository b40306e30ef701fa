import ArgumentParser

struct SubmitCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "submit", abstract: "(not yet implemented)")

    @OptionGroup var connection: ConnectionOptionGroup

    func run() async throws {
        throw ValidationError("gearlock submit is not implemented yet")
    }
}
