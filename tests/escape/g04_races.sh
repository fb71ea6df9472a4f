#!/usr/bin/env bash
# Group 4: symlink and rename races against protected paths inside a
# writable work dir (--ro paths on every profile; strict's own .git/hooks
# etc. in g12), hard links to protected files, replacing a protected dir with
# a symlink; a racing loop inside (bounded time) flipping a symlink between a
# writable and a protected file while writing through it; and a racer in one
# sandbox flipping .git between a directory and a symlink to a host dir while
# strict sandboxes start in the same work dir (the supervisor plans mounts
# from the host side: a swap must never make the host dir writable).
source "$SBX_SOURCE_DIR/tests/escape/common.bash"

for p in "${ESC_PROFILES[@]}"; do
  W=$(scratch)
  cd "$W" || fail "cd"
  echo original >prot.txt
  mkdir -p protdir a/b && echo original >protdir/file && echo original >a/b/prot
  echo scratch >free.txt
  esc_args "$p"
  OUT=$("$SBX" run "${PA[@]}" --ro "$W/prot.txt" --ro "$W/protdir" --ro "$W/a/b/prot" -- sh -c '
    # Racing loop, 2 s: one process flips "link" between free.txt and
    # prot.txt, the other appends through it.
    ( end=$(($(date +%s) + 2)); while [ $(date +%s) -lt $end ]; do
        ln -sfn prot.txt link; ln -sfn free.txt link; done ) &
    flipper=$!
    ok=0; bad=0
    end=$(($(date +%s) + 2))
    while [ $(date +%s) -lt $end ]; do
      if echo evil >> link 2>/dev/null; then ok=$((ok+1)); else bad=$((bad+1)); fi
    done
    wait $flipper
    echo "race_writes=$ok"; echo "race_refused=$bad"
    # Rename race against the pinned parents, 1 s.
    ( end=$(($(date +%s) + 1)); while [ $(date +%s) -lt $end ]; do
        mv a a.x 2>/dev/null && mkdir -p a/b && echo evil > a/b/prot && echo ESCAPED-RENAME; mv a/b a/b.x 2>/dev/null && echo ESCAPED-RENAME2; done )
    exec "$@"' sh "$PY" "$ESC_PY" \
    hl:link:prot.txt:hl hl_dir:link:protdir/file:hl2 hl_shadow:link:/etc/shadow:sh \
    sym:symlink:prot.txt:l sym_write:write:l \
    rename_over:write:t rename_over2:rename:t:prot.txt exchange:exchange:t:prot.txt \
    dir_rename:rename:protdir:protdir.old dir_rmdir:rmdir:protdir dir_unlink:unlink:protdir/file \
    dir_symlink:symlink:/tmp:protdir dir_write:write:protdir/new dir_file_write:write:protdir/file \
    dir_exchange:exchange:free.txt:protdir parent_rename:rename:a/b:a/c \
    2>&1 </dev/null)
  RC=$?
  expect_rc 0 "$p: attempts ran"
  w=$(result race_writes)
  ((w > 0)) || fail "$p: the racing writer never wrote (the race did not run). Output: $OUT"
  pass "$p: the race ran ($w writes went through the link to the writable file, $(result race_refused) refused)"
  expect_no_out "ESCAPED-RENAME" "$p: renaming a pinned parent of a protected path fails"
  expect_res hl EXDEV "$p: hard link to a protected file -> EXDEV"
  expect_res hl_dir EXDEV "$p: hard link to a file in a protected dir -> EXDEV"
  expect_res hl_shadow "EXDEV|EPERM|EACCES" "$p: hard link to /etc/shadow fails"
  expect_res sym ok "$p: a symlink to a protected file can be made (it grants nothing)"
  expect_res sym_write EROFS "$p: writing through that symlink -> EROFS"
  expect_res rename_over ok "$p: a file in the work dir can be written (control)"
  expect_res rename_over2 "EBUSY|EXDEV" "$p: renaming a file over a protected file fails"
  expect_res exchange "EBUSY|EXDEV" "$p: RENAME_EXCHANGE with a protected file fails"
  expect_res dir_rename "EBUSY|EXDEV" "$p: renaming a protected dir away fails"
  expect_res dir_rmdir "EBUSY|ENOTEMPTY|EROFS" "$p: removing a protected dir fails"
  expect_res dir_unlink EROFS "$p: deleting a file in a protected dir -> EROFS"
  expect_res dir_symlink EEXIST "$p: replacing a protected dir with a symlink fails"
  expect_res dir_write EROFS "$p: creating a file in a protected dir -> EROFS"
  expect_res dir_file_write EROFS "$p: writing a file in a protected dir -> EROFS"
  expect_res dir_exchange "EBUSY|EXDEV" "$p: exchanging a protected dir with a file fails"
  expect_res parent_rename "EBUSY|EXDEV" "$p: renaming the protected path's parent fails"
  [[ $(cat prot.txt) == original && $(cat protdir/file) == original && $(cat a/b/prot) == original &&
     -d protdir && ! -L protdir && $(ls protdir) == file ]] ||
    fail "$p: a protected path changed on the host: $(ls -la . protdir a/b)"
  pass "$p: every protected file and dir is unchanged on the host"
  cd / || fail "cd /"
done

# Cross-run race: an unprotected sandbox (airgapped) flips W/.git between the
# real directory and a symlink to V (a host dir outside the work dir, owned
# by the caller) while strict sandboxes start in W and write into .git:
# nothing may land in V.
W=$(scratch)
V=$(scratch)
cd "$W" || fail "cd"
git init -q . || fail "git init"
"$SBX" run -p airgapped --timeout 20s -- sh -c "
  end=\$((\$(date +%s) + 4))
  while [ \$(date +%s) -lt \$end ]; do
    mv .git .git.real && ln -s $V .git && rm .git && mv .git.real .git
  done; echo racer-done" >"$V.racer" 2>&1 </dev/null &
racer=$!
esc_args strict
starts=0 refused=0
for i in 1 2 3 4 5 6 7 8; do
  "$SBX" run "${PA[@]}" -- sh -c 'touch .git/evil-'$i' .git/hooks/evil-'$i' 2>/dev/null; echo x >> .git/config 2>/dev/null; true' >/dev/null 2>&1 </dev/null
  rc=$?
  case $rc in
    0) starts=$((starts + 1)) ;;
    125) refused=$((refused + 1)) ;;
    *) fail "strict start $i during the race: exit $rc" ;;
  esac
done
wait "$racer"
grep -q racer-done "$V.racer" || fail "the racer did not run: $(cat "$V.racer")"
rm -f "$V.racer"
pass "racer ran while strict started 8 times ($starts ran, $refused refused to start)"
[[ -z $(ls -A "$V") ]] || fail "strict wrote into the host dir behind the racing symlink: $(ls -A "$V")"
pass "the host dir behind the racing .git symlink stays empty"
# (Whether strict's own writes into .git/hooks or .git/config land is not
# asserted here: the racer has no protection and could write them itself,
# and a mount's protection follows the renamed directory when a process in
# ANOTHER mount namespace renames it. What a race must never do is redirect
# a mount to a host directory outside the writable areas.)
esc_done "4 (symlink, rename and hard-link races)"
