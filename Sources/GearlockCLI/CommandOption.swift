/// One option or flag of a command, as ArgumentParser defines it: what a configuration file key
/// and a command-line scan need to know about it.
public struct CommandOption: Sendable, Hashable {
    public enum Kind: Sendable, Hashable {
        /// `--name VALUE` (or `--name=VALUE`).
        case option
        /// `--name` alone.
        case flag
    }

    /// The long name without its dashes (`tls-cert`): the option's key in a configuration file.
    public var name: String
    /// Every other spelling that sets it on the command line, with dashes (`-l`, `--no-x`).
    public var otherSpellings: [String]
    public var kind: Kind
    /// Whether it may be given several times (an array option, a counted flag).
    public var isRepeating: Bool
    /// Whether its value names a file or directory (declared with `completion: .file()` or
    /// `.directory`): a relative one in a configuration file is taken relative to that file.
    public var namesPath: Bool

    public init(name: String, otherSpellings: [String] = [], kind: Kind, isRepeating: Bool = false, namesPath: Bool = false) {
        self.name = name
        self.otherSpellings = otherSpellings
        self.kind = kind
        self.isRepeating = isRepeating
        self.namesPath = namesPath
    }

    /// `--name`.
    public var longSpelling: String { "--" + name }
}
