import GearlockSpawn
import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Runs a job's command: the payload goes to its stdin while its stdout is collected.
///
/// Both pipes are NIO channels, so writing a 64 MiB payload and reading a 64 MiB result happen
/// at the same time on event loops without blocking them; only the wait for the exit status
/// takes a thread, from `threadPool`.
struct CommandRunner: Sendable {
    /// How a run ended.
    enum Termination: Sendable, Hashable, CustomStringConvertible {
        case exited(Int32)
        case signalled(Int32)
        /// Killed (SIGKILL, with its process group) after running longer than the timeout.
        case timedOut(Duration)

        var description: String {
            switch self {
            case .exited(let code): "exited with status \(code)"
            case .signalled(let signal): "was killed by signal \(signal)"
            case .timedOut(let timeout): "was killed after running longer than \(timeout)"
            }
        }
    }

    struct Outcome: Sendable {
        var termination: Termination
        /// Everything the command wrote to stdout.
        var output: ByteBuffer
    }

    /// The program (looked up in PATH unless it contains a slash) and its arguments.
    var command: [String]
    /// How long one run may take; nil is no limit.
    var timeout: Duration?
    var eventLoopGroup: any EventLoopGroup
    /// Threads that wait for exit statuses, one per run in progress.
    var threadPool: NIOThreadPool

    func run(input: ByteBuffer) async throws -> Outcome {
        // Stderr is ours, and the command gets a process group of its own: a Ctrl-C meant for
        // `gearlock work` (which then finishes the jobs in hand) must not kill it.
        let process = try SpawnedProcess.spawn(
            .init(arguments: command, standardInput: .pipe, standardOutput: .pipe, standardError: .inherited, processGroup: .new))
        // From here on, every path must reap the child.
        let (standardInput, standardOutput) = (process.standardInput!, process.standardOutput!)
        let outputChannel: any Channel
        let output: EventLoopFuture<ByteBuffer>
        let inputChannel: any Channel
        do {
            (outputChannel, output) = try await collect(from: standardOutput)
        } catch {
            close(standardOutput)
            close(standardInput)
            _ = try? await abandon(process)
            throw error
        }
        do {
            inputChannel = try await NIOPipeBootstrap(group: eventLoopGroup)
                .takingOwnershipOfDescriptor(output: standardInput).get()
        } catch {
            close(standardInput)
            outputChannel.close(promise: nil)
            _ = try? await abandon(process)
            throw error
        }
        // A command that exits without reading its input makes this write fail (EPIPE): not an error.
        inputChannel.writeAndFlush(input).whenComplete { _ in inputChannel.close(promise: nil) }

        let timer = timeout.map { timeout in
            eventLoopGroup.any().scheduleTask(in: TimeAmount(timeout)) {
                process.sendSignalToProcessGroup(SIGKILL)
                // Something that left the process group may hold stdout; the job has failed anyway.
                outputChannel.close(promise: nil)
            }
        }
        return try await withTaskCancellationHandler {
            let exit = try await waitForExit(of: process)
            // Whatever the command left behind may hold its stdin without reading: stop writing.
            inputChannel.close(promise: nil)
            var termination: Termination
            switch exit {
            case .exited(let code): termination = .exited(code)
            case .signalled(let signal): termination = .signalled(signal)
            }
            if let timer, let timeout {
                timer.cancel()
                if (try? await timer.futureResult.get()) != nil {
                    termination = .timedOut(timeout)
                }
            }
            // Read to EOF: the result is complete only once everyone holding the pipe closed it.
            return Outcome(termination: termination, output: try await output.get())
        } onCancel: {
            process.sendSignalToProcessGroup(SIGKILL)
            inputChannel.close(promise: nil)
            outputChannel.close(promise: nil)
        }
    }

    /// A channel reading `descriptor` (taking ownership of it) and the future of everything read.
    private func collect(from descriptor: CInt) async throws -> (any Channel, EventLoopFuture<ByteBuffer>) {
        try await NIOPipeBootstrap(group: eventLoopGroup).takingOwnershipOfDescriptor(input: descriptor) { channel in
            channel.eventLoop.makeCompletedFuture {
                let collector = OutputCollector(promise: channel.eventLoop.makePromise())
                try channel.pipeline.syncOperations.addHandler(collector)
                return (channel, collector.promise.futureResult)
            }
        }
    }

    /// Waits for `process` to exit and reaps it, blocking a thread of `threadPool` (never an event
    /// loop or a thread of Swift's cooperative pool) while it runs.
    private func waitForExit(of process: SpawnedProcess) async throws -> SpawnedProcess.ExitStatus {
        try await threadPool.runIfActive { try process.blockingWaitForExit() }
    }

    /// Kills and reaps a child whose pipes could not be set up.
    private func abandon(_ process: SpawnedProcess) async throws {
        process.sendSignalToProcessGroup(SIGKILL)
        _ = try await waitForExit(of: process)
    }
}

/// Gathers everything a pipe delivers until EOF.
private final class OutputCollector: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    let promise: EventLoopPromise<ByteBuffer>
    private var collected: ByteBuffer?
    private var isDone = false

    init(promise: EventLoopPromise<ByteBuffer>) {
        self.promise = promise
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var chunk = unwrapInboundIn(data)
        if collected == nil {
            collected = chunk
        } else {
            collected!.writeBuffer(&chunk)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        finish(.success(collected ?? ByteBuffer()))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        finish(.failure(error))
        context.close(promise: nil)
    }

    private func finish(_ result: Result<ByteBuffer, any Error>) {
        guard !isDone else { return }
        isDone = true
        promise.completeWith(result)
    }
}
