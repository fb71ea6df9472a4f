#!/usr/bin/env bash
# network.mode = "filtered" over IPv6 against the fake internet's IPv6 hosts
# (tests/net: 2001:db8:100::/48, DNS on 2001:db8:100::53): an allowed AAAA
# name is reached over IPv6 through the egress proxy; an IPv6 literal that
# is in no set is refused fast (issue 6/7: "IPv6 handled everywhere the IPv4 path
# is"). Only loopback and the fixture's documentation ranges.
# (AAAA without an IPv6 route: tests/integration/net_ipv6_noroute.sh.)
source "$SBX_SOURCE_DIR/tests/lib.sh"
source "$SBX_SOURCE_DIR/tests/net/fixture.sh"
py=/usr/bin/python3
[[ -x $py ]] || skip "needs /usr/bin/python3"
need_net_fixture
net_fixture_ipv6
rc=$?
[[ $rc -eq 77 ]] && skip "$SBXNET_WHY"
[[ $rc -eq 0 ]] || fail "fake internet IPv6: $SBXNET_WHY"
# The filter answers AAAA only when the host has an IPv6 default route.
grep -v " lo$" /proc/net/ipv6_route | grep -q "^00000000000000000000000000000000 00 " ||
  skip "this host has no IPv6 default route (sbx answers AAAA with NODATA there)"

D=$(scratch)
cd "$D" || fail "cd $D"
cat >"$D/v6.toml" <<EOF
extends = "base"
[network]
mode = "filtered"
allow_ports = [80, 443]
allow_domains = ["v6.test", "dual.test"]
dns_upstream = ["[$SBXNET_DNS6]:53"]
EOF
P=(run --profile "$D/v6.toml")

# --- an allowed AAAA name, reached over IPv6 through the proxy ----------------
fetch='import socket, sys
name = sys.argv[1]
infos = socket.getaddrinfo(name, 80, socket.AF_INET6, socket.SOCK_STREAM)
addr = infos[0][4][0]
s = socket.create_connection((addr, 80), timeout=5)
s.sendall(("GET /v6 HTTP/1.0\r\nHost: %s\r\n\r\n" % name).encode())
data = b""
while True:
    d = s.recv(4096)
    if not d: break
    data += d
print("addr", addr)
print(data.decode(errors="replace").splitlines()[-1])'
mark=$(net_fixture_mark)
run_sbx "${P[@]}" -v -- "$py" -c "$fetch" v6.test
expect_rc 0 "IPv6 client ran"
expect_out "addr $SBXNET_A6" "v6.test resolves (AAAA through the filter) to $SBXNET_A6"
expect_out "hello from $SBXNET_A6 host=v6.test path=/v6" "and the HTTP request reaches it over IPv6"
expect_out "event net_connect .*\"address\":\"$SBXNET_A6\".*\"allowed\":true" \
  "the connection went through the egress proxy (event names the IPv6 address)"
expect_out "event dns .*\"name\":\"v6.test\".*\"qtype\":\"AAAA\".*\"verdict\":\"allowed\"" \
  "the AAAA query is a dns event"
net_fixture_log_since "$mark" | grep -q "^http $SBXNET_A6 v6.test /v6" ||
  fail "the fixture's IPv6 server did not log the request"
pass "the fixture's IPv6 server saw the request"

# dual.test over IPv6 explicitly, same proxy path.
run_sbx "${P[@]}" -- "$py" -c "$fetch" dual.test
expect_rc 0 "dual-stack name over IPv6"
expect_out "hello from $SBXNET_A6 host=dual.test" "dual.test reached on its AAAA address"

# 64 MB over IPv6 to the echo server and back, with lo's large segments
# (IPv6 "BIG TCP"; tests/net/bulk.py).
net_fixture_echo_profile "$D/echo.toml"
run_sbx run --profile "$D/echo.toml" --allow-cidr "$SBXNET_A6/128" -- \
  "$py" -c "$(cat "$SBX_SOURCE_DIR/tests/net/bulk.py")" echo "$SBXNET_A6" $((64 << 20))
expect_rc 0 "64 MB over IPv6 through the egress proxy and back"
expect_out "^intact $((64 << 20))$" "64 MB come back intact over IPv6"

# --- an IPv6 literal in no set: refused fast ------------------------------------
refused='import socket, time, errno, sys
t = time.monotonic()
try:
    socket.create_connection((sys.argv[1], 80), timeout=5); print("connected")
except OSError as e:
    print(errno.errorcode.get(e.errno, e.errno), int((time.monotonic() - t) * 1000))'
mark=$(net_fixture_mark)
run_sbx "${P[@]}" -v -- "$py" -c "$refused" "$SBXNET_A6"
expect_rc 0 "IPv6 literal probe ran"
[[ $OUT =~ (ECONNREFUSED|EHOSTUNREACH)\ ([0-9]+) ]] || fail "connect to [$SBXNET_A6]:80 not refused: $OUT"
((BASH_REMATCH[2] < 100)) || fail "IPv6 refusal took ${BASH_REMATCH[2]} ms"
pass "IPv6 literal not in the sets fails with ${BASH_REMATCH[1]} in ${BASH_REMATCH[2]} ms"
expect_out "event net_blocked .*\"address\":\"$SBXNET_A6\".*\"port\":80" "the NFLOG event names the IPv6 destination"
net_fixture_log_since "$mark" | grep -q "^http $SBXNET_A6" && fail "the refused IPv6 connect reached the server"
pass "the refused IPv6 connect never reached the server"

done_testing
