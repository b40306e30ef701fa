import Foundation

/// A throwaway PKI made with the `openssl` CLI in a temporary directory: EC P-256 keys, valid for
/// 30 days (except `expired`).
///
/// | name | what |
/// |---|---|
/// | `ca` | the trusted CA, "Gearlock Test CA" |
/// | `server` | CN=localhost, SAN DNS:localhost, IP:127.0.0.1, issued by `ca` |
/// | `server-renewed` | CN=gearlock-renewed, same SANs, issued by `ca` (the replacement on reload) |
/// | `alice`, `bob` | client certificates, CN=alice / CN=bob, issued by `ca` |
/// | `revoked` | client certificate CN=revoked, issued by `ca` and revoked in `crl.pem` |
/// | `expired` | client certificate CN=expired, valid 2020-01-01 to 2020-01-02 only |
/// | `foreign-ca` | an untrusted CA, "Foreign Test CA" |
/// | `mallory` | client certificate CN=alice (!), issued by `foreign-ca` |
///
/// `crl.pem` is `ca`'s certificate revocation list (revoking `revoked`), `crl-empty.pem` the same CA's
/// list from before the revocation, `foreign-crl.pem` the (empty) list of `foreign-ca`. Each name
/// has `<name>.pem` and `<name>.key`.
public struct TestPKI: Sendable {
    public let directory: String

    public func certificate(_ name: String) -> String { directory + "/" + name + ".pem" }
    public func key(_ name: String) -> String { directory + "/" + name + ".key" }
    public var crl: String { directory + "/crl.pem" }
    public func file(_ name: String) -> String { directory + "/" + name }

    /// One PKI for the whole test process, made on first use and removed when the process exits.
    public static func shared() throws -> TestPKI {
        try sharedResult.get()
    }

    private static let sharedResult: Result<TestPKI, TestPKIError> = {
        let result = Result { () throws(TestPKIError) -> TestPKI in try TestPKI.make() }
        if case .success(let pki) = result {
            removeAtExit.withLock { $0.append(pki.directory) }
            atexit {
                for directory in TestPKI.removeAtExit.withLock({ $0 }) {
                    try? FileManager.default.removeItem(atPath: directory)
                }
            }
        }
        return result
    }()

    private static let removeAtExit = LockedPaths()

    /// A new PKI in a new temporary directory; the caller removes it (`remove()`).
    public static func make() throws(TestPKIError) -> TestPKI {
        let openssl = "/usr/bin/openssl"
        guard FileManager.default.isExecutableFile(atPath: openssl) else {
            throw TestPKIError(description: "\(openssl) is missing: install the Debian package openssl")
        }
        let directory = NSTemporaryDirectory() + "gearlock-pki-" + UUID().uuidString
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw TestPKIError(description: "cannot create \(directory): \(error)")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", script, "make-test-pki", directory]
        var environment = ProcessInfo.processInfo.environment
        environment["PATH"] = "/usr/bin:/bin"
        environment["OPENSSL_CONF"] = directory + "/openssl.cnf"
        process.environment = environment
        let errors = Pipe()
        process.standardOutput = FileHandle.nullDevice
        process.standardError = errors
        process.standardInput = FileHandle.nullDevice
        do {
            try process.run()
        } catch {
            throw TestPKIError(description: "cannot run /bin/sh: \(error)")
        }
        let output = readToEnd(errors.fileHandleForReading)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            try? FileManager.default.removeItem(atPath: directory)
            throw TestPKIError(
                description: "making the test PKI failed (status \(process.terminationStatus)): "
                    + String(decoding: output.suffix(3000), as: UTF8.self))
        }
        return TestPKI(directory: directory)
    }

    public func remove() {
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// Everything, in plain `sh`. `openssl ca` (not `x509 -req`) issues the certificates because
    /// only it can set arbitrary validity dates (the expired one) and keep the index a CRL needs.
    private static let script = #"""
        set -eu
        cd "$1"
        mkdir issued
        ca_section() {
            printf '[ %s ]\n' "$1"
            printf 'database = %s-index.txt\nserial = %s-serial\ncrlnumber = %s-crlnumber\n' "$1" "$1" "$1"
            printf 'certificate = %s.pem\nprivate_key = %s.key\n' "$1" "$1"
            printf 'new_certs_dir = issued\ndefault_md = sha256\ndefault_days = 30\ndefault_crl_days = 30\n'
            printf 'policy = policy_cn\nunique_subject = no\n'
        }
        {
            cat <<'EOF'
        [ req ]
        distinguished_name = req_dn
        prompt = no
        [ req_dn ]
        CN = unused
        [ policy_cn ]
        commonName = supplied
        [ ca_ext ]
        basicConstraints = critical, CA:TRUE
        keyUsage = critical, keyCertSign, cRLSign
        subjectKeyIdentifier = hash
        [ server_ext ]
        basicConstraints = critical, CA:FALSE
        keyUsage = critical, digitalSignature
        extendedKeyUsage = serverAuth
        subjectAltName = DNS:localhost, IP:127.0.0.1
        authorityKeyIdentifier = keyid
        [ client_ext ]
        basicConstraints = critical, CA:FALSE
        keyUsage = critical, digitalSignature
        extendedKeyUsage = clientAuth
        authorityKeyIdentifier = keyid
        EOF
            ca_section ca
            ca_section foreign-ca
        } > openssl.cnf
        key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.key"; }
        make_ca() {  # name, CN
            key "$1"
            openssl req -new -x509 -config openssl.cnf -key "$1.key" -subj "/CN=$2" -days 30 -extensions ca_ext -out "$1.pem"
            : > "$1-index.txt"
            echo 1000 > "$1-serial"
            echo 1000 > "$1-crlnumber"
        }
        issue() {  # CA, name, CN, extensions section, [more `openssl ca` options]
            ca=$1 name=$2 cn=$3 ext=$4
            shift 4
            key "$name"
            openssl req -new -config openssl.cnf -key "$name.key" -subj "/CN=$cn" -out "$name.csr"
            openssl ca -batch -notext -config openssl.cnf -name "$ca" -extensions "$ext" -in "$name.csr" -out "$name.pem" "$@"
            rm "$name.csr"
        }
        make_ca ca "Gearlock Test CA"
        make_ca foreign-ca "Foreign Test CA"
        issue ca server localhost server_ext
        issue ca server-renewed gearlock-renewed server_ext
        issue ca alice alice client_ext
        issue ca bob bob client_ext
        issue ca revoked revoked client_ext
        issue ca expired expired client_ext -startdate 20200101000000Z -enddate 20200102000000Z
        issue foreign-ca mallory alice client_ext
        openssl ca -config openssl.cnf -name ca -gencrl -out crl-empty.pem
        openssl ca -config openssl.cnf -name foreign-ca -gencrl -out foreign-crl.pem
        openssl ca -config openssl.cnf -name ca -revoke revoked.pem
        openssl ca -config openssl.cnf -name ca -gencrl -out crl.pem
        """#
}

public struct TestPKIError: Error, Sendable, CustomStringConvertible {
    public var description: String
}

/// Directories to remove when the test process exits.
private final class LockedPaths: @unchecked Sendable {
    private let lock = NSLock()
    private var paths: [String] = []

    func withLock<T>(_ body: (inout [String]) -> T) -> T {
        lock.withLock { body(&paths) }
    }
}
