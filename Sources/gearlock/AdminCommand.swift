import ArgumentParser
import Gearman

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// `gearlock admin`: the text admin protocol as readable tables.
struct AdminCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "admin",
        abstract: "Inspect and manage a job server with the admin protocol.",
        discussion: """
            Talks to one server: the first --server (default 127.0.0.1:4730); further --server \
            options are ignored. Works with Gearlock and with gearmand (which has no `shutdown`). \
            Lists are printed as aligned tables with a header row; --raw prints the server's own \
            reply text instead. The options go before or after the subcommand: \
            gearlock admin --server HOST:PORT status.

            Exit status: 0 on success; 1 when the server answered with an error (ERR, printed to \
            stderr); 64 for a usage error; 69 when the server could not be reached or did not answer \
            in time; 76 when its reply was malformed; 77 when it refused the credentials (--principal \
            with --secret-file, $GEARLOCK_SECRET or --secret), which are sent before the command.
            """,
        subcommands: [
            Status.self, PriorityStatus.self, Workers.self, Jobs.self, UniqueJobs.self, Cancel.self,
            CreateFunction.self, Drop.self, MaxQueue.self, Version.self, GetPID.self, Verbose.self, Shutdown.self,
        ]
    )

    @OptionGroup var connection: ConnectionOptionGroup

    @Flag(help: "Print the server's reply text as it is instead of a table.")
    var raw = false

    @Option(help: "Seconds to wait for the server's reply.")
    var timeout: Double = 10

    func validate() throws {
        guard timeout > 0 else { throw ValidationError("--timeout must be positive") }
    }

    /// Exit statuses besides 0 and ArgumentParser's 64 for usage errors.
    enum Exit {
        /// The server answered `ERR …`.
        static let serverError = ExitCode(1)
        /// sysexits' EX_UNAVAILABLE: no connection, lost connection, or no reply in time.
        static let unavailable = ExitCode(69)
        /// sysexits' EX_PROTOCOL: the reply did not have the command's format.
        static let protocolError = ExitCode(76)
        /// sysexits' EX_NOPERM: the server refused the credentials (or does not support them).
        static let authenticationFailed = ExitCode(77)
    }

    /// Sends `line` (or, without --raw, runs `typed`) against the first server and prints the
    /// result; failures go to stderr and become the documented exit status.
    func execute(
        line: String, list: Bool,
        _ typed: (GearmanAdminClient, Duration) async throws(GearmanError) -> String
    ) async throws {
        let options = try connection.connectionOptions()
        let server = options.servers[0]
        let client = GearmanAdminClient(server: server, options: options)
        defer { client.close() }
        let timeout = Duration.milliseconds(Int64(self.timeout * 1000))
        do {
            if raw {
                let lines = try await client.raw(line, list: list, timeout: timeout)
                // A list answered with ERR arrives as that single line.
                if lines.count == 1, lines[0] == "ERR" || lines[0].hasPrefix("ERR ") {
                    StandardStream.printError(lines[0])
                    throw Exit.serverError
                }
                // The reply's lines as the server sent them, each ending in \n (gearmand ends some in \r\n).
                print((lines + (list ? ["."] : [])).joined(separator: "\n"))
            } else {
                print(try await typed(client, timeout), terminator: "")
            }
        } catch let error as GearmanError {
            StandardStream.printError("Error: " + Self.describe(error, server: server))
            throw Self.exitCode(for: error)
        }
    }

    static func describe(_ error: GearmanError, server: GearmanServerAddress) -> String {
        if error.code == .serverError {
            var reply = "ERR"
            if let code = error.serverCode { reply += " " + code }
            if error.message != error.serverCode { reply += " " + error.message }
            return "\(server) answered \(reply)"
        }
        let serverName = error.server ?? server.description
        return error.message.contains(serverName) ? error.message : "\(error.message) (server \(serverName))"
    }

    static func exitCode(for error: GearmanError) -> ExitCode {
        switch error.code {
        case .serverError: Exit.serverError
        case .protocolViolation: Exit.protocolError
        case .authenticationFailed: Exit.authenticationFailed
        case .invalidArgument: .validationFailure
        default: Exit.unavailable
        }
    }

    /// Function names and job handles travel as one token of a text line.
    static func validateToken(_ value: String, _ what: String) throws {
        guard !value.isEmpty else { throw ValidationError("the \(what) is empty") }
        if value.unicodeScalars.contains(where: { $0 == " " || $0.value < 0x20 || $0.value == 0x7F }) {
            throw ValidationError("the \(what) must not contain spaces or control characters")
        }
    }
}

