import Foundation
import GearmanServer
import Logging
import NIOCore
import NIOPosix
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The two servers every compatibility test runs against: ours, and the reference.
enum ServerKind: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case gearlock
    case gearmand

    var testDescription: String { rawValue }
}

/// Paths of the reference programs (Debian gearman-job-server and gearman-tools 1.1.20).
enum ReferenceTools {
    static let gearmand = "/usr/sbin/gearmand"
    static let gearman = "/usr/bin/gearman"
    static let gearadmin = "/usr/bin/gearadmin"
}

/// Server settings both kinds understand.
struct ServerOptions: Sendable {
    /// gearmand `-j N`, Gearlock `jobRetries`.
    var jobRetries = 0
    /// gearmand `-w N`, Gearlock `workerWakeup`.
    var workerWakeup = 0
    /// gearmand `--exceptions`, Gearlock `exceptions`.
    var exceptions = false
    /// gearmand `--job-handle-prefix`, Gearlock `jobHandlePrefix`.
    var jobHandlePrefix: String? = nil
    /// Gearlock only: `maxPacketSize`.
    var maxPacketSize: UInt32 = .max
}

/// A running server (in-process Gearlock or a gearmand child) on a loopback port.
struct TestServer: Sendable {
    let kind: ServerKind
    let host = "127.0.0.1"
    let port: Int
    /// The pid `getpid` must report: gearmand's, or this test process's for the in-process server.
    let pid: Int32
    /// Tool processes started against this server; whatever is still running at the end is killed.
    let children = ChildRegistry()

    func connect(_ label: String = "client") async throws -> RawClient {
        try await RawClient.connect(host: host, port: port, label: "\(kind)/\(label)")
    }

    /// One admin command on a fresh connection.
    func admin(_ command: String) async throws -> String {
        let client = try await connect("admin")
        do {
            let reply = try await client.adminCommand(command)
            await client.close()
            return reply
        } catch {
            await client.close()
            throw error
        }
    }

    /// Polls `command` until its reply satisfies `predicate`; returns the last reply.
    @discardableResult
    func adminEventually(
        _ command: String, timeout: Duration = .seconds(20), _ predicate: (String) -> Bool
    ) async throws -> String {
        let deadline = ContinuousClock.now + timeout
        var reply = try await admin(command)
        while !predicate(reply) && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(30))
            reply = try await admin(command)
        }
        return reply
    }

    /// `gearman -h 127.0.0.1 -p PORT <arguments>`, run to completion.
    func gearman(_ arguments: [String], stdin: Data? = nil, timeout: Duration = .seconds(30)) async throws -> ProcessResult {
        try await runProcess(ReferenceTools.gearman, ["-h", host, "-p", String(port)] + arguments, stdin: stdin, timeout: timeout)
    }

    /// `gearman -h 127.0.0.1 -p PORT <arguments>`, left running (a worker).
    func startGearman(_ arguments: [String]) throws -> ChildProcess {
        let child = try ChildProcess(ReferenceTools.gearman, ["-h", host, "-p", String(port)] + arguments)
        children.add(child)
        return child
    }

    /// `gearadmin -h 127.0.0.1 -p PORT <arguments>`.
    func gearadmin(_ arguments: String..., timeout: Duration = .seconds(30)) async throws -> ProcessResult {
        try await runProcess(ReferenceTools.gearadmin, ["-h", host, "-p", String(port)] + arguments, timeout: timeout)
    }
}

/// A logger for the in-process server: errors only, so `verbose` answers `OK ERROR` like a
/// gearmand started with `--verbose=ERROR`.
func testLogger(_ label: String = "gearlock.test") -> Logger {
    var logger = Logger(label: label) { StreamLogHandler.standardError(label: $0) }
    logger.logLevel = .error
    return logger
}

/// Runs `body` against a fresh server of `kind` and always stops the server afterwards, whether
/// the body returns or throws.
func withTestServer<T: Sendable>(
    _ kind: ServerKind, _ options: ServerOptions = ServerOptions(),
    sourceLocation: SourceLocation = #_sourceLocation,
    _ body: (TestServer) async throws -> T
) async throws -> T {
    switch kind {
    case .gearlock:
        return try await withGearlock(options, body)
    case .gearmand:
        return try await withGearmand(options, sourceLocation: sourceLocation, body)
    }
}

func gearlockConfiguration(_ options: ServerOptions) -> JobServer.Configuration {
    var configuration = JobServer.Configuration()
    configuration.listeners = [.init(host: "127.0.0.1", port: 0)]
    configuration.jobRetries = options.jobRetries
    configuration.workerWakeup = options.workerWakeup
    configuration.exceptions = options.exceptions
    configuration.maxPacketSize = options.maxPacketSize
    configuration.jobHandlePrefix = options.jobHandlePrefix
    configuration.shutdownTimeout = .seconds(5)
    return configuration
}

