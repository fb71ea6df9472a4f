#!/usr/bin/env python3
"""Issue 11's targets, judged from one bench/run log (its own output).

    bench/lib/targets.py LOG

Reads the lines bench/run printed, finds the figure each target is set
against and prints one row per target: the target, the measured value and
whether it holds. A scenario that did not run (--only, not root, a peer
missing) gives "not measured", never a verdict. The same table, with the
history of earlier runs, is in docs/PERFORMANCE.md ("Targets").
"""
import re
import sys


def floats(pattern, text):
    return [float(m) for m in re.findall(pattern, text, re.M)]


def startup_median(label, text):
    # "  sbx -p strict                      median    17.69 ms  p90 ..."
    m = re.search(r"^\s*" + re.escape(label) + r"\s+median\s+([\d.]+) ms", text, re.M)
    return float(m.group(1)) if m else None


def section(text, number):
    m = re.search(r"^== %d .*?(?=^== |\Z)" % number, text, re.M | re.S)
    return m.group(0) if m else ""


def main():
    if len(sys.argv) != 2:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    text = open(sys.argv[1], encoding="utf-8", errors="replace").read()
    rows = []  # (target, measured text or None, holds or None)

    s1 = section(text, 1)
    bwrap = startup_median("bwrap --unshare-all", s1)

    def vs_bwrap(label, limit, name):
        own = startup_median(label, s1)
        if own is None or not bwrap:
            rows.append((name, None, None))
            return
        ratio = own / bwrap
        rows.append((name, "%.2fx (%.1f ms vs %.1f ms)" % (ratio, own, bwrap), ratio <= limit))

    vs_bwrap("sbx -p airgapped", 0.6, "airgapped start-up <= 0.6x bwrap")
    vs_bwrap("sbx -p strict", 1.0, "strict start-up <= 1.0x bwrap")
    srt = startup_median("srt -c true (sandbox-runtime)", s1)
    strict = startup_median("sbx -p strict", s1)
    if srt and strict:
        rows.append(("strict >= 40x faster than srt", "%.1fx" % (srt / strict), srt / strict >= 40))
    else:
        rows.append(("strict >= 40x faster than srt", None, None))
    vs_bwrap("sbx --net none (issue 3)", 1.0, "--net none start-up <= 1.0x bwrap (issue 3)")

    s3 = section(text, 3)
    for peer, limit in (("pasta", 1.0), ("slirp4netns", 3.0)):
        v = floats(r"sbx / %s\s*=\s*([\d.]+)x" % peer, s3)
        name = "filtered throughput >= %gx %s" % (limit, peer)
        rows.append((name, "%.2fx" % v[0], v[0] >= limit) if v else (name, None, None))

    s4 = section(text, 4)
    v = floats(r"added by the filter, forwarded: p50 -?\d+ us, p99 (-?\d+) us", s4)
    name = "DNS p99 added <= 100 us (forwarded)"
    rows.append((name, "%d us" % v[0], v[0] <= 100) if v else (name, None, None))
    v = floats(r"sbx good\.test \(cached\)\s+(\d+) q/s", s4)
    name = "DNS >= 20k q/s (cached)"
    rows.append((name, "%d q/s" % v[0], v[0] >= 20000) if v else (name, None, None))

    s5 = section(text, 5)
    # The filter-cost table's strict/none column and the in-sandbox lines.
    loops = floats(r"^\s*(?:getppid|openat)\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+([\d.]+)\s*$", s5)
    loops += floats(r"strict/none ([\d.]+)\s*$", s5)
    name = "seccomp <= 5% on syscall loops (strict/none, worst)"
    rows.append((name, "%.3f" % max(loops), max(loops) <= 1.05) if loops else (name, None, None))

    s6, s7 = section(text, 6), section(text, 7)
    m = re.search(r"N=50\s+(\d+)/(\d+) succeeded", s6)
    name = "50 parallel sandboxes all succeed"
    rows.append((name, "%s/%s" % m.groups(), m.group(1) == m.group(2)) if m else (name, None, None))
    rss = floats(r"supervisor RSS median \d+ KB max (\d+) KB", s6)
    rss += floats(r"peak RSS over .*?: (\d+) KB", s7)
    name = "supervisor RSS <= 8 MB (worst of 6 and 7)"
    rows.append((name, "%.1f MB" % (max(rss) / 1024), max(rss) <= 8 * 1024) if rss else (name, None, None))

    print("\n== targets (issue 11; history in docs/PERFORMANCE.md)")
    width = max(len(r[0]) for r in rows)
    for name, measured, holds in rows:
        verdict = "not measured" if holds is None else ("holds" if holds else "MISSED")
        print("  %-*s  %-28s %s" % (width, name, measured or "-", verdict))
    if "(--quick:" in text:
        print("  (--quick: 10 rounds, 500 DNS queries, short seccomp loops: noisy; "
              "judge the targets on a full run)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
