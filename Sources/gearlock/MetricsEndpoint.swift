import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import Prometheus
import ServiceLifecycle

/// `gearlock serve --metrics-listen`: the Prometheus text format on `GET /metrics` (and `200 ok` on
/// `GET /healthz`), over HTTP/1.1 on a listener and a thread of its own. A scrape only reads the
/// registry, whose metrics the job server updates as it goes, so it never waits for the server's
/// event loop nor makes the server wait.
struct MetricsEndpoint: Service {
    private let group: MultiThreadedEventLoopGroup
    private let channel: any Channel

    /// Binds the address (before the job server starts, so a taken port stops start-up at once)
    /// and logs where it listens, with the port the system chose for port 0.
    static func bind(
        _ address: MetricsListenAddress, registry: PrometheusCollectorRegistry, logger: Logger
    ) async throws(MetricsListenFailure) -> MetricsEndpoint {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let channel: any Channel
        do {
            channel = try await ServerBootstrap(group: group)
                .serverChannelOption(.backlog, value: 32)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        let pipeline = channel.pipeline.syncOperations
                        try pipeline.addHandler(IdleStateHandler(readTimeout: MetricsHTTPHandler.readTimeout))
                        try pipeline.configureHTTPServerPipeline(withErrorHandling: true)
                        try pipeline.addHandler(MetricsHTTPHandler(registry: registry))
                    }
                }
                .bind(host: address.host, port: address.port).get()
        } catch {
            try? await group.shutdownGracefully()
            throw MetricsListenFailure(address: address, error: error)
        }
        let bound = channel.localAddress.map { "\($0.ipAddress ?? address.host):\($0.port ?? address.port)" }
        logger.info("metrics listening", metadata: ["address": "\(bound ?? address.description)", "path": "/metrics"])
        return MetricsEndpoint(group: group, channel: channel)
    }

    /// Serves until graceful shutdown (or cancellation), then closes the listener.
    func run() async throws {
        let channel = self.channel
        await withTaskCancellationHandler {
            await withGracefulShutdownHandler {
                try? await channel.closeFuture.get()
            } onGracefulShutdown: {
                channel.close(promise: nil)
            }
        } onCancel: {
            channel.close(promise: nil)
        }
        try? await group.shutdownGracefully()
    }
}

/// The metrics address could not be bound: printed as the reason the server did not start.
struct MetricsListenFailure: Error, CustomStringConvertible {
    var address: MetricsListenAddress
    var error: any Error
    var description: String { "gearlock serve: cannot listen for metrics on \(address): \(error)" }
}

/// Answers one request per connection, then closes it: `GET`/`HEAD` of `/metrics` or `/healthz`;
/// another path is 404, another method 405. Malformed HTTP gets 400 from NIO's error handler.
final class MetricsHTTPHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    /// A connection that sends nothing for this long is closed.
    static let readTimeout: TimeAmount = .seconds(30)

    private let registry: PrometheusCollectorRegistry
    private var request: HTTPRequestHead?

    init(registry: PrometheusCollectorRegistry) {
        self.registry = registry
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            request = head
        case .body:
            break
        case .end:
            guard let head = request else { return }
            request = nil
            respond(to: head, context: context)
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent {
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    /// Malformed HTTP: NIO's error handler has answered 400; the connection ends here.
    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    private func respond(to head: HTTPRequestHead, context: ChannelHandlerContext) {
        let path = head.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        let status: HTTPResponseStatus
        var headers = HTTPHeaders()
        var body: ByteBuffer
        switch (head.method, path) {
        case (.GET, "/metrics"), (.HEAD, "/metrics"):
            status = .ok
            headers.add(name: "Content-Type", value: "text/plain; version=0.0.4; charset=utf-8")
            body = ByteBuffer(bytes: registry.emitToBuffer())
        case (.GET, "/healthz"), (.HEAD, "/healthz"):
            status = .ok
            headers.add(name: "Content-Type", value: "text/plain; charset=utf-8")
            body = ByteBuffer(string: "ok\n")
        case (.GET, _), (.HEAD, _):
            status = .notFound
            headers.add(name: "Content-Type", value: "text/plain; charset=utf-8")
            body = ByteBuffer(string: "not found; metrics are at /metrics\n")
        default:
            status = .methodNotAllowed
            headers.add(name: "Allow", value: "GET, HEAD")
            headers.add(name: "Content-Type", value: "text/plain; charset=utf-8")
            body = ByteBuffer(string: "method not allowed\n")
        }
        headers.add(name: "Content-Length", value: String(body.readableBytes))
        headers.add(name: "Connection", value: "close")
        if head.method == .HEAD { body.clear() }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))), promise: nil)
        if body.readableBytes > 0 {
            context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        }
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in
            channel.close(promise: nil)
        }
    }
}
