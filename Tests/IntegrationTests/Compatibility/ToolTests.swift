import Foundation
import GearmanProtocol
import Testing

/// libgearman's `gearman` command, unchanged, against both servers.
@Suite("gearman CLI interop", .serialized, .timeLimit(.minutes(5)))
struct ToolTests {
    @Test("foreground job: gearman -w rev + gearman -f rev hello prints olleh", arguments: ServerKind.allCases)
    func foregroundJob(kind: ServerKind) async throws {
        try await withTestServer(kind) { server in
            let worker = try server.startGearman(["-w", "-f", "rev", "-c", "1", "--", "rev"])
            do {
                let client = try await server.gearman(["-f", "rev", "hello"])
                #expect(client.exitCode == 0, "\(client)")
                #expect(client.stdoutString == "olleh", "\(client)")
                // -c 1: the worker exits 0 after its one job.
                let workerResult = await worker.wait(timeout: .seconds(30))
                #expect(workerResult.exitCode == 0, "\(workerResult)")
            } catch {
                worker.killTree()
                throw error
            }
        }
    }

    @Test("foreground job with the workload on stdin", arguments: ServerKind.allCases)
    func foregroundJobFromStdin(kind: ServerKind) async throws {
        try await withTestServer(kind) { server in
            let worker = try server.startGearman(["-w", "-f", "rev", "-c", "1", "--", "rev"])
            do {
                let client = try await server.gearman(["-f", "rev"], stdin: Data("from-stdin\n".utf8))
                #expect(client.exitCode == 0, "\(client)")
                #expect(client.stdoutString == "nidts-morf\n", "\(client)")
                await worker.wait(timeout: .seconds(30))
            } catch {
                worker.killTree()
                throw error
            }
        }
    }

    @Test("background job: gearman -b queues it, a worker started later drains it", arguments: ServerKind.allCases)
    func backgroundJob(kind: ServerKind) async throws {
        try await withTestServer(kind) { server in
            let submit = try await server.gearman(["-b", "-f", "revbg", "bgjob"])
            #expect(submit.exitCode == 0, "\(submit)")
            #expect(submit.stdoutString == "", "gearman -b prints nothing: \(submit)")
            #expect(try await server.admin("status") == "revbg\t1\t0\t0\n.\n")
            #expect(try await server.admin("prioritystatus") == "revbg\t0\t1\t0\t0\n.\n")

            let worker = try server.startGearman(["-w", "-f", "revbg", "-c", "1", "--", "rev"])
            let workerResult = await worker.wait(timeout: .seconds(30))
            #expect(workerResult.exitCode == 0, "the worker ran its one job and exited: \(workerResult)")
            // The function outlives its jobs and workers in `status`.
            let status = try await server.adminEventually("status") { $0 == "revbg\t0\t0\t0\n.\n" }
            #expect(status == "revbg\t0\t0\t0\n.\n")
        }
    }

    @Test("worker command failing: the client exits 1 with WORK_DATA on stdout and 'Job failed'", arguments: ServerKind.allCases)
    func failingWorkerCommand(kind: ServerKind) async throws {
        try await withTestServer(kind) { server in
            let worker = try server.startGearman(["-w", "-f", "failfn", "-c", "1", "--", "sh", "-c", "echo partial; exit 3"])
            do {
                let client = try await server.gearman(["-f", "failfn", "x"])
                #expect(client.exitCode == 1, "\(client)")
                #expect(client.stdoutString == "partial\n", "\(client)")
                #expect(client.stderrString == "Job failed\n", "\(client)")
            } catch {
                worker.killTree()
                throw error
            }
            worker.killTree()
            await worker.wait(timeout: .seconds(30))
        }
    }

    @Test("priority flags: -I and -L foreground jobs, -b -I / -b -L background jobs", arguments: ServerKind.allCases)
    func priorityFlags(kind: ServerKind) async throws {
        try await withTestServer(kind) { server in
            for flags in [["-b", "-I"], ["-b"], ["-b", "-L"], ["-b", "-L"]] {
                let submit = try await server.gearman(flags + ["-f", "pf", "x"])
                #expect(submit.exitCode == 0, "\(submit)")
            }
            #expect(try await server.admin("prioritystatus") == "pf\t1\t1\t2\t0\n.\n")
            let worker = try server.startGearman(["-w", "-f", "pf2", "-c", "2", "--", "rev"])
            do {
                let high = try await server.gearman(["-I", "-f", "pf2", "abc"])
                let low = try await server.gearman(["-L", "-f", "pf2", "def"])
                #expect(high.stdoutString == "cba" && high.exitCode == 0, "\(high)")
                #expect(low.stdoutString == "fed" && low.exitCode == 0, "\(low)")
                await worker.wait(timeout: .seconds(30))
            } catch {
                worker.killTree()
                throw error
            }
        }
    }
}
