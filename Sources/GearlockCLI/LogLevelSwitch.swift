public import Logging
import Synchronization

/// A log level shared by every copy of a server's log handlers and changeable while they run (a
/// SIGHUP reload of `log-level`): each handler reads it at every event, so a change applies at once
/// to every logger made from them, however it was copied.
public final class LogLevelSwitch: Sendable {
    private let level: Atomic<UInt8>

    public init(_ level: Logger.Level) {
        self.level = Atomic(Self.code(level))
    }

    public var current: Logger.Level {
        get { Self.levels[Int(level.load(ordering: .relaxed))] }
        set { level.store(Self.code(newValue), ordering: .relaxed) }
    }

    private static let levels = Logger.Level.allCases

    private static func code(_ level: Logger.Level) -> UInt8 {
        UInt8(levels.firstIndex(of: level)!)
    }
}
