#!/usr/bin/env bash
# Group 7: setuid and file-capability binaries must not regain privilege
# (no_new_privs + nosuid mounts + an unmapped root). The command's own
# status: NoNewPrivs 1, every capability set empty, seccomp filter on.
# Attempts: su, sudo, mount (setuid root), newuidmap (setuid root), ping
# (file capability cap_net_raw), setuid(0); as root also a setuid-root copy
# of id and a copy of sleep with file capabilities CAP_SYS_ADMIN+CAP_NET_RAW,
# each with a control run on the host proving the file really grants them.
source "$SBX_SOURCE_DIR/tests/escape/common.bash"

D=""
if is_root; then
  D=$(mktemp -d /var/tmp/sbx-escape.XXXXXX) || fail "mktemp"
  _g7_cleanup() { rm -rf "$D"; _cleanup_scratch; }
  trap _g7_cleanup EXIT
  chmod 755 "$D"
  cp /usr/bin/id "$D/suid-id" && chmod 4755 "$D/suid-id"
  cp /usr/bin/sleep "$D/cap-sleep"
  if command -v setcap >/dev/null && setcap cap_sys_admin,cap_net_raw+ep "$D/cap-sleep"; then :; else
    fail "setcap not available to give the test binary file capabilities (install libcap2-bin)"
  fi
  # Controls (outside any sandbox, as nobody): the files do grant privilege.
  OUT=$(setpriv --reuid=65534 --regid=65534 --clear-groups "$D/suid-id" -u 2>&1)
  [[ $OUT == 0 ]] || fail "control: setuid-root id run by nobody printed '$OUT', want 0"
  pass "control: outside a sandbox the setuid-root copy of id gives euid 0"
  setpriv --reuid=65534 --regid=65534 --clear-groups "$D/cap-sleep" 2 &
  cpid=$!
  sleep 0.3
  OUT=$(grep CapEff "/proc/$cpid/status" 2>&1)
  kill "$cpid"; wait "$cpid" 2>/dev/null
  [[ $OUT =~ CapEff:[[:space:]]+0*[1-9a-f] ]] || fail "control: file-capability sleep has '$OUT'"
  pass "control: outside a sandbox the file-capability sleep gets CapEff != 0 ($OUT)"
fi

have() { command -v "$1" >/dev/null; }
for p in "${ESC_PROFILES[@]}"; do
  W=$(scratch)
  cd "$W" || fail "cd"
  esc_run "$p" -- sh -c '
    D=$0
    grep -E "^(NoNewPrivs|Seccomp|Cap(Inh|Prm|Eff|Bnd|Amb)):" /proc/self/status | tr -d "\t " | sed "s/:/=/"
    t() { l=$1; shift; out=$("$@" 2>&1 </dev/null); c=$?; echo "$l=rc$c"; echo "${l}_out=$(echo $out | tr "\n" " ")"; }
    t su su -c "id -u" root
    t mount mount -t tmpfs none /tmp
    if command -v sudo >/dev/null; then t sudo sudo -n id -u; fi
    if command -v newuidmap >/dev/null; then t newuidmap newuidmap $$ 0 0 1; fi
    if command -v ping >/dev/null; then t ping ping -c1 -W1 127.0.0.1; fi
    t setuid0 python3 -c "import os; os.setuid(0)"
    t setpriv0 setpriv --reuid=0 true
    if [ -n "$D" ]; then
      echo "suid_id=$("$D/suid-id" -u 2>&1)"
      "$D/cap-sleep" 2 & c=$!; sleep 0.3
      grep -E "^Cap(Prm|Eff):" /proc/$c/status | tr -d "\t " | sed "s/^/filecap_/; s/:/=/"
      kill $c
    fi
  ' "$D"
  expect_rc 0 "$p: attempts ran"
  expect_res NoNewPrivs 1 "$p: NoNewPrivs is 1"
  expect_res Seccomp 2 "$p: a seccomp filter is on (mode 2)"
  for c in CapInh CapPrm CapEff CapBnd CapAmb; do
    expect_res "$c" 0000000000000000 "$p: $c is empty"
  done
  expect_res su "rc[1-9][0-9]*" "$p: su root fails"
  expect_no_out "(^|$NL)su_out=0 ?($NL|$)" "$p: su printed no uid 0"
  expect_res mount "rc[1-9][0-9]*" "$p: setuid mount fails"
  if have sudo; then
    expect_res sudo "rc[1-9][0-9]*" "$p: sudo -n fails"
    expect_no_out "(^|$NL)sudo_out=0 ?($NL|$)" "$p: sudo printed no uid 0"
  else
    echo "# sudo not installed: not attempted (scripts/install-deps installs it)"
  fi
  if have newuidmap; then
    expect_res newuidmap "rc[1-9][0-9]*" "$p: setuid newuidmap cannot map uid 0"
  else
    echo "# newuidmap not installed: not attempted (scripts/install-deps installs uidmap)"
  fi
  if have ping; then
    # The only network where ping could even try is permissive's host network;
    # a file-capability ping must not get CAP_NET_RAW anywhere.
    expect_res ping "rc[1-9][0-9]*" "$p: file-capability ping fails (no CAP_NET_RAW regained)"
  else
    echo "# ping not installed: not attempted (scripts/install-deps installs iputils-ping)"
  fi
  expect_res setuid0 "rc[1-9][0-9]*" "$p: setuid(0) fails"
  expect_res setpriv0 "rc[1-9][0-9]*" "$p: setpriv --reuid=0 fails"
  if [[ -n $D ]]; then
    expect_res suid_id 65534 "$p: a setuid-root binary runs with the sandbox's uid, not 0"
    expect_res filecap_CapPrm 0000000000000000 "$p: a file-capability binary gets no permitted capability"
    expect_res filecap_CapEff 0000000000000000 "$p: a file-capability binary gets no effective capability"
  fi
  cd / || fail "cd /"
done
esc_done "7 (setuid, file capabilities)"
