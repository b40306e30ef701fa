/// Numbers that travel as decimal text in Gearman packets and admin lines.
public enum DecimalText {
    /// The integer at the start of `text`, read as C's `atoi` does (and so as gearmand reads
    /// status numbers and admin arguments): an optional sign, then digits; 0 when there are none.
    /// Saturates instead of overflowing.
    public static func leadingInteger(_ text: String) -> Int {
        var value = 0
        var sign = 1
        var digits = Substring(text)
        if let first = digits.first, first == "-" || first == "+" {
            sign = first == "-" ? -1 : 1
            digits = digits.dropFirst()
        }
        for character in digits {
            guard character.isASCII, let digit = character.wholeNumberValue else { break }
            let (times, overflow1) = value.multipliedReportingOverflow(by: 10)
            let (sum, overflow2) = times.addingReportingOverflow(digit)
            if overflow1 || overflow2 { return sign * Int.max }
            value = sum
        }
        return sign * value
    }
}
