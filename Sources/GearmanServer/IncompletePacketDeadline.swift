/// The slow-loris guard of one connection: a packet (or admin line) that has begun to arrive must be
/// complete within `timeout`, extended by one second for every `minimumRate` bytes received meanwhile
/// (Apache's mod_reqtimeout rule). A peer that dribbles a byte a second holds its connection for about
/// `timeout`; a slow but honest one sending at least `minimumRate` bytes per second, or a huge payload
/// at any useful speed, always finishes. An idle connection with nothing buffered (a sleeping worker)
/// is never timed.
///
/// Pure value: the handler feeds it reads and the monotonic time, arms a timer at `deadline`, and
/// closes the connection once `hasExpired(now:)`.
struct IncompletePacketDeadline {
    struct Settings: Sendable, Hashable {
        /// Time an incomplete packet is given before any extension.
        var timeout: UInt64
        /// Bytes that extend the deadline by one second.
        var minimumRate: UInt64

        /// - Parameters:
        ///   - timeoutNanoseconds: must be positive.
        ///   - minimumRate: bytes per second; must be positive.
        init(timeoutNanoseconds: UInt64, minimumRate: UInt64) {
            precondition(timeoutNanoseconds > 0 && minimumRate > 0, "a packet deadline needs a positive timeout and rate")
            self.timeout = timeoutNanoseconds
            self.minimumRate = minimumRate
        }
    }

    let settings: Settings
    /// When the incomplete data now buffered began to arrive; nil while nothing is buffered.
    private(set) var startedAt: UInt64?
    /// Bytes received since `startedAt` (including packets completed in between).
    private(set) var bytesSinceStart: UInt64 = 0

    init(settings: Settings) {
        self.settings = settings
    }

    /// A read of `received` bytes was decoded at `now`, leaving `unprocessed` bytes buffered (the
    /// start of a packet not yet complete).
    mutating func bytesArrived(_ received: Int, unprocessed: Int, now: UInt64) {
        guard unprocessed > 0 else {
            startedAt = nil
            bytesSinceStart = 0
            return
        }
        if startedAt == nil {
            startedAt = now
            bytesSinceStart = UInt64(unprocessed)
        } else {
            bytesSinceStart &+= UInt64(received)
        }
    }

    /// Stop timing (the server itself holds the packet, e.g. at the pre-authentication cap).
    mutating func suspend() {
        startedAt = nil
        bytesSinceStart = 0
    }

    /// When the buffered packet times out; nil when nothing incomplete is buffered.
    var deadline: UInt64? {
        guard let startedAt else { return nil }
        let (extensionSeconds, remainder) = bytesSinceStart.quotientAndRemainder(dividingBy: settings.minimumRate)
        let extensionNanoseconds = extensionSeconds.multipliedReportingOverflow(by: 1_000_000_000)
        guard !extensionNanoseconds.overflow else { return .max }
        let fraction = UInt64(Double(remainder) / Double(settings.minimumRate) * 1e9)
        let total = startedAt.addingReportingOverflow(settings.timeout)
        guard !total.overflow else { return .max }
        let extended = total.partialValue.addingReportingOverflow(extensionNanoseconds.partialValue &+ fraction)
        return extended.overflow ? .max : extended.partialValue
    }

    func hasExpired(now: UInt64) -> Bool {
        guard let deadline else { return false }
        return now >= deadline
    }
}
