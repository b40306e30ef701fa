#!/usr/bin/env python3
"""Writes the seed corpus of the fuzz targets into Fuzz/corpus/ (committed; rerun after editing).

PacketDecoderFuzzer seeds are one "split" byte (0: the stream arrives in one read; any other
value: in reads of 1 to value % 32 + 1 bytes) followed by the bytes a connection sends: real
packets as gearmand's clients and workers send them, and admin lines. ACLParserFuzzer seeds are
ACL files. No secret appears anywhere: every secret hash is a made-up one.
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
REQ, RES = b"\0REQ", b"\0RES"


def packet(kind, *args, magic=REQ):
    payload = b"\0".join(a if isinstance(a, bytes) else a.encode() for a in args)
    return magic + struct.pack(">II", kind, len(payload)) + payload


PACKETS = {
    "submit_job": packet(7, "reverse", "uniq-1", "hello world"),
    "submit_job_bg": packet(18, "reverse", "", "payload"),
    "submit_job_high": packet(21, "resize", "u", b"\x00\x01\x02binary"),
    "submit_job_low_bg": packet(34, "resize", "u2", ""),
    "submit_job_epoch": packet(36, "reverse", "u3", "1700000000", "later"),
    "submit_job_sched": packet(35, "reverse", "u4", "1", "2", "3", "4", "5", "data"),
    "submit_reduce_job": packet(37, "map", "u5", "reduce", "none", "a b c"),
    "can_do": packet(1, "reverse"),
    "cant_do": packet(2, "reverse"),
    "can_do_timeout": packet(23, "reverse", "30"),
    "reset_abilities": packet(3),
    "pre_sleep": packet(4),
    "grab_job": packet(9),
    "grab_job_unique": packet(30),
    "grab_job_all": packet(39),
    "work_status": packet(12, "H:host:1", "1", "10"),
    "work_data": packet(28, "H:host:1", "partial"),
    "work_warning": packet(29, "H:host:1", "careful"),
    "work_complete": packet(13, "H:host:1", "dlrow olleh"),
    "work_fail": packet(14, "H:host:1"),
    "work_exception": packet(25, "H:host:1", "boom"),
    "get_status": packet(15, "H:host:1"),
    "get_status_unique": packet(41, "uniq-1"),
    "echo_req": packet(16, "ping"),
    "option_req": packet(26, "exceptions"),
    "option_req_auth": packet(26, "auth:acme-web:not-a-real-secret"),
    "set_client_id": packet(22, "client-1"),
    "all_yours": packet(24),
    # Responses: the decoder accepts both magics (the client library uses the same decoder).
    "job_created": packet(8, "H:host:1", magic=RES),
    "job_assign_unique": packet(31, "H:host:1", "reverse", "uniq-1", "hello", magic=RES),
    "job_assign_all": packet(40, "H:host:1", "map", "u5", "reduce", "a b c", magic=RES),
    "status_res": packet(20, "H:host:1", "1", "0", "3", "10", magic=RES),
    "status_res_unique": packet(42, "uniq-1", "1", "1", "3", "10", "2", magic=RES),
    "error": packet(19, "PERMISSION_DENIED", "not allowed", magic=RES),
    "noop": packet(6, magic=RES),
    "no_job": packet(10, magic=RES),
}

ADMIN = {
    "admin_status": b"status\n",
    "admin_workers": b"workers\n",
    "admin_maxqueue": b"maxqueue f 10\n",
    "admin_maxqueue_three": b"maxqueue f 1 -2 99999999999999999999999\r\n",
    "admin_show_jobs": b"show jobs\r\n",
    "admin_show_unique_jobs": b"SHOW UNIQUE JOBS\n",
    "admin_cancel": b"cancel job H:host:1\n",
    "admin_create_drop": b"create function f\ndrop function f\n",
    "admin_auth": b"auth acme-web not-a-real-secret\n",
    "admin_misc": b"version\ngetpid\nverbose\nprioritystatus\nshutdown graceful\n \n\n",
}

ACL = """\
tenants:
  acme:
    functions: ["acme.*"]
    max_queued_jobs: 100000
    max_connections: 200
    max_payload_bytes: 16777216
  globex:
    functions: ["globex.*", "gx-?"]
principals:
  acme-resizer-1:
    tenant: acme
    certificate: acme-resizer-1
    secret: "sha256:0000000000000000000000000000000000000000000000000000000000000001"
    require: [certificate, secret]
    can_do: ["acme.resize", "acme.thumb.*"]
  acme-web:
    tenant: acme
    secret: "sha256:0000000000000000000000000000000000000000000000000000000000000002"
    submit: ["acme.*"]
    admin: read
  globex-worker:
    tenant: globex
    certificate: globex-worker
    can_do: ["globex.*"]
  ops:
    certificate: ops-admin
    admin: write
anonymous:
  submit: []
"""

ACL_FLOW = """\
tenants: {t: {functions: [t.*], max_queued_jobs: 1}}
principals:
  p: {tenant: t, secret: "sha256:00000000000000000000000000000000000000000000000000000000000000ff", can_do: [t.a]}
  q: &q {certificate: q-cert, admin: read}
anonymous: {can_do: ["x?"], submit: [], admin: none}
"""


def write(directory, name, data):
    path = os.path.join(HERE, "corpus", directory, name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def main():
    for name, data in {**PACKETS, **ADMIN}.items():
        write("PacketDecoderFuzzer", name, b"\0" + data)
    # Everything on one connection, in small reads, admin lines between packets.
    stream = b"".join(PACKETS.values()) + b"".join(ADMIN.values())
    write("PacketDecoderFuzzer", "all_split", b"\x07" + stream)
    write("PacketDecoderFuzzer", "mixed_split", b"\x1f" + PACKETS["can_do"] + b"status\n" + PACKETS["submit_job"])
    write("ACLParserFuzzer", "example.yaml", ACL.encode())
    write("ACLParserFuzzer", "flow.yaml", ACL_FLOW.encode())
    write("ACLParserFuzzer", "empty.yaml", b"")


if __name__ == "__main__":
    main()
