#!/usr/bin/python3
# DNS load generator for bench/dns.sh (standard library only).
#   dns_load.py SERVER NAME latency N     -> "p50_us p99_us rcodes"
#   dns_load.py SERVER NAME qps SECONDS W -> "qps lost rcodes"
# SERVER "resolv" = first nameserver of /etc/resolv.conf. Queries are A, RD=1.
import select, socket, struct, sys, time
from collections import Counter

server, name, mode = sys.argv[1], sys.argv[2], sys.argv[3]
if server == "resolv":
    with open("/etc/resolv.conf") as f:
        server = next(l.split()[1] for l in f if l.startswith("nameserver"))
qname = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"


def query(qid):
    return struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0) + qname + b"\0\1\0\1"


RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.connect((server, 53))
rc = Counter()
if mode == "latency":
    n = int(sys.argv[4])
    s.settimeout(2)
    ts = []
    for i in range(n):
        t = time.perf_counter()
        s.send(query(i & 0xFFFF))
        r = s.recv(1500)
        ts.append((time.perf_counter() - t) * 1e6)
        rc[RCODES.get(r[3] & 15, r[3] & 15)] += 1
    ts.sort()
    print(int(ts[len(ts) // 2]), int(ts[min(n - 1, int(n * 0.99))]),
          ",".join(f"{k}={v}" for k, v in sorted(rc.items())))
else:
    secs, window = float(sys.argv[4]), int(sys.argv[5])
    s.setblocking(False)
    inflight = {}
    qid = 0
    done = lost = 0
    start = time.perf_counter()
    end = start + secs
    while True:
        now = time.perf_counter()
        if now < end:
            while len(inflight) < window:
                qid = (qid + 1) & 0xFFFF
                try:
                    s.send(query(qid))
                except BlockingIOError:
                    break
                inflight[qid] = now
        elif not inflight:
            break
        ready, _, _ = select.select([s], [], [], 0.05)
        if ready:
            while True:
                try:
                    r = s.recv(1500)
                except (BlockingIOError, ConnectionRefusedError):
                    break
                i = struct.unpack(">H", r[:2])[0]
                if inflight.pop(i, None) is not None:
                    done += 1
                    rc[RCODES.get(r[3] & 15, r[3] & 15)] += 1
        now = time.perf_counter()
        for i, t in list(inflight.items()):  # answers lost (or dropped): 1 s
            if now - t > 1:
                del inflight[i]
                lost += 1
    elapsed = max(time.perf_counter() - start, 1e-9)
    print(int(done / elapsed), lost, ",".join(f"{k}={v}" for k, v in sorted(rc.items())))
