import Foundation
import Gearman
import GearlockTestSupport
import GearmanTLS
import NIOCore
import Testing

/// Our client, worker and admin libraries and the `gearlock` CLI against the two-tenant ACL.
@Suite("ACL through our libraries and CLI", .serialized, .timeLimit(.minutes(2)))
struct ACLLibraryTests {
    static func options(_ server: ACLTestServer, as principal: String?, secret: String? = nil) throws
        -> GearmanConnectionOptions
    {
        var options = libraryOptions(ports: [server.port])
        if let principal {
            options.credentials = try GearmanCredentials(
                principal: principal, secret: secret ?? ACLFixture.secret(principal))
        }
        return options
    }

    @Test("Each tenant's worker gets only its own jobs; a cross-tenant submission is denied")
    func twoTenantsWithSecrets() async throws {
        try await withACLServer { server in
            let seenByAcme = Recorder<String>()
            let acmeWorker = GearmanWorker(
                configuration: .init(connection: try Self.options(server, as: "acme-worker")),
                logger: libraryLogger("acl.acme-worker"))
            acmeWorker.register(function: "acme.resize") { job in
                seenByAcme.append(job.function)
                return ByteBuffer(string: "resized:" + String(buffer: job.payload))
            }
            // Outside acme's namespace: silently not registered, so it never receives globex's job.
            acmeWorker.register(function: "globex.render") { job in
                seenByAcme.append(job.function)
                return ByteBuffer(string: "stolen")
            }
            let globexWorker = GearmanWorker(
                configuration: .init(connection: try Self.options(server, as: "globex-worker")),
                logger: libraryLogger("acl.globex-worker"))
            globexWorker.register(function: "globex.render") { job in
                ByteBuffer(string: "rendered:" + String(buffer: job.payload))
            }
            let acme = GearmanClient(configuration: .init(connection: try Self.options(server, as: "acme-web")))
            let globex = GearmanClient(configuration: .init(connection: try Self.options(server, as: "globex-web")))
            defer {
                acme.shutdown()
                globex.shutdown()
            }
            try await withWorker(acmeWorker) {
                try await withWorker(globexWorker) {
                    let resized = try await acme.submit(function: "acme.resize", payload: "cat.png", timeout: .seconds(20))
                    #expect(String(buffer: resized) == "resized:cat.png")
                    let rendered = try await globex.submit(function: "globex.render", payload: "scene", timeout: .seconds(20))
                    #expect(String(buffer: rendered) == "rendered:scene")

                    let denied = await expectGearmanError(.serverError) {
                        try await acme.submit(function: "globex.render", payload: "x", timeout: .seconds(20))
                    }
                    #expect(denied?.serverCode == "PERMISSION_DENIED", "\(String(describing: denied))")
                    await expectGearmanError(.serverError) {
                        try await globex.submitBackground(function: "acme.resize", payload: ByteBuffer(string: "x"))
                    }
                }
            }
            #expect(seenByAcme.all == ["acme.resize"], "\(seenByAcme.all)")

            let admin = GearmanAdminClient(
                server: .init(host: "127.0.0.1", port: server.port), options: try Self.options(server, as: "acme-web"))
            defer { admin.close() }
            let status = try await admin.status()
            #expect(status.map(\.name).allSatisfy { $0.hasPrefix("acme.") }, "tenant-scoped: \(status)")
            await expectGearmanError(.serverError) { try await admin.cancelJob("H:none") }
        }
    }

    @Test("Over mutual TLS the certificate alone identifies the principal")
    func certificateIdentity() async throws {
        let pki = try TestPKI.shared()
        try await withACLServer(tls: pki.serverTLS(clientAuthentication: .require, crl: true)) { server in
            let tlsPort = try #require(server.tlsPort)
            func tlsOptions(_ certificate: String) -> GearmanConnectionOptions {
                var options = libraryOptions(ports: [tlsPort])
                options.tls = .makeClientConfiguration(
                    trustRootsPath: pki.certificate("ca"), serverName: "localhost",
                    certificateChainPath: pki.certificate(certificate), privateKeyPath: pki.key(certificate))
                return options
            }
            let worker = GearmanWorker(
                configuration: .init(connection: tlsOptions("alice")), logger: libraryLogger("acl.tls-worker"))
            worker.register(function: "acme.echo") { job in job.payload }
            let alice = GearmanClient(configuration: .init(connection: tlsOptions("alice")))
            let bob = GearmanClient(configuration: .init(connection: tlsOptions("bob")))
            defer {
                alice.shutdown()
                bob.shutdown()
            }
            try await withWorker(worker) {
                let echoed = try await alice.submit(function: "acme.echo", payload: "over tls", timeout: .seconds(20))
                #expect(String(buffer: echoed) == "over tls")
                let denied = await expectGearmanError(.serverError) {
                    try await bob.submit(function: "acme.echo", payload: "x", timeout: .seconds(20))
                }
                #expect(denied?.serverCode == "PERMISSION_DENIED")
            }
            let identities = server.logs.audits("authenticated")
            #expect(identities.contains { $0.contains("auth.principal=acme-worker") && $0.contains("tls.identity=alice") })
            #expect(identities.contains { $0.contains("auth.principal=globex-worker") && $0.contains("tls.identity=bob") })
        }
    }

