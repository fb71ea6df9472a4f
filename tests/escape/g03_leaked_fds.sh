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
  OUT=$("$SBX" run "${PA[@]}" -- sh -c 'printf SHFDS=; ls /proc/$$/fd | tr "\n" " "; echo; exec "$@"' sh "$PY" "$ESC_PY" "${attempts[@]}" 2>&1 \
    </dev/null 7</ 8<"$HOME" 9<"${TMPDIR:-/tmp}" 10<"$SBX")
  RC=$?
  expect_rc 0 "$p: attempts ran"
  expect_out "(^|$NL)SHFDS=0 1 2 ($NL|$)" "$p: the command holds only fds 0, 1, 2 (7-10 were open in sbx)"
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
# the sandbox) keeps only its channel to sbx and what it creates itself (a
# signalfd; network sockets). Before, it held the caller's 7-10 and sbx's
# audit log, control socket and state dir for the sandbox's whole life,
# guarded only by being non-dumpable. Root only: as the user, init's
# /proc/PID/fd is unreadable (non-dumpable), which is the other guard.
if is_root; then
  for p in "${ESC_PROFILES[@]}"; do
    esc_args "$p"
    nm="$ESC_MARK-g03-$$-$p"
    "$SBX" run "${PA[@]}" --name "$nm" -- sleep 60 </dev/null >/dev/null 2>&1 \
      7</ 8<"$HOME" 9<"${TMPDIR:-/tmp}" 10<"$SBX" &
    sbx_pid=$!
    init="" worker=""
    for _ in $(seq 600); do  # init's child (the command) exists: init's steps are done
      init=$(pgrep -P "$sbx_pid" | head -1)
      [[ -n $init ]] && worker=$(pgrep -P "$init" | head -1)
      [[ -n $worker ]] && break
      kill -0 "$sbx_pid" 2>/dev/null || break
      sleep 0.05
    done
    [[ -n $worker ]] || fail "$p: the sandbox did not start"
    held=$(for f in /proc/"$init"/fd/*; do
      n=${f##*/}
      ((n > 2)) && echo "$n -> $(readlink "$f")"
    done)
    "$SBX" stop "$nm" >/dev/null 2>&1
    wait "$sbx_pid" 2>/dev/null
    bad=$(grep -Ev -- '-> (socket|anon_inode):' <<<"$held")
    [[ -z $bad ]] || fail "$p: sandbox init holds host files: $bad"
    pass "$p: sandbox init holds no file of sbx or of its caller (only sockets and its signalfd)"
  done
fi
esc_done "3 (leaked fds, cwd)"
