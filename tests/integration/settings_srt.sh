#!/usr/bin/env bash
# sbx run --settings FILE with a realistic ~/.srt-settings.json (and the
# same in Claude Code's settings.json `sandbox` section): the sandbox
# enforces it — denied read, allowed write (and nothing else), allowed and
# denied domains against the fake internet (tests/net); keys without an sbx
# equivalent are reported (warning, or refusal with --strict-import); an
# invalid file refuses to run. `sbx profile import` writes the same policy.
source "$SBX_SOURCE_DIR/tests/lib.sh"
source "$SBX_SOURCE_DIR/tests/net/fixture.sh"
command -v curl >/dev/null || skip "needs curl"
need_net_fixture

D=$(scratch)
H=$(scratch)   # the user's home for this test: ~ in the settings
proj=$D/proj
out=$D/out
mkdir -p "$proj" "$out" "$H/.ssh" "$H/.config/app"
echo "PRIVATE KEY" >"$H/.ssh/id_test"
echo "known" >"$H/.ssh/known_hosts"
echo "app-config" >"$H/.config/app/config"
cd "$proj" || fail "cd $proj"
export HOME=$H
# srt has no resolver setting: the profile under the settings names the
# fake internet's DNS server (and nothing else).
cat >"$D/dns.toml" <<EOF
extends = "base"
[network]
dns_upstream = ["$SBXNET_DNS"]
EOF

cat >"$D/srt-settings.json" <<EOF
{
  "network": {
    "allowedDomains": ["good.test", "*.good.test"],
    "deniedDomains": ["api.good.test"],
    "allowLocalBinding": true,
    "allowUnixSockets": [],
    "httpProxyPort": 3128
  },
  "filesystem": {
    "denyRead": ["~/.ssh", "~/.config/app"],
    "allowRead": ["~/.ssh/known_hosts"],
    "allowWrite": [".", "$out"],
    "denyWrite": ["./locked"]
  }
}
EOF
mkdir -p "$proj/locked"
P=(run -p "$D/dns.toml" --settings "$D/srt-settings.json")

# --- report of keys without equivalent ----------------------------------------
run_sbx "${P[@]}" -- true
expect_rc 0 "a realistic srt settings file runs"
expect_out "warning: .*not applied.*network\.httpProxyPort" \
  "a key without equivalent (httpProxyPort) is reported, not silently dropped"
run_sbx "${P[@]}" --strict-import -- true
expect_rc 125 "--strict-import refuses settings without an equivalent"
expect_out "httpProxyPort" "the refusal names the key"

# --- filesystem -----------------------------------------------------------------
run_sbx "${P[@]}" -- sh -c 'cat ~/.ssh/id_test; ls ~/.ssh; cat ~/.config/app/config; echo END'
expect_rc 0 "denyRead probe ran"
expect_no_out "PRIVATE KEY" "denyRead ~/.ssh: the key is unreadable"
expect_no_out "app-config" "denyRead ~/.config/app: unreadable"
run_sbx "${P[@]}" -- cat "$H/.ssh/known_hosts"
expect_rc 0 "allowRead re-exposes a file below a denied directory"
expect_out $'(^|\n)known' "allowRead: known_hosts readable"

run_sbx "${P[@]}" -- sh -c "echo w1 > '$proj/new.txt' && echo w2 > '$out/o.txt' && echo WROTE"
expect_rc 0 "allowWrite: . and an extra directory are writable"
[[ $(cat "$proj/new.txt") == w1 && $(cat "$out/o.txt") == w2 ]] || fail "writes did not reach the host"
pass "the writes reached the host"
run_sbx "${P[@]}" -- sh -c "echo x > '$proj/locked/f'"
[[ $RC -ne 0 && ! -e $proj/locked/f ]] || fail "denyWrite ./locked was written (rc $RC)"
pass "denyWrite: ./locked is read-only, no file left"
# A host directory the user may write to, outside allowWrite (not below
# /tmp, which is the sandbox's own tmpfs).
V=$(mktemp -d /var/tmp/sbx-settings.XXXXXX) || fail "mktemp /var/tmp"
_SCRATCH_DIRS+=("$V")
chmod 1777 "$V"  # only the sandbox can refuse the write (root runs it as nobody)
run_sbx "${P[@]}" -- sh -c "echo x > '$V/planted'"
[[ $RC -ne 0 && ! -e $V/planted ]] || fail "a write outside allowWrite succeeded (rc $RC)"
expect_out "Read-only file system" "a write outside allowWrite fails (EROFS) and leaves no file"
run_sbx "${P[@]}" -- sh -c "mkdir -p '$proj/.git/hooks' 2>/dev/null; echo x > '$proj/.bashrc'"
[[ ! -s $proj/.bashrc ]] || fail "srt's mandatory deny: .bashrc in the work dir was written"
pass "srt's mandatory write-deny (.bashrc) inside the writable work dir"

