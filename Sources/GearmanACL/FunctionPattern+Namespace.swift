extension FunctionPattern {
    /// Whether every function this pattern matches is certainly also matched by `namespace`.
    ///
    /// Deciding this for arbitrary globs is possible but subtle, so the rule is deliberately simple
    /// and conservative (it may refuse a pattern that is in fact contained, never the reverse):
    /// - a pattern identical to the namespace is within it;
    /// - a literal pattern (no wildcard) is within it when the namespace matches it;
    /// - for a namespace of the shape `PREFIX*SUFFIX` (one `*`, no `?`, e.g. `acme.*` or `*.acme`),
    ///   a pattern is within it when its own literal prefix (up to its first wildcard) starts with
    ///   PREFIX and its own literal suffix (after its last wildcard) ends with SUFFIX. Every name
    ///   the pattern matches then starts with PREFIX and ends with SUFFIX without the two overlapping.
    /// - any other namespace (several `*`, or a `?`) admits only the two cases above.
    ///
    /// So with namespace `acme.*`: `acme.resize`, `acme.thumb.*` and `acme.*` are within it;
    /// `*`, `acme*` (would match `acmex`) and `other.*` are not.
    public func isWithin(namespace: FunctionPattern) -> Bool {
        if self == namespace { return true }
        if isLiteral { return namespace.matches(text) }
        let stars = namespace.elements.count(where: { $0 == .anyRun })
        let hasAnyByte = namespace.elements.contains(.anyByte)
        guard stars == 1, !hasAnyByte else { return false }
        return literalPrefix.starts(with: namespace.literalPrefix)
            && literalSuffix.reversed().starts(with: namespace.literalSuffix.reversed())
    }

    /// Whether some function name might match both patterns. Conservative: true whenever it
    /// cannot cheaply rule an overlap out (the literal prefixes or suffixes disagree).
    public func mayOverlap(with other: FunctionPattern) -> Bool {
        if isLiteral { return other.matches(text) }
        if other.isLiteral { return matches(other.text) }
        let prefixesAgree =
            literalPrefix.starts(with: other.literalPrefix) || other.literalPrefix.starts(with: literalPrefix)
        let suffixesAgree =
            literalSuffix.reversed().starts(with: other.literalSuffix.reversed())
            || other.literalSuffix.reversed().starts(with: literalSuffix.reversed())
        return prefixesAgree && suffixesAgree
    }
}
