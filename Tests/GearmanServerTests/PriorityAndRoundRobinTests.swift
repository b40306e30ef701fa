import GearmanProtocol
import NIOCore
import Testing

@testable import GearmanServer

@Suite struct PriorityAndRoundRobinTests {
    /// The payloads of the jobs `worker` grabs until NO_JOB.
    private func drain(_ h: Harness, _ worker: ConnectionID) -> [String] {
        var payloads: [String] = []
        while true {
            switch h.grab(worker) {
            case .jobAssign(_, _, let payload)?: payloads.append(String(buffer: payload))
            case .noJob?: return payloads
            case let other: Issue.record("unexpected reply \(String(describing: other))"); return payloads
            }
        }
    }

    @Test func fifoWithinAPriority() throws {
        let h = Harness()
        let client = h.connect()
        for name in ["n1", "n2", "n3"] {
            _ = try h.submit(Pkt.submit("f", name), from: client)
        }
        #expect(drain(h, h.worker("f")) == ["n1", "n2", "n3"])
    }

    @Test func higherPriorityFirstWithinAFunction() throws {
        let h = Harness()
        let client = h.connect()
        _ = try h.submit(Pkt.submit("f", "low1", priority: .low), from: client)
        _ = try h.submit(Pkt.submit("f", "norm1", priority: .normal), from: client)
        _ = try h.submit(Pkt.submitBG("f", "high1", priority: .high), from: client)
        _ = try h.submit(Pkt.submit("f", "low2", priority: .low), from: client)
        _ = try h.submit(Pkt.submit("f", "high2", priority: .high), from: client)
        #expect(drain(h, h.worker("f")) == ["high1", "high2", "norm1", "low1", "low2"])
    }

    /// gearmand 2.0 semantics: priority is global across the worker's functions (1.1.20 would hand
    /// out fn A's NORMAL job before fn B's HIGH one).
    @Test func priorityIsGlobalAcrossAWorkersFunctions() throws {
        let h = Harness()
        let client = h.connect()
        _ = try h.submit(Pkt.submit("a", "a-low", priority: .low), from: client)
        _ = try h.submit(Pkt.submit("a", "a-normal"), from: client)
        _ = try h.submit(Pkt.submit("b", "b-high", priority: .high), from: client)
        let worker = h.worker("a", "b")
        #expect(drain(h, worker) == ["b-high", "a-normal", "a-low"])

        // Registration order does not matter.
        _ = try h.submit(Pkt.submit("a", "a-normal"), from: client)
        _ = try h.submit(Pkt.submit("b", "b-high", priority: .high), from: client)
        let other = h.worker("b", "a")
        #expect(drain(h, other) == ["b-high", "a-normal"])
    }

    @Test func roundRobinAcrossFunctionsWithinAPriority() throws {
        let h = Harness()
        let client = h.connect()
        for name in ["a1", "a2", "a3"] {
            _ = try h.submit(Pkt.submit("a", name), from: client)
        }
        for name in ["b1", "b2"] {
            _ = try h.submit(Pkt.submit("b", name), from: client)
        }
        _ = try h.submit(Pkt.submit("c", "c1"), from: client)
        #expect(drain(h, h.worker("a", "b", "c")) == ["a1", "b1", "c1", "a2", "b2", "a3"])
    }

    /// The sequence observed from gearmand 2.0 with round-robin (PROTOCOL.md c.2).
    @Test func gearmand20OrderingOfMixedPriorities() throws {
        let h = Harness()
        let client = h.connect()
        _ = try h.submit(Pkt.submit("pa", "high1", priority: .high), from: client)
        _ = try h.submit(Pkt.submit("pa", "high2", priority: .high), from: client)
        _ = try h.submit(Pkt.submit("pa", "norm1"), from: client)
        _ = try h.submit(Pkt.submit("pa", "low1", priority: .low), from: client)
        _ = try h.submit(Pkt.submit("pa", "low2", priority: .low), from: client)
        _ = try h.submit(Pkt.submit("pb", "pb-high", priority: .high), from: client)
        _ = try h.submit(Pkt.submit("pb", "pb-norm"), from: client)
        _ = try h.submit(Pkt.submit("pb", "pb-norm2"), from: client)
        let worker = h.worker("pb", "pa")
        #expect(drain(h, worker) == ["pb-high", "high1", "high2", "pb-norm", "norm1", "pb-norm2", "low1", "low2"])
    }

