import GearmanProtocol
import NIOCore
import NIOPosix
import Synchronization

/// Why a wait on the server ended without the frame a test wanted.
struct RawClientError: Error, CustomStringConvertible {
    var description: String
}

/// What one wait for a frame produced.
enum ReceiveOutcome: Sendable {
    case frame(RawFrame)
    case closed
    case timedOut
}

/// Keeps the frames a connection received until the test asks for them. Lives on the channel's loop.
final class FrameCollector: ChannelInboundHandler {
    typealias InboundIn = RawFrame

    private var buffered: [RawFrame] = []
    private var head = 0
    private var isClosed = false
    private var waiter: (promise: EventLoopPromise<ReceiveOutcome>, timeout: Scheduled<Void>)?

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        if let waiter {
            self.waiter = nil
            waiter.timeout.cancel()
            waiter.promise.succeed(.frame(frame))
        } else {
            buffered.append(frame)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        isClosed = true
        if let waiter {
            self.waiter = nil
            waiter.timeout.cancel()
            waiter.promise.succeed(.closed)
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    /// The next frame, `.closed` once the peer closed and everything buffered was taken, or
    /// `.timedOut` after `timeout`.
    func next(timeout: TimeAmount, eventLoop: any EventLoop) -> EventLoopFuture<ReceiveOutcome> {
        if head < buffered.count {
            let frame = buffered[head]
            head += 1
            if head > 64 && head * 2 > buffered.count {
                buffered.removeFirst(head)
                head = 0
            }
            return eventLoop.makeSucceededFuture(.frame(frame))
        }
        if isClosed { return eventLoop.makeSucceededFuture(.closed) }
        precondition(waiter == nil, "one receive at a time per connection")
        let promise = eventLoop.makePromise(of: ReceiveOutcome.self)
        let loopBoundSelf = NIOLoopBound(self, eventLoop: eventLoop)
        let scheduled = eventLoop.scheduleTask(in: timeout) {
            let collector = loopBoundSelf.value
            if let waiter = collector.waiter {
                collector.waiter = nil
                waiter.promise.succeed(.timedOut)
            }
        }
        waiter = (promise, scheduled)
        return promise.futureResult
    }
}

/// The collector a new connection's initializer added.
private final class AddedCollector: Sendable {
    let collector = Mutex<NIOLoopBound<FrameCollector>?>(nil)
}

/// A raw Gearman connection for tests: sends packets and text lines, and receives what the server
/// sends as `RawFrame`s. Every wait has a deadline, so a broken server fails a test instead of hanging it.
final class RawClient: Sendable {
    static let defaultTimeout: Duration = .seconds(20)

    let channel: any Channel
    private let collector: NIOLoopBound<FrameCollector>
    let label: String

    private init(channel: any Channel, collector: NIOLoopBound<FrameCollector>, label: String) {
        self.channel = channel
        self.collector = collector
        self.label = label
    }

    /// - Parameter sourceAddress: the local IP address to connect from (e.g. another address of
    ///   127.0.0.0/8, to be another peer for per-address limits); nil lets the kernel choose.
    static func connect(host: String, port: Int, label: String = "client", from sourceAddress: String? = nil) async throws -> RawClient {
        // The collector is kept as it is added: a server that refuses the connection may close it
        // (and its pipeline) before `connect` returns, and what it sent is still in the collector.
        let added = AddedCollector()
        var bootstrap = ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(.seconds(20))
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let collector = FrameCollector()
                    try channel.pipeline.syncOperations.addHandlers(ByteToMessageHandler(RawFrameDecoder()), collector)
                    added.collector.withLock { $0 = NIOLoopBound(collector, eventLoop: channel.eventLoop) }
                }
            }
        if let sourceAddress {
            bootstrap = bootstrap.bind(to: try SocketAddress(ipAddress: sourceAddress, port: 0))
        }
        let channel = try await bootstrap.connect(host: host, port: port).get()
        guard let collector = added.collector.withLock({ $0 }) else {
            throw RawClientError(description: "\(label): the connection has no frame collector")
        }
        return RawClient(channel: channel, collector: collector, label: label)
    }

    // MARK: Sending

