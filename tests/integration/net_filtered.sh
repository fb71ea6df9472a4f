#!/usr/bin/env bash
# network.mode = "filtered" end to end against the fake internet (tests/net):
# egress proxy (SNI gate, 100 MB through the splice relay), fast refusals,
# UDP blocked, no CAP_NET_ADMIN inside, NFLOG events, the DNS filter
# (issues 6 and 7 acceptance), the host's own addresses out of reach. Only
# loopback and the fixture's ranges.
source "$SBX_SOURCE_DIR/tests/lib.sh"
source "$SBX_SOURCE_DIR/tests/net/fixture.sh"
py=/usr/bin/python3
[[ -x $py ]] || skip "needs /usr/bin/python3"
command -v curl >/dev/null || skip "needs curl"
need_net_fixture

D=$(scratch)
cd "$D" || fail "cd $D"
cp "$SBXNET_CERT" "$D/ca.pem"
cat >"$D/net.toml" <<EOF
extends = "base"
[network]
mode = "filtered"
allow_ports = [80, 443, 7]
allow_domains = ["good.test", "*.good.test", "rebind.test", "mixed.test"]
dns_upstream = ["$SBXNET_DNS"]
EOF
P=(run --profile "$D/net.toml")

# --- egress: allow_cidrs, SNI gate ------------------------------------------
mark=$(net_fixture_mark)
size=$((100 * 1024 * 1024))
want=$("$py" -c "
import hashlib; h = hashlib.sha256(); chunk = bytes(range(256)) * 256; left = $size
while left: n = min(left, len(chunk)); h.update(chunk[:n]); left -= n
print(h.hexdigest())")
run_sbx "${P[@]}" --allow-cidr "$SBXNET_A/32" -- sh -c \
  "curl -sS --cacert ca.pem --resolve good.test:443:$SBXNET_A https://good.test/bytes/$size | sha256sum"
expect_rc 0 "TLS with an allowed SNI to an --allow-cidr address"
expect_out "^$want " "100 MB arrive intact through the egress proxy"

# Upstream too, with lo's large segments (512 KiB, docs/network.md): 64 MB
# to the TCP echo server and back, checked byte for byte, while both
# directions of the relay move at once.
bulk=$(cat "$SBX_SOURCE_DIR/tests/net/bulk.py")
run_sbx "${P[@]}" --allow-cidr "$SBXNET_A/32" -- "$py" -c "$bulk" segments
expect_rc 0 "read lo's segment sizes in a filtered sandbox"
expect_out "$(expected_lo_segments)" "lo's segment sizes in a filtered sandbox (512 KiB from Linux 6.4)"
net_fixture_echo_profile "$D/echo.toml"
run_sbx run --profile "$D/echo.toml" --allow-cidr "$SBXNET_A/32" -- "$py" -c "$bulk" echo "$SBXNET_A" $((64 << 20))
expect_rc 0 "64 MB through the egress proxy to the echo server and back"
expect_out "^intact $((64 << 20))$" "64 MB come back intact through both directions of the relay"

run_sbx "${P[@]}" --allow-cidr "$SBXNET_A/32" -- \
  curl -sS --max-time 5 --cacert ca.pem --resolve evil.test:443:$SBXNET_A https://evil.test/
[[ $RC -ne 0 ]] || fail "a TLS client with SNI evil.test was relayed. Output: $OUT"
expect_out "reset|SSL|TLS" "SNI evil.test to the same address is refused (reset)"
net_fixture_log_since "$mark" | grep -q "^tls [^ ]* evil.test" && fail "evil.test SNI reached the server"
pass "the refused connection never reached the server"

# --- the host's own addresses ---------------------------------------------------
# The proxy connects from the host's netns, where the host's veth address
# (like eth0's) is local: a connection there would reach the host's own
# services over lo. An allowed range that holds it must not open the way
# (net_connect verdict host_address); fixture host A in the same range is
# still reached. A host listener on the veth address (IPv6 too when the
# fixture has it) records whoever connects and would answer with its bytes.
H=$(scratch)
"$py" - "$H" "$SBXNET_HOST_SIDE" "$SBXNET_HOST_SIDE6" <<'PY' &
import os, socket, sys, threading
d = sys.argv[1]
s4 = socket.socket(); s4.bind((sys.argv[2], 0)); s4.listen(8)
port = s4.getsockname()[1]
socks = [s4]
try:
    s6 = socket.socket(socket.AF_INET6)
    s6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    s6.bind((sys.argv[3], port)); s6.listen(8); socks.append(s6)
except OSError:
    pass
def serve(s):
    while True:
        c, peer = s.accept()
        open(d + "/hits", "a").write(peer[0] + "\n")
        c.sendall(b"host-service-bytes\n"); c.close()
for s in socks:
    threading.Thread(target=serve, args=(s,), daemon=True).start()
open(d + "/port.tmp", "w").write("%d %d\n" % (port, len(socks)))
os.rename(d + "/port.tmp", d + "/port")
threading.Event().wait(120)   # never outlives the test by much
PY
hostlistener=$!
for _ in $(seq 50); do [[ -s $H/port ]] && break; sleep 0.1; done
read -r hport hsocks <"$H/port" || {
  kill "$hostlistener" 2>/dev/null
  fail "the host listener on $SBXNET_HOST_SIDE did not start"
}
# A TLS ClientHello with an allowed SNI (good.test), sent raw; then whatever
# comes back: the host service's bytes (reached), or a reset / EOF (refused).
hello='import errno, socket, ssl, sys
def attempt(host, port):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
    out = ssl.MemoryBIO()
    obj = ctx.wrap_bio(ssl.MemoryBIO(), out, server_hostname="good.test")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    try:
        s = socket.create_connection((host, int(port)), timeout=5)
        s.sendall(out.read())
        data = s.recv(100)
        return "read:" + data.decode(errors="replace").strip() if data else "eof"
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e))
def http(host):
    s = socket.create_connection((host, 80), timeout=5)
    s.sendall(b"GET /anything HTTP/1.1\r\nHost: good.test\r\nConnection: close\r\n\r\n")
    body = b""
    while True:
        b = s.recv(4096)
        if not b: break
        body += b
    return body.split(b"\r\n\r\n", 1)[-1].decode().strip()
