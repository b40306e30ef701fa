import Testing

@testable import GearmanServer

/// The slow-loris guard's arithmetic, on a clock the test moves (nanoseconds).
@Suite struct IncompletePacketDeadlineTests {
    static let second: UInt64 = 1_000_000_000
    static let settings = IncompletePacketDeadline.Settings(timeoutNanoseconds: 10 * second, minimumRate: 500)

    @Test func nothingBufferedIsNeverTimed() {
        var deadline = IncompletePacketDeadline(settings: Self.settings)
        deadline.bytesArrived(28, unprocessed: 0, now: 0)
        #expect(deadline.deadline == nil)
        #expect(!deadline.hasExpired(now: .max))
    }

    @Test func aByteASecondExpiresAfterAboutTheTimeout() {
        var deadline = IncompletePacketDeadline(settings: Self.settings)
        var now: UInt64 = 5 * Self.second
        var buffered = 0
        var expiredAfter: UInt64?
        for _ in 0..<60 {
            buffered += 1
            deadline.bytesArrived(1, unprocessed: buffered, now: now)
            now += Self.second
            if deadline.hasExpired(now: now) {
                expiredAfter = now - 5 * Self.second
                break
            }
        }
        // 10 s, extended by 1/500 s per byte: expires at the 11th second.
        #expect(expiredAfter == 11 * Self.second)
    }

    @Test func aSlowButSteadyPeerNeverExpires() {
        // 600 bytes a second of a 1 MB packet: always ahead of 500 B/s.
        var deadline = IncompletePacketDeadline(settings: Self.settings)
        var now: UInt64 = 0
        var buffered = 0
        while buffered < 1_000_000 {
            buffered += 600
            deadline.bytesArrived(600, unprocessed: buffered, now: now)
            #expect(!deadline.hasExpired(now: now + Self.second))
            now += Self.second
        }
    }

    @Test func aCompletedPacketResetsTheClock() {
        var deadline = IncompletePacketDeadline(settings: Self.settings)
        deadline.bytesArrived(6, unprocessed: 6, now: 0)
        #expect(deadline.deadline == 10 * Self.second + 12_000_000)
        deadline.bytesArrived(22, unprocessed: 0, now: 9 * Self.second)
        #expect(deadline.deadline == nil)
        deadline.bytesArrived(3, unprocessed: 3, now: 20 * Self.second)
        #expect(deadline.startedAt == 20 * Self.second)
        #expect(!deadline.hasExpired(now: 29 * Self.second))
        #expect(deadline.hasExpired(now: 31 * Self.second))
    }

    @Test func suspendedWhileTheServerHoldsThePacket() {
        var deadline = IncompletePacketDeadline(settings: Self.settings)
        deadline.bytesArrived(12, unprocessed: 12, now: 0)
        deadline.suspend()
        #expect(deadline.deadline == nil)
        #expect(!deadline.hasExpired(now: 3600 * Self.second))
    }

    @Test func hugeCountsDoNotOverflow() {
        let settings = IncompletePacketDeadline.Settings(timeoutNanoseconds: .max - 1, minimumRate: 1)
        var deadline = IncompletePacketDeadline(settings: settings)
        deadline.bytesArrived(Int.max, unprocessed: Int.max, now: .max - 5)
        #expect(deadline.deadline == .max)
    }
}
