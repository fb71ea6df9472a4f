#!/usr/bin/env bash
# sbx secrets add/list/rm/path and sbx run --secret NAME[:VAR]: the value is
# readable at /run/secrets/NAME inside (tmpfs, 0400, the command's uid) and
# nowhere else: not in sbx's argv or environment (/proc/PID/environ, ps e),
# not in the audit log, not in the run report.
source "$SBX_SOURCE_DIR/tests/lib.sh"

work=$(scratch)
export XDG_DATA_HOME=$work/data
store=$XDG_DATA_HOME/sbx/secrets
cd "$work" || fail "cd $work"
# A value no other file on the machine contains.
VALUE="sbx-secret-$$-$RANDOM$RANDOM"

# ---------------------------------------------------------------- store
run_sbx secrets path
expect_rc 0 "secrets path"
[[ $OUT == "$store" ]] || fail "secrets path printed '$OUT', want $store"
pass "secrets path is \$XDG_DATA_HOME/sbx/secrets"

OUT=$(printf '%s\n' "$VALUE" | "$SBX" secrets add api 2>&1); RC=$?
expect_rc 0 "secrets add NAME reads the value on stdin"
expect_no_out "$VALUE" "add does not print the value"
[[ $(stat -c %a "$store") == 700 ]] || fail "store mode $(stat -c %a "$store")"
[[ $(stat -c %a "$store/api") == 600 ]] || fail "secret mode $(stat -c %a "$store/api")"
pass "store 0700, secret 0600"
[[ $(cat "$store/api") == "$VALUE" ]] || fail "stored value differs (trailing newline kept?)"
pass "stdin value stored without its trailing newline"

OUT=$(printf 'other\n' | "$SBX" secrets add api 2>&1); RC=$?
expect_rc 125 "adding an existing name without --force is refused"
expect_out "exists already.*--force" "the refusal names --force"

MY_VAR="env-$VALUE" run_sbx secrets add fromenv --from-env MY_VAR
expect_rc 0 "secrets add --from-env"
printf 'file-%s' "$VALUE" >"$work/f"
run_sbx secrets add fromfile --from-file "$work/f"
expect_rc 0 "secrets add --from-file"
[[ $(cat "$store/fromfile") == "file-$VALUE" ]] || fail "--from-file value differs"
pass "--from-file value stored as is"

for bad in ../x .hidden 'a b' 'a/b' ''; do
  run_sbx secrets add "$bad" --from-env HOME
  expect_rc 125 "invalid name '$bad' refused"
done

run_sbx secrets list
expect_rc 0 "secrets list"
expect_out $'NAME +UPDATED.*\napi +[0-9]{4}-[0-9]{2}-[0-9]{2} ' "list shows names and dates"
expect_out "fromenv" "list shows every name"
expect_no_out "$VALUE" "list never shows a value"

# ------------------------------------------------------------------ run
audit="$work/audit.jsonl"
report="$work/report.json"
# The sandbox prints what it sees; it also sleeps so that sbx's own
# /proc/PID/environ and cmdline can be read while it runs.
"$SBX" run -p airgapped --audit-log "$audit" --report "$report" --secret api \
  --secret fromenv:TOKEN_VAR -- sh -c '
    stat -c "mode=%a uid=%u" /run/secrets/api
    echo "me=$(id -u)"
    echo "file=$(cat /run/secrets/api)"
    echo "env=$TOKEN_VAR"
    grep -q " /run/secrets tmpfs " /proc/mounts && echo "fs=tmpfs"
    touch /run/secrets/api 2>/dev/null || echo "write=refused"
    sleep 3' >"$work/out" 2>&1 &
sbx_pid=$!
sleep 1.5
# sbx itself: no value in its environment, argv, nor in any `ps e` line.
if tr '\0' '\n' </proc/$sbx_pid/environ >"$work/environ" 2>/dev/null; then
  grep -q "$VALUE" "$work/environ" && fail "the value is in /proc/<sbx>/environ"
  pass "value absent from /proc/<sbx pid>/environ"
else
  # While its sandbox runs sbx is not dumpable (its init shares its memory,
  # docs/launch.md): only root may read its environ.
  [[ $(id -u) != 0 && $(stat -c %u "/proc/$sbx_pid/environ") == 0 ]] ||
    fail "cannot read sbx's environ"
  pass "/proc/<sbx pid>/environ is root's only (sbx is not dumpable while the sandbox runs)"
fi
grep -q "$VALUE" /proc/$sbx_pid/cmdline && fail "the value is in sbx's argv"
pass "value absent from sbx's argv"
ps eww -u "$(id -u)" >"$work/ps" 2>&1
grep -q "sbx.*--secret api" "$work/ps" || fail "ps e does not show the sbx process (test broken). ps:
$(cat "$work/ps")"
grep "sbx.*--secret" "$work/ps" | grep -q -- "$VALUE" && fail "the value shows in ps e of sbx"
pass "value absent from ps e (sbx's line is there, without it)"
grep "sh -c" "$work/ps" | grep -v TOKEN_VAR | grep -q -- "-file-$VALUE" && fail "file value in ps e"
wait $sbx_pid
RC=$?
OUT=$(cat "$work/out")
expect_rc 0 "the sandbox ran"
expect_out "mode=400 uid=$(echo "$OUT" | sed -n 's/^me=//p')" "/run/secrets/api: mode 0400, the command's uid"
expect_out "file=$VALUE" "the secret is readable at /run/secrets/api"
expect_out "env=env-$VALUE" "NAME:VAR sets the variable inside"
expect_out "fs=tmpfs" "/run/secrets is a tmpfs"
expect_out "write=refused" "/run/secrets is read-only"
[[ -s $audit ]] || fail "no audit log written"
grep -q -- "$VALUE" "$audit" && fail "the value is in the audit log"
pass "value absent from the audit log"
grep -q '"api"\|--secret' "$audit" || true
[[ -s $report ]] || fail "no report written"
grep -q -- "$VALUE" "$report" && fail "the value is in the run report"
pass "value absent from the run report"

# Secrets are not visible to a sandbox without --secret, and the store is
# hidden (base profile) even when the command knows where it is.
run_sbx run -p airgapped -- sh -c "ls /run/secrets 2>&1; cat '$store/api' 2>&1; echo done"
expect_rc 0 "run without --secret"
expect_no_out "$VALUE" "no secret without --secret, store unreadable inside"

run_sbx run -p airgapped --secret nosuch -- true
expect_rc 125 "--secret of an unknown name is refused"
expect_out "no secret named 'nosuch'.*sbx secrets add nosuch" "the refusal says how to add it"

chmod 644 "$store/api"
run_sbx run -p airgapped --secret api -- true
expect_rc 125 "a secret file others can read is refused"
expect_out "chmod 600" "the refusal gives the chmod"
chmod 600 "$store/api"

run_sbx secrets rm api
expect_rc 0 "secrets rm"
[[ ! -e $store/api ]] || fail "secrets rm left the file"
pass "secrets rm removes the file"
run_sbx secrets rm api
expect_rc 125 "rm of a missing name is an error"

done_testing
