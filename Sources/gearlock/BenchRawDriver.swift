import Gearman
import GearmanProtocol
import GearmanTLS
import NIOCore
import NIOPosix

/// `gearlock bench --driver raw`: the foreground load (and background mode's enqueue and drain,
/// below) driven by NIO channel handlers that speak the protocol directly — no tasks,
/// continuations or library bookkeeping per job — so the load generator takes as little of the
/// machine as it can and the server's own cost shows. The same handlers drive every server.
///
/// Workers send CAN_DO and keep `concurrency` GRAB_JOBs outstanding, answer each JOB_ASSIGN with
/// WORK_COMPLETE carrying the payload back and a new GRAB_JOB, and sleep (PRE_SLEEP) when every
/// grab came back NO_JOB. Clients keep `inFlight` SUBMIT_JOBs outstanding, each slot alternating
/// between two payloads of its own, and check every WORK_COMPLETE byte for byte. Writes are
/// flushed once per read cycle.
enum BenchRawDriver {
    struct Connections {
        var workers: [NIOLoopBound<RawBenchWorkerHandler>] = []
        var clients: [NIOLoopBound<RawBenchClientHandler>] = []
        var channels: [any Channel] = []

        func close() async {
            for channel in channels { try? await channel.close() }
        }
    }

    /// Connects a channel to `address` with `handler` on top of the frame decoder (and TLS). Also
    /// how `gearlock bench --mode idle` opens its connections.
    static func connect<Handler: ChannelInboundHandler & RemovableChannelHandler & SendableMetatype>(
        _ address: GearmanServerAddress, options: GearmanConnectionOptions, tlsContext: TLSContext?,
        makeHandler: @escaping @Sendable () -> Handler
    ) async throws -> (any Channel, NIOLoopBound<Handler>) where Handler.InboundIn == GearmanFrame {
        let serverName = options.tls?.serverName ?? address.host
        let bootstrap = ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(timeAmount(options.connectTimeout))
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tlsContext {
                        try channel.pipeline.syncOperations.addHandler(TLSHandler(context: tlsContext, serverName: serverName))
                    }
                    try channel.pipeline.syncOperations.addHandlers(
                        ByteToMessageHandler(GearmanFrameDecoder()), makeHandler())
                }
            }
        let channel = try await bootstrap.connect(host: address.host, port: address.port).get()
        let handler = try await channel.eventLoop.submit {
            NIOLoopBound(try channel.pipeline.syncOperations.handler(type: Handler.self), eventLoop: channel.eventLoop)
        }.get()
        return (channel, handler)
    }

    static func nanoseconds(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }

    static func timeAmount(_ duration: Duration) -> TimeAmount {
        .nanoseconds(nanoseconds(duration))
    }

    static func tlsContext(_ options: GearmanConnectionOptions) throws -> TLSContext? {
        try options.tls.map { try TLSContext(configuration: $0) }
    }

    /// Starts `count` workers for `function`; `onJob` sees every job's payload.
    static func startWorkers(
        count: Int, concurrency: Int, function: String, options: GearmanConnectionOptions, tlsContext: TLSContext?,
        onJob: (@Sendable (ByteBuffer) -> Void)? = nil, into connections: inout Connections
    ) async throws {
        for _ in 0..<count {
            let (channel, handler) = try await connect(options.servers[0], options: options, tlsContext: tlsContext) {
                RawBenchWorkerHandler(function: function, concurrency: concurrency, onJob: onJob)
            }
            connections.channels.append(channel)
            connections.workers.append(handler)
        }
    }

    /// Starts `count` clients, each keeping `inFlight` jobs outstanding until `window` ends.
    static func startClients(
        count: Int, inFlight: Int, function: String, payloads: BenchPayloads, window: LoadWindow,
        options: GearmanConnectionOptions, tlsContext: TLSContext?, into connections: inout Connections
    ) async throws {
        for index in 0..<count {
            let slotPayloads = (0..<inFlight * 2).map { payloads[index * inFlight * 2 + $0] }
            let (channel, handler) = try await connect(options.servers[0], options: options, tlsContext: tlsContext) {
                RawBenchClientHandler(function: function, payloads: slotPayloads, window: window)
            }
            connections.channels.append(channel)
            connections.clients.append(handler)
        }
    }

    /// What the clients saw, merged; jobs still outstanding for longer than `jobTimeout` at the
    /// end count as errors. Also any error a worker saw.
    static func collect(_ connections: Connections, jobTimeout: Duration) async -> LoadTally {
        var total = LoadTally()
        let overdue = benchNow() &- UInt64(nanoseconds(jobTimeout))
        for handler in connections.clients {
            let tally = try? await handler.eventLoop.submit { handler.value.finish(overdueBefore: overdue) }.get()
            total.merge(tally ?? LoadTally(errors: 1, firstError: "a client connection was lost"))
        }
        for handler in connections.workers {
            let (errors, firstError) =
                (try? await handler.eventLoop.submit { (handler.value.errors, handler.value.firstError) }.get())
                ?? (1, "a worker connection was lost")
            total.errors += errors
            total.firstError = total.firstError ?? firstError
        }
        return total
    }
}

