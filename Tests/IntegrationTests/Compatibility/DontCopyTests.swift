import GearmanProtocol
import NIOCore
import Testing

/// gearmand bugs PROTOCOL.md lists under "Don't copy". Each test asserts the correct behaviour;
/// the gearmand run is expected to fail it (`withKnownIssue`), which also proves the bug is real.
@Suite("Don't copy gearmand's bugs", .serialized, .timeLimit(.minutes(5)))
struct DontCopyTests {
    @Test("a 64-byte unique is kept whole: listed, coalesced and found by GET_STATUS_UNIQUE", arguments: ServerKind.allCases)
    func sixtyFourByteUnique(kind: ServerKind) async throws {
        try await withTestServer(kind) { server in
            let unique = String(repeating: "u", count: 63) + "X"
            let client = try await server.connect()
            let handle = try await client.submit("u64", unique: unique, payload: "x", type: .submitJobBackground)
            try await withKnownIssue("gearmand 1.1.20 stores a 64-byte unique truncated to 63 bytes") {
                #expect(try await server.admin("show unique jobs") == "\(unique)\n.\n")
                #expect(try await client.submit("u64", unique: unique, payload: "x", type: .submitJobBackground) == handle)
                let prefix = try await client.submit("u64", unique: String(unique.dropLast()), payload: "x", type: .submitJobBackground)
                #expect(prefix != handle, "the 63-byte prefix is a different unique")
                // gearmand does not answer at all here, hence the short timeout.
                try await client.send(RawPacket.request(.getStatusUnique, unique))
                let status = try await client.receive(timeout: .seconds(1))
                #expect(status == .packet(.response(.statusResponseUnique, unique, "1", "0", "0", "0", "0")))
            } when: {
                kind == .gearmand
            }
        }
    }

    @Test("`create function gx` with a bare LF creates gx", arguments: ServerKind.allCases)
    func createFunctionWithLF(kind: ServerKind) async throws {
        try await withTestServer(kind) { server in
            let admin = try await server.connect("admin")
            #expect(try await admin.adminCommand("create function gx") == "OK\r\n")
            let status = try await admin.adminCommand("status")
            withKnownIssue("gearmand 1.1.20 computes the name length as token size - 2: LF-terminated `gx` creates `g`") {
                #expect(status == "gx\t0\t0\t0\n.\n")
            } when: {
                kind == .gearmand
            }
        }
    }

    @Test("maxqueue for a function not seen yet takes effect", arguments: ServerKind.allCases)
    func maxQueueForNewFunction(kind: ServerKind) async throws {
        try await withTestServer(kind) { server in
            let admin = try await server.connect("admin")
            #expect(try await admin.adminCommand("maxqueue mqnew 1") == "OK\r\n")
            let client = try await server.connect("client")
            _ = try await client.submit("mqnew", unique: "a", payload: "", type: .submitJobBackground)
            try await client.send(RawPacket.request(.submitJobBackground, "mqnew", "b", ""))
            let reply = try await client.receive()
            withKnownIssue("gearmand 1.1.20 silently ignores maxqueue for a function that does not exist yet") {
                #expect(reply == .packet(.error("QUEUE_ERROR", "Job queue is full")))
            } when: {
                kind == .gearmand
            }
        }
    }

    @Test("a background job survives a coalesced foreground client disconnecting", arguments: ServerKind.allCases)
    func backgroundJobSurvivesForegroundDisconnect(kind: ServerKind) async throws {
        try await withTestServer(kind) { server in
            let submitter = try await server.connect("bg")
            let handle = try await submitter.submit("lost", unique: "lu", payload: "keep-me", type: .submitJobBackground)
            let watcher = try await server.connect("fg")
            #expect(try await watcher.submit("lost", unique: "lu", payload: "other") == handle)
            #expect(try await submitter.statusUnique("lu") == .response(.statusResponseUnique, "lu", "1", "0", "0", "0", "1"))
            await watcher.close()
            // Wait until the server has seen the disconnect.
            let deadline = ContinuousClock.now + .seconds(20)
            var status = try await submitter.statusUnique("lu")
            while status.arguments(6).last.map({ String(buffer: $0) }) != "0" && ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(25))
                status = try await submitter.statusUnique("lu")
            }
            let worker = try await server.connect("worker")
            try await worker.canDo("lost")
            let grabbed = try await worker.grab()
            withKnownIssue("gearmand 1.1.20 silently discards the background job when its last foreground listener leaves") {
                #expect(grabbed == .response(.jobAssign, handle, "lost", "keep-me"))
            } when: {
                kind == .gearmand
            }
        }
    }
}
