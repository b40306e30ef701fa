import Logging

/// How audit events are recognised: the server logs them with the metadata key `audit`, whose
/// value is the kind of event (`authentication_failed`, `permission_denied`, …).
public enum AuditMarker {
    public static let metadataKey = "audit"

    /// The event's kind when it is an audit event.
    static func kind(of event: LogEvent, handlerMetadata: Logger.Metadata) -> String? {
        (event.metadata?[metadataKey] ?? handlerMetadata[metadataKey]).map { "\($0)" }
    }
}
