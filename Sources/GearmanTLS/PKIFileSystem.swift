#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The file operations of the certificate authority. Blocking: CLI use only, never on an event loop.
///
/// Every file is written whole to a temporary file in the same directory, created with its final
/// mode (0600 for private keys, so a key is never readable by others, not even for a moment), and
/// then renamed into place: a server reloading `crl.pem` on SIGHUP never reads half a file.
enum PKIFileSystem {
    static let privateMode: mode_t = 0o600
    static let publicMode: mode_t = 0o644
    static let directoryMode: mode_t = 0o700

    static func exists(_ path: String) -> Bool {
        var status = stat()
        return lstat(path, &status) == 0
    }

    static func isDirectory(_ path: String) -> Bool {
        var status = stat()
        return stat(path, &status) == 0 && (status.st_mode & S_IFMT) == S_IFDIR
    }

    /// Creates `path` (mode 0700: it holds private keys) unless it is a directory already.
    static func makeDirectory(_ path: String) throws(CertificateAuthorityError) {
        if isDirectory(path) { return }
        guard mkdir(path, directoryMode) == 0 || (errno == EEXIST && isDirectory(path)) else {
            throw failure("cannot create the directory", path: path)
        }
    }

    static func readFile(_ path: String) throws(CertificateAuthorityError) -> [UInt8] {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw failure("cannot open", path: path) }
        defer { close(descriptor) }
        var contents: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16 * 1024)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count == 0 { return contents }
            if count < 0 {
                if errno == EINTR { continue }
                throw failure("cannot read", path: path)
            }
            contents.append(contentsOf: chunk[..<count])
        }
    }

    /// Writes `contents` to `path`, created with `mode`. Without `overwrite`, an existing file is
    /// an error and is left as it is.
    static func writeFile(
        _ contents: [UInt8], to path: String, mode: mode_t, overwrite: Bool
    ) throws(CertificateAuthorityError) {
        if !overwrite && exists(path) {
            throw CertificateAuthorityError(
                code: .fileExists, message: "\(path) exists (pass --force to overwrite it)", path: path)
        }
        let temporary = "\(directoryName(of: path))/.\(baseName(of: path)).\(UInt64.random(in: 0 ... .max)).tmp"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode)
        guard descriptor >= 0 else { throw failure("cannot create", path: temporary) }
        var written = 0
        while written < contents.count {
            let count = contents.withUnsafeBytes { bytes in
                write(descriptor, bytes.baseAddress! + written, bytes.count - written)
            }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else {
                let error = failure("cannot write", path: temporary)
                close(descriptor)
                unlink(temporary)
                throw error
            }
            written += count
        }
        guard fsync(descriptor) == 0, close(descriptor) == 0 else {
            let error = failure("cannot write", path: temporary)
            unlink(temporary)
            throw error
        }
        guard rename(temporary, path) == 0 else {
            let error = failure("cannot move \(temporary) to", path: path)
            unlink(temporary)
            throw error
        }
        syncDirectory(of: path)
    }

    static func remove(_ path: String) {
        unlink(path)
    }

    /// Runs `body` holding an exclusive lock on `directory`, so two `gearlock certs` runs on one CA
    /// don't lose each other's index entries.
    static func withLock<Result>(
        on directory: String, _ body: () throws(CertificateAuthorityError) -> Result
    ) throws(CertificateAuthorityError) -> Result {
        let descriptor = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else { throw failure("cannot open the directory", path: directory) }
        defer { close(descriptor) }
        while flock(descriptor, LOCK_EX) != 0 {
            guard errno == EINTR else { throw failure("cannot lock the directory", path: directory) }
        }
        return try body()
    }

    static func directoryName(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    static func baseName(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return path }
        return String(path[path.index(after: slash)...])
    }

    /// Makes a rename durable.
    private static func syncDirectory(of path: String) {
        let descriptor = open(directoryName(of: path), O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else { return }
        _ = fsync(descriptor)
        close(descriptor)
    }

    private static func failure(_ action: String, path: String) -> CertificateAuthorityError {
        let reason = String(cString: strerror(errno))
        return CertificateAuthorityError(code: .fileSystem, message: "\(action) \(path): \(reason)", path: path)
    }
}
