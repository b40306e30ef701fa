import Foundation
import GearlockTestSupport
import NIOCore
import NIOPosix
import Testing

/// The ports of a `gearlock serve` started for a metrics test.
struct MetricsTestPorts: Sendable {
    var plaintext: Int
    var tls: Int?
    var metrics: Int
}

/// Runs `gearlock serve` with a plaintext listener, a TLS listener when `tls` is true, and
/// `--metrics-listen` on free loopback ports; waits until both the job server and the metrics
/// endpoint answer, and always stops it afterwards.
func withMetricsServer<T: Sendable>(
    tls: Bool, _ arguments: [String], sourceLocation: SourceLocation = #_sourceLocation,
    _ body: (MetricsTestPorts, LiveProcess) async throws -> T
) async throws -> T {
    let pki = try TestPKI.shared()
    return try await withRetriedGearlockServe(
        sourceLocation: sourceLocation, listenTimeout: .seconds(20),
        makePorts: {
            MetricsTestPorts(
                plaintext: try freeLoopbackPort(), tls: tls ? try freeLoopbackPort() : nil, metrics: try freeLoopbackPort())
        },
        arguments: { ports in
            var all = ["serve", "--listen", "127.0.0.1:\(ports.plaintext)", "--metrics-listen", "127.0.0.1:\(ports.metrics)",
                       "--log-level", "info"]
            if let port = ports.tls {
                all += ["--tls-listen", "127.0.0.1:\(port)", "--tls-cert", pki.certificate("server"), "--tls-key", pki.key("server")]
            }
            return all + arguments
        },
        isListening: { ports, output in output.contains("metrics listening") && output.contains("127.0.0.1:\(ports.plaintext)") },
        isReady: { ports, process in
            try await waitUntilAnswering(port: ports.plaintext, pid: process.pid, stillRunning: { process.isRunning })
            _ = try await httpExchange(port: ports.metrics, "GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n")
        },
        body)
}

/// Sends `request` as it is to 127.0.0.1:`port` and returns everything the peer sent until it
/// closed the connection (the metrics endpoint closes after each response).
func httpExchange(port: Int, _ request: String) async throws -> String {
    try await within(.seconds(20), "HTTP exchange with port \(port)") {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        return try await channel.executeThenClose { inbound, outbound in
            try await outbound.write(ByteBuffer(string: request))
            var response = ""
            for try await chunk in inbound {
                response += String(buffer: chunk)
            }
            return response
        }
    }
}

/// `GET /metrics`, parsed.
func scrape(port: Int) async throws -> PrometheusText {
    let response = try await httpExchange(port: port, "GET /metrics HTTP/1.1\r\nHost: test\r\n\r\n")
    guard response.hasPrefix("HTTP/1.1 200 OK\r\n"), let split = response.range(of: "\r\n\r\n") else {
        throw RawClientError(description: "GET /metrics answered \(reprString(String(response.prefix(500))))")
    }
    return PrometheusText(String(response[split.upperBound...]))
}

/// The samples of a Prometheus text exposition: `name{label="value",…} number` lines.
struct PrometheusText: Sendable, CustomStringConvertible {
    struct Sample: Sendable {
        var name: String
        var labels: [String: String]
        var value: Double
    }

    let text: String
    let samples: [Sample]

    init(_ text: String) {
        self.text = text
        samples = text.split(separator: "\n").compactMap { line -> Sample? in
            guard !line.hasPrefix("#"), let space = line.lastIndex(of: " "),
                let value = Double(line[line.index(after: space)...])
            else { return nil }
            let series = line[..<space]
            guard let brace = series.firstIndex(of: "{") else {
                return Sample(name: String(series), labels: [:], value: value)
            }
            var labels: [String: String] = [:]
            let inside = series[series.index(after: brace)..<(series.lastIndex(of: "}") ?? series.endIndex)]
            // Label values here hold no `",` (function and tenant names of the tests).
            for pair in inside.split(separator: "\",") {
                let parts = pair.split(separator: "=", maxSplits: 1)
                guard parts.count == 2 else { continue }
                labels[String(parts[0])] = String(parts[1].trimmingCharacters(in: CharacterSet(charactersIn: "\"")))
            }
            return Sample(name: String(series[..<brace]), labels: labels, value: value)
        }
    }

    /// The value of the series `name` with exactly these labels, if it is exposed.
    func value(_ name: String, _ labels: [String: String] = [:]) -> Double? {
        samples.first { $0.name == name && $0.labels == labels }?.value
    }

    var description: String { text }
}
