import GearmanACL
import GearmanProtocol
import GearmanTLS
import Logging
import NIOCore
import Testing

@testable import GearmanServer

/// The shared secrets of the access-control fixture. Each hash was computed outside the code under
/// test, with `printf %s SECRET | sha256sum`.
enum AccessSecrets {
    static let acmeWorker = "acme-worker-s3cret"
    static let acmeWeb = "acme-web-s3cret"
    static let acmeReader = "acme-reader-s3cret"
    static let acmeAdmin = "acme-admin-s3cret"
    static let globexWorker = "globex-worker-s3cret"
    static let globexAdmin = "globex-admin-s3cret"
    static let ops = "ops-s3cret"
    static let auditor = "auditor-s3cret"
    static let dual = "dual-s3cret"
    /// A secret holding `:`, which the token keeps whole.
    static let colon = "co:lon:s3cret"
    /// Nobody's secret.
    static let wrong = "wrong-s3cret"

    static let hashes: [String: String] = [
        acmeWorker: "sha256:0b532809f702796a347f96b617c1db09c0acb9c4286ab4364e1126390fccf846",
        acmeWeb: "sha256:3a2f020173903c6172573109efc7a4f9e964c5819c47c2298eeef421c6c5f750",
        acmeReader: "sha256:021b99896ac8f50afa56ea8283fafb7df522149e3b1e04f1d75356f9e094f986",
        acmeAdmin: "sha256:705bc95b0c6cde0143f6815423cc46c441d49146a8d29ae0e5abb450a57fb498",
        globexWorker: "sha256:69932802ee52a7e5793fa75810f3e3ca3c9c69ce9341b4941ada236dce48f2b0",
        globexAdmin: "sha256:1322587a976bc309650833a0ce6734c4e3a6ff9c46e53114f6fe41753bb3900e",
        ops: "sha256:ae54957f6ca8de07b54bb6bcc48785b5bc6055e37954969693925ccecc4eac30",
        auditor: "sha256:39258266725889510d2cd0a190a02e9a5756bec4065bd63fc41678dcfe80cfa5",
        dual: "sha256:ab553d407b638b1d7fa01e650268054bbb3c03abc49b4e3711174b434cc4bbd9",
        colon: "sha256:af1e6caf70932344473357229255dfa5597418205d675374b860d037f26eae7a",
    ]

    /// The secret of each principal that has one.
    static let byPrincipal: [String: String] = [
        "acme-worker": acmeWorker, "acme-web": acmeWeb, "acme-reader": acmeReader, "acme-admin": acmeAdmin,
        "globex-worker": globexWorker, "globex-admin": globexAdmin, "ops": ops, "auditor": auditor,
        "dual": dual, "colon": colon,
    ]

    /// Every secret of the fixture, the wrong one included.
    static var all: [String] { Array(hashes.keys) + [wrong] }
}

/// A two-tenant ACL (acme, globex) with workers, submitters, tenant and global admins, certificate
/// principals and one principal that requires both factors.
enum AccessFixture {
    struct Quotas {
        var maxQueuedJobs: Int?
        var maxConnections: Int?
        var maxPayloadBytes: Int?
    }

