/// Per-job latencies for `gearlock bench`, as a log-linear histogram of nanoseconds.
///
/// Values below 64 ns are kept exactly; above, every power of two is split into 32 buckets, so a
/// reported percentile is within about 3 % of the true value. Values beyond 2^41 ns (about 37
/// minutes) land in the last bucket. The counts live in one array allocated up front: recording
/// is an index computation and an increment, with no allocation. Each load task owns its own
/// recorder; they are merged once the run is over.
struct LatencyRecorder: Sendable {
    private static let exactLimit: UInt64 = 64
    private static let subBucketBits = 5
    private static let subBucketCount = 1 << subBucketBits
    /// The exponent of the smallest value that is not kept exactly (64 = 2^6).
    private static let firstExponent = 6
    private static let lastExponent = 40
    static let bucketCount = Int(exactLimit) + (lastExponent - firstExponent + 1) * subBucketCount

    private var counts: [UInt32]
    /// Jobs recorded.
    private(set) var count = 0
    /// The largest value recorded, exactly.
    private(set) var maximum: UInt64 = 0
    private(set) var sum: UInt64 = 0

    init() {
        counts = Array(repeating: 0, count: Self.bucketCount)
    }

    mutating func record(nanoseconds value: UInt64) {
        counts[Self.bucket(of: value)] &+= 1
        count += 1
        sum &+= value
        if value > maximum { maximum = value }
    }

    mutating func merge(_ other: LatencyRecorder) {
        for index in counts.indices {
            counts[index] &+= other.counts[index]
        }
        count += other.count
        sum &+= other.sum
        maximum = max(maximum, other.maximum)
    }

    /// The value below which `fraction` (0…1) of the recorded jobs fall: the middle of its
    /// bucket, never above the maximum. nil when nothing was recorded.
    func percentile(_ fraction: Double) -> UInt64? {
        guard count > 0 else { return nil }
        let rank = max(1, Int((fraction * Double(count)).rounded(.up)))
        var seen = 0
        for (index, bucketCount) in counts.enumerated() where bucketCount > 0 {
            seen += Int(bucketCount)
            if seen >= rank {
                let (lower, width) = Self.range(of: index)
                return min(lower + width / 2, maximum)
            }
        }
        return maximum
    }

    var mean: UInt64? { count > 0 ? sum / UInt64(count) : nil }

    static func bucket(of value: UInt64) -> Int {
        guard value >= exactLimit else { return Int(value) }
        let exponent = min(63 - value.leadingZeroBitCount, lastExponent)
        let subBucket =
            exponent == 63 - value.leadingZeroBitCount
            ? Int(value >> UInt64(exponent - subBucketBits)) & (subBucketCount - 1) : subBucketCount - 1
        return Int(exactLimit) + (exponent - firstExponent) * subBucketCount + subBucket
    }

    /// The lowest value of bucket `index` and how many values it spans.
    static func range(of index: Int) -> (lower: UInt64, width: UInt64) {
        guard index >= Int(exactLimit) else { return (UInt64(index), 1) }
        let exponent = (index - Int(exactLimit)) / subBucketCount + firstExponent
        let subBucket = (index - Int(exactLimit)) % subBucketCount
        let shift = UInt64(exponent - subBucketBits)
        return (UInt64(subBucketCount + subBucket) << shift, 1 << shift)
    }
}
