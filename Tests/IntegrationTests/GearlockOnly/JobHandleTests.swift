import GearmanProtocol
import GearmanServer
import Testing

/// Handles: unguessable, at most 63 bytes (libgearman keeps them in a 64-byte buffer).
@Suite("Job handles (Gearlock)", .serialized, .timeLimit(.minutes(5)))
struct JobHandleTests {
    @Test("handles fit in 63 bytes with the longest prefix, and libgearman's tools use them")
    func longestPrefixWorksWithTools() async throws {
        let prefix = String(repeating: "p", count: JobServer.Configuration.maxJobHandlePrefixLength)
        try await withTestServer(.gearlock, ServerOptions(jobHandlePrefix: prefix)) { server in
            let client = try await server.connect()
            for _ in 0..<3 {
                let handle = try await client.submit("h", unique: "", payload: "", type: .submitJobBackground)
                #expect(handle.hasPrefix(prefix + ":") && handle.utf8.count <= 63, "\(handle)")
            }
            let worker = try server.startGearman(["-w", "-f", "rev", "-c", "1", "--", "rev"])
            let result = try await server.gearman(["-f", "rev", "long handle"])
            #expect(result.exitCode == 0 && result.stdoutString == "eldnah gnol", "\(result)")
            let workerResult = await worker.wait(timeout: .seconds(30))
            #expect(workerResult.exitCode == 0, "\(workerResult)")
        }
    }

    @Test("two server starts hand out different handles; successive handles are not just a counter")
    func handlesAreUnguessable() async throws {
        let first = try await withTestServer(.gearlock) { server in
            let client = try await server.connect()
            return [
                try await client.submit("h", unique: "", payload: "", type: .submitJobBackground),
                try await client.submit("h", unique: "", payload: "", type: .submitJobBackground),
            ]
        }
        let second = try await withTestServer(.gearlock) { server in
            let client = try await server.connect()
            return try await client.submit("h", unique: "", payload: "", type: .submitJobBackground)
        }
        #expect(first[0] != second, "same first handle after a restart: \(first[0])")
        #expect(first[0] != first[1])
        // Knowing handle n must not give handle n+1: a counter alone changes one or two characters.
        let a = Array(first[0].utf8)
        let b = Array(first[1].utf8)
        let differing = zip(a, b).filter { $0 != $1 }.count + abs(a.count - b.count)
        #expect(differing >= 4, "successive handles \(first) differ in only \(differing) bytes")
    }
}
