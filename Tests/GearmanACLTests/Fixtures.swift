import GearmanACL
import Testing

/// Secrets whose SHA-256 hashes (computed with `sha256sum`, independently of the code under test)
/// appear in the fixtures.
enum Secrets {
    static let resizer = "resizer-secret"
    static let resizerHash = "sha256:321b1b1a37f25eff33f2793896f34755397b3e2b57af49c35d394315edd5aa42"
    static let web = "web-secret"
    static let webHash = "sha256:761fed9dbb22427bedbc73c3f0ab93fff41104aa77eb145025d0113be8c035a3"
}

/// The shape DESIGN.md sketches, with a second tenant and real hashes.
let sketchYAML = """
    tenants:
      acme:
        functions: ["acme.*"]          # the tenant's namespace
        max_queued_jobs: 100000
        max_connections: 50
        max_payload_bytes: 1048576
      globex:
        functions: ["globex.*", "gx-?"]
    principals:
      acme-resizer-1:
        tenant: acme
        certificate: acme-resizer-1    # identity from the client certificate
        secret: "\(Secrets.resizerHash)"
        require: [certificate, secret] # both must be presented (default: either)
        can_do: ["acme.resize", "acme.thumb.*"]
      acme-web:
        tenant: acme
        secret: "\(Secrets.webHash)"
        submit: ["acme.*"]
        admin: read
      globex-worker:
        tenant: globex
        certificate: globex-worker
        can_do: ["globex.*", "gx-1"]
      ops:
        certificate: ops-admin         # no tenant: sees the whole server
        admin: write
      auditor:
        secret: "\(Secrets.webHash)"
        admin: read
    anonymous:                         # rights of unauthenticated connections (default: none)
      submit: []
    """

func loadSketch() throws -> AccessPolicy {
    try AccessPolicy(yaml: sketchYAML)
}

/// The 1-based number of the first line of `yaml` that contains `marker`.
func line(of marker: String, in yaml: String, sourceLocation: SourceLocation = #_sourceLocation) -> Int? {
    let lines = yaml.split(separator: "\n", omittingEmptySubsequences: false)
    guard let index = lines.firstIndex(where: { $0.contains(marker) }) else {
        Issue.record("marker \(marker) not in the YAML", sourceLocation: sourceLocation)
        return nil
    }
    return index + 1
}

/// The errors loading `yaml` produces (records an issue when it loads).
func loadErrors(_ yaml: String, sourceLocation: SourceLocation = #_sourceLocation) -> [ACLError] {
    do {
        _ = try AccessPolicy(yaml: yaml)
        Issue.record("expected the ACL to be refused", sourceLocation: sourceLocation)
        return []
    } catch {
        return error.errors
    }
}

func pattern(_ text: String) -> FunctionPattern {
    guard let pattern = FunctionPattern(text) else { preconditionFailure("bad test pattern \(text)") }
    return pattern
}
