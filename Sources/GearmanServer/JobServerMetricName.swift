/// The names of the metrics a `JobServer` with a `metricsFactory` records (README, "Metrics"), for
/// a factory that configures them by name (histogram buckets).
public enum JobServerMetricName {
    public static let jobsSubmitted = "gearlock_jobs_submitted_total"
    public static let jobsCompleted = "gearlock_jobs_completed_total"
    public static let jobsFailed = "gearlock_jobs_failed_total"
    public static let jobsRequeued = "gearlock_jobs_requeued_total"
    public static let queueDepth = "gearlock_queue_depth"
    public static let workers = "gearlock_workers"
    public static let queueWait = "gearlock_job_queue_wait_seconds"
    public static let runTime = "gearlock_job_run_seconds"
    public static let connections = "gearlock_connections"
    public static let tlsHandshakeFailures = "gearlock_tls_handshake_failures_total"
    public static let authenticationFailures = "gearlock_authentication_failures_total"
    public static let accessDenials = "gearlock_acl_denials_total"
    public static let commitDuration = "gearlock_queue_commit_duration_seconds"
    public static let commitBatchSize = "gearlock_queue_commit_batch_size"
    public static let commitFailures = "gearlock_queue_commit_failures_total"
}