    /// The fixture's YAML. `remove` leaves principals out; `overrides` replaces a principal's body
    /// lines (for reload tests); `anonymous` is the `anonymous:` flow mapping, if any.
    static func yaml(
        acme quotas: Quotas = Quotas(), anonymous: String? = nil, remove: Set<String> = [],
        overrides: [String: [String]] = [:]
    ) -> String {
        func hash(_ secret: String) -> String { "secret: \"\(AccessSecrets.hashes[secret]!)\"" }
        let principals: [(String, [String])] = [
            ("acme-worker", ["tenant: acme", hash(AccessSecrets.acmeWorker), "can_do: [\"acme.*\"]", "submit: [\"acme.*\"]"]),
            ("acme-web", ["tenant: acme", hash(AccessSecrets.acmeWeb), "submit: [\"acme.*\"]"]),
            ("acme-reader", ["tenant: acme", hash(AccessSecrets.acmeReader), "admin: read"]),
            ("acme-admin", ["tenant: acme", hash(AccessSecrets.acmeAdmin), "submit: [\"acme.*\"]", "admin: write"]),
            ("acme-cert", ["tenant: acme", "certificate: acme-cert", "can_do: [\"acme.*\"]"]),
            ("acme-uri", ["tenant: acme", "certificate: \"spiffe://acme/uri-worker\"", "can_do: [\"acme.*\"]"]),
            ("acme-dns", ["tenant: acme", "certificate: dns-worker.acme.example", "can_do: [\"acme.*\"]"]),
            (
                "dual",
                ["tenant: acme", "certificate: dual-cert", hash(AccessSecrets.dual), "require: [certificate, secret]",
                 "can_do: [\"acme.*\"]"]
            ),
            ("colon", ["tenant: acme", hash(AccessSecrets.colon), "submit: [\"acme.*\"]"]),
            (
                "globex-worker",
                ["tenant: globex", hash(AccessSecrets.globexWorker), "can_do: [\"globex.*\"]", "submit: [\"globex.*\"]"]
            ),
            (
                "globex-admin",
                ["tenant: globex", "certificate: globex-cert", hash(AccessSecrets.globexAdmin),
                 "submit: [\"globex.*\"]", "admin: write"]
            ),
            ("ops", [hash(AccessSecrets.ops), "can_do: [\"*\"]", "submit: [\"*\"]", "admin: write"]),
            ("auditor", [hash(AccessSecrets.auditor), "admin: read"]),
        ]
        var text = "tenants:\n  acme:\n    functions: [\"acme.*\"]\n"
        if let value = quotas.maxQueuedJobs { text += "    max_queued_jobs: \(value)\n" }
        if let value = quotas.maxConnections { text += "    max_connections: \(value)\n" }
        if let value = quotas.maxPayloadBytes { text += "    max_payload_bytes: \(value)\n" }
        text += "  globex:\n    functions: [\"globex.*\"]\nprincipals:\n"
        for (name, body) in principals where !remove.contains(name) {
            text += "  \(name):\n"
            for line in overrides[name] ?? body {
                text += "    \(line)\n"
            }
        }
        if let anonymous { text += "anonymous: \(anonymous)\n" }
        return text
    }

    static func policy(
        acme quotas: Quotas = Quotas(), anonymous: String? = nil, remove: Set<String> = [],
        overrides: [String: [String]] = [:]
    ) throws -> AccessPolicy {
        try AccessPolicy(yaml: yaml(acme: quotas, anonymous: anonymous, remove: remove, overrides: overrides))
    }

    /// A verified client certificate carrying these names.
    static func certificate(
        commonNames: [String] = [], dnsNames: [String] = [], uriNames: [String] = [], verified: Bool = true
    ) -> TLSPeerIdentity {
        TLSPeerIdentity(
            commonNames: commonNames, dnsNames: dnsNames, uriNames: uriNames,
            fingerprintSHA256: String(repeating: "ab", count: 32), notAfter: 2_000_000_000, isVerified: verified,
            protocolVersion: "TLSv1.3", cipher: "TLS_AES_128_GCM_SHA256")
    }
}

extension Harness {
    /// A harness whose server has the fixture ACL loaded.
    static func secured(
        acme quotas: AccessFixture.Quotas = AccessFixture.Quotas(), anonymous: String? = nil,
        certificateIdentity: AccessControl.CertificateIdentitySource = .commonName,
        failuresBeforeThrottling: Int = 5, authenticationTimeout: TimeAmount = .seconds(10),
        configure: (inout Machine.Configuration) -> Void = { _ in }
    ) throws -> Harness {
        let policy = try AccessFixture.policy(acme: quotas, anonymous: anonymous)
        return Harness(
            access: AccessControl(
                policy: policy, certificateIdentity: certificateIdentity, authenticationTimeout: authenticationTimeout,
                failuresBeforeThrottling: failuresBeforeThrottling),
            configure: configure)
    }

    /// The token `auth:<principal>:<secret>` in an OPTION_REQ.
    static func authOption(_ principal: String, _ secret: String) -> GearmanPacket {
        .optionRequest(name: buf("auth:\(principal):\(secret)"))
    }

    /// The token `auth:<principal>:<secret>` in a SET_CLIENT_ID.
    static func authClientID(_ principal: String, _ secret: String) -> GearmanPacket {
        .setClientID(id: buf("auth:\(principal):\(secret)"))
    }

