import Foundation
import Testing

/// A file system that turns read-only under a running server, as ext4 does after an I/O error
/// (`errors=remount-ro`): from the moment `trigger` exists, every write-side call on a file under
/// `directory` — write, pwrite, writev, fsync, ftruncate, fallocate, and opening or creating a file
/// for writing — fails with EROFS, exactly as the kernel answers then; reads go on. Removing
/// `trigger` makes the files writable again.
///
/// Linux cannot remount a file system read-only while a file on it is open for writing (EBUSY), and
/// `chattr +i` does not stop writes through a descriptor already open, so the fault is injected at
/// the C library boundary: a small shared object, compiled here with the system's C compiler and
/// preloaded (`LD_PRELOAD`) into `gearlock serve`. SQLite (vendored in sqlite-nio) calls these libc
/// functions; the server sees the same errors a read-only remount would give it.
struct ReadOnlyFileSystemShim {
    /// The shared object to preload.
    let library: String
    /// Files under this directory are affected.
    let directory: String
    /// While this file exists, the directory is read-only.
    let trigger: String

    /// Compiles the shim into a fresh temporary directory, which also holds `directory`.
    init() throws {
        let root = NSTemporaryDirectory() + "gearlock-readonly-\(UUID().uuidString)"
        directory = root + "/data"
        trigger = root + "/readonly"
        library = root + "/readonly-shim.so"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let source = root + "/readonly-shim.c"
        try Self.source.write(toFile: source, atomically: true, encoding: .utf8)
        let path = ProcessInfo.processInfo.environment["PATH"]?.split(separator: ":").map(String.init) ?? []
        let compilers = ["/usr/bin/cc", "/usr/bin/gcc"] + path.map { $0 + "/clang" }
        guard let compiler = compilers.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw RawClientError(description: "no C compiler (cc, gcc or clang) to build the read-only shim")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: compiler)
        process.arguments = ["-shared", "-fPIC", "-O1", "-o", library, source, "-ldl"]
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0, FileManager.default.fileExists(atPath: library) else {
            throw RawClientError(description: "\(compiler) could not build the read-only shim (\(process.terminationStatus))")
        }
    }

    /// Environment assignments for `/usr/bin/env` that preload the shim.
    var environment: [String] {
        ["LD_PRELOAD=\(library)", "GEARLOCK_TEST_READONLY_DIR=\(directory)", "GEARLOCK_TEST_READONLY_TRIGGER=\(trigger)"]
    }

    func makeReadOnly() throws {
        guard FileManager.default.createFile(atPath: trigger, contents: Data()) else {
            throw RawClientError(description: "cannot create \(trigger)")
        }
    }

    func makeWritable() throws {
        try FileManager.default.removeItem(atPath: trigger)
    }

    func remove() {
        try? FileManager.default.removeItem(atPath: (directory as NSString).deletingLastPathComponent)
    }

    /// How many calls the shim refused in the server: the size of `<directory>/../refused`, to which
    /// the shim appends one byte (outside `directory`) per refusal.
    var refusals: Int {
        let path = (directory as NSString).deletingLastPathComponent + "/refused"
        return (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
    }

    static let source = #"""
        #define _GNU_SOURCE
        #include <dlfcn.h>
        #include <errno.h>
        #include <fcntl.h>
        #include <limits.h>
        #include <stdarg.h>
        #include <stdio.h>
        #include <stdlib.h>
        #include <string.h>
        #include <sys/stat.h>
        #include <sys/types.h>
        #include <sys/uio.h>
        #include <unistd.h>

        static const char *directory(void) { return getenv("GEARLOCK_TEST_READONLY_DIR"); }

        static int read_only_now(void) {
            const char *trigger = getenv("GEARLOCK_TEST_READONLY_TRIGGER");
            struct stat st;
            return trigger != NULL && stat(trigger, &st) == 0;
        }

        static int under_directory(const char *path) {
            const char *dir = directory();
            if (dir == NULL || path == NULL) return 0;
            size_t n = strlen(dir);
            return strncmp(path, dir, n) == 0 && (path[n] == '/' || path[n] == '\0');
        }

        static void count_refusal(void) {
            const char *dir = directory();
            char path[PATH_MAX];
            if (dir == NULL || snprintf(path, sizeof path, "%s/../refused", dir) >= (int)sizeof path) return;
            int (*real_open)(const char *, int, ...) = (int (*)(const char *, int, ...))dlsym(RTLD_NEXT, "open");
            ssize_t (*real_write)(int, const void *, size_t) = (ssize_t (*)(int, const void *, size_t))dlsym(RTLD_NEXT, "write");
            int fd = real_open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
            if (fd >= 0) { (void)real_write(fd, "x", 1); close(fd); }
        }

        /* Whether a write-side call on fd must fail now: fd is a file under the directory. */
        static int refuse_fd(int fd) {
            if (fd < 0 || !read_only_now()) return 0;
            char link[64], path[PATH_MAX];
            snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
            ssize_t n = readlink(link, path, sizeof path - 1);
            if (n <= 0) return 0;
            path[n] = '\0';
            if (!under_directory(path)) return 0;
            count_refusal();
            errno = EROFS;
            return 1;
        }

        static int refuse_open(int dirfd, const char *path, int flags) {
            if (!(flags & (O_WRONLY | O_RDWR | O_CREAT | O_TRUNC)) || !read_only_now()) return 0;
            char full[PATH_MAX];
            if (path[0] != '/') {
                char base[PATH_MAX];
                if (dirfd == AT_FDCWD) {
                    if (getcwd(base, sizeof base) == NULL) return 0;
                } else {
                    char link[64];
                    snprintf(link, sizeof link, "/proc/self/fd/%d", dirfd);
                    ssize_t n = readlink(link, base, sizeof base - 1);
                    if (n <= 0) return 0;
                    base[n] = '\0';
                }
                snprintf(full, sizeof full, "%s/%s", base, path);
                path = full;
            }
            if (!under_directory(path)) return 0;
            count_refusal();
            errno = EROFS;
            return 1;
        }

        #define REAL(name) static __typeof__(&name) real_##name; if (!real_##name) real_##name = (__typeof__(&name))dlsym(RTLD_NEXT, #name)

        ssize_t write(int fd, const void *buf, size_t count) {
            REAL(write);
            if (refuse_fd(fd)) return -1;
            return real_write(fd, buf, count);
        }
        ssize_t pwrite(int fd, const void *buf, size_t count, off_t offset) {
            REAL(pwrite);
            if (refuse_fd(fd)) return -1;
            return real_pwrite(fd, buf, count, offset);
        }
        ssize_t pwrite64(int fd, const void *buf, size_t count, off64_t offset) {
            REAL(pwrite64);
            if (refuse_fd(fd)) return -1;
            return real_pwrite64(fd, buf, count, offset);
        }
        ssize_t writev(int fd, const struct iovec *iov, int iovcnt) {
            REAL(writev);
            if (refuse_fd(fd)) return -1;
            return real_writev(fd, iov, iovcnt);
        }
        ssize_t pwritev(int fd, const struct iovec *iov, int iovcnt, off_t offset) {
            REAL(pwritev);
            if (refuse_fd(fd)) return -1;
            return real_pwritev(fd, iov, iovcnt, offset);
        }
        int fsync(int fd) {
            REAL(fsync);
            if (refuse_fd(fd)) return -1;
            return real_fsync(fd);
        }
        int fdatasync(int fd) {
            REAL(fdatasync);
            if (refuse_fd(fd)) return -1;
            return real_fdatasync(fd);
        }
        int ftruncate(int fd, off_t length) {
            REAL(ftruncate);
            if (refuse_fd(fd)) return -1;
            return real_ftruncate(fd, length);
        }
        int ftruncate64(int fd, off64_t length) {
            REAL(ftruncate64);
            if (refuse_fd(fd)) return -1;
            return real_ftruncate64(fd, length);
        }
        int fallocate(int fd, int mode, off_t offset, off_t len) {
            REAL(fallocate);
            if (refuse_fd(fd)) return -1;
            return real_fallocate(fd, mode, offset, len);
        }
        int posix_fallocate(int fd, off_t offset, off_t len) {
            REAL(posix_fallocate);
            if (refuse_fd(fd)) return EROFS;
            return real_posix_fallocate(fd, offset, len);
        }
        int open(const char *path, int flags, ...) {
            REAL(open);
            mode_t mode = 0;
            if (flags & (O_CREAT | O_TMPFILE)) { va_list ap; va_start(ap, flags); mode = va_arg(ap, mode_t); va_end(ap); }
            if (refuse_open(AT_FDCWD, path, flags)) return -1;
            return real_open(path, flags, mode);
        }
        int open64(const char *path, int flags, ...) {
            REAL(open64);
            mode_t mode = 0;
            if (flags & (O_CREAT | O_TMPFILE)) { va_list ap; va_start(ap, flags); mode = va_arg(ap, mode_t); va_end(ap); }
            if (refuse_open(AT_FDCWD, path, flags)) return -1;
            return real_open64(path, flags, mode);
        }
        int openat(int dirfd, const char *path, int flags, ...) {
            REAL(openat);
            mode_t mode = 0;
            if (flags & (O_CREAT | O_TMPFILE)) { va_list ap; va_start(ap, flags); mode = va_arg(ap, mode_t); va_end(ap); }
            if (refuse_open(dirfd, path, flags)) return -1;
            return real_openat(dirfd, path, flags, mode);
        }
        int unlink(const char *path) {
            REAL(unlink);
            if (read_only_now() && refuse_open(AT_FDCWD, path, O_WRONLY)) return -1;
            return real_unlink(path);
        }
        """#
}
