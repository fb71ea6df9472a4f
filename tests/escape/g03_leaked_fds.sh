#!/usr/bin/env bash
# Group 3: leaked fds and a cwd outside the root (runc CVE-2024-21626, where
# a leaked fd to a host directory plus WORKDIR /proc/self/fd/N gave a cwd
# outside the container). sbx is started with fds open on host directories;
# inside, only 0-2 may exist, /proc/self/fd/N/.. must not lead anywhere, and
# the cwd must be the work dir inside the new root.
source "$SBX_SOURCE_DIR/tests/escape/common.bash"

for p in "${ESC_PROFILES[@]}"; do
  W=$(scratch)
  cd "$W" || fail "cd"
  mkdir sub
  attempts=(cwd:readlink:/proc/self/cwd climb:climb:. root:readlink:/proc/self/root
            init_fd3:chdir:/proc/1/fd/3/.. init_cwd:chdir:/proc/1/cwd/..)
  for n in 3 4 5 6 7 8 9 10 11 12; do attempts+=("fd${n}_up:chdir:/proc/self/fd/$n/.."); done
  # fd 7: the host's /, fd 8: the caller's home, fd 9: a directory of the
  # work dir's parent (outside the sandbox's view), fd 10: a host file.
  esc_args "$p"
  # ls -m straight to the shell's stdout: a pipe (ls | tr) would be the
  # shell's own fd 3 until it forks tr, which ls sees under load.
  OUT=$("$SBX" run "${PA[@]}" -- sh -c 'printf SHFDS=; ls -m /proc/$$/fd; exec "$@"' sh "$PY" "$ESC_PY" "${attempts[@]}" 2>&1 \
    </dev/null 7</ 8<"$HOME" 9<"${TMPDIR:-/tmp}" 10<"$SBX")
  RC=$?
  expect_rc 0 "$p: attempts ran"
  expect_out "(^|$NL)SHFDS=0, 1, 2($NL|$)" "$p: the command holds only fds 0, 1, 2 (7-10 were open in sbx)"
  expect_res cwd "ok $W" "$p: the cwd is the work dir, reachable from the sandbox's root"
  expect_res climb "ok same-as-root" "$p: 64 times .. from the cwd ends at the sandbox's /"
  expect_res root "ok /" "$p: /proc/self/root is /"
  expect_res init_fd3 "EACCES|ENOENT" "$p: init's /proc/1/fd/3/.. is not enterable"
  expect_res init_cwd EACCES "$p: init's /proc/1/cwd/.. is not enterable"
  for n in 3 4 5 6 7 8 9 10 11 12; do
    expect_res "fd${n}_up" ENOENT "$p: cd /proc/self/fd/$n/.. fails"
  done
  cd / || fail "cd /"
done

# The shell form of the attack, with a directory fd handed straight to the
# command's shell: the fd is closed before execve, so the cd fails.
W=$(scratch)
cd "$W" || fail "cd"
# Control: the same shell on the host does escape through the fd.
OUT=$(sh -c 'cd -P /proc/self/fd/7/.. 2>/dev/null && echo "ESCAPED $(pwd -P)"' 7</ 2>&1)
expect_out "^ESCAPED /$" "control: outside a sandbox, cd -P /proc/self/fd/7/.. reaches the fd's directory"
OUT=$("$SBX" run -p airgapped -- sh -c 'cd -P /proc/self/fd/7/.. 2>/dev/null && echo "ESCAPED $(pwd -P)"; ls /proc/self/fd/7 2>/dev/null && echo LEAK; echo end' 2>&1 </dev/null 7</)
RC=$?
expect_rc 0 "shell probe ran"
expect_out "end" "shell probe finished"
expect_no_out "ESCAPED|LEAK" "sh: cd /proc/self/fd/7/.. fails and fd 7 does not exist"

