import DequeModule
import GearmanProtocol
import NIOCore
import OrderedCollections
import Testing

@testable import GearmanServer

/// Random event sequences against the state machine, checking its bookkeeping after every event
/// and the protocol rules every reply must follow.
@Suite struct StateInvariantTests {
    /// A small deterministic generator (SplitMix64), so a failing seed can be replayed.
    struct SplitMix64: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    @Test(arguments: [1, 2, 3, 4, 5, 6, 7, 8] as [UInt64])
    func randomEventsKeepTheStateConsistent(seed: UInt64) throws {
        var random = SplitMix64(state: seed)
        let h = Harness {
            $0.jobRetries = Int(seed % 3)
            $0.workerWakeup = Int(seed % 2)
        }
        let functions = ["a", "b", "c"]
        let uniques = ["", "u1", "u2", "u3", "-"]
        var live: [ConnectionID] = []
        var knownHandles: [ByteBuffer] = [buf("H:unknown:1")]
        /// Per connection: asleep (PRE_SLEEP sent, no GRAB since) and whether a NOOP came since.
        var asleep: [ConnectionID: Bool] = [:]
        var noopSince: [ConnectionID: Bool] = [:]

        func check(_ outbox: Outbox, step: Int) {
            for (packet, target) in outbox.sent {
                #expect(live.contains(target), "step \(step): \(packet) to a closed connection \(target)")
                switch packet {
                case .noop:
                    #expect(asleep[target] == true, "step \(step): NOOP to an awake worker \(target)")
                    #expect(noopSince[target] != true, "step \(step): second NOOP in one sleep to \(target)")
                    noopSince[target] = true
                case .jobCreated(let handle):
                    knownHandles.append(handle)
                    #expect(handle.readableBytes <= 63)
                default: break
                }
            }
            checkInvariants(h.machine, step: step, everySleeperWoken: h.machine.configuration.workerWakeup == 0)
        }

        for step in 0..<2000 {
            let roll = Int.random(in: 0..<100, using: &random)
            if live.isEmpty || roll < 6 {
                let id = h.connect()
                live.append(id)
                continue
            }
            let id = live.randomElement(using: &random)!
            let function = functions.randomElement(using: &random)!
            let handle = knownHandles.randomElement(using: &random)!
            var outbox: Outbox
            switch roll {
            case 6..<9:
                // What the state machine sends a closing connection (say, WORK_FAIL for a job it
                // both submitted and ran) is dropped by the caller: it is checked as still live.
                outbox = h.close(id)
                check(outbox, step: step)
                live.removeAll { $0 == id }
                asleep[id] = nil
                noopSince[id] = nil
                continue
            case 9..<17: outbox = h.send(Pkt.canDo(function), from: id)
            case 17..<19: outbox = h.send(Pkt.canDoTimeout(function, "1000"), from: id)
            case 19..<21: outbox = h.send(Pkt.cantDo(function), from: id)
            case 21..<22: outbox = h.send(.resetAbilities, from: id)
            case 22..<30:
                asleep[id] = true
                noopSince[id] = false
                outbox = h.send(.preSleep, from: id)
            case 30..<42:
                asleep[id] = false
                noopSince[id] = false
                let grab: GearmanPacket = [.grabJob, .grabJobUnique, .grabJobAll].randomElement(using: &random)!
                outbox = h.send(grab, from: id)
            case 42..<60:
                let unique = uniques.randomElement(using: &random)!
                let priority = JobPriority.allCases.randomElement(using: &random)!
                outbox = h.send(
                    Pkt.submit(function, unique: unique, "p\(Int.random(in: 0..<3, using: &random))", priority: priority,
                        background: Bool.random(using: &random)), from: id)
            case 60..<63:
                let epoch = h.clock.wallClockSeconds + Int64.random(in: -2...5, using: &random)
                outbox = h.send(Pkt.submitEpoch(function, unique: uniques.randomElement(using: &random)!, epoch: String(epoch), "e"), from: id)
            case 63..<65:
                outbox = h.send(Pkt.submitReduce(function, unique: uniques.randomElement(using: &random)!, reducer: "r", "x", background: Bool.random(using: &random)), from: id)
            case 65..<67: outbox = h.send(Pkt.workStatus(handle, "1", "3"), from: id)
            case 67..<69: outbox = h.send(Pkt.workData(handle, "d"), from: id)
            case 69..<75:
                // Mostly results for a job the connection really holds.
                let held = h.machine.connections[id]?.assignedJobs.first.flatMap { h.machine.jobs[$0]?.handle } ?? handle
                let result: GearmanPacket =
                    [Pkt.workComplete(held, "r"), .workFail(handle: held), Pkt.workException(held, "x")]
                    .randomElement(using: &random)!
                outbox = h.send(result, from: id)
            case 75..<77: outbox = h.send(Pkt.option("exceptions"), from: id)
            case 77..<79: outbox = h.send(Pkt.getStatus(handle), from: id)
            case 79..<80: outbox = h.send(Pkt.getStatusUnique("u1"), from: id)
            case 80..<83: outbox = h.admin("cancel job \(String(buffer: handle))", from: id)
            case 83..<84: outbox = h.admin("maxqueue \(function) \(Int.random(in: 0..<4, using: &random))", from: id)
            case 84..<85: outbox = h.admin("drop function \(function)", from: id)
            case 85..<87:
                outbox = h.admin(["status", "prioritystatus", "workers", "show jobs", "show unique jobs"].randomElement(using: &random)!, from: id)
            default:
                h.clock.advance(milliseconds: UInt64.random(in: 0..<1500, using: &random))
                outbox = h.fireTimer()
            }
            check(outbox, step: step)
        }
    }

