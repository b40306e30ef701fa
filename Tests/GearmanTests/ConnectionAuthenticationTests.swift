import GearmanProtocol
import NIOCore
import NIOEmbedded
import Testing

@testable import Gearman

/// Credentials whose secret the tests look for in every error and log text.
let testSecret = "hunter2-very-secret"

func testAuthentication(_ dialect: ConnectionAuthentication.Dialect = .binary, timeout: Duration? = nil) throws -> ConnectionAuthentication {
    ConnectionAuthentication(
        credentials: try GearmanCredentials(principal: "acme-web", secret: testSecret), dialect: dialect, timeout: timeout)
}

/// A fake connection that authenticates, with its `ready` future taken before anything can
/// close the connection (and remove the handler).
final class AuthenticatingConnection {
    let fake: FakeServerConnection
    let ready: EventLoopFuture<Void>

    init(_ authentication: ConnectionAuthentication) throws {
        fake = try FakeServerConnection(authentication: authentication)
        ready = try fake.handler.ready!.futureResult
    }

    /// How `ready` ended, if it did.
    var readiness: Result<Void, any Error>? {
        let box = ReadinessBox()
        ready.whenComplete { box.result = $0 }
        return box.result
    }

    var isReady: Bool {
        if case .success? = readiness { return true }
        return false
    }

    /// The error that failed `ready`, or nil if it did not fail.
    var readinessError: GearmanError? {
        guard case .failure(let error)? = readiness else { return nil }
        return error as? GearmanError
    }

    /// Writes a request without waiting for the write (`writeOutbound` would wait, and a write
    /// held back for the authentication does not complete until the server answers).
    @discardableResult
    func request(_ body: OutboundMessage.Body, expecting: ResponseExpectation) -> PendingRequest {
        let request = PendingRequest(promise: fake.channel.eventLoop.makePromise())
        fake.channel.pipeline.syncOperations.writeAndFlush(
            NIOAny(OutboundMessage(body: body, expectation: expecting, request: request)), promise: nil)
        return request
    }

    func send(_ packet: GearmanPacket) {
        fake.channel.pipeline.syncOperations.writeAndFlush(NIOAny(OutboundMessage(body: .packet(packet))), promise: nil)
    }
}

final class ReadinessBox: @unchecked Sendable {
    var result: Result<Void, any Error>?
}

@Suite("Connection authentication", .timeLimit(.minutes(5)))
struct ConnectionAuthenticationTests {
    // MARK: Binary connections

    @Test func theTokenIsTheFirstPacketAndTheConnectionWaitsForItsAnswer() throws {
        let connection = try AuthenticatingConnection(testAuthentication())
        #expect(try decodedPackets(connection.fake.written()) == [.optionRequest(name: buffer("auth:acme-web:\(testSecret)"))])
        #expect(connection.readiness == nil, "not ready before the server accepted the credentials")
    }

    @Test func writesAreHeldBackUntilTheServerAcceptsTheCredentials() throws {
        let connection = try AuthenticatingConnection(testAuthentication())
        let fake = connection.fake
        _ = try fake.written()
        let echo = connection.request(.packet(.echoRequest(payload: buffer("e"))), expecting: .echo)
        connection.send(.setClientID(id: buffer("me")))
        #expect(try fake.written().readableBytes == 0, "nothing but the token goes out before the answer")
        #expect(try fake.handler.bookkeeping.pendingRequests == 1)

        try fake.serverSends(.optionResponse(name: buffer("auth:acme-web")))
        #expect(connection.isReady)
        #expect(try decodedPackets(fake.written()) == [.echoRequest(payload: buffer("e")), .setClientID(id: buffer("me"))])
        try fake.serverSends(.echoResponse(payload: buffer("e")))
        guard case .success(.packet(.echoResponse(let payload)))? = echo.outcome else {
            Issue.record("expected ECHO_RES, got \(String(describing: echo.outcome))")
            return
        }
        #expect(payload == buffer("e"))

        // Later writes go out at once.
        try fake.request(.echoRequest(payload: buffer("2")), expecting: .echo)
        #expect(try decodedPackets(fake.written()) == [.echoRequest(payload: buffer("2"))])
        #expect(fake.channel.isActive)
    }

    @Test func authFailedFailsTheConnectionWithoutShowingTheSecret() throws {
        let connection = try AuthenticatingConnection(testAuthentication())
        let fake = connection.fake
        _ = try fake.written()
        let held = connection.request(.packet(.echoRequest(payload: buffer("e"))), expecting: .echo)
        try fake.serverSends(.error(code: "AUTH_FAILED", text: "Authentication failed"))
        #expect(!fake.channel.isActive, "a refused connection is closed")
        #expect(try fake.written().readableBytes == 0, "the held-back request was never sent")
        let error = try #require(connection.readinessError)
        #expect(error.code == .authenticationFailed)
        #expect(error.serverCode == "AUTH_FAILED")
        #expect(error.server == "fake:4730")
        #expect(error.message.contains("acme-web"))
        #expect(error.message.contains("AUTH_FAILED"))
        #expect(error.message.contains("Authentication failed"))
        #expect(!error.description.contains(testSecret))
        #expect(!"\(error)".contains(testSecret))
        guard case .failure(let heldError as GearmanError)? = held.outcome else {
            Issue.record("expected the held-back request to fail, got \(String(describing: held.outcome))")
            return
        }
        #expect(heldError.code == .authenticationFailed)
    }

