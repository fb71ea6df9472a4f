#!/usr/bin/env bash
# Fail closed, say why: when the kernel refuses the sandbox's user
# namespace, sbx exits 125 with the cause and the fix and never runs the
# command unsandboxed. Simulated with user.max_user_namespaces = 0 set in a
# user namespace of our own (the sysctl is per user namespace and writable
# by its owner), the situation of hosts that disable user namespaces.
source "$SBX_SOURCE_DIR/tests/lib.sh"
command -v unshare >/dev/null || skip "needs unshare (util-linux)"
D=$(scratch)
mkdir "$D/w" && cd "$D/w" || fail "cd $D/w"
marker=$D/ran

# Root maps itself to an ordinary uid inside (sbx as root takes another
# path); the test user maps to itself. --keep-caps: the namespace's owner
# may then write its max_user_namespaces.
if is_root; then map=(--map-user=1000 --map-group=1000); else map=(--map-current-user); fi
# sbx's state dir in the scratch dir: inside the namespace the euid is not
# the host's, and its /tmp/sbx-<uid> would stay behind on the host.
mkdir -m 700 "$D/xdg" || fail "mkdir $D/xdg"
in_userns() {
  XDG_RUNTIME_DIR=$D/xdg unshare --user "${map[@]}" --keep-caps sh -c "$1" 2>&1
}
OUT=$(in_userns 'cat /proc/sys/user/max_user_namespaces') ||
  skip "cannot create a user namespace to simulate the refusal: $OUT"

# refused LIMIT WHAT PROFILE...: with user.LIMIT = 0 in our namespace, each
# profile exits 125, names the limit with its value and gives the sysctl
# fix, and the command never runs.
refused() {
  local limit=$1 what=$2 profile
  shift 2
  for profile in "$@"; do
    OUT=$(in_userns "echo 0 > /proc/sys/user/$limit || exit 99
      \"$SBX\" run -p $profile --audit-log '$D/audit-$limit-$profile' -- touch '$marker'
      echo RC=\$?")
    [[ $OUT == *"RC="* ]] || fail "could not set $limit=0: $OUT"
    RC=${OUT##*RC=}
    expect_rc 125 "-p $profile: refused with exit 125 when $what are disabled"
    expect_out "cannot create the sandbox namespaces" "-p $profile: says what failed"
    expect_out "user\.$limit=0" "-p $profile: names the cause ($limit) with its value"
    expect_out "fix: .*sysctl -w user\.$limit=" "-p $profile: gives the fix"
    [[ ! -e $marker ]] || fail "-p $profile: the command ran although the sandbox was refused"
    pass "-p $profile: the command never ran unsandboxed"
  done
}
# strict refuses an unprivileged user earlier, for its limits (also 125).
profiles=(airgapped standard)
is_root && profiles+=(strict)
refused max_user_namespaces "user namespaces" "${profiles[@]}"
# clone3 makes the network namespace too: the message names that limit,
# not the user namespaces'.
refused max_net_namespaces "network namespaces" airgapped standard

# The AppArmor case cannot be simulated without AppArmor; its message must
# point at the profile sbx ships, which must exist and grant userns.
grep -q "packaging/apparmor/sbx" "$SBX_SOURCE_DIR/runtime/namespaces.cpp" ||
  fail "the AppArmor fix does not name packaging/apparmor/sbx"
grep -q "^  userns,$" "$SBX_SOURCE_DIR/packaging/apparmor/sbx" ||
  fail "packaging/apparmor/sbx does not grant userns"
pass "the AppArmor refusal names the shipped profile, which grants userns"

done_testing
