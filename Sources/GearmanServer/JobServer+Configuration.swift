public import CoreMetrics
public import GearmanTLS
public import NIOCore

extension JobServer {
    /// Everything a job server is started with. Every property has a documented default.
    public struct Configuration: Sendable {
        /// A TCP address the server accepts connections on, plaintext or TLS.
        public struct Listener: Sendable, Hashable, CustomStringConvertible {
            public var host: String
            public var port: Int
            /// TLS for every connection on this listener; nil for plaintext.
            public var tls: TLSConfiguration?

            public init(host: String, port: Int, tls: TLSConfiguration? = nil) {
                self.host = host
                self.port = port
                self.tls = tls
            }

            public var description: String {
                let address = host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
                return tls == nil ? address : "tls://" + address
            }
        }

        /// Where to listen. Default: `127.0.0.1:4730`, Gearman's port on loopback only.
        public var listeners: [Listener] = [Listener(host: "127.0.0.1", port: 4730)]
        /// How often a job whose worker was lost (or timed out) is requeued before its clients get
        /// WORK_FAIL. Default 0: unlimited, as gearmand 1.1.20.
        public var jobRetries: Int = 0
        /// How many sleeping workers one new job wakes. Default 0: all of them.
        public var workerWakeup: Int = 0
        /// Forward WORK_EXCEPTION to every client, not only to those that sent OPTION_REQ `exceptions`.
        /// Default false.
        public var exceptions: Bool = false
        /// The prefix of job handles, at most `maxJobHandlePrefixLength` (20) bytes. Default: `H:` plus the host name (shortened).
        public var jobHandlePrefix: String?
        /// The largest packet payload accepted. Default: the protocol's maximum, 4 GiB − 1.
        public var maxPacketSize: UInt32 = .max
        /// How long a graceful stop waits for running jobs to finish. Default: 30 seconds.
        public var shutdownTimeout: TimeAmount = .seconds(30)
        /// Open connections accepted in all (all listeners); one more gets ERROR QUOTA_EXCEEDED and
        /// is closed. Default nil: no limit but the process's file-descriptor limit.
        public var maxConnections: Int?
        /// Open connections accepted from one IP address. Default nil: no limit.
        public var maxConnectionsPerAddress: Int?
        /// Bytes of payload (and unique and reducer) live jobs may hold in all; a submission that
        /// would go over gets ERROR QUEUE_ERROR and nothing is queued. Default nil: no limit.
        public var maxQueueBytes: UInt64?
        /// The slow-loris guard: a packet or admin line that has begun to arrive must be complete
        /// within this time, extended by one second per `incompletePacketMinimumRate` bytes received
        /// meanwhile; otherwise the connection gets ERROR `TIMEOUT` and is closed. Idle connections
        /// (nothing buffered) are never timed. Default 30 seconds; nil turns the guard off.
        public var incompletePacketTimeout: TimeAmount? = .seconds(30)
        /// Bytes per second that extend `incompletePacketTimeout` by one second. Default 500.
        public var incompletePacketMinimumRate: Int = 500
        /// The ACL and authentication settings. Default nil: no ACL, every connection may do
        /// everything (as gearmand).
        public var accessControl: AccessControl?
        /// Where the server's metrics go (jobs, queues, workers, connections, security events,
        /// queue commits; see the README). The server creates its handles with this factory rather
        /// than the global `MetricsSystem`. Default nil: no metrics, and nothing is measured.
        public var metricsFactory: (any MetricsFactory)?
        /// Where connections live. False (the default): every connection on the event loop that
        /// holds the job state, so a packet reaches it with no hop between threads. True: the
        /// connections are spread over every loop of the server's event-loop group, which then
        /// do the reading, TLS, decoding and writing in parallel; each read cycle's packets hop
        /// to the job state's loop, and each cycle's replies hop back, once per connection.
        public var spreadsConnectionsOverGroup: Bool = false

        public init() {}

        /// The longest `jobHandlePrefix` accepted (handles must fit in 63 bytes).
        public static var maxJobHandlePrefixLength: Int { JobHandleGenerator.maxPrefixLength }
    }
}
