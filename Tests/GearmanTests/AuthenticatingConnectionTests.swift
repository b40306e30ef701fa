import GearmanProtocol
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing

@testable import Gearman

/// A loopback server that plays just enough Gearman to test authentication through the real
/// connect path: it accepts principal `acme` with secret `right` (OPTION_REQ token or admin
/// line), refuses anything else with AUTH_FAILED and closes, and answers ECHO_REQ, other
/// OPTION_REQs and `version`.
final class FakeAuthServer: Sendable {
    /// What arrived, per connection, in order.
    let received = NIOLockedValueBox<[[String]]>([])
    private let channel: any Channel

    var port: Int { channel.localAddress!.port! }
    var connections: Int { received.withLockedValue { $0.count } }

    init() async throws {
        let received = self.received
        channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let index = received.withLockedValue { log in
                        log.append([])
                        return log.count - 1
                    }
                    try channel.pipeline.syncOperations.addHandlers(
                        ByteToMessageHandler(GearmanFrameDecoder()), FakeAuthServerHandler(connection: index, received: received))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
    }

    var address: GearmanServerAddress { GearmanServerAddress(host: "127.0.0.1", port: port) }

    func close() async {
        try? await channel.close()
    }
}

private final class FakeAuthServerHandler: ChannelInboundHandler {
    typealias InboundIn = GearmanFrame
    typealias OutboundOut = ByteBuffer

    let connection: Int
    let received: NIOLockedValueBox<[[String]]>

    init(connection: Int, received: NIOLockedValueBox<[[String]]>) {
        self.connection = connection
        self.received = received
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .packet(let packet, _):
            switch packet {
            case .optionRequest(let name):
                let option = String(buffer: name)
                record("OPTION_REQ \(option)")
                if !option.hasPrefix("auth:") {
                    reply(.optionResponse(name: name), context: context)
                } else if option == "auth:acme:right" {
                    reply(.optionResponse(name: ByteBuffer(string: "auth:acme")), context: context)
                } else {
                    reply(.error(code: "AUTH_FAILED", text: "Authentication failed"), context: context)
                    context.close(promise: nil)
                }
            case .setClientID(let id):
                record("SET_CLIENT_ID \(String(buffer: id))")
            case .echoRequest(let payload):
                record("ECHO_REQ \(String(buffer: payload))")
                reply(.echoResponse(payload: payload), context: context)
            default:
                record(packet.type.protocolName)
            }
        case .text(let line):
            let text = String(buffer: line)
            record(text)
            if text.hasPrefix("auth ") {
                if text == "auth acme right" {
                    context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: "OK\n")), promise: nil)
                } else {
                    context.writeAndFlush(
                        wrapOutboundOut(ByteBuffer(string: "ERR AUTH_FAILED Authentication+failed\n")), promise: nil)
                    context.close(promise: nil)
                }
            } else if text == "version" {
                context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: "OK 1.0-fake\n")), promise: nil)
            }
        }
    }

    private func record(_ entry: String) {
        received.withLockedValue { $0[connection].append(entry) }
    }

    private func reply(_ packet: GearmanPacket, context: ChannelHandlerContext) {
        context.writeAndFlush(wrapOutboundOut(GearmanPacketEncoder.encode(packet, magic: .response)), promise: nil)
    }
}

/// The client, worker and admin client authenticating through `ConnectionPool` and
/// `GearmanConnection.connect` against `FakeAuthServer`.
@Suite("Authenticating connections", .timeLimit(.minutes(5)))
struct AuthenticatingConnectionTests {
    static let wrongSecret = "wrong-secret-7f3a"

    static func options(
        _ server: FakeAuthServer, secret: String, clientID: String? = nil, reconnectDelay: Duration = .seconds(30)
    ) throws -> GearmanConnectionOptions {
        GearmanConnectionOptions(
            // 20 s to connect: the default 5 s expired once at a loaded CI start (a hang guard only).
            servers: [server.address], connectTimeout: .seconds(20), initialReconnectDelay: reconnectDelay,
            maximumReconnectDelay: reconnectDelay,
            clientID: clientID, credentials: try GearmanCredentials(principal: "acme", secret: secret))
    }

