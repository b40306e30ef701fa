import GearmanProtocol
import NIOCore
import Testing

@testable import Gearman

/// Request and listener tokens: plain objects, compared by identity as the machine does.
final class TestRequest: CustomStringConvertible {
    let name: String
    init(_ name: String) { self.name = name }
    var description: String { "request \(name)" }
}

final class TestListener: CustomStringConvertible {
    let name: String
    init(_ name: String) { self.name = name }
    var description: String { "listener \(name)" }
}

typealias Machine = ConnectionStateMachine<TestRequest, TestListener>

func buffer(_ text: String) -> ByteBuffer { ByteBuffer(string: text) }

func response(_ packet: GearmanPacket) -> GearmanFrame { .packet(packet, magic: .response) }

func line(_ text: String) -> GearmanFrame { .text(ByteBuffer(string: text)) }

/// What an action was, in a form tests can compare.
enum Outcome: Equatable, CustomStringConvertible {
    case succeeded(String, GearmanPacket)
    case succeededText(String, [String])
    case failed(String, code: GearmanError.Code, serverCode: String?)
    case delivered(String, handle: String, to: [String])
    case wake
    case unmatched(code: String)
    case authenticated
    case close
    case none

    init(_ action: Machine.Action) {
        switch action {
        case .succeed(let requests, .packet(let packet)): self = .succeeded(Self.names(requests), packet)
        case .succeed(let requests, .text(let lines)): self = .succeededText(Self.names(requests), lines)
        case .fail(let requests, let error):
            self = .failed(Self.names(requests), code: error.code, serverCode: error.serverCode)
        case .deliver(let event, let handle, let listeners):
            self = .delivered(Self.name(event), handle: String(buffer: handle), to: listeners.map(\.name))
        case .wake: self = .wake
        case .unmatchedError(let code, _): self = .unmatched(code: code)
        case .authenticated: self = .authenticated
        case .closeConnection: self = .close
        case .none: self = .none
        }
    }

    static func names(_ requests: [TestRequest]) -> String {
        requests.map(\.name).joined(separator: "+")
    }

    static func name(_ event: Machine.JobEvent) -> String {
        switch event {
        case .data(let payload): "data:\(String(buffer: payload))"
        case .warning(let payload): "warning:\(String(buffer: payload))"
        case .status(let numerator, let denominator): "status:\(String(buffer: numerator))/\(String(buffer: denominator))"
        case .complete(let payload): "complete:\(String(buffer: payload))"
        case .fail: "fail"
        case .exception(let payload): "exception:\(String(buffer: payload))"
        }
    }

    var description: String {
        switch self {
        case .succeeded(let name, let packet): "succeeded(\(name), \(packet.type.protocolName))"
        case .succeededText(let name, let lines): "succeededText(\(name), \(lines))"
        case .failed(let name, let code, let serverCode): "failed(\(name), \(code), \(serverCode ?? "-"))"
        case .delivered(let event, let handle, let to): "delivered(\(event), \(handle), \(to))"
        case .wake: "wake"
        case .unmatched(let code): "unmatched(\(code))"
        case .authenticated: "authenticated"
        case .close: "close"
        case .none: "none"
        }
    }
}

/// The machine in a box, so `#expect` can call the mutating `receive`.
final class MachineDriver {
    var machine = Machine()

    func receive(_ frame: GearmanFrame) -> Outcome { Outcome(machine.frameReceived(frame)) }
    func requestSent(_ expectation: Machine.Expectation, request: TestRequest, listener: TestListener? = nil) {
        machine.requestSent(expectation, request: request, listener: listener)
    }
    func foregroundSubmitted(key: JobKey?, request: TestRequest, listener: TestListener) -> Machine.SubmitDecision {
        machine.foregroundSubmitted(key: key, request: request, listener: listener)
    }
    func abandon(_ request: TestRequest) -> Bool { machine.abandon(request) }
    func removeListener(_ listener: TestListener, handle: ByteBuffer) -> Bool {
        machine.removeListener(listener, handle: handle)
    }
    func closed(_ error: GearmanError) -> (requests: [TestRequest], listeners: [(ByteBuffer, TestListener)]) {
        machine.closed(error)
    }
    var pendingCount: Int { machine.pendingCount }
    var listenerCount: Int { machine.listenerCount }
    var isClosed: Bool { machine.isClosed }
}

