import Foundation
import NIOCore
import Testing

/// SplitMix64: a tiny seeded generator, so the big payload is the same bytes on every run.
struct SeededGenerator: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// `count` pseudo-random bytes from `seed`, written straight into one buffer.
func seededRandomBytes(count: Int, seed: UInt64) -> ByteBuffer {
    var generator = SeededGenerator(seed: seed)
    var buffer = ByteBufferAllocator().buffer(capacity: count)
    buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: count) { raw in
        let words = count / 8
        let typed = raw.bindMemory(to: UInt64.self)
        for index in 0..<words { typed[index] = generator.next() }
        var last = generator.next()
        for index in (words * 8)..<count {
            raw[index] = UInt8(truncatingIfNeeded: last)
            last >>= 8
        }
        return count
    }
    return buffer
}

/// The lines of a list reply (without the final `.\n`), sorted: gearmand prints them in hash order.
func sortedListLines(_ reply: String) -> [String] {
    var lines = reply.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    if lines.last == "" { lines.removeLast() }
    if lines.last == "." { lines.removeLast() }
    return lines.sorted()
}

/// Seconds since 1970, as SUBMIT_JOB_EPOCH wants them.
func unixTime() -> Int {
    Int(time(nil))
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Seconds since 1970 with the fraction.
func unixTimeFractional() -> Double {
    var now = timespec()
    clock_gettime(CLOCK_REALTIME, &now)
    return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
}

/// Runs `gearlock bench -s ADDRESS --json --server-pid PID <arguments>` and returns the result and
/// its JSON object (the one line it must print).
func runBench(
    address: String, pid: Int32, _ arguments: [String], timeout: Duration = .seconds(60),
    sourceLocation: SourceLocation = #_sourceLocation
) async throws -> (ProcessResult, [String: Any]) {
    try requireExecutable(GearlockBinary.path, sourceLocation: sourceLocation)
    let result = try await runProcess(
        GearlockBinary.path, ["bench", "-s", address, "--json", "--server-pid", String(pid)] + arguments,
        timeout: timeout, sourceLocation: sourceLocation)
    let lines = result.stdoutString.split(separator: "\n")
    #expect(lines.count == 1, "one JSON line: \(result)", sourceLocation: sourceLocation)
    let object = try #require(
        try JSONSerialization.jsonObject(with: Data((lines.first ?? "").utf8)) as? [String: Any], "\(result)",
        sourceLocation: sourceLocation)
    return (result, object)
}