extension LoadTally {
    init(errors: Int, firstError: String) {
        self.init()
        self.errors = errors
        self.firstError = firstError
    }
}

/// Collects a read cycle's outgoing packets in one buffer (large data tails as their own writes,
/// in order) and writes them at the cycle's end. A class, so no access to it is held across a
/// write or flush, which may call back into the handler (a failed write closes the channel).
final class RawBenchOutbox {
    private var pending: ByteBuffer?

    func append(_ packet: GearmanPacket, context: ChannelHandlerContext) {
        var buffer = pending ?? context.channel.allocator.buffer(capacity: 256)
        pending = nil
        if let tail = GearmanPacketEncoder.encode(packet, magic: .request, into: &buffer) {
            context.write(NIOAny(buffer), promise: nil)
            context.write(NIOAny(tail), promise: nil)
        } else {
            pending = buffer
        }
    }

    func flush(context: ChannelHandlerContext) {
        if let buffer = pending {
            pending = nil
            context.write(NIOAny(buffer), promise: nil)
        }
        context.flush()
    }
}

final class RawBenchWorkerHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = GearmanFrame

    private let function: ByteBuffer
    private let concurrency: Int
    private let outbox = RawBenchOutbox()
    private var grabsOutstanding = 0
    private var sleeping = false
    private(set) var errors = 0
    private(set) var firstError: String?

    /// Called with every job's payload (on the connection's loop) before it is sent back.
    private let onJob: (@Sendable (ByteBuffer) -> Void)?

    init(function: String, concurrency: Int, onJob: (@Sendable (ByteBuffer) -> Void)? = nil) {
        self.function = ByteBuffer(string: function)
        self.concurrency = concurrency
        self.onJob = onJob
    }

    func channelActive(context: ChannelHandlerContext) {
        outbox.append(.canDo(function: function), context: context)
        grab(context: context)
        outbox.flush(context: context)
        context.fireChannelActive()
    }

    private func grab(context: ChannelHandlerContext) {
        for _ in 0..<concurrency { outbox.append(.grabJob, context: context) }
        grabsOutstanding = concurrency
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .packet(let packet, _) = unwrapInboundIn(data) else { return }
        switch packet {
        case .jobAssign(let handle, _, let payload):
            onJob?(payload)
            outbox.append(.workComplete(handle: handle, payload: payload), context: context)
            outbox.append(.grabJob, context: context)
        case .noJob:
            grabsOutstanding -= 1
            if grabsOutstanding == 0 {
                outbox.append(.preSleep, context: context)
                sleeping = true
            }
        case .noop:
            if sleeping {
                sleeping = false
                grab(context: context)
            }
        case .error(let code, let text):
            errors += 1
            firstError = firstError ?? "worker got ERROR \(String(buffer: code)): \(String(buffer: text))"
        default:
            break
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        outbox.flush(context: context)
    }

    func channelInactive(context: ChannelHandlerContext) {
        // The bench closes its connections only after it has collected what they saw.
        errors += 1
        firstError = firstError ?? "the server closed a worker connection"
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        errors += 1
        firstError = firstError ?? "worker connection: \(error)"
        context.close(promise: nil)
    }
}

