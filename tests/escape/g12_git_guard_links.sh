#!/usr/bin/env bash
# Group 12 (git guard): symlinks planted in the git dir must not make the
# supervisor touch host files. strict snapshots the git redirection files
# before the run and, after it, moves new or changed ones aside
# (runtime/git_guard.cpp). The supervisor runs as the host user or as root;
# the sandbox cannot see the files below. A symlink it planted at
# .git/worktrees/X (-> ~/.ssh), at .git/worktrees itself, at
# .git/modules/X or at a submodule's hooks dir made the supervisor rename
# the files behind it (~/.ssh/config -> config.sbx-quarantine-TIME, found by
# a review). The decoys here stand for those files: they must keep their
# content and name, while the links themselves and the files planted in a
# real worktree dir are still quarantined and reported.
source "$SBX_SOURCE_DIR/tests/escape/common.bash"

# decoy DIR: host files named like the ones the guard looks at, outside the
# work dir (the sandbox's /tmp is private: it cannot see them).
decoy() {
  mkdir -p "$1/hooks"
  local f
  for f in config commondir gitdir config.worktree hooks/pre-commit; do
    echo "decoy $1/$f" >"$1/$f"
  done
}
# decoy_intact LABEL DIR: every decoy file keeps its content; nothing new.
decoy_intact() {
  local f
  for f in config commondir gitdir config.worktree hooks/pre-commit; do
    [[ $(cat "$2/$f" 2>/dev/null) == "decoy $2/$f" ]] ||
      fail "strict: $1: the host file $2/$f was moved or changed: $(ls -A "$2" "$2/hooks")"
  done
  [[ -z $(find "$2" -name '*sbx-quarantine*') ]] ||
    fail "strict: $1: a quarantine copy appeared next to host files: $(find "$2" -name '*sbx-quarantine*')"
  pass "strict: $1: the host files behind the link are untouched"
}
host_repo() {
  git init -q "$1" || fail "git init on the host"
}
command -v git >/dev/null || skip "needs git"
esc_args strict

