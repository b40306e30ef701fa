import GearlockTestSupport
import Gearman
import GearmanServer
import GearmanTLS
import Logging
import NIOCore
import Testing

/// Our client and worker library over TLS, against our server's TLS listener.
@Suite("Client and worker over TLS", .serialized, .timeLimit(.minutes(5)))
struct ClientTLSTests {
    /// Connection options for the TLS port, trusting the test CA and presenting `certificate`.
    static func options(
        _ ports: TLSTestPorts, pki: TestPKI, certificate: String?, serverName: String? = nil, ca: String = "ca"
    ) -> GearmanConnectionOptions {
        var options = libraryOptions(ports: [ports.tls])
        options.tls = .makeClientConfiguration(
            trustRootsPath: pki.certificate(ca), serverName: serverName, certificateChainPath: certificate.map(pki.certificate),
            privateKeyPath: certificate.map(pki.key))
        return options
    }

    @Test("a worker and a client, each with its own certificate, run jobs over mutual TLS")
    func mutualTLSJobs() async throws {
        let pki = try TestPKI.shared()
        try await withTLSJobServer(pki.serverTLS(clientAuthentication: .require)) { ports, _ in
            let worker = GearmanWorker(
                configuration: .init(connection: Self.options(ports, pki: pki, certificate: "alice")),
                logger: libraryLogger("tls.worker"))
            worker.register(function: "tls.reverse") { job in
                job.sendStatus(numerator: 1, denominator: 1)
                return ByteBuffer(string: String(String(buffer: job.payload).reversed()))
            }
            let client = GearmanClient(
                configuration: .init(connection: Self.options(ports, pki: pki, certificate: "bob")),
                logger: libraryLogger("tls.client"))
            defer { client.shutdown() }
            try await withWorker(worker) {
                let job = try await client.submitJob(function: "tls.reverse", payload: ByteBuffer(string: "secret"))
                var events: [GearmanJobEvent] = []
                for try await event in job.events { events.append(event) }
                #expect(events == [.status(numerator: 1, denominator: 1), .completed(ByteBuffer(string: "terces"))])
                // A 64 KiB payload, byte-exact.
                let large = ByteBuffer(bytes: (0..<65_536).map { UInt8(truncatingIfNeeded: $0 &* 31) })
                let echoed = try await client.echo(large, timeout: .seconds(30))
                #expect(echoed == large)
                let background = try await client.submitBackground(function: "tls.reverse", payload: ByteBuffer(string: "bg"))
                #expect(!background.handle.isEmpty)
            }
        }
    }

    @Test("the server name is checked: the IP address in the certificate works, another name is refused")
    func serverNameVerification() async throws {
        let pki = try TestPKI.shared()
        try await withTLSJobServer(pki.serverTLS(clientAuthentication: .require)) { ports, _ in
            // No serverName: the host connected to (127.0.0.1) must be in the certificate; it is.
            let byAddress = GearmanClient(
                configuration: .init(connection: Self.options(ports, pki: pki, certificate: "bob")),
                logger: libraryLogger("tls.client"))
            defer { byAddress.shutdown() }
            let echoed = try await byAddress.echo(ByteBuffer(string: "hi"), timeout: .seconds(30))
            #expect(echoed == ByteBuffer(string: "hi"))

            let wrongName = GearmanClient(
                configuration: .init(
                    connection: Self.options(ports, pki: pki, certificate: "bob", serverName: "other.example")),
                logger: libraryLogger("tls.client"))
            defer { wrongName.shutdown() }
            await expectRefusal(containing: "certificate verify failed") {
                _ = try await wrongName.echo(ByteBuffer(string: "hi"), timeout: .seconds(30))
            }
        }
    }

