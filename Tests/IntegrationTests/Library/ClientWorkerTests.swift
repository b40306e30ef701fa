import Foundation
import GearmanProtocol
import Logging
import NIOCore
import ServiceLifecycle
import Testing

@testable import Gearman

private struct HandlerFailure: Error {}

/// The state letter of a process (`R`, `S`, `T` for stopped, …), from /proc.
private func processState(_ pid: Int32) -> String? {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
        let close = stat.lastIndex(of: ")")
    else { return nil }
    return stat[stat.index(after: close)...].split(separator: " ").first.map(String.init)
}

private func reversed(_ buffer: ByteBuffer) -> ByteBuffer {
    ByteBuffer(string: String(String(buffer: buffer).reversed()))
}

@Suite("Swift client and worker on loopback", .serialized, .timeLimit(.minutes(5)))
struct ClientWorkerTests {
    /// 64 MiB, made once for both server kinds (the machine running the tests may be small).
    static let bigPayload = seededRandomBytes(count: 64 << 20, seed: 0x4745_4152)

    // MARK: Foreground jobs and their events

    @Test("a foreground job: status, data and warning in order, then the result", arguments: ServerKind.allCases)
    func foregroundEventsInOrder(kind: ServerKind) async throws {
        try await withTestServer(kind) { server in
            let worker = GearmanWorker(configuration: .init(connection: libraryOptions(server)))
            worker.register(function: "events") { job in
                job.sendStatus(numerator: 1, denominator: 3)
                job.sendData(ByteBuffer(string: "chunk-1"))
                job.sendWarning(ByteBuffer(string: "careful"))
                job.sendStatus(numerator: 2, denominator: 3)
                job.sendData(ByteBuffer(string: "chunk-2"))
                return reversed(job.payload)
            }
            let client = GearmanClient(configuration: .init(connection: libraryOptions(server)))
            defer { client.shutdown() }
            try await withWorker(worker) {
                let job = try await client.submitJob(
                    function: "events", payload: ByteBuffer(string: "hello"), timeout: .seconds(30))
                #expect(job.handle.server == GearmanServerAddress(host: server.host, port: server.port))
                var events: [GearmanJobEvent] = []
                for try await event in job.events { events.append(event) }
                #expect(
                    events == [
                        .status(numerator: 1, denominator: 3), .data(ByteBuffer(string: "chunk-1")),
                        .warning(ByteBuffer(string: "careful")), .status(numerator: 2, denominator: 3),
                        .data(ByteBuffer(string: "chunk-2")), .completed(ByteBuffer(string: "olleh")),
                    ])
                // The plain form returns only the result.
                let result = try await client.submit(function: "events", payload: "abc", timeout: .seconds(30))
                #expect(String(buffer: result) == "cba")
            }
        }
    }

    @Test("WORK_EXCEPTION reaches the client as .jobException with the payload; WORK_FAIL as .jobFailed", arguments: ServerKind.allCases)
    func exceptionAndFailure(kind: ServerKind) async throws {
        try await withTestServer(kind) { server in
            let worker = GearmanWorker(configuration: .init(connection: libraryOptions(server)))
            worker.register(function: "raise") { job in
                job.sendData(ByteBuffer(string: "before"))
                throw GearmanJobException(payload: ByteBuffer(string: "stack: \(String(buffer: job.payload))"))
            }
            worker.register(function: "fail") { job in
                job.sendData(ByteBuffer(string: "partial"))
                throw HandlerFailure()
            }
            let client = GearmanClient(configuration: .init(connection: libraryOptions(server)))
            let plain = GearmanClient(configuration: .init(connection: libraryOptions(server), exceptions: false))
            defer {
                client.shutdown()
                plain.shutdown()
            }
            try await withWorker(worker) {
                let exception = await expectGearmanError(.jobException) {
                    try await client.submit(function: "raise", payload: "x", timeout: .seconds(30))
                }
                #expect(exception?.payload == ByteBuffer(string: "stack: x"))
                #expect(exception?.jobHandle?.isEmpty == false)

                await expectGearmanError(.jobFailed) {
                    try await client.submit(function: "fail", payload: "y", timeout: .seconds(30))
                }

                // The events that came before the end are delivered; the end throws.
                let job = try await client.submitJob(function: "fail", payload: ByteBuffer(string: "z"), timeout: .seconds(30))
                var events: [GearmanJobEvent] = []
                let failure = await expectGearmanError(.jobFailed) {
                    for try await event in job.events { events.append(event) }
                }
                #expect(events == [.data(ByteBuffer(string: "partial"))])
                #expect(failure?.jobHandle == job.handle.handle)

                // A client that did not ask for exceptions gets WORK_FAIL instead.
                await expectGearmanError(.jobFailed) {
                    try await plain.submit(function: "raise", payload: "x", timeout: .seconds(30))
                }
            }
        }
    }

    // MARK: Background jobs, priorities, coalescing, epoch, reduce

    @Test("background jobs return a handle at JOB_CREATED; a worker started later drains them", arguments: ServerKind.allCases)
    func backgroundDrain(kind: ServerKind) async throws {
        try await withTestServer(kind) { server in
            let client = GearmanClient(configuration: .init(connection: libraryOptions(server)))
            defer { client.shutdown() }
            var handles: Set<String> = []
            for index in 0..<20 {
                let handle = try await client.submitBackground(
                    function: "bg", payload: ByteBuffer(string: "job-\(index)"), timeout: .seconds(20))
                #expect(handle.server.port == server.port)
                handles.insert(handle.handle)
            }
            #expect(handles.count == 20)
            #expect(try await server.admin("status") == "bg\t20\t0\t0\n.\n")

            let seen = Recorder<String>()
            let worker = GearmanWorker(configuration: .init(connection: libraryOptions(server), concurrency: 4))
            worker.register(function: "bg") { job in
                seen.append("\(job.handle) \(String(buffer: job.payload))")
                return ByteBuffer()
            }
            try await withWorker(worker) {
                try await seen.waitForCount(20)
                try await server.adminEventually("status") { $0.hasPrefix("bg\t0\t0\t") }
            }
            #expect(Set(seen.all.map { String($0.split(separator: " ")[0]) }) == handles)
            #expect(Set(seen.all.map { String($0.split(separator: " ")[1]) }) == Set((0..<20).map { "job-\($0)" }))
        }
    }

    @Test("the three priorities: high before normal before low", arguments: ServerKind.allCases)
    func priorities(kind: ServerKind) async throws {
        try await withTestServer(kind) { server in
            let client = GearmanClient(configuration: .init(connection: libraryOptions(server)))
            defer { client.shutdown() }
            let submissions: [(String, JobPriority)] = [
                ("low-1", .low), ("normal-1", .normal), ("high-1", .high), ("low-2", .low), ("normal-2", .normal),
                ("high-2", .high),
            ]
            for (payload, priority) in submissions {
                _ = try await client.submitBackground(
                    function: "prio", payload: ByteBuffer(string: payload), priority: priority, timeout: .seconds(20))
            }
            // A foreground HIGH job joins the queue too.
            let foreground = try await client.submitJob(
                function: "prio", payload: ByteBuffer(string: "high-fg"), priority: .high, timeout: .seconds(30))
            let order = Recorder<String>()
            let worker = GearmanWorker(configuration: .init(connection: libraryOptions(server), concurrency: 1))
            worker.register(function: "prio") { job in
                order.append(String(buffer: job.payload))
                return job.payload
            }
            try await withWorker(worker) {
                #expect(String(buffer: try await foreground.result()) == "high-fg")
                try await order.waitForCount(7)
            }
            #expect(order.all == ["high-1", "high-2", "high-fg", "normal-1", "normal-2", "low-1", "low-2"])
        }
    }

    @Test("one unique from two clients is one job: same handle, one run, both get the result", arguments: ServerKind.allCases)
    func uniqueCoalescingAcrossClients(kind: ServerKind) async throws {
        try await withTestServer(kind) { server in
            let started = Gate()
            let release = Gate()
            let runs = Recorder<String>()
            let worker = GearmanWorker(configuration: .init(connection: libraryOptions(server), concurrency: 2))
            worker.register(function: "coalesce") { job in
                runs.append(job.unique)
                started.open()
                try await release.wait()
                job.sendData(ByteBuffer(string: "late data"))
                return ByteBuffer(string: "result of \(String(buffer: job.payload))")
            }
            let first = GearmanClient(configuration: .init(connection: libraryOptions(server)))
            let second = GearmanClient(configuration: .init(connection: libraryOptions(server)))
            defer {
                first.shutdown()
                second.shutdown()
            }
            try await withWorker(worker) {
                let a = try await first.submitJob(
                    function: "coalesce", payload: ByteBuffer(string: "first"), unique: "the-key", timeout: .seconds(30))
                try await started.wait()
                let b = try await second.submitJob(
                    function: "coalesce", payload: ByteBuffer(string: "second"), unique: "the-key", timeout: .seconds(30))
                #expect(a.handle == b.handle)
                let status = try await first.status(ofUnique: "the-key", timeout: .seconds(20))
                #expect(status.isKnown && status.isRunning)
                #expect(status.waitingClients == 2)
                release.open()
                var bEvents: [GearmanJobEvent] = []
                for try await event in b.events { bEvents.append(event) }
                #expect(String(buffer: try await a.result()) == "result of first")
                #expect(
                    bEvents == [.data(ByteBuffer(string: "late data")), .completed(ByteBuffer(string: "result of first"))])
            }
            #expect(runs.all == ["the-key"])
        }
    }

    // gearmand attaches a connection once per submission and sends each WORK_* once per
    // attachment; the client joins the second submission locally so nothing arrives twice.
    @Test("one unique twice from the same client: each submission sees every event once", arguments: ServerKind.allCases)
    func uniqueCoalescingOnOneConnection(kind: ServerKind) async throws {
        try await withTestServer(kind) { server in
            let started = Gate()
            let release = Gate()
            let worker = GearmanWorker(configuration: .init(connection: libraryOptions(server)))
            worker.register(function: "twice") { job in
                started.open()
                try await release.wait()
                job.sendData(ByteBuffer(string: "d"))
                return ByteBuffer(string: "r")
            }
            let client = GearmanClient(configuration: .init(connection: libraryOptions(server)))
            defer { client.shutdown() }
            try await withWorker(worker) {
                let a = try await client.submitJob(function: "twice", payload: ByteBuffer(), unique: "u", timeout: .seconds(30))
                try await started.wait()
                let b = try await client.submitJob(function: "twice", payload: ByteBuffer(), unique: "u", timeout: .seconds(30))
                #expect(a.handle == b.handle)
                release.open()
                var aEvents: [GearmanJobEvent] = []
                for try await event in a.events { aEvents.append(event) }
                var bEvents: [GearmanJobEvent] = []
                for try await event in b.events { bEvents.append(event) }
                #expect(aEvents == [.data(ByteBuffer(string: "d")), .completed(ByteBuffer(string: "r"))])
                #expect(bEvents == [.data(ByteBuffer(string: "d")), .completed(ByteBuffer(string: "r"))])
                // Once the job is over, the same unique is a new job.
                release.open()
                let again = try await client.submitJob(function: "twice", payload: ByteBuffer(), unique: "u", timeout: .seconds(30))
                #expect(again.handle != a.handle)
                #expect(String(buffer: try await again.result()) == "r")
            }
        }
    }

    @Test("an epoch job runs once its time has come, not before", arguments: ServerKind.allCases)
    func epochJob(kind: ServerKind) async throws {
        try await withTestServer(kind) { server in
            let ranAt = Recorder<Double>()
            // gearmand 1.1.20 never wakes a sleeping worker when an epoch job falls due (PROTOCOL
            // c.9): the worker's poll interval is what picks the job up there.
            let worker = GearmanWorker(
                configuration: .init(connection: libraryOptions(server), pollInterval: .milliseconds(250)))
            worker.register(function: "later") { job in
                ranAt.append(unixTimeFractional())
                return ByteBuffer()
            }
            let client = GearmanClient(configuration: .init(connection: libraryOptions(server)))
            defer { client.shutdown() }
            try await withWorker(worker) {
                let due = Int64(unixTime() + 2)
                let handle = try await client.submitBackground(
                    function: "later", payload: ByteBuffer(string: "e"), unique: "epoch-1", runAt: due, timeout: .seconds(20))
                let status = try await client.status(of: handle, timeout: .seconds(20))
                if unixTimeFractional() < Double(due) - 0.2 {  // a loaded machine may be past it already
                    #expect(status.isKnown && !status.isRunning)
                }
                try await ranAt.waitForCount(1, timeout: .seconds(20))  // a bound, generous for a loaded machine
                #expect(ranAt.all[0] >= Double(due), "ran at \(ranAt.all[0]), due at \(due)")
                // A time in the past runs at once.
                _ = try await client.submitBackground(
                    function: "later", payload: ByteBuffer(string: "now"), runAt: Int64(unixTime() - 10), timeout: .seconds(20))
                try await ranAt.waitForCount(2, timeout: .seconds(15))
            }
        }
    }

    @Test("reduce submissions reach a GRAB_JOB_UNIQ worker with their unique and payload", arguments: ServerKind.allCases)
    func reduceSubmission(kind: ServerKind) async throws {
        try await withTestServer(kind) { server in
            let seen = Recorder<String>()
            let worker = GearmanWorker(configuration: .init(connection: libraryOptions(server)))
            worker.register(function: "mapper") { job in
                seen.append("\(job.unique):\(String(buffer: job.payload))")
                return reversed(job.payload)
            }
            let client = GearmanClient(configuration: .init(connection: libraryOptions(server)))
            defer { client.shutdown() }
            try await withWorker(worker) {
                let job = try await client.submitJob(
                    function: "mapper", payload: ByteBuffer(string: "abc"), unique: "reduce-fg", reducer: "count",
                    timeout: .seconds(30))
                #expect(String(buffer: try await job.result()) == "cba")
                _ = try await client.submitBackground(
                    function: "mapper", payload: ByteBuffer(string: "def"), unique: "reduce-bg", reducer: "count",
                    timeout: .seconds(20))
                try await seen.waitForCount(2)
            }
            #expect(seen.all == ["reduce-fg:abc", "reduce-bg:def"])
        }
    }

    // MARK: Status and echo

    @Test("GET_STATUS and GET_STATUS_UNIQUE: queued, running with progress, then unknown", arguments: ServerKind.allCases)
    func status(kind: ServerKind) async throws {
        try await withTestServer(kind) { server in
            let client = GearmanClient(configuration: .init(connection: libraryOptions(server)))
            defer { client.shutdown() }
            let handle = try await client.submitBackground(
                function: "progress", payload: ByteBuffer(string: "p"), unique: "status-key", timeout: .seconds(20))
            var status = try await client.status(of: handle, timeout: .seconds(20))
            #expect(status == GearmanJobStatus(isKnown: true, isRunning: false, numerator: 0, denominator: 0))
            status = try await client.status(ofUnique: "status-key", timeout: .seconds(20))
            #expect(
                status == GearmanJobStatus(isKnown: true, isRunning: false, numerator: 0, denominator: 0, waitingClients: 0))

            let release = Gate()
            let worker = GearmanWorker(configuration: .init(connection: libraryOptions(server)))
            worker.register(function: "progress") { job in
                job.sendStatus(numerator: 3, denominator: 7)
                try await release.wait()
                return ByteBuffer()
            }
            try await withWorker(worker) {
                try await eventually("the job runs with 3/7") {
                    let status = try await client.status(of: handle, timeout: .seconds(20))
                    return status == GearmanJobStatus(isKnown: true, isRunning: true, numerator: 3, denominator: 7)
                }
                let byUnique = try await client.status(ofUnique: "status-key", timeout: .seconds(20))
                #expect(byUnique.isKnown && byUnique.isRunning && byUnique.numerator == 3 && byUnique.denominator == 7)
                release.open()
                try await eventually("the job is gone") {
                    try await !client.status(of: handle, timeout: .seconds(20)).isKnown
                }
            }
            let gone = try await client.status(ofUnique: "status-key", timeout: .seconds(20))
            #expect(!gone.isKnown && !gone.isRunning)
            let unknown = try await client.status(
                of: GearmanJobHandle(handle: "H:nowhere:1", server: handle.server), timeout: .seconds(20))
            #expect(!unknown.isKnown)
        }
    }

    @Test("ECHO returns the same bytes, small and large", arguments: ServerKind.allCases)
    func echo(kind: ServerKind) async throws {
        try await withTestServer(kind) { server in
            let client = GearmanClient(configuration: .init(connection: libraryOptions(server)))
            defer { client.shutdown() }
            #expect(try await client.echo(ByteBuffer(string: "ping"), timeout: .seconds(20)) == ByteBuffer(string: "ping"))
            #expect(try await client.echo(ByteBuffer(), timeout: .seconds(20)) == ByteBuffer())
            let big = seededRandomBytes(count: 1 << 20, seed: 7)
            let echoed = try await client.echo(big, timeout: .seconds(30))
            #expect(echoed == big)
        }
    }

    // MARK: Timeouts and cancellation

    @Test("a job that never completes times out, and the connection forgets its listener", arguments: ServerKind.allCases)
    func timeoutFreesBookkeeping(kind: ServerKind) async throws {
        try await withTestServer(kind) { server in
            let client = GearmanClient(configuration: .init(connection: libraryOptions(server)))
            defer { client.shutdown() }
            // Connected first, so the deadline below is all the job's.
            _ = try await client.echo(ByteBuffer(string: "warm"), timeout: .seconds(20))
            let connection = try #require(client.pool.currentConnection(to: 0))
            let start = ContinuousClock.now
            await expectGearmanError(.timeout) {
                try await client.submit(function: "nobody-does-this", payload: "x", timeout: .milliseconds(500))
            }
            let elapsed = ContinuousClock.now - start
            // The lower bound shows the deadline was kept; the upper only that the call did not hang
            // (a loaded 2-core CI machine has taken over 3 s to deliver the timeout).
            #expect(elapsed >= .milliseconds(490) && elapsed < .seconds(20), "\(elapsed)")
            // Under load JOB_CREATED itself may come after the deadline: its slot waits for it.
            try await eventually("the connection forgets the job") {
                let bookkeeping = await connection.bookkeeping()
                return bookkeeping.pendingRequests == 0 && bookkeeping.listeners == 0
            }
            // The same connection still works.
            #expect(try await client.echo(ByteBuffer(string: "still here"), timeout: .seconds(20)) == ByteBuffer(string: "still here"))
            #expect(client.pool.currentConnection(to: 0) === connection)

            // A timeout on the event sequence, too.
            let job = try await client.submitJob(
                function: "nobody-does-this", payload: ByteBuffer(string: "y"), timeout: .seconds(3))
            await expectGearmanError(.timeout) {
                for try await _ in job.events {}
            }
            #expect(await connection.bookkeeping().listeners == 0)
        }
    }

    @Test("a request whose reply is late times out; the late reply is consumed without harm")
    func lateJobCreated() async throws {
        // SIGSTOP freezes gearmand, so JOB_CREATED comes only after the client gave up.
        try await withTestServer(.gearmand) { server in
            let client = GearmanClient(configuration: .init(connection: libraryOptions(server)))
            defer { client.shutdown() }
            #expect(try await client.echo(ByteBuffer(string: "warm"), timeout: .seconds(20)) == ByteBuffer(string: "warm"))
            let connection = try #require(client.pool.currentConnection(to: 0))
            kill(server.pid, SIGSTOP)
            defer { kill(server.pid, SIGCONT) }
            try await eventually("gearmand is stopped") { processState(server.pid) == "T" }
            await expectGearmanError(.timeout) {
                try await client.submitJob(function: "frozen", payload: ByteBuffer(string: "x"), timeout: .milliseconds(200))
            }
            await expectGearmanError(.timeout) {
                try await client.echo(ByteBuffer(string: "e"), timeout: .milliseconds(100))
            }
            let frozen = await connection.bookkeeping()
            #expect(frozen.pendingRequests == 2, "the slots wait for their replies: \(frozen)")
            kill(server.pid, SIGCONT)
            #expect(try await client.echo(ByteBuffer(string: "after"), timeout: .seconds(20)) == ByteBuffer(string: "after"))
            let bookkeeping = await connection.bookkeeping()
            #expect(bookkeeping.pendingRequests == 0 && bookkeeping.listeners == 0, "\(bookkeeping)")
            #expect(client.pool.currentConnection(to: 0) === connection)
        }
    }

    @Test("a caller cancelled or timed out while the connection is set up does not fail the others")
    func sharedConnectionSetUp() async throws {
        // A stopped gearmand accepts TCP connections (the kernel does) but never answers OPTION_REQ.
        try await withTestServer(.gearmand) { server in
            var options = libraryOptions(server)
            options.connectTimeout = .seconds(60)
            let client = GearmanClient(configuration: .init(connection: options))
            defer { client.shutdown() }
            kill(server.pid, SIGSTOP)
            defer { kill(server.pid, SIGCONT) }
            try await eventually("gearmand is stopped") { processState(server.pid) == "T" }
            let cancelled = Task { try await client.echo(ByteBuffer(string: "cancelled")) }
            let patient = Task { try await client.echo(ByteBuffer(string: "patient"), timeout: .seconds(50)) }
            try await Task.sleep(for: .milliseconds(100))
            var start = ContinuousClock.now
            await expectGearmanError(.timeout) {
                try await client.echo(ByteBuffer(string: "hurried"), timeout: .milliseconds(200))
            }
            #expect(ContinuousClock.now - start < .seconds(20), "the deadline, not the 60 s connect timeout")
            start = ContinuousClock.now
            cancelled.cancel()
            if case .failure(let error) = await cancelled.result {
                #expect((error as? GearmanError)?.code == .cancelled, "\(error)")
            } else {
                Issue.record("expected .cancelled")
            }
            #expect(ContinuousClock.now - start < .seconds(20))
            kill(server.pid, SIGCONT)
            #expect(try await patient.value == ByteBuffer(string: "patient"))
            #expect(!client.pool.isBackingOff(0))
        }
    }

    @Test("cancelling the waiting task returns promptly with .cancelled; the connection stays usable", arguments: ServerKind.allCases)
    func cancellation(kind: ServerKind) async throws {
        try await withTestServer(kind) { server in
            let started = Gate()
            // Three slots: cancelling a client does not stop the worker's "forever" jobs.
            let worker = GearmanWorker(configuration: .init(connection: libraryOptions(server), concurrency: 3))
            worker.register(function: "forever") { job in
                started.open()
                try await Task.sleep(for: .seconds(60))
                return ByteBuffer()
            }
            worker.register(function: "quick") { job in reversed(job.payload) }
            let client = GearmanClient(configuration: .init(connection: libraryOptions(server)))
            defer { client.shutdown() }
            try await withWorker(worker) {
                let waiting = Task { try await client.submit(function: "forever", payload: "x") }
                try await started.wait()
                let connection = try #require(client.pool.currentConnection(to: 0))
                // JOB_CREATED and JOB_ASSIGN go to different connections; either may be read first.
                try await eventually("the client listens") { await connection.bookkeeping().listeners == 1 }
                let start = ContinuousClock.now
                waiting.cancel()
                let outcome = await waiting.result
                // Promptly: the job itself sleeps 60 s.
                #expect(ContinuousClock.now - start < .seconds(20))
                switch outcome {
                case .success(let value): Issue.record("expected .cancelled, got \(value)")
                case .failure(let error): #expect((error as? GearmanError)?.code == .cancelled, "\(error)")
                }
                #expect(await connection.bookkeeping().listeners == 0)
                #expect(String(buffer: try await client.submit(function: "quick", payload: "abc", timeout: .seconds(30))) == "cba")
                #expect(client.pool.currentConnection(to: 0) === connection)

                // Cancelled while iterating the events of a job it already holds.
                let job = try await client.submitJob(function: "forever", payload: ByteBuffer(string: "y"))
                let iterating = Task {
                    var count = 0
                    for try await _ in job.events { count += 1 }
                    return count
                }
                try await Task.sleep(for: .milliseconds(50))
                iterating.cancel()
                if case .failure(let error) = await iterating.result {
                    #expect((error as? GearmanError)?.code == .cancelled, "\(error)")
                } else {
                    Issue.record("expected .cancelled")
                }
                try await eventually("the listener is gone") { await connection.bookkeeping().listeners == 0 }
            }
        }
    }

    @Test("a server ERROR fails that request only (.serverError with its code); the next ones still match", arguments: ServerKind.allCases)
    func serverErrorKeepsMatching(kind: ServerKind) async throws {
        try await withTestServer(kind) { server in
            let client = GearmanClient(configuration: .init(connection: libraryOptions(server)))
            defer { client.shutdown() }
            _ = try await client.submitBackground(function: "capped", payload: ByteBuffer(string: "1"), timeout: .seconds(20))
            #expect(try await server.admin("maxqueue capped 1") == "OK\r\n")
            // Several requests in flight at once: the ERROR answers the submission, the rest line up.
            async let echo1 = client.echo(ByteBuffer(string: "before"), timeout: .seconds(20))
            async let refused: GearmanJobHandle = client.submitBackground(
                function: "capped", payload: ByteBuffer(string: "2"), timeout: .seconds(20))
            async let echo2 = client.echo(ByteBuffer(string: "after"), timeout: .seconds(20))
            #expect(try await echo1 == ByteBuffer(string: "before"))
            do {
                let handle = try await refused
                Issue.record("expected QUEUE_ERROR, got \(handle)")
            } catch let error as GearmanError {
                #expect(error.code == .serverError && error.serverCode == "QUEUE_ERROR", "\(error)")
            }
            #expect(try await echo2 == ByteBuffer(string: "after"))
            await expectGearmanError(.serverError) {
                try await client.submit(function: "capped", payload: "3", timeout: .seconds(20))
            }
        }
    }

    @Test("a cancelled worker sends no WORK_FAIL: its job is requeued and another worker finishes it", arguments: ServerKind.allCases)
    func cancelledWorkerRequeues(kind: ServerKind) async throws {
        try await withTestServer(kind) { server in
            let started = Gate()
            let first = GearmanWorker(configuration: .init(connection: libraryOptions(server)))
            first.register(function: "handoff") { job in
                started.open()
                try await Task.sleep(for: .seconds(30))
                return ByteBuffer(string: "from the first")
            }
            let second = GearmanWorker(configuration: .init(connection: libraryOptions(server)))
            second.register(function: "handoff") { job in ByteBuffer(string: "from the second") }
            let client = GearmanClient(configuration: .init(connection: libraryOptions(server)))
            defer { client.shutdown() }
            let job = try await client.submitJob(function: "handoff", payload: ByteBuffer(), timeout: .seconds(30))
            try await withWorker(first) {
                try await started.wait()
            }
            let result = try await withWorker(second) { try await job.result() }
            #expect(String(buffer: result) == "from the second")
        }
    }

    @Test("no server listening: .noServerAvailable, promptly")
    func noServer() async throws {
        let (port, placeholder) = try PortPlaceholder.unusedPort()
        defer { withExtendedLifetime(placeholder) {} }
        let client = GearmanClient(configuration: .init(connection: libraryOptions(ports: [port])))
        defer { client.shutdown() }
        let start = ContinuousClock.now
        // Refused connections fail fast: neither call waits for its (long) timeout.
        await expectGearmanError(.noServerAvailable) {
            try await client.submit(function: "f", payload: "x", timeout: .seconds(60))
        }
        await expectGearmanError(.noServerAvailable) {
            try await client.submitBackground(function: "f", payload: ByteBuffer(), timeout: .seconds(60))
        }
        // Less than half of one 60 s timeout: the refusals ended the calls, not the timeouts. (Alone
        // this takes ~0.1 s; beside the whole suite on 2 cores it has taken up to 16 s.)
        #expect(ContinuousClock.now - start < .seconds(30))
    }

    // MARK: Worker behaviour

    @Test("CAN_DO_TIMEOUT: the server takes an overdue job back and it runs again", arguments: ServerKind.allCases)
    func canDoTimeout(kind: ServerKind) async throws {
        try await withTestServer(kind) { server in
            let attempts = Recorder<String>()
            // Concurrency 1: gearmand drops a connection's CAN_DO_TIMEOUT timer on PRE_SLEEP (PROTOCOL
            // c.8), and a worker with a free slot sleeps while the job runs.
            let worker = GearmanWorker(configuration: .init(connection: libraryOptions(server), concurrency: 1))
            worker.register(function: "slow-once", timeout: .seconds(1)) { job in
                attempts.append(job.handle)
                if attempts.count == 1 {
                    try await Task.sleep(for: .milliseconds(1600))
                    return ByteBuffer(string: "too late")
                }
                return ByteBuffer(string: "in time")
            }
            let client = GearmanClient(configuration: .init(connection: libraryOptions(server)))
            defer { client.shutdown() }
            try await withWorker(worker) {
                let result = try await client.submit(function: "slow-once", payload: "x", timeout: .seconds(30))
                #expect(String(buffer: result) == "in time")
            }
            // Twice: late once, then in time (a machine loaded enough to delay even the quick second
            // answer past the second's deadline makes it three).
            #expect(attempts.count >= 2)
            #expect(Set(attempts.all).count == 1, "the same job ran again: \(attempts.all)")
        }
    }

    @Test("concurrency N: N jobs run at once, never more", arguments: ServerKind.allCases)
    func workerConcurrency(kind: ServerKind) async throws {
        try await withTestServer(kind) { server in
            let gauge = ConcurrencyGauge()
            let worker = GearmanWorker(configuration: .init(connection: libraryOptions(server), concurrency: 3))
            worker.register(function: "busy") { job in
                gauge.enter()
                defer { gauge.leave() }
                // Hold the slot until three run at once (or a while has passed), so a slow machine
                // still shows whether the worker reaches its concurrency.
                let deadline = ContinuousClock.now + .seconds(3)
                while gauge.current < 3 && ContinuousClock.now < deadline {
                    try await Task.sleep(for: .milliseconds(5))
                }
                try await Task.sleep(for: .milliseconds(20))
                return job.payload
            }
            let client = GearmanClient(configuration: .init(connection: libraryOptions(server)))
            defer { client.shutdown() }
            try await withWorker(worker) {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for index in 0..<12 {
                        group.addTask {
                            let result = try await client.submit(function: "busy", payload: "\(index)", timeout: .seconds(30))
                            #expect(String(buffer: result) == "\(index)")
                        }
                    }
                    try await group.waitForAll()
                }
            }
            #expect(gauge.maximum == 3)
        }
    }

    @Test("graceful stop finishes the job in hand and takes no new one", arguments: ServerKind.allCases)
    func gracefulStop(kind: ServerKind) async throws {
        try await withTestServer(kind) { server in
            let started = Gate()
            let release = Gate()
            let ran = Recorder<String>()
            let worker = GearmanWorker(configuration: .init(connection: libraryOptions(server), concurrency: 2))
            worker.register(function: "long") { job in
                ran.append(String(buffer: job.payload))
                started.open()
                try await release.wait()
                // A big result: it must be written before the worker closes its connection.
                return ByteBuffer(repeating: UInt8(ascii: "r"), count: 4 << 20)
            }
            let client = GearmanClient(configuration: .init(connection: libraryOptions(server)))
            defer { client.shutdown() }
            let group = ServiceGroup(services: [worker], logger: libraryLogger("service-group"))
            let running = Task { try await group.run() }
            do {
                let job = try await client.submitJob(function: "long", payload: ByteBuffer(string: "first"), timeout: .seconds(90))
                try await started.wait()
                await group.triggerGracefulShutdown()
                try await eventually("the worker heard of the shutdown") { worker.isShuttingDown }
                // A round trip on the worker's connection: any GRAB sent before the stop is answered.
                let workerConnection = try #require(worker.pool.currentConnection(to: 0))
                _ = try await workerConnection.request(.packet(.echoRequest(payload: ByteBuffer())), expecting: .echo, timeout: .seconds(20))
                // Queued after the stop began: this worker must leave it alone.
                let later = try await client.submitBackground(
                    function: "long", payload: ByteBuffer(string: "second"), timeout: .seconds(20))
                try await Task.sleep(for: .milliseconds(200))
                #expect(ran.all == ["first"])
                release.open()
                let result = try await job.result()
                #expect(result == ByteBuffer(repeating: UInt8(ascii: "r"), count: 4 << 20))
                try await within(.seconds(30), "the worker stops") {
                    try await running.value
                }
                #expect(ran.all == ["first"])
                let status = try await client.status(of: later, timeout: .seconds(20))
                #expect(status.isKnown && !status.isRunning)
            } catch {
                running.cancel()
                release.open()
                _ = await running.result
                throw error
            }
        }
    }

    @Test("the worker reconnects when its server comes back on the same port", arguments: ServerKind.allCases)
    func workerReconnects(kind: ServerKind) async throws {
        try await withRestartableServers(kind, count: 1) { servers in
            let server = servers[0]
            // A 60 s poll, so that only noticing the closed connection can make the job run in time.
            let worker = GearmanWorker(configuration: .init(connection: libraryOptions(ports: [server.port]), pollInterval: .seconds(60)))
            worker.register(function: "up") { job in reversed(job.payload) }
            let client = GearmanClient(configuration: .init(connection: libraryOptions(ports: [server.port])))
            defer { client.shutdown() }
            try await withWorker(worker) {
                #expect(String(buffer: try await client.submit(function: "up", payload: "before", timeout: .seconds(30))) == "erofeb")
                await server.stop()
                try await server.start()
                let start = ContinuousClock.now
                // The worker is asleep in PRE_SLEEP when the server goes: it must notice at once,
                // not at its next poll (60 s here).
                let result = try await client.submit(function: "up", payload: "after", timeout: .seconds(30))
                #expect(String(buffer: result) == "retfa")
                // Well under the 60 s poll, with room for a loaded machine.
                #expect(ContinuousClock.now - start < .seconds(30))
            }
        }
    }

    // MARK: Several servers

    @Test("two servers, one stopped mid-run: jobs in flight are resubmitted, new ones fail over, nothing is lost", arguments: ServerKind.allCases)
    func failover(kind: ServerKind) async throws {
        try await withRestartableServers(kind, count: 2) { servers in
            let ports = servers.map(\.port)
            let ranOn = Recorder<String>()
            let worker = GearmanWorker(configuration: .init(connection: libraryOptions(ports: ports), concurrency: 16))
            worker.register(function: "work") { job in
                ranOn.append("\(job.server.port) \(job.unique)")
                try await Task.sleep(for: .milliseconds(300))
                return ByteBuffer(string: "done \(String(buffer: job.payload))")
            }
            let client = GearmanClient(configuration: .init(connection: libraryOptions(ports: ports)))
            defer { client.shutdown() }
            // Which server each unique maps to, so the test knows both get work.
            let keys = (0..<30).map { "key-\($0)" }
            let onFirst = keys.filter { client.serverOrder(for: $0).first == 0 }
            #expect(!onFirst.isEmpty && onFirst.count < keys.count)
            try await withWorker(worker) {
                // The worker must be registered on both servers before the kill, or the jobs just wait.
                for server in servers {
                    try await server.testServer.adminEventually("status") { $0.contains("work\t") }
                }
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for key in keys {
                        group.addTask {
                            let result = try await client.submit(function: "work", payload: key, unique: key, timeout: .seconds(15))
                            #expect(String(buffer: result) == "done \(key)")
                        }
                    }
                    try await eventually("jobs running on the first server") {
                        ranOn.all.contains { $0.hasPrefix("\(ports[0]) ") }
                    }
                    await servers[0].stop()
                    // New submissions after the stop go to the second server, including keys that
                    // hash to the first; background ones are acknowledged there.
                    for key in onFirst.prefix(5) {
                        group.addTask {
                            let result = try await client.submit(
                                function: "work", payload: "new-\(key)", unique: "new-\(key)", timeout: .seconds(15))
                            #expect(String(buffer: result) == "done new-\(key)")
                        }
                    }
                    for index in 0..<5 {
                        let handle = try await client.submitBackground(
                            function: "work", payload: ByteBuffer(string: "bg-\(index)"), unique: "bg-\(index)",
                            timeout: .seconds(30))
                        #expect(handle.server.port == ports[1])
                    }
                    try await group.waitForAll()
                }
                try await eventually("the background jobs ran") {
                    ranOn.all.filter { $0.hasPrefix("\(ports[1]) bg-") }.count == 5
                }
            }
            // Every key that hashed to the stopped server ran on the second one in the end.
            let secondRan = Set(ranOn.all.filter { $0.hasPrefix("\(ports[1]) ") }.map { String($0.split(separator: " ")[1]) })
            #expect(Set(onFirst).isSubset(of: secondRan), "resubmitted: \(Set(onFirst).subtracting(secondRan)) missing")
            #expect(Set(keys).subtracting(onFirst).isSubset(of: secondRan))
        }
    }

    @Test("without a unique, jobs alternate between servers; a unique always picks the same server", arguments: ServerKind.allCases)
    func serverChoice(kind: ServerKind) async throws {
        try await withRestartableServers(kind, count: 2) { servers in
            let ports = servers.map(\.port)
            let client = GearmanClient(configuration: .init(connection: libraryOptions(ports: ports)))
            defer { client.shutdown() }
            var used: [Int] = []
            for index in 0..<6 {
                let handle = try await client.submitBackground(
                    function: "spread", payload: ByteBuffer(string: "\(index)"), timeout: .seconds(20))
                used.append(handle.server.port)
            }
            // Strictly alternating unless a connection set-up was slow enough to fail over.
            #expect(Set(used) == Set(ports), "\(used)")
            for key in ["alpha", "beta", "gamma", "delta"] {
                let expected = ports[client.serverOrder(for: key)[0]]
                for _ in 0..<3 {
                    let handle = try await client.submitBackground(
                        function: "spread", payload: ByteBuffer(), unique: key, timeout: .seconds(20))
                    #expect(handle.server.port == expected)
                }
                #expect(try await client.status(ofUnique: key, timeout: .seconds(20)).isKnown)
            }
            // The hash is the same in every process, so other clients coalesce with these jobs.
            #expect(GearmanClient.stableHash("alpha") == 0x8ac6_25bb_85ed_202b, "FNV-1a, not the per-process Hasher")
        }
    }

    @Test("a worker started while its server is down connects once the server is up", arguments: ServerKind.allCases)
    func workerWaitsForServer(kind: ServerKind) async throws {
        try await withRestartableServers(kind, count: 1) { servers in
            let server = servers[0]
            await server.stop()
            let worker = GearmanWorker(configuration: .init(connection: libraryOptions(ports: [server.port])))
            worker.register(function: "late-start") { job in reversed(job.payload) }
            let client = GearmanClient(configuration: .init(connection: libraryOptions(ports: [server.port])))
            defer { client.shutdown() }
            try await withWorker(worker) {
                try await Task.sleep(for: .milliseconds(300))
                try await server.start()
                let result = try await client.submit(function: "late-start", payload: "ok", timeout: .seconds(20))
                #expect(String(buffer: result) == "ko")
            }
        }
    }

    @Test("shutting the client down ends its waits; later calls fail with .shutDown", arguments: ServerKind.allCases)
    func clientShutdown(kind: ServerKind) async throws {
        try await withTestServer(kind) { server in
            let client = GearmanClient(configuration: .init(connection: libraryOptions(server)))
            let job = try await client.submitJob(function: "never-run", payload: ByteBuffer(), timeout: .seconds(30))
            let start = ContinuousClock.now
            client.shutdown()
            do {
                for try await event in job.events { Issue.record("unexpected \(event)") }
                Issue.record("the events ended without an error")
            } catch {
                let code = (error as? GearmanError)?.code
                #expect(code == .shutDown || code == .connectionClosed, "\(error)")
            }
            // Promptly: the job's own timeout is 30 s.
            #expect(ContinuousClock.now - start < .seconds(15))
            await expectGearmanError(.shutDown) {
                try await client.echo(ByteBuffer(string: "x"), timeout: .seconds(2))
            }
        }
    }

    // MARK: Load and size

    @Test("1,000 concurrent foreground submissions from one client each get their own result", arguments: ServerKind.allCases)
    func thousandConcurrentSubmissions(kind: ServerKind) async throws {
        try await withTestServer(kind) { server in
            let worker = GearmanWorker(configuration: .init(connection: libraryOptions(server), concurrency: 32))
            worker.register(function: "square") { job in
                let value = Int(String(buffer: job.payload))!
                return ByteBuffer(string: String(value * value))
            }
            let client = GearmanClient(configuration: .init(connection: libraryOptions(server)))
            defer { client.shutdown() }
            try await withWorker(worker) {
                // The 90 s deadline is a hang guard (the 1,000 take ~2 s alone, but this test starts
                // with every other suite on 2 cores); a failure says how many results had arrived.
                let results = await withTaskGroup(of: (Int, Result<String, GearmanError>).self) { group in
                    for index in 0..<1000 {
                        group.addTask {
                            do throws(GearmanError) {
                                let result = try await client.submit(function: "square", payload: String(index), timeout: .seconds(90))
                                return (index, .success(String(buffer: result)))
                            } catch {
                                return (index, .failure(error))
                            }
                        }
                    }
                    var results: [Int: Result<String, GearmanError>] = [:]
                    for await (index, result) in group { results[index] = result }
                    return results
                }
                let failures = results.compactMap { index, result -> String? in
                    guard case .failure(let error) = result else { return nil }
                    return "\(index): \(error)"
                }
                #expect(failures.isEmpty, "\(failures.count) of 1,000 failed, e.g. \(failures.prefix(3))")
                #expect(results.count == 1000)
                let wrong = results.filter { index, result in
                    guard case .success(let value) = result else { return false }
                    return value != String(index * index)
                }
                #expect(wrong.isEmpty, "\(wrong.prefix(5))")
                let connection = try #require(client.pool.currentConnection(to: 0))
                let bookkeeping = await connection.bookkeeping()
                #expect(bookkeeping.pendingRequests == 0 && bookkeeping.listeners == 0, "\(bookkeeping)")
            }
        }
    }

    @Test("a 64 MiB payload goes byte-exact through our client and worker", arguments: ServerKind.allCases)
    func payload64MiB(kind: ServerKind) async throws {
        try await withTestServer(kind) { server in
            let size = 64 << 20
            let payload = Self.bigPayload
            let workerSaw = Recorder<Bool>()
            let worker = GearmanWorker(configuration: .init(connection: libraryOptions(server)))
            worker.register(function: "mirror") { job in
                workerSaw.append(job.payload == payload)
                return job.payload
            }
            let client = GearmanClient(configuration: .init(connection: libraryOptions(server)))
            defer { client.shutdown() }
            try await withWorker(worker) {
                let result = try await client.submit(function: "mirror", payload: payload, timeout: .seconds(60))
                #expect(result.readableBytes == size)
                let same = result == payload  // a Bool, so a failure doesn't print 64 MiB
                #expect(same)
            }
            #expect(workerSaw.all == [true])
        }
    }

    // MARK: With the reference tools

    @Test("a `gearman -w` worker serves our client", arguments: ServerKind.allCases)
    func gearmanWorkerOurClient(kind: ServerKind) async throws {
        try await withTestServer(kind) { server in
            _ = try server.startGearman(["-w", "-f", "rev", "--", "rev"])
            let client = GearmanClient(configuration: .init(connection: libraryOptions(server)))
            defer { client.shutdown() }
            #expect(String(buffer: try await client.submit(function: "rev", payload: "hello", timeout: .seconds(30))) == "olleh")
            let job = try await client.submitJob(
                function: "rev", payload: ByteBuffer(string: "stressed"), priority: .high, timeout: .seconds(30))
            #expect(String(buffer: try await job.result()) == "desserts")
        }
    }

    @Test("our worker serves the `gearman` client", arguments: ServerKind.allCases)
    func ourWorkerGearmanClient(kind: ServerKind) async throws {
        try await withTestServer(kind) { server in
            let background = Recorder<String>()
            let worker = GearmanWorker(configuration: .init(connection: libraryOptions(server)))
            worker.register(function: "upper") { job in
                ByteBuffer(string: String(buffer: job.payload).uppercased())
            }
            worker.register(function: "note") { job in
                background.append(String(buffer: job.payload))
                return ByteBuffer()
            }
            worker.register(function: "chatty") { job in
                job.sendData(ByteBuffer(string: "part1-"))
                return ByteBuffer(string: "end")
            }
            try await withWorker(worker) {
                try await server.adminEventually("status") { $0.contains("upper\t") && $0.contains("note\t") }
                let result = try await server.gearman(["-f", "upper", "hello"])
                #expect(result.exitCode == 0 && result.stdoutString == "HELLO", "\(result)")
                let high = try await server.gearman(["-I", "-f", "upper", "high"])
                #expect(high.exitCode == 0 && high.stdoutString == "HIGH", "\(high)")
                let chatty = try await server.gearman(["-f", "chatty", "x"])
                #expect(chatty.exitCode == 0 && chatty.stdoutString == "part1-end", "\(chatty)")
                let submit = try await server.gearman(["-b", "-f", "note", "in the background"])
                #expect(submit.exitCode == 0, "\(submit)")
                try await background.waitForCount(1)
                #expect(background.all == ["in the background"])
            }
        }
    }
}
