public import Logging

/// A swift-log handler that writes each event as one JSON object on one line:
///
/// ```json
/// {"timestamp":"2026-05-01T09:30:00.250Z","level":"warning","label":"gearlock","message":"…",
///  "audit":true,"event":"authentication_failed","source":"GearmanServer","peer.address":"…"}
/// ```
/// `timestamp` is ISO 8601 in UTC; the metadata (the handler's, its provider's and the event's)
/// follow as fields, sorted by key, with every value a string (or an array / object of them).
/// An audit event (metadata `audit`) has `"audit":true` and its kind as `event`; other events have
/// neither. A metadata key that clashes with one of these fixed fields is written `metadata.KEY`.
public struct JSONLogHandler: LogHandler {
    public var logLevel: Logger.Level {
        get { levelSwitch?.current ?? ownLevel }
        set {
            if let levelSwitch { levelSwitch.current = newValue } else { ownLevel = newValue }
        }
    }
    private var ownLevel: Logger.Level = .info
    /// The shared level, when there is one; else `ownLevel`.
    private let levelSwitch: LogLevelSwitch?
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    private let label: String
    private let output: LogOutput
    private let clock: @Sendable () -> LogTimestamp

    public init(
        label: String, output: LogOutput = .standardError,
        metadataProvider: Logger.MetadataProvider? = LoggingSystem.metadataProvider,
        clock: @escaping @Sendable () -> LogTimestamp = LogTimestamp.now, level: LogLevelSwitch? = nil
    ) {
        self.levelSwitch = level
        self.label = label
        self.output = output
        self.metadataProvider = metadataProvider
        self.clock = clock
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        output.write(line(for: event))
    }

    static let fixedFields: Set<String> = ["timestamp", "level", "label", "message", "audit", "event", "source", "error"]

    /// The event's line, ending in a newline.
    func line(for event: LogEvent) -> String {
        var all = metadata
        if let provided = metadataProvider?.get() { all.merge(provided) { _, new in new } }
        if let own = event.metadata { all.merge(own) { _, new in new } }
        let audit = AuditMarker.kind(of: event, handlerMetadata: all)
        if audit != nil { all[AuditMarker.metadataKey] = nil }

        var json = JSONLine()
        json.field("timestamp", clock().iso8601)
        json.field("level", event.level.rawValue)
        json.field("label", label)
        json.field("message", event.message.description)
        if let audit {
            json.field("audit", true)
            json.field("event", audit)
        }
        json.field("source", event.source)
        if let error = event.error { json.field("error", "\(error)") }
        for key in all.keys.sorted() {
            json.field(Self.fixedFields.contains(key) ? "metadata." + key : key, all[key]!)
        }
        return json.line
    }
}
