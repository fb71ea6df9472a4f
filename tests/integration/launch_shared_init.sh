#!/usr/bin/env bash
# Sandbox init shares sbx's address space (docs/launch.md "Start-up time"):
# with the CLI on x86-64 it does, under --memory too; and the dumpable flag
# comes back. Under a limit init must stay outside the sandbox's cgroup, with
# the command inside it: the OOM killer kills every process sharing its
# victim's address space, so init in the group would take sbx with it
# (tests/vm/cgroups.sh runs the OOM itself on cgroup v2).
# Root asks the kernel directly (kcmp KCMP_VM); the unprivileged user sees it
# through the flag: a shared init makes sbx non-dumpable while it runs, so
# /proc/<sbx>/environ belongs to root then.
source "$SBX_SOURCE_DIR/tests/lib.sh"
[[ $(uname -m) == x86_64 ]] || skip "init shares the address space on x86-64 only"
tmp=$(scratch)
cd "$tmp" || fail "cd $tmp"

# Starts `sbx run ARGS -- sleep 3` and sets SBX_PID and INIT_PID (its child).
start_sandbox() {
  "$SBX" run "$@" -- sleep 3 </dev/null >/dev/null 2>"$tmp/err" &
  SBX_PID=$!
  INIT_PID=
  for _ in $(seq 100); do
    INIT_PID=$(pgrep -P "$SBX_PID" | head -1)
    [[ -n $INIT_PID ]] && grep -q '^NSpid:.*[[:space:]]1$' "/proc/$INIT_PID/status" 2>/dev/null &&
      break
    sleep 0.05
  done
  [[ -n $INIT_PID ]] || fail "no sandbox init under sbx $SBX_PID: $(cat "$tmp/err")"
  sleep 0.3  # past the launch: init has hidden itself, the command runs
}

# kcmp(pid1, pid2, TYPE): exit 0 = the same resource, 1 = not, 2 = kcmp
# failed. TYPE (kcmp(2)): 1 KCMP_VM, 2 KCMP_FILES.
kcmp_same() { # TYPE PID1 PID2
  python3 - "$1" "$2" "$3" <<'EOF'
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
rc = libc.syscall(312, int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[1]), 0, 0)  # SYS_kcmp
if rc < 0:
    print(f"kcmp: {os.strerror(ctypes.get_errno())}", file=sys.stderr)
    sys.exit(2)
sys.exit(0 if rc == 0 else 1)
EOF
}
same_vm() { kcmp_same 1 "$1" "$2"; }  # one address space

environ_owner() { stat -c %u "/proc/$1/environ"; }

# expect_shared WHAT: init shares sbx's address space. Root asks the kernel
# (kcmp); the user sees it through sbx's dumpable flag.
expect_shared() {
  if is_root; then
    same_vm "$SBX_PID" "$INIT_PID" ||
      fail "$1: init ($INIT_PID) does not share sbx's ($SBX_PID) address space"
    pass "$1: init shares sbx's address space (kcmp KCMP_VM)"
  else
    [[ $(environ_owner "$SBX_PID") == 0 ]] ||
      fail "$1: sbx is dumpable while init runs (/proc/$SBX_PID/environ is not root's): init does not share its address space"
    pass "$1: sbx is not dumpable while its shared init runs"
  fi
}

start_sandbox --net none
expect_shared "--net none"
wait "$SBX_PID" || fail "sbx run --net none -- sleep 3 failed: $(cat "$tmp/err")"

# A memory limit: init still shares sbx's address space, and stays in sbx's
# cgroup while the command is in the sandbox's. As the user the limit may
# not be enforceable here (no delegated cgroup): sbx warns and runs.
start_sandbox --net none --memory 1G
expect_shared "under --memory"
command_pid=$(pgrep -P "$INIT_PID" | head -1)
[[ -n $command_pid ]] || fail "no command under init $INIT_PID"
if grep -q '/sbx/' "/proc/$command_pid/cgroup"; then
  [[ $(cat "/proc/$INIT_PID/cgroup") == "$(cat "/proc/$SBX_PID/cgroup")" ]] ||
    fail "init is not in sbx's cgroup: $(cat "/proc/$INIT_PID/cgroup")"
  pass "the command is in the sandbox's cgroup, init in sbx's"
  # The cgroup.procs fds the worker joined through were opened by sbx (its
  # credentials count, CVE-2021-4197): neither init nor the command keeps one.
  if is_root; then
    fds=$(ls -l "/proc/$INIT_PID/fd" "/proc/$command_pid/fd") || fail "cannot list the sandbox's fds"
    grep -q ' -> ' <<<"$fds" || fail "no fd listed for init and the command: $fds"
    ! grep -q 'cgroup.procs' <<<"$fds" || fail "a cgroup.procs fd is still open in the sandbox: $fds"
    pass "no cgroup.procs fd left in init or the command"
  fi
