import ArgumentParser
import GearlockCLI

/// Where `gearlock serve` keeps background jobs: `memory`, `sqlite:PATH` or a PostgreSQL URL.
enum QueueOption: ExpressibleByArgument, CustomStringConvertible, Equatable {
    case memory
    case sqlite(path: String)
    /// `postgres://…` or `postgresql://…`; the URL may hold a password, so it is never printed.
    case postgres(url: String)

    /// The embedded default: a SQLite file in the current directory.
    static let defaultValue = QueueOption.sqlite(path: "gearlock-queue.sqlite")

    init?(argument: String) {
        let lowercased = argument.lowercased()
        if argument == "memory" {
            self = .memory
        } else if argument.hasPrefix("sqlite:"), argument.count > "sqlite:".count {
            self = .sqlite(path: String(argument.dropFirst("sqlite:".count)))
        } else if lowercased.hasPrefix("postgres://") || lowercased.hasPrefix("postgresql://") {
            self = .postgres(url: argument)
        } else {
            return nil
        }
    }

    /// What the option names, without a PostgreSQL URL's credentials or host (the store logs its
    /// location without the password once it is open).
    var description: String {
        switch self {
        case .memory: "memory"
        case .sqlite(let path): "sqlite:" + path
        case .postgres: "postgres"
        }
    }

    var defaultValueDescription: String { description }

    /// In a configuration file, `sqlite:PATH` with a relative PATH is relative to the file's
    /// directory, as every other path there. A value that does not parse is left for the parser.
    static func resolvingRelativePath(_ argument: String, against directory: String) -> String {
        switch QueueOption(argument: argument) {
        case .none, .memory, .postgres: argument
        case .sqlite(let path): QueueOption.sqlite(path: ConfigurationFile.resolve(path, against: directory)).description
        }
    }
}
