#!/usr/bin/env bash
# What the command holds: no capability, no_new_privs, only fds 0-2, its own
# pid namespace, no access to init (pid 1).
source "$SBX_SOURCE_DIR/tests/lib.sh"

run_sbx run --profile airgapped -- cat /proc/self/status
expect_rc 0 "read /proc/self/status"
for cap in CapInh CapPrm CapEff CapBnd CapAmb; do
  expect_out "$cap:[[:space:]]+0000000000000000" "$cap is zero"
done
expect_out $'NoNewPrivs:\t1' "no_new_privs is set"

# The shell's own fds, listed by a child (ls's own directory fd is not the shell's).
run_sbx run --profile airgapped -- sh -c 'ls /proc/$$/fd'
expect_rc 0 "list fds"
OUT=$(echo $OUT)
[[ $OUT == "0 1 2" ]] || fail "fds inside: '$OUT', want '0 1 2'"
pass "the command holds only fds 0 1 2"
exec 7</dev/null 9>/dev/null
run_sbx run --profile airgapped -- sh -c 'ls /proc/$$/fd'
OUT=$(echo $OUT)
[[ $OUT == "0 1 2" ]] || fail "fds inherited from sbx leak: '$OUT'"
pass "fds open in sbx (7, 9) do not reach the command"
exec 7<&- 9>&-
OUT=$("$SBX" run --profile airgapped -- sh -c 'ls /proc/$$/fd; readlink /proc/$$/fd/0' 2>&1 <&-)
OUT=$(echo $OUT)
[[ $OUT == "0 1 2 /dev/null" ]] || fail "sbx started with stdin closed: command fds '$OUT'"
pass "a closed stdin becomes /dev/null for the command"

marker=$((200000 + RANDOM))
sleep "$marker" &
host_sleep=$!
run_sbx run --profile airgapped -- ps -eo pid=,args=
kill "$host_sleep" 2>/dev/null
expect_rc 0 "ps runs"
expect_no_out "sleep $marker" "a host process is invisible"
expect_out '^ *1 ' "the sandbox has its own pid 1"
n=$(grep -c . <<<"$OUT")
((n <= 3)) || fail "ps sees $n processes: $OUT"
pass "ps sees only the sandbox's processes ($n)"

# init keeps capabilities over the sandbox's namespaces: the command must not
# reach it (non-dumpable, other user namespace).
run_sbx run --profile airgapped -- sh -c 'ls /proc/1/fd/ >/dev/null 2>&1 && echo OPEN; cat /proc/1/environ >/dev/null 2>&1 && echo ENVIRON; echo end'
expect_rc 0 "probe init"
expect_no_out "OPEN|ENVIRON" "init's fds and environment are out of reach"

run_sbx run --profile airgapped -- cat /proc/self/setgroups
expect_out "deny" "setgroups is denied in the command's user namespace"

# The command's user namespace is a child of the one that owns the
# sandbox's namespaces: asking for the owner of its own netns is refused
# (NS_GET_USERNS gives EPERM for a namespace outside the caller's subtree).
if [[ -x /usr/bin/python3 ]]; then
  run_sbx run --profile airgapped -- /usr/bin/python3 -c '
import fcntl, os
fd = os.open("/proc/self/ns/net", os.O_RDONLY)
try:
    fcntl.ioctl(fd, 0xb701)
    print("OWNER")
except PermissionError:
    print("EPERM")'
  expect_rc 0 "NS_GET_USERNS probe"
  expect_out "^EPERM$" "the command's user namespace does not own its netns (nested userns)"
fi

# The launch runs on one CPU where page faults are dear (docs/launch.md
# "Start-up time"; SBX_LAUNCH_PIN=1 forces it, =0 turns it off); the command
# gets the caller's CPU set back, also a restricted one (taskset), so nproc
# and a build's -j see every CPU sbx was given. The rest of this part runs
# pinned, so that the giving back is what it tests.
export SBX_LAUNCH_PIN=1
want=$(grep Cpus_allowed_list /proc/self/status)
cd "$(scratch)"
for pin in 1 0 ""; do
  for profile in airgapped standard; do
    OUT=$(SBX_LAUNCH_PIN=$pin "$SBX" run --profile "$profile" -- sh -c 'grep Cpus_allowed_list /proc/self/status; nproc' 2>/dev/null)
    [[ $OUT == "$want"$'\n'"$(nproc)" ]] || fail "the command's CPU set and nproc: '$OUT', want '$want' and $(nproc) (SBX_LAUNCH_PIN=$pin)"
    pass "the command has the caller's CPU set and nproc ($profile, SBX_LAUNCH_PIN=$pin)"
  done
done
# The supervisor stays on the launch CPU only while it waits for the launch:
# its first real work (here a forwarded signal) gives the caller's set back.
if (($(nproc) > 1)); then
  "$SBX" run --profile airgapped -- sh -c 'trap "" USR1; sleep 3' >/dev/null 2>&1 &
  sbx_pid=$!
  sleep 1
  before=$(grep Cpus_allowed_list "/proc/$sbx_pid/status")
  kill -USR1 "$sbx_pid"
  sleep 0.3
  after=$(grep Cpus_allowed_list "/proc/$sbx_pid/status")
  wait "$sbx_pid" || fail "sbx run with a forwarded SIGUSR1 failed"
  [[ $before != "$want" ]] || fail "the waiting supervisor is not on one CPU: '$before'"
  [[ $after == "$want" ]] || fail "after a forwarded signal the supervisor has '$after', want '$want'"
  pass "the supervisor waits on one CPU and gets the caller's set back with its first work"
  SBX_LAUNCH_PIN=0 "$SBX" run --profile airgapped -- sleep 2 >/dev/null 2>&1 &
  sbx_pid=$!
  sleep 1
  during=$(grep Cpus_allowed_list "/proc/$sbx_pid/status")
  wait "$sbx_pid" || fail "sbx run with SBX_LAUNCH_PIN=0 failed"
  [[ $during == "$want" ]] || fail "SBX_LAUNCH_PIN=0: the supervisor has '$during', want '$want'"
  pass "SBX_LAUNCH_PIN=0: nothing is pinned"
fi
if (($(nproc) > 1)) && command -v taskset >/dev/null; then
  # One CPU: nothing to pin, passed through as it is.
  OUT=$(taskset -c 1 "$SBX" run --profile airgapped -- grep Cpus_allowed_list /proc/self/status 2>&1)
  [[ $OUT =~ Cpus_allowed_list:.1$ ]] || fail "taskset -c 1 sbx run: the command has '$OUT'"
  pass "a one-CPU caller set (taskset -c 1) is what the command gets"
fi
if (($(nproc) > 2)) && command -v taskset >/dev/null; then
  # A restricted set of two: pinned for the launch, given back whole.
  OUT=$(taskset -c 1,2 "$SBX" run --profile airgapped -- grep Cpus_allowed_list /proc/self/status 2>&1)
  [[ $OUT =~ Cpus_allowed_list:.1-2$ ]] || fail "taskset -c 1,2 sbx run: the command has '$OUT'"
  pass "a restricted caller set (taskset -c 1,2) is what the command gets"
else
  echo "# (a restricted set of two CPUs needs 3 or more CPUs; this machine has $(nproc))"
fi

done_testing