final class RawBenchClientHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = GearmanFrame

    private struct Submitted {
        var slot: Int
        var payload: Int
        var started: UInt64
    }

    private let function: ByteBuffer
    /// Two per slot: slot s alternates between payloads 2s and 2s+1.
    private let payloads: [ByteBuffer]
    private let window: LoadWindow
    private let outbox = RawBenchOutbox()
    private var sequence: [Int]
    /// SUBMIT_JOBs not yet answered, oldest first (the server answers them in order).
    private var awaitingCreated = CircularBuffer<Submitted>()
    private var running: [ByteBuffer: Submitted] = [:]
    private var tally = LoadTally()

    init(function: String, payloads: [ByteBuffer], window: LoadWindow) {
        self.function = ByteBuffer(string: function)
        self.payloads = payloads
        self.window = window
        self.sequence = Array(repeating: 0, count: payloads.count / 2)
    }

    func channelActive(context: ChannelHandlerContext) {
        for slot in sequence.indices { submit(slot: slot, context: context) }
        outbox.flush(context: context)
        context.fireChannelActive()
    }

    private func submit(slot: Int, context: ChannelHandlerContext) {
        let payload = slot * 2 + (sequence[slot] & 1)
        sequence[slot] &+= 1
        awaitingCreated.append(Submitted(slot: slot, payload: payload, started: benchNow()))
        outbox.append(
            .submitJob(function: function, unique: ByteBuffer(), payload: payloads[payload], priority: .normal, background: false),
            context: context)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .packet(let packet, _) = unwrapInboundIn(data) else { return }
        switch packet {
        case .jobCreated(let handle):
            guard let submitted = awaitingCreated.popFirst() else { return fail("JOB_CREATED for no submission") }
            running[handle] = submitted
        case .workComplete(let handle, let result):
            guard let submitted = running.removeValue(forKey: handle) else {
                return fail("WORK_COMPLETE for an unknown handle \(String(buffer: handle))")
            }
            let finished = benchNow()
            tally.completed += 1
            if !BenchPayloads.same(result, payloads[submitted.payload]) { tally.mismatches += 1 }
            if finished >= window.start && finished <= window.end {
                tally.latencies.record(nanoseconds: finished - submitted.started)
                tally.jobs += 1
                tally.lastCompletion = finished
            }
            if finished < window.end { submit(slot: submitted.slot, context: context) }
        case .workFail(let handle), .workException(let handle, _):
            running.removeValue(forKey: handle)
            fail("the job failed (WORK_FAIL or WORK_EXCEPTION)")
        case .error(let code, let text):
            // An ERROR answers the oldest submission: that slot stops.
            _ = awaitingCreated.popFirst()
            fail("ERROR \(String(buffer: code)): \(String(buffer: text))")
        default:
            break
        }
    }

    private func fail(_ message: String) {
        tally.errors += 1
        tally.firstError = tally.firstError ?? message
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        outbox.flush(context: context)
    }

    func channelInactive(context: ChannelHandlerContext) {
        // The bench closes its connections only after it has collected what they saw.
        let lost = awaitingCreated.count + running.count
        awaitingCreated.removeAll()
        running.removeAll()
        fail("the server closed a client connection with \(lost) job(s) outstanding")
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        fail("client connection: \(error)")
        context.close(promise: nil)
    }

    /// The tally so far, with the jobs submitted before `overdueBefore` and still unanswered
    /// counted as errors.
    func finish(overdueBefore: UInt64) -> LoadTally {
        var result = tally
        let overdue = awaitingCreated.filter { $0.started < overdueBefore }.count
            + running.values.filter { $0.started < overdueBefore }.count
        if overdue > 0 {
            result.errors += overdue
            result.firstError = result.firstError ?? "\(overdue) job(s) got no result within --job-timeout"
        }
        return result
    }
}

