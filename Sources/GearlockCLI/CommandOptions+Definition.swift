public import ArgumentParser
import Foundation

extension CommandOptions {
    /// The options and flags `command` declares, read from ArgumentParser's own description of it
    /// (the JSON behind `--experimental-dump-help`), so nothing here lists them again.
    ///
    /// Positional arguments and arguments without a long name are left out: they have no key.
    public init(of command: any ParsableArguments.Type) {
        // A failure here is a change in ArgumentParser's format, not a user error.
        guard let data = command._dumpHelp().data(using: .utf8),
            let description = try? JSONDecoder().decode(ToolDescription.self, from: data)
        else {
            preconditionFailure("ArgumentParser's description of \(command) did not decode")
        }
        self.init((description.command.arguments ?? []).compactMap(CommandOption.init(describing:)))
    }
}

/// The part of ArgumentParser's `ToolInfoV0` JSON that configuration files need.
private struct ToolDescription: Decodable {
    struct Command: Decodable {
        var arguments: [Argument]?
    }

    struct Argument: Decodable {
        struct Name: Decodable {
            var kind: String
            var name: String
        }

        var kind: String
        var isRepeating: Bool
        var names: [Name]?
        var preferredName: Name?
        /// `{"file": {...}}`, `{"directory": {}}`, `{"list": {...}}`, …: only the case name matters.
        var completionKind: [String: Ignored]?
    }

    /// Any JSON value, skipped.
    struct Ignored: Decodable {
        init(from decoder: any Decoder) throws {}
    }

    var command: Command
}

extension CommandOption {
    fileprivate init?(describing argument: ToolDescription.Argument) {
        let kind: Kind
        switch argument.kind {
        case "option": kind = .option
        case "flag": kind = .flag
        default: return nil
        }
        let names = argument.names ?? []
        let longNames = names.filter { $0.kind == "long" }.map(\.name)
        let preferred = argument.preferredName.flatMap { $0.kind == "long" ? $0.name : nil }
        guard let name = preferred ?? longNames.first else { return nil }
        let others = names.compactMap { spelling -> String? in
            switch spelling.kind {
            case "long": spelling.name == name ? nil : "--" + spelling.name
            case "short", "longWithSingleDash": "-" + spelling.name
            default: nil
            }
        }
        let completion = argument.completionKind?.keys
        self.init(
            name: name, otherSpellings: others, kind: kind, isRepeating: argument.isRepeating,
            namesPath: completion?.contains("file") == true || completion?.contains("directory") == true)
    }
}
