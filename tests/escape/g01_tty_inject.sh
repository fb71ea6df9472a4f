#!/usr/bin/env bash
# Group 1: terminal injection. TIOCSTI pushes bytes into a terminal's input
# queue: from a sandbox holding the user's terminal it types commands into
# the user's shell (CVE-2017-5226), also with the high 32 bits of the request
# set (CVE-2019-10063); TIOCLINUX pastes the console selection
# (CVE-2023-28100). Each attempt types "touch FILE" + Enter; the outer shell
# runs in tmux, and FILE may only appear on the host if the injection reached
# it. A control run outside the sandbox proves the check can fail
# (this host has dev.tty.legacy_tiocsti=1).
source "$SBX_SOURCE_DIR/tests/escape/common.bash"
command -v tmux >/dev/null || skip "needs tmux"
TMUX_SOCKET="sbx-escape-tty-$$"
tmux_() { tmux -L "$TMUX_SOCKET" "$@"; }
_tty_cleanup() { tmux_ kill-server 2>/dev/null; _cleanup_scratch; }
trap _tty_cleanup EXIT
unset TMUX

pane() { tmux_ capture-pane -p -J -S -200 -t t 2>/dev/null; }
wait_pane() {
  for _ in $(seq 150); do
    [[ $(pane) =~ $1 ]] && return 0
    sleep 0.1
  done
  fail "pane never showed /$1/. Pane:
$(pane)"
}

dir=$(scratch)
cd "$dir" || fail "cd"
# inject.py PREFIX: four attempts on fd 0; each types "touch PREFIX-VARIANT".
cat >inject.py <<'PY'
import ctypes, errno, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
TIOCSTI, TIOCLINUX = 0x5412, 0x541C
def attempt(name, req, text):
    rc = 0
    for b in text:
        c = ctypes.c_char(b)
        rc = libc.syscall(16, 0, ctypes.c_ulong(req), ctypes.byref(c))  # raw ioctl: all 64 bits reach the kernel
        if rc < 0:
            break
    res = "ok" if rc >= 0 else errno.errorcode.get(ctypes.get_errno(), "?")
    print(f"INJECT-{tag}-{name}={res}", flush=True)
p = sys.argv[1]
tag = p.rsplit("/", 1)[-1]
attempt("plain", TIOCSTI, f"touch {p}-plain\n".encode())
attempt("high", TIOCSTI | (1 << 32), f"touch {p}-high\n".encode())
# TIOCLINUX subcode 3 = TIOCL_PASTESEL (paste the console selection).
attempt("linux", TIOCLINUX, b"\x03")
attempt("linuxhigh", TIOCLINUX | (1 << 32), b"\x03")
PY

tmux_ new-session -d -s t -x 250 -y 50 "bash --norc --noprofile -i" || fail "tmux new-session failed"
tmux_ send-keys -t t "PS1='$ '; cd $dir" Enter

if [[ $(cat /proc/sys/dev/tty/legacy_tiocsti 2>/dev/null) == 1 ]]; then
  tmux_ send-keys -t t "$PY inject.py $dir/control; echo CONTROL-DONE" Enter
  wait_pane "CONTROL-DONE"
  sleep 1
  [[ -e $dir/control-plain ]] || fail "control: TIOCSTI outside the sandbox did not inject. Pane:
$(pane)"
  pass "control: plain TIOCSTI outside the sandbox types into the outer shell"
  [[ -e $dir/control-high ]] || fail "control: high-bit TIOCSTI outside did not inject. Pane:
$(pane)"
  pass "control: TIOCSTI with the high 32 bits set also injects outside (the kernel truncates)"
else
  echo "# dev.tty.legacy_tiocsti=0: the kernel refuses TIOCSTI by itself; no control run"
fi

n=0
for p in "${ESC_PROFILES[@]}"; do
  esc_args "$p"
  for mode in pty notty; do
    n=$((n + 1))
    extra=()
    [[ $mode == notty ]] && extra=(--no-tty)
    tmux_ send-keys -t t "clear; $SBX run ${PA[*]} ${extra[*]} -- $PY inject.py $dir/$p-$mode; echo RUN$n-DONE rc=\$?" Enter
    wait_pane "RUN$n-DONE rc="
    sleep 0.7
    OUT=$(pane)
    expect_out "RUN$n-DONE rc=0" "$p ($mode): sandbox ran"
    for v in plain high linux linuxhigh; do
      expect_out "INJECT-$p-$mode-$v=EPERM" "$p ($mode): $v ioctl fails with EPERM"
    done
    for v in plain high; do
      [[ ! -e $dir/$p-$mode-$v ]] || fail "$p ($mode): $v TIOCSTI typed a command into the outer shell"
      pass "$p ($mode): $v TIOCSTI did not reach the outer shell (no file on the host)"
    done
  done
done
esc_done "1 (TIOCSTI, TIOCLINUX)"
