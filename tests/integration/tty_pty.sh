#!/usr/bin/env bash
# Under a terminal the command gets a fresh pty of its own (not the user's
# terminal), of the terminal's size, following resizes.
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

start_pane 100 30 "$SBX run --profile airgapped -- sh -c 'tty; stty size; echo WAIT; read x; stty size; echo END; read y'; echo RC=\$?; sleep 30"
wait_pane WAIT
OUT=$(pane)
expect_out $'(^|\n)/dev/pts/[0-9]+\n' "tty inside prints a /dev/pts path"
expect_out $'\n30 100\n' "stty size inside is the terminal's size (30 100)"

tmux_ resize-window -t t -x 120 -y 40
sleep 0.3
tmux_ send-keys -t t Enter
wait_pane END
OUT=$(pane)
expect_out $'\n40 120\n' "stty size follows a resize (40 120)"
tmux_ send-keys -t t Enter
wait_pane 'RC=[0-9]+'
OUT=$(pane)
expect_out "RC=0" "exit status passes through the pty session"

# The sandbox's pty is not the user's: /proc/self/fd/0 inside is a pts of
# the sandbox's own devpts (its number is unrelated to the pane's).
start_pane 80 24 "$SBX run --profile airgapped -- sh -c 'ls -l /proc/self/fd/0; echo PID=\$\$'; echo RC=\$?; sleep 30"
wait_pane 'RC=[0-9]+'
OUT=$(pane)
expect_out "/dev/pts/[0-9]+" "stdin inside is a pts"
expect_out "PID=2" "the command is pid 2 (init is pid 1)"

# --no-tty under a terminal: no pty, the terminal fd is passed as is, but in
# a new session (no controlling terminal).
start_pane 80 24 "$SBX run --profile airgapped --no-tty -- sh -c 'tty; cat /proc/self/stat | cut -d\" \" -f7'; echo RC=\$?; sleep 30"
wait_pane 'RC=[0-9]+'
OUT=$(pane)
expect_out $'(^|\n)0\n' "--no-tty: the command has no controlling terminal (tty_nr 0)"

# Ctrl-C typed in the terminal reaches the command through its pty.
start_pane 80 24 "$SBX run --profile airgapped -- sh -c 'trap \"echo GOT-INT; exit 3\" INT; echo READY; while :; do sleep 0.1; done'; echo RC=\$?; sleep 30"
wait_pane READY
tmux_ send-keys -t t C-c
wait_pane 'RC=[0-9]+'
OUT=$(pane)
expect_out "GOT-INT" "^C in the terminal reaches the command"
expect_out "RC=3" "and its exit status comes back"

# The user's terminal is restored (raw mode off) however sbx ends: normal
# exit, and SIGTERM to sbx while the command still runs.
start_pane 120 30 "bash --norc --noprofile -i"
tmux_ send-keys -t t "PS1='$ '" Enter
tmux_ send-keys -t t "$SBX run --profile airgapped -- true; stty -a | grep -o -- '-*icanon' | sed 's/^/MODE1=/'" Enter
wait_pane 'MODE1=-*icanon'
OUT=$(pane)
expect_out $'MODE1=icanon' "after a pty session the terminal is back in canonical mode"
tmux_ send-keys -t t "$SBX run --profile airgapped -- sh -c 'echo READY; sleep 100' marker-$$; stty -a | grep -o -- '-*icanon' | sed 's/^/MODE2=/'" Enter
wait_pane READY
# -o: the oldest match is sbx; its clone, sandbox init, has the same command line.
sbx_pid=$(pgrep -o -f "^$SBX run --profile airgapped -- sh -c echo READY; sleep 100 marker-$$")
[[ -n $sbx_pid ]] || fail "cannot find the sbx process"
kill -TERM "$sbx_pid"
wait_pane 'MODE2=-*icanon'
OUT=$(pane)
expect_out $'MODE2=icanon' "after SIGTERM to sbx the terminal is back in canonical mode"

# stdin and stderr a terminal, stdout a pipe: the terminal fds become the
# sandbox's pty, the pipe stays a pipe and its bytes stay exact (no \r).
start_pane 120 30 "$SBX run --profile airgapped -- sh -c 'tty; tty <&2 >&2; readlink /proc/self/fd/1; echo end' | od -c | tr -s ' ' | sed 's/^/OD /'; echo MIXED-DONE; sleep 30"
wait_pane MIXED-DONE
OUT=$(pane)
expect_out "/dev/pts/[0-9]+" "stderr is the sandbox's pty"
expect_no_out '\\r' "output through the pipe has no carriage returns"
expect_out "p i p e :" "stdout stays the pipe sbx was given"

done_testing