    @Test func theClientAuthenticatesBeforeEverythingElse() async throws {
        let server = try await FakeAuthServer()
        let client = GearmanClient(configuration: .init(connection: try Self.options(server, secret: "right", clientID: "me")))
        let echoed = try await client.echo(ByteBuffer(string: "hi"), timeout: .seconds(10))
        #expect(echoed == ByteBuffer(string: "hi"))
        client.shutdown()
        #expect(
            server.received.withLockedValue { $0 } == [
                ["OPTION_REQ auth:acme:right", "SET_CLIENT_ID me", "OPTION_REQ exceptions", "ECHO_REQ hi"]
            ])
        await server.close()
    }

    @Test func refusedCredentialsFailTheClientAndBackOff() async throws {
        let server = try await FakeAuthServer()
        let client = GearmanClient(configuration: .init(connection: try Self.options(server, secret: Self.wrongSecret)))
        defer { client.shutdown() }
        for attempt in 0..<3 {
            do {
                _ = try await client.echo(ByteBuffer(string: "hi"), timeout: .seconds(10))
                Issue.record("attempt \(attempt): echo succeeded with refused credentials")
            } catch {
                #expect(error.code == .authenticationFailed, "attempt \(attempt)")
                #expect(error.serverCode == "AUTH_FAILED", "attempt \(attempt)")
                #expect(error.message.contains("acme"))
                #expect(!error.description.contains(Self.wrongSecret))
                #expect(!"\(error)".contains(Self.wrongSecret))
            }
        }
        // The later attempts were answered from the backoff, without reconnecting.
        #expect(server.connections == 1)
        #expect(server.received.withLockedValue { $0 } == [["OPTION_REQ auth:acme:\(Self.wrongSecret)"]])
        await server.close()
    }

    @Test func theAdminClientAuthenticatesWithTheAuthLine() async throws {
        let server = try await FakeAuthServer()
        let admin = GearmanAdminClient(server: server.address, options: try Self.options(server, secret: "right"))
        #expect(try await admin.version(timeout: .seconds(10)) == "1.0-fake")
        admin.close()
        #expect(server.received.withLockedValue { $0 } == [["auth acme right", "version"]])
        await server.close()
    }

    @Test func refusedCredentialsFailTheAdminClient() async throws {
        let server = try await FakeAuthServer()
        let admin = GearmanAdminClient(server: server.address, options: try Self.options(server, secret: Self.wrongSecret))
        defer { admin.close() }
        do {
            _ = try await admin.version(timeout: .seconds(10))
            Issue.record("version succeeded with refused credentials")
        } catch {
            #expect(error.code == .authenticationFailed)
            #expect(error.serverCode == "AUTH_FAILED")
            #expect(error.message.contains("Authentication failed"))
            #expect(!error.description.contains(Self.wrongSecret))
        }
        #expect(server.received.withLockedValue { $0 } == [["auth acme \(Self.wrongSecret)"]])
        await server.close()
    }

    @Test func aRefusedWorkerReconnectsOnlyAfterItsBackoff() async throws {
        let server = try await FakeAuthServer()
        let worker = GearmanWorker(
            configuration: .init(
                connection: try Self.options(server, secret: Self.wrongSecret, reconnectDelay: .milliseconds(200))))
        worker.register(function: "acme.resize") { job in job.payload }
        let start = ContinuousClock.now
        let running = Task { try await worker.run() }
        // It does come back (a loaded machine may take a while) …
        while server.connections < 2 && ContinuousClock.now - start < .seconds(20) {
            try await Task.sleep(for: .milliseconds(20))
        }
        try await Task.sleep(for: .milliseconds(500))
        running.cancel()
        _ = try? await running.value
        let elapsed = ContinuousClock.now - start
        // … but at most about once per 200 ms; a loop without backoff would make hundreds.
        let connections = server.connections
        #expect(connections >= 2)
        #expect(connections <= Int(elapsed / .milliseconds(200)) + 2, "\(connections) connections in \(elapsed)")
        // Nothing but the (refused) authentication ever reached the server: no registration.
        // (A connection accepted just before the worker stopped may not have sent it yet.)
        for log in server.received.withLockedValue({ $0 }) {
            #expect(log.allSatisfy { $0 == "OPTION_REQ auth:acme:\(Self.wrongSecret)" })
        }
        await server.close()
    }
}
