# Shared helpers for integration and escape tests (bash). Source it:
#   source "$SBX_SOURCE_DIR/tests/lib.sh"
# Every assertion prints what it checked; the first failure exits 1 with the
# command's output. `skip "why"` exits 77 (ctest SKIP_RETURN_CODE).
set -uo pipefail

: "${SBX:?SBX must point to the sbx binary}"
: "${SBX_SOURCE_DIR:?}"
TESTS_PASSED=0

fail() { echo "FAIL: $*" >&2; exit 1; }
skip() { echo "SKIP: $*"; exit 77; }
pass() { TESTS_PASSED=$((TESTS_PASSED + 1)); echo "ok $TESTS_PASSED - $*"; }
is_root() { [[ $(id -u) -eq 0 ]]; }

# A fresh scratch directory owned by the current user. Every scratch dir lives
# under one per-script root made here (not in the caller's $(...) subshell,
# whose variables are lost), and the root is removed at exit.
_SCRATCH_ROOT=$(mktemp -d "${TMPDIR:-/tmp}/sbx-test.XXXXXX")
chmod 755 "$_SCRATCH_ROOT"
scratch() {
  local d
  d=$(mktemp -d "$_SCRATCH_ROOT/s.XXXXXX")
  chmod 755 "$d"
  echo "$d"
}
_SCRATCH_DIRS=()  # extra dirs a test made itself and wants removed at exit
_cleanup_scratch() {
  local d
  for d in "$_SCRATCH_ROOT" "${_SCRATCH_DIRS[@]}"; do rm -rf "$d" 2>/dev/null; done
}
trap _cleanup_scratch EXIT

# run_sbx ARGS...: runs sbx, captures stdout+stderr in $OUT and status in $RC.
run_sbx() {
  OUT=$("$SBX" "$@" 2>&1 </dev/null)
  RC=$?
}

# expect_rc N DESCRIPTION -- after run_sbx
expect_rc() {
  local want=$1; shift
  [[ $RC -eq $want ]] || fail "$* (exit $RC, want $want). Output:
$OUT"
  pass "$*"
}

# expect_out REGEX DESCRIPTION -- after run_sbx
expect_out() {
  local re=$1; shift
  [[ $OUT =~ $re ]] || fail "$* (output does not match /$re/). Output:
$OUT"
  pass "$*"
}

expect_no_out() {
  local re=$1; shift
  [[ ! $OUT =~ $re ]] || fail "$* (output matches /$re/). Output:
$OUT"
  pass "$*"
}

# Call at the end of every script.
done_testing() { echo "# $TESTS_PASSED assertions passed"; exit 0; }

# The fake internet of tests/net for this test (source tests/net/fixture.sh
# first): skip where it cannot be built for this user, fail when it breaks.
need_net_fixture() {
  net_fixture_up
  local rc=$?
  [[ $rc -eq 77 ]] && skip "$SBXNET_WHY"
  [[ $rc -eq 0 ]] || fail "fake internet: $SBXNET_WHY"
}

# True when the running kernel is MAJOR.MINOR or later.
kernel_at_least() {
  local major minor
  IFS=. read -r major minor _ <<<"$(uname -r)"
  minor=${minor%%[!0-9]*}
  ((major > $1 || (major == $1 && ${minor:-0} >= $2)))
}

# What tests/net/bulk.py `segments` prints inside a sandbox, as a regex: lo
# takes 512 KiB segments from Linux 6.4 on (runtime/sandbox_steps.hpp:
# large_loopback_segments_safe), 64 KiB before (IPv4's attribute is absent
# before 6.3).
expected_lo_segments() {
  if kernel_at_least 6 4; then
    echo '^ipv6 524280 ipv4 524280$'
  else
    echo '^ipv6 65536 ipv4 (65536|absent)$'
  fi
}
