import NIOCore

/// What the state machine reports for metrics, when asked to (`observesMetrics`). Plain values, no
/// I/O: the core turns them into metric updates. Function names are the machine's own keys (no
/// copy); the core reads the current counts of a function from the machine when told they changed.
enum ServerObservation {
    /// A submission was accepted (a new job, or one that joined a live job).
    case jobSubmitted(function: ByteBuffer)
    /// A worker was given a job that had waited `waitedNanoseconds` since it became runnable.
    case jobAssigned(function: ByteBuffer, waitedNanoseconds: UInt64)
    /// A job ended with WORK_COMPLETE after running `ranNanoseconds`.
    case jobCompleted(function: ByteBuffer, ranNanoseconds: UInt64)
    /// A job ended with WORK_FAIL or WORK_EXCEPTION after running `ranNanoseconds`, or failed at
    /// the retry cap (`ranNanoseconds` nil).
    case jobFailed(function: ByteBuffer, ranNanoseconds: UInt64?)
    /// A running job went back to its queue (its worker was lost, timed out or withdrew).
    case jobRequeued(function: ByteBuffer)
    /// The runnable jobs of a function changed in number.
    case queueChanged(function: ByteBuffer)
    /// The workers registered for a function changed in number.
    case workersChanged(function: ByteBuffer)
    /// A connection authenticated as a principal.
    case authenticated(ConnectionID)
    /// An authentication failed; the tenant of the principal it claimed, if known.
    case authenticationFailed(tenant: String?)
    /// The ACL denied a registration, submission or admin command of a principal of this tenant.
    case accessDenied(tenant: String?)
}
