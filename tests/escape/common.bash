# Shared by the escape suite (tests/escape/*.sh). Not a test itself (ctest
# registers only *.sh). Source it after nothing else:
#   source "$SBX_SOURCE_DIR/tests/escape/common.bash"
#
# Every attempt runs INSIDE a sandbox of each built-in profile and must be
# contained; each assertion checks a concrete outcome (an errno, an exit
# code, a file that must not appear on the host, a process that must not be
# left). Attempts are batched: one sandbox runs many of them through esc.py
# (one "LABEL=RESULT" line each), and every line is asserted on its own.
source "$SBX_SOURCE_DIR/tests/lib.sh"
NL=$'\n'
ESC_PY=$SBX_SOURCE_DIR/tests/escape/esc.py
PY=/usr/bin/python3
[[ -x $PY ]] || skip "the escape suite needs /usr/bin/python3"
ESC_PROFILES=(standard strict airgapped permissive)
# lib.sh's scratch() records its directory from inside $(...), a subshell,
# so the EXIT trap never sees it and every scratch dir stays in /tmp. Here
# the list lives in a file, so `D=$(scratch)` is cleaned up too.
ESC_SCRATCH_LIST=$(mktemp "${TMPDIR:-/tmp}/sbx-escape-scratch.XXXXXX")
scratch() {
  local d
  d=$(mktemp -d "${TMPDIR:-/tmp}/sbx-test.XXXXXX") || fail "mktemp"
  chmod 755 "$d"
  echo "$d" >>"$ESC_SCRATCH_LIST"
  echo "$d"
}
_cleanup_scratch() {
  local d
  while read -r d; do [[ -n $d ]] && rm -rf "$d" 2>/dev/null; done <"$ESC_SCRATCH_LIST"
  rm -f "$ESC_SCRATCH_LIST"
  rm -rf "${_SCRATCH_ROOT:-}" 2>/dev/null
}
# Prefix of every process name and sandbox name the suite creates, so that
# zz_leftovers.sh (and each test) can look for survivors on the host.
ESC_MARK=sbx-escape
ESC_CONF=$(scratch)
# Never run a sandbox with the caller's cwd as its work dir (ctest's is the
# build tree: strict would put placeholders there, and the test user cannot
# write it). Tests that need their own work dir cd into another scratch dir.
cd "$(scratch)" || fail "cd to a scratch work dir"

# standard and strict use network mode "filtered". If this build refuses it
# (it did until the filtered network landed), those profiles run with
# --net none for the non-network groups; the network groups (net_*.sh) skip.
if "$SBX" run -p airgapped --net filtered -- true >/dev/null 2>&1 </dev/null; then
  ESC_FILTERED=1
else
  ESC_FILTERED=0
fi

# strict sets limits.required = true. An unprivileged user without a
# delegated cgroup (this host: cgroup v1 hybrid) cannot get limits, and
# strict then refuses to start (exit 125, tested below as a promise of
# strict). For the other groups the unprivileged run uses strict with only
# that switch turned off: every other protection of strict is unchanged.
ESC_STRICT_LIMITS=1
if ! is_root; then
  if ! "$SBX" run -p strict --net none -- true >/dev/null 2>&1 </dev/null; then
    ESC_STRICT_LIMITS=0
    printf 'extends = "strict"\n[limits]\nrequired = false\n' >"$ESC_CONF/strict-nolimits.toml"
  fi
fi

# esc_args PROFILE: sets PA to the sbx run options for that profile.
esc_args() {
  local p=$1
  PA=(-p "$p")
  if [[ $p == strict && $ESC_STRICT_LIMITS == 0 ]]; then PA=(-p "$ESC_CONF/strict-nolimits.toml"); fi
  if [[ ($p == standard || $p == strict) && $ESC_FILTERED == 0 ]]; then PA+=(--net none); fi
}

# esc_run PROFILE [SBX OPTIONS...] -- CMD...: run_sbx with the profile's options.
esc_run() {
  local p=$1; shift
  esc_args "$p"
  run_sbx run "${PA[@]}" "$@"
}

# esc_try PROFILE [SBX OPTIONS...] -- ATTEMPTS...: esc.py inside the sandbox.
esc_try() {
  local p=$1; shift
  local opts=()
  while [[ $# -gt 0 && $1 != -- ]]; do opts+=("$1"); shift; done
  shift
  esc_run "$p" "${opts[@]}" -- "$PY" "$ESC_PY" "$@"
}

# result LABEL: the result esc.py printed for LABEL ("ok ...", "EPERM", ...).
result() {
  local line
  line=$(grep -m1 "^$1=" <<<"$OUT") || { echo "MISSING"; return; }
  echo "${line#*=}"
}

# expect_res LABEL REGEX DESCRIPTION: the attempt's result matches ^REGEX$.
expect_res() {
  local label=$1 re=$2; shift 2
  local r
  r=$(result "$label")
  [[ $r =~ ^($re)$ ]] || fail "$* [$label: got '$r', want /$re/]. Output:
$OUT"
  pass "$* ($label: $r)"
}

# expect_denied LABEL DESCRIPTION: the attempt failed (any errno).
expect_denied() {
  local label=$1; shift
  local r
  r=$(result "$label")
  [[ $r =~ ^E[A-Z0-9]+$ ]] || fail "$* [$label: got '$r', want an errno]. Output:
$OUT"
  pass "$* ($label: $r)"
}

# no_host_procs MARK: no process on the host has MARK in its command line
# (bounded wait of 15 s for dying processes: heavy load slows their exit).
no_host_procs() {
  local i
  for i in $(seq 150); do
    pgrep -f -- "$1" >/dev/null || return 0
    sleep 0.1
  done
  return 1
}

# esc_done GROUP: print the count for the group and finish.
esc_done() {
  echo "# escape group $1 ($(id -un)): $TESTS_PASSED assertions"
  done_testing
}
