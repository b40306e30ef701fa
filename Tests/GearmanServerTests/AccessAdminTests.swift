import GearmanACL
import GearmanProtocol
import NIOCore
import OrderedCollections
import Testing

@testable import GearmanServer

/// The text admin protocol under an ACL: levels, and tenant-scoped views and changes.
@Suite struct AccessAdminTests {
    /// Two tenants with a worker, a queued background job and a client each.
    private struct Scenario {
        let h: Harness
        let acmeWorker: ConnectionID
        let globexWorker: ConnectionID
        let acmeWeb: ConnectionID
        let globexClient: ConnectionID
        let acmeHandle: ByteBuffer
        let globexHandle: ByteBuffer

        init() throws {
            h = try Harness.secured()
            acmeWorker = h.worker(as: "acme-worker", "acme.resize")
            globexWorker = h.worker(as: "globex-worker", "globex.render")
            acmeWeb = h.authenticated("acme-web")
            globexClient = h.authenticated("globex-worker")
            acmeHandle = try h.submit(Pkt.submitBG("acme.resize", unique: "acme-u", "a"), from: acmeWeb)
            globexHandle = try h.submit(Pkt.submitBG("globex.render", unique: "globex-u", "g", priority: .high), from: globexClient)
        }
    }

    @Test func anonymousConnectionsGetPermissionDenied() throws {
        let s = try Scenario()
        let anonymous = s.h.connect()
        for line in ["status", "version", "workers", "prioritystatus", "show jobs", "show unique jobs", "getpid", "verbose"] {
            let outbox = s.h.admin(line, from: anonymous)
            #expect(outbox.effects == [.text(AccessRes.adminDenied, to: anonymous)], "\(line)")
            #expect(outbox.audit("permission_denied")?["reason"] == "needs admin read")
        }
        #expect(s.h.admin("cancel job \(String(buffer: s.acmeHandle))", from: anonymous).text(to: anonymous) == AccessRes.adminDenied)
        #expect(s.h.machine.jobs.count == 2)
    }

    @Test func principalsWithoutAdminRightsGetPermissionDenied() throws {
        let s = try Scenario()
        #expect(s.h.adminReply("status", from: s.acmeWeb) == AccessRes.adminDenied)
        #expect(s.h.adminReply("version", from: s.acmeWeb) == AccessRes.adminDenied)
        #expect(s.h.adminReply("workers", from: s.acmeWorker) == AccessRes.adminDenied)
    }

    @Test func tenantReaderSeesOnlyItsTenantsFunctions() throws {
        let s = try Scenario()
        let reader = s.h.authenticated("acme-reader")
        #expect(s.h.adminReply("status", from: reader) == "acme.resize\t1\t0\t1\n.\n")
        #expect(s.h.adminReply("prioritystatus", from: reader) == "acme.resize\t0\t1\t0\t1\n.\n")
        #expect(s.h.adminReply("version", from: reader).hasPrefix("OK "))
        let globexAdmin = s.h.authenticated("globex-admin")
        #expect(s.h.adminReply("status", from: globexAdmin) == "globex.render\t1\t0\t1\n.\n")
        #expect(s.h.adminReply("prioritystatus", from: globexAdmin) == "globex.render\t1\t0\t0\t1\n.\n")
    }

    @Test func tenantReaderSeesOnlyItsTenantsJobs() throws {
        let s = try Scenario()
        let reader = s.h.authenticated("acme-reader")
        #expect(s.h.showJobs(from: reader) == ["\(String(buffer: s.acmeHandle))\t0\t0\t1", ".", ""])
        #expect(s.h.adminReply("show unique jobs", from: reader) == "acme-u\n.\n")
        let globexAdmin = s.h.authenticated("globex-admin")
        #expect(s.h.showJobs(from: globexAdmin) == ["\(String(buffer: s.globexHandle))\t0\t0\t1", ".", ""])
        #expect(s.h.adminReply("show unique jobs", from: globexAdmin) == "globex-u\n.\n")
    }

