#!/usr/bin/env bash
# Group 5: nested user namespaces and remounting (Flatpak CVE-2021-41133:
# the new mount API was missing from the deny-list). From inside every
# profile: unshare -Urm, clone(CLONE_NEW*), clone3, open_tree, move_mount,
# fsopen, mount(2) are refused; mounting over a protected path and
# unmounting a mask fail, and the protection is still in place afterwards.
source "$SBX_SOURCE_DIR/tests/escape/common.bash"
[[ -n ${SBX_PROBE:-} && -x ${SBX_PROBE:-} ]] || skip "SBX_PROBE (tests/probe) not built"
command -v unshare >/dev/null || skip "needs util-linux unshare"

# A hidden directory must exist for its mask to be mounted: use ~/.ssh
# (hidden by base), created for the test if the user has none.
made_ssh=0
if [[ ! -e $HOME/.ssh ]]; then mkdir -m 700 "$HOME/.ssh" && made_ssh=1; fi
echo "sbx-escape canary" >"$HOME/.ssh/sbx-escape-canary-$$"
_g5_cleanup() {
  rm -f "$HOME/.ssh/sbx-escape-canary-$$"
  ((made_ssh)) && rmdir "$HOME/.ssh" 2>/dev/null
  _cleanup_scratch
}
trap _g5_cleanup EXIT

for p in "${ESC_PROFILES[@]}"; do
  W=$(scratch)
  cd "$W" || fail "cd"
  mkdir prot && echo original >prot/file
  esc_run "$p" --ro "$W/prot" -- sh -c '
    P=$0
    t() { l=$1; shift; r=$("$@" 2>/dev/null); echo "$l=${r#errno=}"; }
    unshare -Urm true 2>/dev/null; echo "unshare_Urm=rc$?"
    unshare -U true 2>/dev/null; echo "unshare_U=rc$?"
    t clone_user "$P" clone-newuser
    t clone_ns "$P" clone-newns
    t clone3 "$P" clone3
    t unshare_mnt "$P" unshare-mount
    t open_tree "$P" open_tree
    t move_mount "$P" move_mount
    t fsopen "$P" fsopen
    t mount "$P" mount
    t pivot "$P" pivot_root
    mount --bind /tmp prot 2>/dev/null; echo "bind_over_ro=rc$?"
    mount -o remount,rw,bind prot 2>/dev/null; echo "remount_rw=rc$?"
    umount -l prot 2>/dev/null; echo "umount_ro=rc$?"
    umount -l "$HOME/.ssh" 2>/dev/null; echo "umount_mask=rc$?"
    mount -t tmpfs none prot 2>/dev/null; echo "tmpfs_over=rc$?"
    echo evil >> prot/file 2>/dev/null; echo "write_after=rc$?"
    cat "$HOME/.ssh/"sbx-escape-canary-* 2>/dev/null; echo "canary_after=rc$?"
  ' "$SBX_PROBE"
  expect_rc 0 "$p: attempts ran"
  expect_res unshare_Urm "rc[1-9][0-9]*" "$p: unshare -Urm fails"
  expect_res unshare_U "rc[1-9][0-9]*" "$p: unshare -U fails"
  expect_res clone_user EPERM "$p: clone(CLONE_NEWUSER) -> EPERM"
  expect_res clone_ns EPERM "$p: clone(CLONE_NEWNS) -> EPERM"
  expect_res clone3 ENOSYS "$p: clone3 -> ENOSYS (its flags are out of seccomp's reach)"
  expect_res unshare_mnt EPERM "$p: unshare(CLONE_NEWNS) -> EPERM"
  expect_res open_tree EPERM "$p: open_tree -> EPERM"
  expect_res move_mount EPERM "$p: move_mount -> EPERM"
  expect_res fsopen EPERM "$p: fsopen -> EPERM"
  expect_res mount EPERM "$p: mount(2) -> EPERM"
  expect_res pivot EPERM "$p: pivot_root -> EPERM"
  expect_res bind_over_ro "rc[1-9][0-9]*" "$p: bind mount over a protected path fails"
  expect_res remount_rw "rc[1-9][0-9]*" "$p: remounting a protected path read-write fails"
  expect_res umount_ro "rc[1-9][0-9]*" "$p: unmounting a protected path fails"
  expect_res umount_mask "rc[1-9][0-9]*" "$p: unmounting the ~/.ssh mask fails"
  expect_res tmpfs_over "rc[1-9][0-9]*" "$p: a tmpfs over a protected path fails"
  expect_res write_after "rc[1-9][0-9]*" "$p: the protected path is still read-only afterwards"
  expect_res canary_after "rc[1-9][0-9]*" "$p: ~/.ssh is still hidden afterwards"
  [[ $(cat "$W/prot/file") == original ]] || fail "$p: protected file changed on the host"
  pass "$p: protected file unchanged on the host"
  cd / || fail "cd /"
done
esc_done "5 (namespaces, mounts)"
