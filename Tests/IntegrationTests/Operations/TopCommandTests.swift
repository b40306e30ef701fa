import Foundation
import GearmanProtocol
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A tmux server of its own (a private socket) running one command in a 120×30 pane that stays
/// after the command exits, so its exit status and last screen can be read.
struct TmuxPane {
    static let tmux = "/usr/bin/tmux"
    let socket = "gearlock-top-\(UUID().uuidString.prefix(8))"
    let configuration: String

    /// Starts `command` (run by `sh -c`).
    init(_ command: String) async throws {
        configuration = NSTemporaryDirectory() + socket + ".conf"
        try Data("set-option -g remain-on-exit on\n".utf8).write(to: URL(fileURLWithPath: configuration))
        let started = try await runProcess(
            Self.tmux, ["-L", socket, "-f", configuration, "new-session", "-d", "-x", "120", "-y", "30", "-s", "top", command])
        try #require(started.exitCode == 0, "tmux new-session: \(started)")
    }

    @discardableResult
    func tmux(_ arguments: [String]) async throws -> String {
        let result = try await runProcess(Self.tmux, ["-L", socket] + arguments)
        try #require(result.exitCode == 0, "tmux \(arguments): \(result)")
        return result.stdoutString
    }

    /// What the pane shows now, with the normal screen's history (the alternate screen has none).
    func capture() async throws -> String { try await tmux(["capture-pane", "-p", "-S", "-", "-t", "top"]) }

    /// A tmux format (`#{pane_dead}`) for the pane.
    func display(_ format: String) async throws -> String {
        try await tmux(["display-message", "-p", "-t", "top", format]).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func sendKeys(_ keys: String) async throws { _ = try await tmux(["send-keys", "-t", "top", keys]) }

    /// Polls the screen until `predicate` holds; returns the last screen.
    func screen(until what: String, _ predicate: @Sendable (String) -> Bool) async throws -> String {
        let deadline = ContinuousClock.now + .seconds(20)
        var screen = try await capture()
        while !predicate(screen) {
            guard ContinuousClock.now < deadline else {
                Issue.record("the pane did not show \(what) within 20 s; it shows:\n\(screen)")
                return screen
            }
            try await Task.sleep(for: .milliseconds(100))
            screen = try await capture()
        }
        return screen
    }

    func kill() async {
        _ = try? await runProcess(Self.tmux, ["-L", socket, "kill-server"])
        try? FileManager.default.removeItem(atPath: configuration)
    }
}

/// Runs `command` in a new pane for `body`, and kills the pane's tmux server afterwards, whether
/// `body` returned or threw.
func withTmuxPane(_ command: String, _ body: (TmuxPane) async throws -> Void) async throws {
    let pane = try await TmuxPane(command)
    do {
        try await body(pane)
    } catch {
        await pane.kill()
        throw error
    }
    await pane.kill()
}

/// `gearlock top`: the live view in a real pseudo-terminal (tmux), and `--once` for scripts.
@Suite("gearlock top", .timeLimit(.minutes(3)), .serialized)
struct TopCommandTests {
    /// A shell line that runs `top` and then prints the terminal's modes and top's exit status on
    /// the normal screen.
    static func shellLine(port: Int) -> String {
        // `trap true INT`: the shell outlives a Ctrl-C meant for `top` (which gets the default action).
        "trap true INT; '\(GearlockBinary.path)' top --server 127.0.0.1:\(port) --interval 0.2; s=$?; "
            + "echo modes: $(stty -a | tr ' ;' '\\n\\n' | grep -x -e icanon -e -icanon -e echo -e -echo); "
            + "echo top-exit=$s"
    }

    /// The pane's row for `function`, as words.
    static func row(_ function: String, in screen: String) -> [Substring]? {
        screen.split(separator: "\n").map { $0.split(separator: " ") }.first { $0.first.map(String.init) == function }
    }

    static func submitBackground(port: Int, function: String, count: Int) async throws {
        let client = try await RawClient.connect(host: "127.0.0.1", port: port, label: "submitter")
        for index in 0..<count {
            _ = try await client.submit(function, payload: "job \(index)", type: .submitJobBackground)
        }
        await client.close()
    }

