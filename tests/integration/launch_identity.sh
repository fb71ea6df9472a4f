#!/usr/bin/env bash
# Who the command is: the invoking user (or --user / nobody when root), the
# name resolves, the hostname is the sandbox's, and files written in the
# work dir belong on the host to the work dir's owner.
source "$SBX_SOURCE_DIR/tests/lib.sh"
unset SUDO_UID SUDO_GID SUDO_USER

if is_root; then want_uid=65534; else want_uid=$(id -u); fi

run_sbx run --profile airgapped -- id -u
expect_rc 0 "id -u runs"
[[ $OUT == "$want_uid" ]] || fail "id -u inside is '$OUT', want $want_uid"
pass "id -u inside is $want_uid"

run_sbx run --profile airgapped -- id -un
expect_rc 0 "id -un resolves a name inside"
expect_no_out '^[0-9]+$' "the user name is a name, not a bare number"
if ! is_root; then
  [[ $OUT == "$(id -un)" ]] || fail "id -un inside is '$OUT', want $(id -un)"
  pass "id -un inside is the caller's name"
fi

run_sbx run --profile airgapped -- sh -c 'echo "$USER"; id -un'
expect_rc 0 "USER is set"
lines=($OUT)
[[ ${#lines[@]} -eq 2 && ${lines[0]} == "${lines[1]}" ]] || fail "USER and id -un differ: $OUT"
pass "USER names the sandbox user (${lines[0]})"

run_sbx run --profile airgapped -- cat /proc/self/uid_map
expect_rc 0 "read own uid_map"
[[ $(echo $OUT) == "$want_uid $want_uid 1" ]] || fail "uid_map inside is '$OUT'"
pass "only the command's uid is mapped, onto itself"

run_sbx run --profile airgapped -- hostname
expect_rc 0 "hostname runs"
[[ $OUT != "$(hostname)" ]] || fail "hostname inside equals the host's ($OUT)"
pass "hostname inside ($OUT) differs from the host's"

if is_root; then
  run_sbx run --profile airgapped --user 4321:4322 -- sh -c 'id -u; id -g; id -un'
  expect_rc 0 "--user as root"
  expect_out $'^4321\n4322\n[A-Za-z_][A-Za-z0-9_.-]*$' "--user 4321:4322 runs as 4321/4322 with a resolvable name"
  SUDO_UID=$(id -u sbx-test 2>/dev/null || echo 1001) SUDO_GID=$(id -g sbx-test 2>/dev/null || echo 1001) \
    run_sbx run --profile airgapped -- id -u
  expect_rc 0 "under sudo"
  [[ $OUT == "$(id -u sbx-test 2>/dev/null || echo 1001)" ]] || fail "SUDO_UID not used: $OUT"
  pass "root under sudo runs as SUDO_UID"
  # ~ in the profile is root's $HOME; the command's is sbx-test's: what the
  # profile hides under ~ is hidden there too (a decoy, removed at exit).
  user_home=$(getent passwd sbx-test | cut -d: -f6)
  if [[ -d $user_home ]]; then
    decoy_dir=$user_home/.ssh
    [[ -e $decoy_dir ]] || { mkdir -m 700 "$decoy_dir" && chown sbx-test: "$decoy_dir" && _SCRATCH_DIRS+=("$decoy_dir"); }
    decoy=$decoy_dir/sbx-test-decoy-$$
    echo DECOY-SSH-KEY >"$decoy" && chown sbx-test: "$decoy"
    trap 'rm -f "$decoy"; _cleanup_scratch' EXIT
    for how in sudo user; do
      if [[ $how == sudo ]]; then
        OUT=$(HOME=/root SUDO_UID=$(id -u sbx-test) SUDO_GID=$(id -g sbx-test) \
          "$SBX" run --profile standard --net none -- sh -c "id -u; cat $decoy" 2>&1 </dev/null)
      else
        OUT=$(HOME=/root "$SBX" run --profile standard --net none --user "$(id -u sbx-test)" -- \
          sh -c "id -u; cat $decoy" 2>&1 </dev/null)
      fi
      [[ $OUT == "$(id -u sbx-test)"* ]] || fail "$how: not run as sbx-test: $OUT"
      [[ $OUT != *DECOY-SSH-KEY* ]] || fail "$how: the command read its user's ~/.ssh: $OUT"
      pass "$how: ~/.ssh of the command's own home is hidden, not only root's"
    done
  fi
  run_sbx run --profile airgapped -- cat /proc/self/status
  expect_out $'Groups:\t *\n' "root's supplementary groups are dropped"
else
  run_sbx run --profile airgapped --user 0 -- id -u
  expect_rc 125 "an unprivileged caller cannot pick --user 0"
  expect_out "needs root" "the error says why"
fi

# Files the command creates in its work dir belong to the work dir's owner.
work=$(scratch)
OUT=$(cd "$work" && "$SBX" run --profile airgapped -- sh -c 'echo hi > created && ls -ln created' 2>&1 </dev/null)
RC=$?
expect_rc 0 "write a file in the work dir"
[[ -f $work/created ]] || fail "the file does not exist on the host"
owner=$(stat -c %u:%g "$work/created")
[[ $owner == "$(stat -c %u:%g "$work")" ]] || fail "created file is $owner on the host, work dir is $(stat -c %u:%g "$work")"
pass "a file created in the work dir belongs to the work dir's owner ($owner)"

done_testing
