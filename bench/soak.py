#!/usr/bin/env python3
"""Soak run of `gearlock serve` (driven by bench/soak.sh; see bench/README.md and SECURITY.md).

Mixed load with faults against a real server on loopback, for --seconds:
  * foreground clients: SUBMIT_JOB to `soak.fg`, each waiting for its one result (echoed payload);
  * a background submitter: SUBMIT_JOB_BG to `soak.bg` (durable SQLite queue), paced;
  * `gearlock work` workers for both functions; the foreground ones are SIGKILLed at random and
    replaced (the server requeues their jobs, up to --job-retries 3);
  * connection churn: connections opened and dropped (FIN, RST, after half a header);
  * garbage connections (4 at a time): seeded random bytes, each must end closed by the server.
A warm-up of the same load comes first; then the load stops, the queue drains, and the server's
open file descriptors and RSS are the baseline. After the soak the load stops and the queue drains
again, and the checks are:
  * every foreground job ended exactly once for its client: WORK_COMPLETE with its own payload, or
    WORK_FAIL after the retry cap (counted); no other reply;
  * every acknowledged background job ran exactly once (its workers are never killed); none refused;
  * every garbage connection was closed by the server;
  * the server still answers `version`; its descriptors equal the baseline; its RSS is at most
    baseline + --rss-tolerance-mib.
Prints a summary; exits 1 when a check fails.
"""
import argparse
import os
import random
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

REQ = b"\0REQ"
RES = b"\0RES"
SUBMIT_JOB, JOB_CREATED, WORK_STATUS, WORK_COMPLETE, WORK_FAIL = 7, 8, 12, 13, 14
SUBMIT_JOB_BG, ERROR, WORK_DATA, WORK_WARNING, WORK_EXCEPTION = 18, 19, 28, 29, 25


def packet(kind, *fields):
    body = b"\0".join(f if isinstance(f, bytes) else f.encode() for f in fields)
    return REQ + struct.pack(">II", kind, len(body)) + body


def read_exact(sock, count):
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            raise ConnectionError("closed by the server")
        data += chunk
    return data


def read_packet(sock):
    header = read_exact(sock, 12)
    magic, kind, size = header[:4], *struct.unpack(">II", header[4:])
    if magic != RES:
        raise ValueError(f"bad magic from the server: {header!r}")
    return kind, read_exact(sock, size)


def admin(port, command, timeout=10):
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(command.encode() + b"\n")
        data = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
            if data.startswith((b"OK", b"ERR")) and data.endswith(b"\n"):
                break
            if data.endswith(b"\n.\n") or data == b".\n":
                break
        return data.decode(errors="replace")


