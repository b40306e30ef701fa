/// How a `gearlock bench` run ended: its report so far, and what went wrong. `errors` and
/// `mismatches` above zero make the command exit 1.
struct BenchOutcome {
    var report: BenchReport
    var errors = 0
    var mismatches = 0
    /// The first error, described.
    var firstError: String?

    /// Counts an error; the first one's message is kept.
    mutating func fail(_ message: String) {
        errors += 1
        firstError = firstError ?? message
    }
}
