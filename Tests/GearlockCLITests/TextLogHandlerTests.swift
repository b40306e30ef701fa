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
