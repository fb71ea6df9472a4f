#!/usr/bin/env bash
# Group 8: ptrace / process_vm_readv on init, on other sandbox processes and
# on the supervisor; signals to processes outside. A host process of the
# SAME uid as the command (as root: nobody, the sandbox's uid) must survive
# `kill -9 -1` and a direct kill from inside: only the pid namespace
# separates them.
source "$SBX_SOURCE_DIR/tests/escape/common.bash"
[[ -n ${SBX_PROBE:-} && -x ${SBX_PROBE:-} ]] || skip "SBX_PROBE (tests/probe) not built"

victim_cmd=(bash -c "exec -a $ESC_MARK-victim-$$ sleep 60")
if is_root; then victim_cmd=(setpriv --reuid=65534 --regid=65534 --clear-groups "${victim_cmd[@]}"); fi

victim=""
_g8_cleanup() { [[ -n $victim ]] && kill "$victim" 2>/dev/null; _cleanup_scratch; }
trap _g8_cleanup EXIT
for p in "${ESC_PROFILES[@]}"; do
  "${victim_cmd[@]}" </dev/null >/dev/null 2>&1 &
  victim=$!
  for _ in $(seq 50); do pgrep -f "^$ESC_MARK-victim-$$" >/dev/null && break; sleep 0.05; done
  vpid=$(pgrep -f "^$ESC_MARK-victim-$$" | head -1)
  [[ -n $vpid ]] || fail "victim process did not start"
  esc_run "$p" --env "VICTIM=$vpid" --env "TESTSHELL=$$" -- sh -c '
    P=$0
    t() { l=$1; shift; r=$("$@" 2>/dev/null); echo "$l=${r#errno=}"; }
    sleep 30 & sib=$!
    t ptrace_init "$P" ptrace-attach 1
    t vm_init "$P" process_vm_readv 1
    t ptrace_sib "$P" ptrace-attach $sib
    t vm_sib "$P" process_vm_readv $sib
    t ptrace_victim "$P" ptrace-attach $VICTIM
    t vm_victim "$P" process_vm_readv $VICTIM
    kill -0 $VICTIM 2>/dev/null; echo "see_victim=rc$?"
    kill -9 $VICTIM 2>/dev/null; echo "kill_victim=rc$?"
    kill -9 $TESTSHELL 2>/dev/null; echo "kill_testshell=rc$?"
    kill -9 -1 2>/dev/null; echo "kill_all=rc$?"
    sleep 0.2
    kill -0 $sib 2>/dev/null; echo "sib_after=rc$?"
    echo end' "$SBX_PROBE"
  expect_rc 0 "$p: attempts ran and sbx survived kill -9 -1 from inside"
  expect_res ptrace_init EPERM "$p: ptrace of init (pid 1) -> EPERM"
  expect_res vm_init EPERM "$p: process_vm_readv of init -> EPERM"
  expect_res ptrace_sib EPERM "$p: ptrace of a sibling sandbox process -> EPERM"
  expect_res vm_sib EPERM "$p: process_vm_readv of a sibling -> EPERM"
  expect_res ptrace_victim "EPERM|ESRCH" "$p: ptrace of a host process -> denied"
  expect_res vm_victim "EPERM|ESRCH" "$p: process_vm_readv of a host process -> denied"
  expect_res see_victim "rc[1-9][0-9]*" "$p: the host process is not visible (kill -0 fails)"
  expect_res kill_victim "rc[1-9][0-9]*" "$p: kill -9 of the host process's pid fails"
  expect_res kill_testshell "rc[1-9][0-9]*" "$p: kill -9 of the test's shell fails"
  expect_res sib_after "rc[1-9][0-9]*" "$p: kill -9 -1 did act inside (the sibling is gone: the check is real)"
  kill -0 "$victim" 2>/dev/null || fail "$p: the host process of the same uid was killed from inside"
  pass "$p: the host process of the same uid survived kill -9 -1 from inside"
  kill "$victim" 2>/dev/null
  wait "$victim" 2>/dev/null
done
esc_done "8 (ptrace, process_vm_readv, kill)"
