import ArgumentParser
import Gearman
import GearmanProtocol
import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

struct SubmitCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "submit",
        abstract: "Submit a job, like the `gearman` client.",
        discussion: """
            The payload is DATA, or else all of stdin (bytes as they are, no newline removed).

            A foreground job prints its intermediate data (WORK_DATA) and then its result to stdout, \
            byte for byte with nothing added; when stderr is a terminal, progress (WORK_STATUS, as \
            n/d) and warnings go there. Exit status: 0 when the job completed, 1 when it failed, \
            raised an exception (printed to stderr), timed out or no server took it.

            A background job (--background or --epoch) prints its job handle and a newline once the \
            server has accepted it.
            """
    )

    /// `--high` / `--low`; neither is normal priority.
    enum Priority: String, EnumerableFlag {
        case high, low

        static func help(for value: Priority) -> ArgumentHelp? {
            switch value {
            case .high: "Submit at high priority."
            case .low: "Submit at low priority."
            }
        }
    }

    @OptionGroup var connection: ConnectionOptionGroup

    @Option(name: [.customShort("f"), .customLong("function")], help: "The function to run.")
    var function: String

    @Flag(name: [.customShort("b"), .long], help: "Submit in the background: print the job handle, don't wait.")
    var background = false

    @Flag var priority: Priority?

    @Option(name: [.customShort("u"), .long], help: "Unique key: jobs with the same function and key run once (at most 64 bytes).")
    var unique: String?

    @Option(help: "Seconds to wait in all (for the result, or in the background for the server's acknowledgement).")
    var timeout: Double?

    @Option(help: "Run the job at this time, in seconds since 1970 (SUBMIT_JOB_EPOCH); implies --background.")
    var epoch: Int64?

    @Argument(help: "The payload (default: all of stdin).")
    var data: String?

    func validate() throws {
        guard !function.isEmpty, !function.utf8.contains(0) else {
            throw ValidationError("-f: the function name must be non-empty and contain no NUL byte")
        }
        if let unique {
            guard unique.utf8.count <= 64, !unique.utf8.contains(0) else {
                throw ValidationError("--unique: at most 64 bytes and no NUL byte")
            }
        }
        if let timeout, !(timeout > 0) { throw ValidationError("--timeout must be positive") }
        if let epoch {
            guard epoch >= 0 else { throw ValidationError("--epoch must not be negative") }
            guard priority == nil else {
                throw ValidationError("--epoch jobs have no priority (SUBMIT_JOB_EPOCH carries none); drop --\(priority!.rawValue)")
            }
        }
    }

    private var jobPriority: JobPriority {
        switch priority {
        case .high: .high
        case .low: .low
        case nil: .normal
        }
    }

    func run() async throws {
        let payload = if let data { ByteBuffer(string: data) } else { try await StandardStream.readStandardInput() }
        let client = GearmanClient(configuration: .init(connection: try connection.connectionOptions()))
        defer { client.shutdown() }
        let timeout = self.timeout.map { Duration.milliseconds(Int64($0 * 1000)) }
        do {
            if background || epoch != nil {
                let handle: GearmanJobHandle
                if let epoch {
                    handle = try await client.submitBackground(
                        function: function, payload: payload, unique: unique, runAt: epoch, timeout: timeout)
                } else {
                    handle = try await client.submitBackground(
                        function: function, payload: payload, unique: unique, priority: jobPriority, timeout: timeout)
                }
                try await StandardStream.writeAll(handle.handle + "\n", to: STDOUT_FILENO)
            } else {
                let job = try await client.submitJob(
                    function: function, payload: payload, unique: unique, priority: jobPriority, timeout: timeout)
                try await follow(job)
            }
        } catch let error as GearmanError {
            try await StandardStream.writeAll(Self.explain(error, timeout: self.timeout), to: STDERR_FILENO)
            throw ExitCode.failure
        }
    }

    /// Streams a foreground job's data and result to stdout, and its progress to a terminal.
    private func follow(_ job: GearmanForegroundJob) async throws {
        let showProgress = StandardStream.isTerminal(STDERR_FILENO)
        for try await event in job.events {
            switch event {
            case .data(let chunk):
                try await StandardStream.writeAll(chunk, to: STDOUT_FILENO)
            case .completed(let result):
                try await StandardStream.writeAll(result, to: STDOUT_FILENO)
            case .status(let numerator, let denominator):
                if showProgress {
                    try await StandardStream.writeAll("\(numerator)/\(denominator)\n", to: STDERR_FILENO)
                }
            case .warning(let warning):
                if showProgress {
                    try await StandardStream.writeAll(Self.line("warning: ", warning), to: STDERR_FILENO)
                }
            }
        }
    }

    /// What to print on stderr for an error (an exception's payload as the worker sent it).
    static func explain(_ error: GearmanError, timeout: Double?) -> ByteBuffer {
        let job = error.jobHandle.map { " (\($0))" } ?? ""
        switch error.code {
        case .jobFailed:
            return ByteBuffer(string: "gearlock: job failed\(job)\n")
        case .jobException:
            return line("gearlock: job failed with an exception\(job): ", error.payload ?? ByteBuffer())
        case .timeout:
            let seconds = timeout.map { " within \($0) s" } ?? ""
            return ByteBuffer(string: "gearlock: no result\(seconds)\(job)\n")
        default:
            let server = error.server.map { " [\($0)]" } ?? ""
            return ByteBuffer(string: "gearlock: \(error.message)\(server)\n")
        }
    }

    /// `prefix` and `text`, ending in exactly one newline.
    private static func line(_ prefix: String, _ text: ByteBuffer) -> ByteBuffer {
        var buffer = ByteBuffer(string: prefix)
        var text = text
        buffer.writeBuffer(&text)
        if buffer.readableBytesView.last != UInt8(ascii: "\n") { buffer.writeString("\n") }
        return buffer
    }
}
