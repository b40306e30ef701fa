import CoreMetrics
import GearmanTLS
import NIOCore

/// The server's metric handles and what it records in them. Handles are created once per label
/// set and cached, so a job costs no metric allocation; gauges are set when their value changes,
/// so a scrape only reads the metrics backend and never waits for the server. Confined to the
/// core's event loop.
///
/// Function names are chosen by clients (anyone, without an ACL), so the distinct values of the
/// `function` label are capped at `maxFunctionLabels`; later functions count under `function="other"`
/// (counters and histograms only: a queue-depth or worker gauge of "other" could not be kept exact).
final class ServerMetrics {
    /// The `function` label of functions past the cap.
    static let otherFunction = "other"
    static let defaultMaxFunctionLabels = 1000

    /// Handles of one (function, tenant) label set.
    struct FunctionHandles {
        let tenant: String
        let submitted: Counter
        let completed: Counter
        let failed: Counter
        let requeued: Counter
        let queueWait: CoreMetrics.Timer
        let runTime: CoreMetrics.Timer
        /// Per priority (high, normal, low); nil for "other".
        let queueDepth: [Gauge]?
        let workers: Gauge?
    }

    private let factory: any MetricsFactory
    let maxFunctionLabels: Int
    private var functions: [ByteBuffer: FunctionHandles] = [:]
    /// "other" handles per tenant.
    private var others: [String: FunctionHandles] = [:]
    private var tenantCounters: [String: (authenticationFailures: Counter, accessDenials: Counter)] = [:]
    private var handshakeFailures: [TLSHandshakeFailureReason: Counter] = [:]
    private let listeners: [(label: String, isTLS: Bool)]
    /// Gauges and counts per listener and connection state.
    private var connectionGauges: [[Gauge?]]
    private var connectionCounts: [[Int]]
    private var connectionStates: [ConnectionID: (listener: Int, state: ConnectionMetricState)] = [:]
    private let hasAccessControl: Bool
    private let commitDuration: CoreMetrics.Timer
    private let commitBatchSize: Recorder
    private let commitFailures: Counter

    /// - Parameters:
    ///   - listeners: the label (address, `tls://` for TLS) of each listener, in configuration order.
    ///   - hasAccessControl: whether connections authenticate (their state starts `unauthenticated`
    ///     rather than `open`).
    init(
        factory: any MetricsFactory, listeners: [(label: String, isTLS: Bool)], hasAccessControl: Bool,
        maxFunctionLabels: Int = ServerMetrics.defaultMaxFunctionLabels
    ) {
        self.factory = factory
        self.maxFunctionLabels = maxFunctionLabels
        self.listeners = listeners
        self.hasAccessControl = hasAccessControl
        // Only the states a connection of each listener can be in.
        connectionGauges = listeners.map { listener in
            ConnectionMetricState.allCases.map { state -> Gauge? in
                switch state {
                case .handshaking: guard listener.isTLS else { return nil }
                case .unauthenticated, .authenticated: guard hasAccessControl else { return nil }
                case .open: guard !hasAccessControl else { return nil }
                }
                let gauge = Gauge(
                    label: JobServerMetricName.connections, dimensions: [("listener", listener.label), ("state", state.rawValue)],
                    factory: factory)
                gauge.record(0)
                return gauge
            }
        }
        connectionCounts = listeners.map { _ in ConnectionMetricState.allCases.map { _ in 0 } }
        commitDuration = CoreMetrics.Timer(label: JobServerMetricName.commitDuration, dimensions: [], factory: factory)
        commitBatchSize = Recorder(label: JobServerMetricName.commitBatchSize, dimensions: [], aggregate: true, factory: factory)
        commitFailures = Counter(label: JobServerMetricName.commitFailures, dimensions: [], factory: factory)
    }

    // MARK: Jobs

    /// The handles of a function; `tenant` is asked only the first time the function is seen.
    func handles(for function: ByteBuffer, tenant: () -> String?) -> FunctionHandles {
        if let handles = functions[function] { return handles }
        let tenant = tenant() ?? ""
        if functions.count >= maxFunctionLabels {
            if let handles = others[tenant] { return handles }
            let handles = makeHandles(function: Self.otherFunction, tenant: tenant, withGauges: false)
            others[tenant] = handles
            return handles
        }
        let handles = makeHandles(function: String(buffer: function), tenant: tenant, withGauges: true)
        // A key of its own, so the cache never keeps a read buffer alive.
        functions[ByteBuffer(buffer: function)] = handles
        return handles
    }

    /// Distinct function label values in use (not counting "other").
    var functionLabelCount: Int { functions.count }

    private func makeHandles(function: String, tenant: String, withGauges: Bool) -> FunctionHandles {
        let dimensions = [("function", function), ("tenant", tenant)]
        let functionOnly = [("function", function)]
        return FunctionHandles(
            tenant: tenant,
            submitted: Counter(label: JobServerMetricName.jobsSubmitted, dimensions: dimensions, factory: factory),
            completed: Counter(label: JobServerMetricName.jobsCompleted, dimensions: dimensions, factory: factory),
            failed: Counter(label: JobServerMetricName.jobsFailed, dimensions: dimensions, factory: factory),
            requeued: Counter(label: JobServerMetricName.jobsRequeued, dimensions: dimensions, factory: factory),
            queueWait: CoreMetrics.Timer(label: JobServerMetricName.queueWait, dimensions: dimensions, factory: factory),
            runTime: CoreMetrics.Timer(label: JobServerMetricName.runTime, dimensions: dimensions, factory: factory),
            queueDepth: withGauges
                ? ["high", "normal", "low"].map {
                    Gauge(label: JobServerMetricName.queueDepth, dimensions: functionOnly + [("priority", $0)], factory: factory)
                } : nil,
            workers: withGauges ? Gauge(label: JobServerMetricName.workers, dimensions: functionOnly, factory: factory) : nil)
    }

