import Testing

@testable import Gearman

/// The admin reply parsers, on the exact lines gearmand 1.1.20 sent in the probe (notes §A), and
/// on malformed lines. No sockets.
@Suite("Admin reply parsing", .timeLimit(.minutes(5)))
struct AdminReplyParsingTests {
    typealias FunctionStatus = GearmanAdminClient.FunctionStatus
    typealias FunctionPriorityStatus = GearmanAdminClient.FunctionPriorityStatus
    typealias WorkerInfo = GearmanAdminClient.WorkerInfo
    typealias JobInfo = GearmanAdminClient.JobInfo

    // MARK: Lists

    @Test("status: name, total, running, workers")
    func status() throws {
        #expect(
            try AdminReplyParser.status(["other\t2\t0\t1", "rev\t2\t0\t1"])
                == [
                    FunctionStatus(name: "other", total: 2, running: 0, availableWorkers: 1),
                    FunctionStatus(name: "rev", total: 2, running: 0, availableWorkers: 1),
                ])
        #expect(try AdminReplyParser.status([]) == [])
        #expect(
            try AdminReplyParser.status(["a\tb\t10\t3\t7"]) == [FunctionStatus(name: "a\tb", total: 10, running: 3, availableWorkers: 7)],
            "the counts are taken from the end, so a tab in a name survives")
    }

    @Test("prioritystatus: name, high, normal, low, workers")
    func priorityStatus() throws {
        #expect(
            try AdminReplyParser.priorityStatus(["other\t1\t0\t1\t1", "rev\t0\t2\t0\t1"])
                == [
                    FunctionPriorityStatus(name: "other", high: 1, normal: 0, low: 1, workers: 1),
                    FunctionPriorityStatus(name: "rev", high: 0, normal: 2, low: 0, workers: 1),
                ])
        #expect(try AdminReplyParser.priorityStatus([]) == [])
    }

    @Test("show jobs: handle, retries, ignore flag, persisted flag")
    func jobs() throws {
        #expect(
            try AdminReplyParser.jobs(["H:vm:1\t0\t0\t1", "H:vm:2\t0\t1\t0", "H:vm:14\t1\t0\t1"])
                == [
                    JobInfo(handle: "H:vm:1", retries: 0, isIgnored: false, isPersisted: true),
                    JobInfo(handle: "H:vm:2", retries: 0, isIgnored: true, isPersisted: false),
                    JobInfo(handle: "H:vm:14", retries: 1, isIgnored: false, isPersisted: true),
                ])
    }

    @Test("show unique jobs: one key per line, an empty line for none")
    func uniqueJobs() throws {
        #expect(try AdminReplyParser.uniqueJobs(["", "u-123", "lu", "hu"]) == ["", "u-123", "lu", "hu"])
        #expect(try AdminReplyParser.uniqueJobs([]) == [])
    }

    @Test("workers: number, address, client id or -, functions after the colon")
    func workers() throws {
        #expect(
            try AdminReplyParser.workers([
                "40 127.0.0.1 - :", "38 127.0.0.1 worker-A : other rev", "39 127.0.0.1 client-1 :",
            ])
                == [
                    WorkerInfo(connection: 40, address: "127.0.0.1", clientID: nil, functions: []),
                    WorkerInfo(connection: 38, address: "127.0.0.1", clientID: "worker-A", functions: ["other", "rev"]),
                    WorkerInfo(connection: 39, address: "127.0.0.1", clientID: "client-1", functions: []),
                ])
        #expect(
            try AdminReplyParser.workers(["7 ::1 - : f"])
                == [WorkerInfo(connection: 7, address: "::1", clientID: nil, functions: ["f"])])
        #expect(
            try AdminReplyParser.workers(["5 10.0.0.2 my worker : f g"])
                == [WorkerInfo(connection: 5, address: "10.0.0.2", clientID: "my worker", functions: ["f", "g"])],
            "a client id may contain spaces")
        #expect(
            try AdminReplyParser.workers(["5 10.0.0.2 a:b : f"])
                == [WorkerInfo(connection: 5, address: "10.0.0.2", clientID: "a:b", functions: ["f"])])
        #expect(
            try AdminReplyParser.workers(["6 127.0.0.1  :"])
                == [WorkerInfo(connection: 6, address: "127.0.0.1", clientID: nil, functions: [])],
            "an empty client id")
    }

    @Test(
        "malformed list lines are protocol violations naming the line",
        arguments: [
            ("status", "rev\t2\t0"), ("status", "rev\tx\t0\t1"), ("status", "rev\t-1\t0\t1"), ("status", "\t1\t2\t3"),
            ("status", "rev 2 0 1"), ("status", "rev\t+2\t0\t1"), ("status", "rev\t2\t0\t"),
            ("prioritystatus", "rev\t0\t2\t0"), ("prioritystatus", "rev\t0\t2\t0\tw"),
            ("show jobs", "H:vm:1\t0\t0"), ("show jobs", "H:vm:1\t0\tno\t1"),
            ("workers", "x 127.0.0.1 - :"), ("workers", "40 127.0.0.1 -"), ("workers", "40 127.0.0.1 - : a  b"),
            ("workers", "40"), ("workers", "40  - :"), ("workers", "40 127.0.0.1 - : a "),
        ])
    func malformedListLine(command: String, line: String) {
        let error = #expect(throws: GearmanError.self) {
            switch command {
            case "status": _ = try AdminReplyParser.status(["ok\t0\t0\t0", line])
            case "prioritystatus": _ = try AdminReplyParser.priorityStatus(["ok\t0\t0\t0\t0", line])
            case "show jobs": _ = try AdminReplyParser.jobs(["H:ok\t0\t0\t0", line])
            default: _ = try AdminReplyParser.workers(["1 127.0.0.1 - :", line])
            }
        }
        #expect(error?.code == .protocolViolation)
        #expect(error?.message.contains(String(reflecting: line)) == true, "\(String(describing: error))")
        #expect(error?.message.contains("`\(command)`") == true, "\(String(describing: error))")
    }

    @Test("a list answered with ERR throws the server's error")
    func listError() {
        let error = #expect(throws: GearmanError.self) {
            _ = try AdminReplyParser.status(["ERR UNKNOWN_COMMAND Unknown+server+commandstatus"])
        }
        #expect(error?.code == .serverError)
        #expect(error?.serverCode == "UNKNOWN_COMMAND")
        #expect(error?.message == "Unknown+server+commandstatus")
        let jobs = #expect(throws: GearmanError.self) { _ = try AdminReplyParser.uniqueJobs(["ERR PERMISSION_DENIED"]) }
        #expect(jobs?.serverCode == "PERMISSION_DENIED")
    }

    // MARK: Single lines

    @Test("OK replies")
    func ok() throws {
        try AdminReplyParser.ok(["OK"], command: "cancel job")
        for lines in [["OK 1"], ["OKAY"], [], ["OK", "OK"], [""]] {
            let error = #expect(throws: GearmanError.self, "\(lines)") {
                try AdminReplyParser.ok(lines, command: "cancel job")
            }
            #expect(error?.code == .protocolViolation, "\(lines)")
        }
    }

    @Test("OK <value> replies: version, verbose, getpid")
    func values() throws {
        #expect(try AdminReplyParser.value(["OK 1.1.20+ds"], command: "version") == "1.1.20+ds")
        #expect(try AdminReplyParser.value(["OK ERROR"], command: "verbose") == "ERROR")
        #expect(try AdminReplyParser.pid(["OK 3105"]) == 3105)
        for lines in [["OK"], ["OK "], ["3105"], ["OK abc"], ["OK -1"], ["OK 12 3"]] {
            let error = #expect(throws: GearmanError.self, "\(lines)") { _ = try AdminReplyParser.pid(lines) }
            #expect(error?.code == .protocolViolation, "\(lines)")
        }
        let version = #expect(throws: GearmanError.self) { _ = try AdminReplyParser.value(["OK"], command: "version") }
        #expect(version?.code == .protocolViolation)
    }

    @Test(
        "ERR lines: code and text; bare prose has no code",
        arguments: [
            ("ERR UNKNOWN_JOB", "UNKNOWN_JOB", "UNKNOWN_JOB"),
            (
                "ERR INVALID_ARGUMENTS An+incomplete+set+of+arguments+was+sent+to+this+command+maxqueue",
                "INVALID_ARGUMENTS", "An+incomplete+set+of+arguments+was+sent+to+this+command+maxqueue"
            ),
            ("ERR UNKNOWN_COMMAND Unknown+server+commandshutdown", "UNKNOWN_COMMAND", "Unknown+server+commandshutdown"),
            ("ERR there are still connected workers or executing clients", nil, "there are still connected workers or executing clients"),
            ("ERR function not found", nil, "function not found"),
            ("ERR CREATE_FUNCTION fx", "CREATE_FUNCTION", "fx"),
            ("ERR", nil, "the server answered ERR"),
        ] as [(String, String?, String)])
    func serverErrors(line: String, code: String?, message: String) {
        let parsed = AdminReplyParser.serverError(line)
        #expect(parsed?.code == .serverError)
        #expect(parsed?.serverCode == code)
        #expect(parsed?.message == message)
        let thrown = #expect(throws: GearmanError.self) { try AdminReplyParser.ok([line], command: "x") }
        #expect(thrown?.serverCode == code && thrown?.message == message)
    }

    @Test("lines that are not ERR replies", arguments: ["OK", "ERRx", "ERROR", "err UNKNOWN_JOB", " ERR X", ""])
    func notServerErrors(line: String) {
        #expect(AdminReplyParser.serverError(line) == nil)
    }

    // MARK: Arguments (checked before anything is sent)

    @Test("names and handles must be one token", arguments: ["", "a b", "a\nb", "a\rb", "a\tb", "a\u{0}b", "a\u{7F}"])
    func badTokens(value: String) {
        let error = #expect(throws: GearmanError.self) { try GearmanAdminClient.validateToken(value, what: "function name") }
        #expect(error?.code == .invalidArgument)
    }

    @Test("good tokens pass", arguments: ["H:vm:1", "rev", "acme.resize", "ünïcode", "a:b"])
    func goodTokens(value: String) throws {
        try GearmanAdminClient.validateToken(value, what: "function name")
    }

    @Test("bad arguments fail before connecting")
    func argumentsCheckedBeforeConnecting() async {
        // Port 1 on loopback: any attempt to connect would fail with .connectionFailed instead.
        let client = GearmanAdminClient(server: GearmanServerAddress(host: "127.0.0.1", port: 1))
        defer { client.close() }
        let raw = await #expect(throws: GearmanError.self) { _ = try await client.raw("status\nshutdown", list: true) }
        #expect(raw?.code == .invalidArgument)
        let cancel = await #expect(throws: GearmanError.self) { try await client.cancelJob("H:a:1 x") }
        #expect(cancel?.code == .invalidArgument)
        let create = await #expect(throws: GearmanError.self) { try await client.createFunction("") }
        #expect(create?.code == .invalidArgument)
        let drop = await #expect(throws: GearmanError.self) { try await client.dropFunction("a\r\nshutdown") }
        #expect(drop?.code == .invalidArgument)
        let limit = await #expect(throws: GearmanError.self) { try await client.setMaxQueue(function: "f", limit: -1) }
        #expect(limit?.code == .invalidArgument)
        let limits = await #expect(throws: GearmanError.self) {
            try await client.setMaxQueue(function: "f", high: 1, normal: -2, low: 0)
        }
        #expect(limits?.code == .invalidArgument)
    }
}
