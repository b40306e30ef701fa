import DequeModule
import GearmanACL
import GearmanProtocol
import NIOCore

/// Identifies a job inside the state machine (cheaper to hash and queue than its handle): its slot
/// in the `JobTable` and the slot's generation. The order is arbitrary but total (heap tie-breaks);
/// jobs are ordered by age with `Job.sequence`.
struct JobID: Hashable, Sendable, Comparable {
    var rawValue: UInt64

    init(slot: UInt32, generation: UInt32) {
        rawValue = UInt64(generation) << 32 | UInt64(slot)
    }

    var slot: UInt32 { UInt32(truncatingIfNeeded: rawValue) }
    var generation: UInt32 { UInt32(truncatingIfNeeded: rawValue >> 32) }

    static func < (lhs: JobID, rhs: JobID) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// The key jobs coalesce on: the function plus the unique, or plus the payload for a unique of `-`.
struct CoalescingKey: Hashable {
    var function: ByteBuffer
    var unique: ByteBuffer
    var byPayload: Bool
}

/// How a job takes part in coalescing: what its `CoalescingKey` is made of, if it has one. A job
/// keeps this one byte rather than its key, which is derived from its own fields when needed.
enum Coalescing: UInt8 {
    case none
    case byUnique
    case byPayload
}

/// The progress a worker last reported with WORK_STATUS, as decimal text.
struct JobProgress {
    var numerator: ByteBuffer
    var denominator: ByteBuffer

    /// "0" of GET_STATUS answers for a job with no progress: one shared buffer, not one per job.
    static let zeroText = ByteBuffer(integer: UInt8(ascii: "0"))
    static let none = JobProgress(numerator: zeroText, denominator: zeroText)
}

/// One job, from submission until it ends.
struct Job {
    enum State: Equatable {
        /// An epoch job that is not due yet.
        case scheduled(epoch: Int64)
        /// Waiting in its function's queue.
        case queued
        /// Assigned to a worker. `assignment` tells one assignment from the next, so a stale
        /// CAN_DO_TIMEOUT deadline can be recognised.
        case running(worker: ConnectionID, assignment: UInt64)
    }

    let id: JobID
    /// Counts up from job to job: the order in which jobs were created (or replayed).
    let sequence: UInt64
    let handle: ByteBuffer
    let function: ByteBuffer
    let unique: ByteBuffer
    let coalescing: Coalescing
    /// The workload. A large foreground payload may still be a slice of the read buffer it arrived
    /// in until `compactDeferredPayloads` copies it (see `JobServerStateMachine.createJob`).
    var payload: ByteBuffer
    let priority: JobPriority
    /// The reducer of a reduce submission; nil for an ordinary job.
    let reducer: ByteBuffer?
    /// The epoch time of an epoch job.
    let epoch: Int64?
    /// True once any background submission created or joined the job: it then survives the loss of
    /// its foreground listeners (gearmand drops it silently; we don't).
    var isBackground: Bool
    var state: State
    var retries: Int
    /// When the job last became runnable (while queued) or was assigned (while running), in
    /// monotonic nanoseconds; kept only when metrics are on (0 otherwise).
    var since: UInt64 = 0
    /// Foreground clients waiting on the job, most recently attached first (gearmand's order).
    var listeners: [ConnectionID]

    /// The key the job is registered under in the coalescing table, if any.
    var coalescingKey: CoalescingKey? {
        switch coalescing {
        case .none: nil
        case .byUnique: CoalescingKey(function: function, unique: unique, byPayload: false)
        case .byPayload: CoalescingKey(function: function, unique: payload, byPayload: true)
        }
    }

    var isRunning: Bool {
        if case .running = state { return true }
        return false
    }
}

/// Everything the server keeps per function name.
struct FunctionState {
    let name: ByteBuffer
    /// FIFO queues of runnable jobs, indexed by priority. Entries of jobs that left the queue some
    /// other way (cancelled, abandoned) are skipped when reached, so removal is O(1).
    var queues: [Deque<JobID>] = [[], [], []]
    /// Exact counts of queued (runnable) jobs per priority.
    var queuedCounts: [Int] = [0, 0, 0]
    /// Epoch jobs that are not due yet.
    var scheduledCount = 0
    var runningCount = 0
    /// Connections that registered the function.
    var workers: Set<ConnectionID> = []
    /// Registered connections that are asleep and have not been sent a NOOP since.
    var sleepers: Set<ConnectionID> = []
    /// The sleeper woken last under a `workerWakeup` limit: the next job starts after it, so
    /// successive jobs wake different workers (gearmand's rotating cursor).
    var lastWoken: ConnectionID?
    var maxQueue: MaxQueueLimits = .unlimited
    /// The tenant whose namespace holds the function, when an ACL is loaded.
    var tenant: String?

