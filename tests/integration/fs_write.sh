#!/usr/bin/env bash
# Filesystem: only the work dir (and --rw paths) is writable; what the command
# creates there belongs on the host to the work dir's owner (root caller:
# idmapped mount), and nothing written elsewhere reaches the host.
source "$SBX_SOURCE_DIR/tests/lib.sh"
NL=$'\n'

W=$(scratch)
cd "$W" || fail "cd $W"
OUTSIDE=/var/tmp/sbx-fs-outside-$$
rm -f "$OUTSIDE"

run_sbx run --net none -- sh -c 'echo hi > created && cat created && id -u'
expect_rc 0 "writing in the work dir succeeds"
expect_out "(^|$NL)hi$NL" "the file reads back"
[[ -f $W/created ]] || fail "created file missing on the host"
owner=$(stat -c %U "$W/created")
[[ $owner == "$(stat -c %U "$W")" ]] || fail "created file owned by $owner, work dir by $(stat -c %U "$W")"
pass "created file belongs to the work dir's owner on the host ($owner)"

run_sbx run --net none -- sh -c "echo x > $OUTSIDE"
expect_rc 2 "writing outside the writable paths fails (sh: redirection error)"
expect_out "Read-only file system" "...with EROFS"
[[ ! -e $OUTSIDE ]] || fail "$OUTSIDE appeared on the host"
pass "no file appears on the host"

for target in /etc/sbx-probe /usr/local/sbx-probe "$HOME/sbx-probe" /var/tmp/sbx-probe-$$; do
  run_sbx run --net none -- sh -c "touch '$target'"
  [[ $RC -ne 0 ]] || fail "touch $target succeeded"
  [[ ! -e $target ]] || { rm -f "$target"; fail "$target appeared on the host"; }
  pass "cannot create $target"
done

# /tmp inside is the sandbox's own: writable, gone afterwards.
run_sbx run --net none -- sh -c "echo t > /tmp/sbx-inner-$$"
expect_rc 0 "/tmp is writable inside"
[[ ! -e /tmp/sbx-inner-$$ ]] || fail "/tmp write reached the host"
run_sbx run --net none -- sh -c "ls /tmp/sbx-inner-$$"
[[ $RC -ne 0 ]] || fail "/tmp content survived into the next sandbox"
pass "each sandbox gets its own /tmp; nothing reaches the host's"

# --rw makes another path writable.
R=$(scratch)
run_sbx run --net none --rw "$R" -- sh -c "echo rw > $R/f"
expect_rc 0 "--rw path is writable"
[[ $(cat "$R/f") == rw ]] || fail "--rw write not on the host"
pass "--rw write reaches the host"

# workdir_writable = false: the work dir (here below /tmp) is visible, read-only.
V=$(scratch)
echo data > "$V/in"
printf 'extends = "standard"\n[filesystem]\nworkdir_writable = false\n' > "$R/ro.toml"
OUT=$(cd "$V" && "$SBX" run -p "$R/ro.toml" --net none -- sh -c 'pwd; cat in; echo x > out' 2>&1)
expect_out "$V$NL" "read-only work dir: the command starts there"
expect_out "data" "read-only work dir: readable"
expect_out "Read-only file system" "read-only work dir: not writable"
[[ ! -e $V/out ]] || fail "file written to the read-only work dir"

if is_root && id sbx-test >/dev/null 2>&1; then
  # Root caller, work dir owned by someone else: the command (not root) may
  # write, and the files belong to that owner.
  O=$(scratch)
  chown sbx-test:sbx-test "$O"
  cd "$O" || fail "cd $O"
  run_sbx run --net none -- sh -c 'id -u; echo a > mine; mkdir d; echo b > d/f; ls -ln mine'
  expect_rc 0 "root caller: command writes in a work dir owned by sbx-test"
  expect_no_out "(^|$NL)0$NL" "the command does not run as root"
  for f in mine d d/f; do
    [[ $(stat -c %U "$O/$f") == sbx-test ]] || fail "$f owned by $(stat -c %U "$O/$f") on the host"
  done
  pass "files created by the command belong to sbx-test on the host"
  run_sbx run --net none -- sh -c 'touch /etc/x'
  [[ $RC -ne 0 ]] || fail "root caller could write /etc"
  pass "root caller: the root file system stays read-only"
  # Each writable path owned by another uid is one id-mapped tree that init
  # holds across clone; more than 254 is refused up front, with the fix.
  M=$(scratch)
  many=()
  for i in $(seq 255); do
    mkdir "$M/w$i"
    many+=(--rw "$M/w$i")
  done
  cd "$M" || fail "cd $M"
  run_sbx run --net none "${many[@]}" -- true
  expect_rc 125 "255 writable paths owned by root, command as nobody: refused"
  expect_out "more than 254 writable paths" "and says why"
  expect_out "fix: make fewer paths writable" "and the fix"
  # Below the limit (the work dir and the profile's agent state count too).
  run_sbx run --net none "${many[@]:0:400}" -- sh -c "echo x > $M/w200/f"
  expect_rc 0 "200 such paths: the command runs and writes in the last"
  [[ $(stat -c %U "$M/w200/f") == root ]] || fail "w200/f owned by $(stat -c %U "$M/w200/f")"
  pass "what it wrote belongs to the directory's owner on the host"
fi
done_testing
