#!/usr/bin/env bash
# Too few file descriptors, wherever a start runs out of them: sbx either runs
# the command or exits 125 with the fix for that (the open-file limit, never a
# fix meant for the step that failed, such as "report a bug" or "check the
# kernel"), and leaves nothing behind (state dir, placeholders, cgroups).
# The limits are swept upwards from 9 until the start succeeds, so every
# step of a start is at some limit the one that fails.
source "$SBX_SOURCE_DIR/tests/lib.sh"

P=$(scratch)  # the work dir: strict makes its placeholders (.git, .bashrc, ...) here
cd "$P" || fail "cd $P"
state() { # what sbx made: entries of the state bases (not the bases, which stay), temp files
  ls -d /tmp/sbx* /tmp/sbx-[0-9]*/{*,.new-*} /run/sbx/{*,.new-*} \
    "${XDG_RUNTIME_DIR:-/nonexistent}"/sbx/{*,.new-*} 2>/dev/null |
    grep -Ev '^/tmp/sbx-test\.|^/tmp/sbx-[0-9]+$' | sort
}
groups() { find /sys/fs/cgroup -mindepth 2 -maxdepth 12 -type d -path '*/sbx/*@*' 2>/dev/null | sort; }
state_before=$(state)
groups_before=$(groups)

# strict asks for cgroup limits, which an unprivileged user may not get here
# (cgroup_limits.sh tests that error): then strict without that requirement.
unlimited=$(scratch)/strict-unlimited.toml
printf 'extends = "strict"\n[limits]\nrequired = false\n' >"$unlimited"
for p in airgapped standard strict; do
  run_sbx run --profile "$p" -- true
  if [[ $p == strict && $RC -ne 0 ]] && ! is_root; then
    echo "# strict does not run as $(id -un) here: $(grep -m1 '^sbx: [^w]' <<<"$OUT" | cut -c1-90)"
    p=$unlimited
    run_sbx run --profile "$p" -- true
  fi
  expect_rc 0 "$p runs with the usual open-file limit"
  failed=0 ran=0 steps=""
  for n in $(seq 9 300); do
    OUT=$(ulimit -n "$n" && "$SBX" run --profile "$p" -- sh -c 'echo command-ran' 2>&1 </dev/null)
    RC=$?
    if [[ $RC -eq 0 ]]; then
      [[ $OUT == *command-ran* ]] || fail "$p, open-file limit $n: exit 0 without the command's output: $OUT"
      ran=$((ran + 1))
      [[ $ran -ge 3 ]] && break
      continue
    fi
    [[ $RC -eq 125 ]] || fail "$p, open-file limit $n: exit $RC, want 0 or 125. Output:
$OUT"
    [[ $OUT =~ fix:\ (sbx\ ran\ out\ of\ file\ descriptors\ \(open-file\ limit\ $n\)|raise\ the\ hard\ open-file\ limit) ]] ||
      fail "$p, open-file limit $n: the error does not give the open-file fix. Output:
$OUT"
    [[ -z $(ls -A "$P") ]] || fail "$p, open-file limit $n: left in the work dir: $(ls -A "$P")"
    failed=$((failed + 1))
    steps+="$(grep -m1 '^sbx: [^w]' <<<"$OUT" | cut -c1-60)"$'\n'
  done
  [[ $ran -ge 3 ]] || fail "$p: no start succeeded with up to 300 fds"
  [[ $failed -gt 3 ]] || fail "$p: only $failed limits failed: the sweep starts too high"
  pass "$p: $failed limits too low, each exit 125 with the open-file fix; then the command runs"
  echo "# $p: steps that ran out: $(sort -u <<<"$steps" | grep -c .)"
done

[[ -z $(ls -A "$P") ]] || fail "placeholders left in the work dir: $(ls -A "$P")"
pass "no placeholder left in the work dir"
[[ $(state) == "$state_before" ]] || fail "state left behind: $(comm -13 <(echo "$state_before") <(state))"
pass "no state dir or temp file left"
[[ $(groups) == "$groups_before" ]] || fail "cgroups left behind: $(comm -13 <(echo "$groups_before") <(groups))"
pass "no cgroup left"
done_testing
