import Foundation
import GearmanServer
import Testing

@Suite("gearlock --version and shell completions", .serialized, .timeLimit(.minutes(5)))
struct ShellCompletionAndVersionTests {
    @Test("--version prints the server's version")
    func version() async throws {
        let result = try await runProcess(GearlockBinary.path, ["--version"])
        #expect(result.exitCode == 0 && result.stdoutString == JobServer.version + "\n", "\(result)")
    }

    @Test("a completion script is generated for each shell, with the subcommands and serve's options", arguments: [
        ("bash", "_gearlock"), ("zsh", "#compdef gearlock"), ("fish", "complete -c 'gearlock'"),
    ])
    func completionScript(shell: String, marker: String) async throws {
        let result = try await runProcess(GearlockBinary.path, ["--generate-completion-script", shell])
        #expect(result.exitCode == 0, "\(result)")
        let script = result.stdoutString
        #expect(script.contains(marker), "\(shell): \(script.prefix(300))")
        for word in ["serve", "submit", "admin", "certs", "job-handle-prefix", "log-format", "config"] {
            #expect(script.contains(word), "\(shell) script lacks \(word)")
        }
    }

    @Test("the bash script is valid bash")
    func bashSyntax() async throws {
        let result = try await runProcess(GearlockBinary.path, ["--generate-completion-script", "bash"])
        let directory = try ConfigDirectory()
        defer { directory.remove() }
        let script = try directory.write("gearlock.bash", result.stdoutString)
        let check = try await runProcess("/bin/bash", ["-n", script])
        #expect(check.exitCode == 0 && check.stderrString.isEmpty, "\(check)")
    }
}
