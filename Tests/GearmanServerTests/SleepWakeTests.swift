import GearmanProtocol
import NIOCore
import Testing

@testable import GearmanServer

@Suite struct SleepWakeTests {
    @Test func preSleepWithWorkPendingGetsAnImmediateNoop() throws {
        let h = Harness()
        _ = try h.submitFromNewClient(Pkt.submit("ps", "x"))
        let worker = h.worker("ps")
        #expect(h.send(.preSleep, from: worker).effects == [.send(.noop, to: worker)])
    }

    @Test func preSleepWithoutWorkSleepsSilently() throws {
        let h = Harness()
        _ = try h.submitFromNewClient(Pkt.submit("other", "x"))
        let worker = h.worker("ps")
        #expect(h.send(.preSleep, from: worker).isEmpty)
    }

    @Test func aSleepingWorkerGetsExactlyOneNoopPerSleep() throws {
        let h = Harness()
        let worker = h.sleepingWorker("f")
        let client = h.connect()
        let first = h.send(Pkt.submit("f", "1"), from: client)
        #expect(first.packets(to: worker) == [.noop])
        for payload in ["2", "3", "4"] {
            #expect(h.send(Pkt.submit("f", payload), from: client).packets(to: worker).isEmpty)
        }
        // After grabbing, the worker can be woken again once it sleeps.
        _ = try h.grabHandle(worker)
        #expect(h.send(.preSleep, from: worker).effects == [.send(.noop, to: worker)])  // work still queued
        _ = try h.grabHandle(worker)
        _ = try h.grabHandle(worker)
        _ = try h.grabHandle(worker)
        #expect(h.grab(worker) == .noJob)
        #expect(h.send(.preSleep, from: worker).isEmpty)
        #expect(h.send(Pkt.submitBG("f", "5"), from: client).packets(to: worker) == [.noop])
        #expect(h.send(Pkt.submitBG("f", "6"), from: client).packets(to: worker).isEmpty)
    }

    @Test func oneNoopPerSleepAcrossFunctions() throws {
        let h = Harness()
        let worker = h.sleepingWorker("a", "b")
        let client = h.connect()
        #expect(h.send(Pkt.submit("a", "1"), from: client).packets(to: worker) == [.noop])
        #expect(h.send(Pkt.submit("b", "2"), from: client).packets(to: worker).isEmpty)
    }

    @Test func onlySleepersOfThatFunctionAreWoken() throws {
        let h = Harness()
        let wa = h.sleepingWorker("a")
        let wb = h.sleepingWorker("b")
        let wab = h.sleepingWorker("a", "b")
        let client = h.connect()
        let outbox = h.send(Pkt.submit("a", "1"), from: client)
        #expect(outbox.packets(to: wb).isEmpty)
        #expect(Set(outbox.recipients(of: .noop)) == [wa, wab])
        #expect(outbox.recipients(of: .noop).count == 2)
        let outboxB = h.send(Pkt.submit("b", "2"), from: client)
        #expect(outboxB.recipients(of: .noop) == [wb])
    }

    @Test func workersThatNeverSleptGetNoNoop() throws {
        let h = Harness()
        let awake = h.worker("f")
        let grabbedButAwake = h.worker("f")
        #expect(h.grab(grabbedButAwake) == .noJob)
        let sleeper = h.sleepingWorker("f")
        let outbox = h.send(Pkt.submit("f", "x"), from: h.connect())
        #expect(outbox.recipients(of: .noop) == [sleeper])
        #expect(outbox.packets(to: awake).isEmpty)
        #expect(outbox.packets(to: grabbedButAwake).isEmpty)
    }

    @Test func grabEndsTheSleep() throws {
        let h = Harness()
        let worker = h.sleepingWorker("f")
        #expect(h.grab(worker) == .noJob)  // awake again, without PRE_SLEEP
        #expect(h.send(Pkt.submit("f", "x"), from: h.connect()).packets(to: worker).isEmpty)
    }

    @Test func workerWakeupOneWakesOneWorkerPerJobAndRotates() throws {
        let h = Harness { $0.workerWakeup = 1 }
        let workers = [h.sleepingWorker("f"), h.sleepingWorker("f"), h.sleepingWorker("f")]
        let client = h.connect()
        var woken: [ConnectionID] = []
        for payload in ["1", "2", "3"] {
            let noops = h.send(Pkt.submit("f", payload), from: client).recipients(of: .noop)
            #expect(noops.count == 1)
            woken += noops
        }
        #expect(Set(woken) == Set(workers))
        // Nobody left asleep: a fourth job wakes nobody.
        #expect(h.send(Pkt.submit("f", "4"), from: client).recipients(of: .noop).isEmpty)
    }