    @Test("a server certificate from a CA the client does not trust is refused")
    func foreignServerCA() async throws {
        let pki = try TestPKI.shared()
        try await withTLSJobServer(pki.serverTLS(clientAuthentication: .require)) { ports, _ in
            let client = GearmanClient(
                configuration: .init(connection: Self.options(ports, pki: pki, certificate: "bob", ca: "foreign-ca")),
                logger: libraryLogger("tls.client"))
            defer { client.shutdown() }
            await expectRefusal(containing: "certificate verify failed") {
                _ = try await client.echo(ByteBuffer(string: "hi"), timeout: .seconds(30))
            }
        }
    }

    @Test("without a client certificate, a server that requires one refuses the client")
    func missingClientCertificate() async throws {
        let pki = try TestPKI.shared()
        try await withTLSJobServer(pki.serverTLS(clientAuthentication: .require), logLevel: .critical) { ports, _ in
            let client = GearmanClient(
                configuration: .init(connection: Self.options(ports, pki: pki, certificate: nil)),
                logger: libraryLogger("tls.client"))
            defer { client.shutdown() }
            await expectRefusal(containing: "certificate required") {
                _ = try await client.echo(ByteBuffer(string: "hi"), timeout: .seconds(30))
            }
        }
    }

    @Test("with no server listening, a TLS client's request fails with connectionFailed")
    func noServerListening() async throws {
        let pki = try TestPKI.shared()
        let ports = TLSTestPorts(plaintext: try freeLoopbackPort(), tls: try freeLoopbackPort())
        let client = GearmanClient(
            configuration: .init(connection: Self.options(ports, pki: pki, certificate: "bob")),
            logger: libraryLogger("tls.client"))
        defer { client.shutdown() }
        let error = await #expect(throws: GearmanError.self) {
            _ = try await client.echo(ByteBuffer(string: "hi"), timeout: .seconds(5))
        }
        // Refused at once, normally; on a machine loaded enough that the retries outlast the request,
        // its deadline. Either way a clean error, never a crash (the regression this guards against).
        #expect(
            [.connectionFailed, .noServerAvailable, .timeout].contains(error?.code), "\(String(describing: error))")
    }

    @Test("a plaintext client on the TLS port gets no service, and the TLS port still serves TLS clients")
    func plaintextClientOnTLSPort() async throws {
        let pki = try TestPKI.shared()
        try await withTLSJobServer(pki.serverTLS(clientAuthentication: .require), logLevel: .critical) { ports, _ in
            let plaintext = GearmanClient(
                configuration: .init(connection: libraryOptions(ports: [ports.tls])), logger: libraryLogger("plain"))
            defer { plaintext.shutdown() }
            do {
                _ = try await plaintext.echo(ByteBuffer(string: "hi"), timeout: .seconds(5))
                Issue.record("a plaintext echo succeeded on the TLS port")
            } catch let error as GearmanError {
                #expect(error.code == .noServerAvailable || error.code == .timeout, "\(error)")
            }
            let tls = GearmanClient(
                configuration: .init(connection: Self.options(ports, pki: pki, certificate: "bob")),
                logger: libraryLogger("tls.client"))
            defer { tls.shutdown() }
            let echoed = try await tls.echo(ByteBuffer(string: "ok"), timeout: .seconds(30))
            #expect(echoed == ByteBuffer(string: "ok"))
        }
    }

    /// The call fails with no usable server, and the reason names the TLS failure.
    func expectRefusal(
        containing reason: String, sourceLocation: SourceLocation = #_sourceLocation,
        _ body: () async throws -> Void
    ) async {
        do {
            try await body()
            Issue.record("the call succeeded", sourceLocation: sourceLocation)
        } catch let error as GearmanError {
            #expect(error.code == .noServerAvailable, "\(error)", sourceLocation: sourceLocation)
            let text = "\(error) \(error.underlying.map { "\($0)" } ?? "")"
            #expect(text.contains(reason), "\(text)", sourceLocation: sourceLocation)
        } catch {
            Issue.record("not a GearmanError: \(error)", sourceLocation: sourceLocation)
        }
    }
}
