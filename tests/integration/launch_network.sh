#!/usr/bin/env bash
# Network modes of the launcher: none = own netns with loopback up; host = no netns.
source "$SBX_SOURCE_DIR/tests/lib.sh"
py=/usr/bin/python3
[[ -x $py ]] || skip "needs python3"

loopback='import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(1)
c = socket.create_connection(s.getsockname(), timeout=2); a, _ = s.accept()
c.sendall(b"ping"); print(a.recv(4).decode())'
run_sbx run --profile airgapped -- "$py" -c "$loopback"
expect_rc 0 "loopback connect in --net none"
expect_out "^ping$" "loopback is up in the sandbox's netns"

# lo takes 512 KiB segments (docs/network.md): read back over rtnetlink.
run_sbx run --profile airgapped -- "$py" -c "$(cat "$SBX_SOURCE_DIR/tests/net/bulk.py")" segments
expect_rc 0 "read lo's segment sizes in --net none"
expect_out "$(expected_lo_segments)" "lo's segment sizes in --net none (512 KiB from Linux 6.4)"

run_sbx run --profile airgapped -- cat /proc/net/dev
expect_rc 0 "read /proc/net/dev"
ifaces=$(tail -n +3 <<<"$OUT" | cut -d: -f1 | tr -d ' ' | sort | tr '\n' ' ')
[[ $ifaces == "lo " ]] || fail "--net none has interfaces: $ifaces"
pass "--net none has only lo"

run_sbx run --profile airgapped -- "$py" -c 'import socket; socket.create_connection(("198.51.100.1", 80), timeout=2)'
[[ $RC -ne 0 ]] || fail "connect to 198.51.100.1 succeeded in --net none"
pass "no route out of --net none"

host_netns=$(readlink /proc/self/ns/net)
run_sbx run --profile airgapped -- readlink /proc/self/ns/net
[[ $OUT != "$host_netns" ]] || fail "--net none runs in the host's netns ($OUT)"
pass "--net none has its own network namespace"

# (stdout only: sbx warns on stderr that host mode enforces no deny_cidrs)
OUT=$("$SBX" run --profile airgapped --net host -- readlink /proc/self/ns/net 2>/dev/null </dev/null)
RC=$?
expect_rc 0 "--net host runs"
[[ $OUT == "$host_netns" ]] || fail "--net host: netns $OUT, host $host_netns"
pass "--net host shares the host's network namespace"

done_testing
