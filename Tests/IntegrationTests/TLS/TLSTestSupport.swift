import GearlockSpawn
import GearlockTestSupport
import Foundation
import GearmanProtocol
import GearmanServer
import GearmanTLS
import Logging
import NIOCore
import NIOPosix
import Testing

#if canImport(Glibc)
import Glibc
#endif

// MARK: - In-process server with a TLS listener

/// The two listeners of a TLS test server.
struct TLSTestPorts: Sendable {
    let plaintext: Int
    let tls: Int
}

/// Runs `body` against an in-process `JobServer` listening on a plaintext and a TLS port of
/// 127.0.0.1, and always stops it afterwards. `logLevel` quiets errors a test provokes on purpose.
func withTLSJobServer<T: Sendable>(
    _ tls: TLSConfiguration, logLevel: Logger.Level = .error, _ body: (TLSTestPorts, JobServer) async throws -> T
) async throws -> T {
    var configuration = gearlockConfiguration(ServerOptions())
    configuration.listeners = [.init(host: "127.0.0.1", port: 0), .init(host: "127.0.0.1", port: 0, tls: tls)]
    var logger = testLogger("gearlock.tls-test")
    logger.logLevel = logLevel
    // Its own event-loop thread, so this server's load doesn't stall other tests' (see withGearlock).
    let eventLoopGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    defer { eventLoopGroup.shutdownGracefully { _ in } }
    let server = JobServer(configuration: configuration, eventLoopGroup: eventLoopGroup, logger: logger)
    return try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await server.run() }
        do {
            let addresses = try await server.listeningAddresses()
            let ports = TLSTestPorts(
                plaintext: try #require(addresses.first?.port), tls: try #require(addresses.last?.port))
            let result = try await body(ports, server)
            group.cancelAll()
            try await group.waitForAll()
            return result
        } catch {
            group.cancelAll()
            try? await group.waitForAll()
            throw error
        }
    }
}

extension TestPKI {
    /// The server side: `server` certificate, clients verified against `ca`.
    func serverTLS(
        clientAuthentication: TLSConfiguration.ClientAuthentication = .require, crl: Bool = true
    ) -> TLSConfiguration {
        TLSConfiguration.makeServerConfiguration(
            certificateChainPath: certificate("server"), privateKeyPath: key("server"),
            clientAuthentication: clientAuthentication, trustRootsPath: certificate("ca"),
            crlPath: crl ? self.crl : nil)
    }

    /// A client that trusts `ca`, checks the name `localhost`, and presents `name`'s certificate.
    func clientContext(_ name: String?) throws -> TLSContext {
        try TLSContext(
            configuration: .makeClientConfiguration(
                trustRootsPath: certificate("ca"), serverName: "localhost", certificateChainPath: name.map(certificate),
                privateKeyPath: name.map(key)))
    }
}

// MARK: - A raw Gearman connection over our TLS handler

/// Reports the handshake's outcome and records TLS errors; passes everything on.
final class TLSObserver: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    let handshake: EventLoopPromise<TLSPeerIdentity>
    private var settled = false
    private(set) var errors: [any Error] = []

    init(handshake: EventLoopPromise<TLSPeerIdentity>) {
        self.handshake = handshake
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .handshakeCompleted(let identity) = event as? TLSEvent, !settled {
            settled = true
            handshake.succeed(identity)
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        errors.append(error)
        if !settled {
            settled = true
            handshake.fail(error)
        }
        context.fireErrorCaught(error)
    }

    func channelInactive(context: ChannelHandlerContext) {
        if !settled {
            settled = true
            handshake.fail(RawClientError(description: "closed before the TLS handshake completed"))
        }
        context.fireChannelInactive()
    }

    /// A channel that never became active (its connect failed, e.g. on a loaded machine) is torn
    /// down without `channelInactive`: the promise must still be completed, or NIO's debug build
    /// traps on the leaked promise and takes the whole test process down.
    func handlerRemoved(context: ChannelHandlerContext) {
        if !settled {
            settled = true
            handshake.fail(RawClientError(description: "the connection ended before the TLS handshake completed"))
        }
    }
}

