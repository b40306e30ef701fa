import Foundation
import GearlockCLI
import Logging
import Testing

@Suite("JSON log lines")
struct JSONLogHandlerTests {
    static let hostile = [
        "plain", "", "quote \" and backslash \\ and slash /", "new\nline\r\nand\ttab", "nul \u{0} bell \u{7} esc \u{1B} us \u{1F} del \u{7F}",
        "\u{08}\u{0C}", "é ü 名前 🚀 \u{200B}", "line sep \u{2028} para sep \u{2029}", "{\"json\": [1, 2]}", "\\u0041 not an escape",
    ]

    static func logger(_ lines: CapturedLines, level: Logger.Level = .trace, seconds: Int = 1_777_627_800) -> Logger {
        var logger = Logger(label: "gearlock") { label in
            JSONLogHandler(label: label, output: lines.output, metadataProvider: nil) {
                LogTimestamp(secondsSinceEpoch: seconds, nanoseconds: 250_999_999)
            }
        }
        logger.logLevel = level
        return logger
    }

    static func object(_ line: String) throws -> [String: Any] {
        #expect(line.hasSuffix("\n") && line.filter { $0 == "\n" }.count == 1, "one line: \(line.debugDescription)")
        let parsed = try JSONSerialization.jsonObject(with: Data(line.utf8))
        return try #require(parsed as? [String: Any], "\(line)")
    }

    @Test("any text survives a round trip through JSONSerialization, as message, key and value", arguments: hostile)
    func escaping(text: String) throws {
        let lines = CapturedLines()
        Self.logger(lines).info("\(text)", metadata: [text.isEmpty ? "empty" : text: "\(text)", "nested": ["k": "\(text)", "a": ["\(text)"]]])
        let object = try Self.object(try #require(lines.all.first))
        #expect(object["message"] as? String == text)
        #expect(object[text.isEmpty ? "empty" : text] as? String == text)
        let nested = try #require(object["nested"] as? [String: Any])
        #expect(nested["k"] as? String == text)
        #expect(nested["a"] as? [String] == [text])
    }

    @Test("control characters are escaped, the rest of Unicode is written as UTF-8")
    func exactEscapes() {
        var line = JSONLine()
        line.field("m", "a\"b\\c\nd\u{0}e\u{1F}f\u{2028}é🚀\u{7F}")
        #expect(line.line == "{\"m\":\"a\\\"b\\\\c\\nd\\u0000e\\u001ff\\u2028é🚀\u{7F}\"}\n")
    }

    @Test("the fixed fields: ISO 8601 UTC timestamp with milliseconds, level, label, message, source")
    func fixedFields() throws {
        let lines = CapturedLines()
        Self.logger(lines).warning("disk nearly full", metadata: ["queue": "sqlite:/var/lib/q.sqlite"])
        let object = try Self.object(try #require(lines.all.first))
        #expect(object["timestamp"] as? String == "2026-05-01T09:30:00.250Z")
        #expect(object["level"] as? String == "warning")
        #expect(object["label"] as? String == "gearlock")
        #expect(object["message"] as? String == "disk nearly full")
        #expect(object["source"] as? String == "GearlockCLITests")
        #expect(object["queue"] as? String == "sqlite:/var/lib/q.sqlite")
        #expect(object["audit"] == nil && object["event"] == nil)
        #expect(try #require(lines.all.first).hasPrefix("{\"timestamp\":\"2026-05-01T09:30:00.250Z\",\"level\":\"warning\","))
    }

    @Test("timestamps before 1970 and at the end of a day are written correctly")
    func timestamps() {
        #expect(LogTimestamp(secondsSinceEpoch: 0).iso8601 == "1970-01-01T00:00:00.000Z")
        #expect(LogTimestamp(secondsSinceEpoch: 951_868_799, nanoseconds: 999_000_000).iso8601 == "2000-02-29T23:59:59.999Z")
        #expect(LogTimestamp(secondsSinceEpoch: -1).iso8601 == "1969-12-31T23:59:59.000Z")
    }

    @Test("an audit event carries \"audit\": true and its kind as \"event\"")
    func auditMarker() throws {
        let lines = CapturedLines()
        Self.logger(lines).warning(
            "authentication failed; connection closed",
            metadata: ["audit": "authentication_failed", "auth.principal": "mallory (claimed)"])
        let object = try Self.object(try #require(lines.all.first))
        #expect(object["audit"] as? Bool == true)
        #expect(object["event"] as? String == "authentication_failed")
        #expect(object["auth.principal"] as? String == "mallory (claimed)")
    }

    @Test("metadata that clashes with a fixed field is kept under metadata.KEY; logger metadata is merged in")
    func clashesAndMerge() throws {
        let lines = CapturedLines()
        var logger = Self.logger(lines)
        logger[metadataKey: "server"] = "a"
        logger[metadataKey: "level"] = "from-logger"
        logger.info("hello", metadata: ["message": "sneaky", "server": "b", "timestamp": "never"])
        let object = try Self.object(try #require(lines.all.first))
        #expect(object["message"] as? String == "hello" && object["metadata.message"] as? String == "sneaky")
        #expect(object["level"] as? String == "info" && object["metadata.level"] as? String == "from-logger")
        #expect(object["metadata.timestamp"] as? String == "never")
        #expect(object["server"] as? String == "b", "the event's metadata wins")
    }

    @Test("the log level filters events")
    func levelFilters() {
        let lines = CapturedLines()
        let logger = Self.logger(lines, level: .warning)
        logger.info("dropped")
        logger.error("kept")
        #expect(lines.all.count == 1 && lines.all.first?.contains("\"kept\"") == true)
    }
}
