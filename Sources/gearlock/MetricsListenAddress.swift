import ArgumentParser
import GearmanServer

/// `--metrics-listen`: `HOST:PORT`, `[IPv6]:PORT`, `:PORT` or a bare `PORT` (both on 127.0.0.1).
struct MetricsListenAddress: ExpressibleByArgument, Sendable, CustomStringConvertible {
    var address: ListenAddress

    init?(argument: String) {
        let isBarePort = !argument.isEmpty && argument.allSatisfy(\.isASCII) && argument.allSatisfy(\.isNumber)
        guard let address = ListenAddress(argument: isBarePort ? ":" + argument : argument) else { return nil }
        self.address = address
    }

    var host: String { address.listener.host }
    var port: Int { address.listener.port }
    var isLoopback: Bool { address.isLoopback }
    var description: String { address.listener.description }
}