else
  is_root && fail "root: the command is not in a sandbox cgroup: $(cat "/proc/$command_pid/cgroup")"
  pass "no enforceable memory limit for this user here (see cgroup_limits)"
fi
wait "$SBX_PID" || fail "sbx run --memory 1G failed: $(cat "$tmp/err")"

# Init's cgroup is outside the command's cgroup namespace: its cgroup file
# (no ptrace rights needed) must not show the host's path ("/../..").
out=$("$SBX" run --net none --memory 1G -- sh -c 'echo "init=[$(cat /proc/1/cgroup)]"; echo "self=[$(cat /proc/self/cgroup)]"' 2>"$tmp/err")
grep -q '^init=\[\]$' <<<"$out" || fail "/proc/1/cgroup is not empty inside the sandbox: $out $(cat "$tmp/err")"
! grep -q '/\.\.' <<<"$out" || fail "a cgroup path outside the sandbox shows: $out"
pass "/proc/1/cgroup reads empty inside; the command's own paths stay inside its namespace"

# The early start (docs/launch.md "Start-up time"): where side threads may
# run (not pinned: SBX_LAUNCH_PIN=0; two CPUs), init is made by clone3 on
# the parked thread while sbx still plans, sharing sbx's fd table until it
# is released. Then it takes a table of its own and keeps only its fds
# (g03_leaked_fds compares them with sbx's).
if (($(nproc) >= 2)); then
  SBX_LAUNCH_PIN=0 SBX_TRACE_STARTUP=1 "$SBX" run --net none -- true 2>"$tmp/trace" </dev/null ||
    fail "sbx run with the startup trace failed: $(cat "$tmp/trace")"
  grep -q 'clone3 (early)$' "$tmp/trace" || fail "no early start (clone3 (early) not in the trace): $(cat "$tmp/trace")"
  pass "init is made while sbx plans (early start)"
  SBX_EARLY_INIT=0 SBX_LAUNCH_PIN=0 SBX_TRACE_STARTUP=1 "$SBX" run --net none -- true 2>"$tmp/trace" </dev/null ||
    fail "sbx run with SBX_EARLY_INIT=0 failed: $(cat "$tmp/trace")"
  grep -q 'clone3$' "$tmp/trace" && ! grep -q 'clone3 (early)' "$tmp/trace" ||
    fail "SBX_EARLY_INIT=0 should start init after the planning: $(cat "$tmp/trace")"
  pass "SBX_EARLY_INIT=0: init is made after the planning"

  if is_root; then
    # One fd table or two (an error of kcmp itself fails the test). The run
    # is an early start (its trace says so).
    SBX_LAUNCH_PIN=0 SBX_TRACE_STARTUP=1 start_sandbox --net none
    kcmp_same 2 "$SBX_PID" "$INIT_PID"  # KCMP_FILES
    rc=$?
    ((rc != 2)) || fail "kcmp(KCMP_FILES) failed"
    ((rc == 1)) || fail "init ($INIT_PID) still shares sbx's ($SBX_PID) fd table once running"
    wait "$SBX_PID" || fail "sbx run --net none -- sleep 3 failed: $(cat "$tmp/err")"
    grep -q 'clone3 (early)$' "$tmp/err" || fail "that run was no early start: $(cat "$tmp/err")"
    pass "a running init of an early start has an fd table of its own"
  fi

  # A planning error after the early clone3: sbx fails as always (exit 125,
  # the reason and the fix), and the init it made is gone with it.
  mark="early-init-$$-$RANDOM"
  SBX_LAUNCH_PIN=0 SBX_TRACE_STARTUP=1 "$SBX" run --rw / -- true "$mark" >/dev/null 2>"$tmp/err" </dev/null
  rc=$?
  ((rc == 125)) || fail "a writable / should stop the start with 125, got $rc: $(cat "$tmp/err")"
  grep -q 'resolves to /' "$tmp/err" || fail "no reason given: $(cat "$tmp/err")"
  grep -q 'clone3 (early)$' "$tmp/err" || fail "the error came before the early clone3: $(cat "$tmp/err")"
  sleep 0.2
  left=$(pgrep -af -- "$mark" || true)
  [[ -z $left ]] || fail "a process of the failed start is left: $left"
  pass "a planning error after the early clone3: exit 125, and no init left"
fi

done_testing
