import GearmanProtocol
import NIOCore
import Testing

@testable import GearmanServer

@Suite struct RequeueAndRetriesTests {
    @Test func workerDisconnectRequeuesAtTheTailWithStatusReset() throws {
        let h = Harness()
        let client = h.connect()
        let j1 = try h.submit(Pkt.submit("f", unique: "1", "one"), from: client)
        let j2 = try h.submit(Pkt.submit("f", unique: "2", "two"), from: client)
        let w1 = h.worker("f")
        #expect(h.grab(w1) == Res.jobAssign(j1, "f", "one"))
        #expect(h.send(Pkt.workStatus(j1, "1", "2"), from: w1).packets(to: client) == [Pkt.workStatus(j1, "1", "2")])
        let admin = h.connect()

        let lost = h.close(w1)
        #expect(lost.packets(to: client).isEmpty)  // clients are not told
        #expect(h.send(Pkt.getStatus(j1), from: client).packets(to: client) == [Res.status(j1, known: true, running: false, "0", "0")])
        #expect(h.adminReply("show jobs", from: admin) == "\(String(buffer: j1))\t1\t0\t0\n\(String(buffer: j2))\t0\t0\t0\n.\n")

        // j1 went to the tail, behind j2.
        let w2 = h.worker("f")
        #expect(h.grab(w2) == Res.jobAssign(j2, "f", "two"))
        #expect(h.grab(w2) == Res.jobAssign(j1, "f", "one"))
        let done = h.send(Pkt.workComplete(j1, "ok"), from: w2)
        #expect(done.effects == [.send(Pkt.workComplete(j1, "ok"), to: client)])
    }

    @Test func requeuedJobWakesSleepers() throws {
        let h = Harness()
        let (client, handle) = try h.submitFromNewClient(Pkt.submit("f", "x"))
        let w1 = h.worker("f")
        _ = try h.grabHandle(w1)
        let sleeper = h.sleepingWorker("f")
        let lost = h.close(w1)
        #expect(lost.effects == [.send(.noop, to: sleeper)])
        #expect(h.grab(sleeper) == Res.jobAssign(handle, "f", "x"))
        _ = client
    }

    @Test func retryCapFailsTheJobForItsClients() throws {
        let h = Harness { $0.jobRetries = 2 }
        let (client, handle) = try h.submitFromNewClient(Pkt.submit("f", "x"))
        let c2 = h.connect()
        let other = try h.submit(Pkt.submit("f", "y"), from: c2)
        #expect(other != handle)  // empty unique: another job

        let w1 = h.worker("f")
        #expect(try h.grabHandle(w1) == handle)
        #expect(h.close(w1).packets(to: client).isEmpty)  // first loss: requeued

        let w2 = h.worker("f")
        #expect(try h.grabHandle(w2) == other)  // handle went to the tail
        #expect(try h.grabHandle(w2) == handle)
        let second = h.close(w2)
        #expect(second.packets(to: client) == [.workFail(handle: handle)])
        #expect(second.packets(to: c2).isEmpty)  // its first loss: requeued

        #expect(h.send(Pkt.getStatus(handle), from: client).packets(to: client) == [Res.status(handle, known: false, running: false, "0", "0")])
        let w3 = h.worker("f")
        #expect(h.grab(w3) == Res.jobAssign(other, "f", "y"))
        #expect(h.grab(w3) == .noJob)
    }

