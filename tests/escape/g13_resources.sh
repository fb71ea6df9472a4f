#!/usr/bin/env bash
# Group 13: resource abuse. Fork bomb (--pids, and the nproc rlimit, which
# also holds for an unprivileged user without a cgroup), memory bomb
# (--memory: needs a cgroup), tmpfs fill (/tmp size cap), fd exhaustion
# (nofile), a stopped process at the time limit, a child that double-forks
# and setsid's to outlive the sandbox, and kill -9 of sbx itself. Every
# process started inside carries a unique marker in its command line, and
# the host is checked with pgrep that none survives.
source "$SBX_SOURCE_DIR/tests/escape/common.bash"

cg_enforced=1
OUT=$("$SBX" run -p airgapped --pids 64 -- true 2>&1 </dev/null)
[[ $OUT == *"NOT enforced"* ]] && cg_enforced=0
is_root && ((cg_enforced == 0)) && fail "root: limits not enforced: $OUT"

# profile_with P TOML: PA for profile P with extra TOML settings on top.
profile_with() {
  local p=$1 extra=$2 base
  esc_args "$p"
  base=${PA[1]}
  printf 'extends = "%s"\n%s\n' "$base" "$extra" >"$ESC_CONF/$p-extra.toml"
  PA[1]="$ESC_CONF/$p-extra.toml"
}

