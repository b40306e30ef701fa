import GearmanProtocol
import GearmanQueue
import NIOCore
import Testing

@testable import GearmanServer

@Suite struct PersistenceActionTests {
    @Test func backgroundSubmissionIsPersistedBeforeJobCreated() throws {
        let h = Harness()
        let client = h.connect()
        for (priority, name) in [(JobPriority.normal, "n"), (.high, "h"), (.low, "l")] {
            let outbox = h.send(Pkt.submitBG("f", unique: "u-\(name)", "payload-\(name)", priority: priority), from: client)
            guard case .jobCreated(let handle)? = outbox.packets(to: client).first else {
                Issue.record("no JOB_CREATED")
                return
            }
            let stored = StoredJob(
                handle: handle, function: buf("f"), unique: buf("u-\(name)"), payload: buf("payload-\(name)"),
                priority: priority)
            #expect(outbox.effects == [.persist(stored), .send(.jobCreated(handle: handle), to: client)])
        }
    }

    @Test func backgroundReduceJobIsPersistedWithItsReducer() throws {
        let h = Harness()
        let client = h.connect()
        let outbox = h.send(Pkt.submitReduce("f", unique: "u", reducer: "red", "p", background: true), from: client)
        guard case .jobCreated(let handle)? = outbox.packets(to: client).first else {
            Issue.record("no JOB_CREATED")
            return
        }
        let stored = StoredJob(
            handle: handle, function: buf("f"), unique: buf("u"), payload: buf("p"), priority: .normal,
            reducer: buf("red"))
        #expect(outbox.effects == [.persist(stored), .send(.jobCreated(handle: handle), to: client)])
    }

    @Test func endingABackgroundJobUnpersistsIt() throws {
        let h = Harness()
        let client = h.connect()
        let worker = h.worker("f")
        let endings: [(ByteBuffer) -> GearmanPacket] = [
            { Pkt.workComplete($0, "r") }, { .workFail(handle: $0) }, { Pkt.workException($0, "e") },
        ]
        for ending in endings {
            let handle = try h.submit(Pkt.submitBG("f", "x"), from: client)
            _ = try h.grabHandle(worker)
            #expect(h.send(Pkt.workStatus(handle, "1", "2"), from: worker).isEmpty)
            #expect(h.send(ending(handle), from: worker).effects == [.unpersist(handle: handle)])
        }
    }

    @Test func foregroundJobsAreNeverPersisted() throws {
        let h = Harness()
        let (client, handle) = try h.submitFromNewClient(Pkt.submit("f", unique: "u", "x"))
        let c2 = h.connect()
        let joined = h.send(Pkt.submit("f", unique: "u", "x"), from: c2)
        #expect(joined.persisted.isEmpty)
        let worker = h.worker("f")
        _ = try h.grabHandle(worker)
        h.close(worker)  // requeue
        let w2 = h.worker("f")
        _ = try h.grabHandle(w2)
        let done = h.send(Pkt.workComplete(handle, "r"), from: w2)
        #expect(done.persisted.isEmpty)
        #expect(done.unpersisted.isEmpty)
        let cancelled = try h.submit(Pkt.submit("f", "y"), from: client)
        let cancel = h.admin("cancel job \(String(buffer: cancelled))", from: client)
        #expect(cancel.unpersisted.isEmpty)
    }

    @Test func aBackgroundSubmissionJoiningAForegroundJobPersistsIt() throws {
        let h = Harness()
        let (fg, handle) = try h.submitFromNewClient(Pkt.submit("f", unique: "u", "payload", priority: .high))
        let bg = h.connect()
        let joined = h.send(Pkt.submitBG("f", unique: "u", "other"), from: bg)
        let stored = StoredJob(handle: handle, function: buf("f"), unique: buf("u"), payload: buf("payload"), priority: .high)
        #expect(joined.effects == [.persist(stored), .send(.jobCreated(handle: handle), to: bg)])
        // A second background submitter changes nothing.
        let again = h.send(Pkt.submitBG("f", unique: "u", "other"), from: h.connect())
        #expect(again.persisted.isEmpty)

        // The job now survives its foreground client and is unpersisted when it ends.
        h.close(fg)
        let worker = h.worker("f")
        #expect(try h.grabHandle(worker) == handle)
        #expect(h.send(Pkt.workComplete(handle, "r"), from: worker).effects == [.unpersist(handle: handle)])
    }

    @Test func aBackgroundJobJoiningARunningForegroundJobPersistsIt() throws {
        let h = Harness()
        let (fg, handle) = try h.submitFromNewClient(Pkt.submit("f", unique: "u", "payload"))
        let worker = h.worker("f")
        _ = try h.grabHandle(worker)
        let joined = h.send(Pkt.submitBG("f", unique: "u", "other"), from: h.connect())
        #expect(joined.persisted.map(\.handle) == [handle])
        let done = h.send(Pkt.workComplete(handle, "r"), from: worker)
        #expect(done.effects == [.send(Pkt.workComplete(handle, "r"), to: fg), .unpersist(handle: handle)])
    }

    @Test func aRequeuedBackgroundJobIsPersistedAgainWithItsRetries() throws {
        let h = Harness()
        let (_, handle) = try h.submitFromNewClient(Pkt.submitBG("f", unique: "u", "x"))
        let worker = h.worker("f")
        _ = try h.grabHandle(worker)
        let lost = h.close(worker)
        #expect(lost.persisted.map(\.handle) == [handle])
        #expect(lost.persisted.map(\.retries) == [1])
        #expect(lost.unpersisted.isEmpty)
    }

    /// `--queue memory`: the store keeps nothing, so the machine asks nothing of it and answers
    /// JOB_CREATED at once (the same replies, without a commit's bookkeeping per job).
    @Test func withoutDurabilityNothingIsPersistedAndJobCreatedIsImmediate() throws {
        let h = Harness(configure: { $0.persistsBackgroundJobs = false })
        h.autoCommit = false
        let client = h.connect()
        let worker = h.worker("f")
        let submitted = h.send(Pkt.submitBG("f", unique: "u", "x"), from: client)
        guard case .jobCreated(let handle)? = submitted.packets(to: client).first else {
            Issue.record("no JOB_CREATED without a commit: \(submitted.effects)")
            return
        }
        #expect(submitted.effects == [.send(.jobCreated(handle: handle), to: client)])
        // A foreground job joined by a background submission becomes background, still at once.
        let (_, foreground) = try h.submitFromNewClient(Pkt.submit("f", unique: "v", "y"))
        let joined = h.send(Pkt.submitBG("f", unique: "v", "y"), from: client)
        #expect(joined.effects == [.send(.jobCreated(handle: foreground), to: client)])
        #expect(try h.grabHandle(worker) == handle)
        // A requeue after the worker is lost, and the end of the job: no store traffic either.
        h.close(worker)
        let second = h.worker("f")
        #expect(try h.grabHandle(second) == foreground, "the requeued job went to the tail")
        #expect(try h.grabHandle(second) == handle)
        let ended = h.send(Pkt.workComplete(handle, "r"), from: second)
        #expect(ended.persisted.isEmpty && ended.unpersisted.isEmpty, "\(ended.effects)")
        #expect(h.machine.pendingPersists.isEmpty)
    }
}
