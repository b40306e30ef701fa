public import ArgumentParser

/// What `gearlock top` shows: a pure function from snapshots and the terminal's size to lines of
/// text, so that it can be tested without a terminal.
///
/// ```text
/// gearlock top  127.0.0.1:4730  version 0.1.0  14:03:27
/// functions 2  queued 5  running 1  workers 1  connections 3  net +0.5/s
/// sort: queue  every 1s  keys: q quit, s sort  NET/S: change in held jobs per second (not completions)
///
/// FUNCTION  QUEUED  RUNNING  WORKERS  NET/S
/// resize         4        1        1   +0.5
/// thumb          1        0        0      0
/// ```
/// NET/S is the change per second of a function's held jobs (queued plus running) between the
/// last two refreshes: submissions minus jobs that ended. The admin protocol counts no
/// completions, so no completion rate can be derived; a function keeping up with its submissions
/// shows 0.
public struct TopView: Sendable {
    /// The order of the function rows.
    public enum Sort: String, CaseIterable, Sendable, ExpressibleByArgument {
        /// By function name.
        case name
        /// Longest queue first, then by name.
        case queue

        /// The other order (the `s` key).
        public var toggled: Sort {
            switch self {
            case .name: .queue
            case .queue: .name
            }
        }
    }

    /// A terminal's size in character cells.
    public struct Size: Sendable, Equatable {
        public var rows: Int
        public var columns: Int

        public init(rows: Int, columns: Int) {
            self.rows = rows
            self.columns = columns
        }
    }

    /// The server, as the user named it: shown before the first snapshot arrives.
    public var server: String
    /// The latest snapshot; nil until one arrived.
    public var current: TopSnapshot?
    /// The one before it, for NET/S; nil shows `-`.
    public var previous: TopSnapshot?
    /// Why the latest refresh failed, shown (with the last good data) until one succeeds.
    public var error: String?
    public var sort: Sort
    /// The refresh interval of the live view; nil for a one-shot table (no key help line).
    public var interval: Duration?

    public init(
        server: String, current: TopSnapshot? = nil, previous: TopSnapshot? = nil, error: String? = nil,
        sort: Sort = .name, interval: Duration? = nil
    ) {
        self.server = server
        self.current = current
        self.previous = previous
        self.error = error
        self.sort = sort
        self.interval = interval
    }

    /// The lines to show, without line endings. With a `size`, at most `size.rows` lines of at
    /// most `size.columns` characters: rows that don't fit are summed up in a last line.
    public func lines(fitting size: Size? = nil) -> [String] {
        var header = [titleLine(), totalsLine()]
        if let error {
            header.append("error: \(Self.printable(error))" + (interval.map { " (retrying every \(Self.format($0)))" } ?? ""))
        } else if let interval {
            header.append(
                "sort: \(sort.rawValue)  every \(Self.format(interval))  keys: q quit, s sort  "
                    + "NET/S: change in held jobs per second (not completions)")
        }
        header.append("")
        var table = tableLines()
        if let size {
            let room = max(0, size.rows - header.count)
            if table.count > room {
                // The column titles, as many rows as fit, and a line saying how many are hidden.
                let rows = table.count - 1
                let shown = max(0, room - 2)
                let summary = "… \(rows - shown) more (enlarge the terminal)"
                table = room >= 2 ? Array(table.prefix(1 + shown)) + [summary] : room == 1 ? [summary] : []
            }
            return Array((header + table).prefix(size.rows)).map { Self.truncate($0, to: size.columns) }
        }
        return header + table
    }

    private func titleLine() -> String {
        guard let current else { return "gearlock top  \(Self.printable(server))  connecting…" }
        var parts = ["gearlock top", Self.printable(current.server)]
        if let version = current.version { parts.append("version \(Self.printable(version))") }
        parts.append(current.clockTime)
        return parts.joined(separator: "  ")
    }

    private func totalsLine() -> String {
        guard let current else { return "" }
        var parts = [
            "functions \(current.functions.count)",
            "queued \(current.functions.reduce(0) { $0 + $1.queued })",
            "running \(current.functions.reduce(0) { $0 + $1.running })",
        ]
        if let workers = current.workerConnections { parts.append("workers \(workers)") }
        if let connections = current.connections { parts.append("connections \(connections)") }
        if let rates = previous.flatMap(current.netRates(since:)) {
            parts.append("net \(Self.formatRate(rates.values.reduce(0, +)))/s")
        }
        return parts.joined(separator: "  ")
    }

    /// The column titles and one row per function, sorted.
    private func tableLines() -> [String] {
        guard let current else { return [] }
        let rates = previous.flatMap(current.netRates(since:))
        let functions: [TopSnapshot.Function]
        switch sort {
        case .name:
            functions = current.functions.sorted { $0.name < $1.name }
        case .queue:
            functions = current.functions.sorted { ($0.queued, $1.name) > ($1.queued, $0.name) }
        }
        let titles = ["FUNCTION", "QUEUED", "RUNNING", "WORKERS", "NET/S"]
        var rows = [titles]
        for function in functions {
            rows.append([
                Self.printable(function.name), String(function.queued), String(function.running), String(function.workers),
                rates?[function.name].map(Self.formatRate) ?? "-",
            ])
        }
        if functions.isEmpty { return [titles.joined(separator: "  "), "(no functions)"] }
        var widths = titles.map(\.count)
        for row in rows {
            for (index, cell) in row.enumerated() { widths[index] = max(widths[index], cell.count) }
        }
        return rows.map { row in
            row.enumerated().map { index, cell in
                let padding = String(repeating: " ", count: widths[index] - cell.count)
                // The name is left-aligned (and the last column is never padded on the right).
                return index == 0 ? cell + padding : padding + cell
            }.joined(separator: "  ")
        }
    }

    /// `+1.5`, `-0.3`, or `0` for no change (to a tenth).
    static func formatRate(_ rate: Double) -> String {
        let tenths = Int((rate * 10).rounded())
        guard tenths != 0 else { return "0" }
        let magnitude = abs(tenths)
        return (tenths > 0 ? "+" : "-") + "\(magnitude / 10).\(magnitude % 10)"
    }

    /// `1s`, `0.5s`.
    static func format(_ duration: Duration) -> String {
        let milliseconds = Int((TopSnapshot.seconds(duration) * 1000).rounded())
        return milliseconds % 1000 == 0 ? "\(milliseconds / 1000)s" : "\(Double(milliseconds) / 1000)s"
    }

    /// `text` cut to `columns` characters.
    static func truncate(_ text: String, to columns: Int) -> String {
        text.count <= columns ? text : String(text.prefix(max(0, columns)))
    }

    /// Server-supplied text with control characters escaped (`\x1B`), so that it cannot move the
    /// cursor or change the terminal.
    static func printable(_ text: String) -> String {
        var result = ""
        for scalar in text.unicodeScalars {
            if scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value) {
                let hex = String(scalar.value, radix: 16, uppercase: true)
                result += "\\x" + (hex.count < 2 ? "0" : "") + hex
            } else {
                result.unicodeScalars.append(scalar)
            }
        }
        return result
    }
}
