public import ArgumentParser
public import Logging

/// How `gearlock serve` writes its log: readable text (swift-log's format) or JSON lines.
public enum LogFormat: String, CaseIterable, Sendable, ExpressibleByArgument {
    case text
    case json

    /// A handler writing to standard error in this format; with a `level` switch, its level is
    /// the switch's (setting the handler's level sets the switch).
    public func makeHandler(label: String, level: LogLevelSwitch? = nil) -> any LogHandler {
        switch self {
        case .text: TextLogHandler(label: label, level: level)
        case .json: JSONLogHandler(label: label, level: level)
        }
    }
}
