#!/usr/bin/env python3
"""Time several commands interleaved (A B C A B C ...) and print ratios.

    interleave.py --runs N --warmup W --ref LABEL [--title T] \
        LABEL -- ARGV... ';;' LABEL -- ARGV... ';;' ...

Every round runs each command once, in an order rotated by the round number,
so machine load affects all of them alike. A command that fails (non-zero exit)
during warm-up is reported as "did not run" with its stderr tail and left out;
one that fails during timing is reported with the failure count. Prints one
line per command: median, p90 and the ratio median/median(ref). Wall time is
measured around fork+exec+wait with CLOCK_MONOTONIC (os.posix_spawn, no shell).
A benchmark, not a test: exit status is 0 unless the arguments are wrong.
"""
import argparse
import os
import subprocess
import sys
import time


def parse_commands(rest):
    cmds, cur = [], []
    for tok in rest + [";;"]:
        if tok == ";;":
            if cur:
                if len(cur) < 3 or cur[1] != "--":
                    sys.exit(f"interleave.py: bad command spec {cur!r} (LABEL -- ARGV...)")
                cmds.append((cur[0], cur[2:]))
            cur = []
        else:
            cur.append(tok)
    return cmds


def run_once(argv):
    devnull = os.open(os.devnull, os.O_RDWR)
    t0 = time.monotonic_ns()
    try:
        pid = os.posix_spawnp(argv[0], argv, os.environ,
                              file_actions=[(os.POSIX_SPAWN_DUP2, devnull, 0),
                                            (os.POSIX_SPAWN_DUP2, devnull, 1),
                                            (os.POSIX_SPAWN_DUP2, devnull, 2)])
    finally:
        os.close(devnull)
    _, status = os.waitpid(pid, 0)
    t1 = time.monotonic_ns()
    return (t1 - t0) / 1e6, os.waitstatus_to_exitcode(status)


def pct(sorted_ms, p):
    if not sorted_ms:
        return float("nan")
    k = min(len(sorted_ms) - 1, max(0, int(round(p / 100 * (len(sorted_ms) - 1)))))
    return sorted_ms[k]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--ref", required=True)
    ap.add_argument("--title", default="")
    ap.add_argument("rest", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    cmds = parse_commands(a.rest)
    if not any(label == a.ref for label, _ in cmds):
        sys.exit(f"interleave.py: reference {a.ref!r} is not among the commands")

    ok = []
    for label, argv in cmds:
        try:
            p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, timeout=120)
            rc, err = p.returncode, p.stderr.decode(errors="replace")
        except (OSError, subprocess.TimeoutExpired) as e:
            rc, err = -1, str(e)
        if rc != 0:
            tail = " | ".join(err.strip().splitlines()[-2:])[:200]
            print(f"  {label:<34} did not run (exit {rc}): {tail}")
            continue
        ok.append((label, argv))
    if not any(label == a.ref for label, _ in ok):
        print(f"  no ratios: the reference {a.ref} did not run")
        return
    for _ in range(a.warmup):
        for _, argv in ok:
            run_once(argv)
    times = {label: [] for label, _ in ok}
    fails = {label: 0 for label, _ in ok}
    for r in range(a.runs):
        k = r % len(ok)
        for label, argv in ok[k:] + ok[:k]:
            ms, rc = run_once(argv)
            if rc != 0:
                fails[label] += 1
            else:
                times[label].append(ms)
    ref = sorted(times[a.ref])
    ref_med = pct(ref, 50)
    for label, _ in ok:
        t = sorted(times[label])
        med, p90 = pct(t, 50), pct(t, 90)
        extra = f"  ({fails[label]} of {a.runs} runs failed)" if fails[label] else ""
        print(f"  {label:<34} median {med:8.2f} ms  p90 {p90:8.2f} ms  "
              f"ratio {med / ref_med:6.2f}x {a.ref}{extra}")


if __name__ == "__main__":
    main()
