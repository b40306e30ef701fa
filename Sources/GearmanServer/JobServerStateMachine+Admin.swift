import GearmanProtocol
import OrderedCollections
import NIOCore

extension JobServerStateMachine {
    /// One line of the text admin protocol, answered in gearmand's exact formats.
    mutating func textReceived(_ line: ByteBuffer, from id: ConnectionID) {
        guard connections[id] != nil else { preconditionFailure("text from unknown connection \(id)") }
        switch AdminRequest(line: line) {
        case .workers: sendText(workersReply(), to: id)
        case .status: sendText(statusReply(), to: id)
        case .priorityStatus: sendText(priorityStatusReply(), to: id)
        case .showJobs: sendText(showJobsReply(), to: id)
        case .showUniqueJobs: sendText(showUniqueJobsReply(), to: id)
        case .cancelJob(let handle): sendText(cancelJob(ByteBuffer(string: handle)), to: id)
        case .createFunction(let name):
            _ = ensureFunction(ByteBuffer(string: name))
            sendText(AdminReply.ok, to: id)
        case .dropFunction(let name): sendText(dropFunction(name), to: id)
        case .maxQueue(let name, let limits):
            // Unlike gearmand, a limit for a function not seen yet is kept, not silently dropped.
            let function = existingFunction(named: name) ?? ensureFunction(ByteBuffer(string: name))
            functions[function]!.maxQueue = limits
            sendText(AdminReply.ok, to: id)
        case .getPID: sendText(AdminReply.ok(String(configuration.processID)), to: id)
        case .verbose: sendText(AdminReply.ok(configuration.verboseLevel), to: id)
        case .version: sendText(AdminReply.ok(configuration.version), to: id)
        case .shutdown(let graceful):
            sendText(AdminReply.ok, to: id)
            actions.append(.shutdown(graceful: graceful))
        case .invalid(let error): sendText(error.reply, to: id)
        }
    }

    private func existingFunction(named name: String) -> ByteBuffer? {
        let exact = ByteBuffer(string: name)
        return functions.index(forKey: exact) != nil ? exact : nil
    }

    private func workersReply() -> String {
        var reply = ""
        for id in connections.keys.sorted() {
            let connection = connections[id]!
            let clientID = connection.clientID.map { String(buffer: $0) } ?? "-"
            reply += "\(id) \(connection.peerAddress) \(clientID.isEmpty ? "-" : clientID) :"
            for ability in connection.abilities {
                reply += " " + String(buffer: ability.function)
            }
            reply += "\n"
        }
        return reply + AdminReply.endOfList
    }

    private func statusReply() -> String {
        var reply = ""
        for state in functions.values {
            reply += "\(String(buffer: state.name))\t\(state.totalCount)\t\(state.runningCount)\t\(state.workers.count)\n"
        }
        return reply + AdminReply.endOfList
    }

    private func priorityStatusReply() -> String {
        var reply = ""
        for state in functions.values {
            let counts = state.queuedCounts
            // Epoch jobs that are not due yet are NORMAL jobs waiting in the queue, as in gearmand.
            reply += "\(String(buffer: state.name))\t\(counts[0])\t\(counts[1] + state.scheduledCount)\t\(counts[2])"
            reply += "\t\(state.workers.count)\n"
        }
        return reply + AdminReply.endOfList
    }

    private func sortedJobs() -> [Job] {
        jobs.values.sorted { $0.id < $1.id }
    }

    private func showJobsReply() -> String {
        var reply = ""
        for job in sortedJobs() {
            reply += "\(String(buffer: job.handle))\t\(job.retries)\t0\t\(job.isBackground ? 1 : 0)\n"
        }
        return reply + AdminReply.endOfList
    }

    private func showUniqueJobsReply() -> String {
        var reply = ""
        for job in sortedJobs() {
            reply += String(buffer: job.unique) + "\n"
        }
        return reply + AdminReply.endOfList
    }

    /// `cancel job H`: attached clients get WORK_FAIL at once and the job is gone; a worker still
    /// running it gets JOB_NOT_FOUND for its results.
    private mutating func cancelJob(_ handle: ByteBuffer) -> String {
        guard let job = job(withHandle: handle) else { return AdminReply.error("UNKNOWN_JOB") }
        for listener in job.listeners {
            send(.workFail(handle: job.handle), to: listener)
        }
        removeJob(job.id)
        return AdminReply.ok
    }

    /// `drop function F` (case-insensitive): only a function without workers and jobs.
    private mutating func dropFunction(_ name: String) -> String {
        let lowered = name.lowercased()
        guard let key = functions.keys.first(where: { String(buffer: $0).lowercased() == lowered }) else {
            return AdminReply.error("function not found")
        }
        let state = functions[key]!
        guard state.workers.isEmpty && state.totalCount == 0 else {
            return AdminReply.error("there are still connected workers or executing clients")
        }
        functions[key] = nil
        return AdminReply.ok
    }
}