args = sys.argv[1:]
print("host_v4=" + attempt(args[0], args[1]))
print("fixture_a=" + http(args[2]))
if len(args) > 3:
    print("host_v6=" + attempt(args[3], args[1]))'
cidrs=(--allow-cidr 198.51.100.0/24)
targets=("$SBXNET_HOST_SIDE" "$hport" "$SBXNET_A")
if ((hsocks == 2)) && net_fixture_has_ipv6; then
  cidrs+=(--allow-cidr 2001:db8:1::/64)
  targets+=("$SBXNET_HOST_SIDE6")
fi
run_sbx "${P[@]}" -v "${cidrs[@]}" --allow-port "$hport" -- "$py" -c "$hello" "${targets[@]}"
kill "$hostlistener" 2>/dev/null
wait "$hostlistener" 2>/dev/null
expect_rc 0 "connection attempts to the host's veth address ran"
expect_out "host_v4=(ECONNRESET|eof)" \
  "a connection to the host's own $SBXNET_HOST_SIDE:$hport (inside --allow-cidr) is reset"
expect_no_out "host-service-bytes" "the sandbox read nothing of the host's service"
expect_out "event net_connect .*\"address\":\"$SBXNET_HOST_SIDE\".*\"verdict\":\"host_address\"" \
  "the net_connect record has verdict host_address"
expect_out "fixture_a=hello from $SBXNET_A host=good.test" \
  "fixture host A in the same allowed range is reached in the same run"
