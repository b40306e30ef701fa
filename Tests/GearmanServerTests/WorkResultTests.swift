import GearmanProtocol
import NIOCore
import Testing

@testable import GearmanServer

@Suite struct WorkResultTests {
    /// A job with three foreground clients attached (c1 submitted, then c2, then c3 joined), one
    /// background submitter, and a worker running it.
    private struct Scenario {
        let c1: ConnectionID
        let c2: ConnectionID
        let c3: ConnectionID
        let bg: ConnectionID
        let worker: ConnectionID
        let handle: ByteBuffer

        init(configure: (inout Machine.Configuration) -> Void = { _ in }) throws {
            let h = Harness(configure: configure)
            (c1, handle) = try h.submitFromNewClient(Pkt.submit("f", unique: "u", "x"))
            c2 = h.connect()
            _ = try h.submit(Pkt.submit("f", unique: "u", "x"), from: c2)
            bg = h.connect()
            _ = try h.submit(Pkt.submitBG("f", unique: "u", "x"), from: bg)
            c3 = h.connect()
            _ = try h.submit(Pkt.submit("f", unique: "u", "x"), from: c3)
            worker = h.worker("f")
            _ = try h.grabHandle(worker)
            self.harness = h
        }

        let harness: Harness
        var clients: [ConnectionID] { [c3, c2, c1] }

        func fanOut(_ packet: GearmanPacket) -> [Effect] {
            clients.map { .send(packet, to: $0) }
        }
    }

    @Test func statusDataAndWarningFanOutToEveryClientMostRecentFirst() throws {
        let s = try Scenario()
        let h = s.harness
        for packet in [Pkt.workStatus(s.handle, "3", "10"), Pkt.workData(s.handle, "d1"), Pkt.workWarning(s.handle, "w1")] {
            #expect(h.send(packet, from: s.worker).effects == s.fanOut(packet))
        }
    }

    @Test func completeFansOutAndEndsTheJob() throws {
        let s = try Scenario()
        let h = s.harness
        let complete = Pkt.workComplete(s.handle, "result")
        let done = h.send(complete, from: s.worker)
        #expect(done.effects == s.fanOut(complete) + [.unpersist(handle: s.handle)])
        #expect(done.packets(to: s.bg).isEmpty)
        #expect(h.adminReply("status", from: s.bg) == "f\t0\t0\t1\n.\n")
        #expect(h.send(Pkt.workComplete(s.handle, "again"), from: s.worker).effects == [.send(Res.jobNotFoundResult, to: s.worker)])
    }

    @Test func emptyCompleteIsForwardedAsIs() throws {
        let s = try Scenario()
        let complete = Pkt.workComplete(s.handle, "")
        #expect(s.harness.send(complete, from: s.worker).packets(to: s.c1) == [complete])
    }

    @Test func failFansOutAndEndsTheJobWithoutRetry() throws {
        let s = try Scenario()
        let h = s.harness
        let fail = GearmanPacket.workFail(handle: s.handle)
        #expect(h.send(fail, from: s.worker).effects == s.fanOut(fail) + [.unpersist(handle: s.handle)])
        #expect(h.grab(s.worker) == .noJob)
        #expect(h.adminReply("show jobs", from: s.bg) == ".\n")
    }

    @Test func backgroundSubmittersGetNothing() throws {
        let h = Harness()
        let (bg, handle) = try h.submitFromNewClient(Pkt.submitBG("f", "x"))
        let worker = h.worker("f")
        _ = try h.grabHandle(worker)
        #expect(h.send(Pkt.workStatus(handle, "1", "2"), from: worker).isEmpty)
        #expect(h.send(Pkt.workData(handle, "d"), from: worker).isEmpty)
        #expect(h.send(Pkt.workWarning(handle, "w"), from: worker).isEmpty)
        #expect(h.send(Pkt.workComplete(handle, "r"), from: worker).effects == [.unpersist(handle: handle)])
        _ = bg
    }

