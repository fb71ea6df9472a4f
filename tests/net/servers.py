#!/usr/bin/python3
"""Test servers of the fake internet (tests/net/fixture.sh starts this inside
the fixture's network namespace). Python standard library only.

On every address given with --host: HTTP on 80, TLS (HTTP inside) on 443,
TCP echo on 7, UDP echo on 7, TCP 22 banner (an "opaque" port). On --dns-addr:
an authoritative DNS server for the zone file (UDP and TCP 53), which refuses
every name outside `test.` (it never recurses: nothing leaves the fixture).

Every request is logged, one line each, to --log:
  dns <client> <name> <type>        http <local-ip> <host> <path>
  tls <local-ip> <sni>              echo <local-ip> <port>
so tests can assert what reached the "internet" and what never did.
"""
import argparse
import os
import socket
import socketserver
import ssl
import struct
import sys
import threading
from http.server import BaseHTTPRequestHandler

LOG_LOCK = threading.Lock()
LOG = None


def log(*parts):
    with LOG_LOCK:
        LOG.write(" ".join(str(p) for p in parts) + "\n")
        LOG.flush()


class Threaded(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True


class ThreadedUDP(socketserver.ThreadingMixIn, socketserver.UDPServer):
    daemon_threads = True
    allow_reuse_address = True


class SerialUDP(socketserver.UDPServer):
    """Answers each datagram in the serving thread: a DNS answer is computed at
    once, and a thread per query made the server's latency ~0.3 ms and noisy
    (bench/dns.sh measures what the filter adds to it)."""

    allow_reuse_address = True


# ------------------------------------------------------------------ HTTP/TLS

class Http(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # quiet: we log our own line
        pass

    def do_GET(self):
        local = self.connection.getsockname()[0]
        host = self.headers.get("Host", "")
        log("http", local, host, self.path)
        if self.path.startswith("/bytes/"):
            # /bytes/N: N bytes of a fixed pattern (throughput tests).
            n = int(self.path.split("/")[2])
            self.send_response(200)
            self.send_header("Content-Length", str(n))
            self.send_header("Content-Type", "application/octet-stream")
            self.end_headers()
            chunk = bytes(range(256)) * 256
            while n > 0:
                k = min(n, len(chunk))
                self.wfile.write(chunk[:k])
                n -= k
            return
        body = f"hello from {local} host={host} path={self.path}\n".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(body)


def make_tls_context(cert, key):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)

    def on_sni(sslobj, name, _ctx):
        log("tls", sslobj.getsockname()[0] if hasattr(sslobj, "getsockname") else "-", name)

    ctx.sni_callback = on_sni
    return ctx


class TlsServer(Threaded):
    def __init__(self, addr, handler, ctx):
        super().__init__(addr, handler)
        self.ctx = ctx

    def get_request(self):
        sock, addr = super().get_request()
        # The handshake happens in the handler's thread (first read), not
        # here in the accept loop: a client that connects and stalls or
        # resets mid-handshake must not stop the server for everyone else.
        return self.ctx.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), addr


# ------------------------------------------------------------------ echo

class TcpEcho(socketserver.BaseRequestHandler):
    def handle(self):
        log("echo", self.request.getsockname()[0], "tcp")
        while True:
            data = self.request.recv(65536)
            if not data:
                return
            self.request.sendall(data)


class UdpEcho(socketserver.BaseRequestHandler):
    def handle(self):
        data, sock = self.request
        log("echo", sock.getsockname()[0], "udp")
        sock.sendto(data, self.client_address)


class Banner(socketserver.BaseRequestHandler):
    def handle(self):
        log("banner", self.request.getsockname()[0])
        self.request.sendall(b"SSH-2.0-sbx-fixture\r\n")


# ------------------------------------------------------------------ DNS

