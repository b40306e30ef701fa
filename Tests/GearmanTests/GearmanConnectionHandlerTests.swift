import GearmanProtocol
import Logging
import NIOCore
import NIOEmbedded
import Testing

@testable import Gearman

/// Drives a `GearmanConnectionHandler` in an `EmbeddedChannel`, playing the server by hand.
final class FakeServerConnection {
    let channel = EmbeddedChannel()
    let wakes = WakeCounter()

    /// - Parameter authentication: credentials the handler authenticates with once connected.
    init(authentication: ConnectionAuthentication? = nil) throws {
        let wakes = self.wakes
        try channel.pipeline.syncOperations.addHandlers(
            ByteToMessageHandler(GearmanFrameDecoder()),
            GearmanConnectionHandler(
                server: "fake:4730", onWake: { wakes.count += 1 }, authentication: authentication,
                logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 4730)).wait()
    }

    var handler: GearmanConnectionHandler {
        get throws { try channel.pipeline.syncOperations.handler(type: GearmanConnectionHandler.self) }
    }

    /// Writes a request as `GearmanConnection.request` does; returns its pending request.
    @discardableResult
    func request(_ packet: GearmanPacket, expecting: ResponseExpectation, listener: JobEventSink? = nil) throws -> PendingRequest {
        let request = PendingRequest(promise: channel.eventLoop.makePromise())
        write(OutboundMessage(body: .packet(packet), expectation: expecting, request: request, listener: listener))
        return request
    }

    /// Writes and flushes without waiting for the write, which completes only when the queued
    /// flush runs (`writeOutbound` would wait for it, and no one would run it).
    func write(_ message: OutboundMessage) {
        channel.pipeline.syncOperations.writeAndFlush(NIOAny(message), promise: nil)
    }

    /// Everything the handler wrote, concatenated (after the queued flush ran).
    func written() throws -> ByteBuffer {
        channel.embeddedEventLoop.run()
        var all = ByteBuffer()
        while var chunk = try channel.readOutbound(as: ByteBuffer.self) {
            all.writeBuffer(&chunk)
        }
        return all
    }

    /// Sends `packets` from the "server" in one read.
    func serverSends(_ packets: GearmanPacket...) throws {
        var bytes = ByteBuffer()
        for packet in packets {
            var encoded = GearmanPacketEncoder.encode(packet, magic: .response)
            bytes.writeBuffer(&encoded)
        }
        try channel.writeInbound(bytes)
    }

    func serverSendsText(_ text: String) throws {
        try channel.writeInbound(ByteBuffer(string: text))
    }
}

extension PendingRequest {
    /// The reply, if the promise completed (the embedded loop runs everything inline).
    var outcome: Result<ConnectionReply, any Error>? {
        let box = OutcomeBox()
        promise.futureResult.whenComplete { box.result = $0 }
        return box.result
    }
}

/// Reads a sink's events until it ends; returns them and the error that ended it, if any.
func drain(_ sink: JobEventSink) async -> (events: [GearmanJobEvent], error: GearmanError?) {
    var events: [GearmanJobEvent] = []
    do {
        for try await event in sink.stream { events.append(event) }
        return (events, nil)
    } catch {
        return (events, error as? GearmanError)
    }
}

func decodedPackets(_ buffer: ByteBuffer) throws -> [GearmanPacket] {
    var buffer = buffer
    var decoder = GearmanFrameDecoder()
    var packets: [GearmanPacket] = []
    while let frame = try decoder.decode(buffer: &buffer) {
        guard case .packet(let packet, .request) = frame else {
            Issue.record("unexpected frame \(frame)")
            continue
        }
        packets.append(packet)
    }
    #expect(buffer.readableBytes == 0)
    return packets
}

