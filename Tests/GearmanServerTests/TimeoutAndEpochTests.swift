import GearmanProtocol
import GearmanQueue
import NIOCore
import Testing

@testable import GearmanServer

@Suite struct TimeoutAndEpochTests {
    // MARK: CAN_DO_TIMEOUT

    @Test func timeoutParsing() {
        #expect(Machine.parseTimeout(buf("1")) == 1000)
        #expect(Machine.parseTimeout(buf("999")) == 1000)
        #expect(Machine.parseTimeout(buf("1000")) == 1000)
        #expect(Machine.parseTimeout(buf("2500")) == 2500)
        #expect(Machine.parseTimeout(buf("0")) == nil)
        #expect(Machine.parseTimeout(buf("-5")) == nil)
        #expect(Machine.parseTimeout(buf("soon")) == nil)
    }

    @Test func shortTimeoutIsRaisedToOneSecondAndRequeuesOnExpiry() throws {
        let h = Harness()
        let (client, handle) = try h.submitFromNewClient(Pkt.submit("f", "x"))
        let worker = h.connect()
        #expect(h.send(Pkt.canDoTimeout("f", "500"), from: worker).isEmpty)
        #expect(h.machine.nextTimerDeadline == nil)
        let start = h.clock.monotonicNanoseconds
        #expect(try h.grabHandle(worker) == handle)
        #expect(h.machine.nextTimerDeadline == start + 1_000_000_000)

        let sleeper = h.sleepingWorker("f")
        h.clock.advance(milliseconds: 999)
        #expect(h.fireTimer().isEmpty)  // early: nothing due
        #expect(h.send(Pkt.getStatus(handle), from: client).packets(to: client) == [Res.status(handle, known: true, running: true, "0", "0")])

        h.clock.advance(milliseconds: 1)
        let expired = h.fireTimer()
        #expect(expired.effects == [.send(.noop, to: sleeper)])  // requeued; client and worker not told
        #expect(h.adminReply("show jobs", from: client) == "\(String(buffer: handle))\t1\t0\t0\n.\n")

        // The late result of the timed-out worker is refused; the job is still there.
        #expect(h.send(Pkt.workComplete(handle, "late"), from: worker).effects == [.send(Res.jobNotFoundResult, to: worker)])
        #expect(h.grab(sleeper) == Res.jobAssign(handle, "f", "x"))
        #expect(h.send(Pkt.workComplete(handle, "ok"), from: sleeper).effects == [.send(Pkt.workComplete(handle, "ok"), to: client)])
    }

    @Test func theSameWorkerMayRegrabATimedOutJob() throws {
        let h = Harness()
        let (client, handle) = try h.submitFromNewClient(Pkt.submit("f", "x"))
        let worker = h.connect()
        h.send(Pkt.canDoTimeout("f", "2500"), from: worker)
        let start = h.clock.monotonicNanoseconds
        _ = try h.grabHandle(worker)
        #expect(h.machine.nextTimerDeadline == start + 2_500_000_000)
        h.clock.advance(milliseconds: 2500)
        #expect(h.fireTimer().packets(to: client).isEmpty)
        #expect(try h.grabHandle(worker) == handle)
        #expect(h.machine.nextTimerDeadline == start + 5_000_000_000)
        // The new assignment is the worker's again; the old deadline does not touch it.
        #expect(h.send(Pkt.workStatus(handle, "1", "2"), from: worker).packets(to: client) == [Pkt.workStatus(handle, "1", "2")])
    }

    @Test func timeoutExpiryCountsAsARetry() throws {
        let h = Harness { $0.jobRetries = 1 }
        let (client, handle) = try h.submitFromNewClient(Pkt.submitBG("f", unique: "u", "x"))
        let fg = h.connect()
        _ = try h.submit(Pkt.submit("f", unique: "u", "x"), from: fg)
        let worker = h.connect()
        h.send(Pkt.canDoTimeout("f", "1000"), from: worker)
        _ = try h.grabHandle(worker)
        h.clock.advance(seconds: 1)
        let expired = h.fireTimer()
        #expect(expired.effects == [.send(.workFail(handle: handle), to: fg), .unpersist(handle: handle)])
        #expect(expired.packets(to: client).isEmpty)
        #expect(h.grab(worker) == .noJob)
    }

    @Test func zeroOrNegativeTimeoutMeansNone() throws {
        for timeout in ["0", "-1"] {
            let h = Harness()
            let (client, handle) = try h.submitFromNewClient(Pkt.submit("f", "x"))
            let worker = h.connect()
            h.send(Pkt.canDoTimeout("f", timeout), from: worker)
            _ = try h.grabHandle(worker)
            #expect(h.machine.nextTimerDeadline == nil)
            h.clock.advance(seconds: 3600)
            #expect(h.fireTimer().isEmpty)
            #expect(h.send(Pkt.workComplete(handle, "r"), from: worker).packets(to: client) == [Pkt.workComplete(handle, "r")])
        }
    }

