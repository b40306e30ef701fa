internal import CGearlockOpenSSL
internal import COpenSSL
import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// One connection's `SSL` object between two memory BIOs: ciphertext from the network is fed in,
/// ciphertext for the network is drained out. Every C result is turned into an ``Outcome``.
final class TLSConnection {
    enum Outcome<Value> {
        case complete(Value)
        /// OpenSSL needs more input (or has output to send first).
        case incomplete
        /// The peer sent close_notify.
        case closed
        case failed(TLSError)
    }

    private let ssl: OpaquePointer
    private let readBIO: OpaquePointer
    private let writeBIO: OpaquePointer
    /// Keeps the context alive as long as the connection uses it.
    let context: TLSContext

    /// - Parameter serverName: client only; overrides the configuration's `serverName`.
    init(context: TLSContext, serverName: String?) throws(TLSError) {
        OpenSSLErrorQueue.clear()
        guard let ssl = SSL_new(context.context), let readBIO = BIO_new(BIO_s_mem()), let writeBIO = BIO_new(BIO_s_mem())
        else {
            throw TLSError(
                code: .invalidConfiguration, message: "cannot create a TLS connection",
                openSSLErrors: OpenSSLErrorQueue.drain())
        }
        // An empty read BIO means "no data yet", not end of file.
        _ = CGearlockOpenSSL_BIO_set_mem_eof_return(readBIO, -1)
        _ = CGearlockOpenSSL_BIO_set_mem_eof_return(writeBIO, -1)
        SSL_set_bio(ssl, readBIO, writeBIO)
        self.ssl = ssl
        self.readBIO = readBIO
        self.writeBIO = writeBIO
        self.context = context
        let configuration = context.configuration
        switch configuration.role {
        case .server:
            SSL_set_accept_state(ssl)
        case .client:
            SSL_set_connect_state(ssl)
            if let name = serverName ?? configuration.serverName {
                try setServerName(name, verify: configuration.verifyPeer)
            }
        }
    }

    deinit {
        SSL_free(ssl)  // frees both BIOs
    }

