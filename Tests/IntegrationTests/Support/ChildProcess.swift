import Foundation
import GearlockSpawn
import GearlockTestSupport
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The outcome of a finished child process.
struct ProcessResult: Sendable, CustomStringConvertible {
    var stdout: Data
    var stderr: Data
    /// The exit code, or the signal number when `signalled`.
    var status: Int32
    var signalled: Bool
    /// True when the process had to be killed because it outlived its deadline.
    var timedOut: Bool

    var stdoutString: String { String(decoding: stdout, as: UTF8.self) }
    var stderrString: String { String(decoding: stderr, as: UTF8.self) }
    var exitCode: Int32? { signalled ? nil : status }

    var description: String {
        "status \(status)\(signalled ? " (signal)" : "")\(timedOut ? " TIMED OUT" : ""), "
            + "stdout \(reprString(stdoutString)), stderr \(reprString(String(stderrString.prefix(2000))))"
    }
}

/// A child process with captured stdout/stderr, killable, and waitable with a deadline.
///
/// Started by ``ProcessSpawner`` (dies with the test process); threads of its own read its output
/// and reap it, off Swift's cooperative pool.
final class ChildProcess: Sendable {
    /// What the child reads on stdin.
    enum Input: Sendable {
        /// `/dev/null`.
        case nothing
        /// These bytes, then EOF.
        case data(Data)
        /// What ``write(_:)`` sends, until ``closeInput()``.
        case open
    }

    private struct State {
        var termination: SpawnedProcess.ExitStatus?
        var terminationWaiters: [CheckedContinuation<Void, Never>] = []
        var stdout = Data()
        var stderr = Data()
        var pipesOpen = 2
        var killedForTimeout = false
    }

    let executable: String
    let arguments: [String]
    private let process: SpawnedProcess
    private let state = Mutex(State())
    /// Our end of the child's stdin while it is `.open` and not yet closed.
    private let openInput: Mutex<CInt?>

    var pid: pid_t { process.pid }

    /// Starts `executable`. Fails the calling test with a clear message when it doesn't exist.
    convenience init(
        _ executable: String, _ arguments: [String], stdin: Data? = nil,
        sourceLocation: SourceLocation = #_sourceLocation
    ) throws {
        try self.init(executable, arguments, input: stdin.map { .data($0) } ?? .nothing, sourceLocation: sourceLocation)
    }

    /// Starts `executable`. Fails the calling test with a clear message when it doesn't exist.
    init(
        _ executable: String, _ arguments: [String], input: Input, sourceLocation: SourceLocation = #_sourceLocation
    ) throws {
        self.executable = executable
        self.arguments = arguments
        try requireExecutable(executable, sourceLocation: sourceLocation)
        let process: SpawnedProcess
        switch input {
        case .nothing:
            process = try ProcessSpawner.shared.spawn(executable, arguments, standardInput: .nullDevice)
            openInput = Mutex(nil)
        case .data:
            process = try ProcessSpawner.shared.spawn(executable, arguments, standardInput: .pipe)
            openInput = Mutex(nil)
        case .open:
            process = try ProcessSpawner.shared.spawn(executable, arguments, standardInput: .pipe)
            openInput = Mutex(process.standardInput)
        }
        self.process = process
        Thread.detachNewThread { [self] in
            // Only a child reaped by someone else fails to be waited for; count it as gone.
            let status = (try? process.blockingWaitForExit()) ?? .exited(-1)
            let waiters = state.withLock { state in
                state.termination = status
                defer { state.terminationWaiters.removeAll() }
                return state.terminationWaiters
            }
            for waiter in waiters { waiter.resume() }
        }
        for (descriptor, isStdout) in [(process.standardOutput!, true), (process.standardError!, false)] {
            Thread.detachNewThread { [self] in
                readChunks(from: descriptor) { chunk in
                    state.withLock { state in
                        if isStdout { state.stdout.append(chunk) } else { state.stderr.append(chunk) }
                    }
                }
                close(descriptor)
                state.withLock { $0.pipesOpen -= 1 }
            }
        }
        if case .data(let data) = input, let descriptor = process.standardInput {
            Thread.detachNewThread {
                writeAll(data, to: descriptor)
                close(descriptor)
            }
        }
    }

    deinit {
        closeInput()
    }

    var isRunning: Bool { state.withLock { $0.termination == nil } }

    /// How the process ended; nil while it runs.
    var exitStatus: SpawnedProcess.ExitStatus? { state.withLock { $0.termination } }

    /// What the process printed so far, and whether that is all of it (it has exited and both
    /// pipes are closed).
    var outputSoFar: (stdout: Data, stderr: Data, isComplete: Bool) {
        state.withLock { ($0.stdout, $0.stderr, $0.termination != nil && $0.pipesOpen == 0) }
    }

