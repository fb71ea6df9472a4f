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
# namespaces, Landlock and mounts apply to both sides.
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
  for what in getppid openat; do
    declare -A best=()
    for ((r = 0; r < rounds; r++)); do
      for mode in none strict; do
        s=$("$sbx" run --net none --profile "$tmp/$mode.toml" -- "$probe" loop "$what" "$n" | sed -n 's/.* cpu_seconds=\([0-9.]*\).*/\1/p')
        if [[ -z ${best[$mode]:-} ]] || awk "BEGIN{exit !($s < ${best[$mode]})}"; then best[$mode]=$s; fi
      done
    done
    awk -v w="$what" -v a="${best[none]}" -v b="${best[strict]}" -v n="$n" \
      'BEGIN{printf "%-8s none %.1f ns/op  strict %.1f ns/op  strict/none %.3f\n", w, a*1e9/n, b*1e9/n, b/a}'
  done
else
  echo "== inside sbx sandboxes: skipped (sbx run does not work in $build yet)"
fi
