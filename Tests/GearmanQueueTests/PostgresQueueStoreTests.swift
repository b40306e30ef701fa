import GearmanProtocol
import NIOCore
import PostgresNIO
import Testing

@testable import GearmanQueue

/// The PostgreSQL store against a real server (`GEARLOCK_TEST_POSTGRES_URL`): the SQLite store's
/// semantics, servers sharing one database, one server per name, the replacement of a lost server,
/// lost connections, and clear errors. Every test uses a server name of its own, so they could run in
/// parallel on one database; they run one at a time so that, beside the rest of the suite on a small
/// machine, no connection waits out postgres-nio's 10 s connect timeout (it did once in CI).
@Suite(.serialized) struct PostgresQueueStoreTests {
    static let variedJobs = SQLiteQueueStoreTests.variedJobs

    // MARK: The SQLite store's semantics

    @Test func everyFieldRoundTripsByteForByte() async throws {
        try await withPostgresStore { store, _ in
            try await store.commit(QueueBatch(added: Self.variedJobs))
            let loaded = try await store.loadAll()
            #expect(loaded == Self.variedJobs)
            #expect(loaded[2].reducer == buffer(""))
            #expect(loaded[3].reducer == nil)
            #expect(loaded[0].epoch == nil)
            #expect(loaded[1].epoch == 1_900_000_000)
        }
    }

    @Test func reopeningReturnsTheSameJobs() async throws {
        let name = PostgresTestDatabase.uniqueServerName()
        defer { Task { await removeRows(of: name) } }
        let store = try await openPostgresStore(name)
        try await store.commit(QueueBatch(added: Self.variedJobs))
        try await store.commit(QueueBatch(removedHandles: [Self.variedJobs[0].handle]))
        await store.close()

        let reopened = try await openPostgresStore(name)
        #expect(try await reopened.loadAll() == Array(Self.variedJobs.dropFirst()))
        try await reopened.commit(QueueBatch(added: [sampleJob(9)]))
        await reopened.close()

        let again = try await openPostgresStore(name)
        #expect(try await again.loadAll() == Array(Self.variedJobs.dropFirst()) + [sampleJob(9)])
        await again.close()
    }

