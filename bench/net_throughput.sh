#!/usr/bin/env bash
# Throughput and connect latency of sbx's filtered network path
#   sandbox client -> egress listener of the port (nf_tables filter) -> egress proxy
#   (splice relay) -> fake internet
# beside, in the SAME run and against the SAME server:
#   host loopback      (iperf3 client and server both on 127.0.0.1, the ceiling),
#   host -> fixture    (the host's own route over the veth, no sandbox),
#   slirp4netns        (a fresh netns with slirp4netns --configure, MTU 65520),
#   pasta              (pasta --config-net, passt package).
# Printed as Gbit/s and as ratios sbx/pasta (target >= 1.0) and
# sbx/slirp4netns (target >= 3.0). Latency: median and p99 of TCP connect +
# HTTP request + first response byte to the fixture's HTTP server (port 80;
# through sbx the proxy peeks the Host header first).
#
# A benchmark, not a test: it never fails on the ratios. It needs ROOT: the
# fake internet (tests/net/fixture.sh) is a netns + veth only root can build,
# and slirp4netns/pasta are started from root here. Traffic goes only to
# loopback and the fixture's 198.51.100.0/24 / 203.0.113.0/24 netns.
#
#   bench/net_throughput.sh [SECONDS]   (SBX=path/to/sbx, default build/sbx;
#                                        CONNECTS=N latency samples, default 200)
set -uo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
SBX=${SBX:-$here/build/sbx}
secs=${1:-${SECONDS_PER_RUN:-5}}
connects=${CONNECTS:-200}
py=/usr/bin/python3
die() { echo "net_throughput.sh: $*" >&2; exit 2; }
[[ $(id -u) -eq 0 ]] || die "needs root (builds the fake internet of tests/net)"
[[ -x $SBX ]] || die "no sbx at $SBX (build first or set SBX)"
for t in iperf3 slirp4netns pasta; do
  command -v $t >/dev/null || die "$t not installed (scripts/install-deps)"
done
[[ -x $py ]] || die "needs $py"

export SBX_SOURCE_DIR=$here
# shellcheck source=../tests/net/fixture.sh
source "$here/tests/net/fixture.sh"
net_fixture_up || die "fake internet: $SBXNET_WHY"

port=5201
work=$(mktemp -d /tmp/sbx-netbench.XXXXXX)
chmod 755 "$work"
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  # Only ours: a bare wait would also wait for the fake internet's servers
  # (children of this shell since fixture.sh starts them), which only
  # net_fixture_down below stops; the benchmark hung here.
  wait "${pids[@]}" 2>/dev/null
  rm -rf "$work"
  net_fixture_down
}
trap cleanup EXIT

# iperf3 servers: one in the fixture on host A, one on the host's loopback.
# ip netns exec directly (not the shell function): $! is then iperf3 itself,
# which the cleanup kills.
ip netns exec "$SBXNET_NS" iperf3 -s -B "$SBXNET_A" -p $port >"$work/srv-fixture.log" 2>&1 &
pids+=($!)
iperf3 -s -B 127.0.0.1 -p $port >"$work/srv-lo.log" 2>&1 &
pids+=($!)
sleep 0.5

cat >"$work/net.toml" <<EOF
extends = "base"
[network]
mode = "filtered"
allow_ports = [80, $port]
opaque_ports = [$port]
allow_domains = ["good.test"]
dns_upstream = ["$SBXNET_DNS"]
EOF

# Latency probe: connect + request + first byte, COUNT times; prints
# "median_us p99_us" (or "error ...").
cat >"$work/lat.py" <<'EOF'
import socket, sys, time
host, n = sys.argv[1], int(sys.argv[2])
req = b"GET /anything HTTP/1.1\r\nHost: good.test\r\nConnection: close\r\n\r\n"
ts = []
for _ in range(n):
    t = time.perf_counter()
    s = socket.create_connection((host, 80), timeout=5)
    s.sendall(req)
    if not s.recv(1):
        print("error: empty reply"); sys.exit(1)
    ts.append((time.perf_counter() - t) * 1e6)
    s.close()
ts.sort()
print(int(ts[len(ts) // 2]), int(ts[min(len(ts) - 1, int(len(ts) * 0.99))]))
EOF

# Gbit/s received, from iperf3 -J on stdin.
gbps() {
  "$py" -c '
import json, sys
try:
    j = json.load(sys.stdin)
    print("%.2f" % (j["end"]["sum_received"]["bits_per_second"] / 1e9))
except Exception as e:
    print("error")'
}

# slirp4netns / pasta namespaces: a holder process in a new netns.
slirp_run() {  # CMD... inside a fresh netns served by slirp4netns
  local holder slirp rc
  unshare --net sleep 600 &
  holder=$!
  sleep 0.2
  slirp4netns --configure --mtu=65520 --disable-host-loopback "$holder" tap0 >"$work/slirp.log" 2>&1 &
  slirp=$!
  sleep 0.5
  nsenter -t "$holder" -n "$@"
  rc=$?
  kill "$slirp" "$holder" 2>/dev/null
  wait "$slirp" "$holder" 2>/dev/null
  return $rc
}
pasta_run() {  # CMD... inside a fresh netns served by pasta
  # No port forwarding in either direction; the namespace reaches the host's
  # routes through pasta's sockets (as slirp4netns does).
  # As root pasta would switch to nobody and fail to map users: --runas 0.
  pasta --quiet --runas 0 --config-net -t none -u none -T none -U none -- "$@" 2> >(grep -v -e syslog -e ping_group_range >&2)
}
sbx_run() { "$SBX" run --profile "$work/net.toml" --allow-cidr "$SBXNET_A/32" -- "$@"; }

echo "net_throughput: iperf3 -t $secs (single TCP stream, receiver side), $connects connects; kernel $(uname -r)"
declare -A tput lat
run_one() {  # NAME RUNNER...
  local name=$1
  shift
  local target=$SBXNET_A
  [[ $name == loopback ]] && target=127.0.0.1
  tput[$name]=$("$@" iperf3 -c "$target" -p $port -t "$secs" -J 2>"$work/$name.err" | gbps)
  if [[ $name != loopback ]]; then
    lat[$name]=$("$@" "$py" -c "$(cat "$work/lat.py")" "$SBXNET_A" "$connects" 2>>"$work/$name.err")
  else
    lat[$name]="-"
  fi
  printf '  %-14s %8s Gbit/s   connect+first byte median/p99 us: %s\n' "$name" "${tput[$name]}" "${lat[$name]:-error}"
  [[ ${tput[$name]} == error || -z ${lat[$name]} ]] && sed 's/^/    | /' "$work/$name.err" | tail -5
}
plain() { "$@"; }
run_one loopback plain
run_one host-fixture plain
run_one slirp4netns slirp_run
run_one pasta pasta_run
run_one sbx sbx_run

ratio() {
  "$py" -c 'import sys
a, b = sys.argv[1], sys.argv[2]
try: print("%.2fx" % (float(a) / float(b)))
except Exception: print("n/a")' "$1" "$2"
}
echo "sbx / pasta       = $(ratio "${tput[sbx]}" "${tput[pasta]}")   (target >= 1.0x)"
echo "sbx / slirp4netns = $(ratio "${tput[sbx]}" "${tput[slirp4netns]}")   (target >= 3.0x)"
echo "sbx / loopback    = $(ratio "${tput[sbx]}" "${tput[loopback]}")"
