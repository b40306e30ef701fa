/// The two kinds of time the job server needs, injected so tests can drive them.
public protocol JobServerClock: Sendable {
    /// Seconds since the UNIX epoch: when an epoch job falls due.
    var wallClockSeconds: Int64 { get }
    /// Monotonic nanoseconds: CAN_DO_TIMEOUT deadlines and timers.
    var monotonicNanoseconds: UInt64 { get }
}

/// The real clock.
public struct SystemJobServerClock: JobServerClock {
    public init() {}

    public var wallClockSeconds: Int64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Int64(now.tv_sec)
    }

    public var monotonicNanoseconds: UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
