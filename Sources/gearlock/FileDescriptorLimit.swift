#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// This process's limit on open file descriptors (RLIMIT_NOFILE), raised for `gearlock bench
/// --mode idle`, which holds thousands of connections, and by `gearlock serve` (one per connection).
enum FileDescriptorLimit {
    /// The limit could not be raised far enough.
    struct RaiseError: Error, CustomStringConvertible {
        var needed: Int
        var soft: Int
        var hard: Int
        var reason: String

        var description: String {
            "needs \(needed) open file descriptors, but the limit is \(soft) (hard limit \(hard)) and \(reason): "
                + "raise the hard limit first (`ulimit -Hn \(needed)` as root, or LimitNOFILE= for a service)"
        }
    }

    /// Makes sure this process may open at least `needed` descriptors: raises the soft limit to
    /// the hard one when it is lower than `needed`, and the hard one too when that is lower and
    /// the process may (root). Returns the soft limit in force.
    @discardableResult
    static func raise(toAtLeast needed: Int) throws(RaiseError) -> Int {
        var limit = rlimit()
        guard getrlimit(Self.resource, &limit) == 0 else {
            throw RaiseError(needed: needed, soft: 0, hard: 0, reason: "getrlimit failed: \(Self.lastError())")
        }
        let wanted = rlim_t(needed)
        if limit.rlim_cur >= wanted { return Int(clamping: limit.rlim_cur) }
        var raised = limit
        raised.rlim_cur = max(limit.rlim_max, wanted)
        raised.rlim_max = max(limit.rlim_max, wanted)
        if setrlimit(Self.resource, &raised) == 0 { return Int(clamping: raised.rlim_cur) }
        let failure = Self.lastError()
        guard limit.rlim_max >= wanted else {
            throw RaiseError(
                needed: needed, soft: Int(clamping: limit.rlim_cur), hard: Int(clamping: limit.rlim_max),
                reason: "raising the hard limit failed (\(failure))")
        }
        // Not allowed to raise the hard limit: the soft one up to it is enough.
        raised = limit
        raised.rlim_cur = limit.rlim_max
        guard setrlimit(Self.resource, &raised) == 0 else {
            throw RaiseError(
                needed: needed, soft: Int(clamping: limit.rlim_cur), hard: Int(clamping: limit.rlim_max),
                reason: "setrlimit failed (\(Self.lastError()))")
        }
        return Int(clamping: raised.rlim_cur)
    }

    /// Raises the soft limit to the hard one (no privilege needed), as servers do: the soft limit
    /// is often 1,024, far below what a job server with many workers needs. Returns the soft limit
    /// in force, or nil when it cannot be read.
    static func raiseSoftLimitToHard() -> Int? {
        var limit = rlimit()
        guard getrlimit(Self.resource, &limit) == 0 else { return nil }
        if limit.rlim_cur < limit.rlim_max {
            var raised = limit
            raised.rlim_cur = limit.rlim_max
            if setrlimit(Self.resource, &raised) == 0 { return Int(clamping: raised.rlim_cur) }
        }
        return Int(clamping: limit.rlim_cur)
    }

    #if canImport(Glibc)
    private static let resource = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
    #else
    private static let resource = RLIMIT_NOFILE
    #endif

    private static func lastError() -> String {
        String(cString: strerror(errno))
    }
}
