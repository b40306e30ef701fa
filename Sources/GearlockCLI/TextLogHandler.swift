public import Logging

/// swift-log's `StreamLogHandler` (the readable format `gearlock serve` always had), with audit
/// events marked: their message starts with `AUDIT <kind>: `, so a log router can pick them out
/// (`grep ' AUDIT '`) as surely as it picks JSON lines with `"audit":true`.
public struct TextLogHandler: LogHandler {
    private var stream: StreamLogHandler

    /// Writes to standard error.
    public init(label: String) {
        stream = .standardError(label: label)
    }

    public init(label: String, stream: any TextOutputStream & Sendable) {
        self.stream = StreamLogHandler(label: label, stream: stream)
    }

    public var logLevel: Logger.Level {
        get { stream.logLevel }
        set { stream.logLevel = newValue }
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
