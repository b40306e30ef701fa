import Foundation
import GearmanACL
import GearlockTestSupport
import GearmanProtocol
import GearmanServer
import GearmanTLS
import Testing

/// Existing Gearman peers against an ACL: Python `gear` over mutual TLS (identity from the client
/// certificate), and libgearman — the library the `gearman` tool is built on — authenticating
/// with the SET_CLIENT_ID token.
@Suite("ACL with real peers", .serialized, .timeLimit(.minutes(2)))
struct ACLPeerTests {
    @Test("Python gear over mutual TLS: each tenant runs its own jobs; denials neither leak nor loop")
    func pythonGearTwoTenants() async throws {
        let pki = try TestPKI.shared()
        let script = pki.file("gear_acl_tenants.py")
        try Data(gearTenantsScript.utf8).write(to: URL(fileURLWithPath: script))
        try await withACLServer(tls: pki.serverTLS(clientAuthentication: .require, crl: true)) { server in
            let tlsPort = try #require(server.tlsPort)
            let result = try await runProcess(
                "/usr/bin/env",
                [
                    "python3", script, "127.0.0.1", String(tlsPort), pki.certificate("ca"), pki.certificate("alice"),
                    pki.key("alice"), pki.certificate("bob"), pki.key("bob"),
                ],
                timeout: .seconds(40))
            if result.stdoutString.contains("IMPORT-ERROR") || result.status == 127 {
                Issue.record("Python gear is not importable (pip install gear==0.16.0): \(result)")
                return
            }
            #expect(result.exitCode == 0, "\(result)")
            let output = result.stdoutString
            #expect(output.contains("RESULT: tnanet olleh"), "\(result)")
            #expect(output.contains("GLOBEX CREATED"), "\(result)")
            #expect(output.contains("DENIED acme.reverse for globex"), "\(result)")
            #expect(!output.contains("STOLEN"), "\(result)")

            // The alice worker, the alice client and the bob client each connected exactly once:
            // the denied CAN_DO got no reply, so gear never reconnected.
            let authenticated = server.logs.audits("authenticated")
            let byAlice = authenticated.filter { $0.contains("auth.principal=acme-worker") }
            let byBob = authenticated.filter { $0.contains("auth.principal=globex-worker") }
            #expect(byAlice.count == 2, "\(authenticated)")
            #expect(byBob.count == 1, "\(authenticated)")
            #expect(authenticated.allSatisfy { $0.contains("gearman.packet=TLS handshake") }, "\(authenticated)")
            let denied = server.logs.audits("permission_denied")
            #expect(denied.contains { $0.contains("gearman.function=globex.steal") && $0.contains("CAN_DO") }, "\(denied)")
            #expect(denied.contains { $0.contains("gearman.function=acme.reverse") && $0.contains("SUBMIT_JOB") }, "\(denied)")
            // globex's job is still queued, never handed to acme's worker.
            let status = try await server.admin("status")
            #expect(status.contains("globex.steal\t1\t0\t0"), "\(status)")
        }
    }

    @Test("libgearman (as used by the gearman tool) authenticates with the SET_CLIENT_ID token")
    func libgearmanClientID() async throws {
        let pki = try TestPKI.shared()
        let script = pki.file("libgearman_client_id.py")
        try Data(libgearmanScript.utf8).write(to: URL(fileURLWithPath: script))
        try await withACLServer { server in
            let good = try await runProcess(
                "/usr/bin/env",
                ["python3", script, String(server.port), "auth:acme-web:\(ACLFixture.secret("acme-web"))", "acme.import"],
                timeout: .seconds(30))
            #expect(good.stdoutString.contains("RC 0 "), "\(good)")
            try await server.adminEventually("status") { $0.contains("acme.import\t1") }
            let status = try await server.admin("status")
            #expect(status.contains("acme.import\t1\t0\t0"), "\(status)")

            let denied = try await runProcess(
                "/usr/bin/env",
                ["python3", script, String(server.port), "auth:acme-web:\(ACLFixture.secret("acme-web"))", "globex.import"],
                timeout: .seconds(30))
            #expect(!denied.stdoutString.contains("RC 0 "), "\(denied)")

            let wrong = try await runProcess(
                "/usr/bin/env", ["python3", script, String(server.port), "auth:acme-web:wrong", "acme.import"],
                timeout: .seconds(30))
            #expect(!wrong.stdoutString.contains("RC 0 "), "\(wrong)")
            let after = try await server.admin("status")
            #expect(after.contains("acme.import\t1\t0\t0") && !after.contains("globex.import"), "\(after)")
            #expect(server.logs.audits("authentication_failed").count == 1)
        }
    }

