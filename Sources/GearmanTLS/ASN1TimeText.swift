internal import CGearlockOpenSSL
internal import COpenSSL

/// Times as X.509 writes them: UTCTime `YYMMDDHHMMSSZ` up to 2049, GeneralizedTime
/// `YYYYMMDDHHMMSSZ` after (RFC 5280 §4.1.2.5). The CA's index file stores them in this form, as
/// `openssl ca` does.
enum ASN1TimeText {
    static func text(epoch: Int64) -> String? {
        guard let time = ASN1_TIME_set(nil, time_t(epoch)) else { return nil }
        defer { ASN1_TIME_free(time) }
        return string(time)
    }

    static func epoch(_ text: String) -> Int64? {
        guard let time = ASN1_TIME_new() else { return nil }
        defer { ASN1_TIME_free(time) }
        guard ASN1_TIME_set_string_X509(time, text) == 1 else { return nil }
        return CGearlockOpenSSL_ASN1_TIME_to_epoch(time)
    }

    /// An ASN1_TIME's own text.
    static func string(_ time: UnsafePointer<ASN1_TIME>) -> String? {
        guard let data = ASN1_STRING_get0_data(time) else { return nil }
        return String(decoding: UnsafeBufferPointer(start: data, count: Int(ASN1_STRING_length(time))), as: UTF8.self)
    }
}