    /// Writes `data` to stdin (an `.open` input); a no-op once it is closed.
    func write(_ data: Data) {
        openInput.withLock { descriptor in
            if let descriptor { writeAll(data, to: descriptor) }
        }
    }

    /// Closes stdin (an `.open` input): the process reads EOF.
    func closeInput() {
        openInput.withLock { descriptor in
            if let open = descriptor { close(open) }
            descriptor = nil
        }
    }

    /// Sends `signal` to the process (no-op once it has exited).
    func signal(_ signal: Int32) {
        process.sendSignal(signal)
    }

    /// SIGKILLs the process and every process it started (e.g. `gearman -w`'s command), so nothing lingers.
    func killTree() {
        let children = descendantPIDs(of: pid)
        signal(SIGKILL)
        for child in children { _ = kill(child, SIGKILL) }
    }

    private func waitForTermination() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let done = state.withLock { state in
                if state.termination != nil { return true }
                state.terminationWaiters.append(continuation)
                return false
            }
            if done { continuation.resume() }
        }
    }

    /// Returns once both output pipes hit EOF, or when the task is cancelled (a grandchild may
    /// hold a pipe open much longer than the process itself lives).
    private func waitForPipes() async {
        while !Task.isCancelled && state.withLock({ $0.pipesOpen > 0 }) {
            try? await Task.sleep(for: .milliseconds(10))
        }
    }

    /// Waits for the process to exit; kills it (and what it started) when it outlives `timeout`.
    @discardableResult
    func wait(timeout: Duration) async -> ProcessResult {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.waitForTermination() }
            group.addTask {
                try? await Task.sleep(for: timeout)
                if self.isRunning {
                    self.state.withLock { $0.killedForTimeout = true }
                    self.killTree()
                }
            }
            await group.next()
            group.cancelAll()
        }
        // Output pipes may be held open by a grandchild; don't wait for them forever.
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.waitForPipes() }
            group.addTask { try? await Task.sleep(for: .seconds(3)) }
            await group.next()
            group.cancelAll()
        }
        return state.withLock { state in
            let (status, signalled): (Int32, Bool) =
                switch state.termination {
                case .exited(let code)?: (code, false)
                case .signalled(let signal)?: (signal, true)
                case nil: (-1, false)
                }
            return ProcessResult(
                stdout: state.stdout, stderr: state.stderr, status: status, signalled: signalled,
                timedOut: state.killedForTimeout)
        }
    }

    /// Stops the process for good: SIGTERM, then SIGKILL after `grace`.
    @discardableResult
    func terminate(grace: Duration = .seconds(2)) async -> ProcessResult {
        signal(SIGTERM)
        return await wait(timeout: grace)
    }
}

/// Writes all of `data` to `descriptor`, retrying interrupted and partial writes; gives up when
/// the reader has gone (EPIPE).
private func writeAll(_ data: Data, to descriptor: CInt) {
    data.withUnsafeBytes { buffer in
        var offset = 0
        while offset < buffer.count {
            let written = write(descriptor, buffer.baseAddress! + offset, buffer.count - offset)
            if written > 0 {
                offset += written
            } else if written == -1 && errno == EINTR {
                continue
            } else {
                return
            }
        }
    }
}

/// Runs a command to completion (killed after `timeout`) and returns what it printed.
func runProcess(
    _ executable: String, _ arguments: [String], stdin: Data? = nil, timeout: Duration = .seconds(30),
    sourceLocation: SourceLocation = #_sourceLocation
) async throws -> ProcessResult {
    let child = try ChildProcess(executable, arguments, stdin: stdin, sourceLocation: sourceLocation)
    return await child.wait(timeout: timeout)
}

/// Fails the current test (never skips it) when a required program is missing.
func requireExecutable(_ path: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
    guard FileManager.default.isExecutableFile(atPath: path) else {
        let hint: String
        switch (path as NSString).lastPathComponent {
        case "gearmand": hint = "install the Debian package gearman-job-server"
        case "gearman", "gearadmin": hint = "install the Debian package gearman-tools"
        case "gearlock": hint = "build it first with `swift build`"
        default: hint = "it is required by the integration tests"
        }
        Issue.record("\(path) is missing or not executable: \(hint)", sourceLocation: sourceLocation)
        throw RawClientError(description: "missing executable \(path)")
    }
}

/// Every process below `root` in the process tree, read from /proc.
func descendantPIDs(of root: pid_t) -> [pid_t] {
    guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
    var parentOf: [pid_t: pid_t] = [:]
    for entry in entries {
        guard let pid = pid_t(entry),
            let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { continue }
        // After "pid (comm)": " state ppid ..."
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        if fields.count > 1, let ppid = pid_t(fields[1]) { parentOf[pid] = ppid }
    }
    var result: [pid_t] = []
    var frontier: [pid_t] = [root]
    while let parent = frontier.popLast() {
        for (pid, ppid) in parentOf where ppid == parent {
            result.append(pid)
            frontier.append(pid)
        }
    }
    return result
}
