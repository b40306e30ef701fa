extension SpawnedProcess {
    /// What to start and how to connect it.
    public struct Configuration: Sendable {
        /// Where the child's stdin comes from.
        public enum Input: Sendable, Hashable {
            /// A pipe whose write end is ``SpawnedProcess/standardInput``.
            case pipe
            /// `/dev/null`: the child reads EOF at once.
            case nullDevice
        }

        /// Where the child's stdout or stderr goes.
        public enum Output: Sendable, Hashable {
            /// A pipe whose read end is ``SpawnedProcess/standardOutput`` or ``SpawnedProcess/standardError``.
            case pipe
            /// Ours: the child writes where we do.
            case inherited
        }

        /// Which process group the child joins.
        public enum ProcessGroup: Sendable, Hashable {
            /// Ours: a Ctrl-C at the terminal reaches the child too.
            case inherited
            /// A new group led by the child, which ``SpawnedProcess/sendSignalToProcessGroup(_:)`` signals.
            case new
        }

        /// The program (looked up in PATH unless it contains a slash) followed by its arguments.
        public var arguments: [String]
        /// Default `.pipe`.
        public var standardInput: Input
        /// Default `.pipe`.
        public var standardOutput: Output
        /// Default `.inherited`.
        public var standardError: Output
        /// Default `.new`.
        public var processGroup: ProcessGroup

        public init(
            arguments: [String], standardInput: Input = .pipe, standardOutput: Output = .pipe,
            standardError: Output = .inherited, processGroup: ProcessGroup = .new
        ) {
            self.arguments = arguments
            self.standardInput = standardInput
            self.standardOutput = standardOutput
            self.standardError = standardError
            self.processGroup = processGroup
        }
    }
}
