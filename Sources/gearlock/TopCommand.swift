import ArgumentParser
import Gearman
import GearlockCLI
import UnixSignals

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// `gearlock top`: a live table of the server's functions, built from the admin protocol.
struct TopCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "top",
        abstract: "Watch a job server: functions, queue depths, running jobs and workers, refreshed live.",
        discussion: """
            Talks to the first --server with the admin protocol (`version`, `status`, `workers`), so it \
            shows only what the caller's principal may see: a tenant's admin sees its own functions. \
            QUEUED is the jobs waiting for a worker, RUNNING the jobs a worker holds, WORKERS the \
            connections registered for the function. NET/S is the change per second of the function's \
            jobs (queued plus running) between two refreshes — submissions minus jobs that ended; the \
            admin protocol counts no completions, so no completion rate can be shown.

            Keys: q (or Ctrl-C) quits and restores the terminal; s switches the order between name and \
            queue depth. When the server cannot be reached, the view shows why and keeps retrying; a \
            refused authentication or an ERR reply ends it (exit status as for `gearlock admin`).

            When stdout is not a terminal, or with --once, one table is printed and `top` exits.
            """
    )

    @OptionGroup var connection: ConnectionOptionGroup

    @Option(help: "Seconds between refreshes.")
    var interval: Double = 1

    @Option(help: "Order of the rows: name, or queue (longest queue first).")
    var sort: TopView.Sort = .name

    @Flag(help: "Print one table and exit (also what happens when stdout is not a terminal).")
    var once = false

    @Option(help: "Seconds to wait for each reply of the server.")
    var timeout: Double = 5

    func validate() throws {
        guard interval > 0 else { throw ValidationError("--interval must be positive") }
        guard timeout > 0 else { throw ValidationError("--timeout must be positive") }
    }

    func run() async throws {
        let options = try connection.connectionOptions()
        let server = options.servers[0]
        let client = GearmanAdminClient(server: server, options: options)
        defer { client.close() }
        let fetcher = TopFetcher(client: client, server: server.description, timeout: .milliseconds(Int64(timeout * 1000)))
        if once || !TerminalScreen.isInteractive {
            try await printOnce(fetcher)
        } else {
            try await runLive(fetcher, client: client)
        }
    }

    private func printOnce(_ fetcher: TopFetcher) async throws {
        do throws(GearmanError) {
            let view = TopView(server: fetcher.server, current: try await fetcher.snapshot(), sort: sort)
            print(view.lines().joined(separator: "\n"))
        } catch {
            StandardStream.printError("Error: " + AdminCommand.describe(error, server: fetcher.client.server))
            throw AdminCommand.exitCode(for: error)
        }
    }

    private enum Event: Sendable {
        case key(UInt8)
        case signal(UnixSignal)
        case refreshed(Result<TopSnapshot, GearmanError>)
        case inputClosed
    }

    private func runLive(_ fetcher: TopFetcher, client: GearmanAdminClient) async throws {
        let interval = Duration.milliseconds(Int64(self.interval * 1000))
        // Trapped before the screen changes, so that no Ctrl-C can leave the terminal raw.
        let signals = await UnixSignalsSequence(trapping: .sigint, .sigterm, .sigquit, .sighup, .sigwinch)
        let screen = try TerminalScreen.enter()
        defer { screen.restore() }
        let (events, continuation) = AsyncStream.makeStream(of: Event.self)
        let keys = KeyReader()
        keys.start(onKey: { continuation.yield(.key($0)) }, onEnd: { continuation.yield(.inputClosed) })
        defer { keys.stop() }

        var view = TopView(server: fetcher.server, sort: sort, interval: interval)
        var failure: GearmanError?
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                for await signal in signals { continuation.yield(.signal(signal)) }
            }
            group.addTask {
                while !Task.isCancelled {
                    do throws(GearmanError) {
                        continuation.yield(.refreshed(.success(try await fetcher.snapshot())))
                    } catch {
                        continuation.yield(.refreshed(.failure(error)))
                    }
                    try? await Task.sleep(for: interval)
                }
            }
            screen.draw(view.lines(fitting: TerminalScreen.size()))
            events: for await event in events {
                switch event {
                case .key(UInt8(ascii: "q")), .key(UInt8(ascii: "Q")), .key(0x03), .inputClosed:  // 0x03: Ctrl-C without ISIG
                    break events
                case .key(UInt8(ascii: "s")), .key(UInt8(ascii: "S")):
                    view.sort = view.sort.toggled
                case .key:
                    continue events
                case .signal(let signal):
                    // SIGWINCH only redraws at the new size; every other trapped signal quits.
                    guard signal == .sigwinch else { break events }
                case .refreshed(.success(let snapshot)):
                    view.previous = view.current
                    view.current = snapshot
                    view.error = nil
                case .refreshed(.failure(let error)):
                    if Self.endsTheView(error) {
                        failure = error
                        break events
                    }
                    view.error = AdminCommand.describe(error, server: client.server)
                }
                screen.draw(view.lines(fitting: TerminalScreen.size()))
            }
            // A refresh waiting for the server fails at once.
            client.close()
            continuation.finish()
            group.cancelAll()
        }
        screen.restore()
        if let failure {
            StandardStream.printError("Error: " + AdminCommand.describe(failure, server: client.server))
            throw AdminCommand.exitCode(for: failure)
        }
    }

    /// A refused authentication or an ERR reply will not go away by retrying; a lost or refused
    /// connection may.
    private static func endsTheView(_ error: GearmanError) -> Bool {
        switch error.code {
        case .serverError, .authenticationFailed, .protocolViolation, .invalidArgument: true
        default: false
        }
    }

}

/// One round of admin commands, as a `TopSnapshot`.
struct TopFetcher: Sendable {
    let client: GearmanAdminClient
    let server: String
    let timeout: Duration

    func snapshot() async throws(GearmanError) -> TopSnapshot {
        let version = try await client.version(timeout: timeout)
        let status = try await client.status(timeout: timeout)
        let workers = try await client.workers(timeout: timeout)
        return TopSnapshot(
            server: server, version: version, takenAt: .now, clockTime: Self.clockTime(),
            functions: status.map {
                TopSnapshot.Function(name: $0.name, total: $0.total, running: $0.running, workers: $0.availableWorkers)
            },
            connections: workers.count, workerConnections: workers.filter { !$0.functions.isEmpty }.count)
    }

    /// The local time, `HH:MM:SS`.
    static func clockTime() -> String {
        var now = time(nil)
        var parts = tm()
        guard localtime_r(&now, &parts) != nil else { return "" }
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec))"
    }
}
