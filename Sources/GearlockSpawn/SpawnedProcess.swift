import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A child process started with `posix_spawnp`, with pipes to us where its configuration asks.
///
/// It starts with an empty signal mask and every signal at its default action: our threads block
/// signals (Dispatch, NIO) and ignore SIGPIPE, SIGTERM and SIGINT (NIO, ServiceLifecycle), and
/// a child would otherwise inherit all of that. It inherits no descriptor above stderr.
///
/// Whoever spawns it must reap it with ``blockingWaitForExit()``; until then its pid stays ours,
/// and signals sent through it never reach a process that recycled the pid.
public final class SpawnedProcess: Sendable {
    /// How the child ended, from its `waitpid` status.
    public enum ExitStatus: Sendable, Hashable {
        case exited(Int32)
        case signalled(Int32)
    }

    public let pid: Int32
    /// Our end of the child's stdin when it is a pipe; ours to close.
    public let standardInput: CInt?
    /// Our end of the child's stdout when it is a pipe; ours to close.
    public let standardOutput: CInt?
    /// Our end of the child's stderr when it is a pipe; ours to close.
    public let standardError: CInt?
    private let leadsProcessGroup: Bool
    /// Set once `waitpid` has reaped the child: from then on its pid may belong to someone else.
    private let isReaped = Mutex(false)

    /// Spawns happen one at a time, so no child inherits another's pipe between `pipe()` and the
    /// `FD_CLOEXEC` that follows (Glibc's `pipe2` is not visible to Swift), even where the C
    /// library cannot close everything above stderr. A leaked write end would keep a concurrent
    /// child's stdin open, and it would never see EOF.
    private static let spawnLock = Mutex(())

    private init(
        pid: pid_t, standardInput: CInt?, standardOutput: CInt?, standardError: CInt?, leadsProcessGroup: Bool
    ) {
        self.pid = pid
        self.standardInput = standardInput
        self.standardOutput = standardOutput
        self.standardError = standardError
        self.leadsProcessGroup = leadsProcessGroup
    }

    /// Starts `configuration.arguments[0]` with `configuration.arguments`.
    public static func spawn(_ configuration: Configuration) throws(SpawnError) -> SpawnedProcess {
        precondition(!configuration.arguments.isEmpty, "no command to run")
        return try spawnLock.withLock { _ throws(SpawnError) in
            // Pipes by the child's descriptor they become.
            var pipes: [CInt: PipeEnds] = [:]
            defer {
                // The child's ends; it has its own copies now (or never started).
                for ends in pipes.values { close(ends.child) }
            }
            do throws(SpawnError) {
                if configuration.standardInput == .pipe {
                    pipes[STDIN_FILENO] = try makePipe(childReads: true)
                }
                if configuration.standardOutput == .pipe {
                    pipes[STDOUT_FILENO] = try makePipe(childReads: false)
                }
                if configuration.standardError == .pipe {
                    pipes[STDERR_FILENO] = try makePipe(childReads: false)
                }
                let pid = try PosixSpawn.start(configuration, descriptors: pipes.mapValues(\.child))
                return SpawnedProcess(
                    pid: pid, standardInput: pipes[STDIN_FILENO]?.ours, standardOutput: pipes[STDOUT_FILENO]?.ours,
                    standardError: pipes[STDERR_FILENO]?.ours, leadsProcessGroup: configuration.processGroup == .new)
            } catch {
                for ends in pipes.values { close(ends.ours) }
                throw error
            }
        }
    }

    private struct PipeEnds {
        var ours: CInt
        var child: CInt
    }

    private static func makePipe(childReads: Bool) throws(SpawnError) -> PipeEnds {
        var descriptors: [CInt] = [-1, -1]
        guard pipe(&descriptors) == 0 else {
            throw SpawnError(.pipeFailed, "pipe() failed: \(errorText(errno))", errorNumber: errno)
        }
        for descriptor in descriptors {
            _ = fcntl(descriptor, F_SETFD, FD_CLOEXEC)
        }
        return childReads
            ? PipeEnds(ours: descriptors[1], child: descriptors[0])
            : PipeEnds(ours: descriptors[0], child: descriptors[1])
    }

    /// Sends `signal` to the child alone; a no-op once reaped.
    public func sendSignal(_ signal: CInt) {
        isReaped.withLock { isReaped in
            guard !isReaped else { return }
            _ = kill(pid, signal)
        }
    }

    /// Sends `signal` to the child's process group (what it started dies with it); a no-op once reaped.
    /// The child must have been started in a group of its own.
    public func sendSignalToProcessGroup(_ signal: CInt) {
        precondition(leadsProcessGroup, "the child was started in our process group")
        isReaped.withLock { isReaped in
            guard !isReaped else { return }
            _ = kill(-pid, signal)
        }
    }

    /// Waits for the child to exit and reaps it. Blocks the calling thread while the child runs:
    /// call it from a thread of its own or of a thread pool, never an event loop or a thread of
    /// Swift's cooperative pool.
    public func blockingWaitForExit() throws(SpawnError) -> ExitStatus {
        while true {
            // Block, without the lock, until the child has exited; then reap it under the lock,
            // so that sending a signal never hits a recycled pid.
            var info = siginfo_t()
            if waitid(P_PID, id_t(pid), &info, WEXITED | WNOWAIT) == -1 && errno == EINTR { continue }
            let status = try isReaped.withLock { isReaped throws(SpawnError) -> CInt in
                var status: CInt = 0
                guard waitpid(pid, &status, 0) == pid else {
                    throw SpawnError(.waitFailed, "waitpid(\(pid)) failed: \(Self.errorText(errno))", errorNumber: errno)
                }
                isReaped = true
                return status
            }
            return Self.exitStatus(status)
        }
    }

    /// Decodes a `waitpid` status (the W* macros are not visible to Swift).
    private static func exitStatus(_ status: CInt) -> ExitStatus {
        let signal = status & 0x7f
        return signal == 0 ? .exited((status >> 8) & 0xff) : .signalled(signal)
    }

    /// Whether `program` names an executable, directly (with a slash) or through PATH, as
    /// `posix_spawnp` looks it up.
    public static func canFind(_ program: String) -> Bool {
        if program.contains("/") { return access(program, X_OK) == 0 }
        let path = getenv("PATH").map { String(cString: $0) } ?? "/usr/local/bin:/usr/bin:/bin"
        return path.split(separator: ":", omittingEmptySubsequences: false).contains { directory in
            access((directory.isEmpty ? "." : String(directory)) + "/" + program, X_OK) == 0
        }
    }

    static func errorText(_ code: CInt) -> String {
        String(cString: strerror(code))
    }
}
