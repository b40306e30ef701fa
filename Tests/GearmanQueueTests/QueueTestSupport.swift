import GearmanProtocol
import Logging
import NIOCore
import NIOPosix
import Testing

@testable import GearmanQueue

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A fresh directory under the system's temporary directory, removed (with everything in it) by
/// `remove()`.
struct TemporaryDirectory {
    let path: String

    init() throws {
        var template = Array("/tmp/gearlock-queue-tests-XXXXXX".utf8CString)
        let created = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        guard created != nil else { throw TestFailure("mkdtemp failed: errno \(errno)") }
        self.path = String(decoding: template.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The path of `name` inside the directory.
    func file(_ name: String) -> String { "\(path)/\(name)" }

    func remove() {
        TemporaryDirectory.removeTree(path)
    }

    private static func removeTree(_ path: String) {
        var status = stat()
        guard lstat(path, &status) == 0 else { return }
        if status.st_mode & S_IFMT == S_IFDIR, let directory = opendir(path) {
            while let entry = readdir(directory) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) {
                    String(cString: $0.bindMemory(to: CChar.self).baseAddress!)
                }
                if name != "." && name != ".." { removeTree("\(path)/\(name)") }
            }
            closedir(directory)
            rmdir(path)
        } else {
            unlink(path)
        }
    }
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

func buffer(_ bytes: [UInt8]) -> ByteBuffer { ByteBuffer(bytes: bytes) }
func buffer(_ text: String) -> ByteBuffer { ByteBuffer(string: text) }

/// A job numbered `number`, with a handle that says so and a payload containing NULs.
func sampleJob(_ number: Int, unique: String? = nil, retries: Int = 0) -> StoredJob {
    StoredJob(
        handle: buffer("H:test:\(number)"), function: buffer("reverse"), unique: buffer(unique ?? "u\(number)"),
        payload: buffer([0, 1, 2, 0, 255] + Array("payload \(number)".utf8)), priority: .normal, retries: retries)
}

let testLogger = Logger(label: "gearlock.queue.tests", factory: { _ in SwiftLogNoOpLogHandler() })

func openStore(
    _ path: String, synchronous: SQLiteQueueStore.Synchronous = .full
) async throws(QueueStoreError) -> SQLiteQueueStore {
    try await SQLiteQueueStore.open(
        path: path, eventLoop: MultiThreadedEventLoopGroup.singleton.any(), logger: testLogger,
        synchronous: synchronous)
}

/// The error `open` throws for `path`, or nil when it opens (and is closed again at once).
func openingError(_ path: String) async -> QueueStoreError? {
    do {
        let store = try await openStore(path)
        await store.close()
        return nil
    } catch {
        return error
    }
}

extension QueueStore {
    /// Commits `batch` and waits until it is durable.
    func commit(_ batch: QueueBatch) async throws(QueueStoreError) {
        let result = await withCheckedContinuation { continuation in
            self.commit(batch) { continuation.resume(returning: $0) }
        }
        try result.get()
    }
}

/// Runs `body` with a store on a new file in a new directory, then closes the store and removes the
/// directory.
func withTemporaryStore(
    synchronous: SQLiteQueueStore.Synchronous = .full,
    _ body: (SQLiteQueueStore, TemporaryDirectory) async throws -> Void
) async throws {
    let directory = try TemporaryDirectory()
    defer { directory.remove() }
    let store = try await openStore(directory.file("queue.sqlite"), synchronous: synchronous)
    do {
        try await body(store, directory)
    } catch {
        await store.close()
        throw error
    }
    await store.close()
}
