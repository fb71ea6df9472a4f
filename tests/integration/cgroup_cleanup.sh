#!/usr/bin/env bash
# The sandbox's cgroup is removed after the run: normal exit, kill -9 of the
# command, and (on the next start) kill -9 of the supervisor itself.
source "$SBX_SOURCE_DIR/tests/lib.sh"

# Directories that belong to sbx sandboxes: "<id>@<pid>.<start>" under an
# "sbx" parent, anywhere in the cgroup file systems.
sbx_groups() { find /sys/fs/cgroup -mindepth 2 -maxdepth 12 -type d -path '*/sbx/*@*' 2>/dev/null | sort; }
groups_of_pid() { # the sandbox groups a live process is in
  awk -F: '{print $3}' "/proc/$1/cgroup" 2>/dev/null | grep '/sbx/' || true
}

run_sbx run --net none --memory 64M --pids 64 -- true
if [[ $OUT == *"NOT enforced"* ]]; then
  is_root || [[ ${SBX_EXPECT_CGROUP:-} == 1 ]] && fail "limits not enforced: $OUT"
  skip "no cgroup for this user here (the warning path is tested by cgroup_limits.sh)"
fi
expect_rc 0 "a limited sandbox runs"
before=$(sbx_groups)

# kill -9 of the command: sbx reports 137 and removes the group.
marker="sbx-cleanup-$$-$RANDOM"
"$SBX" run --net none --memory 64M --pids 64 -- bash -c "exec -a $marker sleep 60" </dev/null >/dev/null 2>&1 &
sbx_pid=$!
for _ in $(seq 100); do pid=$(pgrep -f "^$marker" | head -1); [[ -n $pid ]] && break; sleep 0.1; done
[[ -n ${pid:-} ]] || fail "the sandboxed command did not start"
grp=$(groups_of_pid "$pid" | head -1)
[[ -n $grp ]] || fail "the command is not in an sbx cgroup: $(cat /proc/$pid/cgroup)"
pass "the command runs in the sandbox group $grp"
kill -9 "$pid"
wait "$sbx_pid"
rc=$?
[[ $rc -eq 137 ]] || fail "sbx exit $rc after kill -9 of the command, want 137"
pass "kill -9 of the command -> sbx exits 137"
[[ $(sbx_groups) == "$before" ]] || fail "group left after kill -9 of the command: $(sbx_groups)"
pass "its group was removed"

# kill -9 of the supervisor: the group stays behind (nobody can clean up)
# until the next sbx start removes it as stale.
marker="sbx-stale-$$-$RANDOM"
"$SBX" run --net none --pids 64 -- bash -c "exec -a $marker sleep 60" </dev/null >/dev/null 2>&1 &
sbx_pid=$!
for _ in $(seq 100); do pid=$(pgrep -f "^$marker" | head -1); [[ -n $pid ]] && break; sleep 0.1; done
[[ -n ${pid:-} ]] || fail "the sandboxed command did not start"
kill -9 "$sbx_pid"
wait "$sbx_pid" 2>/dev/null
sleep 0.5
run_sbx run --net none --pids 64 -- true
expect_rc 0 "the next sandbox starts"
sleep 0.5
pgrep -f "^$marker" >/dev/null && fail "a sandbox outlived its killed supervisor and the next start"
pass "no process of the dead supervisor's sandbox is left"
[[ $(sbx_groups) == "$before" ]] || fail "stale group not removed: $(sbx_groups)"
pass "the stale group was removed on the next start"

done_testing