    @Test(
        "top shows a queued function with its depth, quits on q (or Ctrl-C, or SIGTERM), and restores the terminal",
        arguments: ["q", "C-c", "SIGTERM"])
    func liveView(quitKey: String) async throws {
        try await withGearlockBinary { port, _ in
            try await Self.submitBackground(port: port, function: "top.queued", count: 3)
            try await withTmuxPane(Self.shellLine(port: port)) { pane in
                let screen = try await pane.screen(until: "top.queued with 3 queued") { screen in
                    Self.row("top.queued", in: screen).map { $0.count >= 5 && $0[1] == "3" && $0[2] == "0" } ?? false
                }
                #expect(screen.contains("gearlock top  127.0.0.1:\(port)"), "\(screen)")
                #expect(screen.contains("QUEUED  RUNNING  WORKERS  NET/S"), "\(screen)")
                #expect(try await pane.display("#{alternate_on}") == "1", "the view is on the alternate screen")

                // The view follows the server: two more jobs.
                try await Self.submitBackground(port: port, function: "top.queued", count: 2)
                _ = try await pane.screen(until: "top.queued with 5 queued") { screen in
                    Self.row("top.queued", in: screen).map { $0.count >= 5 && $0[1] == "5" } ?? false
                }

                if quitKey == "SIGTERM" {
                    let shell = try #require(pid_t(try await pane.display("#{pane_pid}")))
                    let top = try #require(descendantPIDs(of: shell).first, "the shell's child, gearlock top")
                    kill(top, SIGTERM)
                } else {
                    try await pane.sendKeys(quitKey)
                }
                let after = try await pane.screen(until: "top's exit status") { $0.contains("top-exit=") }
                #expect(after.contains("top-exit=0"), "\(after)")
                #expect(after.contains("modes: icanon echo"), "canonical mode and echo are back: \(after)")
                #expect(!after.contains("top.queued"), "the table was left with the alternate screen: \(after)")
                #expect(try await pane.display("#{alternate_on}") == "0")
            }
        }
    }

    @Test("the view fits a terminal resized while it runs (SIGWINCH), and s switches to the longest queue first")
    func resizeAndSort() async throws {
        try await withGearlockBinary { port, _ in
            for (index, name) in ["fit.a", "fit.b", "fit.c", "fit.d", "fit.e", "fit.f"].enumerated() {
                try await Self.submitBackground(port: port, function: name, count: index + 1)
            }
            try await withTmuxPane(Self.shellLine(port: port)) { pane in
                /// The first row under the column titles.
                @Sendable func firstRow(_ screen: String) -> String? {
                    let lines = screen.split(separator: "\n", omittingEmptySubsequences: false)
                    return lines.firstIndex { $0.hasPrefix("FUNCTION") }.flatMap { $0 + 1 < lines.count ? String(lines[$0 + 1]) : nil }
                }
                _ = try await pane.screen(until: "all six functions") { Self.row("fit.f", in: $0)?.dropFirst().first == "6" }
                _ = try await pane.tmux(["resize-window", "-t", "top", "-x", "50", "-y", "8"])
                let small = try await pane.screen(until: "the rows that don't fit counted") { $0.contains("… 4 more (enlarge") }
                let lines = small.split(separator: "\n", omittingEmptySubsequences: false)
                #expect(lines.first?.hasPrefix("gearlock top  127.0.0.1:\(port)") == true, "the title stays on top: \(small)")
                // Title, totals, keys, a blank line, the column titles, two rows and the count: 8 rows.
                #expect(lines.count >= 8 && lines[7].hasPrefix("… 4 more"), "\(small)")
                #expect(lines.dropFirst(8).allSatisfy { $0.isEmpty }, "\(small)")
                #expect(firstRow(small)?.hasPrefix("fit.a ") == true, "by name: \(small)")

                try await pane.sendKeys("s")
                let sorted = try await pane.screen(until: "the longest queue first") { firstRow($0)?.hasPrefix("fit.f ") == true }
                #expect(sorted.contains("sort: queue"), "\(sorted)")
                try await pane.sendKeys("q")
                let after = try await pane.screen(until: "top's exit status") { $0.contains("top-exit=") }
                #expect(after.contains("top-exit=0"), "\(after)")
            }
        }
    }

    @Test("while the server is unreachable the view says why and keeps running; q still quits")
    func unreachableServer() async throws {
        let port = try freeLoopbackPort()
        try await withTmuxPane(Self.shellLine(port: port)) { pane in
            let screen = try await pane.screen(until: "the error") { $0.contains("error: ") }
            #expect(screen.contains("(retrying every 0.2s)"), "\(screen)")
            #expect(try await pane.display("#{pane_dead}") == "0", "top is still running")
            try await pane.sendKeys("q")
            let after = try await pane.screen(until: "top's exit status") { $0.contains("top-exit=") }
            #expect(after.contains("top-exit=0"), "\(after)")
        }
    }

