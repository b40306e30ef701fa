import GearmanProtocol

/// A job handle and the server that issued it (handles are only meaningful to their server).
public struct GearmanJobHandle: Sendable, Hashable, CustomStringConvertible {
    public var handle: String
    public var server: GearmanServerAddress

    public init(handle: String, server: GearmanServerAddress) {
        self.handle = handle
        self.server = server
    }

    public var description: String { handle }
}

/// What GET_STATUS or GET_STATUS_UNIQUE reports about a job.
public struct GearmanJobStatus: Sendable, Hashable {
    /// The server knows the job (it is queued or running).
    public var isKnown: Bool
    public var isRunning: Bool
    /// The last WORK_STATUS numerator and denominator (0/0 before any).
    public var numerator: Int
    public var denominator: Int
    /// Foreground clients waiting on the job (GET_STATUS_UNIQUE only; nil for GET_STATUS).
    public var waitingClients: Int?

    public init(isKnown: Bool, isRunning: Bool, numerator: Int, denominator: Int, waitingClients: Int? = nil) {
        self.isKnown = isKnown
        self.isRunning = isRunning
        self.numerator = numerator
        self.denominator = denominator
        self.waitingClients = waitingClients
    }
}

/// A submission, as the client resends it after losing a server.
struct JobSubmission: Sendable {
    var function: String
    var unique: String
    var payload: ByteBuffer
    var priority: JobPriority
    var background: Bool
    var epoch: Int64?
    var reducer: String?

    var packet: GearmanPacket {
        let function = ByteBuffer(string: self.function)
        let unique = ByteBuffer(string: self.unique)
        if let reducer {
            return .submitReduceJob(
                function: function, unique: unique, reducer: ByteBuffer(string: reducer), aggregator: ByteBuffer(),
                payload: payload, background: background)
        }
        if let epoch {
            return .submitJobEpoch(
                function: function, unique: unique, epoch: ByteBuffer(string: String(epoch)), payload: payload)
        }
        return .submitJob(function: function, unique: unique, payload: payload, priority: priority, background: background)
    }

    /// What the server coalesces this job on, if anything.
    var jobKey: JobKey? {
        JobKey(function: ByteBuffer(string: function), unique: ByteBuffer(string: unique), payload: payload)
    }

    func validate() throws(GearmanError) {
        for (name, value) in [("function", function), ("unique", unique), ("reducer", reducer ?? "")]
        where value.utf8.contains(0) {
            throw GearmanError(.invalidArgument, "the \(name) must not contain a NUL byte")
        }
        guard !function.isEmpty else { throw GearmanError(.invalidArgument, "the function name is empty") }
        guard unique.utf8.count <= 64 else {
            throw GearmanError(.invalidArgument, "the unique is \(unique.utf8.count) bytes; the limit is 64")
        }
    }
}

import NIOCore
