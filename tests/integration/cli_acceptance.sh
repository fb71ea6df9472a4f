#!/usr/bin/env bash
# The CLI's observable contract (issue 2 acceptance): profile list/show/
# validate, --dry-run output, JSON validity, the TOML round trip through the
# binary, repeatable flags, the default profile, help and version.
source "$SBX_SOURCE_DIR/tests/lib.sh"

D=$(scratch)
cd "$D" || fail "cd $D"
NL=$'\n'

run_sbx profile list
expect_rc 0 "profile list exits 0"
for p in permissive standard strict airgapped; do
  expect_out "(^|$NL)$p +[A-Z][^$NL]+" "profile list shows $p with a description"
done
expect_out "standard +[^$NL]*\(default\)" "profile list marks the default"

for p in permissive standard strict airgapped base; do
  OUT=$("$SBX" profile show "$p" --resolved --json 2>/dev/null)
  RC=$?
  expect_rc 0 "profile show $p --resolved --json exits 0"
  printf '%s' "$OUT" | python3 -m json.tool >/dev/null || fail "$p: JSON does not parse: $OUT"
  pass "profile show $p --resolved --json is valid JSON"
  printf '%s' "$OUT" | python3 -c '
import json, sys
p = json.load(sys.stdin)
home = sys.argv[1]
assert home + "/.ssh" in p["filesystem"]["hidden"], "~/.ssh not hidden"
assert "169.254.0.0/16" in p["network"]["deny_cidrs"], "metadata range not denied"
' "$HOME" || fail "$p: JSON lacks the base protections"
  pass "$p hides ~/.ssh and denies 169.254.0.0/16"
done

OUT=$("$SBX" profile show strict --json 2>&1)
printf '%s' "$OUT" | python3 -m json.tool >/dev/null || fail "show strict --json (as written) is not JSON: $OUT"
pass "profile show strict --json (as written) is valid JSON"
run_sbx profile show strict
expect_rc 0 "profile show strict exits 0"
expect_out 'extends = "base"' "profile show prints the file as written"

# The acceptance example: extra domain and a 1 GiB memory limit.
run_sbx run --profile strict --allow-domain example.org --memory 1G --dry-run -- true
expect_rc 0 "dry run exits 0"
expect_out '"example\.org"' "dry run contains example.org"
expect_out 'memory = "1G"' "dry run contains the 1 GiB memory limit"
expect_out 'required = true' "strict keeps limits.required"
expect_out '# command: \["true"\]' "dry run shows the command"
OUT=$("$SBX" run --profile strict --allow-domain example.org --memory 1G --dry-run -- true 2>/dev/null |
  python3 -c 'import sys, tomllib; p = tomllib.load(sys.stdin.buffer); print(p["limits"]["memory"], "example.org" in p["network"]["allow_domains"])' 2>&1)
if [[ $OUT == *"No module named 'tomllib'"* ]]; then
  pass "(python3 has no tomllib; TOML re-read by sbx below)"
else
  [[ $OUT == "1G True" ]] || fail "an independent TOML reader sees: $OUT"
  pass "an independent TOML reader sees memory 1G and example.org"
fi

# An internationalised name is stored as its A-label (libidn2, loaded at run
# time also by the static sbx executable).
run_sbx run --profile strict --allow-domain bücher.example --dry-run -- true
expect_rc 0 "dry run with an IDN domain"
expect_out '"xn--bcher-kva\.example"' "bücher.example becomes xn--bcher-kva.example"

# Round trip through the binary: resolved TOML -> file -> resolved again.
for p in permissive standard strict airgapped; do
  "$SBX" profile show "$p" --resolved >"$D/$p.toml" 2>/dev/null || fail "show $p --resolved"
  "$SBX" profile show "$D/$p.toml" --resolved >"$D/$p.again.toml" 2>/dev/null || fail "show $D/$p.toml --resolved"
  diff <(tail -n +2 "$D/$p.toml") <(tail -n +2 "$D/$p.again.toml") >/dev/null ||
    fail "$p: resolved TOML changes when read back: $(diff "$D/$p.toml" "$D/$p.again.toml")"
  pass "$p: resolved TOML reads back to the same policy"
  run_sbx profile validate "$D/$p.toml"
  expect_rc 0 "profile validate accepts the resolved $p"
done

# Repeatable flags append; relative paths are made absolute.
run_sbx run -p airgapped --allow-domain a.example --allow-domain b.example --rw out --rw /srv/x \
  --env A=1 --env B=2 --keep-env FOO --tmpfs /scratch:size=1G,mode=0700 --dry-run -- true
expect_rc 0 "repeatable flags accepted"
expect_out '"a\.example",'$'\n''  "b\.example"' "both --allow-domain values, in order"
expect_out "\"$D/out\"" "relative --rw resolved against the current directory"
expect_out '"/srv/x"' "second --rw kept"
expect_out 'A = "1"'$'\n''B = "2"' "both --env values set"
expect_out '"FOO"' "--keep-env appended to the profile's list"
expect_out '"PATH"' "the profile's own keep list is still there"
expect_out 'path = "/scratch", size = "1G", mode = "0700"' "--tmpfs parsed"

run_sbx run -p airgapped --net none --cpus 0.5 --pids 64 --timeout 1h30m --kill-after 2s \
  --user 1000:1000 --no-tty --name job-1 --report - --dry-run -- true
expect_rc 0 "scalar flags accepted"
for re in 'cpus = 0\.5' 'pids = 64' 'timeout = "1h30m"' 'kill_after = "2s"' 'uid = 1000' 'gid = 1000' \
  'tty = "never"' 'name = "job-1"' 'report = "-"'; do
  expect_out "$re" "dry run has $re"
done

run_sbx run --dry-run -- true
expect_rc 0 "dry run without a profile"
expect_out '^# sbx profile "standard"' "the default profile is standard"

run_sbx run -p permissive --dry-run -- true
expect_rc 0 "permissive dry run"
expect_out 'warning: network mode "host" .* deny_cidrs is not enforced' "host mode warns that deny_cidrs are inert"

run_sbx profile validate "$SBX_SOURCE_DIR/profiles/strict.toml"
expect_rc 0 "validate a good file"
expect_out 'strict\.toml: ok' "validate says ok"

printf 'extends = "strict"\n[network]\nallow_domains = ["registry.npmjs.org"]\n[limits]\nmemory = "2G"\n' >"$D/mine.toml"
run_sbx run -p "$D/mine.toml" --memory 3G --dry-run -- true
expect_rc 0 "a user profile extending a built-in"
expect_out '"registry\.npmjs\.org"' "the user's domain is appended"
expect_out '"api\.anthropic\.com"' "the parent's domains are kept"
expect_out 'memory = "3G"' "the flag overrides the file, which overrode the parent"

run_sbx version
expect_rc 0 "version exits 0"
expect_out '^sbx [0-9]+\.[0-9]+\.[0-9]+$' "version prints sbx X.Y.Z"

for sub in "" "run" "profile" "profile show" "profile list" "profile validate" "version"; do
  # shellcheck disable=SC2086
  run_sbx $sub --help
  expect_rc 0 "sbx $sub --help exits 0"
  expect_out 'Example' "sbx $sub --help has examples"
done
done_testing
