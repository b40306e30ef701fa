public import NIOCore

/// A command of the text admin protocol (PROTOCOL.md §b), parsed from one line.
public enum AdminRequest: Sendable, Hashable {
    case workers
    case status
    case priorityStatus
    case showJobs
    case showUniqueJobs
    case cancelJob(handle: String)
    case createFunction(name: String)
    case dropFunction(name: String)
    /// `maxqueue F [n]` or `maxqueue F high normal low`; 0 means unlimited.
    case maxQueue(function: String, limits: MaxQueueLimits)
    case getPID
    case verbose
    case version
    case shutdown(graceful: Bool)
    /// `auth <principal> <secret>`: Gearlock's authentication line (not in gearmand). The secret
    /// must never be logged or echoed.
    case authenticate(principal: String, secret: String)
    /// A line the server answers with an error reply.
    case invalid(AdminRequestError)

    /// Parses one admin line (without its line ending), following gearmand's rules: tokens are
    /// separated by spaces, a leading space makes an empty (unknown) command, and command words
    /// are case-insensitive.
    public init(line: ByteBuffer) {
        self.init(line: String(buffer: line))
    }

    public init(line: String) {
        var tokens = line.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
        if line.hasPrefix(" ") || line.isEmpty {
            tokens.insert("", at: 0)
        }
        let command = tokens[0]
        let arguments = Array(tokens.dropFirst())
        switch command.lowercased() {
        case "workers": self = .workers
        case "status": self = .status
        case "prioritystatus": self = .priorityStatus
        case "show":
            switch arguments.map({ $0.lowercased() }) {
            case []: self = .invalid(.unknownCommand(word: command))
            case ["jobs"]: self = .showJobs
            case ["unique", "jobs"]: self = .showUniqueJobs
            default: self = .invalid(.unknownShowArguments)
            }
        case "cancel":
            if arguments.count < 2 {
                self = .invalid(.unknownCommand(word: command))
            } else if arguments.count == 2 && arguments[0].lowercased() == "job" {
                self = .cancelJob(handle: arguments[1])
            } else {
                self = .invalid(.unknownError)
            }
        case "create":
            if arguments.count == 2 && arguments[0].lowercased() == "function" {
                self = .createFunction(name: arguments[1])
            } else {
                self = .invalid(.invalidArguments(command: command))
            }
        case "drop":
            if arguments.count == 2 && arguments[0].lowercased() == "function" {
                self = .dropFunction(name: arguments[1])
            } else {
                self = .invalid(.invalidArguments(command: command))
            }
        case "maxqueue":
            // As gearmand: one number sets all three priorities, two set HIGH and NORMAL (LOW stays
            // unlimited), numbers past the third are ignored; a number is read like atoi, and a
            // negative one means unlimited.
            guard let function = arguments.first else {
                self = .invalid(.invalidArguments(command: command))
                return
            }
            let numbers = arguments.dropFirst().prefix(3).map(DecimalText.leadingInteger).map { max(0, $0) }
            switch numbers.count {
            case 0: self = .maxQueue(function: function, limits: .unlimited)
            case 1: self = .maxQueue(function: function, limits: MaxQueueLimits(all: numbers[0]))
            case 2: self = .maxQueue(function: function, limits: MaxQueueLimits(high: numbers[0], normal: numbers[1], low: 0))
            default:
                self = .maxQueue(
                    function: function, limits: MaxQueueLimits(high: numbers[0], normal: numbers[1], low: numbers[2]))
            }
        case "getpid": self = .getPID
        case "verbose": self = .verbose
        case "version": self = .version
        case "shutdown":
            switch arguments.map({ $0.lowercased() }) {
            case []: self = .shutdown(graceful: false)
            case ["graceful"]: self = .shutdown(graceful: true)
            default: self = .invalid(.invalidArguments(command: command))
            }
        case "auth":
            if arguments.count == 2 {
                self = .authenticate(principal: arguments[0], secret: arguments[1])
            } else {
                self = .invalid(.invalidArguments(command: command))
            }
        default:
            self = .invalid(.unknownCommand(word: command))
        }
    }
}

/// Why an admin line is answered with an error.
public enum AdminRequestError: Sendable, Hashable {
    /// `ERR UNKNOWN_COMMAND Unknown+server+command<word>`
    case unknownCommand(word: String)
    /// `ERR INVALID_ARGUMENTS An+incomplete+set+of+arguments+was+sent+to+this+command+<command>`
    case invalidArguments(command: String)
    /// `ERR UNKNOWN_SHOW_ARGUMENTS`
    case unknownShowArguments
    /// `ERR UNKNOWN_ERROR`
    case unknownError

    /// The reply line, with gearmand's CRLF ending.
    public var reply: String {
        switch self {
        case .unknownCommand(let word): AdminReply.error("UNKNOWN_COMMAND", "Unknown+server+command" + word)
        case .invalidArguments(let command):
            AdminReply.error("INVALID_ARGUMENTS", "An+incomplete+set+of+arguments+was+sent+to+this+command+" + command)
        case .unknownShowArguments: AdminReply.error("UNKNOWN_SHOW_ARGUMENTS")
        case .unknownError: AdminReply.error("UNKNOWN_ERROR")
        }
    }
}

/// Per-priority queue limits for a function; 0 means unlimited.
public struct MaxQueueLimits: Sendable, Hashable {
    public var high: Int
    public var normal: Int
    public var low: Int

    public init(high: Int, normal: Int, low: Int) {
        self.high = high
        self.normal = normal
        self.low = low
    }

    public init(all: Int) {
        self.init(high: all, normal: all, low: all)
    }

    public static let unlimited = MaxQueueLimits(all: 0)

    public subscript(priority: JobPriority) -> Int {
        switch priority {
        case .high: high
        case .normal: normal
        case .low: low
        }
    }
}

/// The admin protocol's reply shapes, with gearmand's (inconsistent) line endings.
public enum AdminReply {
    /// `OK\r\n`
    public static let ok = "OK\r\n"
    /// `.\n`, the end of a list reply.
    public static let endOfList = ".\n"

    /// `OK <value>\n`
    public static func ok(_ value: String) -> String { "OK \(value)\n" }

    /// `ERR <code>[ <text>]\r\n`
    public static func error(_ code: String, _ text: String? = nil) -> String {
        if let text { "ERR \(code) \(text)\r\n" } else { "ERR \(code)\r\n" }
    }
}
