import GearmanACL
import GearmanProtocol
import Logging
import NIOCore
import OrderedCollections

extension JobServerStateMachine {
    /// One line of the text admin protocol, answered in gearmand's exact formats.
    mutating func textReceived(_ line: ByteBuffer, from id: ConnectionID) {
        guard connections[id] != nil else { preconditionFailure("text from unknown connection \(id)") }
        let request = AdminRequest(line: line)
        let command = String(buffer: line).split(separator: " ", maxSplits: 1).first.map(String.init) ?? ""
        guard mayRunAdmin(request, command: command, from: id) else { return }
        let scope = adminScope(of: id)
        switch request {
        case .workers: sendText(workersReply(scope), to: id)
        case .status: sendText(statusReply(scope), to: id)
        case .priorityStatus: sendText(priorityStatusReply(scope), to: id)
        case .showJobs: sendText(showJobsReply(scope), to: id)
        case .showUniqueJobs: sendText(showUniqueJobsReply(scope), to: id)
        case .cancelJob(let handle): sendText(cancelJob(ByteBuffer(string: handle), scope: scope), to: id)
        case .createFunction(let name):
            guard mayChange(functionNamed: name, scope: scope, command: command, from: id) else { return }
            _ = ensureFunction(ByteBuffer(string: name))
            sendText(AdminReply.ok, to: id)
        case .dropFunction(let name): sendText(dropFunction(name, scope: scope), to: id)
        case .maxQueue(let name, let limits):
            guard mayChange(functionNamed: name, scope: scope, command: command, from: id) else { return }
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
        case .authenticate(let principal, let secret):
            authenticate(id, principal: principal, secret: secret, via: .adminLine)
        case .invalid(let error): sendText(error.reply, to: id)
        }
    }

    /// A tenant's admin may create or limit only functions of its own namespace.
    private mutating func mayChange(functionNamed name: String, scope: AdminScope, command: String, from id: ConnectionID) -> Bool {
        guard !scope.sees(functionOf: owningTenant(ofFunctionNamed: name)) else { return true }
        audit(.permissionDenied, "admin command denied", connection: id, packet: "admin \(command)",
              function: ByteBuffer(string: name), reason: "function outside the tenant's namespace", level: .notice)
        sendText(AdminReply.error(ErrorCode.permissionDenied, "Permission+denied"), to: id)
        return false
    }

    private func existingFunction(named name: String) -> ByteBuffer? {
        let exact = ByteBuffer(string: name)
        return functions.index(forKey: exact) != nil ? exact : nil
    }

    private func workersReply(_ scope: AdminScope) -> String {
        var reply = ""
        for id in connections.keys.sorted() {
            let connection = connections[id]!
            guard scope.sees(connection) else { continue }
            reply += "\(id) \(connection.peerAddress) \(Self.displayName(of: connection)) :"
            for ability in connection.abilities where scope.sees(functionOf: functions[ability.function]?.tenant) {
                reply += " " + String(buffer: ability.function)
            }
            reply += "\n"
        }
        return reply + AdminReply.endOfList
    }

    /// The client-id column of `workers`: the principal (never a secret), then the client id.
    private static func displayName(of connection: ConnectionState) -> String {
        let clientID = connection.clientID.map { String(buffer: $0) } ?? ""
        guard let principal = connection.principal?.name else { return clientID.isEmpty ? "-" : clientID }
        return clientID.isEmpty ? principal : principal + "/" + clientID
    }

    private func statusReply(_ scope: AdminScope) -> String {
        var reply = ""
        for state in functions.values where scope.sees(functionOf: state.tenant) {
            reply += "\(String(buffer: state.name))\t\(state.totalCount)\t\(state.runningCount)\t\(state.workers.count)\n"
        }
        return reply + AdminReply.endOfList
    }

    private func priorityStatusReply(_ scope: AdminScope) -> String {
        var reply = ""
        for state in functions.values where scope.sees(functionOf: state.tenant) {
            let counts = state.queuedCounts
            // Epoch jobs that are not due yet are NORMAL jobs waiting in the queue, as in gearmand.
            reply += "\(String(buffer: state.name))\t\(counts[0])\t\(counts[1] + state.scheduledCount)\t\(counts[2])"
            reply += "\t\(state.workers.count)\n"
        }
        return reply + AdminReply.endOfList
    }

    private func sortedJobs(_ scope: AdminScope) -> [Job] {
        jobs.values.filter { sees($0, scope) }.sorted { $0.sequence < $1.sequence }
    }

    private func sees(_ job: Job, _ scope: AdminScope) -> Bool {
        scope == .everything || scope.sees(functionOf: functions[job.function]?.tenant)
    }

    private func showJobsReply(_ scope: AdminScope) -> String {
        var reply = ""
        for job in sortedJobs(scope) {
            reply += "\(String(buffer: job.handle))\t\(job.retries)\t0\t\(job.isBackground ? 1 : 0)\n"
        }
        return reply + AdminReply.endOfList
    }

    private func showUniqueJobsReply(_ scope: AdminScope) -> String {
        var reply = ""
        for job in sortedJobs(scope) {
            reply += String(buffer: job.unique) + "\n"
        }
        return reply + AdminReply.endOfList
    }

    /// `cancel job H`: attached clients get WORK_FAIL at once and the job is gone; a worker still
    /// running it gets JOB_NOT_FOUND for its results.
    private mutating func cancelJob(_ handle: ByteBuffer, scope: AdminScope) -> String {
        guard let job = job(withHandle: handle), sees(job, scope) else { return AdminReply.error("UNKNOWN_JOB") }
        for listener in job.listeners {
            send(.workFail(handle: job.handle), to: listener)
        }
        removeJob(job.id)
        return AdminReply.ok
    }

    /// `drop function F` (case-insensitive): only a function without workers and jobs.
    private mutating func dropFunction(_ name: String, scope: AdminScope) -> String {
        let lowered = name.lowercased()
        guard
            let key = functions.keys.first(where: {
                String(buffer: $0).lowercased() == lowered && scope.sees(functionOf: functions[$0]?.tenant)
            })
        else {
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
