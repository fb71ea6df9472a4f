#!/usr/bin/env bash
# Start-up cost of a sandbox: median wall time of
#   sbx run --net none -- /bin/true            (the default profile)
#   sbx run --profile airgapped -- /bin/true
#   sbx run --profile strict -- /bin/true      (every protection on)
# beside bubblewrap with every namespace, in the same run, interleaved (so
# all see the same machine load), printed as ratios sbx/bwrap.
# Targets (issues #3 and #11): default <= 1.0, airgapped <= 0.6, strict <= 1.0.
# A benchmark, not a test: it never fails on a ratio. A scenario sbx refuses
# to start (strict fails closed without enforceable limits, e.g. as an
# unprivileged user on a host without a delegated cgroup) is reported as
# such and left out.
#
#   bench/startup.sh [RUNS]        (SBX=path/to/sbx, default build/sbx;
#                                   SCENARIOS="default airgapped strict")
#
# Where the time goes inside one start: SBX_TRACE_STARTUP=1 sbx run ... prints
# a timestamp per launch step on stderr (docs/PERFORMANCE.md).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
SBX=${SBX:-$here/build/sbx}
runs=${1:-${RUNS:-100}}
[[ -x $SBX ]] || { echo "startup.sh: no sbx at $SBX (build first or set SBX)" >&2; exit 2; }
command -v bwrap >/dev/null || { echo "startup.sh: bwrap not installed (scripts/install-deps)" >&2; exit 2; }

bwrap_cmd=(bwrap --unshare-all --die-with-parent --ro-bind / / --dev /dev --proc /proc /bin/true)
read -r -a names <<<"${SCENARIOS:-default airgapped strict}"
declare -A cmds targets labels
cmds[default]="$SBX run --net none -- /bin/true"
cmds[airgapped]="$SBX run --profile airgapped -- /bin/true"
cmds[strict]="$SBX run --profile strict -- /bin/true"
targets=([default]=1.0 [airgapped]=0.6 [strict]=1.0)
labels=([default]="sbx run --net none -- /bin/true" [airgapped]="sbx run --profile airgapped"
  [strict]="sbx run --profile strict")

# Each must work before timing means anything.
"${bwrap_cmd[@]}" </dev/null || { echo "startup.sh: bwrap failed: ${bwrap_cmd[*]}" >&2; exit 2; }
active=()
for n in "${names[@]}"; do
  if out=$(${cmds[$n]} </dev/null 2>&1); then
    active+=("$n")
  else
    printf 'skipped %-9s: sbx refused to start (%s)\n' "$n" "$(grep -m1 -v '^sbx: warning' <<<"$out" || true)"
  fi
done
((${#active[@]} > 0)) || { echo "startup.sh: no sbx scenario runs here" >&2; exit 2; }

# Microseconds of one run; EPOCHREALTIME costs no fork.
time_us() {
  local t0=$EPOCHREALTIME
  "$@" </dev/null >/dev/null 2>&1
  local t1=$EPOCHREALTIME
  echo $(((${t1/./} - ${t0/./})))
}

declare -A times
bwrap_times=()
for ((i = 0; i < 5; i++)); do  # warm caches
  time_us "${bwrap_cmd[@]}" >/dev/null
  for n in "${active[@]}"; do time_us ${cmds[$n]} >/dev/null; done
done
for ((i = 0; i < runs; i++)); do
  # Rotate the order, so no command always follows the same one.
  order=(bwrap "${active[@]}")
  k=$((i % ${#order[@]}))
  order=("${order[@]:k}" "${order[@]:0:k}")
  for n in "${order[@]}"; do
    if [[ $n == bwrap ]]; then
      bwrap_times+=("$(time_us "${bwrap_cmd[@]}")")
    else
      times[$n]+="$(time_us ${cmds[$n]}) "
    fi
  done
done

median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : int((a[NR/2]+a[NR/2+1])/2)}'; }
ms() { awk -v x="$1" 'BEGIN{printf "%6.2f", x/1000}'; }
bwrap_med=$(median "${bwrap_times[@]}")
printf 'runs: %d (interleaved), as uid %d\n' "$runs" "$(id -u)"
printf '%-36s: median %s ms\n' "bwrap --unshare-all ... /bin/true" "$(ms "$bwrap_med")"
for n in "${active[@]}"; do
  # shellcheck disable=SC2086
  med=$(median ${times[$n]})
  printf '%-36s: median %s ms\n' "${labels[$n]}" "$(ms "$med")"
done
for n in "${active[@]}"; do
  # shellcheck disable=SC2086
  med=$(median ${times[$n]})
  ratio=$(awk -v a="$med" -v b="$bwrap_med" 'BEGIN {printf "%.2f", a / b}')
  printf 'ratio sbx/bwrap %-9s: %s (target <= %s)\n' "$n" "$ratio" "${targets[$n]}"
done
