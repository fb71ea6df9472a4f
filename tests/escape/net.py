#!/usr/bin/python3
"""Network escape attempts for tests/escape/net_*.sh, run INSIDE a sandbox.

    net.py LABEL:OP:ARGS... ...     (ARGS separated by ',')

Prints one "LABEL=RESULT" line per attempt: "ok ..." when the attempt got
through, else the errno name ("ECONNREFUSED"), "timeout" or "reset".
Ops: tcp,HOST,PORT | dns,SERVER,NAME (UDP query) | udp,HOST,PORT (send, wait 1 s for a reply) |
tls,HOST,PORT,SNI (TLS handshake, no verification: reaching the server is
the escape) | unix,PATH | abstract,NAME
"""
import errno
import socket
import ssl
import sys
import time


def name(e):
    if isinstance(e, socket.timeout):
        return "timeout"
    if isinstance(e, ssl.SSLError):
        return "tls-error"
    if isinstance(e, ConnectionResetError):
        return "reset"
    return errno.errorcode.get(getattr(e, "errno", None) or 0, type(e).__name__)


def family(host):
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def attempt(label, op, args):
    t = time.monotonic()
    try:
        if op == "tcp":
            s = socket.socket(family(args[0]), socket.SOCK_STREAM)
            s.settimeout(3)
            s.connect((args[0], int(args[1])))
            s.close()
            res = "ok"
        elif op == "udp":
            s = socket.socket(family(args[0]), socket.SOCK_DGRAM)
            s.settimeout(1)
            s.sendto(b"sbx-escape-udp", (args[0], int(args[1])))
            data = s.recv(100)
            res = f"ok reply={len(data)}"
        elif op == "tls":
            raw = socket.create_connection((args[0], int(args[1])), timeout=3)
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            s = ctx.wrap_socket(raw, server_hostname=args[2])
            s.close()
            res = "ok"
        elif op == "dns":
            # A query for NAME (type A) sent straight to SERVER over UDP.
            q = b"\x5b\x5b\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"
            for part in args[1].split("."):
                q += bytes([len(part)]) + part.encode()
            q += b"\x00\x00\x01\x00\x01"
            s = socket.socket(family(args[0]), socket.SOCK_DGRAM)
            s.settimeout(2)
            s.sendto(q, (args[0], 53))
            data = s.recv(1500)
            res = f"ok rcode={data[3] & 15} answers={int.from_bytes(data[6:8], 'big')}"
        elif op == "mark":
            # SO_MARK: the filtered network's ruleset accepts the packets of
            # sbx's own (marked) sockets as they are.
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_MARK, int(args[0], 0))
            res = "ok"
        elif op == "rawsock":
            # Forged TCP (a bare ACK, a SYN-less connection) or ICMP.
            proto = {"tcp": socket.IPPROTO_TCP, "icmp": socket.IPPROTO_ICMP}[args[0]]
            s = socket.socket(socket.AF_INET, socket.SOCK_RAW, proto)
            res = "ok"
        elif op == "ping":
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP)
            res = "ok"
        elif op == "unix":
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(args[0])
            res = "ok"
        elif op == "abstract":
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect("\0" + args[0])
            res = "ok"
        else:
            res = "BADOP"
    except (OSError, ssl.SSLError) as e:
        res = name(e)
    ms = int((time.monotonic() - t) * 1000)
    print(f"{label}={res}", flush=True)
    print(f"{label}_ms={ms}", flush=True)


for spec in sys.argv[1:]:
    label, op, rest = spec.split(":", 2)
    attempt(label, op, rest.split(","))
