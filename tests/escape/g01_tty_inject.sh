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
# Terminal multiplexers: their server types whatever a client sends into the
# user's terminal (tmux send-keys, screen -X stuff), as TIOCSTI would. A tmux
# server whose socket is outside /tmp ($TMUX names it; TMUX_TMPDIR, tmux -S)
# must be out of reach; the sandbox's fresh /tmp hides the default one. (As
# root the command runs as nobody, whom a root tmux server refuses anyway:
# the user's run is the one that shows it.)
tdir=$(mktemp -d /var/tmp/sbx-escape.tmux-XXXXXX)  # private (0700), as tmux makes it
_mux_cleanup() { tmux -S "$tdir/s" kill-server 2>/dev/null; rm -rf "$tdir"; _tty_cleanup; }
trap _mux_cleanup EXIT
tmux -S "$tdir/s" new-session -d -s m -x 80 -y 10 sh || fail "tmux -S $tdir/s"
export TMUX="$tdir/s,1,0"
typed() { # did the host shell in the tmux pane run "touch $tdir/$1"?
  for _ in $(seq 30); do [[ -e $tdir/$1 ]] && return 0; sleep 0.1; done
  return 1
}
tmux -S "$tdir/s" send-keys -t m "touch $tdir/control" Enter
typed control || fail "control: send-keys from outside a sandbox did not type into the pane"
pass "control: a tmux client outside any sandbox types into the user's pane"
for p in "${ESC_PROFILES[@]}"; do
  esc_args "$p"
  OUT=$("$SBX" run "${PA[@]}" -- tmux -S "$tdir/s" send-keys -t m "touch $tdir/from-$p" Enter 2>&1 </dev/null)
  ! typed "from-$p" || fail "$p: tmux send-keys from the sandbox typed into the host's pane: $OUT"
  pass "$p: the tmux server named by \$TMUX is out of reach"
done
unset TMUX
# GNU screen's sockets live in /run/screen/S-USER (root only: /run).
if is_root; then
  sdir=/run/screen/S-sbx-escape-$$
  made_run_screen=0
  [[ -d /run/screen ]] || { mkdir -m 775 /run/screen && made_run_screen=1; }
  mkdir -m 700 "$sdir"
  trap '[[ -n ${listener:-} ]] && kill "$listener" 2>/dev/null; rm -rf "$sdir"; [[ $made_run_screen == 1 ]] && rmdir /run/screen; _mux_cleanup' EXIT
  python3 - "$sdir/1.pts-0.host" <<'PY' &
import socket, sys
s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(4); s.settimeout(20)
try:
    while True:
        c, _ = s.accept(); print("screen socket reached:", c.recv(64)); sys.stdout.flush()
except OSError:
    pass
PY
  listener=$!
  for _ in $(seq 50); do [[ -S $sdir/1.pts-0.host ]] && break; sleep 0.1; done
  # Owned by the command's user (root's command runs as nobody), as screen
  # makes S-USER: only the mount can keep it out of reach.
  chown -R 65534:65534 "$sdir"
  for p in "${ESC_PROFILES[@]}"; do
    esc_args "$p"
    OUT=$("$SBX" run "${PA[@]}" -- python3 -c "
import socket
s = socket.socket(socket.AF_UNIX)
try:
    s.connect('$sdir/1.pts-0.host'); s.send(b'stuff x'); print('REACHED')
except OSError as e:
    print('refused', e)" 2>&1 </dev/null)
    [[ $OUT != *REACHED* ]] || fail "$p: the sandbox reached a screen socket in /run/screen: $OUT"
    pass "$p: /run/screen is out of reach"
  done
  kill "$listener" 2>/dev/null; wait "$listener" 2>/dev/null
  listener=
  rm -rf "$sdir"
  [[ $made_run_screen == 1 ]] && rmdir /run/screen
  made_run_screen=0
fi
esc_done "1 (TIOCSTI, TIOCLINUX, multiplexer sockets)"
