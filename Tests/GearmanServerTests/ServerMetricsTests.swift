import CoreMetrics
import GearmanProtocol
import GearmanQueue
import GearmanTLS
import Logging
import MetricsTestKit
import NIOCore
import NIOEmbedded
import Testing

@testable import GearmanServer

@Suite struct ServerMetricsTests {
    @Test func functionLabelsAreCappedAndLaterFunctionsCountAsOtherPerTenant() throws {
        let factory = TestMetrics()
        let metrics = ServerMetrics(factory: factory, listeners: [], hasAccessControl: false, maxFunctionLabels: 2)
        for name in ["a", "b", "c", "d", "a", "c"] {
            metrics.handles(for: buf(name)) { "t" }.submitted.increment()
        }
        metrics.handles(for: buf("e")) { "u" }.submitted.increment()
        #expect(metrics.functionLabelCount == 2)
        let submitted = JobServerMetricName.jobsSubmitted
        #expect(try factory.expectCounter(submitted, [("function", "a"), ("tenant", "t")]).totalValue == 2)
        #expect(try factory.expectCounter(submitted, [("function", "b"), ("tenant", "t")]).totalValue == 1)
        #expect(try factory.expectCounter(submitted, [("function", "other"), ("tenant", "t")]).totalValue == 3)
        #expect(try factory.expectCounter(submitted, [("function", "other"), ("tenant", "u")]).totalValue == 1)
        #expect(factory.counters(label: submitted).count == 4, "one counter per label set, made once")
        #expect(metrics.handles(for: buf("c")) { "t" }.queueDepth == nil, "no gauges for \"other\"")
        #expect(metrics.handles(for: buf("a")) { "t" }.queueDepth?.count == 3)
        // The tenant is asked only when a function is first seen.
        _ = metrics.handles(for: buf("a")) { Issue.record("tenant asked again"); return "x" }
    }

    @Test func connectionsMoveThroughTheirStatesPerListener() throws {
        let factory = TestMetrics()
        let metrics = ServerMetrics(
            factory: factory, listeners: [("127.0.0.1:1", false), ("tls://127.0.0.1:2", true)], hasAccessControl: true)
        func count(_ listener: String, _ state: String) throws -> Double? {
            try factory.expectGauge(JobServerMetricName.connections, [("listener", listener), ("state", state)]).lastValue
        }
        metrics.connectionOpened(ConnectionID(1), listener: 0)
        metrics.connectionOpened(ConnectionID(2), listener: 1)
        #expect(try count("127.0.0.1:1", "unauthenticated") == 1)
        #expect(try count("tls://127.0.0.1:2", "handshaking") == 1)
        metrics.connectionHandshakeCompleted(ConnectionID(2))
        metrics.connectionAuthenticated(ConnectionID(2))
        #expect(try count("tls://127.0.0.1:2", "handshaking") == 0)
        #expect(try count("tls://127.0.0.1:2", "authenticated") == 1)
        metrics.connectionClosed(ConnectionID(2))
        metrics.connectionClosed(ConnectionID(2))
        #expect(try count("tls://127.0.0.1:2", "authenticated") == 0)
        #expect(try count("127.0.0.1:1", "unauthenticated") == 1)
    }

    @Test func handshakeFailuresAreSortedIntoAFewReasons() {
        func reason(_ code: TLSError.Code, _ errors: [String]) -> TLSHandshakeFailureReason? {
            TLSHandshakeFailureReason(TLSError(code: code, message: "m", openSSLErrors: errors))
        }
        #expect(reason(.handshakeTimeout, []) == .timeout)
        #expect(reason(.handshakeFailed, []) == .closed)
        #expect(reason(.handshakeFailed, ["error:0A00010B:SSL routines::wrong version number"]) == .plaintext)
        #expect(reason(.handshakeFailed, ["error:0A000086:SSL routines::certificate verify failed"]) == .certificate)
        #expect(reason(.handshakeFailed, ["error:0A0000C7:SSL routines::peer did not return a certificate"]) == .certificate)
        #expect(reason(.handshakeFailed, ["error:0A000102:SSL routines::unsupported protocol"]) == .protocol)
        #expect(reason(.uncleanShutdown, []) == nil)
        #expect(reason(.ioFailed, ["x"]) == nil)
    }

