#!/usr/bin/env bash
# Pre-faulting (docs/launch.md "Start-up time"): the entry stub maps the
# writable segment on any machine; text, heap and stack are mapped in bulk
# only where a page fault is dear (runtime/fault_cost.hpp), which
# SBX_PREFAULT=1 forces and SBX_NO_PREFAULT=1 turns off with the rest. Seen
# as the supervisor's madvise(MADV_POPULATE_*) calls; whether this machine's
# faults are dear is not asserted (the benchmark measures what it buys).
source "$SBX_SOURCE_DIR/tests/lib.sh"
command -v strace >/dev/null || skip "needs strace (scripts/install-deps installs it)"
cd "$(scratch)" || fail "cd"

populates() { # ENV...: the supervisor's MADV_POPULATE_* calls, one per line
  env "$@" strace -e trace=madvise "$SBX" run --net none -- true 2>&1 >/dev/null |
    grep -o 'MADV_POPULATE_[A-Z]*'
}

OUT=$(populates SBX_PREFAULT=1)
[[ $(grep -c READ <<<"$OUT") -eq 1 ]] || fail "SBX_PREFAULT=1: text not mapped in bulk: $OUT"
# The writable segment (entry stub), the heap and the stack.
[[ $(grep -c WRITE <<<"$OUT") -eq 3 ]] || fail "SBX_PREFAULT=1: want 3 MADV_POPULATE_WRITE: $OUT"
pass "SBX_PREFAULT=1: text, writable segment, heap and stack mapped in bulk"

OUT=$(populates SBX_NO_PREFAULT=1)
[[ -z $OUT ]] || fail "SBX_NO_PREFAULT=1: still mapped in bulk: $OUT"
pass "SBX_NO_PREFAULT=1: nothing mapped in bulk"

OUT=$(populates SBX_UNRELATED=1)
grep -q WRITE <<<"$OUT" || fail "by default the entry stub must map the writable segment: $OUT"
[[ $(grep -c . <<<"$OUT") -eq 1 || $(grep -c . <<<"$OUT") -eq 4 ]] ||
  fail "by default: the writable segment alone, or all four regions where faults are dear: $OUT"
pass "by default: the writable segment, and the rest only as this machine's fault cost decides ($(grep -c . <<<"$OUT") regions)"
done_testing
