import Testing

@testable import GearmanServer

/// The per-address failure counter and its back-off, on injected time.
@Suite struct AuthenticationThrottleTests {
    static let second: UInt64 = 1_000_000_000

    @Test func belowTheThresholdNothingIsThrottled() {
        var throttle = AuthenticationThrottle(threshold: 3)
        #expect(throttle.recordFailure("a", now: 0) == nil)
        #expect(throttle.recordFailure("a", now: 1) == nil)
        #expect(!throttle.isThrottled("a", now: 2))
    }

    @Test func reachingTheThresholdThrottlesForOneSecond() {
        var throttle = AuthenticationThrottle(threshold: 3)
        throttle.recordFailure("a", now: 0)
        throttle.recordFailure("a", now: 0)
        #expect(throttle.recordFailure("a", now: 10) == Self.second)
        #expect(throttle.isThrottled("a", now: 10))
        #expect(throttle.isThrottled("a", now: 10 + Self.second - 1))
        #expect(!throttle.isThrottled("a", now: 10 + Self.second))
        #expect(!throttle.isThrottled("b", now: 10))
    }

    @Test func eachFurtherFailureDoublesTheBackOffUpToFiveMinutes() {
        var throttle = AuthenticationThrottle(threshold: 2)
        throttle.recordFailure("a", now: 0)
        var delays: [UInt64] = []
        for _ in 0..<12 {
            delays.append(throttle.recordFailure("a", now: 0)! / Self.second)
        }
        #expect(delays == [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300])
        // Even after very many failures: capped, no overflow.
        for _ in 0..<100 {
            #expect(throttle.recordFailure("a", now: 0) == 300 * Self.second)
        }
    }

    @Test func aSuccessResetsTheAddress() {
        var throttle = AuthenticationThrottle(threshold: 2)
        throttle.recordFailure("a", now: 0)
        throttle.recordFailure("a", now: 0)
        #expect(throttle.isThrottled("a", now: 0))
        throttle.recordSuccess("a")
        #expect(!throttle.isThrottled("a", now: 0))
        #expect(throttle.entries["a"] == nil)
        #expect(throttle.recordFailure("a", now: 0) == nil)
    }

    @Test func aSuccessOfOneAddressLeavesTheOthers() {
        var throttle = AuthenticationThrottle(threshold: 1)
        throttle.recordFailure("a", now: 0)
        throttle.recordFailure("b", now: 0)
        throttle.recordSuccess("a")
        #expect(throttle.isThrottled("b", now: 0))
    }

    @Test func failuresLongAgoAreForgotten() {
        var throttle = AuthenticationThrottle(threshold: 3)
        throttle.recordFailure("a", now: 0)
        throttle.recordFailure("a", now: 0)
        // More than ten minutes later the count starts afresh.
        #expect(throttle.recordFailure("a", now: 601 * Self.second) == nil)
        #expect(throttle.entries["a"]?.failures == 1)
        // Within ten minutes it keeps counting.
        throttle.recordFailure("a", now: 602 * Self.second)
        #expect(throttle.recordFailure("a", now: 603 * Self.second) == Self.second)
    }

    @Test func aThresholdBelowOneMeansOne() {
        var throttle = AuthenticationThrottle(threshold: 0)
        #expect(throttle.threshold == 1)
        #expect(throttle.recordFailure("a", now: 0) == Self.second)
    }

    @Test func atCapacityTheStalestAddressIsForgotten() {
        var throttle = AuthenticationThrottle(threshold: 1, capacity: 2)
        throttle.recordFailure("old", now: 1)
        throttle.recordFailure("mid", now: 2)
        throttle.recordFailure("old", now: 3)  // refreshed: now "mid" is the stalest
        throttle.recordFailure("new", now: 4)
        #expect(Set(throttle.entries.keys) == ["old", "new"])
        #expect(throttle.isThrottled("old", now: 4))
        #expect(!throttle.isThrottled("mid", now: 4))
        // A known address does not evict anyone.
        throttle.recordFailure("new", now: 5)
        #expect(throttle.entries.count == 2)
    }

    @Test func memoryStaysBounded() {
        var throttle = AuthenticationThrottle(threshold: 5, capacity: 16)
        for index in 0..<1000 {
            throttle.recordFailure("10.0.\(index / 256).\(index % 256)", now: UInt64(index))
        }
        #expect(throttle.entries.count == 16)
    }
}
