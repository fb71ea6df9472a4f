#!/usr/bin/env bash
# Seccomp overhead benchmark (not a test): 10M getppid and 10M openat/close
# with no filter, sbx's `default` and `strict` filters, in one run, printed as
# ratios (target strict/none <= 1.05).
#
#   bench/seccomp.sh [ITERATIONS] [ROUNDS]
#
# Part 1 installs the filters in forked children exactly as the launcher's
# worker does (pure filter cost). Part 2, when the sbx binary runs, repeats
# the loops with sbx-probe inside real sandboxes (`--profile permissive`
# with the seccomp mode switched by a profile file), where the same
# namespaces, Landlock and mounts apply to both sides; there the two modes
# take turns (ABBA) over 10 x ROUNDS runs of ITERATIONS / 10 each, and the
# medians are compared.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$(dirname "$here")
build=${SBX_BUILD_DIR:-$src/build-bench}
n=${1:-10000000}
rounds=${2:-3}

cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j2 --target sbx_seccomp sbx-probe >/dev/null
bin=$build/bench/seccomp_bench
mkdir -p "$build/bench"
# shellcheck disable=SC2046
g++ -std=c++20 -O2 -I "$src/include" -I "$src" "$here/seccomp_bench.cpp" \
  "$build/seccomp/libsbx_seccomp.a" $(pkg-config --libs libseccomp) -lfmt -o "$bin"

echo "== filter cost (forked children, no sandbox)"
"$bin" "$n" "$rounds"

sbx=${SBX:-$build/sbx}
if cmake --build "$build" -j2 --target sbx >/dev/null 2>&1 && "$sbx" run --net none --profile permissive -- true >/dev/null 2>&1; then
  echo "== inside sbx sandboxes (sbx-probe loop, CPU time measured inside)"
  probe=$build/tests/sbx-probe
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  for mode in none strict; do
    printf 'extends = "permissive"\n[process.seccomp]\nmode = "%s"\n' "$mode" >"$tmp/$mode.toml"
  done
  # Interleaved like every other scenario (ABBA, so drift hits both
  # sides alike): ten times the rounds of part 1 with a tenth of the
  # iterations each (30 x 1M in a full run), median and p90 of each side,
  # and the ratio of the medians.
  in_rounds=$((rounds * 10)) in_n=$((n / 10))
  for what in getppid openat; do
    : >"$tmp/none.$what" && : >"$tmp/strict.$what"
    for ((r = 0; r < in_rounds; r++)); do
      order="none strict"
      ((r % 2)) && order="strict none"
      for mode in $order; do
        "$sbx" run --net none --profile "$tmp/$mode.toml" -- "$probe" loop "$what" "$in_n" |
          sed -n 's/.* cpu_seconds=\([0-9.]*\).*/\1/p' >>"$tmp/$mode.$what"
      done
    done
    python3 - "$what" "$in_n" "$in_rounds" "$tmp/none.$what" "$tmp/strict.$what" <<'PY'
import statistics, sys
what, n, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
side = [sorted(float(l) * 1e9 / n for l in open(f) if l.strip()) for f in sys.argv[4:6]]
med = [statistics.median(v) for v in side]
p90 = [v[min(len(v) - 1, int(0.9 * len(v)))] for v in side]
print(f"{what:<8} {rounds} rounds: none {med[0]:.1f} ns/op (p90 {p90[0]:.1f})  "
      f"strict {med[1]:.1f} ns/op (p90 {p90[1]:.1f})  strict/none {med[1] / med[0]:.3f}")
PY
  done
else
  echo "== inside sbx sandboxes: skipped (sbx run does not work in $build yet)"
fi
