/// Serial numbers as the CA writes them: uppercase hexadecimal of whole bytes, without leading
/// zero bytes (OpenSSL's `BN_bn2hex`).
enum CertificateSerialNumber {
    /// Accepts `0x`, colons (`openssl x509 -text` style), spaces and either case: `3a:0F` → `3A0F`.
    static func normalize(_ text: String) -> String? {
        var digits = Substring(text.filter { $0 != ":" && $0 != " " }.uppercased())
        if digits.hasPrefix("0X") { digits = digits.dropFirst(2) }
        guard !digits.isEmpty, digits.allSatisfy(\.isHexDigit) else { return nil }
        digits = digits.drop { $0 == "0" }
        if digits.isEmpty { return "00" }
        return digits.count % 2 == 0 ? String(digits) : "0" + digits
    }
}
