#!/usr/bin/env bash
# Proves the fake internet works and stays contained. Root builds a private
# fixture; an unprivileged user uses the shared one (fixture.sh up-shared) or
# skips (77). Run: bash tests/net/selftest.sh
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/net/fixture.sh
source "$here/fixture.sh"

n=0
ok() { n=$((n + 1)); echo "ok $n - $*"; }
fail() { echo "FAIL: $*" >&2; exit 1; }

routes_before=$(ip -4 route show; ip -6 route show)
default_before=$(ip -4 route show default; ip -6 route show default)

net_fixture_up
rc=$?
if [[ $rc -eq 77 ]]; then echo "SKIP: $SBXNET_WHY"; exit 77; fi
[[ $rc -eq 0 ]] || fail "fixture did not come up: $SBXNET_WHY"
ok "fixture up (netns $SBXNET_NS, owned=$SBXNET_OWNED)"

# --- containment --------------------------------------------------------------
[[ "$(ip -4 route show default; ip -6 route show default)" == "$default_before" ]] ||
  fail "the default route changed"
ok "default routes unchanged"
! ip route get 192.0.2.1 | grep -q sbxh ||
  fail "192.0.2.1 routed into the fixture"
ok "192.0.2.0/24 is not routed into the fixture"
for a in $SBXNET_A $SBXNET_B $SBXNET_DNS; do
  ip route get "$a" | grep -q "dev $SBXNET_HOST_IF" || fail "$a not routed to $SBXNET_HOST_IF: $(ip route get "$a")"
done
ok "both test ranges route to the veth"
if [[ $SBXNET_OWNED == 1 ]]; then
  added=$(diff <(echo "$routes_before") <(ip -4 route show; ip -6 route show) | grep '^>' | sed 's/^> //')
  extra=$(echo "$added" | grep -v "^198\.51\.100\.0/24 dev $SBXNET_HOST_IF" |
    grep -v "^203\.0\.113\.0/24 via 198\.51\.100\.2 dev $SBXNET_HOST_IF" |
    grep -v "^fe80::/64 dev $SBXNET_HOST_IF" | grep -v '^$' || true)
  [[ -z $extra ]] || fail "unexpected host routes: $extra"
  ok "host routes added: only the two test ranges (+ link-local of the veth)"
