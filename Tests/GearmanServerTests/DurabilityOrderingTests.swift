import GearmanProtocol
import GearmanQueue
import NIOCore
import Testing

@testable import GearmanServer

/// JOB_CREATED for a background job goes out only after its commit, and nothing overtakes it.
@Suite struct DurabilityOrderingTests {
    @Test func jobCreatedWaitsForTheCommitAndLaterRepliesQueueBehindIt() throws {
        let h = Harness()
        h.autoCommit = false
        let client = h.connect()
        let submitted = h.send(Pkt.submitBG("f", "x"), from: client)
        let handle = try #require(submitted.persisted.first?.handle)
        #expect(submitted.packets(to: client).isEmpty, "no JOB_CREATED before the commit")
        #expect(h.send(.echoRequest(payload: buf("after")), from: client).packets(to: client).isEmpty)
        let committed = h.commit([handle])
        #expect(
            committed.packets(to: client) == [.jobCreated(handle: handle), .echoResponse(payload: buf("after"))])
        // Once released, replies flow at once again.
        #expect(h.send(.echoRequest(payload: buf("now")), from: client).packets(to: client) == [.echoResponse(payload: buf("now"))])
    }

    @Test func repliesKeepSubmissionOrderWhenCommitsCompleteOutOfOrder() throws {
        let h = Harness()
        h.autoCommit = false
        let client = h.connect()
        let first = try #require(h.send(Pkt.submitBG("f", "1"), from: client).persisted.first?.handle)
        let second = try #require(h.send(Pkt.submitBG("f", "2"), from: client).persisted.first?.handle)
        #expect(h.commit([second]).packets(to: client).isEmpty)
        #expect(h.commit([first]).packets(to: client) == [.jobCreated(handle: first), .jobCreated(handle: second)])
    }

    @Test func otherConnectionsAreNotHeld() throws {
        let h = Harness()
        h.autoCommit = false
        let background = h.connect()
        _ = h.send(Pkt.submitBG("f", "x"), from: background)
        let foreground = h.connect()
        let replies = h.send(Pkt.submit("f", "y"), from: foreground).packets(to: foreground)
        guard case .jobCreated? = replies.first else {
            Issue.record("expected JOB_CREATED at once, got \(replies)")
            return
        }
    }

    @Test func aFailedCommitRefusesTheSubmissionAndQueuesNothing() throws {
        let h = Harness()
        h.autoCommit = false
        let client = h.connect()
        let handle = try #require(h.send(Pkt.submitBG("f", unique: "u", "x"), from: client).persisted.first?.handle)
        let failed = h.failCommit([handle])
        #expect(failed.packets(to: client) == [.error(code: ErrorCode.queueError, text: "The job could not be stored durably")])
        #expect(failed.unpersisted == [handle])
        let admin = h.connect()
        #expect(h.adminReply("status", from: admin) == "f\t0\t0\t0\n.\n")
        // The unique is free again: a new submission creates a new job.
        let again = h.send(Pkt.submitBG("f", unique: "u", "x"), from: client)
        #expect(again.persisted.first.map { $0.handle != handle } == true)
    }

    @Test func aBackgroundSubmitterJoiningAnUncommittedJobWaitsForTheSameCommit() throws {
        let h = Harness()
        h.autoCommit = false
        let first = h.connect()
        let second = h.connect()
        let handle = try #require(h.send(Pkt.submitBG("f", unique: "u", "x"), from: first).persisted.first?.handle)
        let joined = h.send(Pkt.submitBG("f", unique: "u", "x"), from: second)
        #expect(joined.persisted.isEmpty && joined.packets(to: second).isEmpty)
        let committed = h.commit([handle])
        #expect(committed.packets(to: first) == [.jobCreated(handle: handle)])
        #expect(committed.packets(to: second) == [.jobCreated(handle: handle)])
    }

    @Test func aFailedCommitOfAForegroundJobMadeDurableLeavesItForeground() throws {
        let h = Harness()
        h.autoCommit = false
        let (client, handle) = try h.submitFromNewClient(Pkt.submit("f", unique: "u", "x"))
        let background = h.connect()
        #expect(h.send(Pkt.submitBG("f", unique: "u", "x"), from: background).persisted.map(\.handle) == [handle])
        #expect(h.failCommit([handle]).packets(to: background).first == .error(code: ErrorCode.queueError, text: "The job could not be stored durably"))
        // Still there for its foreground client, and not durable: its end unpersists nothing.
        let worker = h.worker("f")
        #expect(try h.grabHandle(worker) == handle)
        let done = h.send(Pkt.workComplete(handle, "r"), from: worker)
        #expect(done.packets(to: client) == [Pkt.workComplete(handle, "r")])
        #expect(done.unpersisted.isEmpty)
    }

    @Test func restoredJobsKeepHandlesOrderPriorityEpochAndRetries() throws {
        let h = Harness()
        let stored = [
            StoredJob(handle: buf("H:old:1"), function: buf("f"), unique: buf(""), payload: buf("a"), priority: .low, retries: 2),
            StoredJob(handle: buf("H:old:2"), function: buf("f"), unique: buf(""), payload: buf("b"), priority: .normal),
            StoredJob(handle: buf("H:old:3"), function: buf("f"), unique: buf("u"), payload: buf("c"), priority: .high),
            StoredJob(
                handle: buf("H:old:4"), function: buf("f"), unique: buf(""), payload: buf("later"), priority: .normal,
                epoch: h.clock.wallClockSeconds + 3600),
        ]
        h.machine.restore(stored)
        #expect(h.machine.takeActions().filter { if case .log = $0 { false } else { true } }.isEmpty, "nothing persisted again")
        let admin = h.connect()
        #expect(h.adminReply("prioritystatus", from: admin) == "f\t1\t2\t1\t0\n.\n")
        #expect(h.showJobs(from: admin).first == "H:old:1\t2\t0\t1")
        let worker = h.worker("f")
        #expect(try h.grabHandle(worker) == buf("H:old:3"))
        #expect(try h.grabHandle(worker) == buf("H:old:2"))
        #expect(try h.grabHandle(worker) == buf("H:old:1"))
        #expect(h.grab(worker) == .noJob, "the epoch job waits for its time")
        // A restored unique still coalesces.
        let client = h.connect()
        #expect(try h.submit(Pkt.submitBG("f", unique: "u", "c"), from: client) == buf("H:old:3"))
    }
}
