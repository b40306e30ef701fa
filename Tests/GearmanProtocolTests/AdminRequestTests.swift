import GearmanProtocol
import NIOCore
import Testing

/// Admin line parsing, PROTOCOL.md §b.
@Suite struct AdminRequestTests {
    struct Case: Sendable, CustomTestStringConvertible {
        let line: String
        let request: AdminRequest
        init(_ line: String, _ request: AdminRequest) {
            self.line = line
            self.request = request
        }
        var testDescription: String { "\"\(line)\"" }
    }

    static let commands: [Case] = [
        Case("workers", .workers),
        Case("status", .status),
        Case("prioritystatus", .priorityStatus),
        Case("show jobs", .showJobs),
        Case("show unique jobs", .showUniqueJobs),
        Case("cancel job H:host:1", .cancelJob(handle: "H:host:1")),
        Case("create function fx", .createFunction(name: "fx")),
        Case("drop function fx", .dropFunction(name: "fx")),
        Case("maxqueue f", .maxQueue(function: "f", limits: MaxQueueLimits(all: 0))),
        Case("maxqueue f 5", .maxQueue(function: "f", limits: MaxQueueLimits(all: 5))),
        Case("maxqueue f 1 2 3", .maxQueue(function: "f", limits: MaxQueueLimits(high: 1, normal: 2, low: 3))),
        Case("getpid", .getPID),
        Case("verbose", .verbose),
        Case("version", .version),
        Case("shutdown", .shutdown(graceful: false)),
        Case("shutdown graceful", .shutdown(graceful: true)),
        Case("auth p s", .authenticate(principal: "p", secret: "s")),
    ]

    @Test(arguments: commands)
    func everyCommandParses(testCase: Case) {
        #expect(AdminRequest(line: testCase.line) == testCase.request)
    }

    @Test(arguments: commands)
    func byteBufferLineParsesLikeString(testCase: Case) {
        #expect(AdminRequest(line: buf(testCase.line)) == testCase.request)
    }

    static let caseAndSpacing: [Case] = [
        Case("STATUS", .status),
        Case("Workers", .workers),
        Case("PRIORITYSTATUS", .priorityStatus),
        Case("SHOW JOBS", .showJobs),
        Case("Show Unique Jobs", .showUniqueJobs),
        Case("CANCEL JOB H:Host:1", .cancelJob(handle: "H:Host:1")),  // the handle keeps its case
        Case("Create Function Fx", .createFunction(name: "Fx")),
        Case("MAXQUEUE F 7", .maxQueue(function: "F", limits: MaxQueueLimits(all: 7))),
        Case("VERSION", .version),
        Case("SHUTDOWN GRACEFUL", .shutdown(graceful: true)),
        Case("show   jobs", .showJobs),  // runs of spaces after a token collapse
        Case("status   ", .status),
        Case("maxqueue  f   1  2   3", .maxQueue(function: "f", limits: MaxQueueLimits(high: 1, normal: 2, low: 3))),
    ]

    @Test(arguments: caseAndSpacing)
    func commandWordsAreCaseInsensitiveAndSpacesCollapse(testCase: Case) {
        #expect(AdminRequest(line: testCase.line) == testCase.request)
    }

    static let errors: [Case] = [
        Case(" status", .invalid(.unknownCommand(word: ""))),
        Case("", .invalid(.unknownCommand(word: ""))),
        Case("frobnicate", .invalid(.unknownCommand(word: "frobnicate"))),
        Case("FROB x", .invalid(.unknownCommand(word: "FROB"))),
        Case("show", .invalid(.unknownCommand(word: "show"))),
        Case("show foo", .invalid(.unknownShowArguments)),
        Case("show unique", .invalid(.unknownShowArguments)),
        Case("show jobs now", .invalid(.unknownShowArguments)),
        Case("cancel", .invalid(.unknownCommand(word: "cancel"))),
        Case("cancel job", .invalid(.unknownCommand(word: "cancel"))),
        Case("cancel x y", .invalid(.unknownError)),
        Case("maxqueue", .invalid(.invalidArguments(command: "maxqueue"))),
        Case("MAXQUEUE", .invalid(.invalidArguments(command: "MAXQUEUE"))),  // echoed as typed
        Case("shutdown now", .invalid(.invalidArguments(command: "shutdown"))),
        Case("auth", .invalid(.invalidArguments(command: "auth"))),
        Case("auth p", .invalid(.invalidArguments(command: "auth"))),
        Case("auth p s extra", .invalid(.invalidArguments(command: "auth"))),
        Case("AUTH p", .invalid(.invalidArguments(command: "AUTH"))),
    ]

    @Test(arguments: errors)
    func badLinesParseToTheirError(testCase: Case) {
        #expect(AdminRequest(line: testCase.line) == testCase.request)
    }

    /// Gearlock's `auth <principal> <secret>` line: the command word is case-insensitive, the
    /// principal and secret keep their case and every byte but spaces (a secret may hold `:`).
    static let authentication: [Case] = [
        Case("auth acme-web s3cret", .authenticate(principal: "acme-web", secret: "s3cret")),
        Case("AUTH Acme-Web S3CRET", .authenticate(principal: "Acme-Web", secret: "S3CRET")),
        Case("Auth p co:lon:s", .authenticate(principal: "p", secret: "co:lon:s")),
        Case("auth   p   s  ", .authenticate(principal: "p", secret: "s")),
    ]

