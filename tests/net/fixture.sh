#!/usr/bin/env bash
# The fake internet for network tests (see tests/net/README.md).
#
#   source "$SBX_SOURCE_DIR/tests/net/fixture.sh"
#   net_fixture_up || skip "$SBXNET_WHY"    # sets SBXNET_* (below), tears down at exit
#   curl --cacert "$SBXNET_CERT" https://good.test/ --resolve good.test:443:$SBXNET_A
#
# or, to share one fixture with unprivileged test runs (as root):
#   tests/net/fixture.sh up-shared | down-shared | status
#
# Topology (root only; never touches 192.0.2.0/24, eth0 or the default route):
#
#   host netns                         netns sbxnet-<id>
#   sbxh<id> 198.51.100.1/24  <--veth-->  sbxn<id> 198.51.100.2/24
#   route 203.0.113.0/24 via .2          lo: 198.51.100.10 (A), .20 (A2), .53 (DNS),
#                                            203.0.113.10 (B); NO default route
#   IPv6: 2001:db8:1::1/64 <--veth--> 2001:db8:1::2/64; route 2001:db8:100::/48
#   via ::2; lo: 2001:db8:100::10 (A6), 2001:db8:100::53 (DNS6)
#
# Servers (servers.py) on A, A2 and B: HTTP 80, TLS 443 (cert for *.test names,
# CA = the cert itself: $SBXNET_CERT), TCP echo 7, UDP echo 7, banner 22; DNS
# on 198.51.100.53:53 (UDP+TCP), authoritative for test. only (zone.txt).
# Every request is logged to $SBXNET_LOG.

SBXNET_RANGE_A=198.51.100.0/24
SBXNET_RANGE_B=203.0.113.0/24
SBXNET_HOST_SIDE=198.51.100.1
SBXNET_NS_SIDE=198.51.100.2
SBXNET_A=198.51.100.10
SBXNET_A2=198.51.100.20
SBXNET_B=203.0.113.10
SBXNET_DNS=198.51.100.53
# IPv6 (documentation range 2001:db8::/32): the veth pair 2001:db8:1::/64,
# hosts in 2001:db8:100::/48 on the netns's lo. Added by net_fixture_ipv6
# (also to a shared fixture that was built before IPv6 existed).
SBXNET_RANGE6_LINK=2001:db8:1::/64
SBXNET_RANGE6=2001:db8:100::/48
SBXNET_HOST_SIDE6=2001:db8:1::1
SBXNET_NS_SIDE6=2001:db8:1::2
SBXNET_A6=2001:db8:100::10
SBXNET_DNS6=2001:db8:100::53
SBXNET_LOCK=/run/sbxnet.lock
SBXNET_SHARED_DIR=/run/sbxnet-shared
_SBXNET_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
_SBXNET_PY=/usr/bin/python3  # Debian's, not a user's pyenv shim: same for every user
export SBXNET_RANGE_A SBXNET_RANGE_B SBXNET_HOST_SIDE SBXNET_NS_SIDE SBXNET_A SBXNET_A2 SBXNET_B SBXNET_DNS
export SBXNET_RANGE6_LINK SBXNET_RANGE6 SBXNET_HOST_SIDE6 SBXNET_NS_SIDE6 SBXNET_A6 SBXNET_DNS6

_sbxnet_export() {
  export SBXNET_ID SBXNET_NS SBXNET_DIR SBXNET_LOG SBXNET_CERT SBXNET_HOST_IF SBXNET_OWNED
}

