import GearmanProtocol
import NIOCore
import Testing

@testable import GearmanServer

@Suite struct SubmitAndCoalescingTests {
    @Test func foregroundSubmissionGetsJobCreatedOnly() throws {
        let h = Harness()
        let client = h.connect()
        let outbox = h.send(Pkt.submit("rev", unique: "u1", "hello"), from: client)
        let created = try #require(outbox.packets(to: client).first)
        guard case .jobCreated(let handle) = created else {
            Issue.record("expected JOB_CREATED, got \(created)")
            return
        }
        #expect(outbox.effects == [.send(.jobCreated(handle: handle), to: client)])
    }

    @Test func backgroundSubmissionGetsJobCreated() throws {
        let h = Harness()
        let client = h.connect()
        let outbox = h.send(Pkt.submitBG("rev", unique: "u1", "hello"), from: client)
        let packets = outbox.packets(to: client)
        #expect(packets.count == 1)
        guard case .jobCreated = try #require(packets.first) else {
            Issue.record("expected JOB_CREATED, got \(packets)")
            return
        }
    }

    @Test func everySubmitVariantIsAJobAWorkerCanGrab() throws {
        let h = Harness()
        let client = h.connect()
        let worker = h.worker("f")
        let packets: [GearmanPacket] = [
            Pkt.submit("f", "n"), Pkt.submit("f", "h", priority: .high), Pkt.submit("f", "l", priority: .low),
            Pkt.submitBG("f", "nb"), Pkt.submitBG("f", "hb", priority: .high), Pkt.submitBG("f", "lb", priority: .low),
            Pkt.submitEpoch("f", epoch: "0", "e"), Pkt.submitReduce("f", reducer: "r", "rd"),
            Pkt.submitReduce("f", reducer: "r", "rdb", background: true),
        ]
        var handles: Set<ByteBuffer> = []
        for packet in packets {
            handles.insert(try h.submit(packet, from: client))
        }
        #expect(handles.count == packets.count)
        var payloads: [String] = []
        while case .jobAssign(_, _, let payload) = h.grab(worker) {
            payloads.append(String(buffer: payload))
        }
        #expect(payloads == ["h", "hb", "n", "nb", "e", "rd", "rdb", "l", "lb"])
    }

    @Test func sameUniqueCoalescesOnAQueuedJob() throws {
        let h = Harness()
        let (c1, handle) = try h.submitFromNewClient(Pkt.submit("rev", unique: "u1", "first"))
        let c2 = h.connect()
        let second = h.send(Pkt.submit("rev", unique: "u1", "second"), from: c2)
        #expect(second.effects == [.send(.jobCreated(handle: handle), to: c2)])

        // The job keeps its original payload; one job only.
        let worker = h.worker("rev")
        #expect(h.grab(worker) == Res.jobAssign(handle, "rev", "first"))
        #expect(h.grab(worker) == .noJob)

        let done = h.send(Pkt.workComplete(handle, "result"), from: worker)
        let complete = Pkt.workComplete(handle, "result")
        #expect(done.effects == [.send(complete, to: c2), .send(complete, to: c1)])
    }

    @Test func sameUniqueCoalescesOnARunningJobAndSeesOnlyLaterUpdates() throws {
        let h = Harness()
        let (c1, handle) = try h.submitFromNewClient(Pkt.submit("rev", unique: "u1", "first"))
        let worker = h.worker("rev")
        #expect(h.grab(worker) == Res.jobAssign(handle, "rev", "first"))
        let status = h.send(Pkt.workStatus(handle, "1", "4"), from: worker)
        #expect(status.effects == [.send(Pkt.workStatus(handle, "1", "4"), to: c1)])

        let c2 = h.connect()
        let joined = h.send(Pkt.submit("rev", unique: "u1", "ignored"), from: c2)
        #expect(joined.effects == [.send(.jobCreated(handle: handle), to: c2)])

        let data = h.send(Pkt.workData(handle, "d1"), from: worker)
        #expect(data.effects == [.send(Pkt.workData(handle, "d1"), to: c2), .send(Pkt.workData(handle, "d1"), to: c1)])
        let done = h.send(Pkt.workComplete(handle, "r"), from: worker)
        #expect(
            done.effects == [.send(Pkt.workComplete(handle, "r"), to: c2), .send(Pkt.workComplete(handle, "r"), to: c1)])

        // Once finished, the same unique starts a new job.
        let again = try h.submit(Pkt.submit("rev", unique: "u1", "third"), from: c1)
        #expect(again != handle)
    }

    @Test func sameUniqueInAnotherFunctionIsAnotherJob() throws {
        let h = Harness()
        let client = h.connect()
        let a = try h.submit(Pkt.submit("fa", unique: "same", "x"), from: client)
        let b = try h.submit(Pkt.submit("fb", unique: "same", "x"), from: client)
        #expect(a != b)
        #expect(h.showJobs(from: client).count == 2 + 2)  // two jobs, ".", and the empty tail
    }

    @Test func emptyUniqueNeverCoalesces() throws {
        let h = Harness()
        let client = h.connect()
        let a = try h.submit(Pkt.submit("f", unique: "", "x"), from: client)
        let b = try h.submit(Pkt.submit("f", unique: "", "x"), from: client)
        let c = try h.submitFromNewClient(Pkt.submitBG("f", unique: "", "x")).1
        let d = try h.submitFromNewClient(Pkt.submitBG("f", unique: "", "x")).1
        #expect(Set([a, b, c, d]).count == 4)
    }

    @Test func dashUniqueCoalescesIdenticalNonEmptyPayloads() throws {
        let h = Harness()
        let client = h.connect()
        let a = try h.submit(Pkt.submit("f", unique: "-", "payload"), from: client)
        let b = try h.submitFromNewClient(Pkt.submit("f", unique: "-", "payload")).1
        let c = try h.submitFromNewClient(Pkt.submit("f", unique: "-", "other")).1
        let d = try h.submitFromNewClient(Pkt.submit("g", unique: "-", "payload")).1
        #expect(a == b)
        #expect(a != c)
        #expect(a != d)
        // A `-` job does not coalesce with a job whose unique happens to equal the payload.
        let e = try h.submitFromNewClient(Pkt.submit("f", unique: "payload", "payload")).1
        #expect(e != a)
        // With an empty payload `-` means no coalescing.
        let empty1 = try h.submitFromNewClient(Pkt.submit("f", unique: "-", "")).1
        let empty2 = try h.submitFromNewClient(Pkt.submit("f", unique: "-", "")).1
        #expect(empty1 != empty2)
    }

    @Test func backgroundSubmitterJoiningGetsTheHandleButNoResults() throws {
        let h = Harness()
        let (fg, handle) = try h.submitFromNewClient(Pkt.submit("f", unique: "u", "x"))
        let bg = h.connect()
        #expect(try h.submit(Pkt.submitBG("f", unique: "u", "y"), from: bg) == handle)
        let worker = h.worker("f")
        _ = h.grab(worker)
        #expect(h.send(Pkt.workStatus(handle, "1", "2"), from: worker).packets(to: bg).isEmpty)
        #expect(h.send(Pkt.workData(handle, "d"), from: worker).packets(to: bg).isEmpty)
        let done = h.send(Pkt.workComplete(handle, "r"), from: worker)
        #expect(done.packets(to: bg).isEmpty)
        #expect(done.packets(to: fg) == [Pkt.workComplete(handle, "r")])
    }

    @Test func uniqueOf64BytesIsAcceptedAndCoalescesOnAll64Bytes() throws {
        let h = Harness()
        let unique64 = String(repeating: "a", count: 63) + "b"
        let unique63 = String(repeating: "a", count: 63)
        let client = h.connect()
        let first = try h.submit(Pkt.submitBG("f", unique: unique64, "x"), from: client)
        let again = try h.submit(Pkt.submitBG("f", unique: unique64, "x"), from: client)
        let prefix = try h.submit(Pkt.submitBG("f", unique: unique63, "x"), from: client)
        #expect(first == again)
        #expect(prefix != first)
        // Kept whole (gearmand stores 63 bytes).
        #expect(h.adminReply("show unique jobs", from: client) == "\(unique64)\n\(unique63)\n.\n")
    }

    @Test func uniqueOf65BytesIsRejected() {
        let h = Harness()
        let client = h.connect()
        let outbox = h.send(Pkt.submitBG("f", unique: String(repeating: "a", count: 65), "x"), from: client)
        #expect(outbox.effects == [.send(Res.error("ARGUMENT_TOO_LARGE", "Unique value too large"), to: client)])
        #expect(h.adminReply("show jobs", from: client) == ".\n")
        let fg = h.send(Pkt.submit("f", unique: String(repeating: "a", count: 65), "x"), from: client)
        #expect(fg.effects == [.send(Res.error("ARGUMENT_TOO_LARGE", "Unique value too large"), to: client)])
    }

    /// gearmand drops a background job when a foreground submitter that joined it leaves while it
    /// is queued. We keep it.
    @Test func backgroundJobSurvivesAJoinedForegroundClientLeaving() throws {
        let h = Harness()
        let (_, handle) = try h.submitFromNewClient(Pkt.submitBG("f", unique: "u", "payload"))
        let fg = h.connect()
        #expect(try h.submit(Pkt.submit("f", unique: "u", "other"), from: fg) == handle)
        #expect(h.close(fg).isEmpty)
        let admin = h.connect()
        #expect(h.adminReply("show jobs", from: admin) == "\(String(buffer: handle))\t0\t0\t1\n.\n")
        let worker = h.worker("f")
        #expect(h.grab(worker) == Res.jobAssign(handle, "f", "payload"))
    }

    @Test func foregroundJobWhoseOnlyClientLeftWhileQueuedIsDropped() throws {
        let h = Harness()
        let (client, _) = try h.submitFromNewClient(Pkt.submit("f", unique: "u", "x"))
        h.close(client)
        let worker = h.worker("f")
        #expect(h.grab(worker) == .noJob)
        let admin = h.connect()
        #expect(h.adminReply("status", from: admin) == "f\t0\t0\t1\n.\n")
    }

    @Test func foregroundJobKeepsRunningForItsRemainingClient() throws {
        let h = Harness()
        let (c1, handle) = try h.submitFromNewClient(Pkt.submit("f", unique: "u", "x"))
        let c2 = h.connect()
        _ = try h.submit(Pkt.submit("f", unique: "u", "x"), from: c2)
        h.close(c1)
        let worker = h.worker("f")
        #expect(h.grab(worker) == Res.jobAssign(handle, "f", "x"))
        #expect(h.send(Pkt.workComplete(handle, "r"), from: worker).effects == [.send(Pkt.workComplete(handle, "r"), to: c2)])
    }

    // MARK: Handles

    @Test func handlesAreUniqueShortAndCarryThePrefix() throws {
        let h = Harness { $0.jobHandlePrefix = "H:myhost" }
        let client = h.connect()
        var handles: Set<String> = []
        for index in 0..<500 {
            let handle = String(buffer: try h.submit(Pkt.submitBG("f", unique: "u\(index)", ""), from: client))
            #expect(handle.hasPrefix("H:myhost:"))
            #expect(handle.utf8.count <= 63)
            handles.insert(handle)
        }
        #expect(handles.count == 500)
    }

    @Test func handlesWithTheLongestPrefixFitIn63Bytes() throws {
        let prefix = String(repeating: "p", count: JobHandleGenerator.maxPrefixLength)
        let h = Harness { $0.jobHandlePrefix = prefix }
        let client = h.connect()
        for _ in 0..<100 {
            let handle = String(buffer: try h.submit(Pkt.submitBG("f", ""), from: client))
            #expect(handle.hasPrefix(prefix + ":"))
            #expect(handle.utf8.count <= 63)
        }
        // The counter at its widest still fits.
        var generator = JobHandleGenerator(prefix: prefix)
        let handle = generator.next()
        #expect(handle.readableBytes <= 63)
        #expect(prefix.utf8.count + 1 + 8 + 1 + String(UInt64.max).utf8.count + 1 + 12 <= 63)
    }

    @Test func twoServersMakeDifferentHandles() throws {
        let a = Harness()
        let b = Harness()
        let ha = try a.submit(Pkt.submitBG("f", ""), from: a.connect())
        let hb = try b.submit(Pkt.submitBG("f", ""), from: b.connect())
        #expect(ha != hb)
    }
}
