#!/bin/sh
# delegated.sh CMD...: runs as the unprivileged user inside the delegated
# subtree; puts CMD alone into a fresh group (cgroup v2 lets a delegated
# group pass controllers down only while it holds no process itself), waits,
# and removes the group afterwards.
D=/sys/fs/cgroup/deleg
run=$D/run-$$
mkdir "$run" || exit 1
sh -c 'echo $$ > "$0/cgroup.procs" && exec "$@"' "$run" "$@"
rc=$?
# sbx leaves its supervisor leaf behind (it cannot remove the group it is in).
rmdir "$run/sbx-supervisor" 2>/dev/null
rmdir "$run" || echo "delegated.sh: cannot remove $run" >&2
exit $rc
