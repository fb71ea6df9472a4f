#!/usr/bin/env bash
# Exit codes round-trip: the command's own, 128+N, 125, 126, 127.
source "$SBX_SOURCE_DIR/tests/lib.sh"

for code in 0 1 42 255; do
  run_sbx run --profile airgapped -- sh -c "exit $code"
  expect_rc "$code" "exit $code round-trips"
done

run_sbx run --profile airgapped -- sh -c 'kill -KILL $$'
expect_rc 137 "killed by SIGKILL is 128+9"
run_sbx run --profile airgapped -- sh -c 'kill -TERM $$'
expect_rc 143 "killed by SIGTERM is 128+15"

run_sbx run --profile airgapped -- sbx-no-such-command-$$
expect_rc 127 "a missing command is 127"
expect_out "not found" "and says so"

run_sbx run --profile airgapped -- /etc/hostname
expect_rc 126 "a non-executable file is 126"

run_sbx run --profile airgapped -- /etc
expect_rc 126 "a directory is 126"

run_sbx run --profile airgapped --net filtered --allow-domain example.com -- true
expect_rc 0 "network mode filtered runs the command (tests/integration/net_*.sh test the filter)"

# sbx inside sbx: the inner one cannot create namespaces (seccomp and the
# nested user namespace forbid it); it must say so and exit 125, not run
# the command unsandboxed.
run_sbx run --profile airgapped -- "$SBX" run --profile airgapped -- sh -c 'echo RAN-UNSANDBOXED'
expect_rc 125 "a sandbox that cannot be built is exit 125"
expect_no_out "RAN-UNSANDBOXED" "the command did not run"
expect_out "namespace" "the error names the namespace failure"
expect_out "fix:" "and gives a fix"

# Started with SIGCHLD ignored (some daemons and shells' children inherit
# that): the kernel would reap init itself and sbx would wait forever. The
# exit code still comes back, and the command does not inherit the ignore,
# nor any other (SIG_IGN survives execve; the worker resets what it finds
# ignored in /proc/self/status: here HUP, PIPE, USR1 and a real-time one).
if command -v python3 >/dev/null; then
  OUT=$(timeout 30 python3 -c 'import os, signal, sys
for s in (signal.SIGCHLD, signal.SIGHUP, signal.SIGPIPE, signal.SIGUSR1, signal.SIGRTMIN + 5):
    signal.signal(s, signal.SIG_IGN)
os.execv(sys.argv[1], sys.argv[1:])' "$SBX" run --profile airgapped -- sh -c 'grep SigIgn /proc/self/status; exit 42' 2>&1)
  rc=$?
  ((rc == 42)) || fail "sbx started with SIGCHLD ignored: exit $rc (want 42; 124 = hung). Output: $OUT"
  [[ $OUT == *"SigIgn:"*"0000000000000000"* ]] || fail "the command inherited ignored signals: $OUT"
  pass "signals ignored by sbx's parent (SIGCHLD and others): exit code 42 comes back, the command ignores nothing"
fi

done_testing