@Suite("ConnectionStateMachine", .timeLimit(.minutes(5)))
struct ConnectionStateMachineTests {
    @Test func repliesAreMatchedFirstInFirstOut() {
        let machine = MachineDriver()
        let echo = TestRequest("echo")
        let status = TestRequest("status")
        let option = TestRequest("option")
        machine.requestSent(.echo, request: echo)
        machine.requestSent(.status, request: status)
        machine.requestSent(.option, request: option)
        #expect(machine.pendingCount == 3)

        let echoReply = GearmanPacket.echoResponse(payload: buffer("ping"))
        #expect(machine.receive(response(echoReply)) == .succeeded("echo", echoReply))
        let statusReply = GearmanPacket.statusResponse(
            handle: buffer("H:1"), known: true, running: false, numerator: buffer("0"), denominator: buffer("0"))
        #expect(machine.receive(response(statusReply)) == .succeeded("status", statusReply))
        let optionReply = GearmanPacket.optionResponse(name: buffer("exceptions"))
        #expect(machine.receive(response(optionReply)) == .succeeded("option", optionReply))
        #expect(machine.pendingCount == 0)
    }

    @Test func everyGrabReplyAnswersAGrab() {
        let machine = MachineDriver()
        let replies: [GearmanPacket] = [
            .noJob,
            .jobAssign(handle: buffer("H:1"), function: buffer("f"), payload: buffer("a")),
            .jobAssignUnique(handle: buffer("H:2"), function: buffer("f"), unique: buffer("u"), payload: buffer("b")),
            .jobAssignAll(
                handle: buffer("H:3"), function: buffer("f"), unique: buffer("u"), reducer: buffer("r"), payload: buffer("c")),
        ]
        for (index, reply) in replies.enumerated() {
            let grab = TestRequest("grab\(index)")
            machine.requestSent(.grab, request: grab)
            #expect(machine.receive(response(reply)) == .succeeded("grab\(index)", reply))
        }
    }

    @Test func statusUniqueAnswersOnlyAStatusUniqueRequest() {
        let machine = MachineDriver()
        machine.requestSent(.statusUnique, request: TestRequest("su"))
        let reply = GearmanPacket.statusResponseUnique(
            unique: buffer("u"), known: true, running: true, numerator: buffer("1"), denominator: buffer("2"),
            clients: buffer("1"))
        #expect(machine.receive(response(reply)) == .succeeded("su", reply))

        machine.requestSent(.status, request: TestRequest("s"))
        #expect(machine.receive(response(reply)) == .close)
    }

