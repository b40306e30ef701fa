/// A child process could not be started, or could not be waited for.
public struct SpawnError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What kind of failure this is. New codes may be added; don't switch over them exhaustively.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        enum Base: Sendable, Hashable {
            case pipeFailed, spawnFailed, waitFailed
        }

        let base: Base

        /// A pipe to the child could not be created (too many open files, …).
        public static let pipeFailed = Code(base: .pipeFailed)
        /// The program could not be started (not found, not executable, out of processes, …).
        public static let spawnFailed = Code(base: .spawnFailed)
        /// The child could not be waited for (someone else reaped it).
        public static let waitFailed = Code(base: .waitFailed)

        public var description: String {
            switch base {
            case .pipeFailed: "pipeFailed"
            case .spawnFailed: "spawnFailed"
            case .waitFailed: "waitFailed"
            }
        }
    }

    public var code: Code
    /// What failed, naming the program or the pid and the system's reason.
    public var message: String
    /// The `errno` value the failing call gave.
    public var errorNumber: CInt

    public init(_ code: Code, _ message: String, errorNumber: CInt) {
        self.code = code
        self.message = message
        self.errorNumber = errorNumber
    }

    public var description: String { "SpawnError.\(code): \(message)" }
}