    @Test func aWorkerOnlyGetsJobsOfItsFunctions() throws {
        let h = Harness()
        let client = h.connect()
        _ = try h.submit(Pkt.submit("other", "x"), from: client)
        let worker = h.worker("mine")
        #expect(h.grab(worker) == .noJob)
        let handle = try h.submit(Pkt.submit("mine", "y"), from: client)
        #expect(h.grab(worker) == Res.jobAssign(handle, "mine", "y"))
    }

    @Test func coalescedSubmissionKeepsTheOriginalPriorityAndPosition() throws {
        let h = Harness()
        let client = h.connect()
        let low = try h.submit(Pkt.submit("f", unique: "u", "original", priority: .low), from: client)
        let normal = try h.submit(Pkt.submit("f", unique: "n", "normal"), from: client)
        #expect(try h.submit(Pkt.submit("f", unique: "u", "replacement", priority: .high), from: client) == low)
        let worker = h.worker("f")
        #expect(h.grab(worker) == Res.jobAssign(normal, "f", "normal"))
        #expect(h.grab(worker) == Res.jobAssign(low, "f", "original"))
    }

    // MARK: Grab variants

    @Test func grabVariantsAnswerWithTheirAssignPacket() throws {
        let h = Harness()
        let client = h.connect()
        let worker = h.worker("f")
        let plain = try h.submit(Pkt.submit("f", unique: "u1", "p1"), from: client)
        #expect(h.grab(worker, .grabJob) == Res.jobAssign(plain, "f", "p1"))
        let uniq = try h.submit(Pkt.submit("f", unique: "u2", "p2"), from: client)
        #expect(h.grab(worker, .grabJobUnique) == Res.jobAssignUnique(uniq, "f", "u2", "p2"))
        let all = try h.submit(Pkt.submitBG("f", unique: "u3", "p3"), from: client)
        #expect(h.grab(worker, .grabJobAll) == Res.jobAssignUnique(all, "f", "u3", "p3"))
        let reduce = try h.submit(Pkt.submitReduce("f", unique: "u4", reducer: "red", "p4"), from: client)
        #expect(
            h.grab(worker, .grabJobAll)
                == .jobAssignAll(
                    handle: reduce, function: buf("f"), unique: buf("u4"), reducer: buf("red"), payload: buf("p4")))
        let reduceBG = try h.submit(Pkt.submitReduce("f", unique: "u5", reducer: "r2", "p5", background: true), from: client)
        #expect(
            h.grab(worker, .grabJobAll)
                == .jobAssignAll(
                    handle: reduceBG, function: buf("f"), unique: buf("u5"), reducer: buf("r2"), payload: buf("p5")))
        // Older grab variants get a reduce job without its reducer.
        let reduce2 = try h.submit(Pkt.submitReduce("f", unique: "u6", reducer: "red", "p6"), from: client)
        #expect(h.grab(worker, .grabJobUnique) == Res.jobAssignUnique(reduce2, "f", "u6", "p6"))
    }

    @Test func grabWithNothingQueuedIsNoJob() {
        let h = Harness()
        let worker = h.worker("f")
        for grab: GearmanPacket in [.grabJob, .grabJobUnique, .grabJobAll] {
            #expect(h.send(grab, from: worker).effects == [.send(.noJob, to: worker)])
        }
        let idle = h.connect()
        #expect(h.send(.grabJob, from: idle).effects == [.send(.noJob, to: idle)])
    }

    @Test func aRunningJobIsNotHandedOutTwice() throws {
        let h = Harness()
        let client = h.connect()
        let handle = try h.submit(Pkt.submit("f", "x"), from: client)
        let w1 = h.worker("f")
        let w2 = h.worker("f")
        #expect(h.grab(w1) == Res.jobAssign(handle, "f", "x"))
        #expect(h.grab(w2) == .noJob)
    }
}
