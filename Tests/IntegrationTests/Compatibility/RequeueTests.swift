import Foundation
import GearmanProtocol
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A worker lost mid-job: requeue, retry cap (PROTOCOL.md §c.4, §c.6).
@Suite("Requeue on worker loss", .serialized, .timeLimit(.minutes(5)))
struct RequeueTests {
    @Test("a raw worker's connection dies mid-job: a sleeping worker is woken, gets the same handle, the client gets the result", arguments: ServerKind.allCases)
    func rawWorkerVanishes(kind: ServerKind) async throws {
        try await withTestServer(kind) { server in
            let client = try await server.connect("client")
            let first = try await server.connect("worker1")
            try await first.canDo("rq")
            let handle = try await client.submit("rq", unique: "rq-1", payload: "work")
            #expect(try await first.grab() == .response(.jobAssign, handle, "rq", "work"))

            let second = try await server.connect("worker2")
            try await second.canDo("rq")
            #expect(try await second.grab() == .noJob)
            try await second.send(RawPacket.request(.preSleep))
            #expect(try await second.receiveIfAny(within: .milliseconds(100)) == nil)

            await first.abort()
            #expect(try await second.receive() == .noop, "requeued jobs wake sleeping workers")
            #expect(try await second.grab() == .response(.jobAssign, handle, "rq", "work"))
            #expect(try await server.admin("show jobs") == "\(handle)\t1\t0\t0\n.\n", "retry count 1, foreground")
            #expect(try await client.receiveIfAny(within: .milliseconds(50)) == nil, "clients are not told about the requeue")
            try await second.send(RawPacket.request(.workComplete, handle, "krow"))
            #expect(try await client.receive() == .packet(.response(.workComplete, handle, "krow")))
        }
    }

    @Test("a gearman -w worker running `sleep 30` is SIGKILLed: another worker finishes the job", arguments: ServerKind.allCases)
    func killedWorkerProcess(kind: ServerKind) async throws {
        try await withTestServer(kind) { server in
            let worker = try server.startGearman(["-w", "-f", "slow", "--"] + diesWithParent(["sleep", "30"]))
            do {
                let registered = try await server.adminEventually("status") { $0 == "slow\t0\t0\t1\n.\n" }
                try #require(registered == "slow\t0\t0\t1\n.\n", "gearman -w registered")
                let client = try await server.connect("client")
                let handle = try await client.submit("slow", unique: "s1", payload: "zzz")
                let running = try await server.adminEventually("status") { $0 == "slow\t1\t1\t1\n.\n" }
                try #require(running == "slow\t1\t1\t1\n.\n", "gearman -w took the job")

                let rescuer = try await server.connect("rescuer")
                try await rescuer.canDo("slow")
                #expect(try await rescuer.grab() == .noJob)
                try await rescuer.send(RawPacket.request(.preSleep))

                worker.killTree()
                let result = await worker.wait(timeout: .seconds(30))
                #expect(result.signalled && result.status == SIGKILL, "\(result)")
                #expect(try await rescuer.receive() == .noop)
                #expect(try await rescuer.grab() == .response(.jobAssign, handle, "slow", "zzz"))
                try await rescuer.send(RawPacket.request(.workComplete, handle, "rescued"))
                #expect(try await client.receive() == .packet(.response(.workComplete, handle, "rescued")))
            } catch {
                worker.killTree()
                throw error
            }
        }
    }

    @Test("with job retries 2, a job lost twice fails its client with WORK_FAIL", arguments: ServerKind.allCases)
    func retryCap(kind: ServerKind) async throws {
        try await withTestServer(kind, ServerOptions(jobRetries: 2)) { server in
            let client = try await server.connect("client")
            let handle = try await client.submit("cap", unique: "cap-1", payload: "x")
            for attempt in 1...2 {
                let worker = try await server.connect("worker\(attempt)")
                try await worker.canDo("cap")
                #expect(try await worker.grabUntilAssigned() == .response(.jobAssign, handle, "cap", "x"))
                await worker.abort()
            }
            let fail = try await client.receivePacket()
            #expect(fail.type == PacketType.workFail.rawValue && fail.magic == Magic.response, "\(fail)")
            #expect(fail.firstField == handle, "\(fail)")
            if kind == .gearlock {
                #expect(fail == .response(.workFail, handle))
            }
            let last = try await server.connect("worker3")
            try await last.canDo("cap")
            #expect(try await last.grab() == .noJob, "the job is gone")
            #expect(try await server.admin("show jobs") == ".\n")
        }
    }

    @Test("a requeued background job keeps its handle and counts its retries", arguments: ServerKind.allCases)
    func backgroundRequeue(kind: ServerKind) async throws {
        try await withTestServer(kind) { server in
            let client = try await server.connect("client")
            let handle = try await client.submit("rqbg", unique: "b1", payload: "bg", type: .submitJobBackground)
            let first = try await server.connect("worker1")
            try await first.canDo("rqbg")
            #expect(try await first.grab() == .response(.jobAssign, handle, "rqbg", "bg"))
            await first.close()
            let shown = try await server.adminEventually("show jobs") { $0 == "\(handle)\t1\t0\t1\n.\n" }
            #expect(shown == "\(handle)\t1\t0\t1\n.\n")
            #expect(try await server.admin("status") == "rqbg\t1\t0\t0\n.\n")
            let second = try await server.connect("worker2")
            try await second.canDo("rqbg")
            #expect(try await second.grab() == .response(.jobAssign, handle, "rqbg", "bg"))
        }
    }

    @Test("a late WORK_COMPLETE from the lost worker's handle on another connection is JOB_NOT_FOUND", arguments: ServerKind.allCases)
    func ownershipIsPerConnection(kind: ServerKind) async throws {
        try await withTestServer(kind) { server in
            let client = try await server.connect("client")
            let owner = try await server.connect("owner")
            try await owner.canDo("own")
            let handle = try await client.submit("own", unique: "o1", payload: "x")
            #expect(try await owner.grab() == .response(.jobAssign, handle, "own", "x"))
            let intruder = try await server.connect("intruder")
            try await intruder.canDo("own")
            try await intruder.send(RawPacket.request(.workComplete, handle, "stolen"))
            #expect(
                try await intruder.receive()
                    == .packet(.error("JOB_NOT_FOUND", "Job given in work result not found")))
            #expect(try await client.receiveIfAny(within: .milliseconds(50)) == nil)
            try await owner.send(RawPacket.request(.workComplete, handle, "mine"))
            #expect(try await client.receive() == .packet(.response(.workComplete, handle, "mine")))
        }
    }
}