# Uses the shared fixture when one is up; else (root) builds a private one.
# Returns 0 when ready; 77 with $SBXNET_WHY when it cannot be built.
net_fixture_up() {
  SBXNET_WHY=""
  if [[ -r $SBXNET_SHARED_DIR/env ]]; then
    # shellcheck disable=SC1091
    source "$SBXNET_SHARED_DIR/env"
    if [[ -e /run/netns/$SBXNET_NS ]] && [[ -e $SBXNET_DIR/ready ]]; then
      SBXNET_OWNED=0
      _sbxnet_export
      return 0
    fi
  fi
  if [[ $(id -u) -ne 0 ]]; then
    SBXNET_WHY="the fake internet needs root (as root: tests/net/fixture.sh up-shared)"
    return 77
  fi
  local id=${1:-$(printf '%x' $$)}
  _sbxnet_build "$id" private || return $?
  SBXNET_OWNED=1
  _sbxnet_export
  # Tear down at exit, before whatever EXIT trap the caller already had.
  local prev
  prev=$(trap -p EXIT | sed -E "s/^trap -- '(.*)' EXIT$/\1/")
  # shellcheck disable=SC2064
  trap "net_fixture_down; $prev" EXIT
  return 0
}

_sbxnet_fail() {
  SBXNET_WHY=$1
  echo "net fixture: $1" >&2
  return 1
}

