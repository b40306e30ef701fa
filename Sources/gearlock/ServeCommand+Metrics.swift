import GearmanServer
import Prometheus

extension ServeCommand {
    /// Job latencies from a millisecond to an hour.
    static let jobLatencyBuckets: [Duration] = [
        .milliseconds(1), .milliseconds(5), .milliseconds(10), .milliseconds(50), .milliseconds(100),
        .milliseconds(500), .seconds(1), .seconds(5), .seconds(10), .seconds(30), .seconds(60), .seconds(300),
        .seconds(900), .seconds(1800), .seconds(3600),
    ]

    /// Queue commits from 100 µs (memory, NORMAL sync) to 10 s (a stalled disk or database).
    static let commitLatencyBuckets: [Duration] = [
        .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2),
        .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
        .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(10),
    ]

    /// Jobs and removals per commit, up to the removal batch of 512 and beyond.
    static let commitBatchBuckets: [Double] = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 5000]

    /// The swift-metrics factory the job server records into, with its histograms' buckets.
    static func metricsFactory(registry: PrometheusCollectorRegistry) -> PrometheusMetricsFactory {
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.durationHistogramBuckets = [
            JobServerMetricName.queueWait: jobLatencyBuckets,
            JobServerMetricName.runTime: jobLatencyBuckets,
            JobServerMetricName.commitDuration: commitLatencyBuckets,
        ]
        factory.valueHistogramBuckets = [JobServerMetricName.commitBatchSize: commitBatchBuckets]
        return factory
    }
}
