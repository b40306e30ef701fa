import Foundation
import Synchronization

/// Where a log handler's lines go. Each line is written whole: lines from several threads never
/// interleave.
public struct LogOutput: Sendable {
    private let sink: @Sendable (String) -> Void

    /// Lines handed to `sink` (tests capture them this way).
    public init(_ sink: @escaping @Sendable (String) -> Void) {
        self.sink = sink
    }

    public func write(_ line: String) {
        sink(line)
    }

    /// The process's standard error, unbuffered, as swift-log's own handlers use it. A failing
    /// write drops the line: there is nowhere left to report it.
    public static let standardError = LogOutput { line in
        standardErrorLock.withLock { _ in try? FileHandle.standardError.write(contentsOf: Data(line.utf8)) }
    }

    private static let standardErrorLock = Mutex(())
}
