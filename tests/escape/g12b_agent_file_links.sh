#!/usr/bin/env bash
# Group 12, symlinks: strict's agent-file protections when a symlink lies on
# the way to a protected path. A cloned repository may commit a link such as
# `.claude -> .claude-dist` (dangling until built); repo-tool and
# worktree-like layouts make `.git` a link to a git dir outside the work dir.
# The sandbox must neither remove the link and create the real thing, nor
# write through it what the host then reads as `.claude/settings.json`.
# Payloads only `touch $M/ran-NAME` in a host scratch dir the sandbox cannot
# see; after the run the test runs git on the host as the user would.
source "$SBX_SOURCE_DIR/tests/escape/common.bash"
command -v git >/dev/null || skip "needs git"

M=$(scratch) # payload marker dir: invisible inside (private /tmp)
FAKEHOME=$(scratch)
hostgit() { # git as the user would run it on the host, with a clean global config
  env -i HOME="$FAKEHOME" PATH=/usr/bin:/bin GIT_CONFIG_NOSYSTEM=1 \
    git -c user.name=u -c user.email=u@example.org "$@"
}
esc_args strict

# --- A: a dangling `.claude -> .claude-dist` committed in the repository ---
A=$(scratch)
cd "$A" || fail "cd"
ln -s .claude-dist .claude
OUT=$("$SBX" run "${PA[@]}" -- sh -c '
  t() { l=$1; shift; "$@" >/dev/null 2>&1; echo "$l=rc$?"; }
  t settings_via_link sh -c "echo {} > .claude/settings.json"
  t commands_via_link mkdir -p .claude/commands
  t settings_at_target sh -c "mkdir -p .claude-dist && echo {} > .claude-dist/settings.json"
  t link_rm rm .claude
  t link_rename mv .claude .claude.old
  t replace sh -c "rm .claude; mkdir -p .claude/commands && echo {} > .claude/settings.json"
  t ok sh -c "echo fine > notes.txt"' 2>&1 </dev/null)
RC=$?
expect_rc 0 "strict (dangling .claude link): attempts ran"
for l in settings_via_link commands_via_link settings_at_target link_rm link_rename replace; do
  expect_res "$l" "rc[1-9][0-9]*" "strict (dangling .claude link): $l is refused"
done
expect_res ok rc0 "strict (dangling .claude link): ordinary files are writable"
[[ -L .claude && $(readlink .claude) == .claude-dist ]] || fail "strict: the .claude link changed on the host: $(ls -la)"
[[ ! -e .claude-dist && ! -e .claude/settings.json ]] ||
  fail "strict: .claude/settings.json or its target appeared on the host: $(ls -laR .claude-dist 2>&1)"
pass "strict (dangling .claude link): the link stays, no settings or commands on the host, no placeholder left"

# --- B: `.git` a link to a git dir outside the work dir ---------------------
G=$(scratch) # holds the real git dir
B=$(scratch)
git init -q "$G/repo" || fail "git init on the host"
ln -s "$G/repo/.git" "$B/.git"
cd "$B" || fail "cd"
echo hi >README && hostgit add README && hostgit commit -qm init || fail "commit on the host"
OUT=$("$SBX" run "${PA[@]}" -- sh -c '
  M=$0
  t() { l=$1; shift; "$@" >/dev/null 2>&1; echo "$l=rc$?"; }
  t link_rm rm .git
  t link_rename mv .git .git.old
  t fsmonitor git config core.fsmonitor "touch $M/ran-fsmonitor; false"
  t hook sh -c "printf \"#!/bin/sh\ntouch $M/ran-hook\n\" > .git/hooks/pre-commit"
  t reinit sh -c "rm .git; git init -q . && git config core.fsmonitor \"touch $M/ran-reinit; false\""
  t ok sh -c "echo fine > notes.txt"' "$M" 2>&1 </dev/null)
RC=$?
expect_rc 0 "strict (.git links outside): attempts ran"
for l in link_rm link_rename fsmonitor hook reinit; do
  expect_res "$l" "rc[1-9][0-9]*" "strict (.git links outside): $l is refused"
done
expect_res ok rc0 "strict (.git links outside): ordinary files are writable"
[[ -L .git && $(readlink .git) == "$G/repo/.git" ]] || fail "strict: the .git link changed on the host: $(ls -la)"
! grep -q fsmonitor "$G/repo/.git/config" || fail "strict: the git dir's config changed"
echo change >>README
hostgit status >/dev/null 2>&1
hostgit commit -qam "host commit" >/dev/null 2>&1 || fail "host commit failed"
[[ -z $(ls -A "$M") ]] || fail "strict: the host's git ran code the sandbox planted: $(ls -A "$M")"
pass "strict (.git links outside): the link stays, and git on the host runs nothing the sandbox planted"

# --- C: a linked worktree, whose .git is a gitfile ("gitdir: ...") ---------
# Not a link, but the same hole: .git/hooks lies below a file, so nothing
# was protected, and the sandbox could replace the file by a new repository.
R=$(scratch)
git init -q "$R/main" && cd "$R/main" && echo hi >README && hostgit add README &&
  hostgit commit -qm init && hostgit worktree add -q "$R/wt" 2>/dev/null || fail "worktree on the host"
cd "$R/wt" || fail "cd"
gitfile=$(cat .git)
OUT=$("$SBX" run "${PA[@]}" -- sh -c '
  M=$0
  t() { l=$1; shift; "$@" >/dev/null 2>&1; echo "$l=rc$?"; }
  t gitfile_rm rm .git
  t reinit sh -c "rm .git; git init -q . && git config core.fsmonitor \"touch $M/ran-worktree; false\""
  t ok sh -c "echo fine > notes.txt"' "$M" 2>&1 </dev/null)
RC=$?
expect_rc 0 "strict (worktree gitfile): attempts ran"
for l in gitfile_rm reinit; do
  expect_res "$l" "rc[1-9][0-9]*" "strict (worktree gitfile): $l is refused"
done
[[ -f .git && $(cat .git) == "$gitfile" ]] || fail "strict: the worktree's gitfile changed on the host: $(ls -la)"
hostgit status >/dev/null 2>&1
[[ -z $(ls -A "$M") ]] || fail "strict: the host's git ran code the sandbox planted: $(ls -A "$M")"
pass "strict (worktree gitfile): the gitfile stays, and git on the host runs nothing the sandbox planted"
# --- D: a link into a missing directory and out again -----------------------
# `.vscode -> .claude/../vsc`: inside, `.claude` exists (its placeholder), so
# the link reaches `vsc`, which the host's editor reads as `.vscode` once the
# user's own `.claude` exists. It is protected like `.vscode` itself.
D=$(scratch)
cd "$D" || fail "cd"
ln -s .claude/../vsc .vscode
OUT=$("$SBX" run "${PA[@]}" -- sh -c '
  t() { l=$1; shift; "$@" >/dev/null 2>&1; echo "$l=rc$?"; }
  t through_link sh -c "mkdir -p .vscode; echo {} > .vscode/tasks.json"
  t at_target sh -c "mkdir -p vsc; echo {} > vsc/tasks.json"
  t ok sh -c "echo fine > notes.txt"' 2>&1 </dev/null)
RC=$?
expect_rc 0 "strict (.vscode -> .claude/../vsc): attempts ran"
for l in through_link at_target; do
  expect_res "$l" "rc[1-9][0-9]*" "strict (.vscode -> .claude/../vsc): $l is refused"
done
expect_res ok rc0 "strict (.vscode -> .claude/../vsc): ordinary files are writable"
[[ -L .vscode && ! -e vsc && ! -e .claude ]] ||
  fail "strict: vsc/tasks.json reached through the link, or a placeholder left: $(ls -laR 2>&1)"
pass "strict (.vscode -> .claude/../vsc): nothing lands behind the link on the host"
cd "$M" || fail "cd"
esc_done "12 (agent files behind symlinks)"