    @Test func aJobFinishedInTimeIsNotRequeued() throws {
        let h = Harness()
        let (client, handle) = try h.submitFromNewClient(Pkt.submit("f", "x"))
        let worker = h.connect()
        h.send(Pkt.canDoTimeout("f", "1000"), from: worker)
        _ = try h.grabHandle(worker)
        h.clock.advance(milliseconds: 500)
        #expect(h.send(Pkt.workComplete(handle, "r"), from: worker).packets(to: client) == [Pkt.workComplete(handle, "r")])
        h.clock.advance(seconds: 5)
        #expect(h.fireTimer().isEmpty)
        #expect(h.grab(worker) == .noJob)
    }

    @Test func aStaleDeadlineDoesNotTouchANewAssignment() throws {
        let h = Harness()
        let (client, handle) = try h.submitFromNewClient(Pkt.submit("f", "x"))
        let timed = h.connect()
        h.send(Pkt.canDoTimeout("f", "1000"), from: timed)
        _ = try h.grabHandle(timed)
        h.send(Pkt.cantDo("f"), from: timed)  // requeued before the deadline
        let patient = h.worker("f")
        #expect(try h.grabHandle(patient) == handle)
        h.clock.advance(seconds: 2)
        #expect(h.fireTimer().isEmpty)
        #expect(h.send(Pkt.workComplete(handle, "r"), from: patient).packets(to: client) == [Pkt.workComplete(handle, "r")])
        #expect(h.adminReply("show jobs", from: client) == ".\n")
    }

    @Test func plainCanDoAfterCanDoTimeoutClearsTheTimeout() throws {
        let h = Harness()
        _ = try h.submitFromNewClient(Pkt.submit("f", "x"))
        let worker = h.connect()
        h.send(Pkt.canDoTimeout("f", "1000"), from: worker)
        h.send(Pkt.canDo("f"), from: worker)
        _ = try h.grabHandle(worker)
        #expect(h.machine.nextTimerDeadline == nil)
    }

    // MARK: Epoch jobs

