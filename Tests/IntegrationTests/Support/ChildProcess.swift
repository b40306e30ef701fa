import Foundation
import GearlockTestSupport
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
final class ChildProcess: @unchecked Sendable {
    let executable: String
    let arguments: [String]
    private let process = Process()
    private let lock = NSLock()
    private var termination: (status: Int32, signalled: Bool)?
    private var terminationWaiters: [CheckedContinuation<Void, Never>] = []
    private var stdoutData = Data()
    private var stderrData = Data()
    private var pipesOpen = 2
    private var killedForTimeout = false

    var pid: pid_t { process.processIdentifier }

    /// Starts `executable`. Fails the calling test with a clear message when it doesn't exist.
    init(
        _ executable: String, _ arguments: [String], stdin: Data? = nil,
        sourceLocation: SourceLocation = #_sourceLocation
    ) throws {
        self.executable = executable
        self.arguments = arguments
        try requireExecutable(executable, sourceLocation: sourceLocation)
        ProcessSpawner.setCommand(of: process, executable, arguments)
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        var input: Pipe?
        if stdin != nil {
            input = Pipe()
            process.standardInput = input
        } else {
            process.standardInput = FileHandle.nullDevice
        }
        process.terminationHandler = { [weak self] process in
            guard let self else { return }
            let waiters = self.lock.withLock {
                self.termination = (process.terminationStatus, process.terminationReason == .uncaughtSignal)
                defer { self.terminationWaiters.removeAll() }
                return self.terminationWaiters
            }
            for waiter in waiters { waiter.resume() }
        }
        try ProcessSpawner.shared.spawn(process)
        // Blocking reads on their own threads, off Swift's cooperative pool.
        Thread.detachNewThread { [self] in
            let data = readToEnd(out.fileHandleForReading)
            self.pipeClosed { self.stdoutData = data }
        }
        Thread.detachNewThread { [self] in
            let data = readToEnd(err.fileHandleForReading)
            self.pipeClosed { self.stderrData = data }
        }
        if let stdin, let input {
            Thread.detachNewThread {
                try? input.fileHandleForWriting.write(contentsOf: stdin)
                try? input.fileHandleForWriting.close()
            }
        }
    }

    private func pipeClosed(_ store: () -> Void) {
        lock.withLock {
            store()
            pipesOpen -= 1
        }
    }

    var isRunning: Bool { lock.withLock { termination == nil } }

    /// Sends `signal` to the process (no-op once it has exited).
    func signal(_ signal: Int32) {
        lock.withLock {
            guard termination == nil else { return }
            _ = kill(process.processIdentifier, signal)
        }
    }

    /// SIGKILLs the process and every process it started (e.g. `gearman -w`'s command), so nothing lingers.
    func killTree() {
        let children = descendantPIDs(of: pid)
        signal(SIGKILL)
        for child in children { _ = kill(child, SIGKILL) }
    }

    private func waitForTermination() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let done = lock.withLock {
                if termination != nil { return true }
                terminationWaiters.append(continuation)
                return false
            }
            if done { continuation.resume() }
        }
    }

    /// Returns once both output pipes hit EOF, or when the task is cancelled (a grandchild may
    /// hold a pipe open much longer than the process itself lives).
    private func waitForPipes() async {
        while !Task.isCancelled && lock.withLock({ pipesOpen > 0 }) {
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
                    self.lock.withLock { self.killedForTimeout = true }
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
        return lock.withLock {
            ProcessResult(
                stdout: stdoutData, stderr: stderrData, status: termination?.status ?? -1,
                signalled: termination?.signalled ?? false, timedOut: killedForTimeout)
        }
    }

    /// Stops the process for good: SIGTERM, then SIGKILL after `grace`.
    @discardableResult
    func terminate(grace: Duration = .seconds(2)) async -> ProcessResult {
        signal(SIGTERM)
        return await wait(timeout: grace)
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

/// Starts every child from one thread that lives as long as the test process.
///
/// The parent-death signal fires when the *thread* that forked the child exits, so children must
/// not be started from pool threads that may be retired while the child is still wanted.
final class ProcessSpawner: @unchecked Sendable {
    static let shared = ProcessSpawner()
    static let setpriv = "/usr/bin/setpriv"
    static let canSetParentDeathSignal = FileManager.default.isExecutableFile(atPath: setpriv)

    /// Points `process` at `executable`, wrapped in `setpriv --pdeathsig KILL` where available: if
    /// this test process dies (a crash), the kernel kills the child too, so no server is orphaned.
    static func setCommand(of process: Process, _ executable: String, _ arguments: [String]) {
        if canSetParentDeathSignal {
            process.executableURL = URL(fileURLWithPath: setpriv)
            process.arguments = ["--pdeathsig", "KILL", "--", executable] + arguments
        } else {
            process.executableURL = URL(fileURLWithPath: executable)
            process.arguments = arguments
        }
    }

    private let condition = NSCondition()
    private var requests: [() -> Void] = []

    private init() {
        let thread = Thread { [self] in
            // Children inherit the spawning thread's signal mask, and the threads of this process
            // block most signals; a child started with SIGTERM blocked would ignore `terminate()`.
            var none = sigset_t()
            sigemptyset(&none)
            pthread_sigmask(SIG_SETMASK, &none, nil)
            while true {
                condition.lock()
                while requests.isEmpty { condition.wait() }
                let request = requests.removeFirst()
                condition.unlock()
                request()
            }
        }
        thread.name = "integration-test-spawner"
        thread.start()
    }

    /// Runs `process.run()` on the spawner thread and waits for it.
    func spawn(_ process: Process) throws {
        let done = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var failure: (any Error)?
        condition.lock()
        requests.append {
            do { try process.run() } catch { failure = error }
            done.signal()
        }
        condition.signal()
        condition.unlock()
        done.wait()
        if let failure { throw failure }
    }
}

