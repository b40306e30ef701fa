public import Logging

/// swift-log's `StreamLogHandler` (the readable format `gearlock serve` always had), with audit
/// events marked: their message starts with `AUDIT <kind>: `, so a log router can pick them out
/// (`grep ' AUDIT '`) as surely as it picks JSON lines with `"audit":true`.
public struct TextLogHandler: LogHandler {
    private var stream: StreamLogHandler
    /// The shared level, when there is one; else the stream's own.
    private let levelSwitch: LogLevelSwitch?

    /// Writes to standard error.
    public init(label: String, level: LogLevelSwitch? = nil) {
        stream = .standardError(label: label)
        levelSwitch = level
    }

    public init(label: String, stream: any TextOutputStream & Sendable, level: LogLevelSwitch? = nil) {
        self.stream = StreamLogHandler(label: label, stream: stream)
        levelSwitch = level
    }

    public var logLevel: Logger.Level {
        get { levelSwitch?.current ?? stream.logLevel }
        set {
            if let levelSwitch { levelSwitch.current = newValue } else { stream.logLevel = newValue }
        }
    }

    public var metadata: Logger.Metadata {
        get { stream.metadata }
        set { stream.metadata = newValue }
    }

    public var metadataProvider: Logger.MetadataProvider? {
        get { stream.metadataProvider }
        set { stream.metadataProvider = newValue }
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { stream[metadataKey: key] }
        set { stream[metadataKey: key] = newValue }
    }

    public func log(event: LogEvent) {
        guard let kind = AuditMarker.kind(of: event, handlerMetadata: stream.metadata) else {
            return stream.log(event: event)
        }
        var marked = event
        marked.message = "AUDIT \(kind): \(event.message)"
        stream.log(event: marked)
    }
}
