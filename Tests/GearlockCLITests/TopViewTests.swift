import GearlockCLI
import Testing

@Suite("gearlock top's view")
struct TopViewTests {
    static let start = ContinuousClock.now

    static func snapshot(after seconds: Int = 0, _ functions: [TopSnapshot.Function]) -> TopSnapshot {
        TopSnapshot(
            server: "127.0.0.1:4730", version: "0.1.0", takenAt: start + .seconds(seconds), clockTime: "12:00:0\(seconds)",
            functions: functions, connections: 4, workerConnections: 1)
    }

    static let functions = [
        TopSnapshot.Function(name: "resize", total: 5, running: 1, workers: 1),
        TopSnapshot.Function(name: "archive", total: 2, running: 0, workers: 0),
        TopSnapshot.Function(name: "thumb", total: 9, running: 0, workers: 0),
    ]

    @Test("a one-shot table: header, totals, a blank line, the columns, rows by name, no rate yet")
    func oneShot() {
        let view = TopView(server: "127.0.0.1:4730", current: Self.snapshot(Self.functions))
        #expect(
            view.lines() == [
                "gearlock top  127.0.0.1:4730  version 0.1.0  12:00:00",
                "functions 3  queued 15  running 1  workers 1  connections 4",
                "",
                "FUNCTION  QUEUED  RUNNING  WORKERS  NET/S",
                "archive        2        0        0      -",
                "resize         4        1        1      -",
                "thumb          9        0        0      -",
            ])
    }

    @Test("sorted by queue: the longest queue first, ties by name")
    func sortByQueue() {
        var functions = Self.functions
        functions.append(.init(name: "aaa", total: 4, running: 0, workers: 0))
        let view = TopView(server: "s", current: Self.snapshot(functions), sort: .queue)
        #expect(view.lines().dropFirst(4).map { String($0.prefix { $0 != " " }) } == ["thumb", "aaa", "resize", "archive"])
    }

    @Test("NET/S is the change of held jobs per second between two snapshots; a new function counts from 0")
    func netRates() {
        let before = Self.snapshot([
            .init(name: "resize", total: 9, running: 1, workers: 1), .init(name: "thumb", total: 9, running: 0, workers: 0),
        ])
        let after = Self.snapshot(after: 2, Self.functions)
        let view = TopView(server: "s", current: after, previous: before, interval: .seconds(1))
        let lines = view.lines()
        #expect(lines[1] == "functions 3  queued 15  running 1  workers 1  connections 4  net -1.0/s")
        #expect(lines[2].hasPrefix("sort: name  every 1s  keys: q quit, s sort  NET/S: change in held jobs per second"))
        #expect(lines[5] == "archive        2        0        0   +1.0")
        #expect(lines[6] == "resize         4        1        1   -2.0")
        #expect(lines[7] == "thumb          9        0        0      0")
    }

    @Test("the size bounds rows and columns; hidden rows are counted")
    func fitsTheTerminal() {
        let view = TopView(server: "s", current: Self.snapshot(Self.functions), interval: .milliseconds(500))
        let lines = view.lines(fitting: .init(rows: 7, columns: 20))
        #expect(lines.count == 7)
        #expect(lines.allSatisfy { $0.count <= 20 })
        #expect(lines[4] == "FUNCTION  QUEUED  RU")
        #expect(lines[5] == "archive        2    ")
        #expect(lines[6] == "… 2 more (enlarge th")
        #expect(view.lines(fitting: .init(rows: 3, columns: 80)).count == 3)
        #expect(view.lines(fitting: .init(rows: 100, columns: 200)) == view.lines())
        #expect(view.lines()[2].hasPrefix("sort: name  every 0.5s"))
    }

    @Test("a failed refresh shows its error with the last data; before any data, the server being reached")
    func errors() {
        var view = TopView(server: "127.0.0.1:1", interval: .seconds(1))
        #expect(view.lines() == ["gearlock top  127.0.0.1:1  connecting…", "", "sort: name  every 1s  keys: q quit, s sort  NET/S: change in held jobs per second (not completions)", ""])
        view.error = "connection refused"
        #expect(view.lines()[2] == "error: connection refused (retrying every 1s)")
        view.current = Self.snapshot(Self.functions)
        #expect(view.lines().count == 8)
        #expect(view.lines()[2] == "error: connection refused (retrying every 1s)")
    }

    @Test("a function name cannot send control characters to the terminal")
    func escapesControlCharacters() {
        let view = TopView(server: "s", current: Self.snapshot([.init(name: "evil\u{1B}[2J", total: 1, running: 0, workers: 0)]))
        #expect(view.lines()[4].hasPrefix("evil\\x1B[2J  "))
        #expect(!view.lines().joined().contains("\u{1B}"))
    }

    @Test("no functions is said so")
    func empty() {
        let view = TopView(server: "s", current: Self.snapshot([]))
        #expect(view.lines().suffix(2) == ["FUNCTION  QUEUED  RUNNING  WORKERS  NET/S", "(no functions)"])
    }
}
