import Foundation
import Testing

/// A fresh directory for a test's configuration files, removed with `remove()`.
struct ConfigDirectory {
    let path: String

    init() throws {
        path = NSTemporaryDirectory() + "gearlock-config-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    /// Writes `contents` to `name` in the directory; returns its path.
    @discardableResult
    func write(_ name: String, _ contents: String) throws -> String {
        let file = path + "/" + name
        try Data(contents.utf8).write(to: URL(fileURLWithPath: file))
        return file
    }

    func remove() {
        try? FileManager.default.removeItem(atPath: path)
    }
}

/// `gearlock serve <arguments>`, run to completion (for `--check-config` and refused start-ups).
func runGearlockServe(_ arguments: [String], timeout: Duration = .seconds(20)) async throws -> ProcessResult {
    try await runProcess(GearlockBinary.path, ["serve"] + arguments, timeout: timeout)
}

/// `gearlock serve --config FILE <extra>` for a file holding `yaml` (removed afterwards), run to
/// completion; returns the file's path, for the messages, and the result.
func runGearlockServe(config yaml: String, _ extra: [String] = []) async throws -> (file: String, result: ProcessResult) {
    let directory = try ConfigDirectory()
    defer { directory.remove() }
    let file = try directory.write("gearlock.yaml", yaml)
    return (file, try await runGearlockServe(["--config", file] + extra))
}