for p in "${ESC_PROFILES[@]}"; do
  W=$(scratch)
  cd "$W" || fail "cd"
  m="$ESC_MARK-$p-$$-$RANDOM"

  # Fork bomb: --pids 64 (cgroup) and nproc = 64 (rlimit, per user
  # namespace). The bomb runs 2 s, then the command exits and sbx returns.
  profile_with "$p" $'[process.rlimits]\nnproc = 64'
  start=$(date +%s)
  OUT=$("$SBX" run "${PA[@]}" --pids 64 -- bash -c "(exec -a $m-bomb bash -c 'b() { b & b; }; b') 2>/dev/null & sleep 2; exit 0" 2>&1 </dev/null)
  RC=$?
  elapsed=$(($(date +%s) - start))
  expect_rc 0 "$p: sbx returns after the fork bomb's command ends"
  ((elapsed < 30)) || fail "$p: sbx took ${elapsed}s to return after the fork bomb"
  pass "$p: returned in ${elapsed}s"
  no_host_procs "$m-bomb" || fail "$p: fork bomb processes survived on the host: $(pgrep -af "$m-bomb" | head -3)"
  pass "$p: no fork bomb process left on the host"
  OUT=$(bash -c 'echo forked' 2>&1)
  expect_out "^forked$" "$p: the host can still fork"

  # Memory bomb: --memory 64M.
  if ((cg_enforced)); then
    esc_args "$p"
    OUT=$("$SBX" run "${PA[@]}" --memory 64M -- bash -c 'a=$(head -c 300000000 /dev/zero | tr "\000" x); echo survived ${#a}' 2>&1 </dev/null)
    RC=$?
    expect_rc 137 "$p: a 300 MB hog under --memory 64M is OOM-killed (137)"
    expect_no_out "survived" "$p: the hog did not complete"
  else
    echo "# $p: memory bomb NOT attempted: no cgroup for this unprivileged user on this host (sbx warns 'NOT enforced'; sbx has no memory rlimit); cgroup_limits.sh tests the warning"
  fi

  # tmpfs fill: the default /tmp cap (512 MiB) refuses a 1 GiB allocation;
  # with tmp_size = 4M, writing 8 MiB stops at 4 MiB with ENOSPC.
  esc_args "$p"
  OUT=$("$SBX" run "${PA[@]}" -- sh -c '
    echo "tmp_bytes=$(( $(stat -f -c "%b * %S" /tmp) ))"
    fallocate -l 1G /tmp/big 2>/dev/null; echo "falloc=rc$?"' 2>&1 </dev/null)
  RC=$?
  expect_rc 0 "$p: tmpfs probe ran"
  tb=$(result tmp_bytes)
  [[ $tb =~ ^[0-9]+$ ]] && ((tb <= 512 * 1024 * 1024)) || fail "$p: /tmp is $tb bytes, want <= 512 MiB. Output: $OUT"
  pass "$p: /tmp is capped ($tb bytes)"
  expect_res falloc "rc[1-9][0-9]*" "$p: a 1 GiB file in /tmp cannot be allocated"
  profile_with "$p" $'[filesystem]\ntmp_size = "4M"'
  OUT=$("$SBX" run "${PA[@]}" -- sh -c '
    dd if=/dev/zero of=/tmp/fill bs=64k count=128 2>&1 | grep -c "No space left" | sed "s/^/enospc=/"
    echo "filled=$(stat -c %s /tmp/fill)"' 2>&1 </dev/null)
  expect_res enospc 1 "$p: filling /tmp past tmp_size = 4M fails with ENOSPC"
  f=$(result filled)
  ((f <= 4 * 1024 * 1024)) || fail "$p: /tmp took $f bytes with tmp_size = 4M"
  pass "$p: /tmp held at most 4 MiB ($f bytes)"

  # fd exhaustion: opening stops at the nofile limit with EMFILE; the hard
  # limit cannot be raised; the sandbox still exits normally.
  esc_args "$p"
  OUT=$("$SBX" run "${PA[@]}" -- sh -c '
    echo "soft=$(ulimit -Sn)"; echo "hard=$(ulimit -Hn)"
    prlimit --pid $$ --nofile=unlimited:unlimited 2>/dev/null; echo "raise=rc$?"
    exec "$@"' sh "$PY" "$ESC_PY" exhaust:openfds 2>&1 </dev/null)
  RC=$?
  expect_rc 0 "$p: fd exhaustion: the sandbox exits normally"
  expect_res exhaust "EMFILE after=[0-9]+" "$p: opening fds stops with EMFILE"
  n=$(result exhaust); n=${n#*after=}
  ((n <= $(result soft))) || fail "$p: opened $n fds with a soft limit of $(result soft)"
  pass "$p: at most the nofile limit of fds ($n of $(result soft))"
  expect_res raise "rc[1-9][0-9]*" "$p: the nofile hard limit cannot be raised to unlimited"

  # A stopped process (and a stopped child ignoring SIGTERM) at the time
  # limit: SIGCONT + SIGTERM, then SIGKILL after kill-after.
  start=$(date +%s)
  OUT=$("$SBX" run "${PA[@]}" --timeout 1s --kill-after 1s -- bash -c "
    (trap '' TERM; exec -a $m-stopped sleep 300) & kill -STOP \$!
    trap '' TERM; kill -STOP \$\$; sleep 300" 2>&1 </dev/null)
  RC=$?
  elapsed=$(($(date +%s) - start))
  expect_rc 137 "$p: stopped processes ignoring SIGTERM are killed at the time limit (137)"
  ((elapsed < 30)) || fail "$p: timeout took ${elapsed}s (1 s limit + 1 s kill-after; 30 s allows for a loaded machine, the victims sleep 300 s)"
  no_host_procs "$m-stopped" || fail "$p: the stopped child survived: $(pgrep -af "$m-stopped")"
  pass "$p: no stopped process left (${elapsed}s)"

  # Double fork + setsid + SIGHUP/SIGTERM ignored: the command exits at once;
  # the grandchild must die with the sandbox.
  start=$(date +%s)
  OUT=$("$SBX" run "${PA[@]}" -- bash -c "
    ( setsid bash -c \"trap '' HUP TERM; exec -a $m-daemon sleep 300\" </dev/null >/dev/null 2>&1 & ) ; sleep 0.3; exit 0" 2>&1 </dev/null)
  RC=$?
  elapsed=$(($(date +%s) - start))
  expect_rc 0 "$p: the command that daemonized a grandchild exits 0"
  ((elapsed < 30)) || fail "$p: sbx waited ${elapsed}s for the daemon (it sleeps 300 s)"
  no_host_procs "$m-daemon" || fail "$p: a double-forked, setsid'd daemon survived the sandbox: $(pgrep -af "$m-daemon")"
  pass "$p: the double-forked, setsid'd daemon did not survive the sandbox"

  # kill -9 of sbx itself while daemons and ordinary children run.
  "$SBX" run "${PA[@]}" -- bash -c "
    ( setsid bash -c \"trap '' HUP TERM; exec -a $m-k9daemon sleep 300\" </dev/null >/dev/null 2>&1 & )
    (exec -a $m-k9child sleep 300) & echo ready; wait" >"$W/k9.out" 2>&1 </dev/null &
  sbx_pid=$!
  # Bounded wait (60 s): under heavy load a filtered-network start took
  # over 10 s. An sbx that exited is a real failure at once.
  started=0
  for _ in $(seq 600); do
    pgrep -f "^$m-k9daemon" >/dev/null && pgrep -f "^$m-k9child" >/dev/null && { started=1; break; }
    kill -0 "$sbx_pid" 2>/dev/null || break
    sleep 0.1
  done
  ((started)) || fail "$p: the daemon and the child did not both start within 60 s (sbx $(kill -0 "$sbx_pid" 2>/dev/null && echo still running || echo exited)): $(cat "$W/k9.out")"
  pass "$p: sandbox processes visible on the host before kill -9 of sbx"
  kill -9 "$sbx_pid"
  wait "$sbx_pid" 2>/dev/null
  no_host_procs "$m-k9" || fail "$p: processes survived kill -9 of sbx: $(pgrep -af "$m-k9")"
  pass "$p: kill -9 of sbx leaves no sandbox process alive"
  cd / || fail "cd /"
done
esc_done "13 (resource abuse)"
