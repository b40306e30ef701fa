import Foundation
import GearlockSpawn

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Starts every child from one thread that lives as long as the test process, wrapped in
/// `setpriv --pdeathsig KILL` where available: if this test process dies (a crash), the kernel
/// kills the child too, so no server is orphaned.
///
/// The parent-death signal fires when the *thread* that started the child exits, so children must
/// not be started from pool threads that may be retired while the child is still wanted.
final class ProcessSpawner: @unchecked Sendable {
    static let shared = ProcessSpawner()
    static let setpriv = "/usr/bin/setpriv"
    static let canSetParentDeathSignal = FileManager.default.isExecutableFile(atPath: setpriv)

    private let condition = NSCondition()
    private var requests: [() -> Void] = []

    private init() {
        // A child that exits without reading all of its stdin must not kill the test process
        // (children start with every signal at its default action, so this does not reach them).
        signal(SIGPIPE, SIG_IGN)
        let thread = Thread { [self] in
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

    /// Starts `executable` with `arguments` on the spawner thread, in a process group of its own (as
    /// Foundation's `Process` does), with stdout and stderr piped to us.
    func spawn(
        _ executable: String, _ arguments: [String], standardInput: SpawnedProcess.Configuration.Input
    ) throws(SpawnError) -> SpawnedProcess {
        let configuration = SpawnedProcess.Configuration(
            arguments: diesWithParent([executable] + arguments), standardInput: standardInput, standardOutput: .pipe, standardError: .pipe,
            processGroup: .new)
        let done = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var result: Result<SpawnedProcess, SpawnError>?
        condition.lock()
        requests.append {
            result = Result { () throws(SpawnError) in try SpawnedProcess.spawn(configuration) }
            done.signal()
        }
        condition.signal()
        condition.unlock()
        done.wait()
        return try result!.get()
    }
}
