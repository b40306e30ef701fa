import GearmanProtocol
import Testing

/// Unique-key coalescing per (function, unique), PROTOCOL.md §c.1.
@Suite("Coalescing", .serialized, .timeLimit(.minutes(5)))
struct CoalescingTests {
    @Test("two foreground clients with the same unique share one job and both get WORK_COMPLETE", arguments: ServerKind.allCases)
    func foregroundCoalescing(kind: ServerKind) async throws {
        try await withTestServer(kind) { server in
            let c1 = try await server.connect("c1")
            let c2 = try await server.connect("c2")
            let handle = try await c1.submit("co", unique: "same", payload: "p1")
            let second = try await c2.submit("co", unique: "same", payload: "p2")
            #expect(second == handle, "a coalesced submission gets the existing handle")
            #expect(try await server.admin("status") == "co\t1\t0\t0\n.\n")
            #expect(try await c1.statusUnique("same") == .response(.statusResponseUnique, "same", "1", "0", "0", "0", "2"))

            let worker = try await server.connect("worker")
            try await worker.canDo("co")
            // The job keeps the first submission's payload.
            #expect(try await worker.grab() == .response(.jobAssign, handle, "co", "p1"))
            #expect(try await c1.statusUnique("same") == .response(.statusResponseUnique, "same", "1", "1", "0", "0", "2"))
            try await worker.send(RawPacket.request(.workComplete, handle, "result"))
            #expect(try await c1.receive() == .packet(.response(.workComplete, handle, "result")))
            #expect(try await c2.receive() == .packet(.response(.workComplete, handle, "result")))
            #expect(try await worker.grab() == .noJob, "one job, not two")

            // Once finished, the same unique starts a new job.
            let again = try await c1.submit("co", unique: "same", payload: "p3")
            #expect(again != handle)
        }
    }

    @Test("a foreground client attaching to a running job gets later updates only", arguments: ServerKind.allCases)
    func attachToRunningJob(kind: ServerKind) async throws {
        try await withTestServer(kind) { server in
            let c1 = try await server.connect("c1")
            let worker = try await server.connect("worker")
            try await worker.canDo("run")
            let handle = try await c1.submit("run", unique: "r1", payload: "x")
            #expect(try await worker.grab() == .response(.jobAssign, handle, "run", "x"))
            try await worker.send(RawPacket.request(.workStatus, handle, "1", "4"))
            #expect(try await c1.receive() == .packet(.response(.workStatus, handle, "1", "4")))

            let c2 = try await server.connect("c2")
            #expect(try await c2.submit("run", unique: "r1", payload: "ignored") == handle)
            try await worker.send(RawPacket.request(.workData, handle, "d"))
            try await worker.send(RawPacket.request(.workComplete, handle, "done"))
            for client in [c1, c2] {
                #expect(try await client.receive() == .packet(.response(.workData, handle, "d")))
                #expect(try await client.receive() == .packet(.response(.workComplete, handle, "done")))
            }
            #expect(try await c2.receiveIfAny(within: .milliseconds(100)) == nil, "c2 never saw the earlier WORK_STATUS")
        }
    }

    @Test("background coalescing: same handle, original priority and payload; another function is another job", arguments: ServerKind.allCases)
    func backgroundCoalescing(kind: ServerKind) async throws {
        try await withTestServer(kind) { server in
            let client = try await server.connect()
            let handle = try await client.submit("cobg", unique: "u", payload: "first", type: .submitJobBackground)
            let again = try await client.submit("cobg", unique: "u", payload: "second", type: .submitJobHighBackground)
            #expect(again == handle)
            let other = try await client.submit("cobg2", unique: "u", payload: "other", type: .submitJobBackground)
            #expect(other != handle, "the key is (function, unique)")
            #expect(sortedListLines(try await server.admin("status")) == ["cobg\t1\t0\t0", "cobg2\t1\t0\t0"])
            #expect(sortedListLines(try await server.admin("prioritystatus")) == ["cobg\t0\t1\t0\t0", "cobg2\t0\t1\t0\t0"])
            #expect(sortedListLines(try await server.admin("show unique jobs")) == ["u", "u"])
            // A background submitter is not a listener.
            #expect(try await client.statusUnique("u") == .response(.statusResponseUnique, "u", "1", "0", "0", "0", "0"))

            let worker = try await server.connect("worker")
            try await worker.canDo("cobg")
            #expect(try await worker.grab() == .response(.jobAssign, handle, "cobg", "first"))
            #expect(try await worker.grab() == .noJob)
            try await worker.send(RawPacket.request(.workComplete, handle, "ok"))
            #expect(try await client.receiveIfAny(within: .milliseconds(100)) == nil, "background submitters get no WORK_*")
        }
    }

    @Test("empty unique never coalesces", arguments: ServerKind.allCases)
    func emptyUnique(kind: ServerKind) async throws {
        try await withTestServer(kind) { server in
            let client = try await server.connect()
            let first = try await client.submit("nou", unique: "", payload: "same", type: .submitJobBackground)
            let second = try await client.submit("nou", unique: "", payload: "same", type: .submitJobBackground)
            #expect(first != second)
            #expect(try await server.admin("status") == "nou\t2\t0\t0\n.\n")
        }
    }
}
