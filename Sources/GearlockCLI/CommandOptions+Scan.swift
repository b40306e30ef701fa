extension CommandOptions {
    /// An option found on a command line, with its value when it takes one.
    public struct Occurrence: Sendable, Hashable {
        public var option: CommandOption
        public var value: String?
    }

    /// The known options that `arguments` sets, in order, read the way ArgumentParser reads them:
    /// `--name VALUE`, `--name=VALUE`, a flag alone, nothing after `--`. Anything else (a typo, a
    /// positional) is skipped here and left for ArgumentParser to report.
    public func occurrences(in arguments: [String]) -> [Occurrence] {
        var found: [Occurrence] = []
        var index = arguments.startIndex
        while index < arguments.endIndex {
            let token = arguments[index]
            index += 1
            if token == "--" { break }
            let spelling = token.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard token.hasPrefix("-"), let option = option(spelled: String(spelling[0])) else { continue }
            switch option.kind {
            case .flag:
                found.append(Occurrence(option: option, value: nil))
            case .option:
                if spelling.count == 2 {
                    found.append(Occurrence(option: option, value: String(spelling[1])))
                } else if index < arguments.endIndex {
                    found.append(Occurrence(option: option, value: arguments[index]))
                    index += 1
                } else {
                    found.append(Occurrence(option: option, value: nil))
                }
            }
        }
        return found
    }
}
