/// What a principal may do on the text admin protocol.
///
/// Ordered: `write` includes `read`. A tenant principal's admin rights cover only its own tenant's
/// functions and jobs; only a principal with no tenant sees the whole server or may `shutdown`.
public enum AdminLevel: String, Sendable, Hashable, CaseIterable, Comparable {
    /// No admin command (the default).
    case none
    /// `status`, `workers`, `show jobs`, `version`, … — commands that only read.
    case read
    /// Also `cancel job`, `drop function`, `maxqueue`, `create function`, `shutdown`.
    case write

    private var rank: Int {
        switch self {
        case .none: 0
        case .read: 1
        case .write: 2
        }
    }

    public static func < (lhs: AdminLevel, rhs: AdminLevel) -> Bool { lhs.rank < rhs.rank }
}
