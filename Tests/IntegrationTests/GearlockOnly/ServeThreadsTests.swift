import Foundation
import GearmanProtocol
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `gearlock serve --threads N`: connections live on several event loops and the job state on one,
/// so every packet hops between threads. Driven by `gearlock bench --driver raw`, whose clients
/// close with jobs still in flight at the end of each run (the path of a write failing under a
/// flush), and checked byte for byte.
@Suite("gearlock serve --threads", .serialized, .timeLimit(.minutes(5)))
struct ServeThreadsTests {
    private func bench(port: Int, pid: Int32, _ arguments: [String]) async throws -> [String: Any] {
        let (result, report) = try await runBench(
            address: "127.0.0.1:\(port)", pid: pid, ["--driver", "raw"] + arguments, timeout: .seconds(120))
        #expect(result.exitCode == 0, "\(result)")
        return report
    }

    @Test("the raw driver reports a server that dies mid-run: errors counted, exit 1")
    func serverDiesMidRun() async throws {
        try await withGearlockBinary(["--queue", "memory"]) { port, process in
            let killer = Task {
                try await Task.sleep(for: .seconds(2))
                process.signal(SIGKILL)
            }
            defer { killer.cancel() }
            let (result, report) = try await runBench(
                address: "127.0.0.1:\(port)", pid: process.pid,
                ["--driver", "raw", "--duration", "4", "--warmup", "0.5"], timeout: .seconds(120))
            #expect(result.exitCode == 1, "\(result)")
            #expect((report["errors"] as? Int ?? 0) > 0, "\(report)")
        }
    }

    @Test("--threads 3: foreground 100 B and 64 KiB and 3,000 background jobs, byte-exact and exactly once; the server still answers")
    func severalLoops() async throws {
        try await withGearlockBinary(["--threads", "3", "--queue", "memory"]) { port, process in
            for size in ["100", "65536"] {
                let report = try await bench(
                    port: port, pid: process.pid,
                    ["--duration", "2", "--warmup", "0.5", "--workers", "3", "--clients", "4", "--in-flight", "8",
                     "--payload-size", size])
                #expect((report["jobs"] as? Int ?? 0) > 0, "\(report)")
                #expect(report["errors"] as? Int == 0 && report["mismatches"] as? Int == 0, "\(report)")
            }
            let background = try await bench(
                port: port, pid: process.pid,
                ["--mode", "background", "--jobs", "3000", "--unique-keys", "--workers", "3", "--clients", "3",
                 "--in-flight", "16", "--payload-size", "100"])
            #expect(background["enqueued"] as? Int == 3000 && background["drained"] as? Int == 3000, "\(background)")
            #expect(background["duplicates"] as? Int == 0 && background["left_on_server"] as? Int == 0, "\(background)")

            let client = try await RawClient.connect(host: "127.0.0.1", port: port, label: "client")
            let worker = try await RawClient.connect(host: "127.0.0.1", port: port, label: "worker")
            try await worker.canDo("threads.f")
            let handle = try await client.submit("threads.f", payload: "after the benches")
            #expect(try await worker.grab() == .response(.jobAssign, handle, "threads.f", "after the benches"))
            try await worker.send(.request(.workComplete, handle, "done"))
            #expect(try await client.receive() == .packet(.response(.workComplete, handle, "done")))
            #expect(try await client.adminCommand("version").hasPrefix("OK "))
            #expect(process.isRunning)
            await client.close()
            await worker.close()
        }
    }
}
