import Foundation
import Testing

/// The configurations the repository ships or documents stay valid as the options change.
@Suite("Shipped and documented configurations", .serialized, .timeLimit(.minutes(5)))
struct DistributedConfigurationTests {
    static let packageRoot: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<4 { url.deleteLastPathComponent() }  // …/Tests/IntegrationTests/Operations/<file>
        return url.path
    }()

    @Test("dist/systemd/gearlock.yaml passes --check-config (its queue directory aside)")
    func systemdConfiguration() async throws {
        let result = try await runGearlockServe(
            ["--config", Self.packageRoot + "/dist/systemd/gearlock.yaml", "--check-config", "--queue", "memory"])
        #expect(result.exitCode == 0 && result.stdoutString.hasPrefix("configuration OK"), "\(result)")
    }

    @Test("README's complete example parses: only its missing TLS files, ACL and queue directory are reported")
    func readmeExample() async throws {
        let readme = try String(contentsOfFile: Self.packageRoot + "/README.md", encoding: .utf8)
        let section = try #require(readme.range(of: "## Configuration file"))
        let block = try #require(readme[section.upperBound...].firstMatch(of: /```yaml\n(?<body>(?s:.*?))```/))
        let (_, result) = try await runGearlockServe(config: String(block.output.body), ["--check-config"])
        #expect(result.exitCode == 1, "options and values parsed; only the files are missing: \(result)")
        let problems = result.stderrString.split(separator: "\n").dropFirst()
        #expect(problems.count == 3, "\(result)")
        #expect(problems.contains { $0.hasPrefix("  TLS: cannot load the certificate chain from ") }, "\(result)")
        #expect(problems.contains { $0.hasPrefix("  ACL: ") }, "\(result)")
        #expect(problems.contains { $0.hasPrefix("  queue: the directory of /var/lib/gearlock/queue.sqlite") }, "\(result)")
    }
}
