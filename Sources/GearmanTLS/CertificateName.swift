#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// What may go into the names of a certificate. Principal, tenant and server names are kept to a
/// conservative alphabet: they become file names, URIs (`urn:gearlock:tenant:acme`) and ACL keys, and
/// must mean the same thing everywhere.
enum CertificateName {
    /// `worker-1`, `acme.resizer_2`: 1 to 64 letters, digits, `.`, `_` and `-`, starting with a letter
    /// or digit (64 is X.509's upper bound for a common name).
    static func validateIdentifier(_ name: String, kind: String) throws(CertificateAuthorityError) {
        let bytes = Array(name.utf8)
        guard (1...64).contains(bytes.count), isAlphanumeric(bytes[0]),
            bytes.allSatisfy({ isAlphanumeric($0) || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "-") })
        else {
            throw .invalidRequest(
                "\(kind) '\(name)': use 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit")
        }
    }

    /// The CA's name is for people: any text of 1 to 64 characters without control characters.
    static func validateAuthorityName(_ name: String) throws(CertificateAuthorityError) {
        guard (1...64).contains(name.count), !name.unicodeScalars.contains(where: { $0.properties.generalCategory == .control })
        else { throw .invalidRequest("CA name '\(name)': use 1 to 64 characters without control characters") }
    }

    /// A host name (`gearman.example.com`, or a wildcard `*.example.com`), lowercased.
    static func dnsName(_ name: String) throws(CertificateAuthorityError) -> String {
        let lowercased = name.lowercased()
        var labels = lowercased.split(separator: ".", omittingEmptySubsequences: false)
        if labels.count > 1 && labels[0] == "*" { labels.removeFirst() }
        let valid =
            lowercased.utf8.count <= 253
            && labels.allSatisfy { label in
                let bytes = Array(label.utf8)
                return (1...63).contains(bytes.count) && bytes.first != UInt8(ascii: "-")
                    && bytes.last != UInt8(ascii: "-")
                    && bytes.allSatisfy { isAlphanumeric($0) || $0 == UInt8(ascii: "-") }
            }
        guard valid else { throw .invalidRequest("'\(name)' is not a DNS name") }
        return lowercased
    }

    /// An IPv4 or IPv6 address in its canonical text form.
    static func ipAddress(_ text: String) throws(CertificateAuthorityError) -> String {
        for family in [AF_INET, AF_INET6] {
            var address = [UInt8](repeating: 0, count: 16)
            guard inet_pton(family, text, &address) == 1 else { continue }
            var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
            guard inet_ntop(family, address, &buffer, socklen_t(buffer.count)) != nil else { break }
            return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
        throw .invalidRequest("'\(text)' is not an IP address")
    }

    private static func isAlphanumeric(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
            || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
    }
}
