#if canImport(Glibc)
internal import Glibc
#elseif canImport(Musl)
internal import Musl
#elseif canImport(Darwin)
internal import Darwin
#endif

extension AccessPolicy {
    /// Parses the YAML text of an ACL file (no I/O). Throws every problem found, each with its line.
    public init(yaml: String) throws(ACLLoadError) {
        switch ACLFileParser.parse(yaml) {
        case .success(let policy): self = policy
        case .failure(let error): throw error
        }
    }

    /// An ACL file larger than this is refused unread: real ones are kilobytes.
    public static let maximumFileSize = 16 << 20

    /// Reads and parses an ACL file. This is the module's only I/O.
    ///
    /// The errors carry `path` as their `file`, so `ACLLoadError.lines` reads `PATH:LINE: problem`.
    public static func load(contentsOfFile path: String) throws(ACLLoadError) -> AccessPolicy {
        func unreadable(_ message: String) -> ACLLoadError {
            ACLLoadError(file: path, errors: [ACLError(code: .unreadableFile, message: message)])
        }
        let bytes: [UInt8]
        switch readFile(path) {
        case .success(let contents): bytes = contents
        case .failure(.tooLarge): throw unreadable("the file is larger than \(maximumFileSize) bytes")
        case .failure(.system(let code)): throw unreadable("cannot read the file: \(String(cString: strerror(code)))")
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw unreadable("the file is not UTF-8 text")
        }
        do {
            return try AccessPolicy(yaml: text)
        } catch {
            var located = error
            located.file = path
            throw located
        }
    }

    private enum ReadFailure: Error {
        case system(Int32)
        case tooLarge
    }

    private static func readFile(_ path: String) -> Result<[UInt8], ReadFailure> {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return .failure(.system(errno)) }
        defer { close(descriptor) }
        var contents: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 << 10)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                return .failure(.system(errno))
            }
            if count == 0 { return .success(contents) }
            contents.append(contentsOf: chunk[..<count])
            if contents.count > maximumFileSize { return .failure(.tooLarge) }
        }
    }
}
