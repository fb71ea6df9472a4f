#!/usr/bin/env python3
"""bench/lib/targets.py judges issue 11's targets from a bench/run log.

A log in bench/run's format (lines as a --quick run printed them) must give
each target its figure and verdict; a log without a scenario must say
"not measured" for that scenario's targets, never a verdict.
"""
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
TARGETS = os.path.join(HERE, "..", "..", "bench", "lib", "targets.py")

S1 = """
== 1 start-up of /bin/true (10 interleaved runs after 2 warm-up; as uid 0)
  sbx -p airgapped                   median     8.00 ms  p90    13.49 ms  ratio   0.57x bwrap --unshare-all
  sbx -p standard                    median    15.83 ms  p90    17.33 ms  ratio   1.13x bwrap --unshare-all
  sbx -p strict                      median    17.69 ms  p90    19.83 ms  ratio   1.27x bwrap --unshare-all
  sbx --net none (issue 3)           median    12.63 ms  p90    13.84 ms  ratio   0.90x bwrap --unshare-all
  bwrap --unshare-all                median    13.98 ms  p90    14.94 ms  ratio   1.00x bwrap --unshare-all
  srt -c true (sandbox-runtime)      median   558.71 ms  p90   569.67 ms  ratio  39.98x bwrap --unshare-all
"""
REST = """
== 3 egress throughput and connect latency (bench/net_throughput.sh 2)
  sbx / pasta       = 0.72x   (target >= 1.0x)
  sbx / slirp4netns = 6.23x   (target >= 3.0x)

== 4 DNS filter (bench/dns.sh N=500 S=2)
    sbx good.test (cached)             p50     27 us  p99    115 us  (NOERROR=500)
    added by the filter, forwarded: p50 -3 us, p99 128 us   (target p99 <= 100 us)
    sbx good.test (cached)               55307 q/s  lost 0  (NOERROR=110656)

== 5 seccomp overhead
  == filter cost (forked children, no sandbox)
  loop      none ns/op   allow-all     default      strict allow/none  def/none strict/none
  getppid       1073.6      1103.7      1066.4      1092.4     1.028     0.993     1.018
  openat        3417.4      3523.6      3352.9      3425.2     1.031     0.981     1.002
  getppid  none 994.6 ns/op  strict 999.4 ns/op  strict/none 1.005
  openat   none 3423.9 ns/op  strict 3488.3 ns/op  strict/none 1.019

== 6 concurrency: N sandboxes (airgapped, sleep 2) started at once
  N=1   1/1 succeeded  total 2.15 s (2 s of it is the command)  supervisor RSS median 5196 KB max 5196 KB
  N=50  49/50 succeeded  total 3.10 s (2 s of it is the command)  supervisor RSS median 5196 KB max 5200 KB

== 7 supervisor RSS during a long-running sandbox with active traffic
  sbx supervisor peak RSS over 6 s of iperf3 -P 4 through the egress proxy: 9000 KB (8.8 MB; target <= 8 MB)
"""


def judge(log):
    with tempfile.NamedTemporaryFile("w", suffix=".log", delete=False) as f:
        f.write(log)
    try:
        out = subprocess.run([sys.executable, TARGETS, f.name], capture_output=True, text=True, check=True).stdout
    finally:
        os.unlink(f.name)
    rows = {}
    for line in out.splitlines()[2:]:
        verdict = "not measured" if line.endswith("not measured") else line.split()[-1]
        rows[line.strip()[:40]] = (line, verdict)
    return rows


def expect(rows, prefix, verdict, figure=None):
    hits = [v for k, v in rows.items() if k.startswith(prefix)]
    assert len(hits) == 1, f"no single row for {prefix!r}: {list(rows)}"
    line, got = hits[0]
    assert got == verdict, f"{prefix}: want {verdict}, got: {line}"
    assert figure is None or figure in line, f"{prefix}: want {figure} in: {line}"


def main():
    rows = judge(S1 + REST)
    expect(rows, "airgapped start-up", "holds", "0.57x")
    expect(rows, "strict start-up", "MISSED", "1.27x")
    expect(rows, "strict >= 40x faster than srt", "MISSED", "31.6x")
    expect(rows, "--net none start-up", "holds", "0.90x")
    expect(rows, "filtered throughput >= 1x pasta", "MISSED", "0.72x")
    expect(rows, "filtered throughput >= 3x slirp4netns", "holds", "6.23x")
    expect(rows, "DNS p99 added", "MISSED", "128 us")
    expect(rows, "DNS >= 20k q/s", "holds", "55307")
    expect(rows, "seccomp <= 5%", "holds", "1.019")
    expect(rows, "50 parallel sandboxes", "MISSED", "49/50")
    expect(rows, "supervisor RSS", "MISSED", "8.8 MB")
    # Only scenario 1: the others are not measured, not judged.
    rows = judge(S1)
    expect(rows, "strict start-up", "MISSED")
    for prefix in ("filtered throughput >= 1x", "DNS p99", "DNS >= 20k", "seccomp", "50 parallel", "supervisor RSS"):
        expect(rows, prefix, "not measured")
    # No srt in the run: that target is not measured either.
    rows = judge(S1.replace("srt -c true", "srt missing"))
    expect(rows, "strict >= 40x faster than srt", "not measured")
    print("ok: targets.py judges each target from the log, and says 'not measured' for what did not run")


if __name__ == "__main__":
    main()