    /// Writes `bytes` as they are, waiting (with a deadline) until they are on the socket.
    func sendRaw(_ bytes: ByteBuffer, timeout: Duration = .seconds(30)) async throws {
        let promise = channel.eventLoop.makePromise(of: Void.self)
        channel.writeAndFlush(bytes, promise: promise)
        try await Self.wait(for: promise.futureResult, timeout: timeout, what: "\(label): write")
    }

    func sendRaw(_ bytes: [UInt8]) async throws {
        try await sendRaw(ByteBuffer(bytes: bytes))
    }

    /// Sends a packet built by the project's encoder with `\0REQ` magic.
    func send(_ packet: GearmanPacket) async throws {
        try await sendRaw(GearmanPacketEncoder.encode(packet, magic: .request))
    }

    /// Sends a packet built byte by byte.
    func send(_ packet: RawPacket) async throws {
        try await sendRaw(packet.wireBytes)
    }

    /// Sends `line` with a `\n` appended unless it already ends in one.
    func sendLine(_ line: String) async throws {
        try await sendRaw(ByteBuffer(string: line.hasSuffix("\n") ? line : line + "\n"))
    }

    // MARK: Receiving

    /// The next frame; throws when the connection closes or nothing arrives within `timeout`.
    func receive(timeout: Duration = defaultTimeout) async throws -> RawFrame {
        switch try await nextOutcome(timeout: timeout) {
        case .frame(let frame): return frame
        case .closed: throw RawClientError(description: "\(label): connection closed while waiting for a frame")
        case .timedOut: throw RawClientError(description: "\(label): nothing received within \(timeout)")
        }
    }

    /// The next frame, which must be a binary packet.
    func receivePacket(timeout: Duration = defaultTimeout) async throws -> RawPacket {
        let frame = try await receive(timeout: timeout)
        guard case .packet(let packet) = frame else {
            throw RawClientError(description: "\(label): expected a binary packet, got \(frame)")
        }
        return packet
    }

    /// The next frame, or nil when nothing arrives within `window`; throws if the connection closes.
    func receiveIfAny(within window: Duration) async throws -> RawFrame? {
        switch try await nextOutcome(timeout: window) {
        case .frame(let frame): return frame
        case .closed: throw RawClientError(description: "\(label): connection closed")
        case .timedOut: return nil
        }
    }

    /// Waits until the server closes the connection, returning every frame it sent before.
    /// Throws if the connection is still open after `timeout`.
    func framesUntilClose(timeout: Duration = defaultTimeout) async throws -> [RawFrame] {
        var frames: [RawFrame] = []
        let deadline = ContinuousClock.now + timeout
        while true {
            let remaining = deadline - ContinuousClock.now
            guard remaining > .zero else { break }
            switch try await nextOutcome(timeout: remaining) {
            case .frame(let frame): frames.append(frame)
            case .closed: return frames
            case .timedOut: break
            }
        }
        throw RawClientError(description: "\(label): still open after \(timeout); received \(frames)")
    }

    private func nextOutcome(timeout: Duration) async throws -> ReceiveOutcome {
        let collector = self.collector
        let eventLoop = channel.eventLoop
        let amount = TimeAmount(timeout)
        return try await eventLoop.flatSubmit {
            collector.value.next(timeout: amount, eventLoop: eventLoop)
        }.get()
    }

    // MARK: Admin

    /// Sends one admin line and returns the whole reply, line endings included: a single
    /// `OK…`/`ERR…` line, or a list up to and including `.\n`.
    func adminCommand(_ command: String, timeout: Duration = defaultTimeout) async throws -> String {
        try await sendLine(command)
        return try await readAdminReply(timeout: timeout)
    }

    /// Reads one admin reply (see `adminCommand`).
    func readAdminReply(timeout: Duration = defaultTimeout) async throws -> String {
        var reply = ""
        var first = true
        while true {
            let frame = try await receive(timeout: timeout)
            guard case .text(let line) = frame else {
                throw RawClientError(description: "\(label): expected an admin text line, got \(frame) after \(reprString(reply))")
            }
            reply += line
            if first && (line.hasPrefix("OK") || line.hasPrefix("ERR")) { return reply }
            first = false
            if line == ".\n" { return reply }
        }
    }

    // MARK: Conveniences for clients and workers

