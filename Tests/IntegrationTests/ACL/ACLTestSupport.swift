import Foundation
import GearmanACL
import GearmanProtocol
import GearmanServer
import GearmanTLS
import Logging
import NIOCore
import NIOPosix
import Synchronization
import Testing

/// Two tenants sharing one server, as SECURITY.md's example: `acme` and `globex`, each with a
/// worker (certificate `alice` / `bob` from `TestPKI`, or its secret), a web client with `admin:
/// read`, and a global `root` with `admin: write`.
enum ACLFixture {
    static let principals = ["acme-worker", "acme-web", "acme-ops", "globex-worker", "globex-web", "root"]

    /// Each principal's secret: its name plus a fixed suffix (test-only).
    static func secret(_ principal: String) -> String { principal + "-s3cret-0f9e8d7c" }

    static var allSecrets: [String] { principals.map(secret) }

    static func hash(_ principal: String) -> String { SecretHash(hashing: secret(principal)).description }

    /// The ACL; `acmeCanDo` and `acmeMaxQueued` let a test vary it for a reload.
    static func yaml(acmeCanDo: [String] = ["acme.*"], acmeMaxQueued: Int = 5) -> String {
        let canDo = acmeCanDo.map { "\"\($0)\"" }.joined(separator: ", ")
        return """
            tenants:
              acme:
                functions: ["acme.*"]
                max_queued_jobs: \(acmeMaxQueued)
              globex:
                functions: ["globex.*"]
            principals:
              acme-worker:
                tenant: acme
                certificate: alice
                secret: "\(hash("acme-worker"))"
                can_do: [\(canDo)]
                submit: ["acme.*"]
              acme-web:
                tenant: acme
                secret: "\(hash("acme-web"))"
                submit: ["acme.*"]
                admin: read
              acme-ops:
                tenant: acme
                secret: "\(hash("acme-ops"))"
                admin: write
              globex-worker:
                tenant: globex
                certificate: bob
                secret: "\(hash("globex-worker"))"
                can_do: ["globex.*"]
                submit: ["globex.*"]
              globex-web:
                tenant: globex
                secret: "\(hash("globex-web"))"
                submit: ["globex.*"]
                admin: read
              root:
                secret: "\(hash("root"))"
                admin: write
            """
    }

    static func policy(acmeCanDo: [String] = ["acme.*"], acmeMaxQueued: Int = 5) throws -> AccessPolicy {
        try AccessPolicy(yaml: yaml(acmeCanDo: acmeCanDo, acmeMaxQueued: acmeMaxQueued))
    }
}

/// Every log line a server wrote, rendered with its metadata, so tests can look for audit events
/// and make sure no secret was ever logged.
final class LogCapture: Sendable {
    private let lines = Mutex<[String]>([])

    func append(_ line: String) {
        lines.withLock { $0.append(line) }
    }

    var all: [String] { lines.withLock { $0 } }

    /// The lines of audit events of `kind` (their `audit=` metadata).
    func audits(_ kind: String) -> [String] {
        all.filter { $0.contains("audit=\(kind)") }
    }

    func handler(label: String) -> CapturingLogHandler {
        CapturingLogHandler(capture: self)
    }
}

struct CapturingLogHandler: LogHandler {
    let capture: LogCapture
    var logLevel: Logger.Level = .trace
    var metadata: Logger.Metadata = [:]

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var all = metadata
        all.merge(event.metadata ?? [:]) { _, new in new }
        let rendered = all.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        capture.append("\(event.level) \(event.message) \(rendered)")
    }
}

/// An in-process server with the two-tenant ACL on a plaintext loopback port (and a TLS one when
/// `tls` is given), its log captured at trace level.
struct ACLTestServer: Sendable {
    let port: Int
    let tlsPort: Int?
    let server: JobServer
    let logs: LogCapture

