#!/usr/bin/python3
# DNS load generator for bench/dns.sh (standard library only).
#   dns_load.py SERVER NAME latency N     -> "p50_us p99_us rcodes"
#   dns_load.py SERVER NAME qps SECONDS W -> "qps lost rcodes"
#   dns_load.py SERVER NAME serve         for each line "K" on stdin: K
#                                         sequential queries, their latencies
#                                         (us) on one line; "rcodes": the rcode
#                                         counts so far; "reset": zero them
#   dns_load.py SERVER NAME paired N K -- CMD...
#       SERVER queried from here, interleaved with CMD (a "serve" client, e.g.
#       inside sbx) in batches of K, ABBA order, N queries each
#       -> "p50_us p99_us rcodes cmd_p50_us cmd_p99_us cmd_rcodes"
# SERVER "resolv" = first nameserver of /etc/resolv.conf. Queries are A, RD=1.
import select, socket, struct, subprocess, sys, time
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
last_id = 0


def batch(k):
    """k sequential queries; their latencies in us."""
    global last_id
    ts = []
    for _ in range(k):
        last_id = (last_id + 1) & 0xFFFF
        t = time.perf_counter()
        s.send(query(last_id))
        r = s.recv(1500)
        ts.append((time.perf_counter() - t) * 1e6)
        rc[RCODES.get(r[3] & 15, r[3] & 15)] += 1
    return ts


def counts(c):
    return ",".join(f"{k}={v}" for k, v in sorted(c.items()))


def percentiles(ts):
    ts = sorted(ts)
    return f"{int(ts[len(ts) // 2])} {int(ts[min(len(ts) - 1, int(len(ts) * 0.99))])}"


if mode == "latency":
    s.settimeout(2)
    print(percentiles(batch(int(sys.argv[4]))), counts(rc))
elif mode == "serve":
    s.settimeout(2)
    for line in sys.stdin:
        if line.strip() == "rcodes":
            print(counts(rc), flush=True)
        elif line.strip() == "reset":
            rc.clear()
        else:
            print(" ".join(f"{t:.1f}" for t in batch(int(line))), flush=True)
elif mode == "paired":
    n, k = int(sys.argv[4]), int(sys.argv[5])
    s.settimeout(2)
    peer = subprocess.Popen(sys.argv[sys.argv.index("--") + 1:], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)

    def ask(line):
        peer.stdin.write(line + "\n")
        peer.stdin.flush()
        out = peer.stdout.readline()
        if not out:
            sys.exit("dns_load.py: the paired client exited")
        return out.strip()

    def peer_batch(k):
        return [float(x) for x in ask(str(k)).split()]

    batch(k), peer_batch(k)  # warm-up of both paths (caches filled)
    rc.clear()
    peer.stdin.write("reset\n")
    mine, theirs = [], []
    for r in range(max(1, n // k)):
        if r % 2 == 0:
            mine += batch(k)
            theirs += peer_batch(k)
        else:
            theirs += peer_batch(k)
            mine += batch(k)
    their_rc = ask("rcodes")
    peer.stdin.close()
    peer.wait()
    print(percentiles(mine), counts(rc), percentiles(theirs), their_rc)
else:
    secs, window = float(sys.argv[4]), int(sys.argv[5])
    s.setblocking(False)
    inflight = {}
    qid = 0  # the qps loop numbers its own queries
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
