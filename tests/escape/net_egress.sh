#!/usr/bin/env bash
# Group 10: network escapes, against the fake internet (tests/net), for the
# profiles with a network promise: standard and strict (network "filtered":
# only allowed names, through the DNS filter and the egress proxy) and
# airgapped (no network at all). permissive uses the host network and claims
# no network filtering; it is included only for the host's abstract unix
# sockets, which Landlock scopes. Each attempt asserts the errno inside AND
# that nothing reached the fake internet's servers (their request log).
source "$SBX_SOURCE_DIR/tests/escape/common.bash"
source "$SBX_SOURCE_DIR/tests/net/fixture.sh"
if ((ESC_FILTERED == 0)); then
  OUT=$("$SBX" run -p airgapped --net filtered -- true 2>&1 </dev/null)
  skip "network mode filtered is not available in this build: $OUT"
fi
NETPY=$SBX_SOURCE_DIR/tests/escape/net.py
A=$SBXNET_A B=$SBXNET_B

# A host loopback service and a host abstract socket that must stay out of
# reach (no --host-port), each logging whoever connects.
H=$(scratch)
# A fake ssh agent: SSH_AUTH_SOCK points at a socket in a directory under
# /var/tmp, which sandboxes see (the host's /tmp is private inside and
# would prove nothing); a file beside that directory is the control.
AGENTBASE=$(mktemp -d /var/tmp/sbx-escape.XXXXXX) && chmod 755 "$AGENTBASE" || fail "mktemp in /var/tmp"
AGENTDIR=$AGENTBASE/ssh-agent
mkdir -m 755 "$AGENTDIR" || fail "mkdir"
AGENT=$AGENTDIR/agent.sock
VISIBLE=$AGENTBASE/visible
echo sbx-escape-visible >"$VISIBLE"
"$PY" - "$H" "$AGENT" <<'PY' &
import os, socket, sys, threading
d = sys.argv[1]
tcp = socket.socket(); tcp.bind(("127.0.0.1", 0)); tcp.listen(8)
ab = socket.socket(socket.AF_UNIX); ab.bind("\0sbx-escape-abstract-%d" % os.getpid()); ab.listen(8)
# A DNS server that reads queries and never answers (upstream of the
# teardown attempt below).
silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); silent.bind(("127.0.0.1", 0))
open(d + "/port.tmp", "w").write("%d %d %d\n" % (tcp.getsockname()[1], os.getpid(), silent.getsockname()[1]))
os.rename(d + "/port.tmp", d + "/port")
def serve(s, tag):
    while True:
        c, _ = s.accept(); open(d + "/hit-" + tag, "a").write("x\n"); c.close()
# 0777: reachable by the sandbox's (mapped) uid unless sbx hides it; as
# root a 0755 socket gave EACCES even without SSH_AUTH_SOCK (not a test of
# the agent hiding). With 0777 and SSH_AUTH_SOCK unset, standard connects.
ag = socket.socket(socket.AF_UNIX); ag.bind(sys.argv[2]); os.chmod(sys.argv[2], 0o777); ag.listen(8)
threading.Thread(target=serve, args=(ab, "abstract"), daemon=True).start()
threading.Thread(target=serve, args=(ag, "agent"), daemon=True).start()
serve(tcp, "loopback")
PY
listener=$!
_net_cleanup() { kill "$listener" 2>/dev/null; rm -rf "$AGENTBASE"; _cleanup_scratch; }
trap _net_cleanup EXIT
for _ in $(seq 50); do [[ -s $H/port ]] && break; sleep 0.1; done
read -r hport hpid sport <"$H/port" || fail "host listener did not start"
export SSH_AUTH_SOCK=$AGENT
abstract="sbx-escape-abstract-$hpid"
# After our EXIT trap: net_fixture_up chains its teardown before it.
net_fixture_up
rc=$?
[[ $rc -eq 77 ]] && skip "fake internet unavailable: $SBXNET_WHY"
[[ $rc -eq 0 ]] || fail "fake internet: $SBXNET_WHY"

