#!/usr/bin/env bash
# Live control of a running sandbox (docs/control.md, issue 8 acceptance):
# sbx ps lists it; late.test is refused until `sbx network allow NAME
# --domain late.test`, after which a lookup + connect succeeds without a
# restart, and `sbx network deny` refuses it again and resets the connections
# already open to it (HTTP and an opaque port) but not another name's, on
# another address or the same one; a range's deny resets a connection into
# it; the changes are audit events; a second sandbox of the same name is refused; `sbx audit -f NAME`
# follows the log and ends with the sandbox; `sbx stop NAME` ends it and its
# own sbx exits 143; its state dir is gone; a kill -9'd sbx's stale state is
# cleaned by the next sbx ps; a sandboxed process cannot use a control socket.
source "$SBX_SOURCE_DIR/tests/lib.sh"
source "$SBX_SOURCE_DIR/tests/net/fixture.sh"
py=/usr/bin/python3
[[ -x $py ]] || skip "needs /usr/bin/python3"
command -v curl >/dev/null || skip "needs curl"
need_net_fixture

if is_root; then base=/run/sbx
elif [[ ${XDG_RUNTIME_DIR:-} == /* ]]; then base=$XDG_RUNTIME_DIR/sbx
else base=/tmp/sbx-$(id -u); fi

D=$(scratch)
cd "$D" || fail "cd $D"
mkdir -p "$D/logs" "$D/x"
chmod 777 "$D/x"
cp "$SBXNET_CERT" "$D/ca.pem"
cat >"$D/net.toml" <<EOF
extends = "base"
[network]
mode = "filtered"
allow_ports = [80, 7]
opaque_ports = [7]
allow_domains = ["good.test", "edge.cdn.test"]
dns_upstream = ["$SBXNET_DNS"]
EOF
name="ctl-$$"
log=$D/logs/audit.jsonl
sbx_pid=""
cleanup_sandbox() { [[ -n $sbx_pid ]] && kill -9 "$sbx_pid" 2>/dev/null; }
saved_base=""  # root: /run/sbx moved aside for the first-run check below
restore_base() { [[ -n $saved_base ]] && rm -rf /run/sbx && mv "$saved_base" /run/sbx; }
trap 'cleanup_sandbox; restore_base; _cleanup_scratch' EXIT

# The sandbox: try late.test (refused), wait for "go", try again (allowed
# now), wait for "go2", try again (denied again), then sleep until stopped.
# Meanwhile hold.py keeps connections open across a deny, in three rounds
# (a: late.test HTTP keep-alive and opaque port 7, edge.cdn.test on another
# address; b: addresses the allowed range admits, one of them silent, so the
# proxy is still connecting upstream; c: late.test and good.test on one
# address): it opens them, writes x/open.ROUND, waits for
# x/check.ROUND (after the deny), then uses each again: "alive" or "reset".
# Results go to files in the work dir ($D/x is writable inside).
# (HTTP: the fixture's certificate does not name late.test; the egress proxy
# checks the Host header on port 80 as it checks the SNI on 443.)
cat >"$D/x/hold.py" <<'EOF'
import os, socket, sys, time

def http(s, host):
    s.sendall(f"GET /keep HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        d = s.recv(4096)
        if not d:
            raise EOFError
        buf += d
    head, body = buf.split(b"\r\n\r\n", 1)
    n = [int(l.split(b":")[1]) for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")][0]
    while len(body) < n:
        d = s.recv(4096)
        if not d:
            raise EOFError
        body += d

def echo(s, _host):
    s.sendall(b"ping")
    if s.recv(4) != b"ping":
        raise EOFError

def pending(s, _host):  # no answer expected yet: the proxy is still connecting
    if not s.recv(4):
        raise EOFError

rnd, conns = sys.argv[1], []
for spec in sys.argv[2:]:
    label, host, port, *how = spec.split(":")
    use = echo if port == "7" else http
    s = socket.create_connection((host, int(port)), timeout=5)
    if how == ["pending"]:
        s.sendall(b"ping")
        use = pending
    else:
        use(s, host)
    conns.append((label, host, use, s))
open(f"x/open.{rnd}", "w").write("open\n")
while not os.path.exists(f"x/check.{rnd}"):
    time.sleep(0.05)
out = []
for label, host, use, s in conns:
    s.settimeout(8)
    try:
        use(s, host)
        out.append(label + "=alive")
    except ConnectionResetError:
        out.append(label + "=reset")
    except Exception as e:
        out.append(f"{label}={type(e).__name__}")
open(f"x/cut.{rnd}", "w").write(" ".join(out) + "\n")
EOF
hold='python3 x/hold.py'
try='curl -4 -sS --max-time 5 -o /dev/null -w "%{http_code}" http://late.test/ 2>&1; echo " rc=$?"'
script="
  { $try; } >x/before
  while [ ! -e x/go ]; do sleep 0.05; done
  { $try; } >x/after
  $hold a late80:late.test:80 late7:late.test:7 edge80:edge.cdn.test:80 >x/hold.a 2>&1 &
  while [ ! -e x/go2 ]; do sleep 0.05; done
  { $try; } >x/after_deny
  while [ ! -e x/go.b ]; do sleep 0.05; done
  $hold b range7:203.0.113.10:7 silent7:203.0.113.77:7:pending >x/hold.b 2>&1 &
  while [ ! -e x/go.c ]; do sleep 0.05; done
  $hold c late80:late.test:80 good80:good.test:80 >x/hold.c 2>&1 &
  exec sleep 300"
"$SBX" run -p "$D/net.toml" --rw "$D/x" --name "$name" --audit-log "$log" -- sh -c "$script" \
  >"$D/run.out" 2>&1 </dev/null &
sbx_pid=$!
# One round of hold.py: wait until its connections are open, deny
# (sbx network deny NAME ARGS...), expect the note's count, let it check.
deny_round() {
  local rnd=$1 count=$2 want=$3
  shift 3
  for _ in $(seq 200); do [[ -s $D/x/open.$rnd || -s $D/x/hold.$rnd ]] && break; sleep 0.05; done
  [[ -s $D/x/open.$rnd ]] || fail "round $rnd: hold.py did not connect: $(cat "$D/x/hold.$rnd" 2>/dev/null)"
  run_sbx network deny "$name" "$@"
  expect_rc 0 "round $rnd: sbx network deny NAME $*"
  expect_out "$count cut" "round $rnd: the deny says: $count cut"
  touch "$D/x/check.$rnd"
  for _ in $(seq 400); do [[ -s $D/x/cut.$rnd ]] && break; sleep 0.05; done
  [[ $(cat "$D/x/cut.$rnd" 2>/dev/null) == "$want" ]] ||
    fail "round $rnd: after the deny: $(cat "$D/x/cut.$rnd" "$D/x/hold.$rnd" 2>/dev/null) (want: $want)"
  pass "round $rnd: the deny reset what it denies and nothing else ($want)"
}
for _ in $(seq 200); do [[ -s $D/x/before ]] && break; sleep 0.05; done
[[ -s $D/x/before ]] || fail "the sandbox did not start: $(cat "$D/run.out")"
[[ $(cat "$D/x/before") != *"rc=0"* ]] || fail "late.test reachable before the allow: $(cat "$D/x/before")"
pass "late.test is refused before the change ($(cat "$D/x/before"))"

# --- sbx ps
run_sbx ps
expect_rc 0 "sbx ps"
expect_out "$name +$sbx_pid +[0-9]+ +[^ ]*net.toml" "sbx ps lists the sandbox with its sbx pid and profile"
run_sbx ps --json
expect_rc 0 "sbx ps --json"
echo "$OUT" | "$py" -c "
import json, sys
rows = [r for r in json.load(sys.stdin) if r['name'] == '$name']
assert len(rows) == 1, rows
r = rows[0]
assert r['sbx_pid'] == $sbx_pid and r['init_pid'] > 1 and r['running'], r
assert r['audit_log'] == '$log', r
assert r['usage']['memory_bytes'] > 0 and r['usage']['pids'] >= 2, r
assert r['blocked'] >= 1, r   # the refused late.test query
assert r['uptime_ms'] >= 0, r
" || fail "sbx ps --json: $OUT"
pass "sbx ps --json: pids, audit log, memory, blocked count"
[[ -d $base/$name && $(stat -c %a "$base/$name") == 700 ]] || fail "state dir $base/$name (mode 700)"
[[ $(stat -c %a "$base/$name/control.sock") == 600 ]] || fail "control socket mode $(stat -c %a "$base/$name/control.sock")"
pass "state dir 0700, control socket 0600"

# --- names are unique among running sandboxes
# A live name is refused before anything of the run exists (the CLI looks
# when it makes its controller); the run's command never ran.
run_sbx run --net none --name "$name" --rw "$D" -- touch "$D/second-ran"
expect_rc 125 "a second sandbox with the same name is refused"
expect_out "already running" "and the error says why"
[[ ! -e $D/second-ran ]] || fail "the refused sandbox's command ran"
pass "the refused sandbox's command never ran"
# A name taken while this run starts (its claim held 1.5 s by a test
# build's hook, sbx-test-hooks): refused at the claim, long after init's
# mounts, and its command never ran (init waits for the claim), with the
# early start and the usual one.
HOOKS=$SBX_BUILD_DIR/sbx-test-hooks
[[ -x $HOOKS ]] || fail "$HOOKS is missing: it is built with the tests (cmake --build B --target sbx-test-hooks)"
for early in 1 0; do
  racer="$name-race$early"
  SBX_EARLY_INIT=$early SBX_TEST_CONTROLLER_DELAY_MS=1500 "$HOOKS" run --net none --name "$racer" \
    --rw "$D" -- touch "$D/slow-ran" >"$D/slow.out" 2>&1 </dev/null &
  slow=$!
  sleep 0.5
  "$SBX" run --net none --name "$racer" -- sleep 3 >/dev/null 2>&1 </dev/null &
  taker=$!
  wait "$slow"
  RC=$?
  OUT=$(cat "$D/slow.out")
  kill "$taker" 2>/dev/null
  wait "$taker" 2>/dev/null
  expect_rc 125 "SBX_EARLY_INIT=$early: a name taken during the start is refused at the claim"
  expect_out "already running" "SBX_EARLY_INIT=$early: and the error says why"
  [[ ! -e $D/slow-ran ]] || fail "SBX_EARLY_INIT=$early: the command ran before its claim was refused"
  pass "SBX_EARLY_INIT=$early: init waits for the name claim before the command"
done

# --- network show / allow
run_sbx network show "$name" --json
expect_rc 0 "sbx network show"
expect_out '"mode": "filtered"' "shows the mode"
run_sbx network allow "$name" --domain late.test
expect_rc 0 "sbx network allow NAME --domain late.test"
run_sbx network show "$name" --json
echo "$OUT" | "$py" -c "
import json, sys
j = json.load(sys.stdin)
assert j['overlay']['allow_domains'] == ['late.test'], j['overlay']
assert 'good.test' in j['allow_domains'], j
" || fail "network show after allow: $OUT"
pass "network show lists the live allow"
touch "$D/x/go"
for _ in $(seq 200); do [[ -s $D/x/after ]] && break; sleep 0.05; done
[[ $(cat "$D/x/after" 2>/dev/null) == "200 rc=0" ]] || fail "late.test after the allow: $(cat "$D/x/after" 2>/dev/null)"
pass "after the allow, a lookup + HTTP connect to late.test succeeds without restart"
run_sbx network show "$name"
expect_out '198\.51\.100\.10 +late\.test' "the resolved address is listed in the allow sets"

# --- deny again: also resets the connections already open to it, and only
# those (edge.cdn.test, on another address, stays)
deny_round a "2 open connections" "late80=reset late7=reset edge80=alive" --domain late.test
touch "$D/x/go2"
for _ in $(seq 200); do [[ -s $D/x/after_deny ]] && break; sleep 0.05; done
[[ -s $D/x/after_deny && $(cat "$D/x/after_deny") != *"rc=0"* ]] ||
  fail "late.test still reachable after the deny: $(cat "$D/x/after_deny" 2>/dev/null)"
pass "after the deny, late.test is refused again ($(cat "$D/x/after_deny"))"

# bad requests are refused with a reason
run_sbx network allow "$name" --cidr 10.0.0.0/8
expect_rc 125 "allowing a private range is refused"
expect_out "overlaps the denied range" "with the reason"
run_sbx network allow "$name" --cidr 203.0.113.0/24
expect_rc 0 "allowing a public range"
# connections the range admits (opaque port, by address) end with its deny,
# also one the proxy is still connecting upstream (203.0.113.77 drops SYNs)
touch "$D/x/go.b"
deny_round b "2 open connections" "range7=reset silent7=reset" --cidr 203.0.113.0/24
run_sbx network allow "$name"
expect_rc 125 "allow without --domain/--cidr is a usage error"
run_sbx network allow no-such-sandbox-$$ --domain x.test
expect_rc 125 "an unknown sandbox name"
expect_out "no running sandbox" "is named as such"

# --- a deny of one name leaves another name's connection to the same
# address open (late.test and good.test are both 198.51.100.10)
run_sbx network allow "$name" --domain late.test
expect_rc 0 "late.test allowed again"
touch "$D/x/go.c"
deny_round c "1 open connection" "late80=reset good80=alive" --domain late.test

# --- a process inside a sandbox cannot use a control socket, even one made
# visible to it (--rw of the state base): the user namespace check refuses.
inside='
import socket, sys, json
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
try:
    s.connect(sys.argv[1])
except OSError as e:
    print("connect failed", e.errno); sys.exit(0)
try:  # the server may answer (refusal) and close before the request is sent
    s.send(json.dumps({"op": "network", "action": "allow", "domain": "evil.test"}).encode())
except OSError:
    pass
print("reply", s.recv(65536).decode())'
run_sbx run --net none --rw "$base" -- "$py" -c "$inside" "$base/$name/control.sock"
expect_rc 0 "the probe ran inside"
expect_out 'reply .*(user namespace|may not control).*"ok":false' "the control socket refuses a sandboxed peer (uid or user namespace)"
run_sbx network show "$name" --json
expect_no_out 'evil\.test' "and nothing was changed"
run_sbx run --net none -- "$py" -c "$inside" "$base/$name/control.sock"
expect_out 'connect failed' "without --rw the state dir is not even visible inside"

# --- audit -f follows until the sandbox ends
"$SBX" audit -f "$name" --json >"$D/follow.out" 2>&1 &
follow_pid=$!
sleep 0.5
# --- stop: SIGTERM, the sandbox's sbx exits 143
run_sbx stop "$name" --grace 5s
expect_rc 0 "sbx stop NAME"
wait "$sbx_pid"
rc=$?
sbx_pid=""
[[ $rc -eq 143 ]] || fail "the stopped sandbox's sbx exited $rc, want 143: $(cat "$D/run.out")"
pass "the stopped sandbox's own sbx exited 143"
for _ in $(seq 100); do kill -0 "$follow_pid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$follow_pid" 2>/dev/null && { kill "$follow_pid"; fail "sbx audit -f did not end with the sandbox"; }
wait "$follow_pid" || fail "sbx audit -f failed: $(cat "$D/follow.out")"
pass "sbx audit -f ended when the sandbox did"
grep -q '"type":"sandbox_exit"' "$D/follow.out" || fail "audit -f missed sandbox_exit: $(tail -3 "$D/follow.out")"
grep -q '"action":"stop"' "$D/follow.out" || fail "audit -f missed the stop event"
pass "audit -f printed the stop event and sandbox_exit"
[[ ! -e $base/$name ]] || fail "state dir $base/$name left behind"
pass "the state dir is removed at exit"

# --- the log: control events, schema
OUT=$("$py" "$SBX_SOURCE_DIR/tests/integration/audit_validate.py" "$SBX_SOURCE_DIR/docs/audit.schema.json" "$log" 2>&1) ||
  fail "schema: $OUT"
pass "the log validates ($OUT)"
OUT=$("$py" - "$log" <<'EOF' 2>&1
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
ctl = [r for r in recs if r["type"] == "control"]
acts = [(r["action"], r.get("domain", r.get("cidr")), r.get("applied")) for r in ctl]
want = [("network_allow", "late.test", True), ("network_deny", "late.test", True),
        ("network_allow", "10.0.0.0/8", False), ("network_allow", "203.0.113.0/24", True),
        ("network_deny", "203.0.113.0/24", True), ("network_allow", "late.test", True),
        ("network_deny", "late.test", True), ("stop", None, None)]
assert acts == want, acts
assert all(r["peer_uid"] >= 0 and r["blocked"] is False for r in ctl), ctl
late = [r for r in recs if r["type"] == "dns" and r.get("name") == "late.test"]
# (the resolver retries a REFUSED query: collapse repeats)
seq = [v for i, v in enumerate(r["verdict"] for r in late) if i == 0 or late[i - 1]["verdict"] != v]
assert seq == ["unlisted", "allowed", "denied", "allowed"], [(r["verdict"], r["qtype"]) for r in late]
conn = [r for r in recs if r["type"] == "net_connect" and r.get("name") == "late.test"]
# curl's, then the cut ones (rounds a and c; in any order within a round)
assert sorted((r["allowed"], r["verdict"], r["port"]) for r in conn) == [
    (False, "denied_live", 7), (False, "denied_live", 80), (False, "denied_live", 80),
    (True, "allowed", 80)], conn
assert all(r["bytes_up"] > 0 and r["bytes_down"] > 0 for r in conn), conn
deny = [r for r in ctl if r["action"] == "network_deny"]
assert [r["cut_connections"] for r in deny] == [2, 2, 1], deny
for address in ("203.0.113.10", "203.0.113.77"):  # relayed / still connecting
    byrange = [r for r in recs if r["type"] == "net_connect" and r["address"] == address]
    assert [(r["allowed"], r["verdict"], r["port"]) for r in byrange] == [(False, "denied_live", 7)], byrange
end = recs[-1]
assert end["type"] == "sandbox_exit" and end["exit_code"] == 143 and end["signal"] == 15, end
print("ok")
EOF
) || fail "log contents: $OUT"
pass "the log records allow/deny/refused/stop as control events, the late.test verdicts, the connections (one allowed, three cut by denies, two by a range deny), exit 143"

# --- kill -9 of sbx leaves a stale state dir; the next sbx ps cleans it
"$SBX" run --net none --name "$name-k" -- sleep 300 >/dev/null 2>&1 </dev/null &
kpid=$!
for _ in $(seq 100); do [[ -S $base/$name-k/control.sock ]] && break; sleep 0.05; done
[[ -S $base/$name-k/control.sock ]] || fail "second sandbox did not start"
# --- a sandbox that may write the base (--rw over it) puts its own server
# in place of a live sandbox's control socket: sbx stop must not take the
# fake's "ok" for the sandbox's (it would report a stop that never happened).
"$SBX" run --net none --name "$name-f" -- sleep 300 >/dev/null 2>&1 </dev/null &
fpid=$!
for _ in $(seq 100); do [[ -S $base/$name-f/control.sock ]] && break; sleep 0.05; done
[[ -S $base/$name-f/control.sock ]] || fail "the sandbox to impersonate did not start"
fake='
import os, socket, sys
path = sys.argv[1]
os.unlink(path)
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.bind(path)
s.listen(4)
open(path + ".ready", "w").close()
s.settimeout(20)
c, _ = s.accept()
c.recv(65536)
c.send(b"{\"ok\": true}")
print("answered")'
"$SBX" run --net none --rw "$base" -- "$py" -c "$fake" "$base/$name-f/control.sock" >"$D/fake.out" 2>&1 </dev/null &
fake_pid=$!
for _ in $(seq 100); do [[ -e $base/$name-f/control.sock.ready ]] && break; sleep 0.05; done
[[ -e $base/$name-f/control.sock.ready ]] || fail "the fake server did not start: $(cat "$D/fake.out")"
run_sbx stop "$name-f"
expect_rc 125 "sbx stop refuses a control socket served from inside a sandbox"
expect_out "not served by an sbx" "and says why"
kill -0 "$fpid" 2>/dev/null || fail "the sandbox behind the replaced socket ended"
pass "sbx stop did not report a stop that never happened; the sandbox still runs"
kill "$fake_pid" "$fpid" 2>/dev/null
wait "$fake_pid" "$fpid" 2>/dev/null
# The same sandbox moves another live sandbox's genuine socket over the
# first one's: a request for the first must not act on the second.
"$SBX" run --net none --name "$name-a" -- sleep 300 >/dev/null 2>&1 </dev/null &
apid=$!
"$SBX" run --net none --name "$name-b" -- sleep 300 >/dev/null 2>&1 </dev/null &
bpid=$!
for _ in $(seq 100); do
  [[ -S $base/$name-a/control.sock && -S $base/$name-b/control.sock ]] && break
  sleep 0.05
done
run_sbx run --net none --rw "$base" -- mv "$base/$name-b/control.sock" "$base/$name-a/control.sock"
expect_rc 0 "a sandbox that may write the base moved one control socket over another"
run_sbx stop "$name-a"
expect_rc 125 "sbx stop refuses the other sandbox's socket"
expect_out "control socket of '$name-b', not of '$name-a'" "and says whose it is"
kill -0 "$apid" 2>/dev/null && kill -0 "$bpid" 2>/dev/null ||
  fail "a sandbox ended although its stop was refused"
pass "a request reaches only the sandbox it names"
kill "$apid" "$bpid" 2>/dev/null
wait "$apid" "$bpid" 2>/dev/null
run_sbx kill "$name-k" --signal USR1
expect_rc 0 "sbx kill --signal USR1 is delivered"
wait "$kpid"
rc=$?
[[ $rc -eq 138 ]] || fail "sleep killed by SIGUSR1: sbx exited $rc, want 138"
pass "sbx kill --signal USR1: the command died of SIGUSR1 (138)"
"$SBX" run --net none --name "$name-k" -- sleep 300 >/dev/null 2>&1 </dev/null &
kpid=$!
for _ in $(seq 100); do [[ -S $base/$name-k/control.sock ]] && break; sleep 0.05; done
kill -9 "$kpid"
wait "$kpid" 2>/dev/null
[[ -d $base/$name-k ]] || fail "expected a stale state dir after kill -9"
pass "kill -9 of sbx leaves its state dir"
run_sbx ps
expect_rc 0 "sbx ps after a kill -9"
expect_no_out "$name-k" "the dead sandbox is not listed"
[[ ! -e $base/$name-k ]] || fail "stale state dir not cleaned: $(ls -la "$base/$name-k")"
pass "the stale state dir was cleaned by sbx ps"
run_sbx kill "$name-k"
expect_rc 125 "sbx kill of a dead sandbox fails"

# The base: kept (0700) in the user's own runtime dir, holding at most the
# emptied state dir of the last sandbox (.spare) for the next start to take;
# removed from the shared /tmp once empty (docs/control.md).
run_sbx run --net none -- true
expect_rc 0 "a run after the others"
if [[ $base == /tmp/* ]]; then
  [[ ! -e $base ]] || fail "$base stayed behind in /tmp: $(ls -la "$base")"
  pass "the empty base $base was removed from /tmp"
else
  [[ -d $base && $(stat -c %a "$base") == 700 ]] || fail "$base is gone or not 0700"
  [[ $(ls -A "$base") == .spare ]] || fail "$base holds more than the spare: $(ls -A "$base")"
  [[ $(stat -c %a "$base/.spare") == 700 && -z $(ls -A "$base/.spare") ]] ||
    fail "the spare is not an empty 0700 dir: $(ls -la "$base/.spare")"
  pass "the base $base stays, 0700, holding only the empty spare state dir"
  spare=$(stat -c %i "$base/.spare")
  "$SBX" run --net none --name "$name-s" -- sleep 300 >/dev/null 2>&1 </dev/null &
  spid=$!
  for _ in $(seq 100); do [[ -S $base/$name-s/control.sock ]] && break; sleep 0.05; done
  [[ $(stat -c %i "$base/$name-s") == "$spare" && ! -e $base/.spare ]] ||
    fail "the next start did not take the spare: $(ls -lai "$base")"
  run_sbx ps
  expect_out "$name-s" "the sandbox in the former spare is listed"
  run_sbx kill "$name-s"
  wait "$spid"
  [[ $(stat -c %i "$base/.spare") == "$spare" && -z $(ls -A "$base/.spare") ]] ||
    fail "the finished sandbox's emptied dir is not the spare: $(ls -lai "$base" "$base/.spare")"
  run_sbx ps
  [[ -d $base/.spare ]] || fail "sbx ps swept the spare as a stale state dir"
  pass "the next start takes the spare (same inode), its end puts it back, sbx ps leaves it"
fi
# Unprivileged with a runtime dir outside /tmp (XDG_RUNTIME_DIR): the spare
# there too (as root the base is always /run/sbx, checked above).
if ! is_root; then
  X=$(mktemp -d /var/tmp/sbx-xdg.XXXXXX)
  _SCRATCH_DIRS+=("$X")
  chmod 700 "$X"
  XDG_RUNTIME_DIR=$X "$SBX" run --net none -- true </dev/null >/dev/null 2>&1 ||
    fail "a run with XDG_RUNTIME_DIR=$X failed"
  [[ -d $X/sbx/.spare && -z $(ls -A "$X/sbx/.spare") && $(ls -A "$X/sbx") == .spare ]] ||
    fail "no empty spare in $X/sbx: $(ls -la "$X/sbx")"
  spare=$(stat -c %i "$X/sbx/.spare")
  XDG_RUNTIME_DIR=$X "$SBX" run --net none -- true </dev/null >/dev/null 2>&1 ||
    fail "a second run with XDG_RUNTIME_DIR=$X failed"
  [[ $(stat -c %i "$X/sbx/.spare") == "$spare" && $(ls -A "$X/sbx") == .spare ]] ||
    fail "the second run did not reuse the spare: $(ls -lai "$X/sbx")"
  pass "unprivileged, \$XDG_RUNTIME_DIR/sbx keeps one spare state dir, reused by the next run"
fi
# Root's first run after boot (/run is a tmpfs): the base does not exist
# yet. It is made before the planning, so the sandbox's mount plan masks it
# and the run's own state dir, claimed later, is never seen inside.
if is_root; then
  saved_base=/run/sbx.saved-$$
  mv /run/sbx "$saved_base" || fail "cannot move /run/sbx aside"
  OUT=$("$SBX" run --net none -- sh -c 'ls -A /run/sbx; echo "end $?"' 2>&1 </dev/null)
  restore_base
  saved_base=""
  [[ $OUT == "end 0" ]] || fail "on the first run /run/sbx is visible inside: $OUT"
  pass "the first run after boot: /run/sbx is masked (empty) inside"
fi

done_testing