// MARK: Lists

extension AdminCommand {
    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List functions with their jobs (queued + running), running jobs and workers (`status`).")

        @ParentCommand var admin: AdminCommand

        func run() async throws {
            try await admin.execute(line: "status", list: true) { client, timeout throws(GearmanError) in
                var table = TableRenderer(columns: [
                    .init("FUNCTION"), .init("TOTAL", .right), .init("RUNNING", .right), .init("WORKERS", .right),
                ])
                for function in try await client.status(timeout: timeout).sorted(by: { $0.name < $1.name }) {
                    table.append([
                        function.name, String(function.total), String(function.running),
                        String(function.availableWorkers),
                    ])
                }
                return table.render()
            }
        }
    }

    struct PriorityStatus: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "priority-status",
            abstract: "List functions with their queued jobs per priority and their workers (`prioritystatus`).")

        @ParentCommand var admin: AdminCommand

        func run() async throws {
            try await admin.execute(line: "prioritystatus", list: true) { client, timeout throws(GearmanError) in
                var table = TableRenderer(columns: [
                    .init("FUNCTION"), .init("HIGH", .right), .init("NORMAL", .right), .init("LOW", .right),
                    .init("WORKERS", .right),
                ])
                for function in try await client.priorityStatus(timeout: timeout).sorted(by: { $0.name < $1.name }) {
                    table.append([
                        function.name, String(function.high), String(function.normal), String(function.low),
                        String(function.workers),
                    ])
                }
                return table.render()
            }
        }
    }

    struct Workers: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List connections (workers, clients, admin sessions) and their functions (`workers`).")

        @ParentCommand var admin: AdminCommand

        func run() async throws {
            try await admin.execute(line: "workers", list: true) { client, timeout throws(GearmanError) in
                var table = TableRenderer(columns: [
                    .init("CONNECTION", .right), .init("ADDRESS"), .init("CLIENT-ID"), .init("FUNCTIONS"),
                ])
                for worker in try await client.workers(timeout: timeout).sorted(by: { $0.connection < $1.connection }) {
                    table.append([
                        String(worker.connection), worker.address, worker.clientID ?? "-",
                        worker.functions.joined(separator: " "),
                    ])
                }
                return table.render()
            }
        }
    }

    struct Jobs: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List the jobs the server holds, in the server's order (`show jobs`).",
            discussion: """
                IGNORED: cancelled or abandoned, waiting to be reaped (gearmand). PERSISTED: a \
                background job in the persistent queue.
                """)

        @ParentCommand var admin: AdminCommand

        func run() async throws {
            try await admin.execute(line: "show jobs", list: true) { client, timeout throws(GearmanError) in
                var table = TableRenderer(columns: [
                    .init("HANDLE"), .init("RETRIES", .right), .init("IGNORED"), .init("PERSISTED"),
                ])
                for job in try await client.jobs(timeout: timeout) {
                    table.append([
                        job.handle, String(job.retries), job.isIgnored ? "yes" : "no", job.isPersisted ? "yes" : "no",
                    ])
                }
                return table.render()
            }
        }
    }

    struct UniqueJobs: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "unique-jobs",
            abstract: "List the unique keys of the jobs the server holds (`show unique jobs`).",
            discussion: "A job without a unique key is shown as (none).")

        @ParentCommand var admin: AdminCommand

        func run() async throws {
            try await admin.execute(line: "show unique jobs", list: true) { client, timeout throws(GearmanError) in
                var table = TableRenderer(columns: [.init("UNIQUE")])
                for unique in try await client.uniqueJobs(timeout: timeout) {
                    table.append([unique.isEmpty ? "(none)" : unique])
                }
                return table.render()
            }
        }
    }
}

// MARK: Changes

extension AdminCommand {
    struct Cancel: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Cancel a job: its waiting clients get WORK_FAIL (`cancel job`).")

        @ParentCommand var admin: AdminCommand

        @Argument(help: "The job handle, as `gearlock admin jobs` shows it.")
        var handle: String

