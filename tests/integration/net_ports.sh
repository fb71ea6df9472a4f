#!/usr/bin/env bash
# network.mode = "filtered": --host-port N / host_ports (the sandbox reaches
# the host's 127.0.0.1:N and nothing else on the host) and --publish H:S /
# publish (host 127.0.0.1:H reaches a server inside on S), with the flags as
# issue 6's acceptance states them. Loopback only; no fake internet needed.
source "$SBX_SOURCE_DIR/tests/lib.sh"
py=/usr/bin/python3
[[ -x $py ]] || skip "needs /usr/bin/python3"
D=$(scratch)
cd "$D" || fail "cd $D"

free() { ! "$py" -c "import socket,sys; socket.create_connection(('127.0.0.1', int(sys.argv[1])), timeout=1)" "$1" 2>/dev/null; }
pick() {  # the acceptance port if free, else a free one
  if free "$1"; then echo "$1"; else "$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; fi
}
HP=$(pick 5432)
OTHER=$(pick 5433)
PUB=$(pick 8080)

# Two host servers on loopback: each answers its own port number.
"$py" -c '
import socket, sys, threading
def serve(port):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port)); s.listen(16)
    while True:
        c, _ = s.accept(); c.sendall(str(port).encode()); c.close()
for p in sys.argv[1:]:
    threading.Thread(target=serve, args=(int(p),), daemon=True).start()
open("servers.ready", "w").close()
threading.Event().wait()' "$HP" "$OTHER" &
servers=$!
trap 'kill $servers 2>/dev/null; _cleanup_scratch' EXIT
for _ in $(seq 50); do [[ -e servers.ready ]] && break; sleep 0.1; done
[[ -e servers.ready ]] || fail "host test servers did not start"

client='import socket, sys, errno
for port in sys.argv[1:]:
    try:
        s = socket.create_connection(("127.0.0.1", int(port)), timeout=3)
        print(port, "got", s.recv(16).decode())
    except OSError as e:
        print(port, "error", errno.errorcode.get(e.errno, e.errno))'
# The acceptance, with the command-line flag: --host-port 5432 reaches the
# host's 127.0.0.1:5432 and not 127.0.0.1:5433.
run_sbx run --net filtered --host-port "$HP" -v -- "$py" -c "$client" "$HP" "$OTHER"
expect_rc 0 "host port client ran"
expect_out "$HP got $HP" "--host-port $HP: the sandbox reaches the host's 127.0.0.1:$HP"
expect_out "$OTHER error ECONNREFUSED" "and not the host's 127.0.0.1:$OTHER"
expect_out 'event net_connect .*"kind":"host_port"' "the host-port connection is an event"

# Without the flag the host's port is not reachable at all.
run_sbx run --net filtered -- "$py" -c "$client" "$HP"
expect_rc 0 "client without --host-port ran"
expect_out "$HP error (ECONNREFUSED|EHOSTUNREACH)" "without --host-port the host's 127.0.0.1:$HP is closed"

# The profile key does the same (network.host_ports).
cat >"$D/ports.toml" <<EOF2
extends = "base"
[network]
mode = "filtered"
host_ports = [$HP]
EOF2
run_sbx run --profile "$D/ports.toml" -- "$py" -c "$client" "$HP" "$OTHER"
expect_rc 0 "host_ports profile client ran"
expect_out "$HP got $HP" "network.host_ports = [$HP] reaches the host's 127.0.0.1:$HP"
expect_out "$OTHER error ECONNREFUSED" "and not 127.0.0.1:$OTHER"

# A host port that is also an allowed port: sbx's egress listener holds the
# port on every address inside and hands 127.0.0.1:N to the host port. The
# other allowed ports stay closed on loopback (no egress through 127.0.0.1).
run_sbx run --net filtered --host-port "$HP" --allow-port "$HP" --allow-port "$OTHER" -v -- \
  "$py" -c "$client" "$HP" "$OTHER" 443
expect_rc 0 "client with a host port that is also an allowed port ran"
expect_out "$HP got $HP" "--host-port $HP --allow-port $HP: still the host's 127.0.0.1:$HP"
expect_out "$OTHER error ECONNREFUSED" "an allowed port on loopback is refused (127.0.0.1:$OTHER)"
expect_out "443 error ECONNREFUSED" "and 127.0.0.1:443 too"
expect_no_out 'event net_blocked .*127\.0\.0\.1' "a refused loopback connect is not a blocked attempt"

# The supervisor's open files: each proxied connection holds up to six fds
# in sbx (two sockets, two pipes). sbx raises its own soft limit to the hard
# one once the sandbox has started, and the sandbox keeps the caller's. Out
# of fds anyway (hard limit 64), connections are reset and that is reported:
# a warning with the fix and `limit` records of kind open_files.
HOLD=$(pick 5434)
"$py" -c '
import resource, socket, sys
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(512)
open("hold.ready", "w").close()
keep = []
while True:
    c, _ = s.accept()
    try:
        c.sendall(b"ok"); keep.append(c)
    except OSError:
        pass' "$HOLD" &
holder=$!
trap 'kill $servers $holder 2>/dev/null; _cleanup_scratch' EXIT
for _ in $(seq 50); do [[ -e hold.ready ]] && break; sleep 0.1; done
[[ -e hold.ready ]] || fail "the holding test server did not start"
many='import socket, sys, resource
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
if int(sys.argv[2]) > soft - 16:
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
ok = err = 0; keep = []
for _ in range(int(sys.argv[2])):
    try:
        c = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
        keep.append(c)
        ok += c.recv(2) == b"ok"
    except OSError:
        err += 1
