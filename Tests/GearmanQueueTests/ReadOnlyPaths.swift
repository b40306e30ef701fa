#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Makes files and directories read-only for this very process, which may run as root (CI does).
///
/// For root, permission bits mean nothing (it may write anywhere), so there the file system's
/// immutable attribute (`chattr +i`) does the job: not even root may change an immutable file or
/// create a file in an immutable directory.
enum ReadOnlyPaths {
    static var runningAsRoot: Bool { geteuid() == 0 }

    /// Makes `path` read-only and returns what undoes it; nil when this file system cannot.
    static func makeReadOnly(_ path: String) -> (() -> Void)? {
        var status = stat()
        guard stat(path, &status) == 0 else { return nil }
        let isDirectory = status.st_mode & S_IFMT == S_IFDIR
        guard runningAsRoot else {
            let mode = status.st_mode & 0o7777
            guard chmod(path, isDirectory ? 0o555 : 0o444) == 0 else { return nil }
            return { _ = chmod(path, mode) }
        }
        #if os(Linux)
        guard setImmutable(path, true) else { return nil }
        return { _ = setImmutable(path, false) }
        #else
        return nil
        #endif
    }

    #if os(Linux)
    /// `FS_IOC_GETFLAGS`, `FS_IOC_SETFLAGS` and `FS_IMMUTABLE_FL` from `<linux/fs.h>`.
    private static let getFlags: UInt = 0x8008_6601
    private static let setFlags: UInt = 0x4008_6602
    private static let immutable: CInt = 0x10

    private static func setImmutable(_ path: String, _ on: Bool) -> Bool {
        let descriptor = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard descriptor >= 0 else { return false }
        defer { close(descriptor) }
        var flags: CInt = 0
        guard ioctl(descriptor, getFlags, &flags) == 0 else { return false }
        flags = on ? flags | immutable : flags & ~immutable
        return ioctl(descriptor, setFlags, &flags) == 0
    }
    #endif
}