# The same fds from the host's side: sandbox init (a fork of sbx, pid 1 in
# the sandbox) shares no open file with sbx (which still holds the caller's
# 7-10 and a socket 11 here, its audit log, control socket and state dir):
# it keeps only its own end of its channel to sbx and its own signalfd.
# Before, it held all of sbx's for the sandbox's whole life, guarded only
# by being non-dumpable. Root only: as the user, init's /proc/PID/fd is
# unreadable (non-dumpable), which is the other guard.
fd_targets() { # PID: "N TARGET" for each fd above 2; fails if unreadable
  local f n out
  out=$(ls /proc/"$1"/fd) || return 1
  for n in $out; do
    ((n > 2)) || continue
    f=$(readlink /proc/"$1"/fd/"$n") && echo "$n $f"
  done
}
if is_root; then
  for p in "${ESC_PROFILES[@]}"; do
    esc_args "$p"
    nm="$ESC_MARK-g03-$$-$p"
    # fd 11: a socket the caller leaked (one end of a socketpair; python
    # execs sbx in place, so $! is sbx).
    python3 -c 'import os, socket, sys; a, b = socket.socketpair(); os.dup2(a.fileno(), 11); os.execvp(sys.argv[1], sys.argv[1:])' \
      "$SBX" run "${PA[@]}" --name "$nm" -- sleep 60 </dev/null >/dev/null 2>&1 \
      7</ 8<"$HOME" 9<"${TMPDIR:-/tmp}" 10<"$SBX" &
    sbx_pid=$!
    init="" worker=""
    for _ in $(seq 600); do  # init's child (the command) exists: init's steps are done
      for c in $(pgrep -P "$sbx_pid"); do  # init: the child in a new pid namespace
        [[ $(readlink /proc/"$c"/ns/pid) != "$(readlink /proc/self/ns/pid)" ]] && init=$c
      done
      [[ -n $init ]] && worker=$(pgrep -P "$init" | head -1)
      [[ -n $worker ]] && break
      kill -0 "$sbx_pid" 2>/dev/null || break
      sleep 0.05
    done
    [[ -n $worker ]] || fail "$p: the sandbox did not start"
    init_fds=$(fd_targets "$init") || fail "$p: cannot list init's fds (/proc/$init/fd)"
    sbx_fds=$(fd_targets "$sbx_pid") || fail "$p: cannot list sbx's fds"
    "$SBX" stop "$nm" >/dev/null 2>&1
    wait "$sbx_pid" 2>/dev/null
    grep -q " /\$" <<<"$sbx_fds" && grep -q "^11 socket:" <<<"$sbx_fds" ||
      fail "$p: control: sbx itself should hold the caller's fds (/ and the socket): $sbx_fds"
    # Shared: the same file or socket (socket:[inode] names one socket).
    # Every signalfd is anon_inode:[signalfd]: counted instead.
    shared=$(comm -12 <(cut -d' ' -f2- <<<"$init_fds" | grep -v '^anon_inode:\[signalfd\]$' | sort) \
      <(cut -d' ' -f2- <<<"$sbx_fds" | sort))
    [[ -z $shared ]] || fail "$p: sandbox init holds fds of sbx or of its caller: $shared (init: $init_fds)"
    others=$(cut -d' ' -f2- <<<"$init_fds" | grep -Ev '^socket:\[[0-9]+\]$|^anon_inode:\[signalfd\]$')
    [[ -z $others ]] || fail "$p: sandbox init holds more than sockets and its signalfd: $others"
    (($(grep -c 'anon_inode:\[signalfd\]' <<<"$init_fds") <= 1)) ||
      fail "$p: sandbox init holds more than one signalfd (one would be sbx's): $init_fds"
    pass "$p: sandbox init shares no fd with sbx or its caller (holds: $(cut -d' ' -f2- <<<"$init_fds" | tr '\n' ' '))"
  done
fi
esc_done "3 (leaked fds, cwd)"