print("nofile", resource.getrlimit(resource.RLIMIT_NOFILE)[0], "ok", ok, "err", err)'
hard=$(ulimit -Hn)
if [[ $hard == unlimited ]] || ((hard >= 8192)); then
  OUT=$(ulimit -Sn 64 && "$SBX" run --net filtered --host-port "$HOLD" -v -- "$py" -c "$many" "$HOLD" 40 2>&1 </dev/null)
  RC=$?
  expect_rc 0 "40 connections held open with a soft open-file limit of 64"
  expect_out "nofile 64 ok 40 err 0" "all 40 carried (sbx raised its own soft limit), the sandbox keeps 64"
  expect_no_out "open_files" "and nothing was shed"
  # The cap on proxied connections open at once (1024): one more is refused.
  run_sbx run --net filtered --host-port "$HOLD" -- "$py" -c "$many" "$HOLD" 1030
  expect_rc 0 "1030 connections held open"
  expect_out "ok 1024 err 6" "1024 carried, the 6 over the cap reset"
  expect_out "warning: the sandbox holds 1024 proxied connections open, sbx's limit" \
    "a warning says why"
else
  echo "# hard open-file limit $hard < 8192: raise and connection-cap checks skipped"
fi
OUT=$(ulimit -n 64 && "$SBX" run --net filtered --host-port "$HOLD" -v -- "$py" -c "$many" "$HOLD" 40 2>&1 </dev/null)
RC=$?
expect_rc 0 "40 connections with a hard open-file limit of 64"
expect_out "nofile 64 ok [0-9]+ err [1-9][0-9]*" "some are reset: sbx has no fd left for them"
expect_out "warning: sbx ran out of file descriptors \(open-file limit 64\).*raise the hard open-file limit" \
  "a warning says so, with the fix"
expect_out 'event limit .*"kind":"open_files".*"limit":64' "and the audit trail has open_files limit records"
# Too few fds to take over the sandbox's listeners at all: sbx's error, the fix.
OUT=$(ulimit -n 64 && "$SBX" run --net filtered $(printf -- '--allow-port %s ' $(seq 20000 20099)) -- true 2>&1 </dev/null)
RC=$?
expect_rc 125 "100 allowed ports with an open-file limit of 64 is sbx's error"
expect_out "ran out of file descriptors taking over the sandbox's network sockets \(open-file limit 64\)" \
  "which says so"
expect_out "fix: raise the hard open-file limit" "with the fix"

# Resolvers at any address (127.0.0.53 as systemd-resolved's stub, a
# hard-coded public one, an IPv6 one) are all answered by the DNS filter, and
# each answer comes from the address the query went to: resolvers drop
# answers from another address.
resolver='import socket, struct, sys
for addr in sys.argv[1:]:
    fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_DGRAM); s.settimeout(3)
    q = struct.pack(">HHHHHH", 0x5b58, 0x0100, 1, 0, 0, 0) + b"\x07invalid\x00\x00\x01\x00\x01"
    try:
        s.sendto(q, (addr, 53)); data, src = s.recvfrom(512)
        print(addr, "answered from", src[0], "id", hex(struct.unpack(">H", data[:2])[0]))
    except OSError as e:
        print(addr, "error", e)'
run_sbx run --net filtered -- "$py" -c "$resolver" 127.0.0.53 127.0.0.1 198.51.100.53 2001:db8::53 ::1
expect_rc 0 "resolver client ran"
for a in 127.0.0.53 127.0.0.1 198.51.100.53 2001:db8::53 ::1; do
  expect_out "(^|[[:space:]])$a answered from $a id 0x5b58" "a query to $a:53 is answered from $a"
done

# A busy host port for --publish fails before anything runs.
run_sbx run --net filtered --publish "$HP:8000" -- true
expect_rc 125 "--publish on a busy host port is sbx's error"
expect_out "cannot publish port 8000: 127.0.0.1:$HP: Address already in use" "and says which port"
expect_out "fix: choose a free host port" "and the fix"

# The acceptance, with the flag: --publish 8080:8000 exposes a server started
# inside the sandbox on 127.0.0.1:8000 to the host's 127.0.0.1:8080.
server='import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 8000)); s.listen(1)
c, _ = s.accept(); c.sendall(b"hello from the sandbox " + c.recv(64)); c.close()'
"$SBX" run --net filtered --publish "$PUB:8000" -- "$py" -c "$server" >sbx.out 2>&1 </dev/null &
sbx_pid=$!
got=$("$py" -c '
import socket, sys, time
for _ in range(100):
    try:
        s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=2)
        s.sendall(b"ping"); d = s.recv(64)
        if d: print(d.decode()); break
    except OSError:
        pass
    time.sleep(0.1)' "$PUB")
wait "$sbx_pid"
rc=$?
[[ $got == "hello from the sandbox ping" ]] || fail "publish $PUB:8000: got '$got' (sbx: $(cat sbx.out))"
pass "--publish $PUB:8000: host 127.0.0.1:$PUB reaches the server inside on 8000"
[[ $rc -eq 0 ]] || fail "sandbox with the published server exited $rc: $(cat sbx.out)"
pass "the sandboxed server exited cleanly"

"$py" -c "import socket; socket.create_connection(('127.0.0.1', $PUB), timeout=1)" 2>/dev/null &&
  fail "127.0.0.1:$PUB still accepts after the sandbox ended"
pass "the published port closes with the sandbox"

done_testing