/// Like `RawClient`, but over `TLSHandler`: sends packets and text lines, receives `RawFrame`s,
/// with a deadline on every wait.
final class TLSRawClient: Sendable {
    let channel: any Channel
    let label: String
    /// What the server's certificate says, once the handshake completed.
    let serverIdentity: TLSPeerIdentity
    private let collector: NIOLoopBound<FrameCollector>

    private init(
        channel: any Channel, collector: NIOLoopBound<FrameCollector>, serverIdentity: TLSPeerIdentity, label: String
    ) {
        self.channel = channel
        self.collector = collector
        self.serverIdentity = serverIdentity
        self.label = label
    }

    /// Connects and completes the handshake (throws if it fails or takes longer than `timeout`).
    static func connect(
        port: Int, context: TLSContext, label: String, timeout: Duration = .seconds(20)
    ) async throws -> TLSRawClient {
        let bootstrap = ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(.seconds(20))
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandlers(
                        TLSHandler(context: context), TLSObserver(handshake: channel.eventLoop.makePromise()),
                        ByteToMessageHandler(RawFrameDecoder()), FrameCollector())
                }
            }
        let channel = try await bootstrap.connect(host: "127.0.0.1", port: port).get()
        let (handshake, collector) = try await channel.eventLoop.submit {
            let operations = channel.pipeline.syncOperations
            return (
                try operations.handler(type: TLSObserver.self).handshake.futureResult,
                NIOLoopBound(try operations.handler(type: FrameCollector.self), eventLoop: channel.eventLoop)
            )
        }.get()
        do {
            let identity = try await RawClient.wait(for: handshake, timeout: timeout, what: "\(label): TLS handshake")
            return TLSRawClient(channel: channel, collector: collector, serverIdentity: identity, label: label)
        } catch {
            try? await channel.close()
            throw error
        }
    }

    // MARK: Sending

    func sendRaw(_ bytes: ByteBuffer, timeout: Duration = .seconds(10)) async throws {
        let promise = channel.eventLoop.makePromise(of: Void.self)
        channel.writeAndFlush(bytes, promise: promise)
        try await RawClient.wait(for: promise.futureResult, timeout: timeout, what: "\(label): write")
    }

    func send(_ packet: RawPacket) async throws {
        try await sendRaw(packet.wireBytes)
    }

    func sendLine(_ line: String) async throws {
        try await sendRaw(ByteBuffer(string: line + "\n"))
    }

    // MARK: Receiving

    func receive(timeout: Duration = RawClient.defaultTimeout) async throws -> RawFrame {
        let collector = self.collector
        let eventLoop = channel.eventLoop
        let amount = TimeAmount(timeout)
        let outcome = try await eventLoop.flatSubmit { collector.value.next(timeout: amount, eventLoop: eventLoop) }.get()
        switch outcome {
        case .frame(let frame): return frame
        case .closed: throw RawClientError(description: "\(label): connection closed while waiting for a frame")
        case .timedOut: throw RawClientError(description: "\(label): nothing received within \(timeout)")
        }
    }

    func receivePacket(timeout: Duration = RawClient.defaultTimeout) async throws -> RawPacket {
        let frame = try await receive(timeout: timeout)
        guard case .packet(let packet) = frame else {
            throw RawClientError(description: "\(label): expected a binary packet, got \(frame)")
        }
        return packet
    }

    /// One admin command whose reply is a single line (`version`, `getpid`, …).
    func adminLine(_ command: String) async throws -> String {
        try await sendLine(command)
        guard case .text(let line) = try await receive() else {
            throw RawClientError(description: "\(label): expected a text line")
        }
        return line
    }

    // MARK: Client and worker steps

    func submit(_ function: String, payload: String) async throws -> String {
        try await send(.request(.submitJob, function, "", payload))
        let reply = try await receivePacket()
        guard reply.packetType == .jobCreated else {
            throw RawClientError(description: "\(label): expected JOB_CREATED, got \(reply)")
        }
        return String(buffer: reply.payload)
    }

    func canDo(_ function: String) async throws {
        try await send(.request(.canDo, function))
    }

    /// GRAB_JOB until a JOB_ASSIGN arrives.
    func grabUntilAssigned(timeout: Duration = .seconds(20)) async throws -> RawPacket {
        let deadline = ContinuousClock.now + timeout
        while true {
            try await send(.request(.grabJob))
            let reply = try await receivePacket()
            if reply.packetType != .noJob { return reply }
            guard ContinuousClock.now < deadline else { throw RawClientError(description: "\(label): only NO_JOB") }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    // MARK: Leaving

    /// A clean TLS close (close_notify).
    func close() async {
        try? await channel.close()
    }

    /// Leaves like a crashed process: the TLS layer is dropped (no close_notify), `bytes` go out
    /// as they are (say, half a TLS record), then the socket is reset.
    func vanish(after bytes: ByteBuffer? = nil) async {
        let channel = self.channel
        try? await channel.eventLoop.submit {
            let operations = channel.pipeline.syncOperations
            let handler = try operations.handler(type: TLSHandler.self)
            _ = operations.removeHandler(handler)
        }.get()
        if let bytes { try? await channel.writeAndFlush(bytes) }
        if let provider = channel as? any SocketOptionProvider {
            _ = try? await provider.setSoLinger(linger(l_onoff: 1, l_linger: 0)).get()
        }
        try? await channel.close()
    }
}

// MARK: - Processes whose output is read while they run

/// A child process with a stdin pipe and stdout/stderr collected as they arrive, so a test can
/// wait for a line while the process still runs. A `ChildProcess` (dies with the test process,
/// signals unblocked) whose stdin stays open.
final class LiveProcess: Sendable {
    let description: String
    private let child: ChildProcess

    var pid: pid_t { child.pid }

    init(_ executable: String, _ arguments: [String], sourceLocation: SourceLocation = #_sourceLocation) throws {
        description = ([executable] + arguments).joined(separator: " ")
        child = try ChildProcess(executable, arguments, input: .open, sourceLocation: sourceLocation)
    }

    var stdout: String { String(decoding: child.outputSoFar.stdout, as: UTF8.self) }
    var stderr: String { String(decoding: child.outputSoFar.stderr, as: UTF8.self) }
    var output: String { stdout + stderr }
    var isRunning: Bool { child.isRunning }

    /// The exit status, or the signal that killed the process; nil while it runs.
    var status: Int32? {
        switch child.exitStatus {
        case .exited(let code)?: code
        case .signalled(let signal)?: signal
        case nil: nil
        }
    }

    func write(_ text: String) {
        child.write(Data(text.utf8))
    }

    func closeInput() {
        child.closeInput()
    }

    func signal(_ signal: Int32) {
        child.signal(signal)
    }

    /// Polls until `predicate(stdout, stderr)` holds or the process has exited and said all it
    /// will; returns whether the predicate held.
    @discardableResult
    func waitFor(timeout: Duration = .seconds(20), _ predicate: (String, String) -> Bool) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while true {
            let (out, err, finished) = child.outputSoFar
            if predicate(String(decoding: out, as: UTF8.self), String(decoding: err, as: UTF8.self)) { return true }
            if finished || ContinuousClock.now >= deadline { return false }
            try? await Task.sleep(for: .milliseconds(10))
        }
    }

    /// Waits for the process to exit; SIGKILLs it after `timeout`. Returns the exit status (nil if killed).
    @discardableResult
    func wait(timeout: Duration) async -> Int32? {
        let result = await child.wait(timeout: timeout)
        return result.timedOut ? nil : result.status
    }

    /// SIGTERM, then SIGKILL after `grace`.
    @discardableResult
    func terminate(grace: Duration = .seconds(3)) async -> Int32? {
        closeInput()
        signal(SIGTERM)
        return await wait(timeout: grace)
    }
}

