import GearmanProtocol
import NIOCore
import Testing

@testable import GearmanServer

@Suite struct AdminCommandTests {
    @Test func workersListsEveryConnection() {
        let h = Harness()
        let worker = h.worker("rev", peer: "10.0.0.5")
        h.send(.setClientID(id: buf("worker-A")), from: worker)
        let client = h.connect(peer: "::1")
        h.send(.setClientID(id: buf("client-1")), from: client)
        let admin = h.connect()
        #expect(
            h.adminReply("workers", from: admin)
                == "\(worker) 10.0.0.5 worker-A : rev\n\(client) ::1 client-1 :\n\(admin) 127.0.0.1 - :\n.\n")
    }

    @Test func workersListsEveryFunctionOfAWorker() {
        let h = Harness()
        let worker = h.worker("rev", "other", "third")
        let reply = h.adminReply("workers", from: worker)
        let lines = reply.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines.count == 3)
        #expect(lines.last == "")
        #expect(lines[1] == ".")
        let line = lines[0]
        #expect(line.hasPrefix("\(worker) 127.0.0.1 - : "))
        let functions = line.split(separator: ":", maxSplits: 1)[1].split(separator: " ").map(String.init)
        #expect(Set(functions) == ["rev", "other", "third"])
        #expect(functions.count == 3)
    }

    @Test func clientIDIsTruncatedTo127Bytes() {
        let h = Harness()
        let client = h.connect()
        let long = String(repeating: "x", count: 100) + String(repeating: "y", count: 100)
        #expect(h.send(.setClientID(id: buf(long)), from: client).isEmpty)
        let expected = String(long.utf8.prefix(127))!
        #expect(h.adminReply("workers", from: client) == "\(client) 127.0.0.1 \(expected) :\n.\n")
        // A later id replaces it; an empty one shows as `-`.
        h.send(.setClientID(id: buf("short")), from: client)
        #expect(h.adminReply("workers", from: client) == "\(client) 127.0.0.1 short :\n.\n")
        h.send(.setClientID(id: buf("")), from: client)
        #expect(h.adminReply("workers", from: client) == "\(client) 127.0.0.1 - :\n.\n")
    }

    @Test func closedConnectionsLeaveTheWorkersList() {
        let h = Harness()
        let gone = h.worker("f")
        let admin = h.connect()
        h.close(gone)
        #expect(h.adminReply("workers", from: admin) == "\(admin) 127.0.0.1 - :\n.\n")
        #expect(h.adminReply("status", from: admin) == "f\t0\t0\t0\n.\n")
    }

    @Test func statusAndPriorityStatus() throws {
        let h = Harness()
        let worker = h.worker("rev")
        let client = h.connect()
        _ = try h.submit(Pkt.submitBG("rev", unique: "u-123", "payload1"), from: client)
        _ = try h.submit(Pkt.submitBG("rev", unique: "", "payload2"), from: client)
        _ = try h.submit(Pkt.submitBG("other", unique: "hu", priority: .high), from: client)
        _ = try h.submit(Pkt.submit("other", unique: "lu", priority: .low), from: client)
        #expect(h.adminReply("status", from: client) == "rev\t2\t0\t1\nother\t2\t0\t0\n.\n")
        #expect(h.adminReply("prioritystatus", from: client) == "rev\t0\t2\t0\t1\nother\t1\t0\t1\t0\n.\n")

        _ = try h.grabHandle(worker)
        #expect(h.adminReply("status", from: client) == "rev\t2\t1\t1\nother\t2\t0\t0\n.\n")
        #expect(h.adminReply("prioritystatus", from: client) == "rev\t0\t1\t0\t1\nother\t1\t0\t1\t0\n.\n")
        // Command words are case-insensitive.
        #expect(h.adminReply("STATUS", from: client) == "rev\t2\t1\t1\nother\t2\t0\t0\n.\n")
    }

    @Test func statusWithNothingIsAnEmptyList() {
        let h = Harness()
        let admin = h.connect()
        #expect(h.adminReply("status", from: admin) == ".\n")
        #expect(h.adminReply("prioritystatus", from: admin) == ".\n")
        #expect(h.adminReply("show jobs", from: admin) == ".\n")
        #expect(h.adminReply("show unique jobs", from: admin) == ".\n")
    }

    @Test func showJobsAndShowUniqueJobs() throws {
        let h = Harness()
        let client = h.connect()
        let a = try h.submit(Pkt.submitBG("rev", unique: "u-123", "payload1"), from: client)
        let b = try h.submit(Pkt.submit("rev", unique: "", "payload2"), from: client)
        let c = try h.submit(Pkt.submitBG("other", unique: "lu", priority: .low), from: client)
        let worker = h.worker("rev")
        _ = try h.grabHandle(worker)
        h.close(worker)  // a: retries 1
        let (ha, hb, hc) = (String(buffer: a), String(buffer: b), String(buffer: c))
        #expect(h.adminReply("show jobs", from: client) == "\(ha)\t1\t0\t1\n\(hb)\t0\t0\t0\n\(hc)\t0\t0\t1\n.\n")
        #expect(h.adminReply("show unique jobs", from: client) == "u-123\n\nlu\n.\n")
    }

    @Test func cancelAQueuedForegroundJob() throws {
        let h = Harness()
        let (client, handle) = try h.submitFromNewClient(Pkt.submit("fgc", "x"))
        let admin = h.connect()
        let outbox = h.admin("cancel job \(String(buffer: handle))", from: admin)
        #expect(outbox.effects == [.send(.workFail(handle: handle), to: client), .text("OK\r\n", to: admin)])
        #expect(h.adminReply("show jobs", from: admin) == ".\n")
        #expect(h.adminReply("status", from: admin) == "fgc\t0\t0\t0\n.\n")
        #expect(h.grab(h.worker("fgc")) == .noJob)
        // Cancelling it again: it is gone.
        #expect(h.adminReply("cancel job \(String(buffer: handle))", from: admin) == "ERR UNKNOWN_JOB\r\n")
    }

    @Test func cancelARunningJob() throws {
        let h = Harness()
        let (client, handle) = try h.submitFromNewClient(Pkt.submit("f", "x"))
        let c2 = h.connect()
        _ = try h.submit(Pkt.submit("f", "x"), from: c2)
        let worker = h.worker("f")
        #expect(try h.grabHandle(worker) == handle)
        let admin = h.connect()
        let outbox = h.admin("cancel job \(String(buffer: handle))", from: admin)
        #expect(outbox.packets(to: client) == [.workFail(handle: handle)])
        #expect(outbox.packets(to: worker).isEmpty)  // the worker is not told
        #expect(outbox.text(to: admin) == "OK\r\n")
        #expect(h.send(Pkt.workComplete(handle, "late"), from: worker).effects == [.send(Res.jobNotFoundResult, to: worker)])
        #expect(h.adminReply("status", from: admin) == "f\t1\t0\t1\n.\n")
    }

    @Test func cancelABackgroundJobUnpersistsIt() throws {
        let h = Harness()
        let (_, handle) = try h.submitFromNewClient(Pkt.submitBG("f", "x"))
        let admin = h.connect()
        let outbox = h.admin("cancel job \(String(buffer: handle))", from: admin)
        #expect(outbox.effects == [.unpersist(handle: handle), .text("OK\r\n", to: admin)])
    }

    @Test func cancelErrors() {
        let h = Harness()
        let admin = h.connect()
        #expect(h.adminReply("cancel job H:nope:999", from: admin) == "ERR UNKNOWN_JOB\r\n")
        #expect(h.adminReply("cancel x y", from: admin) == "ERR UNKNOWN_ERROR\r\n")
        #expect(h.adminReply("cancel job", from: admin) == "ERR UNKNOWN_COMMAND Unknown+server+commandcancel\r\n")
    }

    /// gearmand's off-by-two makes an LF-terminated `create function fx` create `f`; ours creates `fx`.
    @Test func createFunction() {
        let h = Harness()
        let admin = h.connect()
        // The decoder hands over the line without its `\n` (and without a `\r` before it).
        #expect(h.adminReply("create function fx", from: admin) == "OK\r\n")
        #expect(h.adminReply("status", from: admin) == "fx\t0\t0\t0\n.\n")
        // Creating it again changes nothing.
        #expect(h.adminReply("create function fx", from: admin) == "OK\r\n")
        #expect(h.adminReply("status", from: admin) == "fx\t0\t0\t0\n.\n")
    }

    @Test func dropFunction() throws {
        let h = Harness()
        let admin = h.connect()
        let worker = h.worker("rev")
        #expect(h.adminReply("drop function rev", from: admin) == "ERR there are still connected workers or executing clients\r\n")
        #expect(h.adminReply("drop function nosuch", from: admin) == "ERR function not found\r\n")

        _ = h.adminReply("create function casefn", from: admin)
        #expect(h.adminReply("drop function CASEFN", from: admin) == "OK\r\n")
        #expect(h.adminReply("drop function casefn", from: admin) == "ERR function not found\r\n")
        #expect(h.adminReply("status", from: admin) == "rev\t0\t0\t1\n.\n")

        h.close(worker)
        #expect(h.adminReply("drop function rev", from: admin) == "OK\r\n")
        #expect(h.adminReply("status", from: admin) == ".\n")
    }

    /// Unlike gearmand (which drops the function and leaves its jobs orphaned), a function with
    /// live jobs is refused even without workers.
    @Test func dropFunctionWithQueuedJobsIsRefused() throws {
        let h = Harness()
        _ = try h.submitFromNewClient(Pkt.submitBG("qonly", "x"))
        let admin = h.connect()
        #expect(h.adminReply("drop function qonly", from: admin) == "ERR there are still connected workers or executing clients\r\n")
        #expect(h.adminReply("status", from: admin) == "qonly\t1\t0\t0\n.\n")
    }

    @Test func getpidVerboseVersion() {
        let h = Harness {
            $0.processID = 3105
            $0.version = "1.2.3"
            $0.verboseLevel = "ERROR"
        }
        let admin = h.connect()
        #expect(h.adminReply("getpid", from: admin) == "OK 3105\n")
        #expect(h.adminReply("verbose", from: admin) == "OK ERROR\n")
        #expect(h.adminReply("version", from: admin) == "OK 1.2.3\n")
        #expect(h.adminReply("VERSION", from: admin) == "OK 1.2.3\n")
    }

    @Test func shutdownAsksTheServerToStop() {
        let h = Harness()
        let admin = h.connect()
        #expect(h.admin("shutdown", from: admin).effects == [.text("OK\r\n", to: admin), .shutdown(graceful: false)])
        #expect(h.admin("shutdown graceful", from: admin).effects == [.text("OK\r\n", to: admin), .shutdown(graceful: true)])
    }

    @Test func unknownCommands() {
        let h = Harness()
        let admin = h.connect()
        #expect(h.adminReply("frobnicate a b", from: admin) == "ERR UNKNOWN_COMMAND Unknown+server+commandfrobnicate\r\n")
        #expect(h.adminReply("", from: admin) == "ERR UNKNOWN_COMMAND Unknown+server+command\r\n")
        #expect(h.adminReply(" status", from: admin) == "ERR UNKNOWN_COMMAND Unknown+server+command\r\n")
        #expect(h.adminReply("show", from: admin) == "ERR UNKNOWN_COMMAND Unknown+server+commandshow\r\n")
        #expect(h.adminReply("show foo", from: admin) == "ERR UNKNOWN_SHOW_ARGUMENTS\r\n")
        #expect(
            h.adminReply("maxqueue", from: admin)
                == "ERR INVALID_ARGUMENTS An+incomplete+set+of+arguments+was+sent+to+this+command+maxqueue\r\n")
    }

    @Test func adminAndBinaryMixOnOneConnection() throws {
        let h = Harness()
        let connection = h.connect()
        let handle = try h.submit(Pkt.submitBG("f", "x"), from: connection)
        #expect(h.adminReply("show jobs", from: connection) == "\(String(buffer: handle))\t0\t0\t1\n.\n")
    }

    // MARK: maxqueue

    @Test func maxqueueLimitsNewJobsButNotCoalescedOnes() throws {
        let h = Harness()
        let admin = h.connect()
        _ = h.adminReply("create function mq", from: admin)
        #expect(h.adminReply("maxqueue mq 1", from: admin) == "OK\r\n")
        let client = h.connect()
        let first = try h.submit(Pkt.submitBG("mq", unique: "m1", "x"), from: client)
        let full = h.send(Pkt.submitBG("mq", unique: "m2", "x"), from: client)
        #expect(full.effects == [.send(Res.error("QUEUE_ERROR", "Job queue is full"), to: client)])
        #expect(try h.submit(Pkt.submitBG("mq", unique: "m1", "x"), from: client) == first)
        #expect(try h.submit(Pkt.submit("mq", unique: "m1", "x"), from: client) == first)
        #expect(h.adminReply("status", from: admin) == "mq\t1\t0\t0\n.\n")

        // A running job still counts; once it ends there is room again.
        let worker = h.worker("mq")
        _ = try h.grabHandle(worker)
        #expect(h.send(Pkt.submit("mq", unique: "m3", "x"), from: client).packets(to: client) == [Res.error("QUEUE_ERROR", "Job queue is full")])
        h.send(Pkt.workComplete(first, ""), from: worker)
        _ = try h.submit(Pkt.submit("mq", unique: "m3", "x"), from: client)
    }

    /// gearmand silently ignores `maxqueue` for a function it does not know yet; we create it.
    @Test func maxqueueForAnUnknownFunctionCreatesItAndApplies() throws {
        let h = Harness()
        let admin = h.connect()
        #expect(h.adminReply("maxqueue newfn 1", from: admin) == "OK\r\n")
        #expect(h.adminReply("status", from: admin) == "newfn\t0\t0\t0\n.\n")
        let client = h.connect()
        _ = try h.submit(Pkt.submit("newfn", "a"), from: client)
        #expect(h.send(Pkt.submit("newfn", "b"), from: client).packets(to: client) == [Res.error("QUEUE_ERROR", "Job queue is full")])
    }

    @Test func maxqueuePerPriority() throws {
        let h = Harness()
        let admin = h.connect()
        #expect(h.adminReply("maxqueue g 3 1 0", from: admin) == "OK\r\n")
        let client = h.connect()
        _ = try h.submit(Pkt.submit("g", "n1"), from: client)
        #expect(h.send(Pkt.submit("g", "n2"), from: client).packets(to: client) == [Res.error("QUEUE_ERROR", "Job queue is full")])
        _ = try h.submit(Pkt.submit("g", "h1", priority: .high), from: client)
        _ = try h.submit(Pkt.submit("g", "h2", priority: .high), from: client)
        #expect(h.send(Pkt.submit("g", "h3", priority: .high), from: client).packets(to: client) == [Res.error("QUEUE_ERROR", "Job queue is full")])
        for index in 0..<5 {
            _ = try h.submit(Pkt.submitBG("g", "l\(index)", priority: .low), from: client)  // unlimited
        }
        // `maxqueue g` alone lifts the limits.
        #expect(h.adminReply("maxqueue g", from: admin) == "OK\r\n")
        _ = try h.submit(Pkt.submit("g", "n2"), from: client)
    }
}
