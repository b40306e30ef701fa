import GearmanProtocol
import NIOCore
import Synchronization

/// What all of `gearlock bench --mode idle`'s idle connections saw, counted across event loops.
final class IdleConnectionCounters: Sendable {
    private let noops = Atomic<Int>(0)
    private let echoes = Atomic<Int>(0)
    private let unexpected = Atomic<Int>(0)
    private let lost = Atomic<Int>(0)
    private let closing = Atomic<Bool>(false)
    private let firstUnexpected = Mutex<String?>(nil)

    /// NOOPs received by the sleeping workers: with no job for their function, every one is a
    /// needless wake-up.
    var noopCount: Int { noops.load(ordering: .relaxed) }
    /// ECHO_RES received (one per connection when it is set up, one per ``IdleConnectionSet/verify``).
    var echoCount: Int { echoes.load(ordering: .relaxed) }
    /// Packets no idle connection should get (a job, an ERROR, anything but NOOP, NO_JOB, ECHO_RES).
    var unexpectedCount: Int { unexpected.load(ordering: .relaxed) }
    /// Connections that closed after their set-up and before the bench closed them.
    var lostCount: Int { lost.load(ordering: .relaxed) }
    /// The first unexpected packet or error, described.
    var firstUnexpectedPacket: String? { firstUnexpected.withLock { $0 } }

    func countNoop() { noops.add(1, ordering: .relaxed) }
    func countEcho() { echoes.add(1, ordering: .relaxed) }

    func countUnexpected(_ description: String) {
        unexpected.add(1, ordering: .relaxed)
        firstUnexpected.withLock { first in
            if first == nil { first = description }
        }
    }

    func countClosed() {
        if !closing.load(ordering: .relaxed) { lost.add(1, ordering: .relaxed) }
    }

    /// From now on a closing connection is the bench's doing, not a loss.
    func beginClosing() { closing.store(true, ordering: .relaxed) }
}

/// One idle connection of `gearlock bench --mode idle`: a plain connection that only answers
/// ECHO_REQ, or a sleeping worker (CAN_DO, PRE_SLEEP) that behaves as a real worker would when
/// woken — NOOP → GRAB_JOB, NO_JOB → PRE_SLEEP — so a server that keeps waking its sleeping workers
/// shows up as a count of NOOPs. A job it is given (there should be none) fails at once.
///
/// It sends ECHO_REQ right after its set-up; the first ECHO_RES completes `ready`.
final class IdleConnectionHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = GearmanFrame
    typealias OutboundOut = ByteBuffer

    private let function: ByteBuffer?
    private let counters: IdleConnectionCounters
    private let ready: EventLoopPromise<Void>
    private var isReady = false

    /// - Parameter function: register for it and sleep; nil for a connection that only waits.
    init(function: String?, counters: IdleConnectionCounters, ready: EventLoopPromise<Void>) {
        self.function = function.map { ByteBuffer(string: $0) }
        self.counters = counters
        self.ready = ready
    }

    func channelActive(context: ChannelHandlerContext) {
        if let function {
            send(.canDo(function: function), context: context)
            send(.preSleep, context: context)
        }
        send(.echoRequest(payload: ByteBuffer(string: "idle")), context: context)
        context.flush()
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .packet(.noop, _):
            counters.countNoop()
            if function != nil {
                send(.grabJob, context: context)
                context.flush()
            }
        case .packet(.noJob, _):
            send(.preSleep, context: context)
            context.flush()
        case .packet(.echoResponse, _):
            counters.countEcho()
            if !isReady {
                isReady = true
                ready.succeed()
            }
        case .packet(.jobAssign(let handle, _, _), _), .packet(.jobAssignUnique(let handle, _, _, _), _),
            .packet(.jobAssignAll(let handle, _, _, _, _), _):
            counters.countUnexpected("a job (\(String(buffer: handle))) for an idle worker")
            send(.workFail(handle: handle), context: context)
            send(.preSleep, context: context)
            context.flush()
        case .packet(let packet, _):
            counters.countUnexpected("\(packet.type.protocolName) on an idle connection")
        case .text(let line):
            counters.countUnexpected("the text line \(String(reflecting: String(buffer: line))) on an idle connection")
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if isReady {
            counters.countClosed()
        } else {
            isReady = true
            ready.fail(IdleConnectionSet.SetUpError(description: "the server closed the connection during set-up"))
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if !isReady {
            isReady = true
            ready.fail(IdleConnectionSet.SetUpError(description: "\(error)"))
        } else {
            counters.countUnexpected("connection error: \(error)")
        }
        context.close(promise: nil)
    }

    private func send(_ packet: GearmanPacket, context: ChannelHandlerContext) {
        context.write(
            wrapOutboundOut(GearmanPacketEncoder.encode(packet, magic: .request, allocator: context.channel.allocator)),
            promise: nil)
    }
}
