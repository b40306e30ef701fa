import GearlockCLI
import Logging
import Testing

@Suite("Text log lines")
struct TextLogHandlerTests {
    static func logger(_ lines: CapturedLines) -> Logger {
        Logger(label: "gearlock") { TextLogHandler(label: $0, stream: CapturedStream(lines: lines)) }
    }

    @Test("an audit event's message starts with AUDIT and its kind; swift-log's format is otherwise unchanged")
    func auditPrefix() throws {
        let lines = CapturedLines()
        Self.logger(lines).warning("authentication failed; connection closed", metadata: ["audit": "authentication_failed"])
        let line = try #require(lines.all.first)
        #expect(line.hasSuffix(" AUDIT authentication_failed: authentication failed; connection closed\n"), "\(line)")
        #expect(line.contains(" warning gearlock: audit=authentication_failed "), "\(line)")
    }

    @Test("other events are written as StreamLogHandler writes them")
    func plainEvent() throws {
        let lines = CapturedLines()
        Self.logger(lines).info("queue store opened", metadata: ["queue": "memory"])
        let line = try #require(lines.all.first)
        #expect(line.hasSuffix(" info gearlock: queue=memory [GearlockCLITests] queue store opened\n"), "\(line)")
        #expect(!line.contains("AUDIT"))
    }

    @Test("metadata set on the logger reaches the line; the level filters")
    func metadataAndLevel() throws {
        let lines = CapturedLines()
        var logger = Self.logger(lines)
        logger.logLevel = .notice
        logger[metadataKey: "audit"] = "permission_denied"
        logger.info("dropped")
        logger.notice("denied")
        #expect(lines.all.count == 1)
        #expect(try #require(lines.all.first).hasSuffix("AUDIT permission_denied: denied\n"))
    }
}

@Suite("A log level shared by handlers")
struct LogLevelSwitchTests {
    @Test("changing the switch changes the level of every logger made with it, copies included")
    func sharedLevel() {
        let lines = CapturedLines()
        let level = LogLevelSwitch(.info)
        let logger = Logger(label: "gearlock") { TextLogHandler(label: $0, stream: CapturedStream(lines: lines), level: level) }
        let copy = logger
        let json = Logger(label: "gearlock") { JSONLogHandler(label: $0, output: lines.output, level: level) }
        logger.debug("hidden")
        json.debug("hidden")
        level.current = .debug
        copy.debug("shown")
        json.debug("shown too")
        #expect(lines.all.count == 2)
        #expect(lines.all.first?.hasSuffix("shown\n") == true)
        var setter = logger
        setter.logLevel = .error
        #expect(level.current == .error, "setting a handler's level sets the switch")
        copy.warning("hidden")
        #expect(lines.all.count == 2)
    }
}
