import Foundation
import Testing

/// `gearlock acl check` and `gearlock acl new-secret`, run as the real binary.
@Suite("gearlock acl binary", .serialized, .timeLimit(.minutes(5)))
struct ACLCommandTests {
    static func withTemporaryFile<T>(_ contents: String, _ body: (String) async throws -> T) async throws -> T {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("gearlock-acl-\(UUID().uuidString).yaml").path
        try contents.write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        return try await body(path)
    }

    @Test("`acl check` accepts a valid file: exit 0 and a summary")
    func checkGood() async throws {
        let yaml = """
            tenants:
              acme: { functions: ["acme.*"], max_queued_jobs: 100 }
              globex: { functions: ["globex.*"] }
            principals:
              acme-web:
                tenant: acme
                secret: "sha256:761fed9dbb22427bedbc73c3f0ab93fff41104aa77eb145025d0113be8c035a3"
                submit: ["acme.*"]
              ops:
                certificate: ops-admin
                admin: write
            """
        let result = try await Self.withTemporaryFile(yaml) { path in
            try await runProcess(GearlockBinary.path, ["acl", "check", path])
        }
        #expect(result.exitCode == 0, "\(result)")
        #expect(result.stdoutString == "2 tenants, 2 principals\n", "\(result)")
        #expect(result.stderrString.isEmpty, "\(result)")
    }

    @Test("`acl check` refuses a bad file: exit 1 and FILE:LINE: problem lines")
    func checkBad() async throws {
        let yaml = """
            tenants:
              acme: { functions: ["acme.*"] }
            principals:
              w:
                tenant: acme
                certificate: w
                can_do: ["*"]
                colour: blue
            """
        try await Self.withTemporaryFile(yaml) { path in
            let result = try await runProcess(GearlockBinary.path, ["acl", "check", path])
            #expect(result.exitCode == 1, "\(result)")
            #expect(result.stdoutString.isEmpty, "\(result)")
            let lines = result.stderrString.split(separator: "\n").map(String.init)
            #expect(lines.count == 2, "\(result)")
            #expect(lines.first?.hasPrefix("\(path):7: ") == true && lines.first?.contains("\"*\"") == true, "\(result)")
            #expect(lines.last?.hasPrefix("\(path):8: unknown key \"colour\"") == true, "\(result)")
        }
    }

    @Test("`acl check` on a missing file: exit 1")
    func checkMissing() async throws {
        let result = try await runProcess(GearlockBinary.path, ["acl", "check", "/nonexistent/acl.yaml"])
        #expect(result.exitCode == 1, "\(result)")
        #expect(result.stderrString.hasPrefix("/nonexistent/acl.yaml: cannot read the file"), "\(result)")
    }

    @Test("`acl new-secret` prints a secret whose SHA-256 is the printed hash, and the hash loads")
    func newSecret() async throws {
        let result = try await runProcess(GearlockBinary.path, ["acl", "new-secret", "--principal", "acme-web"])
        #expect(result.exitCode == 0, "\(result)")
        let lines = result.stdoutString.split(separator: "\n").map(String.init)
        try #require(lines.count == 2, "\(result)")
        let secret = try #require(lines[0].hasPrefix("secret: ") ? String(lines[0].dropFirst(8)) : nil)
        let hash = try #require(lines[1].hasPrefix("hash: ") ? String(lines[1].dropFirst(6)) : nil)
        #expect(secret.utf8.count == 43 && secret.allSatisfy { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" })
        // Hash the secret independently of our code.
        let digest = try await runProcess("/usr/bin/sha256sum", [], stdin: Data(secret.utf8))
        #expect(hash == "sha256:" + (digest.stdoutString.split(separator: " ").first.map(String.init) ?? ""))
        #expect(result.stderrString.contains("only the hash") || result.stderrString.contains("Put only the hash"))
        #expect(result.stderrString.contains("acme-web:") && !result.stderrString.contains(secret))

        let yaml = "principals:\n  acme-web:\n    secret: \"\(hash)\"\n"
        let check = try await Self.withTemporaryFile(yaml) { path in
            try await runProcess(GearlockBinary.path, ["acl", "check", path])
        }
        #expect(check.exitCode == 0 && check.stdoutString == "0 tenants, 1 principal\n", "\(check)")

        let another = try await runProcess(GearlockBinary.path, ["acl", "new-secret"])
        #expect(another.exitCode == 0 && !another.stdoutString.contains(secret))
    }
}