def descriptors(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def rss_bytes(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


class Soak:
    def __init__(self, args):
        self.args = args
        self.gearlock = args.gearlock
        self.work = tempfile.mkdtemp(prefix="gearlock-soak.")
        self.rng = random.Random(args.seed)
        self.lock = threading.Lock()
        self.running = threading.Event()
        self.stop_all = threading.Event()
        self.failures = []
        self.fg_sent = 0
        self.fg_completed = 0
        self.fg_failed = 0
        self.bg_acknowledged = []
        self.bg_refused = 0
        self.churned = 0
        self.garbage_closed = 0
        self.garbage_sent = 0
        self.kills = 0
        self.fg_workers = []
        self.bg_workers = []
        self.threads = []
        self.busy = 0  # load threads in the middle of an iteration

    def begin(self):
        """Waits for the load to run; False when it is paused (or stopping). Counts the thread as busy."""
        if self.stop_all.is_set() or not self.running.wait(0.1):
            return False
        with self.lock:
            if not self.running.is_set():
                return False
            self.busy += 1
        return True

    def end(self):
        with self.lock:
            self.busy -= 1

    def fail(self, message):
        with self.lock:
            self.failures.append(message)
        print("FAIL:", message, file=sys.stderr)

    # --- processes ------------------------------------------------------------------------------

    def start_server(self):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.server_log = open(os.path.join(self.work, "server.log"), "wb")
        self.server = subprocess.Popen(
            [self.gearlock, "serve", "--listen", f"127.0.0.1:{self.port}", "--log-level", "warning",
             "--queue", "sqlite:" + os.path.join(self.work, "queue.sqlite"), "--job-retries", "3",
             "--packet-timeout", "2"],
            stdout=self.server_log, stderr=subprocess.STDOUT)
        for _ in range(200):
            try:
                if admin(self.port, "version", timeout=1).startswith("OK"):
                    return
            except OSError:
                pass
            if self.server.poll() is not None:
                break
            time.sleep(0.1)
        raise SystemExit("gearlock serve did not start; see " + self.server_log.name)

    def start_worker(self, function, command):
        return subprocess.Popen(
            [self.gearlock, "work", "-s", f"127.0.0.1:{self.port}", "-f", function, "--log-level", "critical", "--"]
            + command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def start_workers(self):
        for _ in range(3):
            self.fg_workers.append(self.start_worker("soak.fg", ["cat"]))
        for index in range(2):
            log = os.path.join(self.work, f"bg-{index}.log")
            self.bg_workers.append(self.start_worker("soak.bg", ["sh", "-c", f"cat >>{log}; echo >>{log}"]))

    # --- load -----------------------------------------------------------------------------------

    def foreground_client(self, number):
        sock = None
        while not self.stop_all.is_set():
            if not self.begin():
                if sock:  # paused: no connection left open at the measurements
                    sock.close()
                    sock = None
                continue
            try:
                if sock is None:
                    sock = socket.create_connection(("127.0.0.1", self.port), timeout=60)
                with self.lock:
                    self.fg_sent += 1
                    payload = f"fg-{number}-{self.fg_sent}"
                sock.sendall(packet(SUBMIT_JOB, "soak.fg", "", payload))
                kind, body = read_packet(sock)
                if kind != JOB_CREATED:
                    self.fail(f"foreground submission answered {kind} {body[:80]!r}")
                    continue
                handle = body
                while True:
                    kind, body = read_packet(sock)
                    got_handle = body.split(b"\0", 1)[0]
                    if got_handle != handle:
                        self.fail(f"a packet for another job ({got_handle!r}) while waiting for {handle!r}: a second result?")
                        continue
                    if kind == WORK_COMPLETE:
                        if body.split(b"\0", 1)[1] != payload.encode():
                            self.fail(f"{handle!r} completed with {body[:80]!r}, expected {payload}")
                        with self.lock:
                            self.fg_completed += 1
                        break
                    if kind == WORK_FAIL:
                        with self.lock:
                            self.fg_failed += 1
                        break
                    if kind in (WORK_STATUS, WORK_DATA, WORK_WARNING):
                        continue
                    self.fail(f"{handle!r}: unexpected packet {kind} {body[:80]!r}")
                    break
            except (OSError, ValueError, ConnectionError) as error:
                self.fail(f"foreground client {number}: {error}")
                sock = None
                time.sleep(0.5)
            finally:
                self.end()
        if sock:
            sock.close()

    def background_submitter(self):
        sock = None
        count = 0
        while not self.stop_all.is_set():
            if not self.begin():
                if sock:
                    sock.close()
                    sock = None
                continue
            try:
                if sock is None:
                    sock = socket.create_connection(("127.0.0.1", self.port), timeout=60)
                count += 1
                payload = f"bg-{count}"
                sock.sendall(packet(SUBMIT_JOB_BG, "soak.bg", "", payload))
                kind, body = read_packet(sock)
                if kind == JOB_CREATED:
                    with self.lock:
                        self.bg_acknowledged.append(payload)
                else:
                    with self.lock:
                        self.bg_refused += 1
                    self.fail(f"background submission refused: {kind} {body[:80]!r}")
                time.sleep(0.01)
            except (OSError, ValueError, ConnectionError) as error:
                self.fail(f"background submitter: {error}")
                sock = None
                time.sleep(0.5)
            finally:
                self.end()
        if sock:
            sock.close()

    def killer(self):
        rng = random.Random(self.args.seed + 1)
        while not self.stop_all.is_set():
            time.sleep(rng.uniform(0.5, 2.0))
            if not self.begin():
                continue
            victim = rng.randrange(len(self.fg_workers))
            self.fg_workers[victim].send_signal(signal.SIGKILL)
            self.fg_workers[victim].wait()
            self.fg_workers[victim] = self.start_worker("soak.fg", ["cat"])
            with self.lock:
                self.kills += 1
            self.end()

    def churn(self):
        rng = random.Random(self.args.seed + 2)
        while not self.stop_all.is_set():
            if not self.begin():
                continue
            try:
                sock = socket.create_connection(("127.0.0.1", self.port), timeout=10)
                style = rng.randrange(3)
                if style == 1:
                    sock.sendall(REQ + struct.pack(">I", SUBMIT_JOB))  # half a header
                if style >= 1:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                sock.close()
                with self.lock:
                    self.churned += 1
            except OSError as error:
                self.fail(f"churn: {error}")
            finally:
                self.end()
            time.sleep(0.005)

    def garbage(self, number):
        rng = random.Random(self.args.seed + 3 + number)
        while not self.stop_all.is_set():
            if not self.begin():
                continue
            try:
                sock = socket.create_connection(("127.0.0.1", self.port), timeout=30)
                junk = bytes(rng.getrandbits(8) for _ in range(rng.randrange(1, 2048)))
                if rng.random() < 0.5:
                    junk = REQ + struct.pack(">II", rng.getrandbits(32), rng.getrandbits(32)) + junk
                try:
                    sock.sendall(junk + b"\0XYZ" + bytes(8))
                except OSError:
                    pass  # refused half-way: closed, as expected
                with self.lock:
                    self.garbage_sent += 1
                try:
                    while sock.recv(65536):
                        pass
                    closed = True
                except ConnectionResetError:
                    closed = True
                except socket.timeout:
                    closed = False
                sock.close()
                if closed:
                    with self.lock:
                        self.garbage_closed += 1
                else:
                    self.fail("a garbage connection was still open after 30 s")
            except OSError as error:
                self.fail(f"garbage: {error}")
            finally:
                self.end()
            time.sleep(0.05)

    # --- phases ---------------------------------------------------------------------------------

    def drain(self, timeout=120):
        """Stops the load, then waits until both functions have no job left."""
        self.running.clear()
        deadline = time.monotonic() + timeout
        while self.busy > 0 and time.monotonic() < deadline:
            time.sleep(0.1)  # each load thread finishes its iteration (a job, a garbage connection)
        status = ""
        while time.monotonic() < deadline:
            status = admin(self.port, "status")
            totals = {line.split("\t")[0]: int(line.split("\t")[1]) for line in status.splitlines() if "\t" in line}
            if totals.get("soak.fg", 0) == 0 and totals.get("soak.bg", 0) == 0:
                return
            time.sleep(0.2)
        self.fail(f"the queue did not drain within {timeout} s: {status!r}")

    def settle(self, target=None, timeout=20):
        """The server's descriptor count once stable (or once it equals target)."""
        deadline = time.monotonic() + timeout
        previous, stable = descriptors(self.server.pid), 0
        while time.monotonic() < deadline:
            time.sleep(0.2)
            current = descriptors(self.server.pid)
            if target is not None and current == target:
                return current
            stable = stable + 1 if current == previous else 0
            previous = current
            if target is None and stable >= 5:
                break
        return previous

    def run(self):
        self.start_server()
        self.start_workers()
        for number in range(3):
            self.threads.append(threading.Thread(target=self.foreground_client, args=(number,), daemon=True))
        for number in range(4):  # each waits for its connection's close: several keep the pressure up
            self.threads.append(threading.Thread(target=self.garbage, args=(number,), daemon=True))
        for target in (self.background_submitter, self.killer, self.churn):
            self.threads.append(threading.Thread(target=target, daemon=True))
        for thread in self.threads:
            thread.start()

        warmup = max(5.0, min(30.0, self.args.seconds / 12))
        print(f"warm-up {warmup:.0f} s", flush=True)
        self.running.set()
        time.sleep(warmup)
        self.drain()
        base_fds, base_rss = self.settle(), rss_bytes(self.server.pid)
        print(f"baseline: {base_fds} descriptors, RSS {base_rss / 1048576:.1f} MiB; soak {self.args.seconds} s", flush=True)

        started = time.monotonic()
        self.running.set()
        next_report = started + 60
        while time.monotonic() - started < self.args.seconds:
            time.sleep(1)
            if self.server.poll() is not None:
                self.fail(f"the server exited with {self.server.returncode}")
                break
            if time.monotonic() >= next_report:
                next_report += 60
                print(f"  {time.monotonic() - started:.0f} s: {self.fg_completed} fg completed, "
                      f"{len(self.bg_acknowledged)} bg acknowledged, {self.kills} kills, "
                      f"RSS {rss_bytes(self.server.pid) / 1048576:.1f} MiB, {descriptors(self.server.pid)} fds", flush=True)
        self.drain()
        self.stop_all.set()
        for thread in self.threads:
            thread.join(timeout=40)
        # The killer may have replaced a worker at the last moment: let it connect.
        time.sleep(1)
        end_fds = self.settle(target=base_fds)
        end_rss = rss_bytes(self.server.pid)
        self.check(base_fds, base_rss, end_fds, end_rss)

    def check(self, base_fds, base_rss, end_fds, end_rss):
        if not admin(self.port, "version").startswith("OK"):
            self.fail("the server does not answer version")
        done = []
        for index in range(len(self.bg_workers)):
            path = os.path.join(self.work, f"bg-{index}.log")
            if os.path.exists(path):
                with open(path) as log:
                    done += [line for line in log.read().split("\n") if line]
        acknowledged = set(self.bg_acknowledged)
        ran = {}
        for payload in done:
            ran[payload] = ran.get(payload, 0) + 1
        lost = acknowledged - set(ran)
        duplicated = [payload for payload, count in ran.items() if count > 1]
        if lost:
            self.fail(f"{len(lost)} acknowledged background jobs never ran, e.g. {sorted(lost)[:5]}")
        if duplicated:
            self.fail(f"{len(duplicated)} background jobs ran more than once, e.g. {duplicated[:5]}")
        if self.garbage_closed != self.garbage_sent:
            self.fail(f"{self.garbage_sent - self.garbage_closed} garbage connections not closed by the server")
        if end_fds != base_fds:
            self.fail(f"descriptors: {base_fds} at baseline, {end_fds} after the soak")
        tolerance = self.args.rss_tolerance_mib * 1048576
        if end_rss > base_rss + tolerance:
            self.fail(f"RSS {end_rss / 1048576:.1f} MiB after the soak, baseline {base_rss / 1048576:.1f} MiB "
                      f"+ {self.args.rss_tolerance_mib} MiB allowed")
        if self.fg_completed == 0 or not acknowledged or self.kills == 0:
            self.fail("the load did not run (no completed jobs, acknowledged jobs or kills)")
        print(f"foreground: {self.fg_sent} sent, {self.fg_completed} completed, {self.fg_failed} failed after the retry cap")
        print(f"background: {len(acknowledged)} acknowledged, {self.bg_refused} refused, {len(done)} ran, "
              f"{len(lost)} lost, {len(duplicated)} duplicated")
        print(f"faults: {self.kills} workers killed, {self.churned} connections churned, "
              f"{self.garbage_closed}/{self.garbage_sent} garbage connections closed by the server")
        print(f"server: descriptors {base_fds} -> {end_fds}; RSS {base_rss / 1048576:.1f} -> {end_rss / 1048576:.1f} MiB "
              f"(tolerance {self.args.rss_tolerance_mib} MiB)")

    def cleanup(self):
        for process in self.fg_workers + self.bg_workers:
            if process.poll() is None:
                process.kill()
                process.wait()
        if getattr(self, "server", None) and self.server.poll() is None:
            self.server.terminate()
            try:
                self.server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.server.kill()
        if self.failures and getattr(self, "server_log", None):
            self.server_log.flush()
            with open(self.server_log.name, errors="replace") as log:
                tail = log.read()[-4000:]
            if tail:
                print("server log (end):\n" + tail, file=sys.stderr)
        subprocess.run(["rm", "-rf", self.work])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gearlock", required=True, help="the gearlock binary")
    parser.add_argument("--seconds", type=float, default=600, help="length of the soak after the warm-up")
    parser.add_argument("--seed", type=int, default=8, help="seed of the random choices")
    parser.add_argument("--rss-tolerance-mib", type=float, default=32, help="allowed RSS growth over the baseline")
    args = parser.parse_args()
    soak = Soak(args)
    try:
        soak.run()
    finally:
        soak.cleanup()
    if soak.failures:
        print(f"soak: FAILED ({len(soak.failures)} problems)", file=sys.stderr)
        return 1
    print("soak: passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