    /// A new connection authenticated as `principal` with its secret (OPTION_REQ), checked.
    func authenticated(
        _ principal: String, peer: String = "127.0.0.1", sourceLocation: SourceLocation = #_sourceLocation
    ) -> ConnectionID {
        let id = connect(peer: peer)
        let secret = AccessSecrets.byPrincipal[principal] ?? "no secret for \(principal)"
        let outbox = send(Self.authOption(principal, secret), from: id)
        #expect(
            outbox.effects
                == [.liftPacketLimit(id), .send(.optionResponse(name: buf("auth:\(principal)")), to: id)],
            sourceLocation: sourceLocation)
        return id
    }

    /// An authenticated connection that registered `functions` (each registration checked silent).
    func worker(as principal: String, _ functions: String..., sourceLocation: SourceLocation = #_sourceLocation)
        -> ConnectionID
    {
        let id = authenticated(principal, sourceLocation: sourceLocation)
        for function in functions {
            #expect(send(Pkt.canDo(function), from: id).isEmpty, sourceLocation: sourceLocation)
        }
        return id
    }

    /// The functions `workers` lists for connection `id`, as seen by `admin`; nil when the line is absent.
    func listedFunctions(of id: ConnectionID, seenBy admin: ConnectionID) -> [String]? {
        let reply = adminReply("workers", from: admin)
        guard let line = reply.split(separator: "\n").first(where: { $0.hasPrefix("\(id) ") }) else { return nil }
        let parts = line.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
        return parts.count == 2 ? parts[1].split(separator: " ").map(String.init) : []
    }

    /// The name column of connection `id`'s `workers` line, as seen by `admin`.
    func listedName(of id: ConnectionID, seenBy admin: ConnectionID) -> String? {
        let reply = adminReply("workers", from: admin)
        guard let line = reply.split(separator: "\n").first(where: { $0.hasPrefix("\(id) ") }) else { return nil }
        let fields = line.split(separator: " ")
        return fields.count >= 3 ? String(fields[2]) : nil
    }
}

/// Error packets of the access-control layer, as the server words them.
enum AccessRes {
    static let authFailed = Res.error("AUTH_FAILED", "Authentication failed")
    static let submitDenied = Res.error("PERMISSION_DENIED", "Not permitted to submit to this function")
    static let registerDenied = Res.error("PERMISSION_DENIED", "Not permitted to register this function")
    static let adminDenied = "ERR PERMISSION_DENIED Permission+denied\r\n"
    static let adminAuthFailed = "ERR AUTH_FAILED Authentication+failed\r\n"
}

extension Outbox {
    /// The audit events of this outbox, by name.
    var auditNames: [String] { Harness.auditEvents(self).map(\.event) }

    /// The metadata of the first audit event named `name`, as strings.
    func audit(_ name: String) -> [String: String]? {
        guard let event = Harness.auditEvents(self).first(where: { $0.event == name }) else { return nil }
        return event.metadata.mapValues { "\($0)" }
    }
}

/// The fixture itself: it loads, and its hashes are the secrets' (a wrong hash would make every
/// "authenticates" test fail for the wrong reason).
@Suite struct AccessFixtureTests {
    @Test func fixtureLoadsWithEveryVariant() throws {
        let policy = try AccessFixture.policy()
        #expect(policy.tenants.map(\.name) == ["acme", "globex"])
        #expect(policy.principals.count == 13)
        #expect(policy.anonymous == .none)
        let quotas = try AccessFixture.policy(
            acme: .init(maxQueuedJobs: 2, maxConnections: 1, maxPayloadBytes: 16), anonymous: "{submit: [\"pub.*\"]}")
        #expect(quotas.tenant(named: "acme")?.quotas == Tenant.Quotas(maxQueuedJobs: 2, maxConnections: 1, maxPayloadBytes: 16))
        #expect(quotas.anonymous.submit.map(\.text) == ["pub.*"])
        #expect(try AccessFixture.policy(remove: ["ops"]).principal(named: "ops") == nil)
    }

    @Test(arguments: AccessSecrets.byPrincipal.sorted { $0.key < $1.key }.map { ($0.key, $0.value) })
    func everySecretAuthenticatesItsPrincipal(principal: String, secret: String) throws {
        let policy = try AccessFixture.policy()
        let certificate = principal == "dual" ? "dual-cert" : nil
        #expect(
            policy.authenticate(principal: principal, secret: secret, certificateIdentity: certificate).principal?.name
                == principal)
        #expect(policy.authenticate(principal: principal, secret: AccessSecrets.wrong, certificateIdentity: certificate).principal == nil)
    }
}