        func validate() throws { try AdminCommand.validateToken(handle, "job handle") }

        func run() async throws {
            try await admin.execute(line: "cancel job \(handle)", list: false) { client, timeout throws(GearmanError) in
                try await client.cancelJob(handle, timeout: timeout)
                return "OK\n"
            }
        }
    }

    struct CreateFunction: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "create-function", abstract: "Make a function known before any worker registers it.")

        @ParentCommand var admin: AdminCommand

        @Argument(help: "The function name.")
        var function: String

        func validate() throws { try AdminCommand.validateToken(function, "function name") }

        func run() async throws {
            try await admin.execute(line: "create function \(function)", list: false) { client, timeout throws(GearmanError) in
                try await client.createFunction(function, timeout: timeout)
                return "OK\n"
            }
        }
    }

    struct Drop: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "drop", abstract: "Forget a function that has no workers (`drop function`).",
            aliases: ["drop-function"])

        @ParentCommand var admin: AdminCommand

        @Argument(help: "The function name (matched case-insensitively).")
        var function: String

        func validate() throws { try AdminCommand.validateToken(function, "function name") }

        func run() async throws {
            try await admin.execute(line: "drop function \(function)", list: false) { client, timeout throws(GearmanError) in
                try await client.dropFunction(function, timeout: timeout)
                return "OK\n"
            }
        }
    }

    struct MaxQueue: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "maxqueue",
            abstract: "Limit a function's jobs: maxqueue F N, or maxqueue F HIGH NORMAL LOW per priority.",
            discussion: """
                A new job is refused (QUEUE_ERROR) when the function already holds as many jobs \
                (queued and running, all priorities) as the limit for the new job's priority. 0 means \
                unlimited. gearmand ignores a limit for a function it does not know yet; create it first.
                """)

        @ParentCommand var admin: AdminCommand

        @Argument(help: "The function name.")
        var function: String

        @Argument(help: "One limit for every priority, or three: HIGH NORMAL LOW.")
        var limits: [Int]

        func validate() throws {
            try AdminCommand.validateToken(function, "function name")
            guard limits.count == 1 || limits.count == 3 else {
                throw ValidationError("give one limit, or three (HIGH NORMAL LOW); got \(limits.count)")
            }
            guard limits.allSatisfy({ $0 >= 0 }) else { throw ValidationError("a limit must be 0 (unlimited) or more") }
        }

        func run() async throws {
            let line = (["maxqueue", function] + limits.map(String.init)).joined(separator: " ")
            try await admin.execute(line: line, list: false) { client, timeout throws(GearmanError) in
                if limits.count == 3 {
                    try await client.setMaxQueue(
                        function: function, high: limits[0], normal: limits[1], low: limits[2], timeout: timeout)
                } else {
                    try await client.setMaxQueue(function: function, limit: limits[0], timeout: timeout)
                }
                return "OK\n"
            }
        }
    }

    struct Shutdown: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Stop the server (Gearlock only; gearmand answers UNKNOWN_COMMAND).")

        @ParentCommand var admin: AdminCommand

        @Flag(help: "Let running jobs finish first.")
        var graceful = false

        func run() async throws {
            try await admin.execute(line: graceful ? "shutdown graceful" : "shutdown", list: false) {
                client, timeout throws(GearmanError) in
                try await client.shutdown(graceful: graceful, timeout: timeout)
                return "OK\n"
            }
        }
    }
}

// MARK: Single values

extension AdminCommand {
    struct Version: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the server's version.")

        @ParentCommand var admin: AdminCommand

        func run() async throws {
            try await admin.execute(line: "version", list: false) { client, timeout throws(GearmanError) in
                try await client.version(timeout: timeout) + "\n"
            }
        }
    }

    struct GetPID: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "getpid", abstract: "Print the server's process id.")

        @ParentCommand var admin: AdminCommand

        func run() async throws {
            try await admin.execute(line: "getpid", list: false) { client, timeout throws(GearmanError) in
                String(try await client.pid(timeout: timeout)) + "\n"
            }
        }
    }

    struct Verbose: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the server's log level.")

        @ParentCommand var admin: AdminCommand

        func run() async throws {
            try await admin.execute(line: "verbose", list: false) { client, timeout throws(GearmanError) in
                try await client.verbose(timeout: timeout) + "\n"
            }
        }
    }
}