    @Test("The gearman tool (which cannot set a client id) works within the anonymous rights, and is refused beyond them")
    func gearmanToolAnonymous() async throws {
        let yaml = ACLFixture.yaml() + "\nanonymous:\n  can_do: [\"public.*\"]\n  submit: [\"public.*\"]\n"
        try await withACLServer(policy: try AccessPolicy(yaml: yaml)) { server in
            let arguments = ["-h", "127.0.0.1", "-p", String(server.port)]
            let worker = try ChildProcess(ReferenceTools.gearman, arguments + ["-w", "-f", "public.rev", "-c", "1", "--", "rev"])
            let intruder = try ChildProcess(ReferenceTools.gearman, arguments + ["-w", "-f", "acme.resize", "--", "cat"])
            defer { intruder.killTree() }
            try await server.adminEventually("workers") { $0.contains("public.rev") }
            let allowed = try await runProcess(ReferenceTools.gearman, arguments + ["-f", "public.rev", "hello"])
            #expect(allowed.exitCode == 0 && allowed.stdoutString == "olleh", "\(allowed)")
            #expect(await worker.wait(timeout: .seconds(30)).exitCode == 0)

            let denied = try await runProcess(
                ReferenceTools.gearman, arguments + ["-f", "acme.resize", "data"], timeout: .seconds(20))
            // gearman 1.1.20 prints the server's error but still exits 0.
            #expect(denied.stderrString.contains("PERMISSION_DENIED") || denied.stdoutString.contains("PERMISSION_DENIED"), "\(denied)")
            // The intruding worker is connected but registered for nothing.
            let status = try await server.admin("status")
            #expect(!status.contains("acme.resize"), "\(status)")
            #expect(intruder.isRunning, "a silently denied worker stays connected (no reconnect loop)")
        }
    }

    @Test("Python gear with a secret: a worker authenticates through its client id")
    func pythonGearSecret() async throws {
        let pki = try TestPKI.shared()
        let script = pki.file("gear_acl_secret.py")
        try Data(gearSecretScript.utf8).write(to: URL(fileURLWithPath: script))
        try await withACLServer { server in
            let client = try await server.connect(as: "acme-web")
            let handle = try await client.submit("acme.upper", payload: "quiet")
            let worker = try ChildProcess(
                "/usr/bin/env",
                ["python3", script, String(server.port), "auth:acme-worker:\(ACLFixture.secret("acme-worker"))"])
            let done = try await client.receivePacket(timeout: .seconds(20))
            let result = await worker.wait(timeout: .seconds(30))
            #expect(done == .response(.workComplete, handle, "QUIET"), "\(result)")
            let workers = try await server.admin("workers")
            #expect(!workers.contains(ACLFixture.secret("acme-worker")))
            await client.close()
        }
    }
}

