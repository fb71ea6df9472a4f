#!/usr/bin/env bash
# Signals sent to sbx reach the command; --timeout kills even a stopped
# command; kill -9 of sbx leaves nothing of the sandbox alive.
source "$SBX_SOURCE_DIR/tests/lib.sh"
dir=$(scratch)

# start_sbx FILE ARGS...: sbx in the background, output in FILE; sets PID.
start_sbx() {
  local out=$1; shift
  "$SBX" "$@" >"$out" 2>&1 </dev/null &
  PID=$!
}
wait_for() {  # wait_for FILE TEXT
  for _ in $(seq 100); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
  fail "timed out waiting for '$2' in $1: $(cat "$1")"
}

for sig in INT TERM HUP QUIT USR1 USR2; do
  start_sbx "$dir/$sig" run --profile airgapped -- sh -c \
    "trap 'echo got-$sig; exit 7' $sig; echo ready; while :; do sleep 0.1; done"
  wait_for "$dir/$sig" ready
  kill -s "$sig" "$PID"
  wait "$PID"
  RC=$? OUT=$(cat "$dir/$sig")
  expect_rc 7 "SIG$sig sent to sbx reaches the command's handler"
  expect_out "got-$sig" "the command saw SIG$sig"
done

start_sbx "$dir/int-default" run --profile airgapped -- sh -c 'echo ready; exec sleep 100'
wait_for "$dir/int-default" ready
kill -INT "$PID"
wait "$PID"
RC=$? OUT=$(cat "$dir/int-default")
expect_rc 130 "a command without a handler dies of SIGINT: 128+2"

# --timeout on a command that stopped itself and ignores SIGTERM: only the
# SIGKILL after --kill-after ends it.
start=$(date +%s)
run_sbx run --profile airgapped --timeout 1s --kill-after 1s -- sh -c 'trap "" TERM; kill -STOP $$; sleep 100'
elapsed=$(($(date +%s) - start))
expect_rc 137 "a stopped command that ignores SIGTERM is SIGKILLed at timeout"
((elapsed < 10)) || fail "timeout took ${elapsed}s"
pass "timeout + kill-after took ${elapsed}s"

start=$(date +%s)
run_sbx run --profile airgapped --timeout 1s -- sh -c 'kill -STOP $$; sleep 100'
elapsed=$(($(date +%s) - start))
expect_rc 143 "a stopped command gets the timeout's SIGTERM (SIGCONT wakes it)"
((elapsed < 5)) || fail "timeout took ${elapsed}s"
pass "timeout took ${elapsed}s"

# kill -9 of sbx: init dies with it (PDEATHSIG), the pid namespace with init.
marker=$((300000 + RANDOM))
start_sbx "$dir/kill9" run --profile airgapped -- sh -c "sleep $marker & sleep $marker & echo ready; wait"
wait_for "$dir/kill9" ready
pgrep -f "^sleep $marker\$" >/dev/null || fail "the sandbox's sleep is not visible from the host"
kill -9 "$PID"
wait "$PID" 2>/dev/null
for _ in $(seq 50); do pgrep -f "^sleep $marker\$" >/dev/null || break; sleep 0.1; done
if pgrep -af "^sleep $marker\$"; then fail "sandbox processes survived kill -9 of sbx"; fi
pass "kill -9 of sbx leaves no sandbox process alive"

done_testing
