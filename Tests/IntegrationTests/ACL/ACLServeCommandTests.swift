import Foundation
import GearmanProtocol
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `gearlock serve --acl FILE`: start-up validation and SIGHUP reload of the real binary.
@Suite("gearlock serve --acl", .serialized, .timeLimit(.minutes(2)))
struct ACLServeCommandTests {
    /// The fixture ACL plus `admin: read` for anonymous connections, so the start-up probe's
    /// `getpid` is answered.
    static func servedYAML(acmeCanDo: [String] = ["acme.*"]) -> String {
        ACLFixture.yaml(acmeCanDo: acmeCanDo) + "\nanonymous:\n  admin: read\n"
    }

    static func temporaryFile(_ contents: String) throws -> String {
        let path = NSTemporaryDirectory() + "gearlock-acl-\(UUID().uuidString).yaml"
        try Data(contents.utf8).write(to: URL(fileURLWithPath: path))
        return path
    }

    @Test("An invalid ACL file stops start-up with its line-numbered errors")
    func invalidFileRefused() async throws {
        let path = try Self.temporaryFile("tenants:\n  acme:\n    functions: [\"acme.*\"]\n    colour: blue\n")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let result = try await runProcess(
            GearlockBinary.path, ["serve", "--listen", "127.0.0.1:\(try freeLoopbackPort())", "--queue", "memory", "--acl", path],
            timeout: .seconds(20))
        #expect(result.exitCode != 0 && !result.timedOut, "\(result)")
        #expect(result.stderrString.contains("\(path):4:"), "\(result)")
        #expect(result.stderrString.contains("colour"), "\(result)")
    }

    @Test("SIGHUP reloads the ACL: a withdrawn grant is enforced at once; a broken file keeps the old ACL")
    func sighupReload() async throws {
        let path = try Self.temporaryFile(Self.servedYAML())
        defer { try? FileManager.default.removeItem(atPath: path) }
        try await withGearlockBinary(["--acl", path]) { port, process in
            let worker = try await RawClient.connect(host: "127.0.0.1", port: port, label: "worker")
            try await worker.authenticate("acme-worker", secret: ACLFixture.secret("acme-worker"))
            try await worker.canDo("acme.resize", "acme.thumb")
            #expect(try await worker.ping())
            let admin = try await RawClient.connect(host: "127.0.0.1", port: port, label: "root")
            #expect(try await admin.adminCommand("auth root \(ACLFixture.secret("root"))") == "OK\r\n")
            #expect(try await admin.adminCommand("workers").contains("acme-worker : acme.resize acme.thumb\n"))

            try Data(Self.servedYAML(acmeCanDo: ["acme.thumb"]).utf8).write(to: URL(fileURLWithPath: path))
            process.signal(SIGHUP)
            var workers = ""
            let deadline = ContinuousClock.now + .seconds(30)
            repeat {
                try await Task.sleep(for: .milliseconds(50))
                workers = try await admin.adminCommand("workers")
            } while !workers.contains("acme-worker : acme.thumb\n") && ContinuousClock.now < deadline
            #expect(workers.contains("acme-worker : acme.thumb\n"), "\(workers)")

            // A broken file: the previous ACL stays in force, live connections stay up.
            try Data("principals: [oops\n".utf8).write(to: URL(fileURLWithPath: path))
            process.signal(SIGHUP)
            try await Task.sleep(for: .milliseconds(500))
            #expect(process.isRunning)
            #expect(try await worker.ping())
            let web = try await RawClient.connect(host: "127.0.0.1", port: port, label: "web")
            try await web.authenticate("acme-web", secret: ACLFixture.secret("acme-web"))
            _ = try await web.submit("acme.thumb", payload: "p", type: .submitJobBackground)
            #expect(try await worker.grabUntilAssigned().type == PacketType.jobAssign.rawValue)
            for connection in [worker, admin, web] { await connection.close() }
        }
    }
}
