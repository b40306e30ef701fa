import ArgumentParser
import GearmanServer

/// `HOST:PORT`, `[IPv6]:PORT` or `:PORT` (all of loopback's 127.0.0.1) on the command line.
struct ListenAddress: ExpressibleByArgument, Sendable, Equatable {
    var listener: JobServer.Configuration.Listener

    init?(argument: String) {
        let host: Substring
        let port: Substring
        if argument.hasPrefix("[") {
            guard let close = argument.firstIndex(of: "]") else { return nil }
            host = argument[argument.index(after: argument.startIndex)..<close]
            let rest = argument[argument.index(after: close)...]
            guard rest.hasPrefix(":") else { return nil }
            port = rest.dropFirst()
        } else {
            guard let colon = argument.lastIndex(of: ":") else { return nil }
            host = argument[..<colon]
            port = argument[argument.index(after: colon)...]
        }
        guard let portNumber = Int(port), (0...65535).contains(portNumber) else { return nil }
        self.listener = .init(host: host.isEmpty ? "127.0.0.1" : String(host), port: portNumber)
    }

    /// Loopback addresses only; a name that might resolve elsewhere counts as the network.
    var isLoopback: Bool {
        let host = listener.host
        return host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }
}
