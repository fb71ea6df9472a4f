#!/usr/bin/env bash
# Filesystem: --ro paths inside the writable work dir stay read-only, also
# when they do not exist yet (the first missing component is masked), cannot
# be renamed away and recreated, and a symlink grants nothing.
source "$SBX_SOURCE_DIR/tests/lib.sh"
command -v git >/dev/null || skip "git not installed"

W=$(scratch)
cd "$W" || fail "cd"
git init -q . || fail "git init on the host"
echo "# user" > .bashrc
echo "ok" > README
ro=(--ro "$W/.git/hooks" --ro "$W/.git/config" --ro "$W/.bashrc")

run_sbx run --net none "${ro[@]}" -- sh -c '
  echo "evil" > .git/hooks/pre-commit && echo W1
  echo "evil" >> .bashrc && echo W2
  echo "[core] fsmonitor = evil" >> .git/config && echo W3
  rm -f .bashrc && echo W4
  mv .git/hooks .git/h2 && echo W5
  mv .git .git-moved && echo W6
  echo fine > notes.txt && echo OK1
  git add README && git -c user.email=a@b -c user.name=a commit -qm x && echo OK2
  cat .bashrc'
expect_rc 0 "sandbox ran"
expect_no_out "W[0-9]" "no write, rename or removal of a protected path succeeded"
expect_out "OK1" "ordinary files in the work dir are writable"
expect_out "OK2" "git can still commit (objects, refs, index are writable)"
expect_out "# user" "protected files stay readable"
[[ ! -e .git/hooks/pre-commit ]] || fail "pre-commit hook appeared on the host"
[[ $(cat .bashrc) == "# user" ]] || fail ".bashrc changed on the host"
grep -q fsmonitor .git/config && fail ".git/config changed on the host"
[[ -d .git && ! -e .git-moved ]] || fail ".git was moved on the host"
pass "host copies unchanged"

# .git does not exist at start: the first missing component is masked, so
# the sandbox cannot create .git (and thus no hooks or config) at all.
N=$(scratch)
cd "$N" || fail "cd"
run_sbx run --net none --ro "$N/.git/hooks" --ro "$N/.git/config" --ro "$N/.bashrc" -- sh -c '
  echo "ENTRIES $(ls -A .git | wc -l)"
  echo evil > .git/config 2>/dev/null && echo W5
  git init -q . 2>/dev/null && echo INIT
  mkdir -p .git/hooks 2>/dev/null && echo W1
  echo evil > .git/hooks/pre-commit 2>/dev/null && echo W2
  echo evil > .bashrc && echo W3
  rm -rf .git 2>/dev/null && echo W4
  echo fine > ok.txt && echo OK'
expect_rc 0 "sandbox ran"
expect_no_out "W[0-9]" "missing .git/hooks and .bashrc cannot be created"
expect_out "OK" "the rest of the work dir is writable"
# .git/config lies below the masked .git: no second placeholder inside it.
expect_out "ENTRIES 0" "the masked .git is empty inside (no placeholder below a placeholder)"
[[ ! -e $N/.git/hooks/pre-commit ]] || fail "hook created on the host"
[[ ! -e $N/.git && ! -e $N/.bashrc ]] || fail "placeholders left behind on the host: $(ls -A "$N")"
pass "no hook on the host and no placeholder left after the run"

# A name as long as a name may be (here 250 bytes, the placeholder's
# temporary name cut short to fit NAME_MAX) is protected like any other.
L=$(scratch)
cd "$L" || fail "cd"
long=$(printf 'x%.0s' {1..250})
run_sbx run --net none --ro "$L/$long" -- sh -c "echo evil > $long && echo W1; echo ENTRIES \$(ls -A | wc -c)"
expect_rc 0 "a 250-byte protected name"
expect_no_out "W1" "the missing 250-byte name cannot be created"
expect_out "ENTRIES 251" "inside, its placeholder is the work dir's one entry"
[[ -z $(ls -A "$L") ]] || fail "left behind on the host: $(ls -A "$L")"
pass "a 250-byte name is protected; its placeholder is gone after the run"

