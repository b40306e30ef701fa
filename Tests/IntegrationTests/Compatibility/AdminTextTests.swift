import GearmanProtocol
import NIOCore
import Testing

/// One `workers` line, with what may legitimately differ between servers (fd numbers, function
/// order) taken out.
struct WorkerLine: Hashable, Comparable, CustomStringConvertible {
    var clientID: String
    var functions: [String]

    static func < (lhs: WorkerLine, rhs: WorkerLine) -> Bool { lhs.description < rhs.description }
    var description: String { "\(clientID) : \(functions.joined(separator: " "))" }
}

/// Parses a `workers` reply, checking each line's exact shape: `<fd> <ip> <id> :` then ` <fn>` per
/// function, no trailing space; the list ends with `.\n`.
func parseWorkers(_ reply: String, sourceLocation: SourceLocation = #_sourceLocation) -> [WorkerLine] {
    #expect(reply.hasSuffix(".\n"), "workers reply ends with .\\n: \(reprString(reply))", sourceLocation: sourceLocation)
    var result: [WorkerLine] = []
    for line in sortedListLines(reply) {
        let parts = line.split(separator: " ", omittingEmptySubsequences: false).map(String.init)
        let shapeOK =
            parts.count >= 4 && !parts[0].isEmpty && parts[0].allSatisfy(\.isNumber) && parts[1] == "127.0.0.1"
            && !parts[2].isEmpty && parts[3] == ":" && parts[4...].allSatisfy { !$0.isEmpty }
        #expect(shapeOK, "malformed workers line \(reprString(line))", sourceLocation: sourceLocation)
        if shapeOK { result.append(WorkerLine(clientID: parts[2], functions: parts[4...].sorted())) }
    }
    return result.sorted()
}

/// The text admin protocol, byte for byte (PROTOCOL.md §b, probe notes §A).
@Suite("Admin text protocol", .serialized, .timeLimit(.minutes(5)))
struct AdminTextTests {
    /// The probe's setup: a worker (CAN_DO rev, other; id worker-A), a client (id client-1), four
    /// background jobs. Returns the handles in submission order.
    static func probeSetup(_ server: TestServer) async throws -> (worker: RawClient, client: RawClient, handles: [String]) {
        let worker = try await server.connect("worker")
        try await worker.canDo("rev", "other")
        try await worker.send(RawPacket.request(.setClientID, "worker-A"))
        #expect(try await worker.ping())
        let client = try await server.connect("client")
        try await client.send(RawPacket.request(.setClientID, "client-1"))
        let handles = [
            try await client.submit("rev", unique: "u-123", payload: "payload1", type: .submitJobBackground),
            try await client.submit("rev", unique: "", payload: "payload2", type: .submitJobBackground),
            try await client.submit("other", unique: "hu", payload: "", type: .submitJobHighBackground),
            try await client.submit("other", unique: "lu", payload: "", type: .submitJobLowBackground),
        ]
        return (worker, client, handles)
    }