# --- A: links inside .git/worktrees and .git/modules -----------------------
SSH=$(scratch) AWS=$(scratch) MOD=$(scratch) HOOKS=$(scratch)
for d in "$SSH" "$AWS" "$MOD" "$HOOKS"; do decoy "$d"; done
W=$(scratch)
host_repo "$W"
cd "$W" || fail "cd"
OUT=$("$SBX" run "${PA[@]}" -- sh -c '
  t() { l=$1; shift; "$@" >/dev/null 2>&1; echo "$l=rc$?"; }
  t mkdirs mkdir -p .git/worktrees .git/modules/real
  t wt_link ln -s "$1" .git/worktrees/a
  t wt_link2 ln -s "$2" .git/worktrees/b
  t mod_link ln -s "$3" .git/modules/m
  t hooks_link ln -s "$4" .git/modules/real/hooks
  t wt_real sh -c "mkdir -p .git/worktrees/c && echo ../.. > .git/worktrees/c/commondir"
  ' sh "$SSH" "$AWS" "$MOD" "$HOOKS" 2>&1 </dev/null)
RC=$?
expect_rc 0 "strict (links): attempts ran"
for l in mkdirs wt_link wt_link2 mod_link hooks_link wt_real; do
  expect_res "$l" rc0 "strict (links): $l can be made inside (.git stays writable)"
done
decoy_intact ".git/worktrees/a -> host dir" "$SSH"
decoy_intact ".git/worktrees/b -> host dir" "$AWS"
decoy_intact ".git/modules/m -> host dir" "$MOD"
decoy_intact ".git/modules/real/hooks -> host dir" "$HOOKS"
for l in .git/worktrees/a .git/worktrees/b .git/modules/m .git/modules/real/hooks; do
  [[ ! -e $l && ! -L $l ]] || fail "strict (links): the planted link $l is still there"
  q=$(ls -d "$l".sbx-quarantine-* 2>/dev/null | head -1)
  [[ -L $q ]] || fail "strict (links): $l was not quarantined as a link: $(ls -lA "$(dirname "$l")")"
done
pass "strict (links): each planted link is itself moved aside (NAME.sbx-quarantine-*, still a link)"
expect_out "created [^ ]*/\.git/worktrees/a, .*moved to [^ ]*/\.git/worktrees/a\.sbx-quarantine-" \
  "strict (links): sbx warns about the link at .git/worktrees/a"
[[ ! -e .git/worktrees/c/commondir ]] && ls .git/worktrees/c/commondir.sbx-quarantine-* >/dev/null 2>&1 ||
  fail "strict (links): .git/worktrees/c/commondir in a real dir was not quarantined: $(ls -A .git/worktrees/c)"
pass "strict (links): a commondir planted in a real worktree dir is still quarantined"

# --- B: .git/worktrees itself a link to a host dir -------------------------
WT=$(scratch)
decoy "$WT/x"
V=$(scratch)
host_repo "$V"
cd "$V" || fail "cd"
OUT=$("$SBX" run "${PA[@]}" -- sh -c '
  ln -s "$0" .git/worktrees; echo "link=rc$?"' "$WT" 2>&1 </dev/null)
RC=$?
expect_rc 0 "strict (worktrees link): attempt ran"
expect_res link rc0 "strict (worktrees link): .git/worktrees can be made a link inside"
decoy_intact ".git/worktrees -> host dir" "$WT/x"
[[ ! -L .git/worktrees && -L $(ls -d .git/worktrees.sbx-quarantine-* 2>/dev/null | head -1) ]] ||
  fail "strict (worktrees link): the link was not quarantined: $(ls -lA .git)"
pass "strict (worktrees link): the .git/worktrees link is itself moved aside"
# --- C: .git itself a link to the repository's git dir in the work tree ----
# The link is the user's, made before the run: the guard opens the git dir
# it leads to then, and checks that directory's redirection files at the end
# (a commondir written through the link sends host git elsewhere).
R=$(scratch)
host_repo "$R"
mv "$R/.git" "$R/gitdir" && ln -s gitdir "$R/.git" || fail "strict (.git link): set-up"
cd "$R" || fail "cd"
OUT=$("$SBX" run "${PA[@]}" -- sh -c '
  echo /tmp/evil > .git/commondir; echo "commondir=rc$?"
  mkdir -p .git/worktrees/w && echo /tmp/evil > .git/worktrees/w/commondir; echo "wt=rc$?"
  echo evil >> .git/config; echo "config=rc$?"' 2>&1 </dev/null)
RC=$?
expect_rc 0 "strict (.git link): attempts ran"
expect_res commondir rc0 "strict (.git link): a commondir can be written through the link (the git dir stays writable)"
expect_res wt rc0 "strict (.git link): so can a worktree's"
expect_res config "rc[1-9]" "strict (.git link): the config behind the link is read-only"
for f in gitdir/commondir gitdir/worktrees/w/commondir; do
  [[ ! -e $f ]] && ls "$f".sbx-quarantine-* >/dev/null 2>&1 ||
    fail "strict (.git link): $f was not quarantined: $(ls -A "$(dirname "$f")")"
done
pass "strict (.git link): the redirection files of the git dir behind .git are quarantined"
expect_out "created $R/\.git/commondir, .*moved to $R/\.git/commondir\.sbx-quarantine-" \
  "strict (.git link): sbx warns about the commondir behind the link"
[[ -L .git && $(readlink .git) == gitdir ]] || fail "strict (.git link): the link changed: $(ls -l .git)"
git -C "$R" status --porcelain >/dev/null 2>&1 || fail "strict (.git link): host git fails after the run"
pass "strict (.git link): the link stays, and host git works in the repository"
# --- D: .git a link to a git dir outside what the sandbox may write -------
# That git dir is left alone (a change there is the host's), but its index
# still names the work tree's submodules: a sub/.git the sandbox makes at a
# gitlink is quarantined (host `git status` would run its core.fsmonitor).
O=$(scratch) G=$(scratch)
git init -q "$G/repo" && mv "$G/repo/.git" "$G/outside.git" && ln -s "$G/outside.git" "$O/.git" ||
  fail "strict (outside .git link): set-up"
git -C "$O" update-index --add --cacheinfo "160000,$(printf '1%.0s' {1..40}),sub" ||
  fail "strict (outside .git link): cannot add a gitlink"
mkdir "$O/sub"
cd "$O" || fail "cd"
OUT=$("$SBX" run "${PA[@]}" -- sh -c '
  mkdir -p sub/.git/hooks && printf "[core]\n\tfsmonitor = evil\n" > sub/.git/config; echo "sub=rc$?"' \
  2>&1 </dev/null)
RC=$?
expect_rc 0 "strict (outside .git link): attempt ran"
expect_res sub rc0 "strict (outside .git link): a submodule's .git can be made in the work tree"
[[ ! -e sub/.git ]] && ls -d sub/.git.sbx-quarantine-* >/dev/null 2>&1 ||
  fail "strict (outside .git link): sub/.git at a gitlink was not quarantined: $(ls -A sub)"
pass "strict (outside .git link): the gitlinks of the linked git dir's index are still checked"
[[ -z $(find "$G/outside.git" -name '*sbx-quarantine*') ]] ||
  fail "strict (outside .git link): something was quarantined in the git dir outside"
pass "strict (outside .git link): nothing is moved in the git dir the sandbox cannot write"
# --- E: .git a gitfile naming a git dir in the work tree (--separate-git-dir)
# git takes hooks and config from that git dir: read-only like .git's; a
# commondir written there is quarantined.
E=$(scratch)
git init -q --separate-git-dir="$E/.repo.git" "$E" || fail "strict (gitfile): set-up"
cd "$E" || fail "cd"
OUT=$("$SBX" run "${PA[@]}" -- sh -c '
  echo evil > .repo.git/hooks/pre-commit; echo "hook=rc$?"
  echo "[core] fsmonitor = evil" >> .repo.git/config; echo "config=rc$?"
  echo /tmp/evil > .repo.git/commondir; echo "commondir=rc$?"' 2>&1 </dev/null)
RC=$?
expect_rc 0 "strict (gitfile): attempts ran"
expect_res hook "rc[1-9]" "strict (gitfile): the hooks of the git dir a gitfile names are read-only"
expect_res config "rc[1-9]" "strict (gitfile): so is its config"
expect_res commondir rc0 "strict (gitfile): a commondir can be written there (the git dir stays writable)"
[[ ! -e .repo.git/hooks/pre-commit ]] && ! grep -q evil .repo.git/config ||
  fail "strict (gitfile): a hook or the config changed on the host"
[[ ! -e .repo.git/commondir ]] && ls .repo.git/commondir.sbx-quarantine-* >/dev/null 2>&1 ||
  fail "strict (gitfile): the commondir was not quarantined: $(ls -A .repo.git)"
pass "strict (gitfile): nothing redirects host git after the run"
git -C "$E" status --porcelain >/dev/null 2>&1 || fail "strict (gitfile): host git fails after the run"
pass "strict (gitfile): host git works in the repository"

# --- F: a linked worktree inside the work dir (`git worktree add
# .worktrees/f`). git there takes hooks and config from the git dir its
# .git gitfile names: rewritten to a git dir the sandbox made, with a
# core.fsmonitor, it ran at the host's next `git status` in the worktree.
F=$(scratch)
M=$(scratch) # payload marker: the sandbox's /tmp is its own
git init -q "$F" && git -C "$F" -c user.name=u -c user.email=u@example.org commit -q --allow-empty -m init &&
  git -C "$F" worktree add -q -b f "$F/.worktrees/f" || fail "strict (linked worktree): set-up"
wt_gitfile=$(cat "$F/.worktrees/f/.git")
printf '#!/bin/sh\ntouch %s/ran\n' "$M" >"$F/fsmonitor.sh" && chmod 755 "$F/fsmonitor.sh"
cd "$F" || fail "cd"
OUT=$("$SBX" run "${PA[@]}" -- sh -c '
  mkdir -p planted.git/objects planted.git/refs &&
    echo "ref: refs/heads/main" > planted.git/HEAD &&
    printf "[core]\n\tfsmonitor = $PWD/fsmonitor.sh\n" > planted.git/config &&
    echo "gitdir: $PWD/planted.git" > .worktrees/f/.git; echo "gitfile=rc$?"' 2>&1 </dev/null)
RC=$?
expect_rc 0 "strict (linked worktree): attempts ran"
expect_res gitfile rc0 "strict (linked worktree): its .git can be written (the work dir is writable)"
[[ $(cat .worktrees/f/.git) == "$wt_gitfile" ]] ||
  fail "strict (linked worktree): its .git after the run: $(cat .worktrees/f/.git)"
ls .worktrees/f/.git.sbx-quarantine-* >/dev/null 2>&1 ||
  fail "strict (linked worktree): the rewritten .git was not quarantined: $(ls -A .worktrees/f)"
expect_out "changed .*/\.worktrees/f/\.git, which would make git" "strict (linked worktree): the change is reported"
git -C "$F/.worktrees/f" status --porcelain >/dev/null 2>&1 ||
  fail "strict (linked worktree): host git fails in the worktree after the run"
[[ -z $(ls -A "$M") ]] || fail "strict (linked worktree): the host's git status ran the planted fsmonitor"
pass "strict (linked worktree): its .git is put back; host git there runs nothing planted"

# --- G: a rebase left in progress with exec lines in its todo list: the
# host's `git rebase --continue` runs them. The sandbox stops a rebase at
# a `break` with an exec line after it; sbx comments that line out.
R=$(scratch)
M=$(scratch)
printf '#!/bin/sh\ntouch %s/ran\n' "$M" >"$R/payload.sh" && chmod 755 "$R/payload.sh"
git init -q "$R" && for i in 1 2; do
  git -C "$R" -c user.name=u -c user.email=u@example.org commit -q --allow-empty -m "c$i"
done || fail "strict (rebase todo): set-up"
cd "$R" || fail "cd"
OUT=$("$SBX" run "${PA[@]}" -- sh -c '
  GIT_SEQUENCE_EDITOR="printf \"break\\nexec $PWD/payload.sh\\npick $(git rev-parse --short HEAD)\\n\" >" \
    git -c user.name=u -c user.email=u@example.org rebase -q -i HEAD~1 >/dev/null 2>&1
  grep -q "^exec " .git/rebase-merge/git-rebase-todo; echo "planted=rc$?"' 2>&1 </dev/null)
RC=$?
expect_rc 0 "strict (rebase todo): attempts ran"
expect_res planted rc0 "strict (rebase todo): a rebase stopped with an exec line left in its todo"
expect_out "added exec lines to .*git-rebase-todo" "strict (rebase todo): the exec line is reported"
grep -q "^# sbx: exec " .git/rebase-merge/git-rebase-todo && ! grep -q "^exec " .git/rebase-merge/git-rebase-todo ||
  fail "strict (rebase todo): the todo after the run: $(cat .git/rebase-merge/git-rebase-todo)"
ls .git/rebase-merge/git-rebase-todo.sbx-quarantine-* >/dev/null 2>&1 ||
  fail "strict (rebase todo): the sandbox's list was not kept aside: $(ls -A .git/rebase-merge)"
git -c user.name=u -c user.email=u@example.org rebase --continue >/dev/null 2>&1 ||
  fail "strict (rebase todo): the host's git rebase --continue failed: $(git status 2>&1 | head -5)"
[[ -z $(ls -A "$M") ]] || fail "strict (rebase todo): the host's git rebase --continue ran the planted exec line"
pass "strict (rebase todo): the host's git rebase --continue finishes without running the sandbox's exec line"
cd "$SSH" || fail "cd"
esc_done "12 (git guard links)"