    init(name: ByteBuffer, tenant: String?) {
        self.name = name
        self.tenant = tenant
    }

    var queuedCount: Int { queuedCounts[0] + queuedCounts[1] + queuedCounts[2] }
    /// Every live job of the function: queued, scheduled and running.
    var totalCount: Int { queuedCount + scheduledCount + runningCount }
    var hasRunnableJobs: Bool { queuedCount > 0 }
}

/// A reply held back until the queue store has committed a background job.
enum HeldReply {
    case packet(GearmanPacket)
    case text(String)
    /// JOB_CREATED for this handle, once its commit completes (or ERROR QUEUE_ERROR if it fails).
    case awaitingCommit(ByteBuffer)
}

/// A background job's persist that submitters are waiting on.
struct PendingPersist {
    /// True when the submission created the job; false when it made a foreground job durable.
    var createdJob: Bool
    var waiters: [ConnectionID]
}

/// The factors a connection authenticated with: the certificate identity it presented and the
/// hash its secret matched (never the secret).
struct AuthenticationProof: Equatable {
    var certificate: String?
    var secretHash: SecretHash?

    /// Whether `rule` (after a reload) still accepts this proof: every factor used still matches,
    /// and every factor the rule requires was used.
    func holds(for rule: PrincipalRule) -> Bool {
        if let certificate, rule.certificate != certificate { return false }
        if let secretHash, rule.secret != secretHash { return false }
        if rule.requiredFactors.contains(.certificate) && certificate == nil { return false }
        if rule.requiredFactors.contains(.secret) && secretHash == nil { return false }
        return certificate != nil || secretHash != nil
    }
}

/// What the server keeps per connection.
struct ConnectionState {
    struct Ability {
        var function: ByteBuffer
        /// CAN_DO_TIMEOUT in milliseconds, nil for none.
        var timeoutMilliseconds: Int64?
    }

    let id: ConnectionID
    let peerAddress: String
    /// Who the connection authenticated as; nil while anonymous.
    var principal: PrincipalRule?
    /// How it proved it, so an ACL reload can tell whether the proof still holds.
    var proof: AuthenticationProof?
    /// The identity (CN or SAN, as configured) of the verified client certificate, once the TLS
    /// handshake completed.
    var certificateIdentity: String?
    var clientID: ByteBuffer?
    var exceptions = false
    /// OPTION_REQ `permission-errors`: a denied CAN_DO gets ERROR PERMISSION_DENIED instead of silence.
    var permissionErrors = false
    /// Registered functions in round-robin order: a function that yields a job moves to the end.
    var abilities: [Ability] = []
    var isSleeping = false
    var noopSent = false
    var assignedJobs: Set<JobID> = []
    var listeningJobs: Set<JobID> = []
    /// Replies waiting for a durable commit, and every reply after them, in order. Empty almost
    /// always; while it is not, new replies queue here too, so none overtakes a JOB_CREATED.
    var held: Deque<HeldReply> = []

    init(id: ConnectionID, peerAddress: String) {
        self.id = id
        self.peerAddress = peerAddress
    }

    /// Replaces the held reply for `handle` by `packet`, then moves everything at the front of
    /// `held` up to the next reply still waiting for a commit into `actions`, in order. True when
    /// nothing is held any more.
    mutating func releaseHeld(handle: ByteBuffer, as packet: GearmanPacket, into actions: inout [JobServerAction]) -> Bool {
        // Commits complete in submission order, so the reply is almost always the first.
        if let index = held.firstIndex(where: {
            if case .awaitingCommit(let waiting) = $0 { return waiting == handle }
            return false
        }) {
            held[index] = .packet(packet)
        }
        while let first = held.first {
            switch first {
            case .awaitingCommit: return false
            case .packet(let packet): actions.append(.send(packet, to: id))
            case .text(let text): actions.append(.sendText(text, to: id))
            }
            held.removeFirst()
        }
        return true
    }

    /// The tenant of the principal; nil for anonymous and global principals.
    var tenant: String? { principal?.tenant }

    func abilityIndex(_ function: ByteBuffer) -> Int? {
        abilities.firstIndex { $0.function == function }
    }
}
