/// Counts failed authentications per peer address and, past a threshold, refuses attempts from
/// that address unchecked for a back-off that doubles with each further failure. Refusing without
/// checking is what makes guessing slow: a throttled address learns nothing, right secret or wrong.
///
/// Pure bookkeeping on an injected monotonic time; bounded in memory.
struct AuthenticationThrottle {
    struct Entry {
        var failures: Int
        var lastFailure: UInt64
        var blockedUntil: UInt64
    }

    /// Failures tolerated before the address is throttled (changeable: a live reload).
    var threshold: Int
    /// The first back-off; each further failure doubles it.
    let baseDelay: UInt64 = 1_000_000_000
    let maxDelay: UInt64 = 300 * 1_000_000_000
    /// An address with no failure for this long starts afresh.
    let forgetAfter: UInt64 = 600 * 1_000_000_000
    /// Addresses remembered at once; the stalest is forgotten first.
    let capacity: Int

    private(set) var entries: [String: Entry] = [:]

    init(threshold: Int, capacity: Int = 4096) {
        self.threshold = max(1, threshold)
        self.capacity = capacity
    }

    /// Whether an attempt from `address` must be refused without checking it.
    func isThrottled(_ address: String, now: UInt64) -> Bool {
        guard let entry = entries[address] else { return false }
        return now < entry.blockedUntil
    }

    /// Records a failure; returns the back-off started, if any (nanoseconds).
    @discardableResult
    mutating func recordFailure(_ address: String, now: UInt64) -> UInt64? {
        var entry = entries[address] ?? Entry(failures: 0, lastFailure: now, blockedUntil: 0)
        if now - min(now, entry.lastFailure) > forgetAfter {
            entry.failures = 0
        }
        entry.failures += 1
        entry.lastFailure = now
        var delay: UInt64?
        if entry.failures >= threshold {
            let doublings = min(entry.failures - threshold, 20)
            let value = min(baseDelay << UInt64(doublings), maxDelay)
            entry.blockedUntil = now + value
            delay = value
        }
        if entries[address] == nil && entries.count >= capacity {
            evictStalest()
        }
        entries[address] = entry
        return delay
    }

    /// A successful authentication clears the address's record.
    mutating func recordSuccess(_ address: String) {
        entries[address] = nil
    }

    private mutating func evictStalest() {
        guard let stalest = entries.min(by: { $0.value.lastFailure < $1.value.lastFailure })?.key else { return }
        entries[stalest] = nil
    }
}
