#!/usr/bin/env bash
# Start-up cost of a sandbox: median wall time of
#   sbx run --net none -- /bin/true
# beside bubblewrap with every namespace, in the same run, interleaved (so
# both see the same machine load), printed as a ratio sbx/bwrap.
# Target: ratio <= 1.0. A benchmark, not a test: it never fails on the ratio.
#
#   bench/startup.sh [RUNS]        (SBX=path/to/sbx, default build/sbx)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
SBX=${SBX:-$here/build/sbx}
runs=${1:-${RUNS:-100}}
[[ -x $SBX ]] || { echo "startup.sh: no sbx at $SBX (build first or set SBX)" >&2; exit 2; }
command -v bwrap >/dev/null || { echo "startup.sh: bwrap not installed (scripts/install-deps)" >&2; exit 2; }

sbx_cmd=("$SBX" run --net none -- /bin/true)
bwrap_cmd=(bwrap --unshare-all --die-with-parent --ro-bind / / --dev /dev --proc /proc /bin/true)

# Both must work before timing means anything.
"${sbx_cmd[@]}" </dev/null || { echo "startup.sh: sbx failed: ${sbx_cmd[*]}" >&2; exit 2; }
"${bwrap_cmd[@]}" </dev/null || { echo "startup.sh: bwrap failed: ${bwrap_cmd[*]}" >&2; exit 2; }

# Microseconds of one run; EPOCHREALTIME costs no fork.
time_us() {
  local t0=$EPOCHREALTIME
  "$@" </dev/null >/dev/null 2>&1
  local t1=$EPOCHREALTIME
  echo $(((${t1/./} - ${t0/./})))
}

sbx_times=() bwrap_times=()
for ((i = 0; i < 5; i++)); do time_us "${sbx_cmd[@]}" >/dev/null; time_us "${bwrap_cmd[@]}" >/dev/null; done  # warm caches
for ((i = 0; i < runs; i++)); do
  # Alternate which goes first, so neither always follows the other.
  if ((i % 2)); then
    sbx_times+=("$(time_us "${sbx_cmd[@]}")")
    bwrap_times+=("$(time_us "${bwrap_cmd[@]}")")
  else
    bwrap_times+=("$(time_us "${bwrap_cmd[@]}")")
    sbx_times+=("$(time_us "${sbx_cmd[@]}")")
  fi
done

median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : int((a[NR/2]+a[NR/2+1])/2)}'; }
sbx_med=$(median "${sbx_times[@]}")
bwrap_med=$(median "${bwrap_times[@]}")
ratio=$(awk -v a="$sbx_med" -v b="$bwrap_med" 'BEGIN {printf "%.2f", a / b}')
printf 'runs: %d (interleaved), as uid %d\n' "$runs" "$(id -u)"
printf 'sbx   run --net none -- /bin/true : median %6.2f ms\n' "$(awk -v x="$sbx_med" 'BEGIN{print x/1000}')"
printf 'bwrap --unshare-all ... /bin/true : median %6.2f ms\n' "$(awk -v x="$bwrap_med" 'BEGIN{print x/1000}')"
printf 'ratio sbx/bwrap: %s (target <= 1.0)\n' "$ratio"
