/// A glob over Gearman function names, anchored at both ends.
///
/// - `*` matches any run of bytes, including none and including dots: `acme.*` matches `acme.`,
///   `acme.resize` and `acme.thumb.small`, but not `acme` or `acmex.y`.
/// - `?` matches exactly one byte.
/// - Every other character, `.` included, matches only itself. There is no escape: a function
///   whose name contains `*` or `?` can be granted by a pattern that matches it, never literally.
///
/// Function names on the wire are bytes, not text, so matching works on the UTF-8 bytes of the
/// pattern and the name (`?` matches one byte of a multi-byte character). A pattern is never
/// empty and holds no control characters.
public struct FunctionPattern: Sendable, Hashable, CustomStringConvertible {
    /// The pattern as written.
    public let text: String
    let elements: [Element]

    enum Element: Hashable {
        case byte(UInt8)
        case anyByte
        case anyRun
    }

    /// Parses `text`; nil when it is empty or holds a control character.
    public init?(_ text: String) {
        guard !text.isEmpty, !text.utf8.contains(where: { $0 < 0x20 || $0 == 0x7F }) else { return nil }
        self.text = text
        self.elements = text.utf8.map { byte in
            switch byte {
            case UInt8(ascii: "*"): .anyRun
            case UInt8(ascii: "?"): .anyByte
            default: .byte(byte)
            }
        }
    }

    public var description: String { text }

    /// True when the pattern has no `*` or `?`: it names exactly one function.
    public var isLiteral: Bool { elements.allSatisfy { if case .byte = $0 { true } else { false } } }

    /// Whether `name` (a function name as it arrived on the wire) matches the whole pattern.
    public func matches(_ name: some Collection<UInt8>) -> Bool {
        // Iterative glob matching with backtracking to the last `*`: O(pattern × name) at worst,
        // no recursion, no regular expressions.
        let name = Array(name)
        var p = 0
        var n = 0
        var lastStar: Int?
        var nameAtStar = 0
        while n < name.count {
            if p < elements.count {
                switch elements[p] {
                case .anyRun:
                    lastStar = p
                    nameAtStar = n
                    p += 1
                    continue
                case .anyByte:
                    p += 1
                    n += 1
                    continue
                case .byte(let byte):
                    if byte == name[n] {
                        p += 1
                        n += 1
                        continue
                    }
                }
            }
            guard let star = lastStar else { return false }
            p = star + 1
            nameAtStar += 1
            n = nameAtStar
        }
        while p < elements.count, elements[p] == .anyRun { p += 1 }
        return p == elements.count
    }

    /// Whether the function `name` matches the whole pattern.
    public func matches(_ name: String) -> Bool { matches(name.utf8) }

    /// The bytes before the first wildcard (the whole pattern when it is literal).
    var literalPrefix: ArraySlice<Element> {
        elements.prefix { if case .byte = $0 { true } else { false } }
    }

    /// The bytes after the last wildcard (the whole pattern when it is literal).
    var literalSuffix: ArraySlice<Element> {
        guard let last = elements.lastIndex(where: { if case .byte = $0 { false } else { true } }) else {
            return elements[...]
        }
        return elements[(last + 1)...]
    }
}
