import SQLiteNIO

extension QueueStoreError {
    /// Translates an error that SQLite (or the thread pool running it) reported for the database at
    /// `path` into words an operator can act on.
    init(sqlite error: any Error, path: String) {
        guard let error = error as? SQLiteError else {
            self.init(.ioError, "the queue database \(path) could not be used: \(error)", path: path)
            return
        }
        let detail = "(SQLite: \(error.message))"
        switch error.reason {
        case .notADatabase, .corrupt, .corruptIndex, .corruptSequenceSchema, .corruptVirtualTable, .format:
            self.init(
                .damaged,
                "\(path) is not a SQLite database or is damaged \(detail); move it aside to start with an "
                    + "empty queue, or restore it from a backup",
                path: path)
        case .busy, .busyTimeout, .busyInRecovery, .busyInSnapshot, .locked, .lockedBySharedCache,
            .lockedVirtualTable:
            self.init(
                .locked,
                "another gearlock server is using \(path) \(detail); stop that "
                    + "server, or give this one a queue file of its own",
                path: path)
        case .readOnly, .readonlyCantLock, .readonlyDirectory, .readonlyInRecovery, .readonlyInRollback,
            .readonlyBackingMoved, .permission, .auth:
            self.init(
                .readOnly,
                "\(path) cannot be written \(detail); the server's user needs write access to the file and "
                    + "to its directory (SQLite creates \(path)-wal beside it)",
                path: path)
        case .cantOpen, .cantOpenDirectory, .cantOpenInvalidPath, .cantOpenCygwinPath, .cantOpenUnfollowedSymlink:
            self.init(.cannotOpen, "the queue database \(path) cannot be opened or created \(detail)", path: path)
        case .full:
            self.init(
                .ioError, "the disk holding \(path) is full \(detail); free some space",
                path: path)
        case .tooBig:
            self.init(
                .tooLarge,
                "a job is larger than one SQLite row may be and cannot be stored in \(path) \(detail)",
                path: path)
        case .misuse:
            // sqlite-nio reports a thread pool that no longer runs as misuse.
            self.init(
                .closed, "the queue database \(path) is closed or its thread pool has stopped \(detail)",
                path: path)
        default:
            self.init(
                .ioError,
                "reading or writing the queue database \(path) failed \(detail); check the disk and the file "
                    + "system",
                path: path)
        }
    }

    /// The error for an operation asked of a store after `close()`.
    static func closed(path: String) -> QueueStoreError {
        QueueStoreError(.closed, "the queue database \(path) was closed", path: path)
    }
}
