#!/bin/sh
# sbx-scope.sh ARGS...: `sbx ARGS` for the unprivileged user, started in a
# long-lived delegated group of its own (the VM's stand-in for `systemd-run
# --user --scope -p Delegate=yes`). Once an sbx has enabled controllers there,
# later ones join its supervisor leaf (cgroup v2 forbids joining a group that
# distributes controllers).
S=/sys/fs/cgroup/deleg/scope
mkdir -p "$S" 2>/dev/null
target=$S
[ -d "$S/sbx-supervisor" ] && target=$S/sbx-supervisor
echo $$ >"$target/cgroup.procs" || exit 125
exec /sbx/sbx "$@"