    @Test func tenantReaderSeesOnlyItsTenantsConnections() throws {
        let s = try Scenario()
        let anonymous = s.h.connect()
        let ops = s.h.worker(as: "ops", "acme.resize", "globex.render", "misc")
        let reader = s.h.authenticated("acme-reader")
        let reply = s.h.adminReply("workers", from: reader)
        #expect(
            reply == """
                \(s.acmeWorker) 127.0.0.1 acme-worker : acme.resize
                \(s.acmeWeb) 127.0.0.1 acme-web :
                \(reader) 127.0.0.1 acme-reader :
                .

                """)
        #expect(!reply.contains("globex"))
        #expect(!reply.hasPrefix("\(anonymous) ") && !reply.contains("\n\(anonymous) "))
        #expect(!reply.contains("\n\(ops) ") && !reply.hasPrefix("\(ops) "))
    }

    /// A connection the scope sees may have registered functions it doesn't: `workers` leaves them out.
    @Test func workersListsOnlyTheFunctionsTheScopeSees() throws {
        let h = try Harness.secured(anonymous: "{can_do: [\"acme.public\", \"pub.*\"], admin: read}")
        let anonymousWorker = h.connect()
        h.send(Pkt.canDo("acme.public"), from: anonymousWorker)
        h.send(Pkt.canDo("pub.x"), from: anonymousWorker)
        #expect(h.machine.connections[anonymousWorker]?.abilities.count == 2)
        let anonymousAdmin = h.connect()
        #expect(h.listedFunctions(of: anonymousWorker, seenBy: anonymousAdmin) == ["pub.x"])
        #expect(h.adminReply("status", from: anonymousAdmin) == "pub.x\t0\t0\t1\n.\n")
        let auditor = h.authenticated("auditor")
        #expect(Set(h.listedFunctions(of: anonymousWorker, seenBy: auditor) ?? []) == ["acme.public", "pub.x"])
        let reader = h.authenticated("acme-reader")
        #expect(h.adminReply("status", from: reader) == "acme.public\t0\t0\t1\n.\n")
        #expect(h.listedFunctions(of: anonymousWorker, seenBy: reader) == nil)
    }

    @Test func globalReaderSeesEverything() throws {
        let s = try Scenario()
        let anonymous = s.h.connect()
        let auditor = s.h.authenticated("auditor")
        #expect(s.h.adminReply("status", from: auditor) == "acme.resize\t1\t0\t1\nglobex.render\t1\t0\t1\n.\n")
        #expect(
            s.h.showJobs(from: auditor) == [
                "\(String(buffer: s.acmeHandle))\t0\t0\t1", "\(String(buffer: s.globexHandle))\t0\t0\t1", ".", "",
            ])
        #expect(s.h.adminReply("show unique jobs", from: auditor) == "acme-u\nglobex-u\n.\n")
        let workers = s.h.adminReply("workers", from: auditor)
        for id in [s.acmeWorker, s.globexWorker, s.acmeWeb, s.globexClient, anonymous, auditor] {
            #expect(workers.contains("\(id) 127.0.0.1 "), "connection \(id)")
        }
        #expect(workers.contains("\(s.globexWorker) 127.0.0.1 globex-worker : globex.render\n"))
        #expect(workers.contains("\(anonymous) 127.0.0.1 - :\n"))
        // Reading is all it may do.
        #expect(s.h.adminReply("cancel job \(String(buffer: s.acmeHandle))", from: auditor) == AccessRes.adminDenied)
        #expect(s.h.adminReply("shutdown", from: auditor) == AccessRes.adminDenied)
    }

    @Test func tenantReaderMayNotWrite() throws {
        let s = try Scenario()
        let reader = s.h.authenticated("acme-reader")
        for line in [
            "cancel job \(String(buffer: s.acmeHandle))", "create function acme.new", "drop function acme.resize",
            "maxqueue acme.resize 1", "shutdown graceful",
        ] {
            let outbox = s.h.admin(line, from: reader)
            #expect(outbox.effects == [.text(AccessRes.adminDenied, to: reader)], "\(line)")
            #expect(outbox.audit("permission_denied")?["reason"] == "needs admin write")
        }
        #expect(s.h.machine.jobs.count == 2)
    }

    @Test func tenantWriterCancelsOnlyItsOwnJobs() throws {
        let s = try Scenario()
        let admin = s.h.authenticated("acme-admin")
        #expect(s.h.adminReply("cancel job \(String(buffer: s.globexHandle))", from: admin) == "ERR UNKNOWN_JOB\r\n")
        #expect(s.h.machine.job(withHandle: s.globexHandle) != nil)
        let cancelled = s.h.admin("cancel job \(String(buffer: s.acmeHandle))", from: admin)
        #expect(cancelled.text(to: admin) == "OK\r\n")
        #expect(s.h.machine.job(withHandle: s.acmeHandle) == nil)
        // The other tenant's writer can't cancel acme's jobs either.
        let handle = try s.h.submit(Pkt.submitBG("acme.resize", unique: "again"), from: s.acmeWeb)
        let globexAdmin = s.h.authenticated("globex-admin")
        #expect(s.h.adminReply("cancel job \(String(buffer: handle))", from: globexAdmin) == "ERR UNKNOWN_JOB\r\n")
        #expect(s.h.machine.job(withHandle: handle) != nil)
    }

    @Test func tenantWriterCreatesAndLimitsOnlyInsideItsNamespace() throws {
        let s = try Scenario()
        let admin = s.h.authenticated("acme-admin")
        for line in ["create function globex.new", "create function misc", "maxqueue globex.render 1", "maxqueue other 3"] {
            let outbox = s.h.admin(line, from: admin)
            #expect(outbox.effects == [.text(AccessRes.adminDenied, to: admin)], "\(line)")
            #expect(outbox.audit("permission_denied")?["reason"] == "function outside the tenant's namespace")
        }
        #expect(s.h.machine.functions[buf("globex.new")] == nil)
        #expect(s.h.machine.functions[buf("misc")] == nil)
        #expect(s.h.machine.functions[buf("other")] == nil)
        #expect(s.h.machine.functions[buf("globex.render")]?.maxQueue == .unlimited)

        #expect(s.h.adminReply("create function acme.new", from: admin) == "OK\r\n")
        #expect(s.h.adminReply("maxqueue acme.resize 1", from: admin) == "OK\r\n")
        #expect(s.h.machine.functions[buf("acme.resize")]?.maxQueue == MaxQueueLimits(all: 1))
        #expect(s.h.adminReply("status", from: admin) == "acme.resize\t1\t0\t1\nacme.new\t0\t0\t0\n.\n")
    }

    @Test func tenantWriterCannotDropAnotherTenantsFunction() throws {
        let s = try Scenario()
        let ops = s.h.authenticated("ops")
        #expect(s.h.adminReply("create function globex.idle", from: ops) == "OK\r\n")
        let admin = s.h.authenticated("acme-admin")
        #expect(s.h.adminReply("drop function globex.idle", from: admin) == "ERR function not found\r\n")
        #expect(s.h.adminReply("drop function GLOBEX.IDLE", from: admin) == "ERR function not found\r\n")
        #expect(s.h.machine.functions[buf("globex.idle")] != nil)
        #expect(s.h.adminReply("create function acme.idle", from: admin) == "OK\r\n")
        #expect(s.h.adminReply("drop function acme.idle", from: admin) == "OK\r\n")
        #expect(s.h.adminReply("drop function globex.idle", from: ops) == "OK\r\n")
    }

    @Test func onlyAGlobalWriterMayShutDown() throws {
        let s = try Scenario()
        let admin = s.h.authenticated("acme-admin")
        let denied = s.h.admin("shutdown", from: admin)
        #expect(denied.effects == [.text(AccessRes.adminDenied, to: admin)])
        #expect(s.h.admin("shutdown graceful", from: s.h.authenticated("globex-admin")).effects.contains(.shutdown(graceful: true)) == false)
        let ops = s.h.authenticated("ops")
        #expect(s.h.admin("shutdown graceful", from: ops).effects == [.text("OK\r\n", to: ops), .shutdown(graceful: true)])
        #expect(s.h.admin("shutdown", from: ops).effects == [.text("OK\r\n", to: ops), .shutdown(graceful: false)])
    }

    @Test func globalWriterSeesAndChangesEverything() throws {
        let s = try Scenario()
        let ops = s.h.authenticated("ops")
        #expect(s.h.adminReply("maxqueue globex.render 5", from: ops) == "OK\r\n")
        #expect(s.h.adminReply("create function misc", from: ops) == "OK\r\n")
        #expect(s.h.adminReply("cancel job \(String(buffer: s.globexHandle))", from: ops) == "OK\r\n")
        #expect(s.h.adminReply("cancel job \(String(buffer: s.acmeHandle))", from: ops) == "OK\r\n")
        #expect(s.h.machine.jobs.isEmpty)
    }
}