    @Test func unknownOptionMeansTheServerDoesNotSupportAuthentication() throws {
        let connection = try AuthenticatingConnection(testAuthentication())
        try connection.fake.serverSends(.error(code: "UNKNOWN_OPTION", text: "Server does not recognize given option"))
        let error = try #require(connection.readinessError)
        #expect(error.code == .authenticationFailed)
        #expect(error.serverCode == "UNKNOWN_OPTION")
        #expect(error.message.contains("does not support authentication"))
        #expect(!connection.fake.channel.isActive)
    }

    @Test func aSecretEchoedByTheServerIsRedacted() throws {
        let connection = try AuthenticatingConnection(testAuthentication())
        try connection.fake.serverSends(.error(code: "AUTH_FAILED", text: "bad token auth:acme-web:\(testSecret)"))
        let error = try #require(connection.readinessError)
        #expect(error.code == .authenticationFailed)
        #expect(!error.description.contains(testSecret))
        #expect(error.message.contains("<redacted>"))
    }

    @Test func aConfirmationOfAnotherPrincipalIsAFailure() throws {
        let connection = try AuthenticatingConnection(testAuthentication())
        try connection.fake.serverSends(.optionResponse(name: buffer("auth:someone-else")))
        let error = try #require(connection.readinessError)
        #expect(error.code == .authenticationFailed)
        #expect(!connection.fake.channel.isActive)
    }

    @Test func aCloseBeforeTheAnswerIsAnAuthenticationFailure() throws {
        let connection = try AuthenticatingConnection(testAuthentication())
        let held = connection.request(.packet(.echoRequest(payload: buffer("e"))), expecting: .echo)
        connection.fake.channel.pipeline.fireChannelInactive()
        let error = try #require(connection.readinessError)
        #expect(error.code == .authenticationFailed)
        #expect(error.message.contains("before accepting the credentials"))
        guard case .failure(let heldError as GearmanError)? = held.outcome else {
            Issue.record("expected the held-back request to fail, got \(String(describing: held.outcome))")
            return
        }
        #expect(heldError.code == .authenticationFailed)
    }

    @Test func anUnansweredAuthenticationTimesOut() throws {
        let connection = try AuthenticatingConnection(testAuthentication(timeout: .seconds(5)))
        connection.fake.channel.embeddedEventLoop.advanceTime(by: .seconds(4))
        #expect(connection.readiness == nil)
        connection.fake.channel.embeddedEventLoop.advanceTime(by: .seconds(2))
        let error = try #require(connection.readinessError)
        #expect(error.code == .timeout)
        #expect(!connection.fake.channel.isActive)
    }

    @Test func theTimeoutIsCancelledByTheAnswer() throws {
        let connection = try AuthenticatingConnection(testAuthentication(timeout: .seconds(5)))
        try connection.fake.serverSends(.optionResponse(name: buffer("auth:acme-web")))
        connection.fake.channel.embeddedEventLoop.advanceTime(by: .seconds(10))
        #expect(connection.fake.channel.isActive)
        #expect(connection.isReady)
    }

    @Test func anAbandonedHeldBackRequestIsNeverSent() throws {
        let connection = try AuthenticatingConnection(testAuthentication())
        let fake = connection.fake
        _ = try fake.written()
        let abandoned = connection.request(.packet(.echoRequest(payload: buffer("1"))), expecting: .echo)
        let kept = connection.request(.packet(.echoRequest(payload: buffer("2"))), expecting: .echo)
        try fake.handler.abandon(abandoned, error: GearmanError(.cancelled, "gave up"))
        guard case .failure(let error as GearmanError)? = abandoned.outcome else {
            Issue.record("expected a failure, got \(String(describing: abandoned.outcome))")
            return
        }
        #expect(error.code == .cancelled)
        try fake.serverSends(.optionResponse(name: buffer("auth:acme-web")))
        #expect(try decodedPackets(fake.written()) == [.echoRequest(payload: buffer("2"))])
        try fake.serverSends(.echoResponse(payload: buffer("2")))
        guard case .success? = kept.outcome else {
            Issue.record("expected ECHO_RES, got \(String(describing: kept.outcome))")
            return
        }
    }

    @Test func withoutCredentialsNothingIsSentFirst() throws {
        let fake = try FakeServerConnection()
        #expect(try fake.written().readableBytes == 0)
        let box = ReadinessBox()
        try fake.handler.ready!.futureResult.whenComplete { box.result = $0 }
        guard case .success? = box.result else {
            Issue.record("expected the connection to be ready at once")
            return
        }
    }

