import NIOCore
import Testing

@testable import GearmanQueue

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Start-up with a file that cannot serve as the queue: always a clear error naming the file, never a
/// crash, and never an empty queue in place of one that could not be read.
@Suite(.serialized) struct SQLiteQueueStoreStartupTests {
    @Test func aNewDatabaseIsReadableOnlyByItsOwner() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.file("queue.sqlite")
        let store = try await openStore(path)
        try await store.commit(QueueBatch(added: [sampleJob(1)]))
        for file in [path, path + "-wal"] {
            var info = stat()
            #expect(stat(file, &info) == 0, "\(file) exists")
            #expect(info.st_mode & 0o777 == 0o600, "\(file) mode \(String(info.st_mode & 0o777, radix: 8))")
        }
        await store.close()
    }

    @Test func aFileThatIsNotADatabaseIsDamagedAndLeftAlone() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.file("queue.sqlite")
        let garbage = (0..<10_000).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) }
        try writeFile(garbage, to: path)

        let error = await openingError(path)
        #expect(error?.code == .damaged)
        #expect(error?.path == path)
        #expect(error?.message.contains("\(path) is not a SQLite database or is damaged") == true)
        #expect(error?.message.contains("move it aside") == true)
        #expect(try readFile(path) == garbage)
    }

    @Test func aTruncatedDatabaseIsDamaged() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.file("queue.sqlite")
        let store = try await openStore(path)
        for batch in 0..<10 {
            try await store.commit(
                QueueBatch(added: (0..<100).map { number in
                    var job = sampleJob(batch * 100 + number)
                    job.payload = ByteBuffer(repeating: UInt8(number), count: 2_000)
                    return job
                }))
        }
        await store.close()
        #expect(truncate(path, 64 * 1024) == 0)

        // SQLite may notice the damage when opening or only when reading the jobs; either way the
        // server learns of it before it accepts a connection.
        do {
            let reopened = try await openStore(path)
            let error = await #expect(throws: QueueStoreError.self) { try await reopened.loadAll() }
            #expect(error?.code == .damaged)
            await reopened.close()
        } catch {
            #expect(error.code == .damaged)
        }
    }

    @Test func aSecondStoreOnTheSameFileIsLockedOut() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.file("queue.sqlite")
        let first = try await openStore(path)
        try await first.commit(QueueBatch(added: [sampleJob(1)]))

        let error = await openingError(path)
        #expect(error?.code == .locked)
        #expect(error?.message.contains("another gearlock server is using \(path)") == true)

        // The first store is unharmed, and once it closes the file is free.
        try await first.commit(QueueBatch(added: [sampleJob(2)]))
        #expect(try await first.loadAll() == [sampleJob(1), sampleJob(2)])
        await first.close()
        let second = try await openStore(path)
        #expect(try await second.loadAll() == [sampleJob(1), sampleJob(2)])
        await second.close()
    }

    @Test func aMissingDirectoryIsNamed() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let missing = directory.file("no/such")
        let error = await openingError("\(missing)/queue.sqlite")
        #expect(error?.code == .cannotOpen)
        #expect(error?.message.contains("the directory \(missing) for the queue database") == true)
        #expect(error?.message.contains("does not exist") == true)
    }

    @Test func aDirectoryInPlaceOfTheFileIsNamed() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let error = await openingError(directory.path)
        #expect(error?.code == .cannotOpen)
        #expect(error?.message.contains("is a directory") == true)
    }

    @Test func aReadOnlyDirectoryIsReportedAsSuch() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let readOnly = directory.file("read-only")
        #expect(mkdir(readOnly, 0o755) == 0)
        let path = "\(readOnly)/queue.sqlite"
        let error: QueueStoreError?
        let checkedDirectory: String
        if let undo = ReadOnlyPaths.makeReadOnly(readOnly) {
            error = await openingError(path)
            undo()
            checkedDirectory = readOnly
        } else {
            // Root on a file system without the immutable attribute: sysfs refuses new files even
            // to root, which is the same situation for the store.
            error = await openingError("/sys/gearlock-queue.sqlite")
            checkedDirectory = "/sys"
        }
        #expect(error?.code == .readOnly)
        #expect(error?.message.contains("the directory \(checkedDirectory) is read-only") == true)
        #expect(access(path, F_OK) != 0)
    }

    @Test func aDatabaseInADirectoryThatBecameReadOnlyIsReportedAsSuch() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let readOnly = directory.file("read-only")
        #expect(mkdir(readOnly, 0o755) == 0)
        let path = "\(readOnly)/queue.sqlite"
        let store = try await openStore(path)
        try await store.commit(QueueBatch(added: [sampleJob(1)]))
        await store.close()

        let undo = try #require(
            ReadOnlyPaths.makeReadOnly(readOnly), "cannot make \(readOnly) read-only on this file system")
        let error = await openingError(path)
        undo()
        #expect(error?.code == .readOnly)
        #expect(error?.message.contains("the directory \(readOnly) is read-only") == true)

        let reopened = try await openStore(path)
        #expect(try await reopened.loadAll() == [sampleJob(1)])
        await reopened.close()
    }

    @Test func aReadOnlyDatabaseFileIsReportedAsSuch() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.file("queue.sqlite")
        let store = try await openStore(path)
        try await store.commit(QueueBatch(added: [sampleJob(1)]))
        await store.close()

        let undo = try #require(ReadOnlyPaths.makeReadOnly(path), "cannot make \(path) read-only on this file system")
        let error = await openingError(path)
        undo()
        #expect(error?.code == .readOnly)
        #expect(error?.message.contains("\(path) is read-only") == true)

        let reopened = try await openStore(path)
        #expect(try await reopened.loadAll() == [sampleJob(1)])
        await reopened.close()
    }

    @Test func aQueueOfANewerSchemaIsRefused() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.file("queue.sqlite")
        let store = try await openStore(path)
        _ = try await store.execute(sqlForTesting: "PRAGMA user_version = \(SQLiteQueueSchema.version + 1)")
        await store.close()

        let error = await openingError(path)
        #expect(error?.code == .schemaVersion)
        #expect(error?.message.contains("\(path) holds a queue of schema version 2") == true)
    }

    @Test func anotherProgramsDatabaseIsRefused() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        for applicationID in [0, 1234] {
            let path = directory.file("other-\(applicationID).sqlite")
            let store = try await openStore(path)
            _ = try await store.execute(sqlForTesting: "PRAGMA application_id = \(applicationID)")
            _ = try await store.execute(sqlForTesting: "PRAGMA user_version = 7")
            await store.close()

            let error = await openingError(path)
            #expect(error?.code == .notAQueue)
            #expect(error?.message.contains("\(path) is a SQLite database of another program") == true)
        }
    }

    @Test func anEmptyFileBecomesAnEmptyQueue() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.file("queue.sqlite")
        try writeFile([], to: path)
        let store = try await openStore(path)
        #expect(try await store.loadAll().isEmpty)
        await store.close()
    }

    @Test func aRelativePathIsAPlainFileEvenWhenItLooksLikeAURIOrMemory() {
        #expect(SQLiteQueueStore.plainFileName("file:queue.sqlite?mode=ro") == "./file:queue.sqlite?mode=ro")
        #expect(SQLiteQueueStore.plainFileName(":memory:") == "./:memory:")
        #expect(SQLiteQueueStore.plainFileName("queue.sqlite") == "./queue.sqlite")
        #expect(SQLiteQueueStore.plainFileName("../queue.sqlite") == "../queue.sqlite")
        #expect(SQLiteQueueStore.plainFileName("/var/lib/gearlock/queue.sqlite") == "/var/lib/gearlock/queue.sqlite")
    }
}

private func writeFile(_ bytes: [UInt8], to path: String) throws {
    let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    guard descriptor >= 0 else { throw TestFailure("cannot create \(path): errno \(errno)") }
    defer { close(descriptor) }
    guard bytes.withUnsafeBytes({ write(descriptor, $0.baseAddress, $0.count) }) == bytes.count else {
        throw TestFailure("cannot write \(path)")
    }
}

private func readFile(_ path: String) throws -> [UInt8] {
    let descriptor = open(path, O_RDONLY | O_CLOEXEC)
    guard descriptor >= 0 else { throw TestFailure("cannot open \(path): errno \(errno)") }
    defer { close(descriptor) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65_536)
    while true {
        let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
        guard count > 0 else { break }
        bytes += chunk[..<count]
    }
    return bytes
}
