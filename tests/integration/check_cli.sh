#!/usr/bin/env bash
# sbx check: the live verdict table for each built-in profile, as root and
# as the unprivileged user; exit 0 exactly when the profile's promises hold.
source "$SBX_SOURCE_DIR/tests/lib.sh"
[[ -x /usr/bin/python3 ]] || skip "needs /usr/bin/python3 to read --json"
cd "$(scratch)" || fail "cd"
PY=/usr/bin/python3
rows() { # check --json on stdin -> "verdict<TAB>promised<TAB>area<TAB>name"
  $PY -c 'import json,sys
r=json.load(sys.stdin)
for x in r["rows"]:
    print(x["verdict"], x["promised"], x["area"], x["name"], sep="\t")
    if x["verdict"] in ("exposed", "unsupported") and not (x["why"] and x["fix"]):
        print("MISSING_WHY_FIX", x["name"], sep="\t")
print("promises_hold", r["promises_hold"], sep="\t")'
}

# Can this user run strict at all (limits.required needs a cgroup)?
if "$SBX" run -p strict -- true >/dev/null 2>&1 </dev/null; then strict_runs=1; else strict_runs=0; fi

for p in standard strict airgapped permissive; do
  run_sbx check -p "$p" --json
  json=$OUT rc=$RC
  OUT=$(rows <<<"$json") || fail "$p: check --json is not JSON: $json"
  expect_no_out $'^exposed\t|\nexposed\t' "$p: no protection is exposed"
  expect_no_out "MISSING_WHY_FIX" "$p: every exposed/unsupported row has a why and a fix"
  if [[ $p == strict && $strict_runs == 0 ]]; then
    RC=$rc
    expect_rc 1 "strict cannot keep its promises for $(id -un) here (limits.required): exit 1"
    expect_out $'unsupported\tTrue\tlimits\tcgroup limits' "strict: the limits row is unsupported and promised"
    OUT=$json
    expect_out "refuses to start for this user" "strict: a note says why it refuses to run"
    expect_out "systemd-run --user --scope -p Delegate=yes" "strict: the fix is given"
    OUT=$(rows <<<"$json")
  else
    RC=$rc
    expect_rc 0 "$p: the promises hold (exit 0)"
    expect_out $'promises_hold\tTrue' "$p: promises_hold is true"
  fi
  # Rows every profile promises.
  expect_out $'contained\tTrue\tidentity\tno capabilities' "$p: capabilities and no_new_privs contained"
  expect_out $'contained\tTrue\tseccomp\tTIOCSTI' "$p: TIOCSTI contained"
  expect_out $'contained\tTrue\tfilesystem\thost file system read-only' "$p: host file system read-only"
  expect_out $'contained\tTrue\tfilesystem\thidden paths' "$p: hidden paths unreadable"
  expect_out $'ok\tTrue\tsystem\tuser namespaces' "$p: system: user namespaces ok"
  case $p in
    standard|strict)
      expect_out $'contained\tTrue\tnetwork\tDNS to another resolver answered by the filter' "$p: DNS to another resolver answered by the filter"
      expect_out $'contained\tTrue\tnetwork\tcloud metadata' "$p: metadata service refused"
      expect_out $'contained\tTrue\tnetwork\thost loopback' "$p: host loopback refused" ;;
    airgapped)
      expect_out $'contained\tTrue\tnetwork\traw-IP connect' "$p: raw-IP connect refused (no network)" ;;
    permissive)
      expect_out $'n/a\tFalse\tnetwork\traw-IP connect' "$p: network rows are not applicable (host network)"
      expect_out $'n/a\tFalse\tnetwork\thost loopback' "$p: the host's loopback is reachable and says so (n/a)" ;;
  esac
  if [[ $p == strict ]]; then
    expect_out $'contained\tTrue\tfilesystem\tagent files write-protected' "strict: agent files protected"
    expect_out $'contained\tTrue\tfilesystem\tgit redirection files' "strict: git redirection reverted at exit"
  else
    expect_out $'n/a\tFalse\tfilesystem\tagent files' "$p: agent files are not promised (n/a)"
  fi
done

# The table: sections, a summary line, the same exit code.
run_sbx check
expect_rc 0 "sbx check (default profile) exits 0"
expect_out "System \(kernel features" "the table has the system section"
expect_out "Protections \(probed live" "the table has the protections section"
expect_out "standard: [0-9]+ contained, 0 exposed, .*promises hold" "the summary line names the default profile"

# No probe helper: nothing can be verified, so the promises do not hold.
run_sbx check --probe /nonexistent/sbx-probe
expect_rc 1 "without the probe helper check exits 1"
expect_out "probe helper \(sbx-probe\)" "the missing helper is a row"
expect_out "fix: install it beside sbx" "with the fix"

# A probe that hangs does not hang check: the probe sandbox has a time
# limit (--timeout), and what it did not verify does not hold. The helper
# lives outside /tmp (the sandbox's /tmp is its own).
H=$(mktemp -d /var/tmp/sbx-test.hang.XXXXXX)
chmod 755 "$H"
printf '#!/bin/sh\nexec sleep 1000\n' >"$H/hang-probe"
chmod 755 "$H/hang-probe"
started=$SECONDS
run_sbx check -p airgapped --probe "$H/hang-probe" --timeout 2s
rm -rf "$H"
expect_rc 1 "a hanging probe: check exits 1"
((SECONDS - started < 60)) || fail "check with --timeout 2s took $((SECONDS - started)) s"
pass "and ends (the probe sandbox was stopped at its limit)"
expect_out "did not finish within 2 s and was stopped" "and says why"
expect_out "give it longer with --timeout" "with the fix"
expect_out "airgapped: 0 contained, .*promises do NOT hold" "nothing is reported contained"

# Usage errors are 125, as everywhere.
run_sbx check -p no-such-profile
expect_rc 125 "an unknown profile is a usage error (125)"
run_sbx check --timeout 1x
expect_rc 125 "a bad --timeout is a usage error (125)"
expect_out "invalid duration .1x." "and says why"
run_sbx stop no-such-sandbox --grace 3
expect_rc 125 "sbx stop --grace without a unit is a usage error (125)"
expect_out "invalid duration .3.*units" "with the same message as every duration"
# Nothing is left behind.
left=$(find /var/tmp "${TMPDIR:-/tmp}" -maxdepth 1 -name 'sbx-check.*' -user "$(id -u)" 2>/dev/null)
[[ -z $left ]] || fail "scratch dirs left: $left"
pass "check leaves no scratch directory"
done_testing
