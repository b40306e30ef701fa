import Foundation
import Gearman
import GearmanServer
import Logging
import NIOCore
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

// Helpers for the client/worker library tests: bounded waits, gates for worker handlers, and
// servers a test can stop and start again on the same port.

struct LibraryTestTimeout: Error, CustomStringConvertible {
    var description: String
}

/// Connection options for the library: short reconnect delays so failover tests stay fast. The
/// connect timeout is a hang guard: connects take seconds when every suite starts at once on 2 cores.
func libraryOptions(ports: [Int]) -> GearmanConnectionOptions {
    GearmanConnectionOptions(
        servers: ports.map { GearmanServerAddress(host: "127.0.0.1", port: $0) }, connectTimeout: .seconds(20),
        initialReconnectDelay: .milliseconds(20), maximumReconnectDelay: .milliseconds(200))
}

func libraryOptions(_ server: TestServer) -> GearmanConnectionOptions {
    libraryOptions(ports: [server.port])
}

/// A logger for the library under test: quiet unless something is badly wrong.
func libraryLogger(_ label: String) -> Logger {
    var logger = Logger(label: label) { StreamLogHandler.standardError(label: $0) }
    logger.logLevel = .critical
    return logger
}

/// Runs `body` while `worker` runs, then cancels the worker.
func withWorker<T: Sendable>(_ worker: GearmanWorker, _ body: () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await worker.run() }
        let result = try await body()
        group.cancelAll()
        return result
    }
}

/// Runs `body` and fails with a timeout if it takes longer than `limit` (it is cancelled then).
func within<T: Sendable>(
    _ limit: Duration, _ what: String, _ body: @escaping @Sendable () async throws -> T
) async throws -> T {
    try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: limit)
            return nil
        }
        defer { group.cancelAll() }
        guard let first = try await group.next(), let value = first else {
            throw LibraryTestTimeout(description: "\(what) took longer than \(limit)")
        }
        return value
    }
}

/// Polls `condition` until it holds; throws after `timeout`.
func eventually(
    _ what: String, timeout: Duration = .seconds(30), _ condition: @Sendable () async throws -> Bool
) async throws {
    let deadline = ContinuousClock.now + timeout
    while try await !condition() {
        guard ContinuousClock.now < deadline else { throw LibraryTestTimeout(description: "\(what) within \(timeout)") }
        try await Task.sleep(for: .milliseconds(10))
    }
}

/// Runs `body`, which must throw a `GearmanError` with `code`; returns that error.
@discardableResult
func expectGearmanError<T>(
    _ code: GearmanError.Code, sourceLocation: SourceLocation = #_sourceLocation,
    _ body: () async throws -> T
) async -> GearmanError? {
    do {
        let value = try await body()
        Issue.record("expected GearmanError.\(code), got \(value)", sourceLocation: sourceLocation)
        return nil
    } catch let error as GearmanError {
        #expect(error.code == code, "\(error)", sourceLocation: sourceLocation)
        return error
    } catch {
        Issue.record("expected GearmanError.\(code), got \(error)", sourceLocation: sourceLocation)
        return nil
    }
}

/// A one-way gate a worker's handler can wait on (cancellation-aware and bounded).
final class Gate: Sendable {
    private let state = Mutex(false)

    init() {}

    func open() { state.withLock { $0 = true } }
    var isOpen: Bool { state.withLock { $0 } }

    func wait(timeout: Duration = .seconds(20)) async throws {
        try await eventually("gate opened", timeout: timeout) { self.isOpen }
    }
}

/// What handlers saw, in order.
final class Recorder<Element: Sendable>: Sendable {
    private let items = Mutex<[Element]>([])

    init() {}

    func append(_ item: Element) { items.withLock { $0.append(item) } }
    var all: [Element] { items.withLock { $0 } }
    var count: Int { items.withLock { $0.count } }

    func waitForCount(_ count: Int, timeout: Duration = .seconds(10)) async throws {
        try await eventually("\(count) recorded (have \(self.count))", timeout: timeout) { self.count >= count }
    }
}

/// Counts jobs running at the same time and the most ever seen.
final class ConcurrencyGauge: Sendable {
    private let state = Mutex((current: 0, maximum: 0))

    init() {}

    func enter() { state.withLock { $0.current += 1; $0.maximum = max($0.maximum, $0.current) } }
    func leave() { state.withLock { $0.current -= 1 } }
    var current: Int { state.withLock { $0.current } }
    var maximum: Int { state.withLock { $0.maximum } }
}

/// Keeps a loopback port bound but not listening: connecting to it is refused at once, and no
/// other test's server (bound to port 0) can be given it meanwhile.
final class PortPlaceholder: Sendable {
    private let descriptor: Int32

    init(port: Int) throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw LibraryTestTimeout(description: "socket() failed") }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else {
            close(fd)
            throw LibraryTestTimeout(description: "cannot hold port \(port): errno \(errno)")
        }
        descriptor = fd
    }

    /// A port nothing listens on for as long as the placeholder lives.
    static func unusedPort() throws -> (port: Int, placeholder: PortPlaceholder) {
        for _ in 0..<10 {
            let port = try freeLoopbackPort()
            if let placeholder = try? PortPlaceholder(port: port) { return (port, placeholder) }
        }
        throw LibraryTestTimeout(description: "no port to hold")
    }

    deinit { close(descriptor) }
}