    @Test("A wrong secret fails with authenticationFailed, for the client and the admin client")
    func wrongSecret() async throws {
        try await withACLServer { server in
            let client = GearmanClient(
                configuration: .init(connection: try Self.options(server, as: "acme-web", secret: "not-it")))
            defer { client.shutdown() }
            let error = await expectGearmanError(.authenticationFailed) {
                try await client.submit(function: "acme.x", payload: "p", timeout: .seconds(10))
            }
            #expect(error.map { !"\($0)".contains("not-it") } ?? false, "the secret is not in the error")
            let admin = GearmanAdminClient(
                server: .init(host: "127.0.0.1", port: server.port),
                options: try Self.options(server, as: "root", secret: "not-it-either"))
            defer { admin.close() }
            await expectGearmanError(.authenticationFailed) { try await admin.version() }
        }
    }

    @Test("gearlock submit / work / admin take the principal and the secret from a file or the environment")
    func cli() async throws {
        try await withACLServer { server in
            let directory = NSTemporaryDirectory() + "gearlock-acl-cli-\(UUID().uuidString)"
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let workerSecret = directory + "/worker.secret"
            try Data((ACLFixture.secret("acme-worker") + "\n").utf8).write(to: URL(fileURLWithPath: workerSecret))
            let address = "127.0.0.1:\(server.port)"

            let worker = try ChildProcess(
                GearlockBinary.path,
                ["work", "-s", address, "--log-level", "warning", "--principal", "acme-worker", "--secret-file", workerSecret,
                 "-f", "acme.rev", "-c", "1", "--", "rev"])
            defer { worker.killTree() }
            try await server.adminEventually("status") { $0.contains("acme.rev\t0\t0\t1") }
            let submitted = try await runProcess(
                "/usr/bin/env",
                ["GEARLOCK_PRINCIPAL=acme-web", "GEARLOCK_SECRET=\(ACLFixture.secret("acme-web"))", GearlockBinary.path,
                 "submit", "-s", address, "-f", "acme.rev", "hello"],
                timeout: .seconds(20))
            #expect(submitted.exitCode == 0 && submitted.stdoutString == "olleh", "\(submitted)")
            #expect(await worker.wait(timeout: .seconds(30)).exitCode == 0)

            let denied = try await runProcess(
                "/usr/bin/env",
                ["GEARLOCK_SECRET=\(ACLFixture.secret("acme-web"))", GearlockBinary.path, "submit", "-s", address,
                 "--principal", "acme-web", "-f", "globex.rev", "x"],
                timeout: .seconds(20))
            #expect(denied.exitCode != 0 && denied.stderrString.contains("Not permitted to submit"), "\(denied)")

            let workers = try await runProcess(
                "/usr/bin/env",
                ["GEARLOCK_SECRET=\(ACLFixture.secret("globex-web"))", GearlockBinary.path, "admin", "workers",
                 "--server", address, "--principal", "globex-web"],
                timeout: .seconds(20))
            #expect(workers.exitCode == 0 && !workers.stdoutString.contains("acme"), "\(workers)")

            let wrong = try await runProcess(
                "/usr/bin/env",
                ["GEARLOCK_SECRET=wrong", GearlockBinary.path, "admin", "status", "--server", address, "--principal", "root"],
                timeout: .seconds(20))
            #expect(wrong.exitCode == 77, "\(wrong)")
            #expect(!wrong.stderrString.contains("wrong\n") && !wrong.stderrString.contains("=wrong"), "\(wrong)")

            let secretWithoutPrincipal = try await runProcess(
                GearlockBinary.path, ["submit", "-s", address, "--secret-file", workerSecret, "-f", "acme.rev", "x"],
                timeout: .seconds(20))
            #expect(secretWithoutPrincipal.exitCode == 64, "\(secretWithoutPrincipal)")
        }
    }
}
