public import Logging

/// Builds one JSON object on one line, escaping every string so that any message or metadata
/// (quotes, backslashes, newlines, control characters, any Unicode) gives valid JSON.
public struct JSONLine: Sendable {
    private var text = "{"
    private var isEmpty = true

    public init() {}

    public mutating func field(_ key: String, _ value: String) {
        appendKey(key)
        Self.appendString(value, to: &text)
    }

    public mutating func field(_ key: String, _ value: Bool) {
        appendKey(key)
        text += value ? "true" : "false"
    }

    /// A value already written as JSON: a number or `null`, never text from outside.
    public mutating func field(_ key: String, literal: String) {
        appendKey(key)
        text += literal
    }

    public mutating func field(_ key: String, _ value: Logger.MetadataValue) {
        appendKey(key)
        Self.append(value, to: &text)
    }

    /// The object, closed, with a newline.
    public var line: String { text + "}\n" }

    private mutating func appendKey(_ key: String) {
        if !isEmpty { text += "," }
        isEmpty = false
        Self.appendString(key, to: &text)
        text += ":"
    }

    private static func append(_ value: Logger.MetadataValue, to text: inout String) {
        switch value {
        case .string(let string):
            appendString(string, to: &text)
        case .stringConvertible(let convertible):
            appendString(convertible.description, to: &text)
        case .array(let items):
            text += "["
            for (index, item) in items.enumerated() {
                if index > 0 { text += "," }
                append(item, to: &text)
            }
            text += "]"
        case .dictionary(let dictionary):
            var object = JSONLine()
            for key in dictionary.keys.sorted() { object.field(key, dictionary[key]!) }
            text += object.text + "}"
        }
    }

    /// `"…"` with RFC 8259's escapes; U+2028 and U+2029 are escaped too, for JavaScript readers.
    static func appendString(_ string: String, to text: inout String) {
        text += "\""
        for scalar in string.unicodeScalars {
            switch scalar {
            case "\"": text += "\\\""
            case "\\": text += "\\\\"
            case "\n": text += "\\n"
            case "\r": text += "\\r"
            case "\t": text += "\\t"
            case "\u{08}": text += "\\b"
            case "\u{0C}": text += "\\f"
            case "\u{2028}", "\u{2029}": text += "\\u" + hex4(scalar.value)
            default:
                if scalar.value < 0x20 {
                    text += "\\u" + hex4(scalar.value)
                } else {
                    text.unicodeScalars.append(scalar)
                }
            }
        }
        text += "\""
    }

    private static func hex4(_ value: UInt32) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }
}
