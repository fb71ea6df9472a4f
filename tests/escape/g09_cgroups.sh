#!/usr/bin/env bash
# Group 9: cgroup escapes. CVE-2022-0492: a process that can write a cgroup
# v1 release_agent makes the host kernel run a program of its choice as
# root. Nothing below /sys/fs/cgroup may be writable from inside, no cgroup
# file system may be mounted, the command cannot move itself to another
# group, and it cannot raise its own limits (--pids 64 as the example).
source "$SBX_SOURCE_DIR/tests/escape/common.bash"

for p in "${ESC_PROFILES[@]}"; do
  name="$ESC_MARK-cg-$p-$$"
  esc_run "$p" --pids 64 --name "$name" -- sh -c '
    name=$0
    t() { l=$1; shift; "$@" 2>/dev/null; echo "$l=rc$?"; }
    ra=$(ls /sys/fs/cgroup/*/release_agent 2>/dev/null | head -1)
    echo "release_agent_path=${ra:-none}"
    t release_agent sh -c "echo /tmp/evil > $ra"
    t notify_on_release sh -c "echo 1 > /sys/fs/cgroup/pids/notify_on_release"
    t mkdir_group mkdir /sys/fs/cgroup/pids/sbx-escape-new
    t move_root sh -c "echo \$\$ > /sys/fs/cgroup/pids/cgroup.procs"
    t move_unified sh -c "echo \$\$ > /sys/fs/cgroup/unified/cgroup.procs"
    t mount_v1 mount -t cgroup -o pids cgroup /tmp
    t mount_v2 mount -t cgroup2 cgroup2 /tmp
    t unshare_cg unshare -C true
    own=$(find /sys/fs/cgroup/pids -maxdepth 4 -type d -name "$name@*" 2>/dev/null | head -1)
    if [ -n "$own" ]; then
      echo "own_limit_before=$(cat "$own/pids.max")"
      t raise_own sh -c "echo max > $own/pids.max"
      t raise_parent sh -c "echo max > $own/../pids.max"
      t own_procs sh -c "echo \$\$ > $own/../cgroup.procs"
      echo "own_limit_after=$(cat "$own/pids.max")"
    else
      echo "own_group=none"
    fi
    t write_any sh -c "for f in /sys/fs/cgroup/*/cgroup.procs /sys/fs/cgroup/*/tasks; do echo \$\$ > \$f && exit 0; done; exit 1"
  ' "$name"
  expect_rc 0 "$p: attempts ran"
  expect_no_out "release_agent_path=none" "$p: a release_agent file exists to attack (cgroup v1 here)"
  expect_res release_agent "rc[1-9][0-9]*" "$p: release_agent is not writable (CVE-2022-0492)"
  expect_res notify_on_release "rc[1-9][0-9]*" "$p: notify_on_release is not writable"
  expect_res mkdir_group "rc[1-9][0-9]*" "$p: no new cgroup can be created"
  expect_res move_root "rc[1-9][0-9]*" "$p: cannot move itself to the root pids group"
  expect_res move_unified "rc[1-9][0-9]*" "$p: cannot move itself in the v2 hierarchy"
  expect_res mount_v1 "rc[1-9][0-9]*" "$p: cannot mount a cgroup v1 hierarchy"
  expect_res mount_v2 "rc[1-9][0-9]*" "$p: cannot mount cgroup2"
  expect_res unshare_cg "rc[1-9][0-9]*" "$p: cannot unshare a cgroup namespace"
  expect_res write_any "rc[1-9][0-9]*" "$p: no cgroup.procs or tasks file of any controller is writable"
  if [[ $OUT == *own_group=none* ]]; then
    # Unprivileged here: no cgroup, so no own limit to raise (sbx warned
    # that --pids is NOT enforced; cgroup_limits.sh tests that warning).
    is_root && fail "$p: root run without its own pids group. Output: $OUT"
    expect_out "NOT enforced" "$p: (unprivileged, no cgroup here) sbx says --pids is not enforced"
  else
    expect_res own_limit_before 64 "$p: the sandbox's own pids.max is 64"
    expect_res raise_own "rc[1-9][0-9]*" "$p: cannot raise its own pids.max"
    expect_res raise_parent "rc[1-9][0-9]*" "$p: cannot raise the parent's pids.max"
    expect_res own_procs "rc[1-9][0-9]*" "$p: cannot move itself to the parent group"
    expect_res own_limit_after 64 "$p: pids.max is still 64"
  fi
done
esc_done "9 (cgroups)"
