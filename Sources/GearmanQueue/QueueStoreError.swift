/// A queue store could not do what it was asked.
///
/// `message` is written for an operator: it names the file and says what to do. It never contains
/// job payloads.
public struct QueueStoreError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What kind of failure this is. New codes may be added; don't switch over them exhaustively.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        enum Base: Sendable, Hashable {
            case damaged, notAQueue, locked, readOnly, cannotOpen, ioError, tooLarge, schemaVersion, closed
        }

        let base: Base

        /// The file is not an SQLite database, or its content is corrupt.
        public static let damaged = Code(base: .damaged)
        /// The file is an SQLite database, but not one that holds a gearlock queue.
        public static let notAQueue = Code(base: .notAQueue)
        /// Another process (usually another gearlock server) holds the database's lock.
        public static let locked = Code(base: .locked)
        /// The file, or the directory it lives in, cannot be written.
        public static let readOnly = Code(base: .readOnly)
        /// The file cannot be opened or created (a missing directory, a path that is a directory, …).
        public static let cannotOpen = Code(base: .cannotOpen)
        /// Reading or writing failed: disk full, an I/O error, or another error from the database.
        public static let ioError = Code(base: .ioError)
        /// A job is larger than the store can hold in one row.
        public static let tooLarge = Code(base: .tooLarge)
        /// The file was written with a queue schema this version does not know (a newer gearlock).
        public static let schemaVersion = Code(base: .schemaVersion)
        /// The store was closed.
        public static let closed = Code(base: .closed)

        public var description: String {
            switch base {
            case .damaged: "damaged"
            case .notAQueue: "notAQueue"
            case .locked: "locked"
            case .readOnly: "readOnly"
            case .cannotOpen: "cannotOpen"
            case .ioError: "ioError"
            case .tooLarge: "tooLarge"
            case .schemaVersion: "schemaVersion"
            case .closed: "closed"
            }
        }
    }

    public var code: Code
    /// What went wrong and what to do about it, naming the file when there is one.
    public var message: String
    /// The database file the error is about, when there is one.
    public var path: String?

    public init(_ code: Code, _ message: String, path: String? = nil) {
        self.code = code
        self.message = message
        self.path = path
    }

    public var description: String { "QueueStoreError.\(code): \(message)" }
}
