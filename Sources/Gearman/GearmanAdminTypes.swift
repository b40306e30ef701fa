extension GearmanAdminClient {
    /// One line of the `status` reply: a function's job and worker counts.
    public struct FunctionStatus: Sendable, Hashable {
        /// The function name.
        public var name: String
        /// Jobs the server holds for the function: queued plus running (gearmand also counts
        /// cancelled jobs that have not been reaped yet).
        public var total: Int
        /// Jobs a worker is running now.
        public var running: Int
        /// Connections registered for the function (CAN_DO), busy or not.
        public var availableWorkers: Int

        /// Creates a status line's value.
        public init(name: String, total: Int, running: Int, availableWorkers: Int) {
            self.name = name
            self.total = total
            self.running = running
            self.availableWorkers = availableWorkers
        }
    }

    /// One line of the `prioritystatus` reply: a function's queued (not running) jobs per priority.
    public struct FunctionPriorityStatus: Sendable, Hashable {
        /// The function name.
        public var name: String
        /// Queued HIGH jobs.
        public var high: Int
        /// Queued NORMAL jobs (epoch jobs that are not due yet count here).
        public var normal: Int
        /// Queued LOW jobs.
        public var low: Int
        /// Connections registered for the function.
        public var workers: Int

        /// Creates a priority status line's value.
        public init(name: String, high: Int, normal: Int, low: Int, workers: Int) {
            self.name = name
            self.high = high
            self.normal = normal
            self.low = low
            self.workers = workers
        }
    }

    /// One line of the `workers` reply. The server lists every connection — clients and admin
    /// sessions too, including the admin client's own — not only workers.
    public struct WorkerInfo: Sendable, Hashable {
        /// The connection's number: gearmand's file descriptor, Gearlock's connection id.
        public var connection: Int
        /// The peer's IP address as the server prints it.
        public var address: String
        /// The id the connection set with SET_CLIENT_ID; nil when it set none (`-` on the wire).
        public var clientID: String?
        /// The functions the connection registered, in the server's order (gearmand 1.1 lists the
        /// most recent first).
        public var functions: [String]

        /// Creates a workers line's value.
        public init(connection: Int, address: String, clientID: String?, functions: [String]) {
            self.connection = connection
            self.address = address
            self.clientID = clientID
            self.functions = functions
        }
    }

    /// One line of the `show jobs` reply.
    public struct JobInfo: Sendable, Hashable {
        /// The job handle.
        public var handle: String
        /// How often the job was requeued after its worker was lost.
        public var retries: Int
        /// The job was cancelled or abandoned and waits to be reaped (gearmand's `ignore` flag;
        /// Gearlock removes a cancelled job at once, so it never reports this).
        public var isIgnored: Bool
        /// A background job kept in the server's persistent queue (gearmand's `job_queued` flag;
        /// gearmand clears it when the job is cancelled).
        public var isPersisted: Bool

        /// Creates a show-jobs line's value.
        public init(handle: String, retries: Int, isIgnored: Bool, isPersisted: Bool) {
            self.handle = handle
            self.retries = retries
            self.isIgnored = isIgnored
            self.isPersisted = isPersisted
        }
    }
}

/// Reads the text admin protocol's replies (PROTOCOL.md §b) into typed values, without I/O.
///
/// Every function takes the lines `GearmanConnection.admin` returns — a list's lines without the
/// closing `.`, or a single-line reply — and throws `.serverError` for an `ERR` reply and
/// `.protocolViolation`, naming the line, for anything malformed.
enum AdminReplyParser {
    // MARK: Lists

    /// `<name>\t<total>\t<running>\t<workers>` per function.
    static func status(_ lines: [String]) throws(GearmanError) -> [GearmanAdminClient.FunctionStatus] {
        try list(lines, command: "status") { line throws(GearmanError) in
            let (name, counts) = try tabSeparated(line, counts: 3, command: "status")
            return GearmanAdminClient.FunctionStatus(
                name: name, total: counts[0], running: counts[1], availableWorkers: counts[2])
        }
    }

    /// `<name>\t<high>\t<normal>\t<low>\t<workers>` per function.
    static func priorityStatus(_ lines: [String]) throws(GearmanError) -> [GearmanAdminClient.FunctionPriorityStatus] {
        try list(lines, command: "prioritystatus") { line throws(GearmanError) in
            let (name, counts) = try tabSeparated(line, counts: 4, command: "prioritystatus")
            return GearmanAdminClient.FunctionPriorityStatus(
                name: name, high: counts[0], normal: counts[1], low: counts[2], workers: counts[3])
        }
    }

    /// `<handle>\t<retries>\t<ignore>\t<persisted>` per job.
    static func jobs(_ lines: [String]) throws(GearmanError) -> [GearmanAdminClient.JobInfo] {
        try list(lines, command: "show jobs") { line throws(GearmanError) in
            let (handle, counts) = try tabSeparated(line, counts: 3, command: "show jobs")
            return GearmanAdminClient.JobInfo(
                handle: handle, retries: counts[0], isIgnored: counts[1] != 0, isPersisted: counts[2] != 0)
        }
    }