private func withGearlock<T: Sendable>(_ options: ServerOptions, _ body: (TestServer) async throws -> T) async throws -> T {
    // Each server gets its own event-loop thread, as a separate gearmand process would: a test that
    // loads its server (64 MiB payloads, 1,000 jobs, the bench) then doesn't stall the event loops
    // every other test's servers and clients share.
    let eventLoopGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    defer { eventLoopGroup.shutdownGracefully { _ in } }
    let server = JobServer(configuration: gearlockConfiguration(options), eventLoopGroup: eventLoopGroup, logger: testLogger())
    return try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await server.run() }
        do {
            let addresses = try await server.listeningAddresses()
            let port = try #require(addresses.first?.port, "JobServer reported no bound port")
            let testServer = TestServer(kind: .gearlock, port: port, pid: getpid())
            defer { testServer.children.killAll() }
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

/// Ports this process has handed out; the kernel may give a just-closed port 0 binding again.
private let handedOutPorts = PortRegistry()

private final class PortRegistry: @unchecked Sendable {
    private let lock = NSLock()
    private var ports: Set<Int> = []

    func claim(_ port: Int) -> Bool {
        lock.withLock { ports.insert(port).inserted }
    }
}

/// A port nobody listens on right now and that no other test of this process was given.
func freeLoopbackPort() throws -> Int {
    for _ in 0..<50 {
        let port = try kernelChosenPort()
        if handedOutPorts.claim(port) { return port }
    }
    throw RawClientError(description: "no unused loopback port found")
}

/// Binds port 0, reads the port the kernel chose, closes.
private func kernelChosenPort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw RawClientError(description: "socket() failed") }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = 0
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
    }
    guard bound == 0 else { throw RawClientError(description: "bind() failed") }
    let named = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
    }
    guard named == 0 else { throw RawClientError(description: "getsockname() failed") }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// Connects until the server answers `getpid` with `pid` (so it is the process we started, not
/// another server that happens to hold the port), or fails after `timeout`.
func waitUntilAnswering(
    port: Int, pid: Int32, timeout: Duration = .seconds(30), stillRunning: () -> Bool = { true }
) async throws {
    let deadline = ContinuousClock.now + timeout
    var lastError: (any Error)?
    while ContinuousClock.now < deadline && stillRunning() {
        do {
            let client = try await RawClient.connect(host: "127.0.0.1", port: port, label: "probe")
            let reply = try await client.adminCommand("getpid", timeout: .seconds(2))
            await client.close()
            if reply == "OK \(pid)\n" { return }
            lastError = RawClientError(description: "getpid answered \(reprString(reply)), expected \(pid)")
            if reply.hasPrefix("OK ") { break }  // someone else's server holds the port
        } catch {
            lastError = error
        }
        try await Task.sleep(for: .milliseconds(50))
    }
    throw RawClientError(
        description: "server on port \(port) did not answer `version` within \(timeout): \(lastError.map { "\($0)" } ?? "it exited")")
}

private func withGearmand<T: Sendable>(
    _ options: ServerOptions, sourceLocation: SourceLocation, _ body: (TestServer) async throws -> T
) async throws -> T {
    try requireExecutable(ReferenceTools.gearmand, sourceLocation: sourceLocation)
    try requireExecutable(ReferenceTools.gearman, sourceLocation: sourceLocation)
    try requireExecutable(ReferenceTools.gearadmin, sourceLocation: sourceLocation)
    var lastFailure = ""
    // A port picked by binding port 0 can be taken again before gearmand binds it; try a few.
    for _ in 0..<3 {
        let port = try freeLoopbackPort()
        var arguments = ["-L", "127.0.0.1", "-p", String(port), "--verbose=ERROR", "-l", "stderr"]
        if options.jobRetries != 0 { arguments += ["-j", String(options.jobRetries)] }
        if options.workerWakeup != 0 { arguments += ["-w", String(options.workerWakeup)] }
        if options.exceptions { arguments.append("--exceptions") }
        if let prefix = options.jobHandlePrefix { arguments += ["--job-handle-prefix", prefix] }
        let process = try ChildProcess(ReferenceTools.gearmand, arguments, sourceLocation: sourceLocation)
        do {
            try await waitUntilAnswering(port: port, pid: process.pid, stillRunning: { process.isRunning })
        } catch {
            let result = await process.terminate()
            lastFailure = "\(error); gearmand \(result)"
            continue
        }
        let server = TestServer(kind: .gearmand, port: port, pid: process.pid)
        do {
            let result = try await body(server)
            server.children.killAll()
            await process.terminate()
            return result
        } catch {
            server.children.killAll()
            await process.terminate()
            throw error
        }
    }
    Issue.record("gearmand did not start: \(lastFailure)", sourceLocation: sourceLocation)
    throw RawClientError(description: "gearmand did not start")
}

/// The tool processes a test started, so none outlives it.
final class ChildRegistry: @unchecked Sendable {
    private let lock = NSLock()
    private var children: [ChildProcess] = []

    func add(_ child: ChildProcess) {
        lock.withLock { children.append(child) }
    }

    func killAll() {
        for child in lock.withLock({ children }) where child.isRunning {
            child.killTree()
        }
    }
}

/// `command` wrapped so that it dies with its parent (for commands `gearman -w` runs).
func diesWithParent(_ command: [String]) -> [String] {
    ProcessSpawner.canSetParentDeathSignal ? [ProcessSpawner.setpriv, "--pdeathsig", "KILL", "--"] + command : command
}
