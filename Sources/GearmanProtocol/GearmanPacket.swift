public import NIOCore

/// One binary Gearman packet, with its arguments as they travel on the wire.
///
/// Arguments stay `ByteBuffer` slices of the bytes that were read, so a payload crosses the
/// server without being copied or turned into a `String`. Numbers that travel as decimal text
/// (status numerator, CAN_DO_TIMEOUT's milliseconds, an epoch time) stay text here; the layer that
/// acts on them parses them and reports a bad one as a protocol error it can answer.
public enum GearmanPacket: Sendable, Hashable {
    // MARK: Worker → server
    case canDo(function: ByteBuffer)
    case cantDo(function: ByteBuffer)
    case resetAbilities
    case preSleep
    case grabJob
    case grabJobUnique
    case grabJobAll
    case canDoTimeout(function: ByteBuffer, timeout: ByteBuffer)
    case allYours

    // MARK: Work results (worker → server, forwarded server → client)
    case workStatus(handle: ByteBuffer, numerator: ByteBuffer, denominator: ByteBuffer)
    case workComplete(handle: ByteBuffer, payload: ByteBuffer)
    case workFail(handle: ByteBuffer)
    case workException(handle: ByteBuffer, payload: ByteBuffer)
    case workData(handle: ByteBuffer, payload: ByteBuffer)
    case workWarning(handle: ByteBuffer, payload: ByteBuffer)

    // MARK: Client → server
    /// SUBMIT_JOB, _HIGH, _LOW and their _BG variants.
    case submitJob(function: ByteBuffer, unique: ByteBuffer, payload: ByteBuffer, priority: JobPriority, background: Bool)
    /// SUBMIT_JOB_EPOCH: a background NORMAL job runnable once the time reaches `epoch` (decimal seconds).
    case submitJobEpoch(function: ByteBuffer, unique: ByteBuffer, epoch: ByteBuffer, payload: ByteBuffer)
    /// SUBMIT_JOB_SCHED: cron-style fields (minute, hour, day of month, month, day of week). Parsed, never run.
    case submitJobSched(function: ByteBuffer, unique: ByteBuffer, schedule: CronFields, payload: ByteBuffer)
    /// SUBMIT_REDUCE_JOB(_BACKGROUND), with the aggregator field the wire carries but the spec omits.
    case submitReduceJob(
        function: ByteBuffer, unique: ByteBuffer, reducer: ByteBuffer, aggregator: ByteBuffer, payload: ByteBuffer,
        background: Bool)
    case getStatus(handle: ByteBuffer)
    case getStatusUnique(unique: ByteBuffer)
    case optionRequest(name: ByteBuffer)

    // MARK: Any → server
    case echoRequest(payload: ByteBuffer)
    case setClientID(id: ByteBuffer)

    // MARK: Server → client or worker
    case noop
    case jobCreated(handle: ByteBuffer)
    case noJob
    case jobAssign(handle: ByteBuffer, function: ByteBuffer, payload: ByteBuffer)
    case jobAssignUnique(handle: ByteBuffer, function: ByteBuffer, unique: ByteBuffer, payload: ByteBuffer)
    case jobAssignAll(
        handle: ByteBuffer, function: ByteBuffer, unique: ByteBuffer, reducer: ByteBuffer, payload: ByteBuffer)
    case echoResponse(payload: ByteBuffer)
    case error(code: ByteBuffer, text: ByteBuffer)
    case statusResponse(
        handle: ByteBuffer, known: Bool, running: Bool, numerator: ByteBuffer, denominator: ByteBuffer)
    /// STATUS_RES_UNIQUE. Its first field is the unique echoed back (not a handle, whatever the spec says),
    /// and `clients` counts the foreground clients waiting on the job.
    case statusResponseUnique(
        unique: ByteBuffer, known: Bool, running: Bool, numerator: ByteBuffer, denominator: ByteBuffer,
        clients: ByteBuffer)
    case optionResponse(name: ByteBuffer)

    // MARK: Never valid
    /// Packet number 5, reserved and unused.
    case unused

    /// The packet number this packet travels as.
    public var type: PacketType {
        switch self {
        case .canDo: .canDo
        case .cantDo: .cantDo
        case .resetAbilities: .resetAbilities
        case .preSleep: .preSleep
        case .grabJob: .grabJob
        case .grabJobUnique: .grabJobUnique
        case .grabJobAll: .grabJobAll
        case .canDoTimeout: .canDoTimeout
        case .allYours: .allYours
        case .workStatus: .workStatus
        case .workComplete: .workComplete
        case .workFail: .workFail
        case .workException: .workException
        case .workData: .workData
        case .workWarning: .workWarning
        case .submitJob(_, _, _, let priority, let background):
            switch (priority, background) {
            case (.normal, false): .submitJob
            case (.high, false): .submitJobHigh
            case (.low, false): .submitJobLow
            case (.normal, true): .submitJobBackground
            case (.high, true): .submitJobHighBackground
            case (.low, true): .submitJobLowBackground
            }
        case .submitJobEpoch: .submitJobEpoch
        case .submitJobSched: .submitJobSched
        case .submitReduceJob(_, _, _, _, _, let background):
            background ? .submitReduceJobBackground : .submitReduceJob
        case .getStatus: .getStatus
        case .getStatusUnique: .getStatusUnique
        case .optionRequest: .optionRequest
        case .echoRequest: .echoRequest
        case .setClientID: .setClientID
        case .noop: .noop
        case .jobCreated: .jobCreated
        case .noJob: .noJob
        case .jobAssign: .jobAssign
        case .jobAssignUnique: .jobAssignUnique
        case .jobAssignAll: .jobAssignAll
        case .echoResponse: .echoResponse
        case .error: .error
        case .statusResponse: .statusResponse
        case .statusResponseUnique: .statusResponseUnique
        case .optionResponse: .optionResponse
        case .unused: .unused
        }
    }
}

/// The five cron-style fields of SUBMIT_JOB_SCHED, kept as the text that was sent.
public struct CronFields: Sendable, Hashable {
    public var minute: ByteBuffer
    public var hour: ByteBuffer
    public var dayOfMonth: ByteBuffer
    public var month: ByteBuffer
    public var dayOfWeek: ByteBuffer

    public init(minute: ByteBuffer, hour: ByteBuffer, dayOfMonth: ByteBuffer, month: ByteBuffer, dayOfWeek: ByteBuffer) {
        self.minute = minute
        self.hour = hour
        self.dayOfMonth = dayOfMonth
        self.month = month
        self.dayOfWeek = dayOfWeek
    }
}

extension GearmanPacket {
    /// The error packet with gearmand's code string and text.
    public static func error(code: String, text: String) -> GearmanPacket {
        .error(code: ByteBuffer(string: code), text: ByteBuffer(string: text))
    }
}
