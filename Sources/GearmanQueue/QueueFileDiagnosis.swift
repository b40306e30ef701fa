#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Looks at the file system to tell an operator why a queue database file could not be opened or
/// written, when SQLite's own answer ("unable to open database file") does not say.
///
/// Every check is a blocking system call: run it on a thread pool, never on an event loop. It never
/// opens the database file itself: closing any descriptor of a file drops every POSIX lock this
/// process holds on it, including the lock of a store that is using it.
enum QueueFileDiagnosis {
    /// The reason `path` cannot be used, or nil when the file system shows nothing wrong.
    static func diagnose(path: String) -> QueueStoreError? {
        let directory = Self.directory(of: path)
        var status = stat()
        if stat(directory, &status) != 0 {
            let error = errno
            let reason = Self.describe(error)
            switch error {
            case ENOENT:
                return QueueStoreError(
                    .cannotOpen,
                    "the directory \(directory) for the queue database \(path) does not exist; create it, or "
                        + "choose another path",
                    path: path)
            case EACCES:
                return QueueStoreError(
                    .readOnly,
                    "the directory \(directory) for the queue database \(path) cannot be reached (\(reason)); "
                        + "give the server's user access to it, or choose another path",
                    path: path)
            default:
                return QueueStoreError(
                    .cannotOpen,
                    "the directory \(directory) for the queue database \(path) cannot be used (\(reason))",
                    path: path)
            }
        }
        guard status.st_mode & S_IFMT == S_IFDIR else {
            return QueueStoreError(
                .cannotOpen, "\(directory) is not a directory, so the queue database \(path) cannot live in it",
                path: path)
        }
        let fileExists = stat(path, &status) == 0
        if fileExists, status.st_mode & S_IFMT == S_IFDIR {
            return QueueStoreError(
                .cannotOpen, "the queue database path \(path) is a directory; give the path of a file", path: path)
        }
        if let error = Self.creationError(in: directory) {
            return QueueStoreError(
                .readOnly,
                "the directory \(directory) is read-only (\(Self.describe(error))); gearlock keeps the queue "
                    + "database \(path) and its write-ahead log \(path)-wal there, so the server's user must be "
                    + "able to create files in it",
                path: path)
        }
        if fileExists, faccessat(AT_FDCWD, path, R_OK | W_OK, AT_EACCESS) != 0 {
            return QueueStoreError(
                .readOnly,
                "the queue database \(path) is read-only (\(Self.describe(errno))); make it readable and "
                    + "writable by the server's user",
                path: path)
        }
        return nil
    }

    /// The directory that holds `path`.
    static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    /// The `errno` met when creating (and at once removing) a scratch file in `directory`, or nil when
    /// that works. Creating a file is the only test that tells the truth for every user, root included,
    /// and for read-only file systems and immutable directories alike.
    private static func creationError(in directory: String) -> Int32? {
        let probe = "\(directory)/.gearlock-probe-\(getpid())-\(UInt64.random(in: 0 ... .max))"
        let descriptor = open(probe, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            let error = errno
            return error == EACCES || error == EPERM || error == EROFS ? error : nil
        }
        close(descriptor)
        unlink(probe)
        return nil
    }

    private static func describe(_ error: Int32) -> String {
        String(cString: strerror(error))
    }
}