    func connect(_ label: String = "client") async throws -> RawClient {
        try await RawClient.connect(host: "127.0.0.1", port: port, label: label)
    }

    /// A connection authenticated as `principal` with OPTION_REQ `auth:<principal>:<secret>`.
    func connect(as principal: String) async throws -> RawClient {
        let client = try await connect(principal)
        try await client.authenticate(principal, secret: ACLFixture.secret(principal))
        return client
    }

    /// One admin command on a connection authenticated (admin `auth` line) as `principal`.
    func admin(_ command: String, as principal: String = "root") async throws -> String {
        let client = try await connect("admin/\(principal)")
        defer { Task { await client.close() } }
        let auth = try await client.adminCommand("auth \(principal) \(ACLFixture.secret(principal))")
        try #require(auth == "OK\r\n", "admin auth as \(principal): \(auth)")
        return try await client.adminCommand(command)
    }

    /// Polls `command` (as root) until `predicate` holds; returns the last reply.
    @discardableResult
    func adminEventually(_ command: String, timeout: Duration = .seconds(20), _ predicate: (String) -> Bool) async throws
        -> String
    {
        let deadline = ContinuousClock.now + timeout
        var reply = try await admin(command)
        while !predicate(reply) && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(30))
            reply = try await admin(command)
        }
        return reply
    }
}

func withACLServer<T: Sendable>(
    policy: AccessPolicy? = nil, tls: TLSConfiguration? = nil,
    configure: (inout AccessControl) -> Void = { _ in },
    _ body: (ACLTestServer) async throws -> T
) async throws -> T {
    var configuration = gearlockConfiguration(ServerOptions())
    if let tls {
        configuration.listeners.append(.init(host: "127.0.0.1", port: 0, tls: tls))
    }
    var access = AccessControl(policy: try policy ?? ACLFixture.policy())
    // Tests that are not about the authentication deadline must not meet it at a loaded CI start
    // (10 s by default); the deadline's own test sets a short one.
    access.authenticationTimeout = .seconds(300)
    configure(&access)
    configuration.accessControl = access
    let logs = LogCapture()
    var logger = Logger(label: "gearlock.acl-test") { logs.handler(label: $0) }
    logger.logLevel = .trace
    let eventLoopGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    defer { eventLoopGroup.shutdownGracefully { _ in } }
    let server = JobServer(configuration: configuration, eventLoopGroup: eventLoopGroup, logger: logger)
    return try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await server.run() }
        do {
            let addresses = try await server.listeningAddresses()
            let testServer = ACLTestServer(
                port: try #require(addresses.first?.port), tlsPort: tls == nil ? nil : addresses.last?.port,
                server: server, logs: logs)
            let result = try await body(testServer)
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

extension RawClient {
    /// OPTION_REQ `auth:<principal>:<secret>`; requires OPTION_RES `auth:<principal>`.
    func authenticate(_ principal: String, secret: String, sourceLocation: SourceLocation = #_sourceLocation)
        async throws
    {
        try await send(RawPacket.request(.optionRequest, "auth:\(principal):\(secret)"))
        let reply = try await receivePacket()
        try #require(reply == .response(.optionResponse, "auth:\(principal)"), "\(label)", sourceLocation: sourceLocation)
    }

    /// Waits `window` and requires that nothing arrived (a silently denied CAN_DO).
    func expectSilence(for window: Duration = .milliseconds(300), sourceLocation: SourceLocation = #_sourceLocation)
        async throws
    {
        let frame = try await receiveIfAny(within: window)
        #expect(frame == nil, "expected no reply, got \(String(describing: frame))", sourceLocation: sourceLocation)
    }
}

/// The first NUL-separated field of a packet, as text.
func field(_ packet: RawPacket, _ index: Int) -> String {
    let fields = String(buffer: packet.payload).split(separator: "\0", omittingEmptySubsequences: false)
    return index < fields.count ? String(fields[index]) : ""
}
