import Synchronization

@testable import GearmanServer

/// A clock the tests move by hand: wall-clock seconds (epoch jobs) and monotonic nanoseconds
/// (CAN_DO_TIMEOUT). `advance` moves both together, as real time does.
final class MockClock: JobServerClock {
    private struct Now {
        var wallClockSeconds: Int64
        var monotonicNanoseconds: UInt64
    }

    private let now: Mutex<Now>

    init(wallClockSeconds: Int64 = 1_700_000_000, monotonicNanoseconds: UInt64 = 5_000_000_000) {
        self.now = Mutex(Now(wallClockSeconds: wallClockSeconds, monotonicNanoseconds: monotonicNanoseconds))
    }

    var wallClockSeconds: Int64 {
        get { now.withLock { $0.wallClockSeconds } }
        set { now.withLock { $0.wallClockSeconds = newValue } }
    }

    var monotonicNanoseconds: UInt64 {
        get { now.withLock { $0.monotonicNanoseconds } }
        set { now.withLock { $0.monotonicNanoseconds = newValue } }
    }

    /// Moves both clocks forward by `milliseconds`; the wall clock by whole seconds elapsed.
    func advance(milliseconds: UInt64) {
        now.withLock { now in
            let before = now.monotonicNanoseconds / 1_000_000_000
            now.monotonicNanoseconds += milliseconds * 1_000_000
            now.wallClockSeconds += Int64(now.monotonicNanoseconds / 1_000_000_000 - before)
        }
    }

    func advance(seconds: UInt64) {
        advance(milliseconds: seconds * 1000)
    }
}
