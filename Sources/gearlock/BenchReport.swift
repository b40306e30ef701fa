import GearlockCLI

/// What one `gearlock bench` run measured, printed as a table or as one JSON line.
struct BenchReport {
    /// A JSON value of the flat report object.
    enum Value {
        case string(String)
        case int(Int)
        case double(Double, digits: Int)
        case bool(Bool)
        case null
    }

    /// Key–value pairs in output order, keys in snake_case.
    private(set) var fields: [(key: String, value: Value)] = []
    /// Lines of the human table: a label and its value.
    private(set) var rows: [(String, String)] = []
    /// The table's heading lines.
    var heading: [String] = []

    mutating func add(_ key: String, _ value: Value) {
        fields.append((key, value))
    }

    mutating func row(_ label: String, _ value: String) {
        rows.append((label, value))
    }

    /// One line of JSON, no spaces, ending in a newline.
    func json() -> String {
        var line = JSONLine()
        for (key, value) in fields {
            switch value {
            case .string(let string): line.field(key, string)
            case .int(let int): line.field(key, literal: String(int))
            case .double(let double, let digits): line.field(key, literal: double.isFinite ? Self.fixed(double, digits) : "null")
            case .bool(let bool): line.field(key, bool)
            case .null: line.field(key, literal: "null")
            }
        }
        return line.line
    }

    func table() -> String {
        var table = TableRenderer(columns: [.init("metric"), .init("value")])
        for (label, value) in rows {
            table.append([label, value])
        }
        return heading.map { $0 + "\n" }.joined() + "\n" + table.render()
    }

    // MARK: Number formatting (no Foundation)

    /// `value` with exactly `digits` decimals, no exponent.
    static func fixed(_ value: Double, _ digits: Int) -> String {
        guard value.isFinite else { return "\(value)" }
        var scale: UInt64 = 1
        for _ in 0..<digits { scale *= 10 }
        let scaled = (abs(value) * Double(scale)).rounded()
        guard scaled < 9e18 else { return String(Int64(value.rounded())) }
        let integer = UInt64(scaled)
        var text = (value < 0 && integer != 0 ? "-" : "") + String(integer / scale)
        if digits > 0 {
            let fraction = String(integer % scale)
            text += "." + String(repeating: "0", count: digits - fraction.count) + fraction
        }
        return text
    }

    /// A latency in nanoseconds as µs, ms or s with three significant-ish digits.
    static func latency(_ nanoseconds: UInt64?) -> String {
        guard let nanoseconds else { return "–" }
        let value = Double(nanoseconds)
        if value < 1e6 { return fixed(value / 1e3, 1) + " µs" }
        if value < 1e9 { return fixed(value / 1e6, 2) + " ms" }
        return fixed(value / 1e9, 2) + " s"
    }

    static func bytes(_ count: Int) -> String {
        if count < 1 << 10 { return "\(count) B" }
        if count < 1 << 20 { return fixed(Double(count) / 1024, 1) + " KiB" }
        if count < 1 << 30 { return fixed(Double(count) / 1_048_576, 1) + " MiB" }
        return fixed(Double(count) / 1_073_741_824, 2) + " GiB"
    }
}