    /// Submits a job and returns the handle from JOB_CREATED.
    func submit(
        _ function: String, unique: String = "", payload: any WireArgument = "", type: PacketType = .submitJob
    ) async throws -> String {
        try await send(RawPacket(magic: Magic.request, type: type.rawValue, [function, unique, payload]))
        let reply = try await receivePacket()
        guard reply.type == PacketType.jobCreated.rawValue, reply.magic == Magic.response else {
            throw RawClientError(description: "\(label): expected JOB_CREATED, got \(reply)")
        }
        return String(buffer: reply.payload)
    }

    func canDo(_ functions: String...) async throws {
        for function in functions {
            try await send(RawPacket.request(.canDo, function))
        }
    }

    /// GRAB_JOB (or a variant) and the reply.
    func grab(_ type: PacketType = .grabJob) async throws -> RawPacket {
        try await send(RawPacket.request(type))
        return try await receivePacket()
    }

    /// ECHO round trip: proves the connection is open and the server is answering.
    func ping(_ text: String = "alive") async throws -> Bool {
        try await send(RawPacket.request(.echoRequest, text))
        let reply = try await receive()
        return reply == .packet(.response(.echoResponse, text))
    }

    /// Closes the connection (in tests: a worker or client vanishing).
    func close() async {
        try? await channel.close()
    }

    /// Closes with SO_LINGER 0, so the server sees a reset, as when a process is killed.
    func abort() async {
        if let provider = channel as? any SocketOptionProvider {
            _ = try? await provider.setSoLinger(linger(l_onoff: 1, l_linger: 0)).get()
        }
        try? await channel.close()
    }

    // MARK: Deadlines on futures

    /// `future.get()`, but failing after `timeout` (the future itself cannot be cancelled).
    static func wait<T: Sendable>(for future: EventLoopFuture<T>, timeout: Duration, what: String) async throws -> T {
        let eventLoop = future.eventLoop
        let result = eventLoop.makePromise(of: T.self)
        let amount = TimeAmount(timeout)
        try await eventLoop.submit {
            let done = NIOLoopBoundBox(false, eventLoop: eventLoop)
            let scheduled = eventLoop.scheduleTask(in: amount) {
                guard !done.value else { return }
                done.value = true
                result.fail(RawClientError(description: "\(what) did not finish within \(timeout)"))
            }
            future.whenComplete { outcome in
                guard !done.value else { return }
                done.value = true
                scheduled.cancel()
                result.completeWith(outcome)
            }
        }.get()
        return try await result.futureResult.get()
    }
}

extension TimeAmount {
    init(_ duration: Duration) {
        self = .nanoseconds(
            Int64(duration.components.seconds) * 1_000_000_000 + duration.components.attoseconds / 1_000_000_000)
    }
}

extension RawClient {
    /// Sends a packet whose data tail is written as its own buffer (no copy of a big payload).
    func sendPacket(_ type: PacketType, fields: [String], data: ByteBuffer, timeout: Duration = .seconds(60)) async throws {
        var head = ByteBuffer()
        head.writeBytes(Magic.request)
        head.writeInteger(type.rawValue)
        let fieldBytes = fields.reduce(0) { $0 + $1.utf8.count + 1 }
        head.writeInteger(UInt32(fieldBytes + data.readableBytes))
        for field in fields {
            head.writeString(field)
            head.writeInteger(UInt8(0))
        }
        try await sendRaw(head)
        try await sendRaw(data, timeout: timeout)
    }

    /// GRAB_JOB until a JOB_ASSIGN arrives (a requeue reaches the server asynchronously).
    func grabUntilAssigned(timeout: Duration = .seconds(20)) async throws -> RawPacket {
        let deadline = ContinuousClock.now + timeout
        while true {
            let reply = try await grab()
            if reply.type != PacketType.noJob.rawValue { return reply }
            guard ContinuousClock.now < deadline else {
                throw RawClientError(description: "\(label): only NO_JOB for \(timeout)")
            }
            try await Task.sleep(for: .milliseconds(25))
        }
    }

    /// GET_STATUS_UNIQUE and its STATUS_RES_UNIQUE.
    func statusUnique(_ unique: String) async throws -> RawPacket {
        try await send(RawPacket.request(.getStatusUnique, unique))
        return try await receivePacket()
    }
}

/// Well-known replies.
extension RawPacket {
    static let noop = RawPacket.response(.noop)
    static let noJob = RawPacket.response(.noJob)
}

extension RawFrame {
    static let noop = RawFrame.packet(.noop)
    static let noJob = RawFrame.packet(.noJob)
}