    @Test func futureEpochJobWaitsAndWakesTheSleeperWhenDue() throws {
        let h = Harness()
        let client = h.connect()
        let sleeper = h.sleepingWorker("f")
        let epoch = h.clock.wallClockSeconds + 10
        let outbox = h.send(Pkt.submitEpoch("f", unique: "e", epoch: String(epoch), "later"), from: client)
        let handle = try #require(
            outbox.packets(to: client).first.flatMap { packet -> ByteBuffer? in
                if case .jobCreated(let handle) = packet { return handle }
                return nil
            })
        // Persisted with its time; nobody woken yet.
        #expect(outbox.effects == [
            .persist(StoredJob(handle: handle, function: buf("f"), unique: buf("e"), payload: buf("later"), priority: .normal, epoch: epoch)),
            .send(.jobCreated(handle: handle), to: client),
        ])
        #expect(h.machine.nextTimerDeadline == h.clock.monotonicNanoseconds + 10_000_000_000)

        let other = h.worker("f")
        #expect(h.grab(other) == .noJob)
        // PRE_SLEEP does not count a job that is not due.
        #expect(h.send(.preSleep, from: other).isEmpty)

        h.clock.advance(seconds: 9)
        #expect(h.fireTimer().isEmpty)
        #expect(h.grab(sleeper) == .noJob)
        #expect(h.send(.preSleep, from: sleeper).isEmpty)

        h.clock.advance(seconds: 1)
        let due = h.fireTimer()
        #expect(Set(due.recipients(of: .noop)) == [sleeper, other])
        #expect(due.recipients(of: .noop).count == 2)
        #expect(h.grab(sleeper) == Res.jobAssign(handle, "f", "later"))
        #expect(h.machine.nextTimerDeadline == nil)
    }

    @Test func epochInThePastOrNowRunsAtOnce() throws {
        let h = Harness()
        let sleeper = h.sleepingWorker("f")
        let client = h.connect()
        let now = h.clock.wallClockSeconds
        let past = h.send(Pkt.submitEpoch("f", unique: "p", epoch: String(now - 100), "past"), from: client)
        #expect(past.recipients(of: .noop) == [sleeper])
        let present = h.send(Pkt.submitEpoch("f", unique: "n", epoch: String(now), "now"), from: client)
        #expect(present.packets(to: client).count == 1)
        #expect(h.machine.nextTimerDeadline == nil)
        guard case .jobAssign(_, _, let first)? = h.grab(sleeper), case .jobAssign(_, _, let second)? = h.grab(sleeper)
        else {
            Issue.record("expected two assignments")
            return
        }
        #expect([String(buffer: first), String(buffer: second)] == ["past", "now"])
    }

    @Test func nonNumericEpochIsAnError() {
        let h = Harness()
        let client = h.connect()
        for epoch in ["soon", "", "12x"] {
            let outbox = h.send(Pkt.submitEpoch("f", unique: "e", epoch: epoch, "x"), from: client)
            #expect(outbox.effects == [.send(Res.error("INVALID_ARGUMENT", "Epoch time is not a decimal number"), to: client)])
        }
        #expect(h.adminReply("show jobs", from: client) == ".\n")
    }

    @Test func aScheduledEpochJobCountsAsQueuedNormal() throws {
        let h = Harness()
        let client = h.connect()
        _ = try h.submit(Pkt.submitEpoch("f", unique: "e", epoch: String(h.clock.wallClockSeconds + 60), "x"), from: client)
        _ = try h.submit(Pkt.submitBG("f", unique: "l", "y", priority: .low), from: client)
        #expect(h.adminReply("prioritystatus", from: client) == "f\t0\t1\t1\t0\n.\n")
        #expect(h.adminReply("status", from: client) == "f\t2\t0\t0\n.\n")
        h.clock.advance(seconds: 60)
        h.fireTimer()
        #expect(h.adminReply("prioritystatus", from: client) == "f\t0\t1\t1\t0\n.\n")
    }

    @Test func epochJobsBecomeDueInTimeOrder() throws {
        let h = Harness()
        let client = h.connect()
        let now = h.clock.wallClockSeconds
        _ = try h.submit(Pkt.submitEpoch("f", unique: "b", epoch: String(now + 20), "twenty"), from: client)
        _ = try h.submit(Pkt.submitEpoch("f", unique: "a", epoch: String(now + 5), "five"), from: client)
        #expect(h.machine.nextTimerDeadline == h.clock.monotonicNanoseconds + 5_000_000_000)
        let worker = h.worker("f")
        h.clock.advance(seconds: 5)
        h.fireTimer()
        guard case .jobAssign(_, _, let payload)? = h.grab(worker) else {
            Issue.record("expected an assignment")
            return
        }
        #expect(String(buffer: payload) == "five")
        #expect(h.grab(worker) == .noJob)
        #expect(h.machine.nextTimerDeadline == h.clock.monotonicNanoseconds + 15_000_000_000)
    }

    @Test func aCancelledEpochJobNeverRuns() throws {
        let h = Harness()
        let client = h.connect()
        let handle = try h.submit(Pkt.submitEpoch("f", unique: "e", epoch: String(h.clock.wallClockSeconds + 5), "x"), from: client)
        #expect(h.adminReply("cancel job \(String(buffer: handle))", from: client) == "OK\r\n")
        let sleeper = h.sleepingWorker("f")
        h.clock.advance(seconds: 10)
        #expect(h.fireTimer().isEmpty)
        #expect(h.grab(sleeper) == .noJob)
    }

    @Test func timeoutAndEpochDeadlinesCombine() throws {
        let h = Harness()
        let client = h.connect()
        _ = try h.submit(Pkt.submitEpoch("f", unique: "e", epoch: String(h.clock.wallClockSeconds + 30), "x"), from: client)
        _ = try h.submit(Pkt.submit("f", "y"), from: client)
        let worker = h.connect()
        h.send(Pkt.canDoTimeout("f", "3000"), from: worker)
        let start = h.clock.monotonicNanoseconds
        _ = try h.grabHandle(worker)
        #expect(h.machine.nextTimerDeadline == start + 3_000_000_000)
    }

    // MARK: Hostile values

    /// A client must not be able to crash the server with an epoch centuries away.
    @Test func farFutureEpochDoesNotOverflowTheTimerDeadline() throws {
        let h = Harness()
        let client = h.connect()
        for epoch in [String(Int64.max), "99999999999"] {
            _ = try h.submit(Pkt.submitEpoch("f", unique: epoch, epoch: epoch, "x"), from: client)
            let deadline = try #require(h.machine.nextTimerDeadline)
            #expect(deadline > h.clock.monotonicNanoseconds)
            // The delay still fits a TimeAmount.
            #expect(deadline - h.clock.monotonicNanoseconds <= UInt64(Int64.max))
        }
        h.clock.advance(seconds: 3600)
        #expect(h.fireTimer().isEmpty)
        #expect(h.grab(h.worker("f")) == .noJob)
    }

    /// A worker must not be able to crash the server with an absurd CAN_DO_TIMEOUT.
    @Test func hugeCanDoTimeoutDoesNotOverflowTheDeadline() throws {
        let h = Harness()
        let (client, handle) = try h.submitFromNewClient(Pkt.submit("f", "x"))
        let worker = h.connect()
        h.send(Pkt.canDoTimeout("f", String(Int64.max)), from: worker)
        #expect(try h.grabHandle(worker) == handle)
        let deadline = try #require(h.machine.nextTimerDeadline)
        #expect(deadline > h.clock.monotonicNanoseconds)
        #expect(deadline - h.clock.monotonicNanoseconds <= UInt64(Int64.max))
        h.clock.advance(seconds: 3600)
        #expect(h.fireTimer().isEmpty)
        #expect(h.send(Pkt.workComplete(handle, "r"), from: worker).packets(to: client) == [Pkt.workComplete(handle, "r")])
    }
}