@Suite("GearmanConnectionHandler", .timeLimit(.minutes(5)))
struct GearmanConnectionHandlerTests {
    @Test func submissionAndItsEventsInOneRead() async throws {
        let fake = try FakeServerConnection()
        let sink = JobEventSink()
        let submit = GearmanPacket.submitJob(
            function: buffer("reverse"), unique: buffer("u"), payload: buffer("hello"), priority: .normal, background: false)
        let request = try fake.request(submit, expecting: .jobCreated, listener: sink)
        #expect(try decodedPackets(fake.written()) == [submit])
        #expect(request.outcome == nil)

        try fake.serverSends(
            .jobCreated(handle: buffer("H:1")),
            .workStatus(handle: buffer("H:1"), numerator: buffer("1"), denominator: buffer("2")),
            .workData(handle: buffer("H:1"), payload: buffer("d")),
            .workWarning(handle: buffer("H:1"), payload: buffer("w")),
            .workComplete(handle: buffer("H:1"), payload: buffer("olleh")))
        guard case .success(.packet(.jobCreated(let handle)))? = request.outcome else {
            Issue.record("expected JOB_CREATED, got \(String(describing: request.outcome))")
            return
        }
        #expect(handle == buffer("H:1"))
        let (events, error) = await drain(sink)
        #expect(error == nil)
        #expect(
            events == [
                .status(numerator: 1, denominator: 2), .data(buffer("d")), .warning(buffer("w")), .completed(buffer("olleh")),
            ])
        #expect(try fake.channel.finish().isClean)
    }

    @Test func aSecondSubmissionOfTheSameJobIsNotWritten() async throws {
        let fake = try FakeServerConnection()
        let submit = GearmanPacket.submitJob(
            function: buffer("f"), unique: buffer("u"), payload: buffer("p"), priority: .normal, background: false)
        let key = JobKey(function: buffer("f"), unique: buffer("u"), payload: buffer("p"))
        let first = JobEventSink()
        let second = JobEventSink()
        let firstRequest = PendingRequest(promise: fake.channel.eventLoop.makePromise())
        fake.write(
            OutboundMessage(body: .packet(submit), expectation: .jobCreated, request: firstRequest, listener: first, jobKey: key))
        #expect(try decodedPackets(fake.written()) == [submit])
        try fake.serverSends(.jobCreated(handle: buffer("H:1")))
        let secondRequest = PendingRequest(promise: fake.channel.eventLoop.makePromise())
        fake.write(
            OutboundMessage(body: .packet(submit), expectation: .jobCreated, request: secondRequest, listener: second, jobKey: key))
        #expect(try fake.written().readableBytes == 0, "joined locally, not sent")
        guard case .success(.packet(.jobCreated(let handle)))? = secondRequest.outcome else {
            Issue.record("expected JOB_CREATED, got \(String(describing: secondRequest.outcome))")
            return
        }
        #expect(handle == buffer("H:1"))
        try fake.serverSends(
            .workData(handle: buffer("H:1"), payload: buffer("d")), .workComplete(handle: buffer("H:1"), payload: buffer("r")))
        for sink in [first, second] {
            let (events, error) = await drain(sink)
            #expect(error == nil)
            #expect(events == [.data(buffer("d")), .completed(buffer("r"))])
        }
    }

    @Test func failAndExceptionEndTheStreamWithErrors() async throws {
        let fake = try FakeServerConnection()
        let failing = JobEventSink()
        let raising = JobEventSink()
        for sink in [failing, raising] {
            try fake.request(
                .submitJob(function: buffer("f"), unique: buffer(""), payload: buffer(""), priority: .low, background: false),
                expecting: .jobCreated, listener: sink)
        }
        try fake.serverSends(
            .jobCreated(handle: buffer("H:1")), .jobCreated(handle: buffer("H:2")), .workFail(handle: buffer("H:1")),
            .workException(handle: buffer("H:2"), payload: buffer("stack trace")))
        let failed = await drain(failing)
        #expect(failed.error?.code == .jobFailed)
        #expect(failed.error?.jobHandle == "H:1")
        let raised = await drain(raising)
        #expect(raised.error?.code == .jobException)
        #expect(raised.error?.payload == buffer("stack trace"))
        #expect(raised.error?.jobHandle == "H:2")
    }

    @Test func serverErrorFailsTheRequestWithItsCode() throws {
        let fake = try FakeServerConnection()
        let request = try fake.request(
            .submitJob(function: buffer("f"), unique: buffer(""), payload: buffer(""), priority: .normal, background: true),
            expecting: .jobCreated)
        try fake.serverSends(.error(code: "QUEUE_ERROR", text: "Job queue is full"))
        guard case .failure(let error as GearmanError)? = request.outcome else {
            Issue.record("expected a failure, got \(String(describing: request.outcome))")
            return
        }
        #expect(error.code == .serverError)
        #expect(error.serverCode == "QUEUE_ERROR")
        #expect(error.server == "fake:4730")
        #expect(fake.channel.isActive)
    }

    @Test func largeDataIsWrittenWithoutCopyingIntoTheHeaderBuffer() throws {
        let fake = try FakeServerConnection()
        let payload = ByteBuffer(repeating: 0x41, count: 100_000)
        try fake.request(.echoRequest(payload: payload), expecting: .echo)
        fake.channel.embeddedEventLoop.run()
        let header = try #require(try fake.channel.readOutbound(as: ByteBuffer.self))
        let tail = try #require(try fake.channel.readOutbound(as: ByteBuffer.self))
        #expect(header.readableBytes == 12)
        #expect(tail == payload)
        var all = header
        var rest = tail
        all.writeBuffer(&rest)
        #expect(try decodedPackets(all) == [.echoRequest(payload: payload)])
    }

    @Test func adminLineIsWrittenAsText() throws {
        let fake = try FakeServerConnection()
        let request = PendingRequest(promise: fake.channel.eventLoop.makePromise())
        fake.write(OutboundMessage(body: .text("status"), expectation: .adminList, request: request))
        #expect(try fake.written() == buffer("status\r\n"))
        try fake.serverSendsText("f\t0\t0\t1\nupper\t0\t0\t0\n.\n")
        guard case .success(.text(let lines))? = request.outcome else {
            Issue.record("expected text, got \(String(describing: request.outcome))")
            return
        }
        #expect(lines == ["f\t0\t0\t1", "upper\t0\t0\t0"])
    }

    @Test func noopCallsOnWake() throws {
        let fake = try FakeServerConnection()
        try fake.serverSends(.noop, .noop)
        #expect(fake.wakes.count == 2)
    }

    @Test func connectionLossFailsRequestsAndListeners() async throws {
        let fake = try FakeServerConnection()
        let sink = JobEventSink()
        try fake.request(
            .submitJob(function: buffer("f"), unique: buffer(""), payload: buffer(""), priority: .normal, background: false),
            expecting: .jobCreated, listener: sink)
        try fake.serverSends(.jobCreated(handle: buffer("H:5")), .workData(handle: buffer("H:5"), payload: buffer("x")))
        let echo = try fake.request(.echoRequest(payload: buffer("e")), expecting: .echo)
        fake.channel.pipeline.fireChannelInactive()

        guard case .failure(let error as GearmanError)? = echo.outcome else {
            Issue.record("expected a failure, got \(String(describing: echo.outcome))")
            return
        }
        #expect(error.code == .connectionClosed)
        let (events, streamError) = await drain(sink)
        #expect(events == [.data(buffer("x"))])
        #expect(streamError?.code == .connectionClosed)
        #expect(streamError?.jobHandle == "H:5")

        // Later writes fail at once instead of waiting for a reply that cannot come.
        let late = try? fake.request(.echoRequest(payload: buffer("late")), expecting: .echo)
        if let late {
            guard case .failure(let lateError as GearmanError)? = late.outcome else {
                Issue.record("expected a failure, got \(String(describing: late.outcome))")
                return
            }
            #expect(lateError.code == .connectionClosed)
        }
    }

    @Test func malformedDataClosesWithAProtocolViolation() throws {
        let fake = try FakeServerConnection()
        let echo = try fake.request(.echoRequest(payload: buffer("e")), expecting: .echo)
        _ = try? fake.channel.writeInbound(ByteBuffer(bytes: [0, 0x58, 0x58, 0x58, 0, 0, 0, 1, 0, 0, 0, 0]))
        #expect(!fake.channel.isActive)
        guard case .failure(let error as GearmanError)? = echo.outcome else {
            Issue.record("expected a failure, got \(String(describing: echo.outcome))")
            return
        }
        #expect(error.code == .protocolViolation)
    }

    @Test func unexpectedReplyClosesWithAProtocolViolation() throws {
        let fake = try FakeServerConnection()
        let echo = try fake.request(.echoRequest(payload: buffer("e")), expecting: .echo)
        try fake.serverSends(.noJob)
        #expect(!fake.channel.isActive)
        guard case .failure(let error as GearmanError)? = echo.outcome else {
            Issue.record("expected a failure, got \(String(describing: echo.outcome))")
            return
        }
        #expect(error.code == .protocolViolation)
    }

    @Test func abandonFailsTheRequestAndDropsItsReply() throws {
        let fake = try FakeServerConnection()
        let first = try fake.request(.echoRequest(payload: buffer("1")), expecting: .echo)
        let second = try fake.request(.echoRequest(payload: buffer("2")), expecting: .echo)
        try fake.handler.abandon(first, error: GearmanError(.timeout, "too slow"))
        guard case .failure(let error as GearmanError)? = first.outcome else {
            Issue.record("expected a failure, got \(String(describing: first.outcome))")
            return
        }
        #expect(error.code == .timeout)
        try fake.serverSends(.echoResponse(payload: buffer("1")), .echoResponse(payload: buffer("2")))
        guard case .success(.packet(.echoResponse(let payload)))? = second.outcome else {
            Issue.record("expected ECHO_RES, got \(String(describing: second.outcome))")
            return
        }
        #expect(payload == buffer("2"))
        #expect(fake.channel.isActive)
    }

    @Test func aTimeoutStartsOnlyOnceTheRequestIsRegistered() async throws {
        let fake = try FakeServerConnection()
        let sink = JobEventSink()
        let request = PendingRequest(promise: fake.channel.eventLoop.makePromise())
        // Already due when written: it must still find (and abandon) the request, not miss it.
        fake.write(
            OutboundMessage(
                body: .packet(
                    .submitJob(function: buffer("f"), unique: buffer(""), payload: buffer(""), priority: .normal, background: false)),
                expectation: .jobCreated, request: request, listener: sink, timeout: .zero))
        fake.channel.embeddedEventLoop.run()
        guard case .failure(let error as GearmanError)? = request.outcome else {
            Issue.record("expected a timeout, got \(String(describing: request.outcome))")
            return
        }
        #expect(error.code == .timeout)
        #expect(try fake.handler.bookkeeping.pendingRequests == 1, "its slot waits for the reply")
        try fake.serverSends(.jobCreated(handle: buffer("H:1")), .workComplete(handle: buffer("H:1"), payload: buffer("r")))
        #expect(try fake.handler.bookkeeping == (0, 0))
    }

    @Test func aTimeoutIsCancelledByTheReply() throws {
        let fake = try FakeServerConnection()
        let request = PendingRequest(promise: fake.channel.eventLoop.makePromise())
        fake.write(
            OutboundMessage(body: .packet(.echoRequest(payload: buffer("e"))), expectation: .echo, request: request, timeout: .seconds(1)))
        try fake.serverSends(.echoResponse(payload: buffer("e")))
        fake.channel.embeddedEventLoop.advanceTime(by: .seconds(2))
        guard case .success(.packet(.echoResponse))? = request.outcome else {
            Issue.record("expected ECHO_RES, got \(String(describing: request.outcome))")
            return
        }
    }

    @Test func removeListenerEndsTheStreamWithTheGivenError() async throws {
        let fake = try FakeServerConnection()
        let sink = JobEventSink()
        try fake.request(
            .submitJob(function: buffer("f"), unique: buffer(""), payload: buffer(""), priority: .normal, background: false),
            expecting: .jobCreated, listener: sink)
        try fake.serverSends(.jobCreated(handle: buffer("H:1")))
        try fake.handler.removeListener(sink, handle: buffer("H:1"), error: GearmanError(.timeout, "deadline"))
        try fake.serverSends(.workComplete(handle: buffer("H:1"), payload: buffer("late")))
        let (events, error) = await drain(sink)
        #expect(events.isEmpty)
        #expect(error?.code == .timeout)
    }
}

final class OutcomeBox: @unchecked Sendable {
    var result: Result<ConnectionReply, any Error>?
}

/// Counts wake-ups; the embedded channel runs everything on the test's thread.
final class WakeCounter: @unchecked Sendable {
    var count = 0
}

@Suite("Flushing once per turn of the event loop", .timeLimit(.minutes(5)))
struct CoalescedFlushTests {
    @Test("requests written in one turn leave together, when the queued flush runs")
    func requestsOfOneTurnShareOneFlush() throws {
        let fake = try FakeServerConnection()
        for index in 0..<3 {
            try fake.request(.echoRequest(payload: ByteBuffer(string: "\(index)")), expecting: .echo)
        }
        // Nothing has left yet: the flush waits for the turn's other tasks.
        #expect(try fake.channel.readOutbound(as: ByteBuffer.self) == nil)
        let packets = try decodedPackets(try fake.written())
        #expect(packets == (0..<3).map { .echoRequest(payload: ByteBuffer(string: "\($0)")) })
    }
}