fi
if [[ $(id -u) -eq 0 ]]; then
  [[ -z $(net_fixture_exec ip -4 route show default) ]] || fail "the fixture netns has a default route"
  out=$(net_fixture_exec "$_SBXNET_PY" -c '
import socket, errno
for dst in ("192.0.2.1", "8.8.8.8"):
    s = socket.socket(); s.settimeout(2)
    try: s.connect((dst, 443)); print(dst, "connected")
    except OSError as e: print(dst, errno.errorcode.get(e.errno, e.errno))
')
  [[ $out == *"192.0.2.1 ENETUNREACH"* && $out == *"8.8.8.8 ENETUNREACH"* ]] ||
    fail "the fixture netns can reach outside addresses: $out"
  ok "inside the fixture, outside addresses are unreachable (ENETUNREACH)"
fi

# --- servers --------------------------------------------------------------------
mark=$(net_fixture_mark)
out=$(curl -sS --max-time 5 "http://$SBXNET_A/x" -H 'Host: good.test') || fail "HTTP to A: $out"
[[ $out == "hello from $SBXNET_A host=good.test path=/x" ]] || fail "HTTP answer: $out"
ok "HTTP on A"
out=$(curl -sS --max-time 5 --cacert "$SBXNET_CERT" --resolve "good.test:443:$SBXNET_A" https://good.test/y) ||
  fail "HTTPS to good.test: $out"
[[ $out == "hello from $SBXNET_A host=good.test path=/y" ]] || fail "HTTPS answer: $out"
ok "TLS on A with a certificate valid for good.test"
out=$(curl -sS --max-time 5 --cacert "$SBXNET_CERT" --resolve "evil.test:443:$SBXNET_B" https://evil.test/) ||
  fail "HTTPS to B: $out"
[[ $out == "hello from $SBXNET_B host=evil.test path=/" ]] || fail "HTTPS answer from B: $out"
ok "TLS on B (203.0.113.0/24)"
size=$(curl -sS --max-time 20 -o /dev/null -w '%{size_download}' "http://$SBXNET_A2/bytes/10000000")
[[ $size == 10000000 ]] || fail "bulk download got $size bytes"
ok "bulk HTTP download (10 MB) from A2"

out=$("$_SBXNET_PY" - "$SBXNET_A" "$SBXNET_DNS" <<'EOF'
import socket, struct, sys
host, dns = sys.argv[1], sys.argv[2]
t = socket.create_connection((host, 7), timeout=3); t.sendall(b"ping-tcp"); print(t.recv(100).decode())
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.settimeout(3)
u.sendto(b"ping-udp", (host, 7)); print(u.recvfrom(100)[0].decode())
def ask(name, qtype=1, tcp=False):
    q = struct.pack(">HHHHHH", 0x4242, 0x0100, 1, 0, 0, 0)
    q += b"".join(bytes([len(l)]) + l.encode() for l in name.split(".")) + b"\0" + struct.pack(">HH", qtype, 1)
    if tcp:
        s = socket.create_connection((dns, 53), timeout=3); s.sendall(struct.pack(">H", len(q)) + q)
        n = struct.unpack(">H", s.recv(2))[0]; r = b""
        while len(r) < n: r += s.recv(n - len(r))
    else:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(3); s.sendto(q, (dns, 53)); r = s.recv(4096)
    rcode, an, tc = r[3] & 15, struct.unpack(">H", r[6:8])[0], (r[2] >> 1) & 1
    ips, i = [], 12
    while r[i]: i += r[i] + 1
    i += 5
    for _ in range(an):
        while r[i] and r[i] < 64: i += r[i] + 1
        i += 1
        t, _, _, ln = struct.unpack(">HHIH", r[i:i + 10]); i += 10
        if t == 1: ips.append(socket.inet_ntoa(r[i:i + 4]))
        i += ln
    return f"{name} rcode={rcode} tc={tc} {','.join(ips)}"
print(ask("good.test")); print(ask("www.good.test")); print(ask("nope.test")); print(ask("example.com"))
print(ask("big.test")); print(ask("big.test", tcp=True).split(",")[0])
EOF
) || fail "echo/DNS client failed: $out"
expect() { [[ $out == *"$1"* ]] || fail "expected '$1' in: $out"; ok "$2"; }
expect "ping-tcp" "TCP echo"
expect "ping-udp" "UDP echo"
expect "good.test rcode=0 tc=0 198.51.100.10" "DNS A record"
expect "www.good.test rcode=0 tc=0 198.51.100.10" "DNS follows CNAME"
expect "nope.test rcode=3" "DNS NXDOMAIN for unknown .test names"
expect "example.com rcode=5" "DNS refuses names outside test. (never recursive)"
expect "big.test rcode=0 tc=1" "DNS truncates big UDP answers"
expect "big.test rcode=0 tc=0 203.0.113.101" "DNS over TCP"

log=$(net_fixture_log_since "$mark")
grep -q "^tls .* good.test$" <<<"$log" || fail "TLS SNI not logged: $log"
ok "server log records the SNI"
net_fixture_dns_seen good.test "$mark" || fail "DNS query not logged"
net_fixture_dns_seen never-asked.test "$mark" && fail "log claims a query that never happened"
ok "server log records DNS names (and only those asked)"

if [[ $SBXNET_OWNED == 1 ]]; then
  ns=$SBXNET_NS dir=$SBXNET_DIR hostif=$SBXNET_HOST_IF
  net_fixture_down
  ip netns list | grep -q "^$ns" && fail "netns $ns left behind"
  ip link show "$hostif" >/dev/null 2>&1 && fail "veth $hostif left behind"
  [[ -e $dir ]] && fail "$dir left behind"
  [[ "$(ip -4 route show; ip -6 route show)" == "$routes_before" ]] || fail "routes not restored"
  ok "teardown removes netns, veth, routes and files"
fi
echo "# $n checks passed"
