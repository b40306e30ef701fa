#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The `posix_spawnp` call behind ``SpawnedProcess/spawn(_:)``: file actions and attributes.
enum PosixSpawn {
    /// Starts the child with `descriptors` (ours, by the child's descriptor number they become)
    /// as its stdin, stdout or stderr, and returns its pid.
    static func start(
        _ configuration: SpawnedProcess.Configuration, descriptors: [CInt: CInt]
    ) throws(SpawnError) -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        for (target, source) in descriptors.sorted(by: { $0.key < $1.key }) {
            posix_spawn_file_actions_adddup2(&actions, source, target)
        }
        switch configuration.standardInput {
        case .pipe: break
        case .nullDevice: posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0)
        }
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
        var flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF
        switch configuration.processGroup {
        case .inherited: break
        case .new:
            posix_spawnattr_setpgroup(&attributes, 0)
            flags |= POSIX_SPAWN_SETPGROUP
        }
        posix_spawnattr_setflags(&attributes, Int16(flags))

        let arguments = configuration.arguments
        let argv = arguments.map { strdup($0) } + [nil]
        defer { for argument in argv { free(argument) } }
        var pid = pid_t()
        let result = posix_spawnp(&pid, arguments[0], &actions, &attributes, argv, environ)
        guard result == 0 else {
            throw SpawnError(
                .spawnFailed, "cannot run \(arguments[0]): \(SpawnedProcess.errorText(result))", errorNumber: result)
        }
        return pid
    }

    /// Makes the child close every descriptor above stderr. NIO opens its sockets and epoll
    /// descriptors without FD_CLOEXEC, and a child must not hold our connections (a server
    /// would not see a `gearlock work` worker go away while its command runs).
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
}
