#!/usr/bin/env bash
# DNS TTL expiry in network.mode = "filtered" (issue 7 acceptance): with
# ttl1.test (TTL 1 s in the fake internet) and a short clamp from the profile
# (dns_min_ttl = "1s", dns_ttl_grace = "1s": the address stays allowed for
# 2 s), once that has passed new connects to the old address fail while a
# connection established before keeps working; resolving again re-allows the
# address. With the default clamp (30 s + 10 s) the same sequence connects
# again: the test fails if the knobs are not applied. Only loopback and the
# fixture's ranges.
source "$SBX_SOURCE_DIR/tests/lib.sh"
source "$SBX_SOURCE_DIR/tests/net/fixture.sh"
py=/usr/bin/python3
[[ -x $py ]] || skip "needs /usr/bin/python3"
need_net_fixture

D=$(scratch)
cd "$D" || fail "cd $D"
profile() {  # FILE [EXTRA LINES]
  cat >"$1" <<EOF
extends = "base"
[network]
mode = "filtered"
allow_ports = [7]
opaque_ports = [7]
allow_domains = ["ttl1.test"]
dns_upstream = ["$SBXNET_DNS"]
$2
EOF
}
profile "$D/short.toml" $'dns_min_ttl = "1s"\ndns_ttl_grace = "1s"'
profile "$D/default.toml" ""

# The policy printer shows the knobs (and a bad value is refused).
run_sbx profile show --resolved "$D/short.toml"
expect_rc 0 "profile show --resolved"
expect_out 'dns_min_ttl = "1s"' "the resolved policy has dns_min_ttl = 1s"
expect_out 'dns_ttl_grace = "1s"' "the resolved policy has dns_ttl_grace = 1s"
profile "$D/bad.toml" 'dns_min_ttl = "500ms"'
run_sbx run --profile "$D/bad.toml" -- /bin/true
[[ $RC -ne 0 ]] || fail "dns_min_ttl = \"500ms\" was accepted"
expect_out "dns_min_ttl" "a sub-second dns_min_ttl is refused, naming the key"

# Resolve, connect and echo; wait past TTL + grace; connect again (new), use
# the old connection, resolve again and connect.
ttl='import socket, sys, time, errno
def conn(addr):
    try:
        s = socket.create_connection((addr, 7), timeout=3); return s, "ok"
    except OSError as e:
        return None, errno.errorcode.get(e.errno, str(e))
def echo(s, data):
    s.sendall(data); got = b""
    while len(got) < len(data):
        b = s.recv(100)
        if not b: break
        got += b
    return "ok" if got == data else "bad:%r" % got
addr = socket.getaddrinfo("ttl1.test", 7, socket.AF_INET, socket.SOCK_STREAM)[0][4][0]
old, r = conn(addr)
print("resolved", addr, "first", r, "echo", echo(old, b"one") if old else "-")
time.sleep(float(sys.argv[1]))
new, r = conn(addr)
print("after-expiry-new", r)
print("established-echo", echo(old, b"two"))
socket.getaddrinfo("ttl1.test", 7, socket.AF_INET, socket.SOCK_STREAM)
again, r = conn(addr)
print("after-re-resolve", r)'

run_sbx run --profile "$D/short.toml" -- "$py" -c "$ttl" 4
expect_rc 0 "ttl probe ran (short clamp)"
expect_out "^resolved $SBXNET_A2 first ok echo ok" "ttl1.test resolves to A2 and connects at once"
[[ $OUT =~ after-expiry-new\ (ECONNREFUSED|EHOSTUNREACH|ETIMEDOUT|timed\ out) ]] ||
  fail "a new connect 4 s after resolution (TTL 1 s, clamp 1 s + grace 1 s) was not refused: $OUT"
pass "after TTL + grace a new connect to the old address fails (${BASH_REMATCH[1]})"
expect_out "established-echo ok" "the connection established before expiry keeps working"
expect_out "after-re-resolve ok" "resolving again re-allows the address"

run_sbx run --profile "$D/default.toml" -- "$py" -c "$ttl" 4
expect_rc 0 "ttl probe ran (default clamp)"
expect_out "after-expiry-new ok" "control: with the default clamp (30 s + 10 s) the address is still allowed after 4 s"

done_testing