# A placeholder that cannot be made stops the start. They are made while
# clone3 builds the sandbox, so its init exists by then: it is killed, and
# the placeholders made before the failure are removed. Here one lies in a
# directory nobody may add to: immutable for root (chattr +i; root's
# permissions pass a mode of 555), read-only for the user. Root without
# CAP_LINUX_IMMUTABLE (a container) cannot lock it: this part is then
# left to the user's run, and says so.
F=$(scratch)
cd "$F" || fail "cd"
mkdir "$F/locked"
locked=1
if is_root; then
  if chattr +i "$F/locked" 2>"$F.chattr"; then
    trap 'chattr -i "$F/locked" 2>/dev/null; _cleanup_scratch' EXIT  # also if killed midway
  else
    locked=0
    echo "# not tried as root: chattr +i refused ($(cat "$F.chattr")); the user's run tries it"
  fi
  rm -f "$F.chattr"
else
  chmod 555 "$F/locked"
fi
if ((locked)); then
  run_sbx run --net none --ro "$F/.bashrc" --ro "$F/locked/.envrc" --ro "$F/.envrc" -- sh -c 'echo RAN'
  if is_root; then chattr -i "$F/locked"; else chmod 755 "$F/locked"; fi
  expect_rc 125 "a placeholder that cannot be made is an error"
  expect_out "cannot create the placeholder $F/locked/.envrc" "the error names the placeholder"
  expect_no_out "RAN" "the command did not run"
  [[ $(ls -A "$F") == locked && -z $(ls -A "$F/locked") ]] || fail "left behind on the host: $(ls -AR "$F")"
  pass "the placeholders made before the failure are gone"
fi

# A protected path that is a symlink: the link cannot be replaced and the
# target stays read-only; a link the sandbox makes grants nothing.
S=$(scratch)
T=$(scratch)
echo "dotfile" > "$T/bashrc"
ln -s "$T/bashrc" "$S/.bashrc"
cd "$S" || fail "cd"
run_sbx run --net none --ro "$S/.bashrc" --rw "$T" -- sh -c '
  cat .bashrc
  echo evil >> .bashrc && echo W1
  rm .bashrc && echo W2
  ln -sf /etc/passwd .bashrc && echo W3
  ln -s /etc escape && echo x > escape/sbx-evil && echo W4
  ln -s /root/.ssh ssh && touch ssh/evil && echo W5
  true'
expect_rc 0 "sandbox ran"
expect_out "dotfile" "a protected link still shows its target's content"
expect_no_out "W[0-9]" "link cannot be replaced, target not writable, planted links grant nothing"
[[ $(cat "$T/bashrc") == dotfile && -L $S/.bashrc ]] || fail "protected link or target changed on the host"
[[ ! -e /etc/sbx-evil ]] || fail "/etc/sbx-evil appeared"
pass "host copies unchanged"

# The masks hold on their own: even with seccomp and Landlock off, the
# command cannot unmount them, and a nested user+mount namespace only gets
# locked copies (umount: EINVAL, remount rw: EPERM).
if command -v unshare >/dev/null; then
  L=$(scratch)
  cd "$L" || fail "cd"
  git init -q . || fail "git init"
  printf 'extends = "standard"\n[process]\nseccomp = "none"\nlandlock = "off"\n' > "$L/.open.toml"
  run_sbx run -p "$L/.open.toml" --net none --ro "$L/.git/hooks" -- sh -c '
    umount -l .git/hooks 2>/dev/null && echo W1
    unshare -Urm sh -c "echo NESTED; umount -l .git/hooks && echo W2; mount -o remount,rw,bind .git/hooks && echo W3; echo x > .git/hooks/x && echo W4" 2>/dev/null
    echo end'
  expect_out "end" "sandbox ran"
  expect_out "NESTED" "the nested user+mount namespace was entered (the check is real)"
  expect_no_out "W[0-9]" "protected path survives umount/remount attempts, also from a nested namespace"
  [[ ! -e $L/.git/hooks/x ]] || fail "hook written on the host"
fi
done_testing
