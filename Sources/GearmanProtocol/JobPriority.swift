/// The three Gearman job priorities, highest first.
public enum JobPriority: Int, Sendable, Hashable, CaseIterable, Comparable {
    case high = 0
    case normal = 1
    case low = 2

    public static func < (lhs: JobPriority, rhs: JobPriority) -> Bool { lhs.rawValue < rhs.rawValue }
}
