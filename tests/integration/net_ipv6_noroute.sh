#!/usr/bin/env bash
# Without an IPv6 route on the host, the DNS filter answers AAAA for an
# allowed name with NODATA at once (issue 7: "AAAA when the host has no IPv6
# -> NODATA at once"), so clients go straight to IPv4 instead of waiting.
# sbx itself runs in a fresh network namespace that has no routes at all
# (unshare -n, root only), so the "host" it sees
# has no IPv6 default route. The answer must not need the upstream: there
# is none reachable in that namespace.
source "$SBX_SOURCE_DIR/tests/lib.sh"
py=/usr/bin/python3
[[ -x $py ]] || skip "needs /usr/bin/python3"
command -v unshare >/dev/null || skip "needs unshare (util-linux)"
# Only root can give sbx a "host" network namespace without routes: a user
# would need a user namespace around sbx (unshare -rn), where sbx cannot map
# the ids its sandbox needs (only uid 0 exists there).
is_root || skip "needs root: only root can run sbx in a netns without IPv6 routes (unshare -n)"
wrap=(unshare -n)
"${wrap[@]}" true 2>/dev/null || skip "cannot create a network namespace here (${wrap[*]})"

query='import socket, struct, sys, time
ns = next(l.split()[1] for l in open("/etc/resolv.conf") if l.startswith("nameserver"))
def ask(qtype, qid):
    q = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    q += b"".join(bytes([len(p)]) + p.encode() for p in sys.argv[1].split(".")) + b"\0"
    q += struct.pack(">HH", qtype, 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(3)
    t = time.monotonic(); s.sendto(q, (ns, 53))
    try:
        r = s.recv(1500)
    except socket.timeout:
        print("type", qtype, "timeout"); return
    ms = (time.monotonic() - t) * 1000
    print("type", qtype, "rcode", r[3] & 15, "answers", struct.unpack(">H", r[6:8])[0], "ms", int(ms))
ask(28, 1)'
run_sbx_wrapped() {
  OUT=$("${wrap[@]}" "$SBX" "$@" 2>&1 </dev/null)
  RC=$?
}
run_sbx_wrapped run --net filtered --allow-domain good.test -v -- "$py" -c "$query" good.test
expect_rc 0 "AAAA probe ran in a sandbox whose host has no IPv6 route"
[[ $OUT =~ type\ 28\ rcode\ 0\ answers\ 0\ ms\ ([0-9]+) ]] || fail "AAAA good.test was not answered NODATA: $OUT"
((BASH_REMATCH[1] < 100)) || fail "NODATA took ${BASH_REMATCH[1]} ms"
pass "AAAA for an allowed name: NODATA in ${BASH_REMATCH[1]} ms"
expect_out 'event dns .*"name":"good.test".*"qtype":"AAAA".*"verdict":"no_ipv6"' \
  "answered locally by the no-IPv6 rule (never sent upstream)"
done_testing
