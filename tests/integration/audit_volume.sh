#!/usr/bin/env bash
# Issue 8 acceptance (d): a sandbox that writes 1 GB of output (relayed by
# the supervisor through the pty, so its loop is busy) while making 10,000
# DNS queries leaves a complete, valid audit log: one dns record per query,
# seq 1..n without a gap, every line whole JSON valid against the schema,
# across size-based rotation (audit.max_size = 1M).
source "$SBX_SOURCE_DIR/tests/lib.sh"
source "$SBX_SOURCE_DIR/tests/net/fixture.sh"
py=/usr/bin/python3
[[ -x $py ]] || skip "needs /usr/bin/python3"
need_net_fixture

D=$(scratch)
cd "$D" || fail "cd $D"
mkdir -p "$D/logs"
cat >"$D/net.toml" <<EOF
extends = "base"
[network]
mode = "filtered"
allow_domains = ["good.test"]
dns_upstream = ["$SBXNET_DNS"]
dns_query_rate = 100000
[audit]
max_size = "1M"
EOF
log=$D/logs/audit.jsonl

# 9,000 refused names (answered by the filter) + 1,000 allowed (resolved
# upstream by the fake internet's DNS), one after the other over UDP; each
# reply must arrive. Meanwhile 1 GiB of output goes through the pty.
queries='
import socket, struct, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(5)
got = 0
for i in range(10000):
    name = "good.test" if i % 10 == 0 else f"n{i}.blocked.test"
    q = struct.pack(">HHHHHH", i & 0xFFFF, 0x100, 1, 0, 0, 0)
    q += b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0" + struct.pack(">HH", 1, 1)
    s.sendto(q, ("127.0.0.1", 53))
    while True:
        r = s.recv(4096)
        if r[:2] == q[:2]: break
    got += 1
print(f"answers {got}", file=sys.stderr)'
start=$(date +%s)
bytes=$("$SBX" run -p "$D/net.toml" --tty --audit-log "$log" -- sh -c \
  "$py -c '$queries' 2>x.err & head -c 1073741824 /dev/zero; wait \$!; cat x.err >&2" 2>"$D/err" | wc -c)
rc=${PIPESTATUS[0]}
elapsed=$(($(date +%s) - start))
RC=$rc OUT=$(cat "$D/err")
expect_rc 0 "the run completed in ${elapsed}s"
((elapsed < 120)) || fail "took ${elapsed}s (limit 120)"
# The pty merges the command's stderr into its output: the answer count is
# in the byte stream too; the 1 GiB of zeros must all have arrived.
((bytes >= 1073741824)) || fail "only $bytes bytes of output arrived"
pass "1 GiB of output relayed ($bytes bytes incl. the pty's text)"

ls "$log".* >/dev/null 2>&1 || fail "the log never rotated (max_size 1M): $(ls -la "$D/logs")"
pass "the log rotated ($(ls "$D/logs" | wc -l) files)"
# Oldest first: path.N .. path.1, path.
files=$(ls "$log".* | sort -t. -k3 -n -r; echo "$log")
cat $files >"$D/all.jsonl"
OUT=$("$py" "$SBX_SOURCE_DIR/tests/integration/audit_validate.py" "$SBX_SOURCE_DIR/docs/audit.schema.json" "$D/all.jsonl" 2>&1) ||
  fail "log: $OUT"
pass "every line is a whole record valid against the schema, seq without a gap ($OUT)"
OUT=$("$py" - "$D/all.jsonl" <<'EOF' 2>&1
import json, sys, collections
recs = [json.loads(l) for l in open(sys.argv[1])]
dns = [r for r in recs if r["type"] == "dns"]
v = collections.Counter(r["verdict"] for r in dns)
assert len(dns) == 10000, (len(dns), v)
assert v == {"unlisted": 9000, "allowed": 1000}, v
assert recs[0]["type"] == "sandbox_start" and recs[-1]["type"] == "sandbox_exit", (recs[0], recs[-1])
assert recs[-1]["exit_code"] == 0 and recs[-1]["audit_dropped"] == 0, recs[-1]
print(f"{len(recs)} records, dns {dict(v)}")
EOF
) || fail "contents: $OUT"
pass "10,000 dns records (9,000 refused, 1,000 allowed), start first, exit last, none dropped ($OUT)"
run_sbx audit "$log" --summary --json
expect_rc 0 "sbx audit --summary over the rotated files"
echo "$OUT" | "$py" -c "
import json, sys
s = json.load(sys.stdin)
assert s['events']['dns'] == 10000 and s['blocked']['total'] == 9000, s['events']
" || fail "summary: $OUT"
pass "sbx audit NAME|FILE reads the rotated files: 10,000 dns, 9,000 blocked"
done_testing