# Refuses to build over ranges the host already uses (other than by a
# previous fixture): the fixture must never shadow real routes.
_sbxnet_preflight() {
  local r
  for r in $SBXNET_RANGE_A $SBXNET_RANGE_B; do
    if ip -4 route show to match "${r%/*}" | grep -v '^default' | grep -qv ' dev sbxh'; then
      _sbxnet_fail "$r is already routed on this host: $(ip -4 route show to match "${r%/*}" | grep -v '^default')"
      return 1
    fi
    if ip -4 addr show | grep -v ' sbxh' | grep -q "inet ${r%.*}\."; then
      _sbxnet_fail "an address of $r is assigned on this host"
      return 1
    fi
  done
}

# Called with the fixture lock held: no other fixture is being built or up
# privately, so every private fixture's namespace and directory left here
# belongs to a run that was killed before its EXIT trap.
_sbxnet_remove_stale() {
  local ns dir keep=${1:-}
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep '^sbxnet-' || true); do
    [[ $ns == "$keep" ]] && continue
    ip netns pids "$ns" 2>/dev/null | xargs -r kill 2>/dev/null
    ip netns del "$ns" 2>/dev/null
  done
  for dir in /tmp/sbxnet.??????; do
    [[ -d $dir && ! -L $dir && -O $dir ]] && rm -rf "$dir"
  done
}

_sbxnet_build() {
  local id=$1 mode=$2
  command -v ip >/dev/null || { _sbxnet_fail "ip (iproute2) missing"; return 1; }
  [[ -x $_SBXNET_PY ]] || { _sbxnet_fail "$_SBXNET_PY missing"; return 1; }
  command -v openssl >/dev/null || { _sbxnet_fail "openssl missing"; return 1; }
  mkdir -p "$(dirname "$SBXNET_LOCK")"
  # One fixture at a time owns the two ranges: wait for the previous one.
  exec {SBXNET_LOCK_FD}>"$SBXNET_LOCK"
  flock -w 300 "$SBXNET_LOCK_FD" || { _sbxnet_fail "timed out waiting for $SBXNET_LOCK"; return 1; }
  # Holding the lock, any other fixture namespace is a leftover of a killed run.
  _sbxnet_remove_stale ""
  _sbxnet_preflight || return 1

  SBXNET_ID=$id
  SBXNET_NS=sbxnet-$id
  SBXNET_HOST_IF=sbxh$id
  local ns_if=sbxn$id
  if [[ $mode == shared ]]; then
    SBXNET_DIR=$SBXNET_SHARED_DIR
    rm -rf "$SBXNET_DIR"
    mkdir -p "$SBXNET_DIR"
  else
    SBXNET_DIR=$(mktemp -d /tmp/sbxnet.XXXXXX)
  fi
  chmod 755 "$SBXNET_DIR"
  SBXNET_LOG=$SBXNET_DIR/servers.log
  SBXNET_CERT=$SBXNET_DIR/cert.pem
  : >"$SBXNET_LOG"
  chmod 644 "$SBXNET_LOG"

  ip netns add "$SBXNET_NS" || { _sbxnet_fail "ip netns add failed"; return 1; }
  ip link add "$SBXNET_HOST_IF" type veth peer name "$ns_if" netns "$SBXNET_NS" ||
    { _sbxnet_fail "cannot create the veth pair"; return 1; }
  ip addr add "$SBXNET_HOST_SIDE/24" dev "$SBXNET_HOST_IF"
  ip link set "$SBXNET_HOST_IF" up
  ip route add "$SBXNET_RANGE_B" via "$SBXNET_NS_SIDE" dev "$SBXNET_HOST_IF"
  local nsx=(ip netns exec "$SBXNET_NS")
  "${nsx[@]}" ip link set lo up
  "${nsx[@]}" ip addr add "$SBXNET_NS_SIDE/24" dev "$ns_if"
  "${nsx[@]}" ip link set "$ns_if" up
  local a
  for a in $SBXNET_A $SBXNET_A2 $SBXNET_DNS $SBXNET_B; do
    "${nsx[@]}" ip addr add "$a/32" dev lo
  done

  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3 \
    -keyout "$SBXNET_DIR/key.pem" -out "$SBXNET_CERT" -subj "/CN=good.test" \
    -addext "subjectAltName=DNS:good.test,DNS:*.good.test,DNS:edge.cdn.test,DNS:shared.test,DNS:evil.test,DNS:other.test,DNS:ttl1.test,DNS:big.test,IP:$SBXNET_A,IP:$SBXNET_A2,IP:$SBXNET_B" \
    -addext "basicConstraints=critical,CA:TRUE" >/dev/null 2>&1 ||
    { _sbxnet_fail "openssl could not create the test certificate"; return 1; }
  chmod 644 "$SBXNET_CERT" "$SBXNET_DIR/key.pem"

  local zones=(--zone "$_SBXNET_HERE/zone.txt")
  [[ -n ${SBXNET_ZONE_EXTRA:-} ]] && zones+=(--zone "$SBXNET_ZONE_EXTRA")
  "${nsx[@]}" "$_SBXNET_PY" "$_SBXNET_HERE/servers.py" \
    --host "$SBXNET_A" --host "$SBXNET_A2" --host "$SBXNET_B" --dns-addr "$SBXNET_DNS" \
    "${zones[@]}" --cert "$SBXNET_CERT" --key "$SBXNET_DIR/key.pem" \
    --log "$SBXNET_LOG" --ready "$SBXNET_DIR/ready" \
    >"$SBXNET_DIR/servers.out" 2>&1 </dev/null {SBXNET_LOCK_FD}>&- &
  # (The servers must not inherit the lock fd: an orphan of a killed run would
  # hold the lock and make every later fixture wait.)
  SBXNET_SERVERS_PID=$!
  local i
  for ((i = 0; i < 100; i++)); do
    [[ -e $SBXNET_DIR/ready ]] && break
    kill -0 "$SBXNET_SERVERS_PID" 2>/dev/null ||
      { _sbxnet_fail "servers.py exited: $(cat "$SBXNET_DIR/servers.out")"; return 1; }
    sleep 0.1
  done
  [[ -e $SBXNET_DIR/ready ]] || { _sbxnet_fail "servers.py not ready after 10 s"; return 1; }
  chmod 644 "$SBXNET_DIR/ready"
  # IPv6 where the host has it; IPv4 tests do not depend on it.
  if [[ -e /proc/net/if_inet6 ]]; then net_fixture_ipv6 || echo "net fixture: no IPv6: $SBXNET_WHY" >&2; fi
  if [[ $mode == shared ]]; then
    cat >"$SBXNET_DIR/env" <<EOF
SBXNET_ID=$SBXNET_ID
SBXNET_NS=$SBXNET_NS
SBXNET_DIR=$SBXNET_DIR
SBXNET_LOG=$SBXNET_LOG
SBXNET_CERT=$SBXNET_CERT
SBXNET_HOST_IF=$SBXNET_HOST_IF
EOF
    chmod 644 "$SBXNET_DIR/env"
    # The shared fixture outlives this shell: release the lock for others.
    exec {SBXNET_LOCK_FD}>&-
  fi
  return 0
}

# Removes a fixture this shell built (no-op for a shared one it only uses).
net_fixture_down() {
  [[ ${SBXNET_OWNED:-0} == 1 ]] || return 0
  SBXNET_OWNED=0
  _sbxnet_destroy
  [[ -n ${SBXNET_LOCK_FD:-} ]] && exec {SBXNET_LOCK_FD}>&-
  return 0
}

_sbxnet_destroy() {
  # Killing every process in the netns also covers servers.py's threads.
  ip netns pids "$SBXNET_NS" 2>/dev/null | xargs -r kill 2>/dev/null
  [[ -n ${SBXNET_SERVERS_PID:-} ]] && wait "$SBXNET_SERVERS_PID" 2>/dev/null
  # Deleting the netns destroys its veth end, which destroys the host end and
  # with it the address and both routes.
  ip netns del "$SBXNET_NS" 2>/dev/null
  ip link del "$SBXNET_HOST_IF" 2>/dev/null
  [[ $SBXNET_DIR == /tmp/sbxnet.* || $SBXNET_DIR == "$SBXNET_SHARED_DIR" ]] && rm -rf "$SBXNET_DIR"
  return 0
}

# --- IPv6 --------------------------------------------------------------------

# Becomes a command without the fixture lock fd (when this shell holds it).
# Only for a background job (`_sbxnet_no_lock cmd... &`): it execs, so the
# job's subshell does not linger holding the lock while the command runs.
_sbxnet_no_lock() {
  if [[ -n ${SBXNET_LOCK_FD:-} ]]; then exec "$@" {SBXNET_LOCK_FD}>&-; else exec "$@"; fi
}

# True when the fixture serves IPv6 (its second servers.py is ready).
net_fixture_has_ipv6() { [[ -e $SBXNET_DIR/ready6 ]]; }

# Adds IPv6 to the fixture in place (idempotent; IPv4 users are not
# disturbed): addresses on the veth pair and the netns's lo, a route for
# 2001:db8:100::/48 on the host, and a second servers.py on A6 (HTTP, TLS,
# echo, banner) and DNS6 (same zone). Root only; 0 when ready, else 77 with
# $SBXNET_WHY.
net_fixture_ipv6() {
  SBXNET_WHY=""
  net_fixture_has_ipv6 && return 0
  if [[ $(id -u) -ne 0 ]]; then
    SBXNET_WHY="the fake internet has no IPv6 yet (as root: tests/net/fixture.sh ipv6-shared)"
    return 77
  fi
  [[ -e /proc/net/if_inet6 ]] || { SBXNET_WHY="IPv6 is disabled on this host"; return 77; }
  local r
  # Never shadow a real route: the documentation ranges must be unused.
  r=$(ip -6 route show to match "${SBXNET_A6}" | grep -v '^default' | grep -v " dev $SBXNET_HOST_IF" || true)
  [[ -z $r ]] || { _sbxnet_fail "$SBXNET_RANGE6 is already routed on this host: $r"; return 1; }
  local nsx=(ip netns exec "$SBXNET_NS") ns_if=sbxn$SBXNET_ID
  ip -6 addr replace "$SBXNET_HOST_SIDE6/64" dev "$SBXNET_HOST_IF" nodad
  "${nsx[@]}" ip -6 addr replace "$SBXNET_NS_SIDE6/64" dev "$ns_if" nodad
  "${nsx[@]}" ip -6 addr replace "$SBXNET_A6/128" dev lo
  "${nsx[@]}" ip -6 addr replace "$SBXNET_DNS6/128" dev lo
  ip -6 route replace "$SBXNET_RANGE6" via "$SBXNET_NS_SIDE6" dev "$SBXNET_HOST_IF"
  local zones=(--zone "$_SBXNET_HERE/zone.txt")
  [[ -n ${SBXNET_ZONE_EXTRA:-} ]] && zones+=(--zone "$SBXNET_ZONE_EXTRA")
  # (Like the IPv4 servers, these must not inherit the fixture lock.)
  _sbxnet_no_lock "${nsx[@]}" "$_SBXNET_PY" "$_SBXNET_HERE/servers.py" \
    --host "$SBXNET_A6" --dns-addr "$SBXNET_DNS6" "${zones[@]}" \
    --cert "$SBXNET_CERT" --key "$SBXNET_DIR/key.pem" \
    --log "$SBXNET_LOG" --ready "$SBXNET_DIR/ready6" \
    >"$SBXNET_DIR/servers6.out" 2>&1 </dev/null &
  local pid=$! i
  for ((i = 0; i < 100; i++)); do
    [[ -e $SBXNET_DIR/ready6 ]] && break
    kill -0 "$pid" 2>/dev/null ||
      { _sbxnet_fail "servers.py (IPv6) exited: $(cat "$SBXNET_DIR/servers6.out")"; return 1; }
    sleep 0.1
  done
  [[ -e $SBXNET_DIR/ready6 ]] || { _sbxnet_fail "servers.py (IPv6) not ready after 10 s"; return 1; }
  chmod 644 "$SBXNET_DIR/ready6"
  return 0
}

# --- helpers for tests -------------------------------------------------------

# Run a command inside the fake internet (root only).
net_fixture_exec() { ip netns exec "$SBXNET_NS" "$@"; }
# A filtered profile at $1 that allows the TCP echo port 7, uninspected
# (opaque: the bytes are no TLS or HTTP), to be used with --allow-cidr.
net_fixture_echo_profile() {
  printf '%s\n' 'extends = "base"' '[network]' 'mode = "filtered"' 'allow_ports = [7]' \
    'opaque_ports = [7]' >"$1"
}
# Number of log lines so far; pass it to net_fixture_log_since later.
net_fixture_mark() { wc -l <"$SBXNET_LOG"; }
net_fixture_log_since() { tail -n +"$(($1 + 1))" "$SBXNET_LOG"; }
# True if the DNS server was asked for NAME (since line MARK, default 0).
net_fixture_dns_seen() { net_fixture_log_since "${2:-0}" | grep -q "^dns [^ ]* $1 "; }

# --- command line --------------------------------------------------------------

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
  set -uo pipefail
  case ${1:-} in
    up-shared)
      [[ $(id -u) -eq 0 ]] || { echo "up-shared needs root" >&2; exit 1; }
      if [[ -e $SBXNET_SHARED_DIR/env ]]; then "$0" down-shared; fi
      _sbxnet_build shared shared || exit 1
      echo "fake internet up: netns $SBXNET_NS, log $SBXNET_LOG, cert $SBXNET_CERT"
      ;;
    down-shared)
      [[ -r $SBXNET_SHARED_DIR/env ]] || { echo "no shared fixture"; exit 0; }
      # shellcheck disable=SC1091
      source "$SBXNET_SHARED_DIR/env"
      _sbxnet_destroy
      echo "fake internet down"
      ;;
    ipv6-shared)
      # Adds IPv6 to a running shared fixture without taking it down.
      [[ $(id -u) -eq 0 ]] || { echo "ipv6-shared needs root" >&2; exit 1; }
      [[ -r $SBXNET_SHARED_DIR/env ]] || { echo "no shared fixture (up-shared first)" >&2; exit 1; }
      # shellcheck disable=SC1091
      source "$SBXNET_SHARED_DIR/env"
      net_fixture_ipv6 || { echo "net fixture: $SBXNET_WHY" >&2; exit 1; }
      echo "fake internet: IPv6 up ($SBXNET_A6, DNS $SBXNET_DNS6)"
      ;;
    status)
      ip netns list | grep '^sbxnet-' || echo "no fixture namespace"
      [[ -r $SBXNET_SHARED_DIR/env ]] && cat "$SBXNET_SHARED_DIR/env"
      ;;
    *)
      echo "usage: $0 up-shared | ipv6-shared | down-shared | status   (or source it: net_fixture_up)" >&2
      exit 2
      ;;
  esac
fi
