#!/usr/bin/env bash
# TIOCSTI from inside the sandbox must not push input into the outer shell
# (CVE-2017-5226). This host has dev.tty.legacy_tiocsti=1, so the ioctl
# itself works; the defence is setsid + a private pty. A control run
# outside the sandbox proves the test would see an injection.
source "$SBX_SOURCE_DIR/tests/lib.sh"
# A private tmux server per test (CI has no terminal; tmux gives the command
# a real one).
command -v tmux >/dev/null || skip "needs tmux"
TMUX_SOCKET="sbx-tty-$$"
tmux_() { tmux -L "$TMUX_SOCKET" "$@"; }
_tty_cleanup() { tmux_ kill-server 2>/dev/null; _cleanup_scratch; }
trap _tty_cleanup EXIT
unset TMUX

# start_pane W H CMD: a fresh detached session "t" of size WxH running CMD.
start_pane() {
  tmux_ kill-session -t t 2>/dev/null
  tmux_ new-session -d -s t -x "$1" -y "$2" "$3" || fail "tmux new-session failed"
}
pane() { tmux_ capture-pane -p -t t 2>/dev/null; }
# wait_pane REGEX: until the pane shows REGEX (10 s).
wait_pane() {
  for _ in $(seq 100); do
    [[ $(pane) =~ $1 ]] && return 0
    sleep 0.1
  done
  fail "pane never showed /$1/. Pane:
$(pane)"
}
py=/usr/bin/python3
[[ -x $py ]] || skip "needs python3"
dir=$(scratch)

inject() {  # inject FILE: python that types "touch FILE<Enter>" into its stdin's tty
  echo "$py -c 'import fcntl, termios, sys
try:
    [fcntl.ioctl(0, termios.TIOCSTI, bytes([c])) for c in b\"touch $1\\n\"]
    print(\"INJECT-OK\")
except OSError as e:
    print(\"INJECT-\" + str(e.errno))'"
}

start_pane 200 50 "bash --norc --noprofile -i"
tmux_ send-keys -t t "PS1='$ '" Enter

if [[ $(cat /proc/sys/dev/tty/legacy_tiocsti 2>/dev/null) == 1 ]]; then
  tmux_ send-keys -t t "$(inject "$dir/control"); echo CONTROL-DONE" Enter
  wait_pane CONTROL-DONE
  sleep 1
  [[ -e $dir/control ]] || fail "control: TIOCSTI outside the sandbox did not inject; the test cannot see injections. Pane:
$(pane)"
  pass "control: TIOCSTI outside the sandbox injects into the shell"
fi

tmux_ send-keys -t t "$SBX run --profile airgapped -- $(inject "$dir/from-pty"); echo PTY-DONE" Enter
wait_pane PTY-DONE
sleep 1
[[ ! -e $dir/from-pty ]] || fail "TIOCSTI from the sandbox (pty) ran a command in the outer shell"
pass "TIOCSTI from inside (private pty) does not reach the outer shell"

tmux_ send-keys -t t "$SBX run --profile airgapped --no-tty -- $(inject "$dir/from-notty"); echo NOTTY-DONE" Enter
wait_pane NOTTY-DONE
sleep 1
OUT=$(pane)
[[ ! -e $dir/from-notty ]] || fail "TIOCSTI from the sandbox (--no-tty, host terminal fd) injected into the outer shell"
expect_out $'(^|\n)INJECT-1(\n|$)' "--no-tty: TIOCSTI on the inherited terminal fails with EPERM (new session)"
pass "TIOCSTI with the host's terminal fd (--no-tty) does not reach the outer shell"

done_testing