TYPES = {"A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "TXT": 16, "AAAA": 28, "SVCB": 64, "HTTPS": 65}
TYPE_NAMES = {v: k for k, v in TYPES.items()}


def load_zone(paths):
    """Lines: NAME TTL TYPE VALUE (A, AAAA, CNAME, TXT). '#' comments."""
    zone = {}
    for path in paths:
        with open(path) as f:
            for line in f:
                line = line.split("#", 1)[0].strip()
                if not line:
                    continue
                name, ttl, rtype, value = line.split(None, 3)
                zone.setdefault(name.lower().rstrip("."), []).append((int(ttl), rtype.upper(), value))
    return zone


def encode_name(name):
    out = b""
    for label in name.rstrip(".").split("."):
        if label:
            out += bytes([len(label)]) + label.encode()
    return out + b"\0"


def parse_question(msg):
    if len(msg) < 12:
        return None
    qid, flags, qd = struct.unpack(">HHH", msg[:6])
    if qd != 1:
        return None
    i, labels = 12, []
    while i < len(msg) and msg[i] != 0:
        n = msg[i]
        if n & 0xC0:
            return None
        labels.append(msg[i + 1:i + 1 + n].decode("ascii", "replace"))
        i += 1 + n
    if i + 5 > len(msg):
        return None
    qtype, qclass = struct.unpack(">HH", msg[i + 1:i + 5])
    return qid, flags, ".".join(labels).lower(), qtype, msg[12:i + 5]


def rdata(rtype, value):
    if rtype == "A":
        return socket.inet_pton(socket.AF_INET, value)
    if rtype == "AAAA":
        return socket.inet_pton(socket.AF_INET6, value)
    if rtype == "CNAME":
        return encode_name(value)
    if rtype == "TXT":
        b = value.encode()[:255]
        return bytes([len(b)]) + b
    raise ValueError(rtype)


def answer(zone, msg, client):
    q = parse_question(msg)
    if q is None:
        return None
    qid, flags, name, qtype, question = q
    log("dns", client, name, TYPE_NAMES.get(qtype, qtype))
    rd = flags & 0x0100
    records, rcode = [], 0
    if not (name == "test" or name.endswith(".test")):
        rcode = 5  # REFUSED: authoritative for test. only, never recursive
    else:
        owner, seen = name, set()
        while owner in zone and owner not in seen:
            seen.add(owner)
            entries = zone[owner]
            cnames = [e for e in entries if e[1] == "CNAME"]
            if cnames and qtype != TYPES["CNAME"]:
                ttl, _, target = cnames[0]
                records.append((owner, ttl, "CNAME", target))
                owner = target.lower().rstrip(".")
                continue
            for ttl, rtype, value in entries:
                if TYPES.get(rtype) == qtype:
                    records.append((owner, ttl, rtype, value))
            break
        if not records and name not in zone:
            rcode = 3  # NXDOMAIN
    out = struct.pack(">HHHHHH", qid, 0x8400 | rd | rcode, 1, len(records), 0, 0) + question
    for owner, ttl, rtype, value in records:
        rd_bytes = rdata(rtype, value)
        out += encode_name(owner) + struct.pack(">HHIH", TYPES[rtype], 1, ttl, len(rd_bytes)) + rd_bytes
    return out


class DnsUdp(socketserver.BaseRequestHandler):
    def handle(self):
        data, sock = self.request
        out = answer(self.server.zone, data, self.client_address[0])
        if out is not None:
            if len(out) > 512:  # no EDNS here: header + question with TC set, client retries on TCP
                flags = struct.unpack(">H", out[2:4])[0] | 0x0200
                out = out[:2] + struct.pack(">HHHHH", flags, 1, 0, 0, 0) + parse_question(data)[4]
            sock.sendto(out, self.client_address)


class DnsTcp(socketserver.BaseRequestHandler):
    def handle(self):
        while True:
            head = self.request.recv(2)
            if len(head) < 2:
                return
            (n,) = struct.unpack(">H", head)
            data = b""
            while len(data) < n:
                chunk = self.request.recv(n - len(data))
                if not chunk:
                    return
                data += chunk
            out = answer(self.server.zone, data, self.client_address[0])
            if out is None:
                return
            self.request.sendall(struct.pack(">H", len(out)) + out)


def v6(cls):
    """The same server class for an IPv6 address (socketserver defaults to IPv4)."""
    return type(cls.__name__ + "6", (cls,), {"address_family": socket.AF_INET6})


def family(cls, host):
    return v6(cls) if ":" in host else cls


def serve(server):
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    return server


def main():
    global LOG
    p = argparse.ArgumentParser()
    p.add_argument("--host", action="append", default=[], help="address to serve HTTP/TLS/echo on")
    p.add_argument("--dns-addr", required=True)
    p.add_argument("--zone", action="append", required=True)
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--log", required=True)
    p.add_argument("--ready", required=True, help="file created once every socket listens")
    a = p.parse_args()
    LOG = open(a.log, "a", buffering=1)
    zone = load_zone(a.zone)
    ctx = make_tls_context(a.cert, a.key)
    for host in a.host:
        serve(family(Threaded, host)((host, 80), Http))
        serve(family(TlsServer, host)((host, 443), Http, ctx))
        serve(family(Threaded, host)((host, 7), TcpEcho))
        serve(family(ThreadedUDP, host)((host, 7), UdpEcho))
        serve(family(Threaded, host)((host, 22), Banner))
    udp = family(SerialUDP, a.dns_addr)((a.dns_addr, 53), DnsUdp)
    udp.zone = zone
    tcp = family(Threaded, a.dns_addr)((a.dns_addr, 53), DnsTcp)
    tcp.zone = zone
    serve(udp)
    serve(tcp)
    with open(a.ready, "w") as f:
        f.write(str(os.getpid()))
    threading.Event().wait()


if __name__ == "__main__":
    sys.exit(main())
