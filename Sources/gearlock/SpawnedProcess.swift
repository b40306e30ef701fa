import NIOPosix
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A child process whose stdin and stdout are pipes to us and whose stderr is ours.
///
/// It starts with an empty signal mask and every signal at its default action: our threads block
/// signals (Dispatch, NIO) and ignore SIGPIPE, SIGTERM and SIGINT (NIO, ServiceLifecycle), and
/// a child would otherwise inherit all of that. It runs in a process group of its own, so a
/// Ctrl-C meant for `gearlock work` (which then finishes the jobs in hand) does not kill it;
/// `sendSignal(_:)` signals that whole group.
final class SpawnedProcess: Sendable {
    /// How the child ended, from its `waitpid` status.
    enum ExitStatus: Sendable, Hashable {
        case exited(Int32)
        case signalled(Int32)
    }

    struct SpawnError: Error, CustomStringConvertible {
        var description: String
    }

    let pid: pid_t
    /// Our end of the child's stdin.
    let standardInput: CInt
    /// Our end of the child's stdout.
    let standardOutput: CInt
    /// Set once `waitpid` has reaped the child: from then on its pid may belong to someone else.
    private let isReaped = Mutex(false)

    /// Spawns happen one at a time, so no child inherits another's pipe between `pipe()` and the
    /// `FD_CLOEXEC` that follows (Glibc's `pipe2` is not visible to Swift), even where the C
    /// library cannot close everything above stderr. A leaked write end would keep a concurrent
    /// job's stdin open, and its command would never see EOF.
    private static let spawnLock = Mutex(())

    private init(pid: pid_t, standardInput: CInt, standardOutput: CInt) {
        self.pid = pid
        self.standardInput = standardInput
        self.standardOutput = standardOutput
    }

    /// Starts `arguments[0]` (looked up in PATH unless it contains a slash) with `arguments`.
    static func spawn(_ arguments: [String]) throws(SpawnError) -> SpawnedProcess {
        precondition(!arguments.isEmpty, "no command to run")
        return try spawnLock.withLock { _ throws(SpawnError) in
            let input = try makePipe()
            let output: (read: CInt, write: CInt)
            do throws(SpawnError) {
                output = try makePipe()
            } catch {
                close(input.read)
                close(input.write)
                throw error
            }
            defer {
                // The child's ends; it has its own copies now (or never started).
                close(input.read)
                close(output.write)
            }
            do throws(SpawnError) {
                let pid = try startChild(arguments, standardInput: input.read, standardOutput: output.write)
                return SpawnedProcess(pid: pid, standardInput: input.write, standardOutput: output.read)
            } catch {
                close(input.write)
                close(output.read)
                throw error
            }
        }
    }

    private static func makePipe() throws(SpawnError) -> (read: CInt, write: CInt) {
        var descriptors: [CInt] = [-1, -1]
        guard pipe(&descriptors) == 0 else { throw SpawnError(description: "pipe() failed: \(errorText(errno))") }
        for descriptor in descriptors {
            _ = fcntl(descriptor, F_SETFD, FD_CLOEXEC)
        }
        return (descriptors[0], descriptors[1])
    }

    private static func startChild(
        _ arguments: [String], standardInput: CInt, standardOutput: CInt
    ) throws(SpawnError) -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, standardInput, STDIN_FILENO)
        posix_spawn_file_actions_adddup2(&actions, standardOutput, STDOUT_FILENO)
        closeInheritedDescriptors(&actions)

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        var allSignals = sigset_t()
        sigfillset(&allSignals)
        posix_spawnattr_setsigdefault(&attributes, &allSignals)
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP))

        let argv = arguments.map { strdup($0) } + [nil]
        defer { for argument in argv { free(argument) } }
        var pid = pid_t()
        let result = posix_spawnp(&pid, arguments[0], &actions, &attributes, argv, environ)
        guard result == 0 else {
            throw SpawnError(description: "cannot run \(arguments[0]): \(errorText(result))")
        }
        return pid
    }

    /// Makes the child close every descriptor above stderr. NIO opens its sockets and epoll
    /// descriptors without FD_CLOEXEC, and a command must not hold the worker's server
    /// connection (the server would not see the worker go away while the command runs).
    private static func closeInheritedDescriptors(_ actions: inout posix_spawn_file_actions_t) {
        if let addCloseFrom {
            _ = addCloseFrom(&actions, STDERR_FILENO + 1)
            return
        }
        // Older C libraries: close what is open now. A descriptor another thread opens before
        // the spawn may still leak; closing one that was closed meanwhile is harmless.
        guard let directory = opendir("/proc/self/fd") else { return }
        defer { closedir(directory) }
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if let descriptor = CInt(name), descriptor > STDERR_FILENO {
                posix_spawn_file_actions_addclose(&actions, descriptor)
            }
        }
    }

    private typealias AddCloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>?, CInt) -> CInt

    /// glibc 2.34's `posix_spawn_file_actions_addclosefrom_np`, which Swift does not see (it is
    /// declared for _GNU_SOURCE only), looked up at run time.
    private static let addCloseFrom: AddCloseFrom? = {
        guard let symbol = dlsym(nil, "posix_spawn_file_actions_addclosefrom_np") else { return nil }
        return unsafeBitCast(symbol, to: AddCloseFrom.self)
    }()

    /// Sends `signal` to the child's process group (what it started dies with it); a no-op once reaped.
    func sendSignal(_ signal: CInt) {
        isReaped.withLock { isReaped in
            guard !isReaped else { return }
            _ = kill(-pid, signal)
        }
    }

    /// Waits for the child to exit and reaps it, blocking a thread of `threadPool` (never an event
    /// loop or a thread of Swift's cooperative pool) while it runs.
    func waitForExit(on threadPool: NIOThreadPool) async throws -> ExitStatus {
        try await threadPool.runIfActive { try self.blockingWaitForExit() }
    }

    private func blockingWaitForExit() throws(SpawnError) -> ExitStatus {
        while true {
            // Block, without the lock, until the child has exited; then reap it under the lock,
            // so that `sendSignal(_:)` never signals a recycled pid.
            var info = siginfo_t()
            if waitid(P_PID, id_t(pid), &info, WEXITED | WNOWAIT) == -1 && errno == EINTR { continue }
            let status = try isReaped.withLock { isReaped throws(SpawnError) -> CInt in
                var status: CInt = 0
                guard waitpid(pid, &status, 0) == pid else {
                    throw SpawnError(description: "waitpid(\(pid)) failed: \(Self.errorText(errno))")
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
    static func canFind(_ program: String) -> Bool {
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