    @Test func jobCreatedRegistersTheListenerBeforeWorkPacketsInTheSameRead() {
        let machine = MachineDriver()
        let submit = TestRequest("submit")
        let listener = TestListener("L")
        machine.requestSent(.jobCreated, request: submit, listener: listener)
        #expect(machine.listenerCount == 0)

        // One read carrying JOB_CREATED and the job's first events: nothing may be lost.
        let created = GearmanPacket.jobCreated(handle: buffer("H:7"))
        #expect(machine.receive(response(created)) == .succeeded("submit", created))
        #expect(machine.listenerCount == 1)
        #expect(
            machine.receive(response(.workStatus(handle: buffer("H:7"), numerator: buffer("1"), denominator: buffer("4"))))
                == .delivered("status:1/4", handle: "H:7", to: ["L"]))
        #expect(
            machine.receive(response(.workData(handle: buffer("H:7"), payload: buffer("d"))))
                == .delivered("data:d", handle: "H:7", to: ["L"]))
        #expect(
            machine.receive(response(.workWarning(handle: buffer("H:7"), payload: buffer("w"))))
                == .delivered("warning:w", handle: "H:7", to: ["L"]))
        #expect(
            machine.receive(response(.workComplete(handle: buffer("H:7"), payload: buffer("r"))))
                == .delivered("complete:r", handle: "H:7", to: ["L"]))
        // A final event ends the subscription.
        #expect(machine.listenerCount == 0)
        #expect(machine.receive(response(.workData(handle: buffer("H:7"), payload: buffer("late")))) == .none)
    }

    @Test func backgroundSubmissionRegistersNoListener() {
        let machine = MachineDriver()
        machine.requestSent(.jobCreated, request: TestRequest("bg"))
        let created = GearmanPacket.jobCreated(handle: buffer("H:1"))
        #expect(machine.receive(response(created)) == .succeeded("bg", created))
        #expect(machine.listenerCount == 0)
        #expect(machine.receive(response(.workComplete(handle: buffer("H:1"), payload: buffer("x")))) == .none)
    }

    @Test func coalescedHandleDeliversToBothListeners() {
        let machine = MachineDriver()
        machine.requestSent(.jobCreated, request: TestRequest("a"), listener: TestListener("A"))
        machine.requestSent(.jobCreated, request: TestRequest("b"), listener: TestListener("B"))
        let created = GearmanPacket.jobCreated(handle: buffer("H:9"))
        #expect(machine.receive(response(created)) == .succeeded("a", created))
        #expect(machine.receive(response(created)) == .succeeded("b", created))
        #expect(machine.listenerCount == 2)

        #expect(
            machine.receive(response(.workData(handle: buffer("H:9"), payload: buffer("x"))))
                == .delivered("data:x", handle: "H:9", to: ["A", "B"]))
        #expect(
            machine.receive(response(.workException(handle: buffer("H:9"), payload: buffer("boom"))))
                == .delivered("exception:boom", handle: "H:9", to: ["A", "B"]))
        #expect(machine.listenerCount == 0)
        // gearmand sends a copy per attached submission: the second copy finds nobody.
        #expect(machine.receive(response(.workException(handle: buffer("H:9"), payload: buffer("boom")))) == .none)
    }

    // MARK: Foreground submissions of one job on one connection

    static let key = JobKey(function: ByteBuffer(string: "f"), unique: ByteBuffer(string: "u"), payload: ByteBuffer())

    @Test func jobKeyFollowsTheServersCoalescingRules() {
        #expect(JobKey(function: buffer("f"), unique: buffer(""), payload: buffer("p")) == nil)
        #expect(JobKey(function: buffer("f"), unique: buffer("-"), payload: buffer("")) == nil)
        #expect(
            JobKey(function: buffer("f"), unique: buffer("-"), payload: buffer("p"))
                == JobKey(function: buffer("f"), unique: buffer("p"), byPayload: true))
        #expect(
            JobKey(function: buffer("f"), unique: buffer("u"), payload: buffer("p"))
                != JobKey(function: buffer("g"), unique: buffer("u"), payload: buffer("p")))
    }

    @Test func aSubmissionWithoutAKeyIsAlwaysSent() {
        let machine = MachineDriver()
        #expect(machine.foregroundSubmitted(key: nil, request: TestRequest("a"), listener: TestListener("A")) == .send)
        #expect(machine.foregroundSubmitted(key: nil, request: TestRequest("b"), listener: TestListener("B")) == .send)
        #expect(machine.pendingCount == 2)
    }

    @Test func aSecondSubmissionOfAnAttachedJobJoinsItWithoutBeingSent() {
        let machine = MachineDriver()
        #expect(machine.foregroundSubmitted(key: Self.key, request: TestRequest("a"), listener: TestListener("A")) == .send)
        let created = GearmanPacket.jobCreated(handle: buffer("H:1"))
        #expect(machine.receive(response(created)) == .succeeded("a", created))
        #expect(
            machine.foregroundSubmitted(key: Self.key, request: TestRequest("b"), listener: TestListener("B"))
                == .joined(handle: buffer("H:1")))
        #expect(machine.pendingCount == 0)
        // One copy of each event (the server attached this connection once), delivered to both.
        #expect(
            machine.receive(response(.workData(handle: buffer("H:1"), payload: buffer("x"))))
                == .delivered("data:x", handle: "H:1", to: ["A", "B"]))
        #expect(
            machine.receive(response(.workComplete(handle: buffer("H:1"), payload: buffer("r"))))
                == .delivered("complete:r", handle: "H:1", to: ["A", "B"]))
        // Once the job ended, the same key is a new job.
        #expect(machine.foregroundSubmitted(key: Self.key, request: TestRequest("c"), listener: TestListener("C")) == .send)
    }

    @Test func aSubmissionOfAPendingJobWaitsForItsCreation() {
        let machine = MachineDriver()
        #expect(machine.foregroundSubmitted(key: Self.key, request: TestRequest("a"), listener: TestListener("A")) == .send)
        machine.requestSent(.echo, request: TestRequest("echo"))
        #expect(
            machine.foregroundSubmitted(key: Self.key, request: TestRequest("b"), listener: TestListener("B"))
                == .waitingForCreation)
        #expect(machine.pendingCount == 2)
        let created = GearmanPacket.jobCreated(handle: buffer("H:1"))
        #expect(machine.receive(response(created)) == .succeeded("a+b", created))
        #expect(machine.listenerCount == 2)
        #expect(
            machine.receive(response(.workFail(handle: buffer("H:1")))) == .delivered("fail", handle: "H:1", to: ["A", "B"]))
    }

    @Test func anErrorFailsTheJoinedSubmissionsToo() {
        let machine = MachineDriver()
        _ = machine.foregroundSubmitted(key: Self.key, request: TestRequest("a"), listener: TestListener("A"))
        _ = machine.foregroundSubmitted(key: Self.key, request: TestRequest("b"), listener: TestListener("B"))
        #expect(
            machine.receive(response(.error(code: "QUEUE_ERROR", text: "Job queue is full")))
                == .failed("a+b", code: .serverError, serverCode: "QUEUE_ERROR"))
        #expect(machine.listenerCount == 0)
        #expect(machine.foregroundSubmitted(key: Self.key, request: TestRequest("c"), listener: TestListener("C")) == .send)
    }

    @Test func abandoningAJoinedSubmissionLeavesTheOthers() {
        let machine = MachineDriver()
        let a = TestRequest("a")
        let b = TestRequest("b")
        _ = machine.foregroundSubmitted(key: Self.key, request: a, listener: TestListener("A"))
        _ = machine.foregroundSubmitted(key: Self.key, request: b, listener: TestListener("B"))
        #expect(machine.abandon(b))
        #expect(!machine.abandon(b))
        let created = GearmanPacket.jobCreated(handle: buffer("H:1"))
        #expect(machine.receive(response(created)) == .succeeded("a", created))
        #expect(machine.listenerCount == 1)
    }

    @Test func anAbandonedSubmissionStillAttachedTheConnection() {
        // The server attached this connection even though nobody waits any more: a new submission
        // of the job joins it rather than attaching the connection a second time.
        let machine = MachineDriver()
        let a = TestRequest("a")
        _ = machine.foregroundSubmitted(key: Self.key, request: a, listener: TestListener("A"))
        _ = machine.abandon(a)
        #expect(machine.receive(response(.jobCreated(handle: buffer("H:1")))) == .none)
        #expect(machine.listenerCount == 0)
        #expect(
            machine.foregroundSubmitted(key: Self.key, request: TestRequest("b"), listener: TestListener("B"))
                == .joined(handle: buffer("H:1")))
        // A listener that left (timeout) does not end the attachment either.
        #expect(machine.removeListener(TestListener("other"), handle: buffer("H:1")) == false)
        #expect(
            machine.receive(response(.workComplete(handle: buffer("H:1"), payload: buffer("r"))))
                == .delivered("complete:r", handle: "H:1", to: ["B"]))
    }

    @Test func closedFailsJoinedSubmissions() {
        let machine = MachineDriver()
        _ = machine.foregroundSubmitted(key: Self.key, request: TestRequest("a"), listener: TestListener("A"))
        _ = machine.foregroundSubmitted(key: Self.key, request: TestRequest("b"), listener: TestListener("B"))
        let (requests, _) = machine.closed(GearmanError(.connectionClosed, "gone"))
        #expect(requests.map(\.name) == ["a", "b"])
    }

    @Test func listenersOfDifferentJobsAreKeptApart() {
        let machine = MachineDriver()
        machine.requestSent(.jobCreated, request: TestRequest("a"), listener: TestListener("A"))
        machine.requestSent(.jobCreated, request: TestRequest("b"), listener: TestListener("B"))
        _ = machine.receive(response(.jobCreated(handle: buffer("H:1"))))
        _ = machine.receive(response(.jobCreated(handle: buffer("H:2"))))
        #expect(machine.receive(response(.workFail(handle: buffer("H:2")))) == .delivered("fail", handle: "H:2", to: ["B"]))
        #expect(
            machine.receive(response(.workComplete(handle: buffer("H:1"), payload: buffer("ok"))))
                == .delivered("complete:ok", handle: "H:1", to: ["A"]))
    }

    @Test func workFailWithATrailingNulFindsItsListener() {
        // gearmand's WORK_FAIL converted from a WORK_EXCEPTION carries the handle plus a NUL.
        let machine = MachineDriver()
        machine.requestSent(.jobCreated, request: TestRequest("a"), listener: TestListener("A"))
        _ = machine.receive(response(.jobCreated(handle: buffer("H:4"))))
        #expect(machine.receive(response(.workFail(handle: buffer("H:4\0")))) == .delivered("fail", handle: "H:4", to: ["A"]))
        #expect(machine.listenerCount == 0)
    }

    @Test func errorAnswersTheOldestPendingRequest() {
        let machine = MachineDriver()
        machine.requestSent(.jobCreated, request: TestRequest("submit"), listener: TestListener("L"))
        machine.requestSent(.echo, request: TestRequest("echo"))
        #expect(
            machine.receive(response(.error(code: "QUEUE_ERROR", text: "Job queue is full")))
                == .failed("submit", code: .serverError, serverCode: "QUEUE_ERROR"))
        #expect(machine.listenerCount == 0)
        #expect(machine.pendingCount == 1)
        let echo = GearmanPacket.echoResponse(payload: buffer("e"))
        #expect(machine.receive(response(echo)) == .succeeded("echo", echo))
    }

    @Test func jobNotFoundNeverAnswersARequest() {
        let machine = MachineDriver()
        machine.requestSent(.grab, request: TestRequest("grab"))
        // A late WORK_COMPLETE of this worker was refused; the GRAB is still waiting for its answer.
        #expect(
            machine.receive(response(.error(code: "JOB_NOT_FOUND", text: "Job given in work result not found")))
                == .unmatched(code: "JOB_NOT_FOUND"))
        #expect(machine.pendingCount == 1)
        #expect(machine.receive(response(.noJob)) == .succeeded("grab", .noJob))
    }

    @Test func errorWithNothingPendingIsUnmatched() {
        let machine = MachineDriver()
        #expect(machine.receive(response(.error(code: "PERMISSION_DENIED", text: "no"))) == .unmatched(code: "PERMISSION_DENIED"))
    }

    @Test func abandonedRequestStillConsumesItsReply() {
        let machine = MachineDriver()
        let first = TestRequest("first")
        let second = TestRequest("second")
        machine.requestSent(.echo, request: first)
        machine.requestSent(.echo, request: second)
        #expect(machine.abandon(first))
        #expect(!machine.abandon(first), "a request is abandoned once")
        #expect(machine.pendingCount == 2, "its slot stays until its reply arrives, to keep FIFO matching")
        #expect(machine.receive(response(.echoResponse(payload: buffer("1")))) == .none)
        let reply = GearmanPacket.echoResponse(payload: buffer("2"))
        #expect(machine.receive(response(reply)) == .succeeded("second", reply))
        #expect(machine.pendingCount == 0)
    }

    @Test func abandonedSubmissionRegistersNoListener() {
        let machine = MachineDriver()
        let submit = TestRequest("submit")
        machine.requestSent(.jobCreated, request: submit, listener: TestListener("L"))
        #expect(machine.abandon(submit))
        #expect(machine.receive(response(.jobCreated(handle: buffer("H:1")))) == .none)
        #expect(machine.listenerCount == 0)
        #expect(machine.receive(response(.workComplete(handle: buffer("H:1"), payload: buffer("r")))) == .none)
    }

    @Test func abandonedRequestAnsweredByAnErrorIsSilent() {
        let machine = MachineDriver()
        let submit = TestRequest("submit")
        machine.requestSent(.jobCreated, request: submit)
        _ = machine.abandon(submit)
        #expect(machine.receive(response(.error(code: "QUEUE_ERROR", text: "full"))) == .none)
        #expect(machine.pendingCount == 0)
    }

    @Test func abandoningAnAnsweredRequestReportsFalse() {
        let machine = MachineDriver()
        let echo = TestRequest("echo")
        machine.requestSent(.echo, request: echo)
        _ = machine.receive(response(.echoResponse(payload: buffer(""))))
        #expect(!machine.abandon(echo))
    }

    @Test func removeListenerStopsDeliveryToThatListenerOnly() {
        let machine = MachineDriver()
        let a = TestListener("A")
        let b = TestListener("B")
        machine.requestSent(.jobCreated, request: TestRequest("a"), listener: a)
        machine.requestSent(.jobCreated, request: TestRequest("b"), listener: b)
        _ = machine.receive(response(.jobCreated(handle: buffer("H:1"))))
        _ = machine.receive(response(.jobCreated(handle: buffer("H:1"))))
        #expect(machine.removeListener(a, handle: buffer("H:1")))
        #expect(!machine.removeListener(a, handle: buffer("H:1")))
        #expect(machine.listenerCount == 1)
        #expect(
            machine.receive(response(.workData(handle: buffer("H:1"), payload: buffer("x"))))
                == .delivered("data:x", handle: "H:1", to: ["B"]))
        #expect(machine.removeListener(b, handle: buffer("H:1")))
        #expect(machine.listenerCount == 0)
        #expect(machine.receive(response(.workData(handle: buffer("H:1"), payload: buffer("y")))) == .none)
    }

    @Test func noopWakes() {
        let machine = MachineDriver()
        #expect(machine.receive(response(.noop)) == .wake)
        machine.requestSent(.grab, request: TestRequest("grab"))
        #expect(machine.receive(response(.noop)) == .wake, "a NOOP is not a reply")
        #expect(machine.pendingCount == 1)
    }

    @Test func adminListCollectsLinesUntilTheDot() {
        let machine = MachineDriver()
        machine.requestSent(.adminList, request: TestRequest("status"))
        machine.requestSent(.adminLine, request: TestRequest("version"))
        #expect(machine.receive(line("reverse\t0\t0\t1")) == .none)
        #expect(machine.receive(line("upper\t2\t1\t3")) == .none)
        #expect(machine.receive(line(".")) == .succeededText("status", ["reverse\t0\t0\t1", "upper\t2\t1\t3"]))
        #expect(machine.receive(line("OK 1.1.20")) == .succeededText("version", ["OK 1.1.20"]))
        #expect(machine.pendingCount == 0)
    }

    @Test func emptyAdminList() {
        let machine = MachineDriver()
        machine.requestSent(.adminList, request: TestRequest("workers"))
        #expect(machine.receive(line(".")) == .succeededText("workers", []))
    }

    @Test func adminListErrorIsOneLine() {
        let machine = MachineDriver()
        machine.requestSent(.adminList, request: TestRequest("bad"))
        machine.requestSent(.adminLine, request: TestRequest("next"))
        #expect(
            machine.receive(line("ERR UNKNOWN_COMMAND Unknown+server+command"))
                == .succeededText("bad", ["ERR UNKNOWN_COMMAND Unknown+server+command"]))
        #expect(machine.receive(line("OK")) == .succeededText("next", ["OK"]))
    }

    @Test func abandonedAdminListStillConsumesItsLines() {
        let machine = MachineDriver()
        let list = TestRequest("list")
        machine.requestSent(.adminList, request: list)
        machine.requestSent(.adminLine, request: TestRequest("line"))
        _ = machine.abandon(list)
        #expect(machine.receive(line("a")) == .none)
        #expect(machine.receive(line(".")) == .none)
        #expect(machine.receive(line("OK")) == .succeededText("line", ["OK"]))
    }

    @Test func adminLinesAroundBinaryEvents() {
        let machine = MachineDriver()
        machine.requestSent(.jobCreated, request: TestRequest("submit"), listener: TestListener("L"))
        _ = machine.receive(response(.jobCreated(handle: buffer("H:1"))))
        machine.requestSent(.adminList, request: TestRequest("status"))
        #expect(machine.receive(line("f\t1\t1\t1")) == .none)
        // A job event may arrive in the middle of a list reply; it goes to its listener.
        #expect(
            machine.receive(response(.workData(handle: buffer("H:1"), payload: buffer("x"))))
                == .delivered("data:x", handle: "H:1", to: ["L"]))
        #expect(machine.receive(line(".")) == .succeededText("status", ["f\t1\t1\t1"]))
    }

    @Test(arguments: [
        GearmanPacket.jobCreated(handle: ByteBuffer(string: "H:1")),
        .echoResponse(payload: ByteBuffer(string: "x")),
        .optionResponse(name: ByteBuffer(string: "exceptions")),
        .noJob,
        .statusResponse(
            handle: ByteBuffer(string: "H:1"), known: false, running: false, numerator: ByteBuffer(string: "0"),
            denominator: ByteBuffer(string: "0")),
    ])
    func unsolicitedReplyClosesTheConnection(reply: GearmanPacket) {
        let machine = MachineDriver()
        #expect(machine.receive(response(reply)) == .close)
    }

    @Test func replyOfTheWrongKindClosesTheConnection() {
        let machine = MachineDriver()
        machine.requestSent(.echo, request: TestRequest("echo"))
        #expect(machine.receive(response(.jobCreated(handle: buffer("H:1")))) == .close)
    }

    @Test func unexpectedTextLineClosesTheConnection() {
        let machine = MachineDriver()
        #expect(machine.receive(line("OK")) == .close)
        let waiting = MachineDriver()
        waiting.requestSent(.echo, request: TestRequest("echo"))
        #expect(waiting.receive(line("OK")) == .close)
    }

    @Test(arguments: [
        GearmanPacket.canDo(function: ByteBuffer(string: "f")), .grabJobUnique, .preSleep,
        .submitJob(
            function: ByteBuffer(string: "f"), unique: ByteBuffer(), payload: ByteBuffer(), priority: .normal,
            background: false),
        .echoRequest(payload: ByteBuffer()), .getStatus(handle: ByteBuffer(string: "H:1")), .unused,
    ])
    func requestOnlyPacketFromTheServerClosesTheConnection(packet: GearmanPacket) {
        let machine = MachineDriver()
        #expect(machine.receive(response(packet)) == .close)
    }

    @Test func requestMagicFromTheServerClosesTheConnection() {
        let machine = MachineDriver()
        machine.requestSent(.echo, request: TestRequest("echo"))
        #expect(machine.receive(.packet(.echoResponse(payload: buffer("x")), magic: .request)) == .close)
    }

    @Test func closedFailsEveryRequestAndListener() {
        let machine = MachineDriver()
        machine.requestSent(.jobCreated, request: TestRequest("a"), listener: TestListener("A"))
        _ = machine.receive(response(.jobCreated(handle: buffer("H:1"))))
        machine.requestSent(.jobCreated, request: TestRequest("b"), listener: TestListener("B"))
        _ = machine.receive(response(.jobCreated(handle: buffer("H:1"))))
        machine.requestSent(.jobCreated, request: TestRequest("c"), listener: TestListener("C"))
        _ = machine.receive(response(.jobCreated(handle: buffer("H:2"))))
        let abandoned = TestRequest("abandoned")
        machine.requestSent(.echo, request: abandoned)
        _ = machine.abandon(abandoned)
        machine.requestSent(.status, request: TestRequest("status"))
        machine.requestSent(.jobCreated, request: TestRequest("pending-submit"), listener: TestListener("P"))

        let (requests, listeners) = machine.closed(GearmanError(.connectionClosed, "gone"))
        #expect(Set(requests.map(\.name)) == ["status", "pending-submit"])
        #expect(Set(listeners.map { "\(String(buffer: $0.0))/\($0.1.name)" }) == ["H:1/A", "H:1/B", "H:2/C"])
        #expect(machine.isClosed)
        #expect(machine.pendingCount == 0)
        #expect(machine.listenerCount == 0)
    }
}