    /// One unique key per line; an empty line is a job without one.
    static func uniqueJobs(_ lines: [String]) throws(GearmanError) -> [String] {
        try list(lines, command: "show unique jobs") { line in line }
    }

    /// `<number> <address> <client id or -> :` followed by ` <function>` per registered function.
    static func workers(_ lines: [String]) throws(GearmanError) -> [GearmanAdminClient.WorkerInfo] {
        try list(lines, command: "workers") { line throws(GearmanError) in
            // The client id is free text, so the fixed parts are taken from the front, and the
            // functions follow the first token that is a lone ":".
            let fields = line.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false)
            guard fields.count == 3, let number = count(fields[0]), !fields[1].isEmpty else {
                throw malformed(line, command: "workers")
            }
            let tokens = fields[2].split(separator: " ", omittingEmptySubsequences: false)
            guard let colon = tokens.firstIndex(of: ":") else { throw malformed(line, command: "workers") }
            let clientID = tokens[..<colon].joined(separator: " ")
            let functions = tokens[(colon + 1)...]
            guard functions.allSatisfy({ !$0.isEmpty }) else { throw malformed(line, command: "workers") }
            return GearmanAdminClient.WorkerInfo(
                connection: number, address: String(fields[1]),
                clientID: clientID == "-" || clientID.isEmpty ? nil : clientID,
                functions: functions.map(String.init))
        }
    }

    // MARK: Single lines

    /// `OK`, the reply to a command that changes something.
    static func ok(_ lines: [String], command: String) throws(GearmanError) {
        let line = try single(lines, command: command)
        guard line == "OK" else { throw malformed(line, command: command) }
    }

    /// `OK <value>`: the value.
    static func value(_ lines: [String], command: String) throws(GearmanError) -> String {
        let line = try single(lines, command: command)
        guard line.hasPrefix("OK "), line.utf8.count > 3 else { throw malformed(line, command: command) }
        return String(line.dropFirst(3))
    }

    /// `OK <pid>`: the process id.
    static func pid(_ lines: [String]) throws(GearmanError) -> Int {
        let text = try value(lines, command: "getpid")
        guard let pid = count(Substring(text)) else { throw malformed("OK " + text, command: "getpid") }
        return pid
    }

    // MARK: Errors

    /// The error an `ERR <code> <text>` line stands for, or nil for any other line.
    ///
    /// gearmand's codes are upper-case words (`UNKNOWN_JOB`, `UNKNOWN_COMMAND`), but `drop function`
    /// answers with bare prose (`ERR function not found`); then there is no code and the whole
    /// text is the message. A missing text leaves the code as the message.
    static func serverError(_ line: String) -> GearmanError? {
        guard line == "ERR" || line.hasPrefix("ERR ") else { return nil }
        let rest = line.dropFirst(4)
        let parts = rest.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: false)
        let first = parts.first.map(String.init) ?? ""
        let looksLikeCode =
            !first.isEmpty
            && first.unicodeScalars.allSatisfy { ("A"..."Z").contains($0) || ("0"..."9").contains($0) || $0 == "_" }
        guard looksLikeCode else {
            return GearmanError(.serverError, rest.isEmpty ? "the server answered ERR" : String(rest))
        }
        let text = parts.count > 1 ? String(parts[1]) : ""
        return GearmanError(.serverError, text.isEmpty ? first : text, serverCode: first)
    }

    // MARK: Helpers

    private static func list<Element>(
        _ lines: [String], command: String, _ parse: (String) throws(GearmanError) -> Element
    ) throws(GearmanError) -> [Element] {
        // The connection returns a list that begins with ERR as that one line.
        if lines.count == 1, let error = serverError(lines[0]) { throw error }
        var result: [Element] = []
        result.reserveCapacity(lines.count)
        for line in lines {
            result.append(try parse(line))
        }
        return result
    }

    private static func single(_ lines: [String], command: String) throws(GearmanError) -> String {
        guard lines.count == 1 else {
            throw GearmanError(.protocolViolation, "expected one reply line to `\(command)`, got \(lines.count)")
        }
        if let error = serverError(lines[0]) { throw error }
        return lines[0]
    }

    /// Splits `name\tn1\t…\tnK`, taking the K counts from the end so a name with a tab survives.
    private static func tabSeparated(_ line: String, counts: Int, command: String) throws(GearmanError) -> (String, [Int]) {
        let fields = line.split(separator: "\t", omittingEmptySubsequences: false)
        guard fields.count > counts else { throw malformed(line, command: command) }
        var numbers: [Int] = []
        numbers.reserveCapacity(counts)
        for field in fields.suffix(counts) {
            guard let number = count(field) else { throw malformed(line, command: command) }
            numbers.append(number)
        }
        let name = fields.dropLast(counts).joined(separator: "\t")
        guard !name.isEmpty else { throw malformed(line, command: command) }
        return (name, numbers)
    }

    /// A non-negative decimal number: ASCII digits only (no sign, no spaces).
    private static func count(_ text: Substring) -> Int? {
        guard !text.isEmpty, text.utf8.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }) else {
            return nil
        }
        return Int(text)
    }

    private static func malformed(_ line: String, command: String) -> GearmanError {
        GearmanError(.protocolViolation, "malformed reply line to `\(command)`: \(String(reflecting: line))")
    }
}