// MARK: - openssl s_client

/// What one `openssl s_client` session printed: the server's replies on stdout, the handshake
/// summary (`-brief`) and errors on stderr.
struct SClientResult: Sendable, CustomStringConvertible {
    var stdout: String
    var stderr: String
    var status: Int32?

    /// The `Peer certificate: CN = …` line of `-brief`.
    var peerCertificate: String? {
        stderr.split(separator: "\n").first { $0.hasPrefix("Peer certificate:") }.map {
            String($0.dropFirst("Peer certificate:".count)).trimmingCharacters(in: .whitespaces)
        }
    }

    var protocolVersion: String? {
        stderr.split(separator: "\n").first { $0.hasPrefix("Protocol version:") }.map {
            String($0.dropFirst("Protocol version:".count)).trimmingCharacters(in: .whitespaces)
        }
    }

    var description: String {
        "status \(status.map(String.init) ?? "killed"), stdout \(reprString(stdout)), stderr \(reprString(String(stderr.suffix(1500))))"
    }
}

enum OpenSSLTool {
    static let path = "/usr/bin/openssl"
}

/// Runs `openssl s_client` against 127.0.0.1:`port`, verifying the server (`ca`, name
/// `localhost`) and presenting `certificate` (a PKI name) if given. Sends `version`, waits for an
/// admin reply or for s_client to exit, then ends the session.
func sClient(
    port: Int, pki: TestPKI, certificate: String?, options: [String] = [], timeout: Duration = .seconds(5),
    sourceLocation: SourceLocation = #_sourceLocation
) async throws -> SClientResult {
    var arguments = [
        "s_client", "-connect", "127.0.0.1:\(port)", "-servername", "localhost", "-verify_hostname", "localhost",
        "-CAfile", pki.certificate("ca"), "-verify_return_error", "-brief",
    ]
    if let certificate {
        arguments += ["-cert", pki.certificate(certificate), "-key", pki.key(certificate)]
    }
    arguments += options
    let process = try LiveProcess(OpenSSLTool.path, arguments, sourceLocation: sourceLocation)
    process.write("version\n")
    await process.waitFor(timeout: timeout) { out, _ in out.contains("OK ") || out.contains("ERR ") }
    process.closeInput()
    let status = await process.wait(timeout: .seconds(20))
    return SClientResult(stdout: process.stdout, stderr: process.stderr, status: status)
}

