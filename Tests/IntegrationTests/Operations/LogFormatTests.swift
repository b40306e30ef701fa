import Foundation
import GearmanProtocol
import Testing

/// `gearlock serve --log-format json|text`: the real server's log, with an audit event provoked.
@Suite("gearlock serve --log-format", .serialized, .timeLimit(.minutes(2)))
struct LogFormatTests {
    /// Starts the server with the two-tenant ACL and `format`, fails one authentication, stops the
    /// server, and returns everything it logged.
    static func logAfterFailedAuthentication(format: String) async throws -> ProcessResult {
        let directory = try ConfigDirectory()
        defer { directory.remove() }
        let acl = try directory.write("acl.yaml", ACLServeCommandTests.servedYAML())
        return try await withGearlockServe({ port in
            ["--listen", "127.0.0.1:\(port)", "--queue", "memory", "--acl", acl, "--log-format", format, "--log-level", "info"]
        }) { port, process in
            let client = try await RawClient.connect(host: "127.0.0.1", port: port, label: "mallory")
            try await client.send(RawPacket.request(.optionRequest, "auth:acme-web:not-the-\"secret\"\n"))
            let reply = try await client.receivePacket()
            #expect(reply.type == PacketType.error.rawValue, "\(reply)")
            await client.close()
            return await process.terminate(grace: .seconds(30))
        }
    }

    @Test("JSON: every line is one JSON object with the fixed fields; the audit event is marked")
    func json() async throws {
        let result = try await Self.logAfterFailedAuthentication(format: "json")
        #expect(result.exitCode == 0, "\(result)")
        let lines = result.stderrString.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
        #expect(lines.count >= 2, "ACL loaded, the audit event: \(result)")
        var objects: [[String: Any]] = []
        for line in lines {
            let parsed = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            let object = try #require(parsed, "not a JSON object: \(line)")
            for field in ["timestamp", "level", "label", "message", "source"] {
                #expect(object[field] is String, "\(field) in \(line)")
            }
            let timestamp = try #require(object["timestamp"] as? String)
            #expect(timestamp.wholeMatch(of: /\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z/) != nil, "\(timestamp)")
            objects.append(object)
        }
        let audits = objects.filter { $0["audit"] as? Bool == true }
        #expect(audits.count == 1, "\(result)")
        let audit = try #require(audits.first)
        #expect(audit["event"] as? String == "authentication_failed")
        #expect(audit["level"] as? String == "warning")
        #expect(audit["message"] as? String == "authentication failed; connection closed")
        #expect(audit["source"] as? String == "GearmanServer")
        #expect(audit["peer.address"] is String && audit["auth.principal"] as? String == "acme-web (claimed)")
        #expect(objects.contains { $0["message"] as? String == "ACL loaded" && $0["acl.principals"] as? String == "6" })
        #expect(!result.stderrString.contains("not-the-"), "the presented secret is never logged")
    }

    @Test("text: the audit event's message starts with AUDIT and its kind")
    func text() async throws {
        let result = try await Self.logAfterFailedAuthentication(format: "text")
        #expect(result.exitCode == 0, "\(result)")
        let audits = result.stderrString.split(separator: "\n").filter { $0.contains(" AUDIT ") }
        #expect(audits.count == 1, "\(result)")
        #expect(audits.first?.hasSuffix("[GearmanServer] AUDIT authentication_failed: authentication failed; connection closed") == true, "\(result)")
        #expect(audits.first?.contains(" warning gearlock: ") == true, "\(result)")
        #expect(!result.stderrString.contains("{\""), "no JSON by default")
    }
}