    private func setServerName(_ name: String, verify: Bool) throws(TLSError) {
        let isIPAddress = Self.isIPAddress(name)
        if !isIPAddress {
            _ = CGearlockOpenSSL_SSL_set_tlsext_host_name(ssl, name)
        }
        guard verify else { return }
        let ok: Bool
        if isIPAddress {
            ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name) == 1
        } else {
            ok = SSL_set1_host(ssl, name) == 1
        }
        guard ok else {
            throw TLSError(
                code: .invalidConfiguration, message: "cannot verify against the server name '\(name)'",
                openSSLErrors: OpenSSLErrorQueue.drain())
        }
    }

    /// Whether `name` is an IPv4 or IPv6 address (checked the way the socket layer parses them).
    static func isIPAddress(_ name: String) -> Bool {
        var storage = in6_addr()
        return inet_pton(AF_INET, name, &storage) == 1 || inet_pton(AF_INET6, name, &storage) == 1
    }

    /// Hands ciphertext from the network to OpenSSL.
    func feed(_ buffer: ByteBuffer) {
        buffer.withUnsafeReadableBytes { bytes in
            guard let base = bytes.baseAddress, bytes.count > 0 else { return }
            _ = BIO_write(readBIO, base, Int32(bytes.count))
        }
    }

    /// Ciphertext OpenSSL wants sent, if any.
    func drainOutput(allocator: ByteBufferAllocator) -> ByteBuffer? {
        let pending = BIO_ctrl_pending(writeBIO)
        guard pending > 0 else { return nil }
        var buffer = allocator.buffer(capacity: Int(pending))
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: Int(pending)) { bytes in
            Int(max(0, BIO_read(writeBIO, bytes.baseAddress, Int32(pending))))
        }
        return buffer
    }

    func doHandshake() -> Outcome<Void> {
        OpenSSLErrorQueue.clear()
        let result = SSL_do_handshake(ssl)
        if result == 1 { return .complete(()) }
        return outcome(of: result, during: "handshake")
    }

    /// Decrypts every record the fed ciphertext completes, appending the plaintext to `buffer`.
    /// `.incomplete` once OpenSSL needs more ciphertext (what it decrypted is in `buffer` either
    /// way); `.closed` or `.failed` when the peer's close_notify or an error came after it.
    func readAvailable(into buffer: inout ByteBuffer) -> Outcome<Void> {
        while true {
            // The ciphertext waiting bounds the plaintext it can yield; a record is at most 16 KiB.
            let waiting = max(Int(SSL_pending(ssl)), Int(BIO_ctrl_pending(readBIO)))
            OpenSSLErrorQueue.clear()
            var result: Int32 = 0
            buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: min(max(waiting, 512), 16 * 1024)) { bytes in
                result = SSL_read(ssl, bytes.baseAddress, Int32(min(bytes.count, Int(Int32.max))))
                return result > 0 ? Int(result) : 0
            }
            guard result > 0 else { return outcome(of: result, during: "read") }
            // Nothing decrypted is left and no ciphertext is waiting: another SSL_read could only
            // say so (with an error queue to clear and a buffer to reserve first).
            if SSL_pending(ssl) == 0 && BIO_ctrl_pending(readBIO) == 0 { return .incomplete }
        }
    }

    /// Encrypts all of `buffer` (memory BIOs accept everything).
    func write(_ buffer: ByteBuffer) -> Outcome<Void> {
        var remaining = buffer
        while remaining.readableBytes > 0 {
            OpenSSLErrorQueue.clear()
            let chunk = min(remaining.readableBytes, Int(Int32.max))
            let result = remaining.withUnsafeReadableBytes { bytes in
                SSL_write(ssl, bytes.baseAddress, Int32(chunk))
            }
            guard result > 0 else {
                let failure: Outcome<Void> = outcome(of: result, during: "write")
                return failure
            }
            remaining.moveReaderIndex(forwardBy: Int(result))
        }
        return .complete(())
    }

    /// Queues close_notify.
    func shutdown() {
        OpenSSLErrorQueue.clear()
        _ = SSL_shutdown(ssl)
        _ = OpenSSLErrorQueue.drain()
    }

    private func outcome<Value>(of result: Int32, during operation: String) -> Outcome<Value> {
        let error = SSL_get_error(ssl, result)
        switch error {
        case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE:
            return .incomplete
        case SSL_ERROR_ZERO_RETURN:
            return .closed
        default:
            var reasons = OpenSSLErrorQueue.drain()
            let verify = SSL_get_verify_result(ssl)
            if verify != X509_V_OK, let text = X509_verify_cert_error_string(Int(verify)) {
                reasons.append(String(cString: text))
            }
            if reasons.isEmpty { reasons.append("SSL error \(error)") }
            return .failed(
                TLSError(
                    code: operation == "handshake" ? .handshakeFailed : .ioFailed, message: "TLS \(operation) failed",
                    openSSLErrors: reasons))
        }
    }

    // MARK: Peer identity

    func peerIdentity() -> TLSPeerIdentity {
        var identity = TLSPeerIdentity()
        identity.protocolVersion = SSL_get_version(ssl).map { String(cString: $0) } ?? ""
        if let cipher = SSL_get_current_cipher(ssl), let name = SSL_CIPHER_get_name(cipher) {
            identity.cipher = String(cString: name)
        }
        guard let certificate = SSL_get1_peer_certificate(ssl) else { return identity }
        defer { X509_free(certificate) }
        identity.isVerified = SSL_get_verify_result(ssl) == X509_V_OK
        identity.commonNames = Self.commonNames(of: certificate)
        Self.subjectAlternativeNames(of: certificate, into: &identity)
        identity.fingerprintSHA256 = Self.fingerprint(of: certificate)
        identity.notAfter = CGearlockOpenSSL_ASN1_TIME_to_epoch(X509_get0_notAfter(certificate))
        return identity
    }

    private static func string(_ asn1: UnsafeMutablePointer<ASN1_STRING>?) -> String? {
        guard let asn1, let data = ASN1_STRING_get0_data(asn1) else { return nil }
        let length = Int(ASN1_STRING_length(asn1))
        return String(decoding: UnsafeBufferPointer(start: data, count: length), as: UTF8.self)
    }

    private static func commonNames(of certificate: OpaquePointer) -> [String] {
        guard let subject = X509_get_subject_name(certificate) else { return [] }
        var names: [String] = []
        var index: Int32 = -1
        while true {
            index = X509_NAME_get_index_by_NID(subject, NID_commonName, index)
            guard index >= 0 else { break }
            if let entry = X509_NAME_get_entry(subject, index), let name = string(X509_NAME_ENTRY_get_data(entry)) {
                names.append(name)
            }
        }
        return names
    }

    private static func subjectAlternativeNames(of certificate: OpaquePointer, into identity: inout TLSPeerIdentity) {
        guard let raw = X509_get_ext_d2i(certificate, NID_subject_alt_name, nil, nil) else { return }
        let names = OpaquePointer(raw)
        defer { CGearlockOpenSSL_GENERAL_NAMES_free(names) }
        for index in 0..<CGearlockOpenSSL_sk_GENERAL_NAME_num(names) {
            guard let name = CGearlockOpenSSL_sk_GENERAL_NAME_value(names, index) else { continue }
            switch name.pointee.type {
            case GEN_DNS:
                if let value = string(name.pointee.d.dNSName) { identity.dnsNames.append(value) }
            case GEN_URI:
                if let value = string(name.pointee.d.uniformResourceIdentifier) { identity.uriNames.append(value) }
            case GEN_IPADD:
                guard let octets = name.pointee.d.iPAddress, let data = ASN1_STRING_get0_data(octets) else { continue }
                let length = Int(ASN1_STRING_length(octets))
                let family: Int32
                switch length {
                case 4: family = AF_INET
                case 16: family = AF_INET6
                default: continue
                }
                // inet_ntop's canonical text (`::1`), as the CA and socket addresses write it.
                let text = withUnsafeTemporaryAllocation(of: CChar.self, capacity: Int(INET6_ADDRSTRLEN)) { buffer in
                    inet_ntop(family, data, buffer.baseAddress, socklen_t(buffer.count)).map { String(cString: $0) }
                }
                if let text { identity.ipAddresses.append(text) }
            default:
                continue
            }
        }
    }

    private static func fingerprint(of certificate: OpaquePointer) -> String? {
        var digest = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        guard X509_digest(certificate, EVP_sha256(), &digest, &length) == 1 else { return nil }
        return digest.prefix(Int(length)).map { byte in
            let text = String(byte, radix: 16)
            return byte < 16 ? "0" + text : text
        }.joined()
    }
}
