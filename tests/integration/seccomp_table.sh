#!/usr/bin/env bash
# Seccomp under `default` and `strict`: one row per blocked call. Each row
# runs sbx-probe in a fresh sandbox and asserts the errno the command sees
# AND that the supervisor reported exactly one syscall_denied event naming
# the syscall (so an EPERM that the kernel would have given anyway, e.g. for
# lack of a capability, cannot pass for the filter's).
source "$SBX_SOURCE_DIR/tests/lib.sh"
[[ -n ${SBX_PROBE:-} && -x ${SBX_PROBE:-} ]] || skip "SBX_PROBE (tests/probe) not built"

dir=$(scratch)
for mode in default strict none; do
  printf 'extends = "standard"\n[process.seccomp]\nmode = "%s"\n' "$mode" >"$dir/$mode.toml"
done

# probe MODE ARGS...: runs the probe in a sandbox with that seccomp mode, -v
# so denial events are printed ("sbx: event syscall_denied {json}").
probe() {
  local mode=$1; shift
  run_sbx run -v --net none --profile "$dir/$mode.toml" -- "$SBX_PROBE" "$@"
}

# events NAME: how many syscall_denied events name syscall NAME in $OUT.
events() { grep -c "event syscall_denied .*\"syscall\":\"$1\"" <<<"$OUT" || true; }

# row MODE "PROBE ARGS" ERRNO SYSCALL
row() {
  local mode=$1 args=$2 want=$3 sc=$4
  # shellcheck disable=SC2086
  probe "$mode" $args
  [[ $RC -eq 1 && $OUT =~ errno=$want ]] ||
    fail "$mode: $args: want errno=$want (exit 1), got exit $RC. Output:
$OUT"
  local n
  n=$(events "$sc")
  [[ $n -eq 1 ]] || fail "$mode: $args: want 1 syscall_denied event for $sc, got $n. Output:
$OUT"
  pass "$mode: $args -> errno=$want, one event for $sc"
}

# The table: probe op | errno | syscall named in the event.
table=(
  "tiocsti|EPERM|ioctl"
  "tiocsti-high|EPERM|ioctl"
  "tioclinux|EPERM|ioctl"
  "tioclinux-high|EPERM|ioctl"
  "clone-newuser|EPERM|clone"
  "clone-newns|EPERM|clone"
  "clone-newnet|EPERM|clone"
  "clone-newpid|EPERM|clone"
  "unshare-user|EPERM|unshare"
  "unshare-mount|EPERM|unshare"
  "unshare-net|EPERM|unshare"
  "setns|EPERM|setns"
  "io_uring_setup|EPERM|io_uring_setup"
  "socket-alg|EPERM|socket"
  "socket-alg-high|EPERM|socket"
  "socket-vsock|EPERM|socket"
  "socket-packet|EPERM|socket"
  "socket-key|EPERM|socket"
  "socket-netlink-audit|EPERM|socket"
  "mount|EPERM|mount"
  "umount|EPERM|umount2"
  "pivot_root|EPERM|pivot_root"
  "open_tree|EPERM|open_tree"
  "move_mount|EPERM|move_mount"
  "fsopen|EPERM|fsopen"
  "keyctl|EPERM|keyctl"
  "add_key|EPERM|add_key"
  "bpf|EPERM|bpf"
  "perf_event_open|EPERM|perf_event_open"
  "userfaultfd|EPERM|userfaultfd"
  "syslog|EPERM|syslog"
  "open_by_handle_at|EPERM|open_by_handle_at"
  "name_to_handle_at|EPERM|name_to_handle_at"
  "acct|EPERM|acct"
  "swapon|EPERM|swapon"
  "reboot|EPERM|reboot"
  "kexec_load|EPERM|kexec_load"
  "init_module|EPERM|init_module"
  "settimeofday|EPERM|settimeofday"
  "clock_settime|EPERM|clock_settime"
  "iopl|EPERM|iopl"
  "ioperm|EPERM|ioperm"
  "personality 0x0040000|EPERM|personality"
  "ptrace-attach 1|EPERM|ptrace"
  "process_vm_readv 1|EPERM|process_vm_readv"
)

