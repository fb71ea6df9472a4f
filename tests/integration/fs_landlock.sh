#!/usr/bin/env bash
# Landlock (defence in depth behind the mounts): applied by default
# (best-effort), "required" runs on this kernel, "off" turns it off. With
# --net host the sandbox shares the host's abstract unix socket namespace;
# Landlock's scoping (ABI 6) keeps the command from connecting out of it.
source "$SBX_SOURCE_DIR/tests/lib.sh"
command -v python3 >/dev/null || skip "python3 needed"
abi=$(python3 -c 'import ctypes; print(ctypes.CDLL(None, use_errno=True).syscall(444, None, 0, 1))')
[[ $abi -ge 1 ]] || skip "Landlock not available on this kernel"
P=$(scratch)
cd "$P" || fail "cd"
for mode in off required best-effort; do
  printf 'extends = "standard"\n[process]\nlandlock = "%s"\n' "$mode" > "$P/$mode.toml"
done
run_sbx run -p "$P/required.toml" --net none -- sh -c 'echo ok > f && cat f'
expect_rc 0 "landlock = required runs and the work dir stays writable"

[[ $abi -ge 6 ]] || { echo "# ABI $abi < 6: no abstract-socket scoping to test"; done_testing; }
name="sbx-ll-$$"
python3 -c '
import socket, sys, time
s = socket.socket(socket.AF_UNIX); s.bind("\0" + sys.argv[1]); s.listen(16); time.sleep(20)' "$name" &
listener=$!
trap 'kill $listener 2>/dev/null; _cleanup_scratch' EXIT
for _ in $(seq 50); do grep -q "@$name" /proc/net/unix && break; sleep 0.1; done
grep -q "@$name" /proc/net/unix || fail "test listener did not start"
probe="import socket,sys
s = socket.socket(socket.AF_UNIX)
try:
    s.connect('\\0' + sys.argv[1]); print('CONNECTED')
except OSError as e:
    print('ERRNO', e.errno)"
run_sbx run -p "$P/off.toml" --net host -- python3 -c "$probe" "$name"
expect_out "CONNECTED" "landlock off: the host's abstract socket is reachable (the probe works)"
for mode in best-effort required; do
  run_sbx run -p "$P/$mode.toml" --net host -- python3 -c "$probe" "$name"
  expect_out "ERRNO 1$|ERRNO 1[^0-9]" "landlock $mode: connecting to a host abstract socket fails with EPERM"
done
done_testing
