import Testing

/// Starts `gearlock serve` on fresh loopback ports until it comes up (at most three tries: a port
/// picked free may be taken by the time the server binds it), runs `body`, and always stops it.
/// - Parameters:
///   - makePorts: picks the ports of one try.
///   - arguments: the whole command line after the binary, for those ports.
///   - isListening: whether the output so far shows the server listening (waited for up to
///     `listenTimeout`).
///   - isReady: any further check once it listens (throws when it is not ready).
func withRetriedGearlockServe<Ports: Sendable, T: Sendable>(
    sourceLocation: SourceLocation, listenTimeout: Duration,
    makePorts: () throws -> Ports, arguments: (Ports) -> [String],
    isListening: @escaping @Sendable (Ports, String) -> Bool,
    isReady: (Ports, LiveProcess) async throws -> Void,
    _ body: (Ports, LiveProcess) async throws -> T
) async throws -> T {
    var lastFailure = ""
    for _ in 0..<3 {
        let ports = try makePorts()
        let commandLine = arguments(ports)
        let process = try LiveProcess(GearlockBinary.path, commandLine, sourceLocation: sourceLocation)
        var ready = await process.waitFor(timeout: listenTimeout) { out, err in isListening(ports, out + err) }
        if ready {
            do {
                try await isReady(ports, process)
            } catch {
                ready = false
            }
        }
        guard ready else {
            await process.terminate()
            lastFailure =
                "gearlock \(commandLine.joined(separator: " ")) did not start: \(reprString(String(process.output.suffix(2000))))"
            continue
        }
        do {
            let result = try await body(ports, process)
            await process.terminate()
            return result
        } catch {
            await process.terminate()
            throw error
        }
    }
    Issue.record(Comment(rawValue: lastFailure), sourceLocation: sourceLocation)
    throw RawClientError(description: "gearlock serve did not start")
}
