import GearlockCLI
import Synchronization

/// Lines written by a log handler under test.
final class CapturedLines: Sendable {
    private let lines = Mutex<[String]>([])

    var all: [String] { lines.withLock { $0 } }

    var output: LogOutput { LogOutput { line in self.lines.withLock { $0.append(line) } } }
}

/// A text stream for swift-log's `StreamLogHandler`, kept in memory.
struct CapturedStream: TextOutputStream, Sendable {
    let lines: CapturedLines

    mutating func write(_ string: String) {
        lines.output.write(string)
    }
}