    @Test func retryCapFailsEveryAttachedClientAndUnpersists() throws {
        let h = Harness { $0.jobRetries = 1 }
        let (c1, handle) = try h.submitFromNewClient(Pkt.submitBG("f", unique: "u", "x"))
        let c2 = h.connect()
        let c3 = h.connect()
        _ = try h.submit(Pkt.submit("f", unique: "u", "x"), from: c2)
        _ = try h.submit(Pkt.submit("f", unique: "u", "x"), from: c3)
        let worker = h.worker("f")
        _ = try h.grabHandle(worker)
        let lost = h.close(worker)
        #expect(lost.effects == [
            .send(.workFail(handle: handle), to: c3), .send(.workFail(handle: handle), to: c2),
            .unpersist(handle: handle),
        ])
        #expect(lost.packets(to: c1).isEmpty)
        #expect(h.adminReply("show jobs", from: c1) == ".\n")
        #expect(h.adminReply("status", from: c1) == "f\t0\t0\t0\n.\n")
    }

    @Test func zeroRetriesMeansUnlimited() throws {
        let h = Harness { $0.jobRetries = 0 }
        let (client, handle) = try h.submitFromNewClient(Pkt.submit("f", "x"))
        for _ in 0..<20 {
            let worker = h.worker("f")
            #expect(try h.grabHandle(worker) == handle)
            #expect(h.close(worker).packets(to: client).isEmpty)
        }
        #expect(h.adminReply("show jobs", from: client) == "\(String(buffer: handle))\t20\t0\t0\n.\n")
        let last = h.worker("f")
        _ = try h.grabHandle(last)
        #expect(h.send(Pkt.workComplete(handle, "r"), from: last).packets(to: client) == [Pkt.workComplete(handle, "r")])
    }

    @Test func cantDoWhileRunningRequeues() throws {
        let h = Harness()
        let (client, handle) = try h.submitFromNewClient(Pkt.submit("f", "x"))
        let w1 = h.worker("f", "g")
        _ = try h.grabHandle(w1)
        let sleeper = h.sleepingWorker("f")
        #expect(h.send(Pkt.cantDo("g"), from: w1).isEmpty)  // another function: the job stays
        let requeue = h.send(Pkt.cantDo("f"), from: w1)
        #expect(requeue.effects == [.send(.noop, to: sleeper)])
        #expect(requeue.packets(to: client).isEmpty)
        #expect(h.adminReply("show jobs", from: client) == "\(String(buffer: handle))\t1\t0\t0\n.\n")
        #expect(h.grab(sleeper) == Res.jobAssign(handle, "f", "x"))
    }

    @Test func resetAbilitiesWhileRunningRequeues() throws {
        let h = Harness()
        let (client, handle) = try h.submitFromNewClient(Pkt.submit("f", "x"))
        let w1 = h.worker("f")
        _ = try h.grabHandle(w1)
        #expect(h.send(.resetAbilities, from: w1).packets(to: client).isEmpty)
        #expect(h.adminReply("show jobs", from: client) == "\(String(buffer: handle))\t1\t0\t0\n.\n")
        #expect(h.adminReply("status", from: client) == "f\t1\t0\t0\n.\n")
        #expect(h.grab(w1) == .noJob)  // no abilities left
        let w2 = h.worker("f")
        #expect(h.grab(w2) == Res.jobAssign(handle, "f", "x"))
    }

    @Test func workFromTheOldWorkerAfterARequeueIsJobNotFound() throws {
        let h = Harness()
        let (client, handle) = try h.submitFromNewClient(Pkt.submit("f", "x"))
        let worker = h.worker("f")
        _ = try h.grabHandle(worker)
        h.send(Pkt.cantDo("f"), from: worker)
        let cases: [(GearmanPacket, GearmanPacket)] = [
            (Pkt.workStatus(handle, "1", "2"), Res.jobNotFoundResult),
            (Pkt.workData(handle, "d"), Res.jobNotFoundData),
            (Pkt.workWarning(handle, "w"), Res.jobNotFoundData),
            (Pkt.workException(handle, "e"), Res.jobNotFoundException),
            (.workFail(handle: handle), Res.jobNotFoundResult),
            (Pkt.workComplete(handle, "r"), Res.jobNotFoundResult),
        ]
        for (packet, error) in cases {
            #expect(h.send(packet, from: worker).effects == [.send(error, to: worker)])
        }
        // The job is untouched and still queued.
        #expect(h.send(Pkt.getStatus(handle), from: client).packets(to: client) == [Res.status(handle, known: true, running: false, "0", "0")])
    }

    @Test func workFromAConnectionThatIsNotTheAssignedWorkerIsJobNotFound() throws {
        let h = Harness()
        let (client, handle) = try h.submitFromNewClient(Pkt.submit("f", "x"))
        let worker = h.worker("f")
        let other = h.worker("f")
        _ = try h.grabHandle(worker)
        #expect(h.send(Pkt.workComplete(handle, "r"), from: other).effects == [.send(Res.jobNotFoundResult, to: other)])
        #expect(h.send(.workFail(handle: handle), from: client).effects == [.send(Res.jobNotFoundResult, to: client)])
        #expect(h.send(Pkt.workData(handle, "d"), from: other).effects == [.send(Res.jobNotFoundData, to: other)])
        #expect(h.send(Pkt.workException(handle, "e"), from: other).effects == [.send(Res.jobNotFoundException, to: other)])
        #expect(h.send(Pkt.workStatus(handle, "1", "2"), from: other).effects == [.send(Res.jobNotFoundResult, to: other)])
        // The real worker still owns it.
        #expect(h.send(Pkt.workComplete(handle, "r"), from: worker).effects == [.send(Pkt.workComplete(handle, "r"), to: client)])
    }

    @Test func workForAnUnknownHandleIsJobNotFound() {
        let h = Harness()
        let worker = h.worker("f")
        let unknown = buf("H:vm:9999")
        #expect(h.send(Pkt.workComplete(unknown, "data"), from: worker).effects == [.send(Res.jobNotFoundResult, to: worker)])
        #expect(h.send(.workFail(handle: unknown), from: worker).effects == [.send(Res.jobNotFoundResult, to: worker)])
        #expect(h.send(Pkt.workStatus(unknown, "1", "2"), from: worker).effects == [.send(Res.jobNotFoundResult, to: worker)])
        #expect(h.send(Pkt.workData(unknown, "d"), from: worker).effects == [.send(Res.jobNotFoundData, to: worker)])
        #expect(h.send(Pkt.workWarning(unknown, "d"), from: worker).effects == [.send(Res.jobNotFoundData, to: worker)])
        #expect(h.send(Pkt.workException(unknown, "d"), from: worker).effects == [.send(Res.jobNotFoundException, to: worker)])
    }

    @Test func aForegroundJobNobodyWaitsForIsDroppedWhenItsWorkerIsLost() throws {
        let h = Harness()
        let (client, _) = try h.submitFromNewClient(Pkt.submit("f", "x"))
        let worker = h.worker("f")
        _ = try h.grabHandle(worker)
        h.close(client)
        let sleeper = h.sleepingWorker("f")
        #expect(h.close(worker).isEmpty)
        #expect(h.grab(sleeper) == .noJob)
        let admin = h.connect()
        #expect(h.adminReply("status", from: admin) == "f\t0\t0\t1\n.\n")
    }

    @Test func aBackgroundJobIsRequeuedEvenWithoutClients() throws {
        let h = Harness()
        let (client, handle) = try h.submitFromNewClient(Pkt.submitBG("f", "x"))
        h.close(client)
        let worker = h.worker("f")
        _ = try h.grabHandle(worker)
        h.close(worker)
        let next = h.worker("f")
        #expect(h.grab(next) == Res.jobAssign(handle, "f", "x"))
    }

    @Test func aWorkerHoldingSeveralJobsRequeuesThemAll() throws {
        let h = Harness()
        let client = h.connect()
        let j1 = try h.submit(Pkt.submit("f", "1"), from: client)
        let j2 = try h.submit(Pkt.submit("f", "2"), from: client)
        let j3 = try h.submit(Pkt.submit("f", "3"), from: client)
        let worker = h.worker("f")
        #expect(try h.grabHandle(worker) == j1)
        #expect(try h.grabHandle(worker) == j2)
        h.close(worker)
        let next = h.worker("f")
        #expect(try h.grabHandle(next) == j3)
        #expect(try h.grabHandle(next) == j1)
        #expect(try h.grabHandle(next) == j2)
    }
}
