import Foundation
internal import Yams

/// A configuration file: a YAML mapping from a command's long option names to their values.
///
/// ```yaml
/// listen: ["127.0.0.1:4730", "[::1]:4730"]   # a repeatable option: a list (or one value)
/// job-retries: 3                             # an option: one value
/// exceptions: true                           # a flag: true or false
/// ```
/// Only the shape is checked here; `arguments(for:…)` checks the keys against the command's
/// options, and ArgumentParser checks the values as it checks the command line's.
public struct ConfigurationFile: Sendable {
    /// One `key: value` of the file.
    public struct Entry: Sendable, Hashable {
        public enum Value: Sendable, Hashable {
            /// A single value, as written (`1.20` stays `1.20`; YAML's typing is not applied).
            case scalar(String)
            /// A list of single values.
            case list([String])
            /// `key:` with nothing after it, or `~` / `null`.
            case empty
            /// Anything else (a mapping, a list of lists).
            case unsupported(String)
        }

        public var key: String
        /// 1-based line of the key.
        public var line: Int?
        public var value: Value
    }

    /// The path the file was read from, as given.
    public var path: String
    /// The absolute directory of the file: where its relative paths start.
    public var directory: String
    public var entries: [Entry]

    /// Parses `yaml` (no I/O); `path` names the file in errors and anchors its relative paths.
    public init(path: String, yaml: String) throws(ConfigurationFileError) {
        self.path = path
        let absolute = path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
        directory = (absolute as NSString).deletingLastPathComponent
        let root: Node?
        do {
            root = try Yams.compose(yaml: yaml)
        } catch {
            throw ConfigurationFileError(
                file: path, problems: [.init(code: .invalidYAML, message: "invalid YAML: \(error)")])
        }
        guard let root else {
            entries = []
            return
        }
        guard case .mapping(let mapping) = root else {
            throw ConfigurationFileError(
                file: path,
                problems: [.init(code: .invalidYAML, message: "expected a mapping of option names to values", line: root.mark?.line)])
        }
        var entries: [Entry] = []
        var problems: [ConfigurationFileError.Problem] = []
        for (key, value) in mapping {
            guard case .scalar(let name) = key else {
                problems.append(.init(code: .invalidYAML, message: "a key must be an option name", line: key.mark?.line))
                continue
            }
            entries.append(Entry(key: name.string, line: key.mark?.line, value: Self.value(of: value)))
        }
        guard problems.isEmpty else { throw ConfigurationFileError(file: path, problems: problems) }
        self.entries = entries
    }

    /// Reads and parses the file at `path`.
    public static func load(path: String) throws(ConfigurationFileError) -> ConfigurationFile {
        func unreadable(_ message: String) -> ConfigurationFileError {
            ConfigurationFileError(file: path, problems: [.init(code: .unreadableFile, message: message)])
        }
        let contents: Data
        do {
            contents = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            var isDirectory: ObjCBool = false
            let exists = FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory)
            throw unreadable(
                !exists ? "no such file" : isDirectory.boolValue ? "is a directory, not a file" : "cannot be read (permissions?)")
        }
        guard let text = String(data: contents, encoding: .utf8) else { throw unreadable("the file is not UTF-8 text") }
        return try ConfigurationFile(path: path, yaml: text)
    }

    private static func value(of node: Node) -> Entry.Value {
        switch node {
        case .scalar(let scalar):
            return isNull(scalar) ? .empty : .scalar(scalar.string)
        case .sequence(let sequence):
            var items: [String] = []
            for item in sequence {
                guard case .scalar(let scalar) = item, !isNull(scalar) else { return .unsupported("a list of lists or mappings") }
                items.append(scalar.string)
            }
            return .list(items)
        case .mapping:
            return .unsupported("a mapping")
        case .alias:
            return .unsupported("an alias")
        }
    }

    private static func isNull(_ scalar: Node.Scalar) -> Bool {
        scalar.style == .plain && ["", "~", "null", "Null", "NULL"].contains(scalar.string)
    }
}
