public import ArgumentParser
public import Logging

/// How `gearlock serve` writes its log: readable text (swift-log's format) or JSON lines.
public enum LogFormat: String, CaseIterable, Sendable, ExpressibleByArgument {
    case text
    case json

    /// A handler writing to standard error in this format.
    public func makeHandler(label: String) -> any LogHandler {
        switch self {
        case .text: TextLogHandler(label: label)
        case .json: JSONLogHandler(label: label)
        }
    }
}
