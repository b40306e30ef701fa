#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// CPU time and memory of a process, read from /proc, for `gearlock bench --server-pid`. Linux
/// only: elsewhere every sample is nil.
struct ProcessSample: Sendable {
    /// utime + stime of all its threads, in seconds.
    var cpuSeconds: Double
    /// VmHWM: the peak resident set size, since the process started or since the last
    /// ``ProcessStats/resetPeakRSS(pid:)``.
    var peakRSSBytes: Int?
    /// VmRSS: the resident set size now.
    var rssBytes: Int?
}

enum ProcessStats {
    /// A sample of `pid` ("self" for this process), or nil when /proc has no such process.
    static func sample(pid: String) -> ProcessSample? {
        guard let stat = readFile("/proc/\(pid)/stat"), let cpu = cpuSeconds(fromStat: stat) else { return nil }
        let status = readFile("/proc/\(pid)/status")
        return ProcessSample(
            cpuSeconds: cpu, peakRSSBytes: status.flatMap { kilobytes(of: "VmHWM:", in: $0) }.map { $0 * 1024 },
            rssBytes: status.flatMap { kilobytes(of: "VmRSS:", in: $0) }.map { $0 * 1024 })
    }

    static func sample(pid: Int32) -> ProcessSample? {
        sample(pid: String(pid))
    }

    /// Resets the process's VmHWM to its current RSS (`echo 5 > /proc/PID/clear_refs`), so the
    /// next sample's peak covers only what happened since. Needs permission to write that file
    /// (the process's owner, Linux 4.0 or later); returns whether it worked.
    static func resetPeakRSS(pid: Int32) -> Bool {
        let descriptor = open("/proc/\(pid)/clear_refs", O_WRONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return false }
        defer { close(descriptor) }
        var byte = UInt8(ascii: "5")
        return write(descriptor, &byte, 1) == 1
    }

    /// The soft limit on the process's open files ("Max open files" in /proc/PID/limits), or nil
    /// when it cannot be read or is unlimited.
    static func openFileLimit(pid: Int32) -> Int? {
        guard let limits = readFile("/proc/\(pid)/limits") else { return nil }
        for line in limits.split(separator: "\n") where line.hasPrefix("Max open files") {
            return line.dropFirst("Max open files".count).split(separator: " ").first.flatMap { Int($0) }
        }
        return nil
    }

    /// utime (field 14) + stime (field 15) of a /proc/PID/stat line, in seconds. The command name
    /// (field 2, in parentheses) may contain spaces and parentheses: fields are counted after the
    /// last `)`.
    static func cpuSeconds(fromStat stat: String) -> Double? {
        guard let close = stat.lastIndex(of: ")") else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ", omittingEmptySubsequences: true)
        // fields[0] is field 3 (state), so field N is fields[N - 3].
        guard fields.count > 12, let user = UInt64(fields[11]), let system = UInt64(fields[12]) else { return nil }
        let ticksPerSecond = sysconf(Int32(_SC_CLK_TCK))
        guard ticksPerSecond > 0 else { return nil }
        return Double(user + system) / Double(ticksPerSecond)
    }

    /// The value of a `Name:<tab>   1234 kB` line of /proc/PID/status.
    static func kilobytes(of key: String, in status: String) -> Int? {
        for line in status.split(separator: "\n") where line.hasPrefix(key) {
            return line.dropFirst(key.count).split(whereSeparator: { $0 == " " || $0 == "\t" }).first.flatMap { Int($0) }
        }
        return nil
    }

    /// A whole (small) file, or nil if it cannot be read.
    static func readFile(_ path: String) -> String? {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                return nil
            }
            if count == 0 { break }
            bytes.append(contentsOf: chunk[0..<count])
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