extension BenchCommand {
    /// `--mode foreground --driver raw`: the foreground measurement with `BenchRawDriver`.
    func runRawForeground(
        report: BenchReport, options: GearmanConnectionOptions, function: String, payloads: BenchPayloads,
        jobTimeout: Duration
    ) async -> BenchOutcome {
        var outcome = BenchOutcome(report: report)
        var connections = BenchRawDriver.Connections()
        do {
            let tlsContext = try BenchRawDriver.tlsContext(options)
            try await BenchRawDriver.startWorkers(
                count: workers, concurrency: workerConcurrency, function: function, options: options,
                tlsContext: tlsContext, into: &connections)
            await waitForWorkers(workers, options: options, function: function)
            let (clientTally, samples, window) = try await measureRawLoad(
                function: function, payloads: payloads, seconds: duration, jobTimeout: jobTimeout, options: options,
                tlsContext: tlsContext)
            // The workers' errors too.
            var tally = clientTally
            tally.merge(await BenchRawDriver.collect(connections, jobTimeout: jobTimeout))
            Self.addLoadResults(to: &outcome.report, tally: tally, seconds: window.seconds, labels: ("jobs", "jobs/s"))
            Self.addProcessStats(
                to: &outcome.report, prefix: "", samples: samples, seconds: window.seconds, jobs: tally.jobs,
                serverPID: serverPid)
            if serverPid != nil { Self.addPeakRSS(to: &outcome.report, samples: samples) }
            outcome.errors += tally.errors
            outcome.mismatches += tally.mismatches
            outcome.firstError = tally.firstError
        } catch {
            outcome.fail("cannot reach \(options.servers[0]): \(error)")
        }
        await connections.close()
        return outcome
    }

    /// One foreground load window with raw clients against workers already registered: `--warmup`,
    /// then `seconds` measured; the clients are closed afterwards.
    func measureRawLoad(
        function: String, payloads: BenchPayloads, seconds: Double, jobTimeout: Duration,
        options: GearmanConnectionOptions, tlsContext: TLSContext?
    ) async throws -> (LoadTally, WindowSamples, LoadWindow) {
        var connections = BenchRawDriver.Connections()
        let begin = benchNow()
        let window = LoadWindow(
            start: begin + Self.nanoseconds(warmup), end: begin + Self.nanoseconds(warmup) + Self.nanoseconds(seconds))
        async let sampled = WindowSamples.take(serverPID: serverPid, window: window)
        do {
            try await BenchRawDriver.startClients(
                count: clients, inFlight: inFlight, function: function, payloads: payloads, window: window,
                options: options, tlsContext: tlsContext, into: &connections)
        } catch {
            await connections.close()
            throw error
        }
        let samples = await sampled
        let tally = await BenchRawDriver.collect(connections, jobTimeout: jobTimeout)
        await connections.close()
        return (tally, samples, window)
    }
}

