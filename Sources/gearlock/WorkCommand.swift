import ArgumentParser
import GearlockSpawn
import Gearman
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import UnixSignals

struct WorkCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "work",
        abstract: "Run a command as the worker for one or more functions, like `gearman -w`.",
        discussion: """
            For every job, COMMAND runs with ARGS (no shell): the job's payload is its stdin and its \
            stdout is the result. A command that exits with a non-zero status fails the job \
            (WORK_FAIL); what it printed so far is sent to the client as WORK_DATA first, and its \
            stderr goes to this process's stderr.

            SIGTERM or SIGINT stop the worker gracefully: it takes no new jobs, lets the commands \
            in hand finish, sends their results and exits 0. So does reaching --count.
            """
    )

    @OptionGroup var connection: ConnectionOptionGroup

    @Option(name: [.customShort("f"), .customLong("function")], help: "Function to work for (repeatable).")
    var functions: [String] = []

    @Option(name: [.customShort("c"), .customLong("count")], help: "Exit after this many jobs.")
    var count: Int?

    @Option(help: "Jobs run at the same time.")
    var concurrency: Int = 1

    @Option(help: "Seconds a job's command may run; it is then killed (SIGKILL) and the job fails.")
    var timeout: Double?

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: Logger.Level = .info

    @Argument(parsing: .postTerminator, help: "-- COMMAND [ARGS…]: the program to run for each job.")
    var command: [String] = []

    func validate() throws {
        guard !functions.isEmpty else { throw ValidationError("give at least one function with -f") }
        for function in functions where function.isEmpty || function.utf8.contains(0) {
            throw ValidationError("-f: a function name must be non-empty and contain no NUL byte")
        }
        guard let program = command.first else {
            throw ValidationError("give the command to run after --, e.g. `gearlock work -f rev -- rev`")
        }
        guard SpawnedProcess.canFind(program) else {
            throw ValidationError("\(program): no such executable (searched PATH)")
        }
        if let count, count < 1 { throw ValidationError("--count must be 1 or more") }
        guard concurrency >= 1 else { throw ValidationError("--concurrency must be 1 or more") }
        if let timeout, !(timeout > 0) { throw ValidationError("--timeout must be positive") }
    }

    func run() async throws {
        var logger = Logger(label: "gearlock.work", factory: { StreamLogHandler.standardError(label: $0) })
        logger.logLevel = logLevel

        let threadPool = NIOThreadPool(numberOfThreads: concurrency)
        threadPool.start()
        let runner = CommandRunner(
            command: command, timeout: timeout.map { .milliseconds(Int64($0 * 1000)) },
            eventLoopGroup: MultiThreadedEventLoopGroup.singleton, threadPool: threadPool)
        let worker = GearmanWorker(
            configuration: .init(connection: try connection.connectionOptions(), concurrency: concurrency), logger: logger)
        let budget = count.map(JobBudget.init(jobs:))
        for function in functions {
            worker.register(function: function) { job in
                await budget?.jobStarted()
                let outcome = try await runner.run(input: job.payload)
                guard outcome.termination == .exited(0) else {
                    // As `gearman -w` does: the client gets what the command printed before failing.
                    if outcome.output.readableBytes > 0 { job.sendData(outcome.output) }
                    throw CommandFailure(program: runner.command[0], termination: outcome.termination)
                }
                return outcome.output
            }
        }

        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [
            .init(service: worker, successTerminationBehavior: .gracefullyShutdownGroup)
        ]
        if let budget {
            services.append(.init(service: budget, successTerminationBehavior: .gracefullyShutdownGroup))
        }
        let group = ServiceGroup(
            configuration: .init(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        do {
            try await group.run()
        } catch {
            try? await threadPool.shutdownGracefully()
            throw error
        }
        try await threadPool.shutdownGracefully()
    }
}

/// Why a job failed: its command did not exit with status 0. Logged by the worker.
struct CommandFailure: Error, CustomStringConvertible {
    var program: String
    var termination: CommandRunner.Termination

    var description: String { "\(program) \(termination)" }
}