# standard and strict with the fake internet's DNS as upstream and its
# good.test allowed (lists append to the profile's own).
for p in standard strict; do
  esc_args "$p"
  printf 'extends = "%s"\n[network]\ndns_upstream = ["%s"]\nallow_domains = ["good.test"]\n' \
    "${PA[1]}" "$SBXNET_DNS" >"$ESC_CONF/$p-net.toml"
done

attempts=(
  raw_ip:tcp:$B,443 raw_ip_80:tcp:$B,80 ipv6:tcp:2001:db8::10,443 v4mapped:tcp:::ffff:$B,443
  udp:udp:$A,7 quic:udp:$A,443 dns_direct:dns:$SBXNET_DNS,sbx-escape-direct-$$.test
  dot:tcp:$A,853 doh_sni:tls:$A,443,dns.google
  sni_allowed_to_other:tls:$B,443,good.test sni_other_to_allowed:tls:$A,443,evil.test
  metadata:tcp:169.254.169.254,80 metadata6:tcp:fd00:ec2::254,80
  host_loopback:tcp:127.0.0.1,$hport host_veth:tcp:$SBXNET_HOST_SIDE,$hport
  abstract:abstract:$abstract
  docker:unix:/var/run/docker.sock dbus:unix:/run/dbus/system_bus_socket
  ssh_agent:unix:$AGENT
  so_mark:mark:0x5b580001 raw_tcp:rawsock:tcp raw_icmp:rawsock:icmp ping_socket:ping:x
  loopback_443:tcp:127.0.0.1,443
)
for p in standard strict airgapped; do
  W=$(scratch)
  cd "$W" || fail "cd"
  if [[ $p == airgapped ]]; then PA=(-p airgapped); else PA=(-p "$ESC_CONF/$p-net.toml"); fi
  mark=$(net_fixture_mark)
  tunnel="c2VjcmV0LXRva2VuLWV4ZmlsdHJhdGlvbi1hdHRlbXB0.sbx-escape-$$.good.test"
  OUT=$("$SBX" run "${PA[@]}" -- sh -c '
    T=$0
    getent hosts good.test >/dev/null 2>&1; echo "resolve_allowed=rc$?"
    getent hosts evil.test >/dev/null 2>&1; echo "resolve_denied=rc$?"
    getent hosts "$T" >/dev/null 2>&1; echo "tunnel=rc$?"
    if command -v dig >/dev/null; then
      dig +time=2 +tries=1 @'"$SBXNET_DNS"' evil.test >/dev/null 2>&1
      dig +time=2 +tries=1 +tcp @'"$SBXNET_DNS"' evil.test >/dev/null 2>&1
      dig +time=2 +tries=1 @'"$SBXNET_DNS"' "$T" TXT >/dev/null 2>&1
    fi
    ping -c1 -W1 '"$A"' >/dev/null 2>&1; echo "icmp=rc$?"
    ip link set lo down 2>/dev/null; echo "ip_link=rc$?"
    ip route add 203.0.113.0/24 dev lo 2>/dev/null; echo "ip_route=rc$?"
    nft flush ruleset 2>/dev/null; echo "nft_flush=rc$?"
    nft add table inet sbxescape 2>/dev/null; echo "nft_add=rc$?"
    echo "home_visible=$(cat '"$VISIBLE"' 2>&1)"
    echo "agent_env=${SSH_AUTH_SOCK:-unset}"
    exec "$@"' "$tunnel" "$PY" "$NETPY" "${attempts[@]}" 2>&1 </dev/null)
  RC=$?
  log=$(net_fixture_log_since "$mark")
  expect_rc 0 "$p: attempts ran"
  if [[ $p != airgapped ]]; then
    expect_res resolve_allowed rc0 "$p: an allowed name resolves (the filter is live: the checks are real)"
  fi
  expect_res resolve_denied "rc[1-9][0-9]*" "$p: a name outside the allowlist does not resolve"
  expect_res tunnel "rc[1-9][0-9]*" "$p: a DNS-tunnelling name below an allowed domain does not resolve"
  grep -q "^dns [^ ]* evil.test" <<<"$log" && fail "$p: the upstream DNS saw evil.test (filter bypassed). Log: $log"
  pass "$p: the real DNS server never saw evil.test (UDP, TCP, direct @server)"
  grep -q "sbx-escape-$$" <<<"$log" && fail "$p: the tunnelled name reached the upstream DNS. Log: $log"
  pass "$p: the tunnelled name never reached the upstream DNS"
  expect_res icmp "rc[1-9][0-9]*" "$p: ICMP echo to a fake-internet host fails"
  expect_res raw_ip "ECONNREFUSED|EHOSTUNREACH|ENETUNREACH" "$p: raw-IP TCP to a non-allowed host:443 fails"
  expect_res raw_ip_80 "ECONNREFUSED|EHOSTUNREACH|ENETUNREACH" "$p: raw-IP TCP to a non-allowed host:80 fails"
  ms=$(result raw_ip_ms)
  # Fast = rejected (RST / ICMP) before net.py's 3 s connect timeout, i.e.
  # not a dropped SYN. (A 1 s bound failed under heavy machine load.)
  ((ms < 3000)) || fail "$p: raw-IP refusal took ${ms} ms (should be rejected, not time out)"
  pass "$p: the refusal is fast (${ms} ms, before the 3 s connect timeout)"
  expect_res ipv6 "ECONNREFUSED|EHOSTUNREACH|ENETUNREACH|EADDRNOTAVAIL" "$p: an IPv6 literal fails"
  expect_res v4mapped "ECONNREFUSED|EHOSTUNREACH|ENETUNREACH|EADDRNOTAVAIL" "$p: an IPv4-mapped IPv6 address fails"
  expect_res udp "timeout|ECONNREFUSED|EHOSTUNREACH|ENETUNREACH|EPERM" "$p: UDP to the echo server gets no reply"
  expect_res quic "timeout|ECONNREFUSED|EHOSTUNREACH|ENETUNREACH|EPERM" "$p: UDP/443 (QUIC) gets no reply"
  # DNS to any server is answered by sbx's filter (it listens on port 53 of every address), never by it.
  expect_res dns_direct "ok rcode=[1-9][0-9]* answers=0|timeout|ECONNREFUSED|EHOSTUNREACH|ENETUNREACH|EPERM" "$p: a query sent straight to another resolver gets no answer"
  grep -q "sbx-escape-direct-$$" <<<"$log" && fail "$p: a query sent straight to the resolver reached it. Log: $log"
  pass "$p: the direct query never reached the real resolver"
  expect_res dot "ECONNREFUSED|EHOSTUNREACH|ENETUNREACH" "$p: DoT (853) to an allowed address fails"
  expect_res doh_sni "reset|tls-error|ECONNREFUSED|EHOSTUNREACH|ENETUNREACH|ECONNRESET|EPIPE" "$p: DoH with SNI dns.google to an allowed address fails"
  expect_res sni_allowed_to_other "reset|tls-error|ECONNREFUSED|EHOSTUNREACH|ENETUNREACH|ECONNRESET" "$p: SNI good.test to a non-allowed address fails"
  expect_res sni_other_to_allowed "reset|tls-error|ECONNREFUSED|EHOSTUNREACH|ENETUNREACH|ECONNRESET|EPIPE" "$p: SNI evil.test to the allowed address fails"
  grep -Eq "^tls [^ ]* (dns.google|evil.test)" <<<"$log" && fail "$p: a TLS hello with a refused SNI reached a server. Log: $log"
  grep -Eq "^(tls|http|echo|banner) $B " <<<"$log" && fail "$p: the non-allowed host $B was reached. Log: $log"
  grep -Eq "^echo [^ ]* udp" <<<"$log" && fail "$p: UDP reached the echo server. Log: $log"
  pass "$p: the fake internet logged no refused SNI, no contact with $B and no UDP"
  expect_res metadata "ECONNREFUSED|EHOSTUNREACH|ENETUNREACH" "$p: 169.254.169.254 (cloud metadata) fails"
  expect_res metadata6 "ECONNREFUSED|EHOSTUNREACH|ENETUNREACH|EADDRNOTAVAIL" "$p: fd00:ec2::254 fails"
  expect_res host_loopback "ECONNREFUSED|EHOSTUNREACH|ENETUNREACH" "$p: the host's 127.0.0.1:$hport is not reachable"
  expect_res host_veth "ECONNREFUSED|EHOSTUNREACH|ENETUNREACH" "$p: the host's own address on the veth is not reachable"
  expect_res abstract "ECONNREFUSED|EPERM|ENOENT" "$p: the host's abstract unix socket is not reachable"
  # What the filtered ruleset's accept rules rest on (docs/network.md): no
  # mark like sbx's own sockets, no forged TCP, no ICMP of the program's.
  expect_res so_mark "EPERM" "$p: SO_MARK (sbx's own sockets' mark) is refused"
  expect_res raw_tcp "EPERM|EACCES|EAFNOSUPPORT" "$p: no raw TCP socket"
  expect_res raw_icmp "EPERM|EACCES|EAFNOSUPPORT" "$p: no raw ICMP socket"
  expect_res ping_socket "EPERM|EACCES" "$p: no ping socket"
  # An allowed port on loopback: sbx's egress listener holds it, and the
  # ruleset refuses it as if nothing listened.
  expect_res loopback_443 "ECONNREFUSED" "$p: 127.0.0.1:443 is refused (no egress through loopback)"
  expect_res docker "ENOENT|EACCES" "$p: no docker.sock"
  expect_res dbus "ENOENT|EACCES" "$p: no system D-Bus socket"
  expect_res ip_link "rc[1-9][0-9]*" "$p: ip link set lo down fails"
  expect_res ip_route "rc[1-9][0-9]*" "$p: ip route add fails"
  expect_res nft_flush "rc[1-9][0-9]*" "$p: nft flush ruleset fails"
  expect_res nft_add "rc[1-9][0-9]*" "$p: nft add table fails"
  expect_res home_visible sbx-escape-visible "$p: control: a file beside the agent's directory is readable (the denial below is the agent hiding)"
  expect_res ssh_agent "ENOENT|EACCES|ECONNREFUSED" "$p: the ssh agent socket (SSH_AUTH_SOCK) is not reachable"
  [[ ! -e $H/hit-loopback && ! -e $H/hit-abstract && ! -e $H/hit-agent ]] || fail "$p: a host service got a connection: $(ls "$H")"
  pass "$p: the host's loopback service, abstract socket and ssh agent saw no connection"
  cd / || fail "cd /"
done

# The command must not be able to crash its supervisor: TCP DNS queries that
# the upstream never answers, pipelined past the filter's in-flight limit,
# are failed when the sandbox is torn down; each failure's answer let the
# connection start its next buffered query on the resolver being destroyed
# (SIGSEGV: the command's exit status, audit record and clean-up were lost).
# Timing decides whether the crash path is taken, so 3 runs per profile.
pipeline='
import socket, struct, sys, time
ns = next(l.split()[1] for l in open("/etc/resolv.conf") if l.startswith("nameserver"))
c = socket.create_connection((ns, 53), timeout=5)
q = lambda i: struct.pack(">HHHHHH", i, 0x0100, 1, 0, 0, 0) + b"\x04good\x04test\x00\x00\x01\x00\x01"
c.sendall(b"".join(struct.pack(">H", len(q(i))) + q(i) for i in range(18)))
time.sleep(0.3)
print("dns_pipeline=sent")
sys.exit(7)'
for p in standard strict; do
  esc_args "$p"
  printf 'extends = "%s"\n[network]\ndns_upstream = ["127.0.0.1:%s"]\nallow_domains = ["good.test"]\n' \
    "${PA[1]}" "$sport" >"$ESC_CONF/$p-silent.toml"
  for i in 1 2 3; do
    cd "$(scratch)" || fail "cd"
    OUT=$("$SBX" run -p "$ESC_CONF/$p-silent.toml" -- "$PY" -c "$pipeline" 2>&1 </dev/null)
    RC=$?
    expect_res dns_pipeline sent "$p: 18 pipelined TCP queries to a silent upstream were sent ($i)"
    expect_rc 7 "$p: sbx survives their teardown and exits with the command's status ($i)"
  done
done
cd / || fail "cd /"

# Nor by using up its file descriptors: each relayed connection costs the
# supervisor two sockets and two pipes. With sbx's fd limit at ~160, 40 held
# TLS connections to good.test run it out; a relay that cannot get its pipes aborted the
# whole run (exit 125, "cannot create a relay pipe") and a full accept
# backlog spun the loop. Now such connections fail alone.
hold='
import socket, ssl, sys
addr = socket.getaddrinfo("good.test", 443, socket.AF_INET, socket.SOCK_STREAM)[0][4]
tls = ssl.create_default_context()
tls.check_hostname = False
tls.verify_mode = ssl.CERT_NONE
held = []
answered = 0
for i in range(40):
    try:
        c = tls.wrap_socket(socket.create_connection(addr, timeout=3), server_hostname="good.test")
        held.append(c)
        answered += 1
    except OSError:
        pass
print("fd_exhaustion=answered%d" % answered)
sys.exit(7)'
# Which step runs out (accept, the upstream socket, the first or the second
# pipe) depends on the fds left: six limits in a row cover every case.
for try in standard:160 standard:161 standard:162 standard:163 standard:164 standard:165 strict:160; do
  p=${try%:*} lim=${try#*:}
  cd "$(scratch)" || fail "cd"
  OUT=$(prlimit --nofile="$lim:$lim" "$SBX" run -p "$ESC_CONF/$p-net.toml" -- "$PY" -c "$hold" 2>&1 </dev/null)
  RC=$?
  expect_res fd_exhaustion "answered[1-9][0-9]*" "$p: 40 held TLS connections with sbx at $lim fds: the first ones are relayed"
  expect_rc 7 "$p: sbx at $lim fds still exits with the command's status"
done
cd / || fail "cd /"

# permissive: host network by design, but the host's abstract sockets are
# scoped away by Landlock (ABI 6) -- docs/filesystem.md.
if [[ $(cat /sys/kernel/security/landlock/abi_version 2>/dev/null || echo 6) -ge 6 ]]; then
  cd "$(scratch)" || fail "cd"
  OUT=$("$SBX" run -p permissive -- "$PY" "$NETPY" "abstract:abstract:$abstract" 2>&1 </dev/null)
  RC=$?
  expect_rc 0 "permissive: attempt ran"
  expect_res abstract "EPERM|ECONNREFUSED" "permissive (host network): the host's abstract unix socket is refused"
  [[ ! -e $H/hit-abstract ]] || fail "permissive: the host's abstract socket got a connection"
  pass "permissive: the host's abstract socket saw no connection"
fi
# permissive: the host's IPC sockets (Docker, D-Bus, the ssh agent) are
# hidden by every profile (runtime/mounts_plan.cpp plan_host_sockets).
cd "$(scratch)" || fail "cd"
OUT=$("$SBX" run -p permissive -- sh -c 'echo "home_visible=$(cat "$0" 2>&1)"; exec "$@"' "$VISIBLE" \
  "$PY" "$NETPY" docker:unix:/var/run/docker.sock dbus:unix:/run/dbus/system_bus_socket "ssh_agent:unix:$AGENT" 2>&1 </dev/null)
RC=$?
expect_rc 0 "permissive: host socket attempts ran"
expect_res docker "ENOENT|EACCES" "permissive: no docker.sock"
expect_res dbus "ENOENT|EACCES" "permissive: no system D-Bus socket"
expect_res home_visible sbx-escape-visible "permissive: control: a file beside the agent's directory is readable"
expect_res ssh_agent "ENOENT|EACCES|ECONNREFUSED" "permissive: the ssh agent socket is not reachable"
[[ ! -e $H/hit-agent ]] || fail "permissive: the ssh agent got a connection"
pass "permissive: the ssh agent saw no connection"
esc_done "10 (network)"
