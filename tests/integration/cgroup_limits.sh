#!/usr/bin/env bash
# Resource limits end to end: --memory, --pids, --cpus through `sbx run`.
# Root (host: cgroup v1; VM: cgroup v2) and a user with a delegated cgroup v2
# subtree (VM, SBX_EXPECT_CGROUP=1) must get the limits enforced; a user
# without delegation (this host) must get one warning naming the fix.
source "$SBX_SOURCE_DIR/tests/lib.sh"

enforced_expected() { is_root || [[ ${SBX_EXPECT_CGROUP:-} == 1 ]]; }

# Probe: are limits enforced for this caller?
run_sbx run --net none --pids 32 -- true
if [[ $OUT == *"NOT enforced"* ]]; then
  enforced_expected && fail "limits not enforced although they should be: $OUT"
  expect_rc 0 "unenforceable limits only warn (limits not required)"
  expect_out 'Fix:.*Delegate=yes' "the warning names the fix (a delegated scope)"
  [[ $(grep -c 'NOT enforced' <<<"$OUT") -eq 1 ]] || fail "more than one warning: $OUT"
  pass "exactly one warning"
  done_testing
fi
expect_rc 0 "limits applied, command ran"

# --memory 64M: a hog that wants 300 MB is OOM-killed; sbx exits 137 and
# reports the OOM kill.
run_sbx run --net none -v --memory 64M -- bash -c 'a=$(head -c 300000000 /dev/zero | tr "\000" x); echo survived ${#a}'
expect_rc 137 "memory hog under --memory 64M is killed (exit 137)"
expect_no_out 'survived [0-9]' "the hog did not complete"
expect_out '[Oo][Oo][Mm]' "the OOM kill is reported"

# Many small processes over the limit: the OOM killer picks the largest in
# the group. Sandbox init shares sbx's address space (~6 MB resident) and the
# OOM killer kills every process sharing its victim's: init outside the group
# is what keeps it, and sbx, from being that victim. sbx must live to report
# the OOM kill (cgroup v1 kills a 3 MB tail and the command goes on: exit 0;
# v2's memory.oom.group kills the whole command: exit 137).
run_sbx run --net none -v --memory 64M -- sh -c '
  for i in $(seq 40); do (head -c 3000000 /dev/zero; sleep 20) | tail -c 3000000 >/dev/null & done
  sleep 6; echo still here'
[[ $RC == 0 || $RC == 137 ]] || fail "40 small processes over --memory 64M: rc=$RC: $OUT"
expect_out '[Oo][Oo][Mm]' "sbx lives to report the OOM kill among many small processes"

# A command within its memory limit is unaffected.
run_sbx run --net none --memory 64M -- bash -c 'a=$(head -c 8000000 /dev/zero | tr "\000" x); echo fine ${#a}'
expect_rc 0 "8 MB under --memory 64M runs"
expect_out 'fine 8000000' "and completes"

# --pids 32: spawning stops before 32 processes (the shell counts too;
# sandbox init is outside the group); the shell aborts on the failed fork and sbx returns.
run_sbx run --net none --pids 32 -- sh -c 'i=0; while [ $i -lt 200 ]; do sleep 30 & i=$((i+1)); echo "spawned $i"; done'
last=$(grep -o 'spawned [0-9]*' <<<"$OUT" | tail -1 | cut -d' ' -f2)
[[ -n $last && $last -lt 32 ]] || fail "--pids 32 let $last processes start. Output: $OUT"
pass "--pids 32 stops process creation ($last started)"

# A real fork bomb: contained, sbx returns when the command ends, host fine.
marker="sbx-bomb-$$-$RANDOM"
start=$(date +%s)
run_sbx run --net none --pids 32 -- bash -c "exec -a $marker bash -c 'b() { b & b; }; b' & sleep 3; exit 0"
elapsed=$(($(date +%s) - start))
expect_rc 0 "sbx returns after the fork bomb's command ends"
((elapsed < 60)) || fail "sbx took ${elapsed}s to return"
pass "returned in ${elapsed}s"
sleep 1
if pgrep -f "$marker" >/dev/null; then fail "fork bomb processes survived on the host: $(pgrep -af "$marker" | head -3)"; fi
pass "no fork bomb process left on the host"
run_sbx run --net none -- true
expect_rc 0 "the host can still start sandboxes"

# --cpus 0.5: a busy loop gets at most ~60% of one CPU over 3 s.
run_sbx run --net none --cpus 0.5 -- bash -c '
  start=${EPOCHREALTIME/./}
  while (( ${EPOCHREALTIME/./} - start < 3000000 )); do :; done
  read -r -a s < /proc/self/stat; echo "ticks $(( s[13] + s[14] )) hz $(getconf CLK_TCK 2>/dev/null || echo 100)"'
expect_rc 0 "busy loop under --cpus 0.5 ran"
ticks=$(grep -o 'ticks [0-9]*' <<<"$OUT" | cut -d' ' -f2)
hz=$(grep -o 'hz [0-9]*' <<<"$OUT" | cut -d' ' -f2)
[[ -n $ticks && -n $hz ]] || fail "no cpu measurement: $OUT"
# 3 s of wall time at <= 60 % of one CPU.
((ticks * 100 <= 60 * 3 * hz)) || fail "--cpus 0.5 busy loop used $ticks ticks of $((3 * hz)) (> 60%)"
((ticks > 0)) || fail "busy loop used no CPU at all: $OUT"
pass "--cpus 0.5 busy loop used $ticks/$((3 * hz)) ticks"

done_testing