for mode in default strict; do
  for entry in "${table[@]}"; do
    IFS='|' read -r args want sc <<<"$entry"
    row "$mode" "$args" "$want" "$sc"
  done

  # clone3: ENOSYS from the filter itself (libc falls back to clone), no event.
  probe "$mode" clone3
  [[ $RC -eq 1 && $OUT =~ errno=ENOSYS && $(events clone3) -eq 0 ]] ||
    fail "$mode: clone3: want errno=ENOSYS and no event. Output:
$OUT"
  pass "$mode: clone3 -> errno=ENOSYS, no event"

  # x32 ABI: the whole process is killed with SIGSYS (128+31).
  probe "$mode" x32
  expect_rc 159 "$mode: x32 syscall kills the process (SIGSYS)"
  expect_no_out '(^|[[:space:]])ok' "$mode: x32 syscall did not run"

  # i386 int 0x80: SIGSYS from the filter; a kernel booted with
  # ia32_emulation=false raises SIGSEGV before seccomp is reached.
  host=$("$SBX_PROBE" int80 >/dev/null 2>&1; echo $?)
  probe "$mode" int80
  if [[ $host -eq 0 ]]; then
    expect_rc 159 "$mode: int 0x80 kills the process (SIGSYS)"
  else
    [[ $RC -eq $host && ! $OUT =~ (^|[[:space:]])ok ]] ||
      fail "$mode: int80: host gives exit $host, sandbox $RC. Output:
$OUT"
    pass "$mode: int 0x80 does not run (kernel has no ia32 emulation: exit $RC as on the host)"
  fi

  # What must keep working under the filter.
  probe "$mode" socket-netlink-route
  expect_out '(^|[[:space:]])ok' "$mode: socket(AF_NETLINK, NETLINK_ROUTE) allowed (getaddrinfo)"
  probe "$mode" socket 2 1 0
  expect_out '(^|[[:space:]])ok' "$mode: socket(AF_INET, SOCK_STREAM) allowed"
  probe "$mode" personality 0xffffffff
  expect_out '(^|[[:space:]])ok' "$mode: personality query allowed"
  probe "$mode" clone 0
  expect_out '(^|[[:space:]])ok' "$mode: plain clone (fork) allowed"
  [[ $(grep -c 'event syscall_denied' <<<"$OUT") -eq 0 ]] || fail "$mode: fork produced an event"
  pass "$mode: no event for allowed calls"
  probe "$mode" caps
  expect_out 'Seccomp:[[:space:]]+2' "$mode: the command runs in seccomp filter mode"
  expect_out 'NoNewPrivs:[[:space:]]+1' "$mode: no_new_privs is set"
done

# Control: with the filter off the same probes get through in this very
# sandbox, so the denials above are the filter's and not the sandbox's.
for args in tiocsti tiocsti-high clone-newuser unshare-user clone3 keyctl "personality 0x0040000"; do
  # shellcheck disable=SC2086
  probe none $args
  expect_out '(^|[[:space:]])ok' "control, seccomp none: $args gets through"
done
probe none x32
expect_out 'errno=' "control, seccomp none: x32 is not killed (the kernel answers it)"

# The same table holds with the profile's own lists on top: deny wins.
printf 'extends = "standard"\n[process.seccomp]\nmode = "default"\nallow = ["@keyring"]\ndeny = ["add_key"]\n' >"$dir/lists.toml"
run_sbx run -v --net none --profile "$dir/lists.toml" -- "$SBX_PROBE" keyctl
expect_out '(^|[[:space:]])ok' "allow = [\"@keyring\"] lets keyctl through"
run_sbx run -v --net none --profile "$dir/lists.toml" -- "$SBX_PROBE" add_key
expect_out 'errno=EPERM' "deny = [\"add_key\"] beats the allowed group"

# An unknown name stops the launch with sbx's own error, naming the entry.
printf 'extends = "standard"\n[process.seccomp]\nallow = ["@mountt"]\n' >"$dir/bad.toml"
run_sbx run --net none --profile "$dir/bad.toml" -- true
expect_rc 125 "unknown seccomp group: exit 125"
expect_out "@mountt" "the error names the unknown entry"

done_testing
