/// The packet numbers of the Gearman binary protocol (PROTOCOL.md §a.2).
///
/// `0` (TEXT) is not a wire type: a text admin line is recognised by its non-zero first byte.
public enum PacketType: UInt32, Sendable, Hashable, CaseIterable {
    case canDo = 1
    case cantDo = 2
    case resetAbilities = 3
    case preSleep = 4
    case unused = 5
    case noop = 6
    case submitJob = 7
    case jobCreated = 8
    case grabJob = 9
    case noJob = 10
    case jobAssign = 11
    case workStatus = 12
    case workComplete = 13
    case workFail = 14
    case getStatus = 15
    case echoRequest = 16
    case echoResponse = 17
    case submitJobBackground = 18
    case error = 19
    case statusResponse = 20
    case submitJobHigh = 21
    case setClientID = 22
    case canDoTimeout = 23
    case allYours = 24
    case workException = 25
    case optionRequest = 26
    case optionResponse = 27
    case workData = 28
    case workWarning = 29
    case grabJobUnique = 30
    case jobAssignUnique = 31
    case submitJobHighBackground = 32
    case submitJobLow = 33
    case submitJobLowBackground = 34
    case submitJobSched = 35
    case submitJobEpoch = 36
    case submitReduceJob = 37
    case submitReduceJobBackground = 38
    case grabJobAll = 39
    case jobAssignAll = 40
    case getStatusUnique = 41
    case statusResponseUnique = 42

    /// The protocol's name for the type, as gearmand's logs and the spec spell it.
    public var protocolName: String {
        switch self {
        case .canDo: "CAN_DO"
        case .cantDo: "CANT_DO"
        case .resetAbilities: "RESET_ABILITIES"
        case .preSleep: "PRE_SLEEP"
        case .unused: "UNUSED"
        case .noop: "NOOP"
        case .submitJob: "SUBMIT_JOB"
        case .jobCreated: "JOB_CREATED"
        case .grabJob: "GRAB_JOB"
        case .noJob: "NO_JOB"
        case .jobAssign: "JOB_ASSIGN"
        case .workStatus: "WORK_STATUS"
        case .workComplete: "WORK_COMPLETE"
        case .workFail: "WORK_FAIL"
        case .getStatus: "GET_STATUS"
        case .echoRequest: "ECHO_REQ"
        case .echoResponse: "ECHO_RES"
        case .submitJobBackground: "SUBMIT_JOB_BG"
        case .error: "ERROR"
        case .statusResponse: "STATUS_RES"
        case .submitJobHigh: "SUBMIT_JOB_HIGH"
        case .setClientID: "SET_CLIENT_ID"
        case .canDoTimeout: "CAN_DO_TIMEOUT"
        case .allYours: "ALL_YOURS"
        case .workException: "WORK_EXCEPTION"
        case .optionRequest: "OPTION_REQ"
        case .optionResponse: "OPTION_RES"
        case .workData: "WORK_DATA"
        case .workWarning: "WORK_WARNING"
        case .grabJobUnique: "GRAB_JOB_UNIQ"
        case .jobAssignUnique: "JOB_ASSIGN_UNIQ"
        case .submitJobHighBackground: "SUBMIT_JOB_HIGH_BG"
        case .submitJobLow: "SUBMIT_JOB_LOW"
        case .submitJobLowBackground: "SUBMIT_JOB_LOW_BG"
        case .submitJobSched: "SUBMIT_JOB_SCHED"
        case .submitJobEpoch: "SUBMIT_JOB_EPOCH"
        case .submitReduceJob: "SUBMIT_REDUCE_JOB"
        case .submitReduceJobBackground: "SUBMIT_REDUCE_JOB_BACKGROUND"
        case .grabJobAll: "GRAB_JOB_ALL"
        case .jobAssignAll: "JOB_ASSIGN_ALL"
        case .getStatusUnique: "GET_STATUS_UNIQUE"
        case .statusResponseUnique: "STATUS_RES_UNIQUE"
        }
    }

    /// How the payload splits into arguments: `fields` NUL-terminated fields, then either an opaque
    /// data tail (`hasData`) or, when `hasData` is false, the last field runs to the end of the payload.
    /// This is gearmand's parse table (libgearman/command.cc).
    public var argumentLayout: (fields: Int, hasData: Bool) {
        switch self {
        case .canDo, .cantDo, .jobCreated, .workFail, .getStatus, .setClientID, .optionRequest,
            .optionResponse, .getStatusUnique:
            (1, false)
        case .resetAbilities, .preSleep, .unused, .noop, .grabJob, .noJob, .allYours, .grabJobUnique, .grabJobAll:
            (0, false)
        case .submitJob, .submitJobBackground, .submitJobHigh, .submitJobHighBackground, .submitJobLow,
            .submitJobLowBackground:
            (2, true)
        case .jobAssign: (2, true)
        case .workStatus: (3, false)
        case .workComplete, .workException, .workData, .workWarning: (1, true)
        case .echoRequest, .echoResponse: (0, true)
        case .error, .canDoTimeout: (2, false)
        case .statusResponse: (5, false)
        case .jobAssignUnique: (3, true)
        case .submitJobSched: (7, true)
        case .submitJobEpoch: (3, true)
        case .submitReduceJob, .submitReduceJobBackground: (4, true)
        case .jobAssignAll: (4, true)
        case .statusResponseUnique: (6, false)
        }
    }
}

/// The 4-byte magic that starts every binary packet.
public enum PacketMagic: Sendable, Hashable {
    /// `\0REQ`: a packet sent to the server.
    case request
    /// `\0RES`: a packet sent by the server.
    case response

    static let requestBytes: UInt32 = 0x0052_4551  // "\0REQ"
    static let responseBytes: UInt32 = 0x0052_4553  // "\0RES"

    var wireValue: UInt32 {
        switch self {
        case .request: Self.requestBytes
        case .response: Self.responseBytes
        }
    }
}