    @Test func clientLeavingMidRunLetsTheWorkerFinishSilently() throws {
        let h = Harness()
        let (client, handle) = try h.submitFromNewClient(Pkt.submit("f", "x"))
        let worker = h.worker("f")
        _ = try h.grabHandle(worker)
        #expect(h.close(client).isEmpty)
        #expect(h.adminReply("status", from: worker) == "f\t1\t1\t1\n.\n")
        #expect(h.send(Pkt.workData(handle, "d"), from: worker).isEmpty)
        #expect(h.send(Pkt.workComplete(handle, "r"), from: worker).isEmpty)
        #expect(h.adminReply("status", from: worker) == "f\t0\t0\t1\n.\n")
    }

    @Test func oneOfSeveralClientsLeavingMidRun() throws {
        let s = try Scenario()
        let h = s.harness
        h.close(s.c2)
        let complete = Pkt.workComplete(s.handle, "r")
        #expect(h.send(complete, from: s.worker).effects == [
            .send(complete, to: s.c3), .send(complete, to: s.c1), .unpersist(handle: s.handle),
        ])
    }

    // MARK: Exceptions

    @Test func optionRequestExceptionsIsEchoedAsSent() {
        let h = Harness()
        let client = h.connect()
        for name in ["exceptions", "EXCEPTIONS", "Exceptions"] {
            #expect(h.send(Pkt.option(name), from: client).effects == [.send(.optionResponse(name: buf(name)), to: client)])
        }
    }

    @Test func unknownOptionIsAnError() {
        let h = Harness()
        let client = h.connect()
        for name in ["foo", "exceptions2", ""] {
            #expect(
                h.send(Pkt.option(name), from: client).effects == [
                    .send(Res.error("UNKNOWN_OPTION", "Server does not recognize given option"), to: client)
                ])
        }
    }

    @Test func exceptionGoesToOptedInClientsAndFailToTheOthers() throws {
        let h = Harness()
        let plain = h.connect()
        let opted = h.connect()
        h.send(Pkt.option("EXCEPTIONS"), from: opted)
        let handle = try h.submit(Pkt.submit("f", unique: "exu", "x"), from: plain)
        #expect(try h.submit(Pkt.submit("f", unique: "exu", "x"), from: opted) == handle)
        let worker = h.worker("f")
        _ = try h.grabHandle(worker)
        let exception = Pkt.workException(handle, "boom-data")
        let outbox = h.send(exception, from: worker)
        #expect(outbox.effects == [.send(exception, to: opted), .send(.workFail(handle: handle), to: plain)])
        #expect(outbox.packets(to: worker).isEmpty)
        #expect(h.adminReply("status", from: plain) == "f\t0\t0\t1\n.\n")
    }

    @Test func exceptionsConfigurationForwardsToEveryone() throws {
        let h = Harness { $0.exceptions = true }
        let (client, handle) = try h.submitFromNewClient(Pkt.submit("f", "x"))
        let worker = h.worker("f")
        _ = try h.grabHandle(worker)
        let exception = Pkt.workException(handle, "boom")
        #expect(h.send(exception, from: worker).effects == [.send(exception, to: client)])
    }

    @Test func exceptionEndsABackgroundJob() throws {
        let h = Harness()
        let (_, handle) = try h.submitFromNewClient(Pkt.submitBG("f", "x"))
        let worker = h.worker("f")
        _ = try h.grabHandle(worker)
        #expect(h.send(Pkt.workException(handle, ""), from: worker).effects == [.unpersist(handle: handle)])
        #expect(h.grab(worker) == .noJob)
    }

    // MARK: Status queries

    @Test func getStatusOfUnknownQueuedAndRunningJobs() throws {
        let h = Harness()
        let client = h.connect()
        let unknown = buf("H:vm:9999")
        #expect(h.send(Pkt.getStatus(unknown), from: client).effects == [.send(Res.status(unknown, known: false, running: false, "0", "0"), to: client)])

        let handle = try h.submit(Pkt.submit("f", "x"), from: client)
        let asker = h.connect()  // any connection may ask
        #expect(h.send(Pkt.getStatus(handle), from: asker).effects == [.send(Res.status(handle, known: true, running: false, "0", "0"), to: asker)])
        let worker = h.worker("f")
        _ = try h.grabHandle(worker)
        #expect(h.send(Pkt.getStatus(handle), from: asker).packets(to: asker) == [Res.status(handle, known: true, running: true, "0", "0")])
        h.send(Pkt.workStatus(handle, "3", "10"), from: worker)
        #expect(h.send(Pkt.getStatus(handle), from: asker).packets(to: asker) == [Res.status(handle, known: true, running: true, "3", "10")])
        h.send(Pkt.workComplete(handle, ""), from: worker)
        #expect(h.send(Pkt.getStatus(handle), from: asker).packets(to: asker) == [Res.status(handle, known: false, running: false, "0", "0")])
    }

    private func statusUnique(
        _ unique: String, known: Bool, running: Bool, _ numerator: String, _ denominator: String, clients: String
    ) -> GearmanPacket {
        .statusResponseUnique(
            unique: buf(unique), known: known, running: running, numerator: buf(numerator),
            denominator: buf(denominator), clients: buf(clients))
    }

    @Test func getStatusUniqueEchoesTheUniqueAndCountsWaitingClients() throws {
        let h = Harness()
        let asker = h.connect()
        #expect(h.send(Pkt.getStatusUnique("nope"), from: asker).effects == [.send(statusUnique("nope", known: false, running: false, "0", "0", clients: "0"), to: asker)])

        _ = try h.submitFromNewClient(Pkt.submitBG("gs", unique: "gsu", "x"))
        #expect(h.send(Pkt.getStatusUnique("gsu"), from: asker).packets(to: asker) == [statusUnique("gsu", known: true, running: false, "0", "0", clients: "0")])

        let (_, handle) = try h.submitFromNewClient(Pkt.submit("gsf", unique: "fgu", "x"))
        _ = try h.submitFromNewClient(Pkt.submit("gsf", unique: "fgu", "x"))
        #expect(h.send(Pkt.getStatusUnique("fgu"), from: asker).packets(to: asker) == [statusUnique("fgu", known: true, running: false, "0", "0", clients: "2")])
        let worker = h.worker("gsf")
        _ = try h.grabHandle(worker)
        #expect(h.send(Pkt.getStatusUnique("fgu"), from: asker).packets(to: asker) == [statusUnique("fgu", known: true, running: true, "0", "0", clients: "2")])
        h.send(Pkt.workStatus(handle, "3", "10"), from: worker)
        #expect(h.send(Pkt.getStatusUnique("fgu"), from: asker).packets(to: asker) == [statusUnique("fgu", known: true, running: true, "3", "10", clients: "2")])
    }

    @Test func getStatusUniqueLooksAcrossFunctions() throws {
        let h = Harness()
        _ = try h.submitFromNewClient(Pkt.submitBG("first", unique: "other", "x"))
        _ = try h.submitFromNewClient(Pkt.submit("second", unique: "shared", "x"))
        let asker = h.connect()
        #expect(h.send(Pkt.getStatusUnique("shared"), from: asker).packets(to: asker) == [statusUnique("shared", known: true, running: false, "0", "0", clients: "1")])
    }

    @Test func requeueResetsTheStoredStatus() throws {
        let h = Harness()
        let (client, handle) = try h.submitFromNewClient(Pkt.submit("f", unique: "u", "x"))
        let worker = h.worker("f")
        _ = try h.grabHandle(worker)
        h.send(Pkt.workStatus(handle, "7", "8"), from: worker)
        h.close(worker)
        #expect(h.send(Pkt.getStatusUnique("u"), from: client).packets(to: client) == [statusUnique("u", known: true, running: false, "0", "0", clients: "1")])
    }
}
