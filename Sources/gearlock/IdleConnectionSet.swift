import Gearman
import GearmanProtocol
import GearmanTLS
import NIOCore
import NIOPosix

/// `gearlock bench --mode idle`'s idle connections: opened a bounded number at a time (32 by
/// default, gearmand's listen backlog, so no connect waits for a SYN to be sent again), each set
/// up with an ``IdleConnectionHandler``, checked with ECHO_REQ, and closed together.
struct IdleConnectionSet: Sendable {
    /// A connection that could not be opened or set up.
    struct SetUpError: Error, CustomStringConvertible {
        var description: String
    }

    /// The connections that were set up (the sleeping workers among them first).
    let channels: [any Channel]
    let counters: IdleConnectionCounters
    /// Connections that could not be opened or did not answer their first ECHO_REQ.
    let failures: Int
    let firstFailure: String?
    /// Sleeping workers among `channels`.
    let sleepingWorkers: Int

    /// Opens `count` connections to `options.servers[0]`; the first `sleeping` of them register
    /// `function` and sleep. At most `concurrency` connects are in progress at a time. After the
    /// first failure no more are started (a server out of file descriptors leaves each connect
    /// waiting for its timeout): the ones not tried count as failures too.
    static func open(
        count: Int, sleeping: Int, function: String, options: GearmanConnectionOptions, concurrency: Int = 32
    ) async -> IdleConnectionSet {
        let counters = IdleConnectionCounters()
        let tlsContext: TLSContext?
        do {
            tlsContext = try options.tls.map { try TLSContext(configuration: $0) }
        } catch {
            return IdleConnectionSet(
                channels: [], counters: counters, failures: count, firstFailure: "TLS configuration: \(error)",
                sleepingWorkers: 0)
        }
        let connect = ConnectRecipe(options: options, tlsContext: tlsContext, function: function, counters: counters)
        var channels: [(index: Int, channel: any Channel)] = []
        var failures = 0
        var firstFailure: String?
        await withTaskGroup(of: (Int, Result<any Channel, SetUpError>).self) { group in
            var next = 0
            func start(_ index: Int) {
                group.addTask { (index, await connect.open(sleeping: index < sleeping)) }
            }
            while next < min(concurrency, count) {
                start(next)
                next += 1
            }
            for await (index, result) in group {
                switch result {
                case .success(let channel): channels.append((index, channel))
                case .failure(let error):
                    failures += 1
                    firstFailure = firstFailure ?? error.description
                }
                if next < count && firstFailure == nil {
                    start(next)
                    next += 1
                }
            }
            failures += count - next
        }
        channels.sort { $0.index < $1.index }
        return IdleConnectionSet(
            channels: channels.map(\.channel), counters: counters, failures: failures, firstFailure: firstFailure,
            sleepingWorkers: channels.count(where: { $0.index < sleeping }))
    }

    /// Sends ECHO_REQ on every connection and returns how many answered within `timeout`: the
    /// connections still open and served.
    func verify(timeout: Duration) async -> Int {
        let before = counters.echoCount
        let request = GearmanPacketEncoder.encode(.echoRequest(payload: ByteBuffer(string: "still open")), magic: .request)
        for channel in channels {
            channel.writeAndFlush(request, promise: nil)
        }
        let deadline = ContinuousClock.now + timeout
        while counters.echoCount - before < channels.count && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(10))
        }
        return min(counters.echoCount - before, channels.count)
    }

    /// Closes every connection and waits until they are closed.
    func close() async {
        counters.beginClosing()
        let closed = channels.map { $0.close() }
        for future in closed {
            try? await future.get()
        }
    }

    /// What every connect needs.
    private struct ConnectRecipe: Sendable {
        let options: GearmanConnectionOptions
        let tlsContext: TLSContext?
        let function: String
        let counters: IdleConnectionCounters

        /// One connection, set up and answering (its first ECHO_RES arrived), or why not.
        func open(sleeping: Bool) async -> Result<any Channel, SetUpError> {
            let address = options.servers[0]
            let ready = MultiThreadedEventLoopGroup.singleton.next().makePromise(of: Void.self)
            let counters = self.counters
            let function = sleeping ? self.function : nil
            let channel: any Channel
            do {
                (channel, _) = try await BenchRawDriver.connect(address, options: options, tlsContext: tlsContext) {
                    IdleConnectionHandler(function: function, counters: counters, ready: ready)
                }
            } catch {
                ready.fail(error)
                return .failure(SetUpError(description: "cannot connect to \(address): \(error)"))
            }
            // The TLS handshake and the first ECHO round trip get the connect timeout plus 10 s.
            let timeout = BenchRawDriver.timeAmount(options.connectTimeout) + .seconds(10)
            let timer = channel.eventLoop.scheduleTask(in: timeout) {
                ready.fail(SetUpError(description: "no answer to ECHO_REQ within \(timeout.nanoseconds / 1_000_000) ms"))
            }
            do {
                try await ready.futureResult.get()
                timer.cancel()
                return .success(channel)
            } catch {
                timer.cancel()
                channel.close(promise: nil)
                return .failure(error as? SetUpError ?? SetUpError(description: "\(error)"))
            }
        }
    }
}
