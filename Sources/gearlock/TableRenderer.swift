/// Lays rows out as aligned text columns under a header row, for `gearlock admin`.
///
/// Columns are separated by two spaces; no line has trailing spaces. Cells come from the server
/// (function names, client ids), so control characters are shown escaped (`\x1B`) rather than sent
/// to the terminal.
struct TableRenderer {
    enum Alignment {
        case left
        /// For numbers, so their digits line up.
        case right
    }

    struct Column {
        var title: String
        var alignment: Alignment

        init(_ title: String, _ alignment: Alignment = .left) {
            self.title = title
            self.alignment = alignment
        }
    }

    let columns: [Column]
    private(set) var rows: [[String]] = []

    init(columns: [Column]) {
        precondition(!columns.isEmpty, "a table needs a column")
        self.columns = columns
    }

    mutating func append(_ row: [String]) {
        precondition(row.count == columns.count, "a row has \(row.count) cells for \(columns.count) columns")
        rows.append(row.map(Self.printable))
    }

    /// The header and every row, each line ending in `\n`.
    func render() -> String {
        var widths = columns.map(\.title.count)
        for row in rows {
            for (index, cell) in row.enumerated() {
                widths[index] = max(widths[index], cell.count)
            }
        }
        var output = line(columns.map(\.title), widths: widths)
        for row in rows {
            output += line(row, widths: widths)
        }
        return output
    }

    private func line(_ cells: [String], widths: [Int]) -> String {
        var text = ""
        for (index, cell) in cells.enumerated() {
            if index > 0 { text += "  " }
            let padding = String(repeating: " ", count: widths[index] - cell.count)
            switch columns[index].alignment {
            case .left: text += cell + padding
            case .right: text += padding + cell
            }
        }
        while text.last == " " { text.removeLast() }
        return text + "\n"
    }

    /// `cell` with C0 and C1 control characters (tab, newline, escape, …) written as `\xHH`.
    static func printable(_ cell: String) -> String {
        guard cell.unicodeScalars.contains(where: isControl) else { return cell }
        var result = ""
        for scalar in cell.unicodeScalars {
            if isControl(scalar) {
                let hex = String(scalar.value, radix: 16, uppercase: true)
                result += "\\x" + (hex.count < 2 ? "0" + hex : hex)
            } else {
                result.unicodeScalars.append(scalar)
            }
        }
        return result
    }

    private static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value)
    }
}
