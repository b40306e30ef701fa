import ArgumentParser
import GearlockCLI

/// Where `gearlock serve` keeps background jobs: `memory` or `sqlite:PATH`.
enum QueueOption: ExpressibleByArgument, CustomStringConvertible, Equatable {
    case memory
    case sqlite(path: String)

    /// The embedded default: a SQLite file in the current directory.
    static let defaultValue = QueueOption.sqlite(path: "gearlock-queue.sqlite")

    init?(argument: String) {
        if argument == "memory" {
            self = .memory
        } else if argument.hasPrefix("sqlite:"), argument.count > "sqlite:".count {
            self = .sqlite(path: String(argument.dropFirst("sqlite:".count)))
        } else {
            return nil
        }
    }

    var description: String {
        switch self {
        case .memory: "memory"
        case .sqlite(let path): "sqlite:" + path
        }
    }

    var defaultValueDescription: String { description }

    /// In a configuration file, `sqlite:PATH` with a relative PATH is relative to the file's
    /// directory, as every other path there. A value that does not parse is left for the parser.
    static func resolvingRelativePath(_ argument: String, against directory: String) -> String {
        switch QueueOption(argument: argument) {
        case .none, .memory: argument
        case .sqlite(let path): QueueOption.sqlite(path: ConfigurationFile.resolve(path, against: directory)).description
        }
    }
}