/// Background mode with `--jobs` and `--driver raw`: keeps `inFlight` SUBMIT_JOB_BGs outstanding,
/// job i carrying payload i (and unique "i" with `uniqueKeys`), until the tickets run out; each
/// JOB_CREATED counts as one enqueued job; `isDone` once nothing is left in flight.
final class RawBenchBackgroundClientHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = GearmanFrame

    private let function: ByteBuffer
    private let payloads: BenchPayloads
    private let tickets: JobTickets
    private let uniqueKeys: Bool
    private let inFlight: Int
    private let outbox = RawBenchOutbox()
    /// Start times of the SUBMIT_JOB_BGs not yet answered, oldest first.
    private var outstanding = CircularBuffer<UInt64>()
    private var tally = LoadTally()

    init(function: String, payloads: BenchPayloads, tickets: JobTickets, uniqueKeys: Bool, inFlight: Int) {
        self.function = ByteBuffer(string: function)
        self.payloads = payloads
        self.tickets = tickets
        self.uniqueKeys = uniqueKeys
        self.inFlight = inFlight
    }

    /// Whether every ticket this connection took is answered (or the connection is gone).
    private(set) var isDone = false

    func channelActive(context: ChannelHandlerContext) {
        for _ in 0..<inFlight { submitNext(context: context) }
        outbox.flush(context: context)
        finishIfIdle()
        context.fireChannelActive()
    }

    private func submitNext(context: ChannelHandlerContext) {
        guard let index = tickets.take() else { return }
        outstanding.append(benchNow())
        outbox.append(
            .submitJob(
                function: function, unique: uniqueKeys ? ByteBuffer(string: String(index)) : ByteBuffer(),
                payload: payloads[index], priority: .normal, background: true),
            context: context)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .packet(let packet, _) = unwrapInboundIn(data) else { return }
        switch packet {
        case .jobCreated:
            guard let started = outstanding.popFirst() else { return fail("JOB_CREATED for no submission") }
            let now = benchNow()
            tally.completed += 1
            tally.jobs += 1
            tally.latencies.record(nanoseconds: now - started)
            tally.lastCompletion = now
            submitNext(context: context)
        case .error(let code, let text):
            _ = outstanding.popFirst()
            fail("ERROR \(String(buffer: code)): \(String(buffer: text))")
        default:
            break
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        outbox.flush(context: context)
        finishIfIdle()
    }

    func channelInactive(context: ChannelHandlerContext) {
        if !outstanding.isEmpty { fail("the connection closed with \(outstanding.count) submission(s) unanswered") }
        outstanding.removeAll()
        finishIfIdle()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        fail("client connection: \(error)")
        context.close(promise: nil)
    }

    private func finishIfIdle() {
        if outstanding.isEmpty { isDone = true }
    }

    private func fail(_ message: String) {
        tally.errors += 1
        tally.firstError = tally.firstError ?? message
    }

    var result: LoadTally { tally }
}

extension BenchRawDriver {
    /// Enqueues the `tickets` over `count` raw connections; returns what they saw once every
    /// submission is answered or `timeout` has passed.
    static func enqueue(
        count: Int, inFlight: Int, function: String, payloads: BenchPayloads, tickets: JobTickets, uniqueKeys: Bool,
        options: GearmanConnectionOptions, timeout: Duration
    ) async -> LoadTally {
        var handlers: [NIOLoopBound<RawBenchBackgroundClientHandler>] = []
        var channels: [any Channel] = []
        var total = LoadTally()
        do {
            let tlsContext = try tlsContext(options)
            for _ in 0..<count {
                let (channel, handler) = try await connect(options.servers[0], options: options, tlsContext: tlsContext) {
                    RawBenchBackgroundClientHandler(
                        function: function, payloads: payloads, tickets: tickets, uniqueKeys: uniqueKeys, inFlight: inFlight)
                }
                channels.append(channel)
                handlers.append(handler)
            }
            let deadline = benchNow() + UInt64(nanoseconds(timeout))
            for handler in handlers {
                while benchNow() < deadline,
                    try await handler.eventLoop.submit({ !handler.value.isDone }).get()
                {
                    try await Task.sleep(nanoseconds: 2_000_000)
                }
            }
        } catch {
            total.errors += 1
            total.firstError = "cannot reach \(options.servers[0]): \(error)"
        }
        for handler in handlers {
            if let tally = try? await handler.eventLoop.submit({ handler.value.result }).get() { total.merge(tally) }
        }
        for channel in channels { try? await channel.close() }
        return total
    }
}