    /// The core turns the machine's observations into metrics: counts, gauges and histograms.
    @Test func theCoreRecordsJobsQueuesAndWorkers() throws {
        let loop = EmbeddedEventLoop()
        let factory = TestMetrics()
        let metrics = ServerMetrics(factory: factory, listeners: [("127.0.0.1:1", false)], hasAccessControl: false)
        let store = GroupCommitTests.RecordingStore()
        let core = JobServerCore(
            eventLoop: loop, configuration: .init(), access: nil, shutdownTimeout: .seconds(1), store: store,
            logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }, metrics: metrics)
        let client = ConnectionID(1)
        let worker = ConnectionID(2)
        core.connectionOpened(client, channel: EmbeddedChannel(loop: loop), listener: 0)
        core.connectionOpened(worker, channel: EmbeddedChannel(loop: loop), listener: 0)
        func submit(_ function: String, _ priority: JobPriority) {
            core.process(
                GroupCommitTests.packet(
                    .submitJob(function: buf(function), unique: buf(""), payload: buf("p"), priority: priority, background: true)),
                from: client)
        }
        for _ in 0..<4 { submit("f", .normal) }
        submit("g", .low)
        let labels = [("function", "f"), ("tenant", "")]
        func depth(_ function: String, _ priority: String) throws -> Double? {
            try factory.expectGauge(JobServerMetricName.queueDepth, [("function", function), ("priority", priority)]).lastValue
        }
        func counter(_ name: String) throws -> Int64 { try factory.expectCounter(name, labels).totalValue }
        #expect(try counter(JobServerMetricName.jobsSubmitted) == 4)
        #expect(try depth("f", "normal") == 4)
        #expect(try depth("g", "low") == 1)
        #expect(try depth("g", "normal") == 0)

        core.process(GroupCommitTests.packet(.canDo(function: buf("f"))), from: worker)
        #expect(try factory.expectGauge(JobServerMetricName.workers, [("function", "f")]).lastValue == 1)
        for _ in 0..<4 { core.process(GroupCommitTests.packet(.grabJob), from: worker) }
        #expect(try depth("f", "normal") == 0)
        #expect(try factory.expectTimer(JobServerMetricName.queueWait, labels).values.count == 4)
        let handles = store.batches.prefix(4).map { $0.added[0].handle }
        core.process(GroupCommitTests.packet(.workComplete(handle: handles[0], payload: buf("ok"))), from: worker)
        core.process(GroupCommitTests.packet(.workFail(handle: handles[1])), from: worker)
        core.process(GroupCommitTests.packet(.workException(handle: handles[2], payload: buf("boom"))), from: worker)
        #expect(try counter(JobServerMetricName.jobsCompleted) == 1)
        #expect(try counter(JobServerMetricName.jobsFailed) == 2)
        #expect(try factory.expectTimer(JobServerMetricName.runTime, labels).values.count == 3)

        // The worker vanishes with a job: requeued, runnable again, no worker left.
        core.connectionClosed(worker)
        #expect(try counter(JobServerMetricName.jobsRequeued) == 1)
        #expect(try depth("f", "normal") == 1)
        #expect(try factory.expectGauge(JobServerMetricName.workers, [("function", "f")]).lastValue == 0)
        #expect(
            try factory.expectGauge(JobServerMetricName.connections, [("listener", "127.0.0.1:1"), ("state", "open")])
                .lastValue == 1)
        // Every commit of a (durable) store is timed and its size recorded.
        #expect(try factory.expectTimer(JobServerMetricName.commitDuration).values.count == store.batches.count)
        #expect(
            try factory.expectRecorder(JobServerMetricName.commitBatchSize).values
                == store.batches.map { Double($0.added.count + $0.removedHandles.count) })
        #expect(store.batches.count == 6 && store.batches[5].removedHandles.count == 3)
        core.stopNow()
        loop.run()
    }
}
