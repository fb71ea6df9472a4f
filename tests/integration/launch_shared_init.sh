#!/usr/bin/env bash
# Sandbox init shares sbx's address space (docs/launch.md "Start-up time"):
# with the CLI on x86-64 and no memory limit it does; under --memory it must
# be a copy (the OOM killer kills every process sharing its victim's address
# space, which would take sbx with it); and the dumpable flag comes back.
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

# kcmp(pid1, pid2, KCMP_VM): 0 = one address space.
same_vm() {
  python3 - "$1" "$2" <<'EOF'
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
rc = libc.syscall(312, int(sys.argv[1]), int(sys.argv[2]), 1, 0, 0)  # SYS_kcmp, KCMP_VM
if rc < 0:
    print(f"kcmp: {os.strerror(ctypes.get_errno())}", file=sys.stderr)
    sys.exit(2)
sys.exit(0 if rc == 0 else 1)
EOF
}

environ_owner() { stat -c %u "/proc/$1/environ"; }

start_sandbox --net none
if is_root; then
  same_vm "$SBX_PID" "$INIT_PID" || fail "init ($INIT_PID) does not share sbx's ($SBX_PID) address space"
  pass "init shares sbx's address space (kcmp KCMP_VM)"
else
  [[ $(environ_owner "$SBX_PID") == 0 ]] ||
    fail "sbx is dumpable while its shared init runs (/proc/$SBX_PID/environ is not root's)"
  pass "sbx is not dumpable while its shared init runs"
fi
wait "$SBX_PID" || fail "sbx run --net none -- sleep 3 failed: $(cat "$tmp/err")"

# A memory limit: init must be a copy. As the user the limit may not be
# enforceable here (no delegated cgroup): sbx warns and runs, still a copy.
start_sandbox --net none --memory 1G
if is_root; then
  same_vm "$SBX_PID" "$INIT_PID"
  rc=$?
  [[ $rc == 1 ]] || fail "under --memory, kcmp says rc=$rc (0: init shares sbx's address space)"
  pass "under --memory init is a copy"
else
  [[ $(environ_owner "$SBX_PID") == "$(id -u)" ]] ||
    fail "under --memory sbx became non-dumpable: init shares its address space"
  pass "under --memory init is a copy (sbx stays dumpable)"
fi
wait "$SBX_PID" || fail "sbx run --memory 1G failed: $(cat "$tmp/err")"

done_testing
