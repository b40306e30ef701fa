import Foundation
import GearlockCLI
import GearmanACL
import GearmanQueue
import GearmanServer
import GearmanTLS

extension ServeCommand {
    /// `--check-config`: everything start-up would load, loaded and thrown away — the ACL, the TLS
    /// certificates, keys, CAs and CRLs, the queue's directory — without binding a port or opening
    /// the queue (a running server holds its lock). The options themselves, and the `--config`
    /// file, were already checked by the parser. Returns the summary printed on success.
    func checkConfiguration() throws(ConfigurationCheckFailure) -> String {
        var problems: [String] = []
        var summary = ["configuration OK" + (config.map { " (\($0))" } ?? "")]

        let listeners = listeners(replacing: JobServer.Configuration().listeners)
        summary.append("  listeners: " + listeners.map(\.description).joined(separator: ", "))
        if let tls = tlsConfiguration() {
            do {
                _ = try TLSContext(configuration: tls)
            } catch {
                problems.append("TLS: \(error.message)" + error.openSSLErrors.map { " (\($0))" }.joined())
            }
        }

        if let acl {
            do {
                let policy = try AccessPolicy.load(contentsOfFile: acl)
                summary.append("  acl: \(acl) (\(policy.tenants.count) tenants, \(policy.principals.count) principals)")
            } catch {
                problems += error.lines.map { "ACL: \($0)" }
            }
        } else {
            summary.append("  acl: none (every connection may do everything)")
        }

        switch queue {
        case .memory:
            break
        case .sqlite(let path):
            let directory = (path as NSString).deletingLastPathComponent
            var isDirectory: ObjCBool = false
            if !FileManager.default.fileExists(atPath: directory.isEmpty ? "." : directory, isDirectory: &isDirectory)
                || !isDirectory.boolValue
            {
                problems.append("queue: the directory of \(path) does not exist")
            }
        case .postgres(let url):
            // Checked as far as it can be without connecting: the URL's form (never echoed).
            do {
                summary.append("  queue database: \(try PostgresQueueStore.checkedLocation(url: url))")
            } catch {
                problems.append("queue: \(error.message)")
            }
        }
        summary.append("  queue: \(queue)")
        summary.append("  log: \(logFormat.rawValue), level \(logLevel)")
        if let metricsListen {
            summary.append(
                "  metrics: http://\(metricsListen)/metrics"
                    + (metricsListen.isLoopback ? "" : " (warning: not loopback; metrics name functions and tenants)"))
        }

        guard problems.isEmpty else { throw ConfigurationCheckFailure(problems: problems) }
        return summary.joined(separator: "\n")
    }
}

/// What `gearlock serve --check-config` found wrong; printed one problem a line.
struct ConfigurationCheckFailure: Error, CustomStringConvertible {
    var problems: [String]

    var description: String {
        "configuration has \(problems.count) problem\(problems.count == 1 ? "" : "s"):\n"
            + problems.map { "  " + $0 }.joined(separator: "\n")
    }
}