if ((${#targets[@]} > 3)); then
  expect_out "host_v6=(ECONNRESET|eof)" "the host's own [$SBXNET_HOST_SIDE6]:$hport is reset too"
  expect_out "event net_connect .*\"address\":\"$SBXNET_HOST_SIDE6\".*\"verdict\":\"host_address\"" \
    "with verdict host_address"
fi
[[ ! -e $H/hits ]] || fail "the host's listener got connections from: $(cat "$H/hits")"
pass "the host's listener on its veth address saw no connection"

# --- fast refusal, UDP, no CAP_NET_ADMIN, NFLOG event -------------------------
refused='import socket, time, errno, sys
t = time.monotonic()
try:
    socket.create_connection((sys.argv[1], 443), timeout=5); print("connected")
except OSError as e:
    print(errno.errorcode.get(e.errno, e.errno), int((time.monotonic() - t) * 1000))'
run_sbx "${P[@]}" -v --allow-cidr "$SBXNET_A/32" -- "$py" -c "$refused" "$SBXNET_B"
expect_rc 0 "raw-IP connect probe ran"
[[ $OUT =~ (ECONNREFUSED|EHOSTUNREACH)\ ([0-9]+) ]] || fail "connect to $SBXNET_B not refused: $OUT"
((BASH_REMATCH[2] < 100)) || fail "refusal took ${BASH_REMATCH[2]} ms"
pass "raw-IP connect to an address not in the sets fails with ${BASH_REMATCH[1]} in ${BASH_REMATCH[2]} ms"
expect_out "event net_blocked .*\"address\":\"$SBXNET_B\".*\"port\":443" \
  "the NFLOG event names the blocked destination"

udp='import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(1)
try:
    s.sendto(b"ping", (sys.argv[1], 7)); print("reply", s.recv(100))
except OSError as e:
    print("udp failed", type(e).__name__, e)'
mark=$(net_fixture_mark)
run_sbx "${P[@]}" --allow-cidr "$SBXNET_A/32" -- "$py" -c "$udp" "$SBXNET_A"
expect_out "udp failed" "UDP to an allowed address (port 7) fails"
net_fixture_log_since "$mark" | grep -q "^echo [^ ]* udp" && fail "UDP reached the echo server"
pass "UDP never reached the fake internet"

nft=$(command -v nft || echo /usr/sbin/nft)
if [[ -x $nft ]]; then
  run_sbx "${P[@]}" -- "$nft" list ruleset
  [[ $RC -ne 0 ]] || fail "nft list ruleset works inside: $OUT"
  expect_out "Operation not permitted" "nft list ruleset inside fails (no CAP_NET_ADMIN over the netns)"
fi
nl='import socket
s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 12)   # NETLINK_NETFILTER
# NFT_MSG_GETTABLE dump (subsystem 10 << 8 | 1), family inet
msg = (20).to_bytes(4, "little") + ((10 << 8) | 1).to_bytes(2, "little") + (0x301).to_bytes(2, "little") + bytes(8) + bytes([1, 0, 0, 0])
s.send(msg); r = s.recv(4096)
print("error", -int.from_bytes(r[16:20], "little", signed=True))'
run_sbx "${P[@]}" -- "$py" -c "$nl"
# EPERM from the kernel (no CAP_NET_ADMIN in U2) or already from seccomp at socket().
expect_out "^error 1$|PermissionError" "an nf_tables dump from inside gets EPERM"

# --- DNS filter ----------------------------------------------------------------
mark=$(net_fixture_mark)
run_sbx "${P[@]}" -- getent hosts good.test
expect_rc 0 "getent hosts good.test"
expect_out "^$SBXNET_A +good.test" "good.test resolves to the test server"
run_sbx "${P[@]}" -- getent hosts evil.test
[[ $RC -ne 0 ]] || fail "evil.test resolved: $OUT"
pass "getent hosts evil.test fails"
net_fixture_dns_seen evil.test "$mark" && fail "the upstream saw a query for evil.test"
pass "the upstream never saw evil.test"
net_fixture_dns_seen good.test "$mark" || fail "the upstream never saw good.test"
pass "good.test was resolved upstream"

race='import socket, time, errno
fails = 0; n = 1000
for i in range(n):
    addr = socket.getaddrinfo("good.test", 80, socket.AF_INET, socket.SOCK_STREAM)[0][4]
    try:
        socket.create_connection(addr, timeout=2).close()
    except OSError as e:
        fails += 1; print("fail", i, errno.errorcode.get(e.errno, e.errno))
    time.sleep(0.004)   # below the filter rate limit (200 queries/s)
s = socket.create_connection((socket.gethostbyname("good.test"), 80), timeout=5)
s.sendall(b"GET /anything HTTP/1.1\r\nHost: good.test\r\nConnection: close\r\n\r\n")
body = b""
while True:
    b = s.recv(4096)
    if not b: break
    body += b
print("races", fails, body.split(b"\r\n\r\n", 1)[-1].decode())'
run_sbx "${P[@]}" -- "$py" -c "$race"
expect_rc 0 "resolve + connect loop"
expect_out "races 0 hello from $SBXNET_A host=good.test" \
  "1000 x (resolve good.test, connect at once): zero failures; HTTP through the proxy"

run_sbx "${P[@]}" -- "$py" -c "$refused" "$SBXNET_B"
expect_out "ECONNREFUSED|EHOSTUNREACH" "evil.test's address ($SBXNET_B) stays unreachable"

run_sbx "${P[@]}" -- getent hosts rebind.test
[[ $RC -ne 0 ]] || fail "rebind.test gave an address: $OUT"
pass "a name resolving to 127.0.0.1 / 169.254.169.254 yields no address"
run_sbx "${P[@]}" -- getent ahostsv4 mixed.test
expect_out "$SBXNET_B" "mixed.test keeps its public address"
expect_no_out "10\.0\.0\.1" "and loses 10.0.0.1"

if command -v dig >/dev/null; then
  run_sbx "${P[@]}" -v -- dig +time=2 +tries=1 +short @8.8.8.8 good.test
  expect_out "(^|[[:space:]])$SBXNET_A([[:space:]]|$)" "dig @8.8.8.8 good.test is answered by the filter"
  expect_out 'event dns .*"name":"good.test"' "and the filter logged the query"
  run_sbx "${P[@]}" -- dig +time=2 +tries=1 @8.8.8.8 evil.test
  expect_out "status: REFUSED" "dig @8.8.8.8 evil.test: REFUSED locally"
  run_sbx "${P[@]}" -- dig +time=2 +tries=1 +tcp @8.8.8.8 good.test
  expect_out "status: NOERROR" "DNS over TCP to a hard-coded resolver is answered too"
fi
formerr='import socket, sys
def ask(q):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(2)
    s.sendto(q, (sys.argv[1], 53)); return s.recv(1500)[3] & 15
hdr = bytes([0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0])
long_label = hdr + bytes([200]) + b"a" * 200 + bytes([4]) + b"good" + bytes([4]) + b"test" + bytes([0, 0, 1, 0, 1])
garbage = bytes([0x12, 0x35, 1, 0, 0, 2, 0, 0, 0, 0, 0, 0]) + b"\x03abc"
print("long", ask(long_label), "garbage", ask(garbage))'
run_sbx "${P[@]}" -- "$py" -c "$formerr" 8.8.8.8
expect_out "long 1 garbage 1" "200-byte labels and malformed queries get FORMERR"

done_testing