/// Arguments: host tls-port ca alice-cert alice-key bob-cert bob-key. alice is acme's worker
/// (may register and submit acme.*), bob is globex's (globex.*).
private let gearTenantsScript = #"""
    import os, signal, sys, threading, time

    def finish(code, message):
        print(message, flush=True)
        os._exit(code)

    signal.signal(signal.SIGALRM, lambda *_: finish(2, "FAIL: timed out"))
    signal.alarm(30)
    try:
        import gear
    except ImportError as error:
        finish(3, "IMPORT-ERROR: %s" % error)

    host, port, ca, alice_cert, alice_key, bob_cert, bob_key = sys.argv[1:8]
    port = int(port)

    worker = gear.Worker("acme-worker-1")
    worker.addServer(host, port, ssl_key=alice_key, ssl_cert=alice_cert, ssl_ca=ca)
    worker.waitForServer()
    worker.registerFunction("acme.reverse")
    worker.registerFunction("globex.steal")   # outside acme's namespace: silently not registered

    def work():
        while True:
            job = worker.getJob()
            if job.name == b"globex.steal":
                print("STOLEN", flush=True)
                job.sendWorkComplete(b"stolen")
            else:
                job.sendWorkComplete(job.arguments[::-1])

    threading.Thread(target=work, daemon=True).start()

    acme = gear.Client("acme-client")
    acme.addServer(host, port, ssl_key=alice_key, ssl_cert=alice_cert, ssl_ca=ca)
    acme.waitForServer()
    job = gear.Job(b"acme.reverse", b"hello tenant")
    acme.submitJob(job)
    while not job.complete:
        time.sleep(0.01)
    print("RESULT: %s" % b"".join(job.data).decode(), flush=True)

    globex = gear.Client("globex-client")
    globex.addServer(host, port, ssl_key=bob_key, ssl_cert=bob_cert, ssl_ca=ca)
    globex.waitForServer()
    steal = gear.Job(b"globex.steal", b"globex data")
    globex.submitJob(steal, background=True)
    print("GLOBEX CREATED" if steal.handle else "FAIL: globex job not created", flush=True)
    try:
        globex.submitJob(gear.Job(b"acme.reverse", b"intrude"), timeout=5)
        print("FAIL: globex submitted to acme", flush=True)
    except gear.GearmanError:
        print("DENIED acme.reverse for globex", flush=True)

    # Stay connected a while: a worker that had been sent an ERROR would reconnect here.
    time.sleep(2.5)
    finish(0, "DONE")
    """#

/// Arguments: port client-id function. Submits one background job through libgearman with the
/// client id set, and prints libgearman's return code.
private let libgearmanScript = #"""
    import ctypes, sys
    lib = ctypes.CDLL("libgearman.so.8")
    lib.gearman_client_create.restype = ctypes.c_void_p
    lib.gearman_client_create.argtypes = [ctypes.c_void_p]
    lib.gearman_client_add_server.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
    lib.gearman_client_set_identifier.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t]
    lib.gearman_client_set_timeout.argtypes = [ctypes.c_void_p, ctypes.c_int]
    lib.gearman_client_do_background.argtypes = [
        ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p]
    lib.gearman_client_error.restype = ctypes.c_char_p
    lib.gearman_client_error.argtypes = [ctypes.c_void_p]
    port, identifier, function = int(sys.argv[1]), sys.argv[2].encode(), sys.argv[3].encode()
    client = lib.gearman_client_create(None)
    lib.gearman_client_set_timeout(client, 5000)
    assert lib.gearman_client_add_server(client, b"127.0.0.1", port) == 0
    assert lib.gearman_client_set_identifier(client, identifier, len(identifier)) == 0
    handle = ctypes.create_string_buffer(128)
    data = b"payload"
    rc = lib.gearman_client_do_background(client, function, None, data, len(data), handle)
    print("RC %d %s %s" % (rc, handle.value.decode(), lib.gearman_client_error(client).decode()), flush=True)
    """#

/// Arguments: port client-id. A gear Worker whose client id is the token runs one job (upper-cases).
private let gearSecretScript = #"""
    import os, signal, sys
    signal.signal(signal.SIGALRM, lambda *_: os._exit(2))
    signal.alarm(20)
    import gear
    worker = gear.Worker(sys.argv[2])
    worker.addServer("127.0.0.1", int(sys.argv[1]))
    worker.waitForServer()
    worker.registerFunction("acme.upper")
    job = worker.getJob()
    job.sendWorkComplete(job.arguments.upper())
    print("DONE", flush=True)
    """#
