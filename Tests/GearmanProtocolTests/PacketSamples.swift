import GearmanProtocol
import NIOCore
import Testing

/// One packet to round-trip, with a readable name for the test report.
struct PacketSample: Sendable, CustomTestStringConvertible {
    let name: String
    let packet: GearmanPacket

    init(_ name: String, _ packet: GearmanPacket) {
        self.name = name
        self.packet = packet
    }

    var testDescription: String { name }
}

/// Every case of `GearmanPacket`, with distinct argument values so a swapped field shows up,
/// plus empty arguments and data tails containing NUL bytes.
enum PacketSamples {
    /// A data tail that contains NULs: only the declared fields are NUL-split, never the data.
    static let binaryData = ByteBuffer(bytes: [0x00, 0x01, 0x00, 0xFF, 0x00])

    static let submitJobs: [PacketSample] = {
        var samples: [PacketSample] = []
        for background in [false, true] {
            for priority in JobPriority.allCases {
                samples.append(
                    PacketSample(
                        "SUBMIT_JOB \(priority) \(background ? "bg" : "fg")",
                        .submitJob(
                            function: buf("reverse"), unique: buf("u-\(priority)-\(background)"),
                            payload: buf("hello"), priority: priority, background: background)))
            }
        }
        return samples
    }()

    static let all: [PacketSample] =
        [
            PacketSample("CAN_DO", .canDo(function: buf("reverse"))),
            PacketSample("CAN_DO empty", .canDo(function: buf(""))),
            PacketSample("CANT_DO", .cantDo(function: buf("reverse"))),
            PacketSample("RESET_ABILITIES", .resetAbilities),
            PacketSample("PRE_SLEEP", .preSleep),
            PacketSample("GRAB_JOB", .grabJob),
            PacketSample("GRAB_JOB_UNIQ", .grabJobUnique),
            PacketSample("GRAB_JOB_ALL", .grabJobAll),
            PacketSample("CAN_DO_TIMEOUT", .canDoTimeout(function: buf("reverse"), timeout: buf("1500"))),
            PacketSample("ALL_YOURS", .allYours),
            PacketSample(
                "WORK_STATUS", .workStatus(handle: buf("H:host:1"), numerator: buf("3"), denominator: buf("10"))),
            PacketSample("WORK_COMPLETE", .workComplete(handle: buf("H:host:2"), payload: buf("olleh"))),
            PacketSample("WORK_COMPLETE binary", .workComplete(handle: buf("H:host:2"), payload: binaryData)),
            PacketSample("WORK_COMPLETE empty", .workComplete(handle: buf("H:host:2"), payload: buf(""))),
            PacketSample("WORK_FAIL", .workFail(handle: buf("H:host:3"))),
            PacketSample("WORK_EXCEPTION", .workException(handle: buf("H:host:4"), payload: buf("boom"))),
            PacketSample("WORK_DATA", .workData(handle: buf("H:host:5"), payload: buf("partial"))),
            PacketSample("WORK_WARNING", .workWarning(handle: buf("H:host:6"), payload: buf("careful"))),
        ]
        + submitJobs
        + [
            PacketSample(
                "SUBMIT_JOB empty unique, binary data",
                .submitJob(
                    function: buf("f"), unique: buf(""), payload: binaryData, priority: .normal, background: false)),
            PacketSample(
                "SUBMIT_JOB_EPOCH",
                .submitJobEpoch(function: buf("reverse"), unique: buf("u-epoch"), epoch: buf("1700000000"), payload: buf("later"))),
            PacketSample(
                "SUBMIT_JOB_SCHED",
                .submitJobSched(
                    function: buf("reverse"), unique: buf("u-sched"),
                    schedule: CronFields(
                        minute: buf("5"), hour: buf("4"), dayOfMonth: buf("3"), month: buf("2"), dayOfWeek: buf("1")),
                    payload: buf("cron"))),
            PacketSample(
                "SUBMIT_REDUCE_JOB",
                .submitReduceJob(
                    function: buf("map"), unique: buf("u-reduce"), reducer: buf("sum"), aggregator: buf("agg"),
                    payload: buf("1 2 3"), background: false)),
            PacketSample(
                "SUBMIT_REDUCE_JOB_BACKGROUND",
                .submitReduceJob(
                    function: buf("map"), unique: buf("u-reduce-bg"), reducer: buf("sum"), aggregator: buf("agg-bg"),
                    payload: buf("4 5 6"), background: true)),
            PacketSample(
                "SUBMIT_REDUCE_JOB empty aggregator (libgearman)",
                .submitReduceJob(
                    function: buf("map"), unique: buf(""), reducer: buf("sum"), aggregator: buf(""),
                    payload: buf("x"), background: false)),
            PacketSample("GET_STATUS", .getStatus(handle: buf("H:host:7"))),
            PacketSample("GET_STATUS_UNIQUE", .getStatusUnique(unique: buf("u-status"))),
            PacketSample("OPTION_REQ", .optionRequest(name: buf("exceptions"))),
            PacketSample("ECHO_REQ", .echoRequest(payload: buf("ping"))),
            PacketSample("ECHO_REQ binary", .echoRequest(payload: binaryData)),
            PacketSample("ECHO_REQ empty", .echoRequest(payload: buf(""))),
            PacketSample("SET_CLIENT_ID", .setClientID(id: buf("worker-A"))),
            PacketSample("NOOP", .noop),
            PacketSample("JOB_CREATED", .jobCreated(handle: buf("H:host:8"))),
            PacketSample("NO_JOB", .noJob),
            PacketSample("JOB_ASSIGN", .jobAssign(handle: buf("H:host:9"), function: buf("reverse"), payload: buf("abc"))),
            PacketSample(
                "JOB_ASSIGN_UNIQ",
                .jobAssignUnique(handle: buf("H:host:10"), function: buf("reverse"), unique: buf("u-10"), payload: buf("def"))),
            PacketSample(
                "JOB_ASSIGN_ALL",
                .jobAssignAll(
                    handle: buf("H:host:11"), function: buf("map"), unique: buf("u-11"), reducer: buf("sum"),
                    payload: buf("ghi"))),
            PacketSample("ECHO_RES", .echoResponse(payload: buf("pong"))),
            PacketSample("ERROR", .error(code: "QUEUE_ERROR", text: "Job queue is full")),
        ]
        + statusResponses
        + [
            PacketSample("OPTION_RES", .optionResponse(name: buf("exceptions"))),
            PacketSample("UNUSED", .unused),
        ]

    /// STATUS_RES and STATUS_RES_UNIQUE with every known/running combination.
    static let statusResponses: [PacketSample] = {
        var samples: [PacketSample] = []
        for known in [false, true] {
            for running in [false, true] {
                samples.append(
                    PacketSample(
                        "STATUS_RES known=\(known) running=\(running)",
                        .statusResponse(
                            handle: buf("H:host:12"), known: known, running: running, numerator: buf("1"),
                            denominator: buf("2"))))
                samples.append(
                    PacketSample(
                        "STATUS_RES_UNIQUE known=\(known) running=\(running)",
                        .statusResponseUnique(
                            unique: buf("u-12"), known: known, running: running, numerator: buf("3"),
                            denominator: buf("4"), clients: buf("5"))))
            }
        }
        return samples
    }()
}
