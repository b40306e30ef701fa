internal import COpenSSL

/// OpenSSL's error queue is per thread, and one event-loop thread serves many connections: it is
/// cleared before every call whose result is examined, and drained into the Swift error after.
enum OpenSSLErrorQueue {
    static func clear() {
        ERR_clear_error()
    }

    /// Takes every queued error as `library:reason` text.
    static func drain() -> [String] {
        var messages: [String] = []
        while true {
            let code = ERR_get_error()
            if code == 0 { break }
            let text = withUnsafeTemporaryAllocation(of: CChar.self, capacity: 256) { buffer -> String in
                ERR_error_string_n(code, buffer.baseAddress, buffer.count)
                let bytes = UnsafeRawBufferPointer(buffer).prefix { $0 != 0 }
                return String(decoding: bytes, as: UTF8.self)
            }
            messages.append(Self.reason(from: text))
        }
        return messages
    }

    /// `error:0A000086:SSL routines::certificate verify failed` → `certificate verify failed`.
    private static func reason(from text: String) -> String {
        guard let last = text.split(separator: ":", omittingEmptySubsequences: false).last, !last.isEmpty else {
            return text
        }
        return String(last)
    }
}