    @Test func anUpsertKeepsTheJobsPlaceInTheReplayOrder() async throws {
        try await withPostgresStore { store, _ in
            try await store.commit(QueueBatch(added: [sampleJob(1), sampleJob(2), sampleJob(3)]))
            try await store.commit(QueueBatch(added: [sampleJob(4), sampleJob(1, retries: 1)]))
            try await store.commit(QueueBatch(added: [sampleJob(1, retries: 2), sampleJob(3, retries: 1)]))
            #expect(
                try await store.loadAll() == [
                    sampleJob(1, retries: 2), sampleJob(2), sampleJob(3, retries: 1), sampleJob(4),
                ])
        }
    }

    /// PostgreSQL refuses to update one row twice in one statement; the store folds a batch's repeats
    /// into one row, as applying them one after the other would.
    @Test func aBatchThatRepeatsAHandleKeepsItsFirstPlaceAndLastValue() async throws {
        try await withPostgresStore { store, _ in
            try await store.commit(QueueBatch(added: [sampleJob(1)]))
            try await store.commit(
                QueueBatch(added: [
                    sampleJob(2), sampleJob(1, retries: 1), sampleJob(3), sampleJob(2, retries: 4),
                    sampleJob(1, retries: 2),
                ]))
            #expect(
                try await store.loadAll() == [sampleJob(1, retries: 2), sampleJob(2, retries: 4), sampleJob(3)])
        }
    }

    @Test func aJobAddedAgainAfterItsRemovalGoesToTheEnd() async throws {
        try await withPostgresStore { store, _ in
            try await store.commit(QueueBatch(added: [sampleJob(1), sampleJob(2)]))
            try await store.commit(QueueBatch(removedHandles: [sampleJob(1).handle]))
            try await store.commit(QueueBatch(added: [sampleJob(1)]))
            #expect(try await store.loadAll() == [sampleJob(2), sampleJob(1)])
        }
    }

    @Test func removesJobsAndIgnoresHandlesItDoesNotHold() async throws {
        try await withPostgresStore { store, _ in
            try await store.commit(QueueBatch(added: (1...5).map { sampleJob($0) }))
            try await store.commit(
                QueueBatch(removedHandles: [sampleJob(2).handle, buffer("H:unknown"), sampleJob(4).handle]))
            #expect(try await store.loadAll() == [sampleJob(1), sampleJob(3), sampleJob(5)])
            try await store.commit(QueueBatch(removedHandles: [sampleJob(2).handle]))
            #expect(try await store.loadAll().count == 3)
        }
    }

    @Test func aBatchAppliesItsAdditionsBeforeItsRemovals() async throws {
        try await withPostgresStore { store, _ in
            try await store.commit(QueueBatch(added: [sampleJob(1)]))
            let handles = [sampleJob(2).handle, sampleJob(1).handle]
            try await store.commit(QueueBatch(added: [sampleJob(2), sampleJob(3)], removedHandles: handles))
            #expect(try await store.loadAll() == [sampleJob(3)])
        }
    }

    @Test func jobsWithAnEmptyUniqueAreSeparateRows() async throws {
        try await withPostgresStore { store, _ in
            let jobs = (1...3).map { sampleJob($0, unique: "") }
            try await store.commit(QueueBatch(added: jobs))
            #expect(try await store.loadAll() == jobs)
        }
    }

    @Test func anEmptyBatchSucceeds() async throws {
        try await withPostgresStore { store, _ in
            try await store.commit(QueueBatch())
            #expect(try await store.loadAll().isEmpty)
        }
    }

    @Test func aLargeBatchIsOneTransaction() async throws {
        try await withPostgresStore { store, _ in
            let jobs = (0..<2_500).map { sampleJob($0) }
            try await store.commit(QueueBatch(added: jobs, removedHandles: jobs[..<1_200].map(\.handle)))
            #expect(try await store.loadAll() == Array(jobs[1_200...]))
        }
    }

    /// A batch that fails half-way changes nothing, and the store goes on on the same connection.
    /// Here the batch's upsert succeeds and its delete runs into a deadlock with another session,
    /// which PostgreSQL resolves by failing the batch (no DDL on the shared table, which would stall
    /// the tests running beside this one).
    @Test func aFailedBatchChangesNothingAndTheStoreGoesOn() async throws {
        try await withPostgresStore { store, name in
            let kept = (0..<10).map { sampleJob($0) }
            try await store.commit(QueueBatch(added: kept))
            let storeSession = try #require(try await lockHolder(of: name))

            let other = try await connectToTestDatabase()
            do {
                try await other.query("BEGIN", logger: testLogger)
                try await lockRow(sampleJob(3).handle, of: name, on: other)

                // The upsert locks job 1's row; the delete then waits for job 3's row.
                var batch = QueueBatch(removedHandles: kept[..<5].map(\.handle))
                batch.added = (100..<1_100).map { sampleJob($0) } + [sampleJob(1, retries: 3)]
                let failing = batch
                let commit = Task { () -> QueueStoreError? in
                    do throws(QueueStoreError) {
                        try await store.commit(failing)
                        return nil
                    } catch {
                        return error
                    }
                }
                try await waitUntilWaitingForALock(storeSession)
                // Now the other session waits for job 1's row: a deadlock. The store's session waited
                // first, so its deadlock check runs first and fails its transaction.
                try await lockRow(sampleJob(1).handle, of: name, on: other)
                try await other.query("ROLLBACK", logger: testLogger)

                let error = await commit.value
                #expect(error?.code == .ioError)
                #expect(error?.message.contains("40P01") == true)
                #expect(error?.message.contains("deadlock") == true)
                #expect(try await store.loadAll() == kept)
                #expect(try await lockHolder(of: name) == storeSession)

                batch.removedHandles = [sampleJob(0).handle]
                try await store.commit(batch)
                var expected = Array(kept[1...]) + (100..<1_100).map { sampleJob($0) }
                expected[0] = sampleJob(1, retries: 3)
                #expect(try await store.loadAll() == expected)
            } catch {
                try? await other.close()
                throw error
            }
            try await other.close()
        }
    }

    private func lockRow(_ handle: ByteBuffer, of name: String, on connection: PostgresConnection) async throws {
        let rows = try await connection.query(
            "SELECT 1 FROM gearlock_jobs WHERE server = \(name) AND handle = \(handle) FOR UPDATE", logger: testLogger
        ).collect()
        #expect(rows.count == 1)
    }

    /// Waits until the PostgreSQL process `pid` waits for a lock.
    private func waitUntilWaitingForALock(_ pid: Int32) async throws {
        let deadline = ContinuousClock.now + .seconds(20)
        while true {
            let waiting = try await withAdminConnection { connection in
                try await connection.query(
                    "SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = \(pid)", logger: testLogger
                ).collect().first?.decode(Bool?.self)
            }
            if waiting == true { return }
            guard ContinuousClock.now < deadline else { throw TestFailure("process \(pid) never waited for a lock") }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    @Test func aClosedStoreRefusesWork() async throws {
        let name = PostgresTestDatabase.uniqueServerName()
        let store = try await openPostgresStore(name)
        await store.close()
        await store.close()
        let commitError = await #expect(throws: QueueStoreError.self) {
            try await store.commit(QueueBatch(added: [sampleJob(1)]))
        }
        #expect(commitError?.code == .closed)
        let loadError = await #expect(throws: QueueStoreError.self) { try await store.loadAll() }
        #expect(loadError?.code == .closed)
        // Closing freed the name.
        #expect(try await lockHolder(of: name) == nil)
    }

    @Test func commitsAskedForConcurrentlyAreAllApplied() async throws {
        try await withPostgresStore { store, _ in
            try await withThrowingTaskGroup(of: Void.self) { group in
                for batch in 0..<20 {
                    group.addTask {
                        try await store.commit(QueueBatch(added: (0..<50).map { sampleJob(batch * 50 + $0) }))
                    }
                }
                try await group.waitForAll()
            }
            let loaded = try await store.loadAll()
            #expect(Set(loaded.map(\.handle)) == Set((0..<1_000).map { sampleJob($0).handle }))
        }
    }

    /// Batches are applied in the order `commit` was called, even when nobody waits in between.
    @Test func batchesCommittedWithoutWaitingApplyInOrder() async throws {
        try await withPostgresStore { store, _ in
            let done = AsyncStream.makeStream(of: Int.self)
            for batch in 0..<10 {
                var next = QueueBatch(added: [sampleJob(batch)])
                if batch > 0 { next.removedHandles = [sampleJob(batch - 1).handle] }
                store.commit(next) { result in
                    #expect((try? result.get()) != nil)
                    done.continuation.yield(batch)
                }
            }
            var order: [Int] = []
            for await batch in done.stream {
                order.append(batch)
                if order.count == 10 { break }
            }
            #expect(order == Array(0..<10))
            let loaded = try await store.loadAll()
            #expect(loaded == [sampleJob(9)])
        }
    }

    /// Not a timed assertion: 50 group commits of 200 jobs, as the server makes them, all come back
    /// in order. Prints the rate, for the record.
    @Test func manyBatchesLoadBackInOrder() async throws {
        try await withPostgresStore { store, _ in
            let clock = ContinuousClock()
            let start = clock.now
            for batch in 0..<50 {
                try await store.commit(QueueBatch(added: (0..<200).map { sampleJob(batch * 200 + $0) }))
            }
            let elapsed = clock.now - start
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            print(
                "PostgresQueueStore: 50 commits of 200 jobs in \(elapsed): "
                    + "\(Int(50 / seconds)) commits/s, \(Int(10_000 / seconds)) jobs/s")
            let loaded = try await store.loadAll()
            #expect(loaded.count == 10_000)
            #expect(loaded == (0..<10_000).map { sampleJob($0) })
        }
    }

    // MARK: Several servers, one database

    @Test func twoServerNamesInOneDatabaseAreIsolated() async throws {
        let first = PostgresTestDatabase.uniqueServerName("first")
        let second = PostgresTestDatabase.uniqueServerName("second")
        let a = try await openPostgresStore(first)
        let b = try await openPostgresStore(second)
        do {
            // The same handles on both servers are different rows.
            try await a.commit(QueueBatch(added: [sampleJob(1), sampleJob(2), sampleJob(3)]))
            try await b.commit(QueueBatch(added: [sampleJob(3, retries: 7), sampleJob(1, retries: 7)]))
            try await a.commit(QueueBatch(removedHandles: [sampleJob(1).handle]))
            try await b.commit(QueueBatch(added: [sampleJob(2, retries: 9)], removedHandles: [sampleJob(3).handle]))
            #expect(try await a.loadAll() == [sampleJob(2), sampleJob(3)])
            #expect(try await b.loadAll() == [sampleJob(1, retries: 7), sampleJob(2, retries: 9)])
        } catch {
            await a.close()
            await b.close()
            throw error
        }
        await a.close()
        await b.close()
        await removeRows(of: first)
        await removeRows(of: second)
    }

    @Test func serversStartingTogetherOnOneDatabaseAllOpen() async throws {
        let names = (0..<6).map { PostgresTestDatabase.uniqueServerName("together\($0)") }
        let stores = try await withThrowingTaskGroup(of: PostgresQueueStore.self) { group in
            for name in names {
                group.addTask { try await openPostgresStore(name) }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(stores.count == names.count)
        for store in stores {
            try await store.commit(QueueBatch(added: [sampleJob(1)]))
            #expect(try await store.loadAll() == [sampleJob(1)])
            await store.close()
            await removeRows(of: store.serverName)
        }
    }

    // MARK: One server per name, and its replacement

    @Test func theSameNameTwiceIsLocked() async throws {
        let name = PostgresTestDatabase.uniqueServerName()
        let first = try await openPostgresStore(name)
        let error = await #expect(throws: QueueStoreError.self) { _ = try await openPostgresStore(name) }
        #expect(error?.code == .locked)
        #expect(error?.message.contains("another gearlock server named \"\(name)\"") == true)
        #expect(error?.message.contains("gearlock:") == true)  // the holder's application name
        #expect(error?.message.contains("pg_terminate_backend") == true)
        let location = try PostgresTestDatabase.location()
        #expect(error?.message.contains(location.endpoint) == true)
        if let password = location.distinctivePassword { #expect(error?.message.contains(password) == false) }

        // The first store is unharmed and keeps working.
        try await first.commit(QueueBatch(added: [sampleJob(1)]))
        #expect(try await first.loadAll() == [sampleJob(1)])
        await first.close()
        await removeRows(of: name)
    }

    /// The replacement scenario after an orderly stop: the second server with the name gets the
    /// first's jobs.
    @Test func aSecondStoreWithTheNameReplaysTheJobsOfAClosedOne() async throws {
        let name = PostgresTestDatabase.uniqueServerName()
        let jobs = Self.variedJobs + (0..<300).map { sampleJob($0) }
        let first = try await openPostgresStore(name)
        try await first.commit(QueueBatch(added: jobs))
        try await first.commit(QueueBatch(added: [sampleJob(5, retries: 2)], removedHandles: [sampleJob(7).handle]))
        await first.close()

        let replacement = try await openPostgresStore(name)
        var expected = jobs
        expected[Self.variedJobs.count + 5] = sampleJob(5, retries: 2)
        expected.remove(at: Self.variedJobs.count + 7)
        #expect(try await replacement.loadAll() == expected)
        await replacement.close()
        await removeRows(of: name)
    }

    /// The replacement scenario after a crash: the first store's session is ended (as when its server
    /// or machine dies), a replacement gets the lock and the jobs, and the first store, should it come
    /// back, cannot take the name over again.
    @Test func aReplacementGetsTheJobsOfAServerWhoseConnectionDied() async throws {
        let name = PostgresTestDatabase.uniqueServerName()
        let jobs = (0..<500).map { sampleJob($0) }
        let first = try await openPostgresStore(name)
        do {
            for batch in 0..<5 {
                try await first.commit(QueueBatch(added: Array(jobs[(batch * 100)..<(batch * 100 + 100)])))
            }
            try await terminateSession(of: name)

            let replacement = try await openPostgresStore(name, lockWait: .seconds(5))
            #expect(try await replacement.loadAll() == jobs)
            try await replacement.commit(QueueBatch(removedHandles: [sampleJob(0).handle]))

            let error = await #expect(throws: QueueStoreError.self) {
                try await first.commit(QueueBatch(added: [sampleJob(999)]))
            }
            #expect(error?.code == .locked)
            #expect(error?.message.contains("another gearlock server named \"\(name)\"") == true)
            #expect(try await replacement.loadAll() == Array(jobs.dropFirst()))
            await replacement.close()

            // Even with the name free again, the first store does not take it back: its jobs are the
            // replacement's now.
            let again = await #expect(throws: QueueStoreError.self) { try await first.loadAll() }
            #expect(again?.code == .locked)
            #expect(try await lockHolder(of: name) == nil)
        } catch {
            await first.close()
            throw error
        }
        await first.close()
        await removeRows(of: name)
    }

    // MARK: Lost connections

    /// A store whose session is ended between commits connects again (taking its lock again) and goes
    /// on; a commit that runs into the broken connection fails with `.ioError` and stores nothing.
    @Test func aStoreConnectsAgainAfterItsConnectionIsLost() async throws {
        try await withPostgresStore { store, name in
            try await store.commit(QueueBatch(added: [sampleJob(1)]))
            try await terminateSession(of: name)
            var committed = [sampleJob(1)]
            // The store may or may not have noticed the end of its connection before this commit.
            do {
                try await store.commit(QueueBatch(added: [sampleJob(2)]))
                committed.append(sampleJob(2))
            } catch let error as QueueStoreError {
                #expect(error.code == .ioError)
                #expect(error.message.contains("lost"))
            }
            try await store.commit(QueueBatch(added: [sampleJob(3)]))
            committed.append(sampleJob(3))
            #expect(try await store.loadAll() == committed)
            #expect(try await lockHolder(of: name) != nil)
        }
    }

    /// A commit that hangs (here on a row another session has locked) fails with `.ioError` after the
    /// commit timeout and is rolled back; the store connects again, ends its old session that still
    /// holds the name's lock, and goes on. The timeout is 6 s: the commits here that must succeed
    /// take seconds on a loaded CI machine.
    @Test func aCommitThatGetsNoAnswerFailsAndChangesNothing() async throws {
        try await withPostgresStore(commitTimeout: .seconds(6)) { store, name in
            let kept = (0..<5).map { sampleJob($0) }
            try await store.commit(QueueBatch(added: kept))
            let oldSession = try #require(try await lockHolder(of: name))

            let blocker = try await connectToTestDatabase()
            try await blocker.query("BEGIN", logger: testLogger)
            _ = try await blocker.query(
                "SELECT 1 FROM gearlock_jobs WHERE server = \(name) AND handle = \(sampleJob(2).handle) FOR UPDATE",
                logger: testLogger
            ).collect()

            let batch = QueueBatch(added: [sampleJob(10), sampleJob(11)], removedHandles: [sampleJob(2).handle])
            let error = await #expect(throws: QueueStoreError.self) { try await store.commit(batch) }
            #expect(error?.code == .ioError)
            #expect(error?.message.contains("did not answer") == true)

            // Reading connects again; the old session, still blocked with the lock, is ended.
            #expect(try await store.loadAll() == kept)
            let newSession = try await lockHolder(of: name)
            #expect(newSession != nil && newSession != oldSession)

            try await blocker.query("ROLLBACK", logger: testLogger)
            try await blocker.close()
            try await store.commit(batch)
            #expect(try await store.loadAll() == [0, 1, 3, 4, 10, 11].map { sampleJob($0) })
        }
    }

    // MARK: Clear errors, never the password

    @Test func aWrongPasswordIsRefusedWithoutTheWrongPasswordInTheMessage() async throws {
        let password = "Wr0ng-Secret-\(UInt32.random(in: 1...UInt32.max))"
        let error = await postgresOpeningError(url: try PostgresTestDatabase.url(withPassword: password))
        let location = try PostgresTestDatabase.location()
        #expect(error?.code == .cannotOpen)
        #expect(error?.message.contains(location.endpoint) == true)
        #expect(error?.message.contains("refused user \"\(location.username)\"") == true)
        #expect(error?.message.contains("28P01") == true)
        #expect(error?.message.contains(password) == false)
        #expect(error?.description.contains(password) == false)
        #expect(error?.path?.contains(password) == false)
        #expect(error?.path == "postgres://\(location.username)@\(location.endpoint)")
    }

    @Test func theDefaultPasswordIsUsedWhenTheURLHasNone() async throws {
        let location = try PostgresTestDatabase.location()
        let withoutPassword = "postgres://\(location.username)@\(location.endpoint)"
        let store = try await PostgresQueueStore.open(
            url: withoutPassword, serverName: PostgresTestDatabase.uniqueServerName("default-password"),
            defaultPassword: location.password, logger: testLogger)
        #expect(try await store.loadAll() == [])
        await store.close()
        // The URL's own password wins over the default.
        let wrongDefault = try await PostgresQueueStore.open(
            url: try PostgresTestDatabase.url(), serverName: PostgresTestDatabase.uniqueServerName("url-password"),
            defaultPassword: "not-the-password", logger: testLogger)
        await wrongDefault.close()
    }

    @Test func aMissingDatabaseIsNamed() async throws {
        let database = "gearlock_missing_\(UInt32.random(in: 1...UInt32.max))"
        let error = await postgresOpeningError(url: try PostgresTestDatabase.url(withDatabase: database))
        let location = try PostgresTestDatabase.location()
        #expect(error?.code == .cannotOpen)
        #expect(error?.message.contains("the database \"\(database)\" does not exist") == true)
        if let password = location.distinctivePassword { #expect(error?.message.contains(password) == false) }
    }

    @Test func anUnreachableServerIsNamed() async throws {
        // Port 1 on loopback: nothing listens there, so the connection is refused at once.
        let password = "Secret-\(UInt32.random(in: 1...UInt32.max))"
        let error = await postgresOpeningError(url: "postgres://gearlock:\(password)@127.0.0.1:1/gearlock_test")
        #expect(error?.code == .cannotOpen)
        #expect(error?.message.contains("cannot connect to PostgreSQL at 127.0.0.1:1/gearlock_test") == true)
        #expect(error?.message.contains(password) == false)
        #expect(error?.path == "postgres://gearlock@127.0.0.1:1/gearlock_test")
    }

    @Test func anEmptyServerNameIsRefused() async throws {
        let error = await postgresOpeningError(url: try PostgresTestDatabase.url(), serverName: "")
        #expect(error?.code == .cannotOpen)
        #expect(error?.message.contains("server name is empty") == true)
    }
}
