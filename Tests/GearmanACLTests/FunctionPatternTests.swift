import GearmanACL
import Testing

@Suite("Function patterns")
struct FunctionPatternTests {
    static let table: [(pattern: String, name: String, matches: Bool)] = [
        ("acme.*", "acme.resize", true),
        ("acme.*", "acme.", true),
        ("acme.*", "acme.thumb.small", true),  // `*` crosses dots
        ("acme.*", "acme", false),
        ("acme.*", "acmex.y", false),
        ("acme.*", "xacme.resize", false),  // anchored at the start
        ("acme.resize", "acme.resize", true),
        ("acme.resize", "acme.resize2", false),  // anchored at the end
        ("acme.resize", "acmeXresize", false),  // `.` is literal, not "any character"
        ("a?c", "abc", true),
        ("a?c", "ac", false),
        ("a?c", "abbc", false),
        ("*", "", true),
        ("*", "anything.at.all", true),
        ("*.resize", "acme.resize", true),
        ("*.resize", "acme.resize.x", false),
        ("a*b*c", "abc", true),
        ("a*b*c", "aXXbYYc", true),
        ("a*b*c", "aXXcYYb", false),
        ("**", "x", true),
        ("a+", "aa", false),  // regex syntax is literal
        ("a+", "a+", true),
        ("[ab]", "a", false),
        ("[ab]", "[ab]", true),
        ("^acme$", "acme", false),
        ("(.*)", "(anything)", false),
        ("(.*)", "(.x)", true),
        ("fn|.*", "fn", false),
    ]

    @Test("glob matching table", arguments: table)
    func matching(_ row: (pattern: String, name: String, matches: Bool)) {
        #expect(pattern(row.pattern).matches(row.name) == row.matches, "\(row.pattern) vs \(row.name)")
    }

    @Test("matches raw bytes, with `?` as one byte")
    func bytes() {
        #expect(pattern("f?").matches([UInt8(ascii: "f"), 0xFF]))
        #expect(!pattern("f?").matches(Array("fé".utf8)))  // é is two bytes
        #expect(pattern("f??").matches(Array("fé".utf8)))
    }

    @Test("empty patterns and control characters are refused")
    func invalid() {
        #expect(FunctionPattern("") == nil)
        #expect(FunctionPattern("a\u{0}b") == nil)
        #expect(FunctionPattern("a\nb") == nil)
        #expect(FunctionPattern(" ") != nil)
    }

    @Test("literal patterns")
    func literal() {
        #expect(pattern("acme.resize").isLiteral)
        #expect(!pattern("acme.*").isLiteral)
        #expect(!pattern("acme.?").isLiteral)
    }

    static let containment: [(pattern: String, namespace: String, within: Bool)] = [
        ("acme.resize", "acme.*", true),
        ("acme.thumb.*", "acme.*", true),
        ("acme.*", "acme.*", true),
        ("acme.?", "acme.*", true),
        ("acme.", "acme.*", true),
        ("*", "acme.*", false),
        ("other.*", "acme.*", false),
        ("acme*", "acme.*", false),  // would match acmex
        ("acme", "acme.*", false),
        ("*.acme.*", "acme.*", false),
        ("?cme.x", "acme.*", false),
        ("x.acme", "*.acme", true),
        ("x.*.acme", "*.acme", true),
        ("x.*", "*.acme", false),
        ("acme.*.jobs", "acme.*.jobs", true),  // identical
        ("acme.x.jobs", "acme.*.jobs", true),  // literal and matched
        ("acme.*.x.jobs", "acme.*.jobs", true),  // one-star namespace: prefix and suffix
        ("acme.x", "acme.*.jobs", false),
        ("gx-1", "gx-?", true),
        ("gx-?", "gx-?", true),
        ("gx-*", "gx-?", false),  // `?` namespaces admit only literals and themselves
        ("a*b", "a*b*c", false),  // several stars: only literals and identical patterns
        ("abc", "a*b*c", true),
        ("anything", "*", true),
        ("any*", "*", true),
        ("fixed", "fixed", true),
        ("fixed*", "fixed", false),
    ]

    @Test("namespace containment", arguments: containment)
    func within(_ row: (pattern: String, namespace: String, within: Bool)) {
        #expect(pattern(row.pattern).isWithin(namespace: pattern(row.namespace)) == row.within,
                "\(row.pattern) within \(row.namespace)")
    }

    @Test("containment is sound: a contained pattern matches no name outside the namespace")
    func containmentIsSound() {
        let names = ["", "a", "acme", "acme.", "acme.x", "acmex.y", "x.acme", "acme.x.jobs", "acme.jobs",
                     "gx-1", "gx-12", "abc", "aXbYc", "fixed", "fixedX", "acme.a.x.jobs"]
        for row in Self.containment where row.within {
            for name in names where pattern(row.pattern).matches(name) {
                #expect(pattern(row.namespace).matches(name), "\(row.pattern) ⊆ \(row.namespace) but \(name)")
            }
        }
    }

    static let overlaps: [(String, String, Bool)] = [
        ("acme.*", "globex.*", false),
        ("acme.*", "acme.x.*", true),
        ("acme.*", "*", true),
        ("acme.*", "acme.resize", true),
        ("acme.*", "acmex", false),
        ("*.a", "*.b", false),
        ("a*", "*b", true),
        ("x", "y", false),
        ("x", "x", true),
    ]

    @Test("namespace overlap (conservative)", arguments: overlaps)
    func overlap(_ row: (String, String, Bool)) {
        #expect(pattern(row.0).mayOverlap(with: pattern(row.1)) == row.2, "\(row.0) ~ \(row.1)")
        #expect(pattern(row.1).mayOverlap(with: pattern(row.0)) == row.2, "\(row.1) ~ \(row.0)")
    }
}