    // MARK: Admin connections

    @Test func anAdminConnectionSendsTheAuthLineAndWaitsForOK() throws {
        let connection = try AuthenticatingConnection(testAuthentication(.admin))
        let fake = connection.fake
        #expect(try fake.written() == buffer("auth acme-web \(testSecret)\r\n"))
        let request = connection.request(.text("version"), expecting: .adminLine)
        #expect(try fake.written().readableBytes == 0)
        try fake.serverSendsText("OK\n")
        #expect(connection.isReady)
        #expect(try fake.written() == buffer("version\r\n"))
        try fake.serverSendsText("OK 1.0\n")
        guard case .success(.text(let lines))? = request.outcome else {
            Issue.record("expected text, got \(String(describing: request.outcome))")
            return
        }
        #expect(lines == ["OK 1.0"])
    }

    @Test func anAdminErrFailsTheConnection() throws {
        let connection = try AuthenticatingConnection(testAuthentication(.admin))
        try connection.fake.serverSendsText("ERR AUTH_FAILED Authentication+failed\n")
        let error = try #require(connection.readinessError)
        #expect(error.code == .authenticationFailed)
        #expect(error.serverCode == "AUTH_FAILED")
        #expect(error.message.contains("Authentication failed"))
        #expect(!error.description.contains(testSecret))
        #expect(!connection.fake.channel.isActive)
    }

    @Test func anAdminUnknownCommandMeansNoAuthenticationSupport() throws {
        let connection = try AuthenticatingConnection(testAuthentication(.admin))
        try connection.fake.serverSendsText("ERR UNKNOWN_COMMAND Unknown+server+command\n")
        let error = try #require(connection.readinessError)
        #expect(error.code == .authenticationFailed)
        #expect(error.message.contains("does not support authentication"))
    }

    // MARK: The state machine

    @Test func theMachineAnswersTheAuthenticationBeforeTheQueue() {
        var machine = Machine()
        machine.authenticationSent(principal: "acme")
        #expect(machine.isAuthenticating)
        #expect(Outcome(machine.frameReceived(response(.optionResponse(name: buffer("auth:acme"))))) == .authenticated)
        #expect(!machine.isAuthenticating)
        // From then on, OPTION_RES answers OPTION_REQ as before.
        let option = TestRequest("option")
        machine.requestSent(.option, request: option)
        let reply = GearmanPacket.optionResponse(name: buffer("exceptions"))
        #expect(Outcome(machine.frameReceived(response(reply))) == .succeeded("option", reply))
    }

    @Test(arguments: [
        (GearmanPacket.error(code: "AUTH_FAILED", text: "Authentication failed"), GearmanError.Code.authenticationFailed),
        (.error(code: "UNKNOWN_OPTION", text: "no"), .authenticationFailed),
        (.error(code: "PERMISSION_DENIED", text: "no"), .authenticationFailed),
        (.optionResponse(name: buffer("auth:other")), .authenticationFailed),
        (.optionResponse(name: buffer("auth:acme:s3cret")), .authenticationFailed),
        (.noop, .protocolViolation),
        (.jobCreated(handle: buffer("H:1")), .protocolViolation),
    ])
    func everyOtherAnswerClosesTheConnection(_ packet: GearmanPacket, _ code: GearmanError.Code) {
        var machine = Machine()
        machine.authenticationSent(principal: "acme")
        guard case .closeConnection(let error) = machine.frameReceived(response(packet)) else {
            Issue.record("expected the connection to close on \(packet.type.protocolName)")
            return
        }
        #expect(error.code == code)
        #expect(!error.message.contains("s3cret"))
    }

    @Test func theMachineReadsTheAdminAnswer() {
        var machine = Machine()
        machine.authenticationSent(principal: "acme")
        #expect(Outcome(machine.frameReceived(line("OK"))) == .authenticated)

        var refused = Machine()
        refused.authenticationSent(principal: "acme")
        guard case .closeConnection(let error) = refused.frameReceived(line("ERR AUTH_FAILED Authentication+failed")) else {
            Issue.record("expected the connection to close")
            return
        }
        #expect(error.code == .authenticationFailed)
        #expect(error.serverCode == "AUTH_FAILED")
        #expect(error.message.contains("Authentication failed"))

        var confused = Machine()
        confused.authenticationSent(principal: "acme")
        guard case .closeConnection(let violation) = confused.frameReceived(line("OK 1.0")) else {
            Issue.record("expected the connection to close")
            return
        }
        #expect(violation.code == .protocolViolation)
    }

    @Test func closingWhileAuthenticatingEndsTheAuthentication() {
        var machine = Machine()
        machine.authenticationSent(principal: "acme")
        _ = machine.closed(GearmanError(.connectionClosed, "gone"))
        #expect(!machine.isAuthenticating)
    }
}
