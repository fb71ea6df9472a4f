#!/usr/bin/env bash
# Issue 10 acceptance: breaking a protection on purpose makes the escape
# suite's assertions for it AND the matching `sbx check` rows fail.
#
# The switch (SBX_TEST_BREAK=seccomp: no seccomp filter) exists only in
# sbx-test-hooks, a test executable built beside sbx and never installed
# (check/CMakeLists.txt, tests/hooks/break_switch.cpp). The real sbx has no
# code that reads the variable: shown here too.
source "$SBX_SOURCE_DIR/tests/lib.sh"
HOOKS=$SBX_BUILD_DIR/sbx-test-hooks
[[ -x $HOOKS ]] || fail "$HOOKS is missing: it is built with the tests (cmake --build B --target sbx-test-hooks)"
[[ -n ${SBX_PROBE:-} && -x $SBX_PROBE ]] || fail "SBX_PROBE (sbx-probe) is not built"
cd "$(scratch)" || fail "cd"

# 1. The real sbx ignores the switch: the filter is there.
OUT=$(SBX_TEST_BREAK=seccomp "$SBX" run -p standard -- "$SBX_PROBE" caps 2>&1 </dev/null)
RC=$?
expect_rc 0 "sbx run with SBX_TEST_BREAK=seccomp"
expect_out $'Seccomp:\t2' "the real sbx installs its seccomp filter whatever SBX_TEST_BREAK says"
expect_no_out "TEST BUILD|NO seccomp" "the real sbx says nothing about a test switch"

# 2. sbx-test-hooks without the switch: a normal sandbox.
OUT=$("$HOOKS" run -p standard -- "$SBX_PROBE" caps 2>&1 </dev/null)
RC=$?
expect_rc 0 "sbx-test-hooks run without SBX_TEST_BREAK"
expect_out $'Seccomp:\t2' "sbx-test-hooks without the switch installs the filter"

# 3. With the switch: no filter, and it says so loudly.
OUT=$(SBX_TEST_BREAK=seccomp "$HOOKS" run -p standard -- "$SBX_PROBE" caps 2>&1 </dev/null)
RC=$?
expect_rc 0 "sbx-test-hooks run with SBX_TEST_BREAK=seccomp"
expect_out $'Seccomp:\t0' "the switch removes the seccomp filter"
expect_out "WARNING.*NO seccomp filter" "the weakened sandbox prints a loud warning"
OUT=$(SBX_TEST_BREAK=landlock "$HOOKS" run -p standard -- true 2>&1 </dev/null)
RC=$?
expect_rc 125 "an unknown breakage name is refused (exit 125), never ignored"

# 4. sbx check: contained without the switch, the seccomp rows EXPOSED and
#    exit 1 with it; the other rows stay contained.
verdicts() { # JSON on stdin -> "verdict<TAB>area<TAB>name" lines
  /usr/bin/python3 -c 'import json,sys
r=json.load(sys.stdin)
for x in r["rows"]:
    print(x["verdict"], x["area"], x["name"], sep="\t")
print("promises_hold", r["promises_hold"], sep="\t")'
}
OUT=$("$HOOKS" check -p standard --json 2>/dev/null </dev/null)
RC=$?
expect_rc 0 "sbx-test-hooks check without the switch: the promises hold"
V=$(verdicts <<<"$OUT") || fail "check --json is not JSON: $OUT"
OUT=$V
expect_out $'contained\tseccomp\tseccomp filter installed' "check: the seccomp row is contained"
expect_no_out $'exposed\t' "check: no row is exposed"

OUT=$(SBX_TEST_BREAK=seccomp "$HOOKS" check -p standard --json 2>/dev/null </dev/null)
RC=$?
expect_rc 1 "sbx-test-hooks check WITH the switch exits 1 (promises broken)"
JSON=$OUT
V=$(verdicts <<<"$OUT") || fail "check --json is not JSON: $OUT"
OUT=$V
for row in "seccomp filter installed" "io_uring" "TIOCSTI terminal injection" \
           "new namespaces and mounts" "kernel attack surface"; do
  expect_out $'exposed\tseccomp\t'"$row" "check with the switch: '$row' is EXPOSED"
done
expect_out $'contained\tfilesystem\thost file system read-only' "check with the switch: unrelated rows stay contained"
expect_out $'promises_hold\tFalse' "check with the switch: promises_hold is false"
OUT=$JSON
expect_out "TEST BUILD with SBX_TEST_BREAK=seccomp" "check names the active test switch in its notes"
OUT=$(SBX_TEST_BREAK=seccomp "$HOOKS" check -p standard 2>&1 </dev/null)
RC=$?
expect_rc 1 "the table form exits 1 too"
expect_out "EXPOSED +seccomp +TIOCSTI" "the table shows TIOCSTI as EXPOSED"
expect_out "fix: do not run with process.seccomp.mode" "an exposed row says the fix"
expect_out "promises do NOT hold" "the summary line says the promises do not hold"

# 5. The escape suite's seccomp group fails with the switch and passes without.
g06=$SBX_SOURCE_DIR/tests/escape/g06_syscall_abi.sh
OUT=$(SBX=$HOOKS bash "$g06" 2>&1 </dev/null)
RC=$?
expect_rc 0 "escape group 6 passes with sbx-test-hooks and no switch"
OUT=$(SBX_TEST_BREAK=seccomp SBX=$HOOKS bash "$g06" 2>&1 </dev/null)
RC=$?
[[ $RC -ne 0 && $RC -ne 77 ]] || fail "escape group 6 did not fail without the seccomp filter (exit $RC). Output:
$OUT"
pass "escape group 6 FAILS when the seccomp filter is removed (exit $RC)"
expect_out "FAIL: standard: (an x32 syscall|int 0x80|io_uring)" "the failing assertion is a seccomp one"
done_testing
