internal import COpenSSL

/// PEM encoding and decoding through memory BIOs.
enum OpenSSLMemoryBIO {
    /// What `encode` writes into a fresh memory BIO, or nil when it does not return 1.
    static func output(_ encode: (OpaquePointer) -> Int32) -> [UInt8]? {
        guard let bio = BIO_new(BIO_s_mem()) else { return nil }
        defer { BIO_free_all(bio) }
        guard encode(bio) == 1 else { return nil }
        let pending = Int(BIO_ctrl_pending(bio))
        var bytes = [UInt8](repeating: 0, count: pending)
        let count = bytes.withUnsafeMutableBytes { BIO_read(bio, $0.baseAddress, Int32(pending)) }
        guard count == Int32(pending) else { return nil }
        return bytes
    }

    /// Runs `decode` on a read-only memory BIO over `bytes`.
    static func input<Value>(_ bytes: [UInt8], _ decode: (OpaquePointer) -> Value?) -> Value? {
        bytes.withUnsafeBytes { buffer -> Value? in
            guard let bio = BIO_new_mem_buf(buffer.baseAddress, Int32(buffer.count)) else { return nil }
            defer { BIO_free_all(bio) }
            return decode(bio)
        }
    }
}