// MARK: - The gearlock binary with a TLS listener

/// Runs `gearlock serve` with a plaintext and a TLS listener on free loopback ports (log level
/// info, so tests can wait for log lines), and always stops it afterwards.
func withGearlockTLSBinary<T: Sendable>(
    _ arguments: [String], sourceLocation: SourceLocation = #_sourceLocation,
    _ body: (TLSTestPorts, LiveProcess) async throws -> T
) async throws -> T {
    try await withRetriedGearlockServe(
        sourceLocation: sourceLocation, listenTimeout: .seconds(10),
        makePorts: { TLSTestPorts(plaintext: try freeLoopbackPort(), tls: try freeLoopbackPort()) },
        arguments: { ports in
            ["serve", "--listen", "127.0.0.1:\(ports.plaintext)", "--tls-listen", "127.0.0.1:\(ports.tls)",
             "--log-level", "info", "--queue", "memory"] + arguments
        },
        isListening: { ports, output in output.contains("tls://127.0.0.1:\(ports.tls)") },
        isReady: { ports, process in
            try await waitUntilAnswering(port: ports.plaintext, pid: process.pid, stillRunning: { process.isRunning })
        },
        body)
}

/// Counts the lines of `text` that contain `needle`.
func occurrences(of needle: String, in text: String) -> Int {
    text.split(separator: "\n").count { $0.contains(needle) }
}