# --- network --------------------------------------------------------------------
cp "$SBXNET_CERT" "$proj/ca.pem"  # the work dir is visible inside; $D (below /tmp) is not
mark=$(net_fixture_mark)
run_sbx "${P[@]}" -- curl -sS --max-time 10 --cacert ca.pem https://good.test/srt
expect_rc 0 "allowedDomains: good.test is reachable (https)"
expect_out "hello from .* host=good.test path=/srt" "the fake internet answered for good.test"
run_sbx "${P[@]}" -- curl -sS --max-time 10 http://www.good.test/srt-www
expect_rc 0 "allowedDomains *.good.test: www.good.test reachable (http)"
run_sbx "${P[@]}" -- curl -sS --max-time 10 --cacert ca.pem https://api.good.test/denied
[[ $RC -ne 0 ]] || fail "deniedDomains api.good.test was reachable: $OUT"
pass "deniedDomains: api.good.test refused although *.good.test is allowed"
run_sbx "${P[@]}" -- curl -sS --max-time 10 --cacert ca.pem https://evil.test/unlisted
[[ $RC -ne 0 ]] || fail "an unlisted domain was reachable: $OUT"
pass "a domain not in allowedDomains is refused"
net_fixture_log_since "$mark" | grep -q "api.good.test\|evil.test" &&
  fail "a refused name reached the fake internet: $(net_fixture_log_since "$mark")"
pass "refused names never reached a server"

# --- the same in Claude Code's settings.json -------------------------------------
cat >"$D/claude-settings.json" <<EOF
{
  "permissions": {"allow": ["Bash(npm test)"]},
  "sandbox": {
    "enabled": true,
    "autoAllowBashIfSandboxed": true,
    "network": {"allowedDomains": ["good.test"]},
    "filesystem": {"allowWrite": ["."], "denyRead": ["~/.ssh"]}
  }
}
EOF
run_sbx run -p "$D/dns.toml" --settings "$D/claude-settings.json" -- sh -c \
  "cat ~/.ssh/id_test; curl -sS --max-time 10 --cacert ca.pem https://good.test/cc"
expect_rc 0 "Claude Code settings.json sandbox section runs"
expect_no_out "PRIVATE KEY" "sandbox.filesystem.denyRead applied"
expect_out "host=good.test path=/cc" "sandbox.network.allowedDomains applied"
expect_out "warning: .*autoAllowBashIfSandboxed" "a Claude-only key is reported"

# --- invalid settings refuse to run ----------------------------------------------
echo '{"network": {"allowedDomains": "good.test"}' >"$D/bad.json"
run_sbx run --settings "$D/bad.json" -- true
expect_rc 125 "an invalid settings file refuses to run"
echo '{"filesystem": {"denyRead": ["~/.config/**/token"]}}' >"$D/glob.json"
run_sbx run --settings "$D/glob.json" -- true
expect_rc 125 "a denyRead glob (no sbx equivalent) refuses to run rather than drop the deny"
expect_out "glob" "the refusal names the glob"

# --- profile import gives the same sandbox --------------------------------------
run_sbx profile import "$D/srt-settings.json" --base "$D/dns.toml" -o "$D/imported.toml"
expect_rc 0 "sbx profile import -o"
grep -q "NOT applied: network.httpProxyPort" "$D/imported.toml" || fail "import header lacks the report"
pass "the imported profile lists what was not applied"
run_sbx run -p "$D/imported.toml" -- sh -c \
  "cat ~/.ssh/id_test; curl -sS --max-time 10 --cacert ca.pem https://good.test/imp"
expect_rc 0 "the imported profile runs"
expect_no_out "PRIVATE KEY" "imported: denyRead"
expect_out "host=good.test path=/imp" "imported: allowedDomains"

done_testing
