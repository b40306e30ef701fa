extension ConfigurationFile {
    /// Rewrites a value whose syntax holds a path (`sqlite:PATH`) so that a relative path in it is
    /// relative to `directory`; gets the value and the file's directory.
    public typealias PathResolver = @Sendable (_ value: String, _ directory: String) -> String

    /// The file as command-line arguments for a command with `options`, to be placed before the
    /// command line's own arguments and parsed by ArgumentParser with them.
    ///
    /// - Every key must be the long name of one of `options` and not in `commandLineOnly`; every
    ///   problem in the file is reported, each with its line.
    /// - A flag takes `true` (given) or `false` (left out); a counted flag takes a count.
    /// - An option takes one value; a repeatable option a list (or one value).
    /// - An option that `commandLine` sets is taken from the command line only: its value in the
    ///   file is dropped, for a repeatable option the whole list (the command line replaces it).
    /// - A relative path in an option that names a file becomes relative to the file's directory;
    ///   `embeddedPaths` does the same for options whose values hold a path in a larger syntax.
    public func arguments(
        for options: CommandOptions, commandLineOnly: Set<String> = [], overriddenBy commandLine: [String] = [],
        embeddedPaths: [String: PathResolver] = [:]
    ) throws(ConfigurationFileError) -> [String] {
        let overridden = Set(options.occurrences(in: commandLine).map(\.option.name))
        var arguments: [String] = []
        var problems: [ConfigurationFileError.Problem] = []
        for entry in entries {
            guard let option = options.option(named: entry.key) else {
                problems.append(
                    .init(code: .unknownKey, message: "unknown key `\(entry.key)`: not an option of the command", line: entry.line))
                continue
            }
            guard !commandLineOnly.contains(option.name) else {
                problems.append(
                    .init(code: .notAllowed, message: "`\(entry.key)` can only be given on the command line", line: entry.line))
                continue
            }
            switch Self.values(of: entry, for: option) {
            case .failure(let problem):
                problems.append(problem)
            case .success(let values):
                guard !overridden.contains(option.name) else { continue }
                arguments += values.map { value in
                    guard let value else { return option.longSpelling }
                    return option.longSpelling + "=" + resolvingPath(value, of: option, embeddedPaths[option.name])
                }
            }
        }
        guard problems.isEmpty else { throw ConfigurationFileError(file: path, problems: problems) }
        return arguments
    }

    /// The values an entry gives its option: nil for each time a flag is given.
    private static func values(of entry: Entry, for option: CommandOption) -> Result<[String?], ConfigurationFileError.Problem> {
        func invalid(_ message: String) -> Result<[String?], ConfigurationFileError.Problem> {
            .failure(.init(code: .invalidValue, message: "`\(entry.key)` \(message)", line: entry.line))
        }
        switch (option.kind, entry.value) {
        case (_, .empty):
            return invalid("has no value (leave the key out to get the default)")
        case (_, .unsupported(let what)):
            return invalid("cannot take \(what)")
        case (.flag, .scalar(let text)):
            switch text.lowercased() {
            case "true", "yes", "on": return .success([nil])
            case "false", "no", "off": return .success([])
            default:
                if option.isRepeating, let count = Int(text), count >= 0 { return .success(Array(repeating: nil, count: count)) }
                return invalid(option.isRepeating ? "is a counted flag: a count, or true or false" : "is a flag: true or false")
            }
        case (.flag, .list):
            return invalid("is a flag: true or false, not a list")
        case (.option, .scalar(let text)):
            return .success([text])
        case (.option, .list(let items)):
            guard option.isRepeating else { return invalid("takes one value, not a list") }
            return .success(items)
        }
    }

    private func resolvingPath(_ value: String, of option: CommandOption, _ resolver: PathResolver?) -> String {
        if let resolver { return resolver(value, directory) }
        guard option.namesPath else { return value }
        return Self.resolve(value, against: directory)
    }

    /// `path` when it is absolute (or empty), else `directory/path`.
    public static func resolve(_ path: String, against directory: String) -> String {
        path.isEmpty || path.hasPrefix("/") ? path : directory + "/" + path
    }
}