    /// With `workerWakeup` = 1, a worker that was woken, did its job and went back to sleep is not
    /// woken for the next job before the others had their turn (gearmand's rotating cursor).
    @Test func workerWakeupRotatesEvenWhenTheWokenWorkerSleepsAgain() throws {
        let h = Harness { $0.workerWakeup = 1 }
        let workers = [h.sleepingWorker("f"), h.sleepingWorker("f"), h.sleepingWorker("f")]
        let client = h.connect()
        var woken: [ConnectionID] = []
        for payload in ["1", "2", "3", "4"] {
            let noops = h.send(Pkt.submitBG("f", payload), from: client).recipients(of: .noop)
            #expect(noops.count == 1)
            guard let worker = noops.first else { return }
            woken.append(worker)
            _ = try h.grabHandle(worker)
            #expect(h.grab(worker) == .noJob)
            #expect(h.send(.preSleep, from: worker).isEmpty)
        }
        #expect(Set(woken.prefix(3)) == Set(workers))
        #expect(woken[3] == woken[0])
    }

    @Test func workerWakeupTwoWakesTwo() throws {
        let h = Harness { $0.workerWakeup = 2 }
        _ = [h.sleepingWorker("f"), h.sleepingWorker("f"), h.sleepingWorker("f")]
        #expect(h.send(Pkt.submit("f", "1"), from: h.connect()).recipients(of: .noop).count == 2)
    }

    @Test func workerWakeupZeroWakesEverySleeper() throws {
        let h = Harness()
        let workers = (0..<5).map { _ in h.sleepingWorker("f") }
        let noops = h.send(Pkt.submit("f", "1"), from: h.connect()).recipients(of: .noop)
        #expect(noops.sorted() == workers)
    }

    @Test func canDoWhileAsleepForAFunctionWithQueuedWorkNoops() throws {
        let h = Harness()
        _ = try h.submitFromNewClient(Pkt.submit("b", "x"))
        let worker = h.sleepingWorker("a")
        #expect(h.send(Pkt.canDo("b"), from: worker).effects == [.send(.noop, to: worker)])
        // Already NOOPed in this sleep: registering another busy function doesn't NOOP again.
        _ = try h.submitFromNewClient(Pkt.submit("c", "y"))
        #expect(h.send(Pkt.canDo("c"), from: worker).isEmpty)
    }

    @Test func canDoWhileAsleepWithoutWorkSleepsOnTheNewFunctionToo() throws {
        let h = Harness()
        let worker = h.sleepingWorker("a")
        #expect(h.send(Pkt.canDo("b"), from: worker).isEmpty)
        #expect(h.send(Pkt.submit("b", "x"), from: h.connect()).recipients(of: .noop) == [worker])
    }

    @Test func canDoWhileAwakeNeverNoops() throws {
        let h = Harness()
        _ = try h.submitFromNewClient(Pkt.submit("b", "x"))
        let worker = h.worker("a")
        #expect(h.send(Pkt.canDo("b"), from: worker).isEmpty)
    }

    @Test func cantDoStopsWakingForThatFunction() throws {
        let h = Harness()
        let worker = h.sleepingWorker("a", "b")
        #expect(h.send(Pkt.cantDo("a"), from: worker).isEmpty)
        let client = h.connect()
        #expect(h.send(Pkt.submit("a", "x"), from: client).recipients(of: .noop).isEmpty)
        #expect(h.send(Pkt.submit("b", "y"), from: client).recipients(of: .noop) == [worker])
    }

    @Test func aClosedSleeperIsNotWoken() throws {
        let h = Harness()
        let gone = h.sleepingWorker("f")
        let stays = h.sleepingWorker("f")
        h.close(gone)
        #expect(h.send(Pkt.submit("f", "x"), from: h.connect()).recipients(of: .noop) == [stays])
    }

    /// A worker that went to sleep while still holding a job, then disconnected: the requeued job
    /// must wake a live sleeper, not spend its wake-up on the connection that is going away.
    @Test func aLostWorkerThatWasAsleepDoesNotTakeTheWakeUpOfItsRequeuedJob() throws {
        let h = Harness { $0.workerWakeup = 1 }
        let (client, handle) = try h.submitFromNewClient(Pkt.submit("f", "x"))
        let holder = h.worker("f")
        #expect(try h.grabHandle(holder) == handle)
        #expect(h.send(.preSleep, from: holder).isEmpty)  // asleep while holding the job
        let sleeper = h.sleepingWorker("f")
        let lost = h.close(holder)
        #expect(lost.effects == [.send(.noop, to: sleeper)])
        #expect(h.grab(sleeper) == Res.jobAssign(handle, "f", "x"))
        _ = client
    }
}