/// A server a test can stop (abruptly: connections drop) and start again on the same port.
///
/// While it is stopped its port stays held (see ``PortPlaceholder``), so the clients and workers
/// that keep reconnecting are refused instead of reaching another test's server.
final class RestartableServer: Sendable {
    let kind: ServerKind
    let port: Int
    private let running = Mutex<(task: Task<Void, any Error>?, process: ChildProcess?)>((nil, nil))
    private let placeholder = Mutex<PortPlaceholder?>(nil)

    /// The port is held (bound, not listening) from here on, so no outgoing connection of another
    /// test takes it as its ephemeral port before the first `start` (one did, under load).
    init(kind: ServerKind) throws {
        self.kind = kind
        let (port, placeholder) = try PortPlaceholder.unusedPort()
        self.port = port
        self.placeholder.withLock { $0 = placeholder }
    }

    var address: GearmanServerAddress { GearmanServerAddress(host: "127.0.0.1", port: port) }

    /// The harness view, for admin commands.
    var testServer: TestServer {
        TestServer(kind: kind, port: port, pid: running.withLock { $0.process?.pid } ?? getpid())
    }

    func start() async throws {
        placeholder.withLock { $0 = nil }
        switch kind {
        case .gearlock:
            var configuration = gearlockConfiguration(ServerOptions())
            configuration.listeners = [.init(host: "127.0.0.1", port: port)]
            // Like gearmand, retry a bind that fails for a moment (a socket of a finished test
            // may still hold the port briefly on a busy machine).
            let deadline = ContinuousClock.now + .seconds(20)
            while true {
                let server = JobServer(configuration: configuration, logger: testLogger())
                let task = Task { try await server.run() }
                do {
                    _ = try await server.listeningAddresses()
                    running.withLock { $0.task = task }
                    break
                } catch {
                    _ = await task.result
                    guard ContinuousClock.now < deadline else {
                        throw LibraryTestTimeout(
                            description: "cannot listen on \(port) again: \(error); sockets there: \(socketsOnPort(port))")
                    }
                    try await Task.sleep(for: .milliseconds(50))
                }
            }
        case .gearmand:
            let process = try ChildProcess(
                ReferenceTools.gearmand, ["-L", "127.0.0.1", "-p", String(port), "--verbose=ERROR", "-l", "stderr"])
            running.withLock { $0.process = process }
            try await waitUntilAnswering(
                port: port, pid: process.pid, timeout: .seconds(25), stillRunning: { process.isRunning })
        }
    }

    /// Stops the server at once: every connection drops, queued jobs are gone.
    /// - Parameter holdingPort: keep the port bound (refusing connections) until `start`.
    func stop(holdingPort: Bool = true) async {
        let (task, process) = running.withLock { state in
            defer { state = (nil, nil) }
            return state
        }
        if let task {
            task.cancel()
            _ = await task.result
        }
        if let process {
            process.killTree()
            await process.wait(timeout: .seconds(30))
        }
        if holdingPort {
            // When the port cannot be held, what holds it (the killed server's TIME_WAIT sockets,
            // bound without SO_REUSEADDR) keeps other servers off it just as well.
            let held = try? PortPlaceholder(port: port)
            placeholder.withLock { $0 = held }
        } else {
            placeholder.withLock { $0 = nil }
        }
    }
}

/// Runs `body` with `count` restartable servers of `kind`, all started; stops them afterwards.
func withRestartableServers<T: Sendable>(
    _ kind: ServerKind, count: Int, _ body: ([RestartableServer]) async throws -> T
) async throws -> T {
    if kind == .gearmand { try requireExecutable(ReferenceTools.gearmand) }
    var servers: [RestartableServer] = []
    do {
        for _ in 0..<count {
            let server = try RestartableServer(kind: kind)
            servers.append(server)
            try await server.start()
        }
        let result = try await body(servers)
        for server in servers { await server.stop(holdingPort: false) }
        return result
    } catch {
        for server in servers { await server.stop(holdingPort: false) }
        throw error
    }
}

/// The TCP sockets whose local port is `port` (state and remote end), from /proc/net/tcp.
func socketsOnPort(_ port: Int) -> [String] {
    guard let table = try? String(contentsOfFile: "/proc/net/tcp", encoding: .utf8) else { return [] }
    let states = [
        "01": "ESTABLISHED", "02": "SYN_SENT", "03": "SYN_RECV", "04": "FIN_WAIT1", "05": "FIN_WAIT2",
        "06": "TIME_WAIT", "07": "CLOSE", "08": "CLOSE_WAIT", "09": "LAST_ACK", "0A": "LISTEN", "0B": "CLOSING",
    ]
    let hexPort = String(format: "%04X", port)
    return table.split(separator: "\n").dropFirst().compactMap { line in
        let fields = line.split(separator: " ")
        guard fields.count > 7, fields[1].hasSuffix(":" + hexPort) else { return nil }
        return "\(states[String(fields[3])] ?? String(fields[3])) remote \(fields[2]) uid \(fields[7])"
    }
}