    @Test(arguments: authentication)
    func authLinesParse(testCase: Case) {
        #expect(AdminRequest(line: testCase.line) == testCase.request)
        #expect(AdminRequest(line: buf(testCase.line)) == testCase.request)
    }

    @Test func authLineErrorReplyDoesNotEchoTheSecret() {
        guard case .invalid(let error) = AdminRequest(line: "auth p secret-value extra") else {
            Issue.record("expected an invalid line")
            return
        }
        #expect(error.reply == "ERR INVALID_ARGUMENTS An+incomplete+set+of+arguments+was+sent+to+this+command+auth\r\n")
        #expect(!error.reply.contains("secret-value"))
    }

    @Test func authLineFromTheDecoderParses() throws {
        var buffer = buf("auth p s:t\r\n")
        var decoder = GearmanFrameDecoder()
        guard case .text(let line) = try decoder.decode(buffer: &buffer) else {
            Issue.record("expected a text frame")
            return
        }
        #expect(AdminRequest(line: line) == .authenticate(principal: "p", secret: "s:t"))
    }

    @Test(arguments: [
        ("maxqueue f -5", MaxQueueLimits(all: 0)),
        ("maxqueue f -1 2 -3", MaxQueueLimits(high: 0, normal: 2, low: 0)),
        ("maxqueue f 0", MaxQueueLimits.unlimited),
        ("maxqueue f 5x", MaxQueueLimits(all: 5)),
        ("maxqueue f 1 2", MaxQueueLimits(high: 1, normal: 2, low: 0)),
        ("maxqueue f 1 2 3 4", MaxQueueLimits(high: 1, normal: 2, low: 3)),
        ("maxqueue f abc", MaxQueueLimits(all: 0)),
    ])
    func negativeOrNonNumericLimitsBecomeZero(line: String, limits: MaxQueueLimits) {
        #expect(AdminRequest(line: line) == .maxQueue(function: "f", limits: limits))
    }

    @Test func maxQueueLimitsSubscriptByPriority() {
        let limits = MaxQueueLimits(high: 1, normal: 2, low: 3)
        #expect(limits[.high] == 1)
        #expect(limits[.normal] == 2)
        #expect(limits[.low] == 3)
        #expect(MaxQueueLimits.unlimited == MaxQueueLimits(high: 0, normal: 0, low: 0))
    }

    /// The decoder and the parser together: a CRLF line from gearadmin and an LF line from netcat.
    @Test(arguments: [
        ("STATUS\r\n", AdminRequest.status),
        ("show unique jobs\n", .showUniqueJobs),
        (" status\r\n", .invalid(.unknownCommand(word: ""))),
        ("\r\n", .invalid(.unknownCommand(word: ""))),
        ("cancel job H:h:1\r\n", .cancelJob(handle: "H:h:1")),
    ])
    func decodedLinesParse(input: String, request: AdminRequest) throws {
        var buffer = buf(input)
        var decoder = GearmanFrameDecoder()
        let frame = try decoder.decode(buffer: &buffer)
        guard case .text(let line) = frame else {
            Issue.record("expected a text frame, got \(String(describing: frame))")
            return
        }
        #expect(AdminRequest(line: line) == request)
    }
}

/// Exact reply bytes, line endings included (PROTOCOL.md §b).
@Suite struct AdminReplyTests {
    @Test(arguments: [
        (AdminRequestError.unknownCommand(word: "frobnicate"), "ERR UNKNOWN_COMMAND Unknown+server+commandfrobnicate\r\n"),
        (.unknownCommand(word: ""), "ERR UNKNOWN_COMMAND Unknown+server+command\r\n"),
        // gearmand ≥ 1.1.15's answer to `shutdown`
        (.unknownCommand(word: "shutdown"), "ERR UNKNOWN_COMMAND Unknown+server+commandshutdown\r\n"),
        (
            .invalidArguments(command: "maxqueue"),
            "ERR INVALID_ARGUMENTS An+incomplete+set+of+arguments+was+sent+to+this+command+maxqueue\r\n"
        ),
        (.unknownShowArguments, "ERR UNKNOWN_SHOW_ARGUMENTS\r\n"),
        (.unknownError, "ERR UNKNOWN_ERROR\r\n"),
    ])
    func errorReplies(error: AdminRequestError, reply: String) {
        #expect(Array(error.reply.utf8) == Array(reply.utf8))
    }

    @Test func okRepliesEndInCRLFButValueRepliesInLF() {
        #expect(Array(AdminReply.ok.utf8) == Array("OK\r\n".utf8))
        #expect(Array(AdminReply.ok("1.1.20+ds").utf8) == Array("OK 1.1.20+ds\n".utf8))
        #expect(Array(AdminReply.ok("ERROR").utf8) == Array("OK ERROR\n".utf8))
        #expect(Array(AdminReply.ok("12345").utf8) == Array("OK 12345\n".utf8))
    }

    @Test func listTerminatorIsDotLF() {
        #expect(Array(AdminReply.endOfList.utf8) == [0x2E, 0x0A])
    }

    @Test func errorRepliesEndInCRLF() {
        #expect(AdminReply.error("UNKNOWN_JOB") == "ERR UNKNOWN_JOB\r\n")
        #expect(AdminReply.error("CREATE_FUNCTION", "fx") == "ERR CREATE_FUNCTION fx\r\n")
        #expect(AdminReply.error("function not found") == "ERR function not found\r\n")
        #expect(
            AdminReply.error("there are still connected workers or executing clients")
                == "ERR there are still connected workers or executing clients\r\n")
    }
}
