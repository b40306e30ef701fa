import GearmanProtocol
import NIOCore
import Testing

@testable import GearmanServer

/// What the state machine reports for metrics, timed by its mock clock.
@Suite struct ObservationTests {
    /// The observations so far, as text (function names and times in whole seconds), emptied.
    static func take(_ harness: Harness) -> [String] {
        defer { harness.machine.observations.removeAll() }
        return harness.machine.observations.map { observation in
            switch observation {
            case .jobSubmitted(let function): "submitted \(String(buffer: function))"
            case .jobAssigned(let function, let waited): "assigned \(String(buffer: function)) after \(waited / 1_000_000_000) s"
            case .jobCompleted(let function, let ran): "completed \(String(buffer: function)) after \(ran / 1_000_000_000) s"
            case .jobFailed(let function, let ran): "failed \(String(buffer: function)) after \(ran.map { "\($0 / 1_000_000_000) s" } ?? "-")"
            case .jobRequeued(let function): "requeued \(String(buffer: function))"
            case .queueChanged(let function): "queue \(String(buffer: function))"
            case .workersChanged(let function): "workers \(String(buffer: function))"
            case .authenticated(let id): "authenticated \(id)"
            case .authenticationFailed(let tenant): "authentication failed \(tenant ?? "-")"
            case .accessDenied(let tenant): "denied \(tenant ?? "-")"
            }
        }
    }

    @Test func queueWaitAndRunTimeComeFromTheClock() throws {
        let harness = Harness { $0.observesMetrics = true }
        let worker = harness.connect()
        harness.send(.canDo(function: buf("f")), from: worker)
        let (_, handle) = try harness.submitFromNewClient(
            .submitJob(function: buf("f"), unique: buf(""), payload: buf("p"), priority: .normal, background: false))
        #expect(Self.take(harness) == ["workers f", "submitted f", "queue f"])
        harness.clock.advance(seconds: 2)
        _ = harness.grab(worker)
        harness.clock.advance(seconds: 3)
        harness.send(.workFail(handle: handle), from: worker)
        #expect(Self.take(harness) == ["assigned f after 2 s", "queue f", "failed f after 3 s"])

        // A lost worker's job is requeued; its wait counts from the requeue.
        let second = try harness.submit(
            .submitJob(function: buf("f"), unique: buf(""), payload: buf("q"), priority: .normal, background: true),
            from: harness.connect())
        _ = second
        _ = harness.grab(worker)
        harness.clock.advance(seconds: 5)
        harness.send(.cantDo(function: buf("f")), from: worker)
        harness.clock.advance(seconds: 1)
        harness.send(.canDo(function: buf("f")), from: worker)
        _ = harness.grab(worker)
        #expect(
            Self.take(harness) == [
                "submitted f", "queue f", "assigned f after 0 s", "queue f", "workers f", "requeued f", "queue f",
                "workers f", "assigned f after 1 s", "queue f",
            ])
    }

    @Test func nothingIsObservedWhenMetricsAreOff() throws {
        let harness = Harness()
        let worker = harness.connect()
        harness.send(.canDo(function: buf("f")), from: worker)
        _ = try harness.submitFromNewClient(
            .submitJob(function: buf("f"), unique: buf(""), payload: buf("p"), priority: .normal, background: true))
        _ = harness.grab(worker)
        #expect(harness.machine.observations.isEmpty)
    }
}
