import GearlockTestSupport
import Foundation
import GearmanServer
import GearmanTLS
import Logging
import Testing

/// `gearlock work`, `submit` and `admin` with their TLS options, against a TLS listener that
/// requires client certificates.
@Suite("gearlock CLI over mutual TLS", .serialized, .timeLimit(.minutes(5)))
struct CLITLSTests {
    static func tlsArguments(_ pki: TestPKI, port: Int, certificate: String?) -> [String] {
        var arguments = ["--server", "127.0.0.1:\(port)", "--tls-ca", pki.certificate("ca")]
        if let certificate {
            arguments += ["--tls-cert", pki.certificate(certificate), "--tls-key", pki.key(certificate)]
        }
        return arguments
    }

    @Test("work, submit and admin with client certificates run a job; without one, submit fails clearly")
    func workSubmitAdmin() async throws {
        let pki = try TestPKI.shared()
        try await withTLSJobServer(pki.serverTLS(clientAuthentication: .require), logLevel: .critical) { ports, _ in
            let worker = try ChildProcess(
                GearlockBinary.path,
                ["work", "--log-level", "warning"] + Self.tlsArguments(pki, port: ports.tls, certificate: "alice")
                    + ["-f", "tls.rev", "-c", "1", "--", "rev"])
            defer { worker.killTree() }

            // Wait until the worker is registered (its CAN_DO went over TLS).
            var registered = false
            for _ in 0..<100 where !registered {
                let status = try await runProcess(
                    GearlockBinary.path,
                    ["admin", "--raw"] + Self.tlsArguments(pki, port: ports.tls, certificate: "bob") + ["status"])
                registered = status.stdoutString.contains("tls.rev\t0\t0\t1")
                if !registered { try await Task.sleep(for: .milliseconds(50)) }
            }
            #expect(registered, "the TLS worker never registered")

            let submitted = try await runProcess(
                GearlockBinary.path,
                ["submit"] + Self.tlsArguments(pki, port: ports.tls, certificate: "bob") + ["-f", "tls.rev", "hello"],
                timeout: .seconds(20))
            #expect(submitted.status == 0 && submitted.stdoutString == "olleh", "\(submitted)")
            let finished = await worker.wait(timeout: .seconds(30))
            #expect(finished.status == 0 && !finished.signalled, "worker with -c 1: \(finished)")

            let anonymous = try await runProcess(
                GearlockBinary.path,
                ["submit", "--connect-timeout", "2"] + Self.tlsArguments(pki, port: ports.tls, certificate: nil)
                    + ["-f", "tls.rev", "x"],
                timeout: .seconds(20))
            #expect(anonymous.status == 1, "\(anonymous)")
            #expect(anonymous.stderrString.contains("certificate required"), "\(anonymous)")
        }
    }
}
