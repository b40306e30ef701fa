/// The options and flags of one command, in declaration order, looked up by long name.
///
/// Built from the command's own definition (`CommandOptions(of: ServeCommand.self)`), so a new
/// `@Option` or `@Flag` is known here, and so is a valid configuration file key, with no extra code.
public struct CommandOptions: Sendable {
    public private(set) var all: [CommandOption]
    private var byName: [String: Int] = [:]
    private var bySpelling: [String: Int] = [:]

    public init(_ options: [CommandOption]) {
        all = []
        for option in options where byName[option.name] == nil {
            byName[option.name] = all.count
            for spelling in [option.longSpelling] + option.otherSpellings { bySpelling[spelling] = all.count }
            all.append(option)
        }
    }

    /// The option whose long name (the configuration key) is `name`.
    public func option(named name: String) -> CommandOption? {
        byName[name].map { all[$0] }
    }

    /// The option that `spelling` (`--tls-cert`, `-l`) sets on the command line.
    public func option(spelled spelling: String) -> CommandOption? {
        bySpelling[spelling].map { all[$0] }
    }

    public var names: [String] { all.map(\.name) }
}