    /// The state machine's tables agree with each other.
    func checkInvariants(_ m: Machine, step: Int, everySleeperWoken: Bool) {
        var queued: [ByteBuffer: [Int]] = [:]
        var scheduled: [ByteBuffer: Int] = [:]
        var running: [ByteBuffer: Int] = [:]
        for job in m.jobs.values {
            let id = job.id
            #expect(m.jobs[id]?.handle == job.handle, "step \(step): a job not found under its own ID")
            #expect(m.jobsByHandle[job.handle] == id, "step \(step)")
            if let key = job.coalescingKey { #expect(m.jobsByKey[key] == id, "step \(step): key lost") }
            #expect(m.functions[job.function] != nil, "step \(step): job of a dropped function")
            switch job.state {
            case .queued: queued[job.function, default: [0, 0, 0]][job.priority.rawValue] += 1
            case .scheduled: scheduled[job.function, default: 0] += 1
            case .running(let worker, _):
                running[job.function, default: 0] += 1
                #expect(m.connections[worker]?.assignedJobs.contains(id) == true, "step \(step): orphan running job")
            }
            #expect(job.isBackground || !job.listeners.isEmpty || job.isRunning, "step \(step): fg job nobody waits for")
            #expect(Set(job.listeners).count == job.listeners.count)
            for listener in job.listeners {
                #expect(m.connections[listener]?.listeningJobs.contains(id) == true, "step \(step)")
            }
        }
        #expect(m.jobsByHandle.count == m.jobs.count, "step \(step)")
        #expect(m.jobsByKey.count == m.jobs.values.filter { $0.coalescingKey != nil }.count, "step \(step)")
        for (name, state) in m.functions {
            #expect(state.queuedCounts == queued[name, default: [0, 0, 0]], "step \(step): queued counts of \(String(buffer: name))")
            #expect(state.scheduledCount == scheduled[name, default: 0], "step \(step)")
            #expect(state.runningCount == running[name, default: 0], "step \(step)")
            #expect(state.sleepers.isSubset(of: state.workers), "step \(step)")
            for worker in state.workers {
                #expect(m.connections[worker]?.abilityIndex(name) != nil, "step \(step): stale worker")
            }
            // Every queued job has a queue entry.
            let entries = Set(state.queues.flatMap { $0 })
            for job in m.jobs.values where job.function == name && job.state == .queued {
                #expect(entries.contains(job.id), "step \(step): queued job missing from its queue")
            }
        }
        for (id, connection) in m.connections {
            for jobID in connection.assignedJobs {
                if case .running(let worker, _)? = m.jobs[jobID]?.state {
                    #expect(worker == id, "step \(step)")
                } else {
                    Issue.record("step \(step): assigned job not running")
                }
            }
            for jobID in connection.listeningJobs {
                #expect(m.jobs[jobID]?.listeners.contains(id) == true, "step \(step)")
            }
            for ability in connection.abilities {
                #expect(m.functions[ability.function]?.workers.contains(id) == true, "step \(step)")
            }
            // Asleep with work it could grab and no NOOP yet is a lost wake-up (unless
            // `workerWakeup` limits the NOOPs per job).
            if everySleeperWoken && connection.isSleeping && !connection.noopSent && !m.isDraining {
                let hasWork = connection.abilities.contains { m.functions[$0.function]?.hasRunnableJobs == true }
                #expect(!hasWork, "step \(step): sleeping worker \(id) not woken although work is queued")
            }
        }
    }
}
