import ArgumentParser
import GearmanACL

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// `gearlock acl`: check an ACL file; make a shared secret and the hash that goes into the file.
struct ACLCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "acl",
        abstract: "Check an ACL file; generate a shared secret and its hash.",
        discussion: "The ACL file format is described in SECURITY.md (\"Authorisation and the ACL file format\").",
        subcommands: [Check.self, NewSecret.self]
    )

    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "check",
            abstract: "Validate an ACL file.",
            discussion: """
                Exit status: 0 when the file is valid (a one-line summary goes to stdout); 1 when it is not \
                (one `FILE:LINE: problem` line per problem goes to stderr).
                """
        )

        @Argument(help: "The ACL file (YAML).")
        var file: String

        func run() throws {
            let policy: AccessPolicy
            do {
                policy = try AccessPolicy.load(contentsOfFile: file)
            } catch {
                for line in error.lines { StandardStream.printError(line) }
                throw ExitCode.failure
            }
            print("\(Self.count(policy.tenants.count, "tenant")), \(Self.count(policy.principals.count, "principal"))")
        }

        static func count(_ number: Int, _ noun: String) -> String { "\(number) \(noun)\(number == 1 ? "" : "s")" }
    }

    struct NewSecret: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "new-secret",
            abstract: "Print a fresh random shared secret and the hash for the ACL file.",
            discussion: """
                stdout gets two lines, `secret: …` and `hash: sha256:…`; the note on what to do with them goes \
                to stderr. The secret is \(SharedSecret.byteCount) bytes from the system's random generator, \
                base64url-encoded. Only the hash belongs in the ACL file.
                """
        )

        @Option(help: "The principal the secret is for (shown in the ACL snippet).")
        var principal: String?

        func validate() throws {
            if let principal, let problem = PrincipalRule.nameProblem(principal) {
                throw ValidationError("--principal \"\(principal)\" \(problem)")
            }
        }

        func run() throws {
            let secret = SharedSecret.generate()
            let hash = SecretHash(hashing: secret)
            print("secret: \(secret)")
            print("hash: \(hash)")
            let name = principal ?? "NAME"
            StandardStream.printError(
                """

                Put only the hash in the ACL file, e.g.:
                  principals:
                    \(name):
                      secret: "\(hash)"
                Give the secret to \(principal ?? "the principal") over a safe channel and store it like a private \
                key (a file readable only by its owner, or a secret store). It is not shown again, and the \
                server cannot recover it from the hash. It authenticates as auth:\(name):<secret>.
                """)
        }
    }

}