    @Test("--once (and any stdout that is not a terminal) prints one table and exits")
    func once() async throws {
        try await withGearlockBinary { port, _ in
            try await Self.submitBackground(port: port, function: "once.b", count: 2)
            try await Self.submitBackground(port: port, function: "once.a", count: 1)
            for arguments in [["--once"], [], ["--once", "--sort", "queue"]] {
                let result = try await runProcess(
                    GearlockBinary.path, ["top", "--server", "127.0.0.1:\(port)"] + arguments, timeout: .seconds(20))
                #expect(result.exitCode == 0, "\(result)")
                let lines = result.stdoutString.split(separator: "\n", omittingEmptySubsequences: false)
                #expect(lines.first?.hasPrefix("gearlock top  127.0.0.1:\(port)  version ") == true, "\(result)")
                #expect(lines.contains("FUNCTION  QUEUED  RUNNING  WORKERS  NET/S"), "\(result)")
                let rows = lines.filter { $0.hasPrefix("once.") }.map { $0.split(separator: " ").map(String.init) }
                let expected = arguments.contains("queue")
                    ? [["once.b", "2", "0", "0", "-"], ["once.a", "1", "0", "0", "-"]]
                    : [["once.a", "1", "0", "0", "-"], ["once.b", "2", "0", "0", "-"]]
                #expect(rows == expected, "\(result)")
            }
        }
    }

    @Test("--once against no server fails with the admin command's status 69")
    func onceUnreachable() async throws {
        let result = try await runProcess(
            GearlockBinary.path, ["top", "--once", "--server", "127.0.0.1:\(try freeLoopbackPort())"], timeout: .seconds(20))
        #expect(result.exitCode == 69, "\(result)")
        #expect(result.stderrString.hasPrefix("Error: "), "\(result)")
    }

    @Test("top is scoped to the caller's tenant: acme's admin does not see globex's functions")
    func tenantScoped() async throws {
        let acl = try ACLServeCommandTests.temporaryFile(ACLServeCommandTests.servedYAML())
        let secrets = try ACLServeCommandTests.temporaryFile(ACLFixture.secret("acme-web") + "\n")
        defer {
            try? FileManager.default.removeItem(atPath: acl)
            try? FileManager.default.removeItem(atPath: secrets)
        }
        try await withGearlockBinary(["--acl", acl]) { port, _ in
            for (principal, function) in [("acme-web", "acme.resize"), ("globex-web", "globex.render")] {
                let client = try await RawClient.connect(host: "127.0.0.1", port: port, label: principal)
                try await client.authenticate(principal, secret: ACLFixture.secret(principal))
                _ = try await client.submit(function, payload: "p", type: .submitJobBackground)
                await client.close()
            }
            let acme = try await runProcess(
                GearlockBinary.path,
                ["top", "--once", "--server", "127.0.0.1:\(port)", "--principal", "acme-web", "--secret-file", secrets],
                timeout: .seconds(20))
            #expect(acme.exitCode == 0, "\(acme)")
            #expect(acme.stdoutString.contains("\nacme.resize "), "\(acme)")
            #expect(!acme.stdoutString.contains("globex"), "\(acme)")
            #expect(acme.stdoutString.contains("functions 1  queued 1"), "\(acme)")

            // `root` has no tenant: it sees the whole server.
            let rootSecret = try ACLServeCommandTests.temporaryFile(ACLFixture.secret("root") + "\n")
            defer { try? FileManager.default.removeItem(atPath: rootSecret) }
            let root = try await runProcess(
                GearlockBinary.path,
                ["top", "--once", "--server", "127.0.0.1:\(port)", "--principal", "root", "--secret-file", rootSecret],
                timeout: .seconds(20))
            #expect(root.stdoutString.contains("\nacme.resize ") && root.stdoutString.contains("\nglobex.render "), "\(root)")

            let wrong = try ACLServeCommandTests.temporaryFile("not-the-secret\n")
            defer { try? FileManager.default.removeItem(atPath: wrong) }
            let refused = try await runProcess(
                GearlockBinary.path,
                ["top", "--once", "--server", "127.0.0.1:\(port)", "--principal", "acme-web", "--secret-file", wrong],
                timeout: .seconds(20))
            #expect(refused.exitCode == 77, "\(refused)")
        }
    }
}