    // MARK: Connections

    func connectionOpened(_ id: ConnectionID, listener: Int) {
        let state: ConnectionMetricState = listeners[listener].isTLS ? .handshaking : afterHandshake
        connectionStates[id] = (listener, state)
        adjustConnections(listener: listener, state: state, by: 1)
    }

    func connectionHandshakeCompleted(_ id: ConnectionID) {
        move(id, to: afterHandshake, from: .handshaking)
    }

    func connectionAuthenticated(_ id: ConnectionID) {
        move(id, to: .authenticated, from: nil)
    }

    func connectionClosed(_ id: ConnectionID) {
        guard let (listener, state) = connectionStates.removeValue(forKey: id) else { return }
        adjustConnections(listener: listener, state: state, by: -1)
    }

    private var afterHandshake: ConnectionMetricState { hasAccessControl ? .unauthenticated : .open }

    private func move(_ id: ConnectionID, to newState: ConnectionMetricState, from expected: ConnectionMetricState?) {
        guard let (listener, state) = connectionStates[id], state != newState else { return }
        if let expected, state != expected { return }
        connectionStates[id] = (listener, newState)
        adjustConnections(listener: listener, state: state, by: -1)
        adjustConnections(listener: listener, state: newState, by: 1)
    }

    private func adjustConnections(listener: Int, state: ConnectionMetricState, by delta: Int) {
        let index = ConnectionMetricState.allCases.firstIndex(of: state)!
        connectionCounts[listener][index] += delta
        connectionGauges[listener][index]?.record(connectionCounts[listener][index])
    }

    // MARK: Security

    func tlsHandshakeFailed(_ reason: TLSHandshakeFailureReason) {
        if let counter = handshakeFailures[reason] {
            counter.increment()
            return
        }
        let counter = Counter(
            label: JobServerMetricName.tlsHandshakeFailures, dimensions: [("reason", reason.rawValue)], factory: factory)
        handshakeFailures[reason] = counter
        counter.increment()
    }

    func authenticationFailed(tenant: String?) {
        tenantHandles(tenant ?? "").authenticationFailures.increment()
    }

    func accessDenied(tenant: String?) {
        tenantHandles(tenant ?? "").accessDenials.increment()
    }

    /// Tenants come from the ACL file, so their number is bounded by it.
    private func tenantHandles(_ tenant: String) -> (authenticationFailures: Counter, accessDenials: Counter) {
        if let handles = tenantCounters[tenant] { return handles }
        let dimensions = [("tenant", tenant)]
        let handles = (
            authenticationFailures: Counter(label: JobServerMetricName.authenticationFailures, dimensions: dimensions, factory: factory),
            accessDenials: Counter(label: JobServerMetricName.accessDenials, dimensions: dimensions, factory: factory)
        )
        tenantCounters[tenant] = handles
        return handles
    }

    // MARK: Queue store

    func commitFinished(operations: Int, nanoseconds: UInt64, succeeded: Bool) {
        commitBatchSize.record(operations)
        commitDuration.recordNanoseconds(Int64(clamping: nanoseconds))
        if !succeeded { commitFailures.increment() }
    }
}

/// The `state` label of `gearlock_connections`.
enum ConnectionMetricState: String, CaseIterable {
    /// A TLS listener's connection before its handshake completed.
    case handshaking
    /// With an ACL: connected, not authenticated (anonymous).
    case unauthenticated
    /// With an ACL: authenticated as a principal.
    case authenticated
    /// Without an ACL: connected (nobody authenticates).
    case open
}

/// The `reason` label of `gearlock_tls_handshake_failures_total`: a small fixed set.
enum TLSHandshakeFailureReason: String, CaseIterable {
    /// No handshake within the listener's deadline.
    case timeout
    /// The peer spoke plaintext (Gearman or HTTP) to a TLS listener.
    case plaintext
    /// The peer's certificate was missing, unverifiable or revoked, or it refused ours.
    case certificate
    /// No common protocol version or cipher, or another TLS protocol error.
    case `protocol`
    /// The peer closed the connection during the handshake.
    case closed

    /// The reason of a failed handshake, or nil when `error` is no handshake failure.
    init?(_ error: TLSError) {
        switch error.code {
        case .handshakeTimeout:
            self = .timeout
            return
        case .handshakeFailed:
            break
        default:
            return nil
        }
        let text = error.openSSLErrors.joined(separator: " ").lowercased()
        if text.isEmpty {
            self = .closed
        } else if text.contains("wrong version number") || text.contains("http request")
            || text.contains("packet length too long") || text.contains("record layer failure")
        {
            self = .plaintext
        } else if text.contains("certificate") || text.contains("unknown ca") {
            self = .certificate
        } else {
            self = .protocol
        }
    }
}