    @Test("list replies: status, prioritystatus, show jobs, show unique jobs, workers", arguments: ServerKind.allCases)
    func listReplies(kind: ServerKind) async throws {
        try await withTestServer(kind) { server in
            let (_, _, handles) = try await Self.probeSetup(server)
            let admin = try await server.connect("admin")

            let status = try await admin.adminCommand("status")
            #expect(status.hasSuffix("\n.\n"))
            #expect(sortedListLines(status) == ["other\t2\t0\t1", "rev\t2\t0\t1"])
            let priority = try await admin.adminCommand("prioritystatus")
            #expect(sortedListLines(priority) == ["other\t1\t0\t1\t1", "rev\t0\t2\t0\t1"])
            let jobs = try await admin.adminCommand("show jobs")
            #expect(sortedListLines(jobs) == handles.map { "\($0)\t0\t0\t1" }.sorted())
            let uniques = try await admin.adminCommand("show unique jobs")
            #expect(sortedListLines(uniques) == ["", "hu", "lu", "u-123"], "an empty unique is an empty line")
            #expect(uniques.hasSuffix("\n.\n"))

            let workers = try await admin.adminCommand("workers")
            #expect(
                parseWorkers(workers)
                    == [
                        WorkerLine(clientID: "-", functions: []),  // the admin connection itself
                        WorkerLine(clientID: "client-1", functions: []),
                        WorkerLine(clientID: "worker-A", functions: ["other", "rev"]),
                    ].sorted(), "\(reprString(workers))")
            #expect(workers.contains(" client-1 :\n"), "no trailing space after ':' without functions")
        }
    }

    @Test("an empty server lists nothing", arguments: ServerKind.allCases)
    func emptyLists(kind: ServerKind) async throws {
        try await withTestServer(kind) { server in
            let admin = try await server.connect("admin")
            for command in ["status", "prioritystatus", "show jobs", "show unique jobs"] {
                #expect(try await admin.adminCommand(command) == ".\n", "\(command)")
            }
            #expect(parseWorkers(try await admin.adminCommand("workers")) == [WorkerLine(clientID: "-", functions: [])])
        }
    }

    @Test("command words are case-insensitive; CRLF, trailing spaces and pipelining work", arguments: ServerKind.allCases)
    func lineParsing(kind: ServerKind) async throws {
        try await withTestServer(kind) { server in
            let client = try await server.connect()
            _ = try await client.submit("lp", unique: "x", payload: "", type: .submitJobBackground)
            let expected = "lp\t1\t0\t0\n.\n"
            let admin = try await server.connect("admin")
            for line in ["status\n", "STATUS\n", "Status\r\n", "status  \n"] {
                try await admin.sendRaw(ByteBuffer(string: line))
                #expect(try await admin.readAdminReply() == expected, "\(reprString(line))")
            }
            try await admin.sendRaw(ByteBuffer(string: "status\nversion\n"))
            #expect(try await admin.readAdminReply() == expected)
            let version = try await admin.readAdminReply()
            #expect(version.hasPrefix("OK ") && version.hasSuffix("\n") && !version.hasSuffix("\r\n"))
        }
    }

    @Test("single-value replies: getpid, verbose, version", arguments: ServerKind.allCases)
    func singleValues(kind: ServerKind) async throws {
        try await withTestServer(kind) { server in
            let admin = try await server.connect("admin")
            #expect(try await admin.adminCommand("getpid") == "OK \(server.pid)\n")
            #expect(try await admin.adminCommand("verbose") == "OK ERROR\n")
            let version = try await admin.adminCommand("version")
            // Values differ (1.1.20+ds vs Gearlock's own); the shape is `OK <version>\n`.
            let value = version.dropFirst(3).dropLast()
            #expect(version.hasPrefix("OK ") && version.hasSuffix("\n") && !version.hasSuffix("\r\n"), "\(reprString(version))")
            #expect(!value.isEmpty && !value.contains(" ") && !value.contains("\n"), "\(reprString(version))")
            if kind == .gearmand { #expect(version == "OK 1.1.20+ds\n") }
        }
    }

    @Test("error replies, exact bytes", arguments: ServerKind.allCases)
    func errorReplies(kind: ServerKind) async throws {
        try await withTestServer(kind) { server in
            let admin = try await server.connect("admin")
            let cases: [(String, String)] = [
                ("frobnicate a b", "ERR UNKNOWN_COMMAND Unknown+server+commandfrobnicate\r\n"),
                ("show", "ERR UNKNOWN_COMMAND Unknown+server+commandshow\r\n"),
                ("show foo", "ERR UNKNOWN_SHOW_ARGUMENTS\r\n"),
                ("", "ERR UNKNOWN_COMMAND Unknown+server+command\r\n"),
                ("\r", "ERR UNKNOWN_COMMAND Unknown+server+command\r\n"),
                (" status", "ERR UNKNOWN_COMMAND Unknown+server+command\r\n"),
                ("cancel", "ERR UNKNOWN_COMMAND Unknown+server+commandcancel\r\n"),
                ("cancel job", "ERR UNKNOWN_COMMAND Unknown+server+commandcancel\r\n"),
                ("cancel x y", "ERR UNKNOWN_ERROR\r\n"),
                ("cancel job H:nope:999", "ERR UNKNOWN_JOB\r\n"),
                ("drop function nosuch", "ERR function not found\r\n"),
                (
                    "maxqueue",
                    "ERR INVALID_ARGUMENTS An+incomplete+set+of+arguments+was+sent+to+this+command+maxqueue\r\n"
                ),
            ]
            for (line, expected) in cases {
                #expect(try await admin.adminCommand(line) == expected, "\(reprString(line))")
            }
            #expect(try await admin.adminCommand("version").hasPrefix("OK "), "the connection stays usable")
        }
    }

    @Test("cancel job: OK\\r\\n; a waiting client gets WORK_FAIL; nobody can grab it", arguments: ServerKind.allCases)
    func cancelJob(kind: ServerKind) async throws {
        try await withTestServer(kind) { server in
            let client = try await server.connect("client")
            let background = try await client.submit("cx", unique: "b", payload: "", type: .submitJobBackground)
            let foreground = try await client.submit("cx", unique: "f", payload: "")
            let admin = try await server.connect("admin")
            #expect(try await admin.adminCommand("cancel job \(background)") == "OK\r\n")
            #expect(try await admin.adminCommand("cancel job \(foreground)") == "OK\r\n")
            #expect(try await client.receive() == .packet(.response(.workFail, foreground)))
            let worker = try await server.connect("worker")
            try await worker.canDo("cx")
            #expect(try await worker.grab() == .noJob)
        }
    }

    @Test("create function / drop function", arguments: ServerKind.allCases)
    func createAndDrop(kind: ServerKind) async throws {
        try await withTestServer(kind) { server in
            let admin = try await server.connect("admin")
            // CRLF, as gearadmin sends it (LF alone hits gearmand's off-by-two, see DontCopyTests).
            try await admin.sendRaw(ByteBuffer(string: "create function fx\r\n"))
            #expect(try await admin.readAdminReply() == "OK\r\n")
            #expect(try await admin.adminCommand("status") == "fx\t0\t0\t0\n.\n")
            #expect(try await admin.adminCommand("prioritystatus") == "fx\t0\t0\t0\t0\n.\n")

            let worker = try await server.connect("worker")
            try await worker.canDo("busy")
            #expect(try await worker.ping())
            #expect(
                try await admin.adminCommand("drop function busy")
                    == "ERR there are still connected workers or executing clients\r\n")
            #expect(try await admin.adminCommand("drop function FX") == "OK\r\n", "names match case-insensitively")
            #expect(try await admin.adminCommand("drop function fx") == "ERR function not found\r\n")
            #expect(try await admin.adminCommand("status") == "busy\t0\t0\t1\n.\n")
        }
    }

    @Test("maxqueue: a full queue answers QUEUE_ERROR; coalescing bypasses it; 0 lifts it", arguments: ServerKind.allCases)
    func maxQueue(kind: ServerKind) async throws {
        try await withTestServer(kind) { server in
            let admin = try await server.connect("admin")
            try await admin.sendRaw(ByteBuffer(string: "create function mq\r\n"))
            #expect(try await admin.readAdminReply() == "OK\r\n")
            #expect(try await admin.adminCommand("maxqueue mq 1") == "OK\r\n")
            let client = try await server.connect("client")
            let first = try await client.submit("mq", unique: "m1", payload: "x", type: .submitJobBackground)
            try await client.send(RawPacket.request(.submitJobBackground, "mq", "m2", "x"))
            #expect(try await client.receive() == .packet(.error("QUEUE_ERROR", "Job queue is full")))
            #expect(try await client.submit("mq", unique: "m1", payload: "y", type: .submitJobBackground) == first)
            #expect(try await admin.adminCommand("maxqueue mq 0 0 0") == "OK\r\n")
            _ = try await client.submit("mq", unique: "m2", payload: "x", type: .submitJobBackground)
            #expect(try await admin.adminCommand("status") == "mq\t2\t0\t0\n.\n")
        }
    }
}
