#!/usr/bin/env bash
# Audit log and run report of a real run: a command that makes one denied
# syscall (unshare(CLONE_NEWUSER) under the default seccomp policy) must
# leave exactly one syscall_denied record with its fields, a log that
# validates against docs/audit.schema.json, a report whose counts match the
# log, and `sbx audit` summaries with the same counts.
source "$SBX_SOURCE_DIR/tests/lib.sh"
command -v python3 >/dev/null || skip "python3 missing (scripts/install-deps)"
command -v unshare >/dev/null || skip "unshare (util-linux) missing"

dir=$(scratch)
mkdir -p "$dir/work" "$dir/logs"
log=$dir/logs/audit.jsonl
report=$dir/report.json
cd "$dir/work" || fail "cd $dir/work"

# validate FILE: every line against the schema (a stdlib validator for the
# keywords the schema uses; python3-jsonschema, when present, checks too).
validate() {
  python3 - "$SBX_SOURCE_DIR/docs/audit.schema.json" "$1" <<'EOF'
import json, re, sys
schema = json.load(open(sys.argv[1]))
USED = {"$schema", "$id", "title", "description", "type", "required", "properties", "const",
        "enum", "pattern", "minimum", "maximum", "items", "allOf", "if", "then"}
def keys(s):
    if isinstance(s, dict):
        unknown = set(s) - USED
        if unknown and "properties" not in s and "if" not in s:
            pass
        for k, v in s.items():
            if k == "properties":
                for sub in v.values(): keys(sub)
            elif k in ("items", "if", "then"): keys(v)
            elif k == "allOf":
                for sub in v: keys(sub)
            elif k not in USED: raise SystemExit(f"schema keyword {k} not supported by this validator")
keys(schema)
TYPES = {"object": dict, "array": list, "string": str, "boolean": bool, "null": type(None)}
def check(v, s, path, errs):
    t = s.get("type")
    if t == "integer":
        if not (isinstance(v, int) and not isinstance(v, bool)): errs.append(f"{path}: not an integer"); return
    elif t == "number":
        if not (isinstance(v, (int, float)) and not isinstance(v, bool)): errs.append(f"{path}: not a number"); return
    elif t and not isinstance(v, TYPES[t]): errs.append(f"{path}: not {t}"); return
    if "const" in s and v != s["const"]: errs.append(f"{path}: {v!r} != {s['const']!r}")
    if "enum" in s and v not in s["enum"]: errs.append(f"{path}: {v!r} not in {s['enum']}")
    if "pattern" in s and isinstance(v, str) and not re.search(s["pattern"], v): errs.append(f"{path}: {v!r} !~ {s['pattern']}")
    if "minimum" in s and isinstance(v, (int, float)) and v < s["minimum"]: errs.append(f"{path}: {v} < {s['minimum']}")
    if "maximum" in s and isinstance(v, (int, float)) and v > s["maximum"]: errs.append(f"{path}: {v} > {s['maximum']}")
    if isinstance(v, dict):
        for r in s.get("required", []):
            if r not in v: errs.append(f"{path}: missing {r}")
        for k, sub in s.get("properties", {}).items():
            if k in v: check(v[k], sub, f"{path}.{k}", errs)
    if isinstance(v, list) and "items" in s:
        for i, x in enumerate(v): check(x, s["items"], f"{path}[{i}]", errs)
    for sub in s.get("allOf", []):
        if "if" in sub:
            probe = []
            check(v, sub["if"], path, probe)
            if not probe and "then" in sub: check(v, sub["then"], path, errs)
        else:
            check(v, sub, path, errs)
try:
    import jsonschema
    lib = jsonschema.Draft202012Validator(schema)
except Exception:
    lib = None
n = 0
for i, line in enumerate(open(sys.argv[2]), 1):
    rec = json.loads(line)
    errs = []
    check(rec, schema, "$", errs)
    if lib is not None:
        errs += [f"jsonschema: {e.message}" for e in lib.iter_errors(rec)]
    if errs: raise SystemExit(f"line {i} invalid: {errs}\n{line}")
    n += 1
print(f"valid {n}")
EOF
}

# --- the run
run_sbx run --net none --name audit-t --audit-log "$log" --report "$report" -- unshare -U true
expect_rc 1 "unshare -U fails inside (exit 1)"
expect_no_out "inside .*which the sandbox may write" "no warning: the log is outside writable paths"
[[ -f $log ]] || fail "no audit log at $log"
pass "audit log written"
[[ $(stat -c %a "$log") == 600 ]] || fail "log mode $(stat -c %a "$log"), want 600"
pass "log is 0600"

OUT=$(validate "$log" 2>&1) || fail "schema validation: $OUT"
pass "every record validates against docs/audit.schema.json ($OUT)"

# field checks on the records themselves
OUT=$(python3 - "$log" <<'EOF' 2>&1
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
types = [r["type"] for r in recs]
assert types[0] == "sandbox_start", types
assert types[-1] == "sandbox_exit", types
assert [r["seq"] for r in recs] == list(range(1, len(recs) + 1)), "seq not 1..n"
assert len({r["sandbox_id"] for r in recs}) == 1, "one sandbox id"
assert all(r["sandbox"] == "audit-t" for r in recs), "sandbox name on every record"
assert all(r["v"] == 1 for r in recs)
den = [r for r in recs if r["type"] == "syscall_denied"]
assert len(den) == 1, f"want one syscall_denied, got {len(den)}: {den}"
d = den[0]
assert d["syscall"] == "unshare" and d["errno"] == "EPERM" and d["blocked"] is True, d
assert d.get("comm") == "unshare", d
start, end = recs[0], recs[-1]
assert start["argv"] == ["unshare", "-U", "true"], start
assert start["profile"] == "standard", start
assert end["exit_code"] == 1 and end["signal"] == 0 and end["timed_out"] is False, end
assert end["audit_dropped"] == 0, end
print("records", len(recs))
EOF
) || fail "record fields: $OUT"
pass "sandbox_start first, sandbox_exit last, one syscall_denied(unshare, EPERM, comm) ($OUT)"

# --- the report agrees with the log
OUT=$(python3 - "$log" "$report" <<'EOF' 2>&1
import json, sys, collections
recs = [json.loads(l) for l in open(sys.argv[1])]
rep = json.load(open(sys.argv[2]))
counts = collections.Counter(r["type"] for r in recs)
assert rep["events"] == dict(counts), (rep["events"], counts)
assert rep["exit_code"] == 1 and rep["signal"] == 0, rep
assert rep["sandbox"] == "audit-t" and rep["sandbox_id"] == recs[0]["sandbox_id"], rep
assert rep["blocked"]["total"] == sum(r["blocked"] for r in recs) == 1, rep["blocked"]
assert rep["syscalls_denied"] == {"unshare": 1}, rep["syscalls_denied"]
assert rep["audit_log"]["records"] == len(recs) and rep["audit_log"]["dropped"] == 0, rep
assert rep["duration_ms"] >= 0 and "peak_memory_bytes" in rep["usage"], rep
assert rep["confinement_requested"]["seccomp"] == "default", rep
print("ok")
EOF
) || fail "report: $OUT"
pass "report counts match the log"

# --report - prints the document on stderr
run_sbx run --net none --audit-log "$log" --report - -- true
expect_rc 0 "run with --report -"
expect_out '"exit_code": 0' "--report - prints the report"
n=$(grep -c '"type":"sandbox_start"' "$log")
[[ $n -eq 2 ]] || fail "second run appends to the log (want 2 sandbox_start, got $n)"
pass "the second run appended to the same log"

# --- sbx audit on that file
run_sbx audit "$log" --summary --json
expect_rc 0 "sbx audit --summary --json"
echo "$OUT" | python3 -c '
import json, sys
s = json.load(sys.stdin)
assert s["sandboxes"] == 2, s
assert s["blocked"]["total"] == 1, s["blocked"]
assert s["syscalls_denied"] == {"unshare": 1}, s
assert s["events"]["sandbox_exit"] == 2, s
assert s["peaks"]["runs"] == 2, s
' || fail "summary counts: $OUT"
pass "summary: 2 runs, 1 blocked, unshare denied once"

run_sbx audit "$log" --summary
expect_rc 0 "sbx audit --summary (table)"
expect_out 'blocked: 1' "human summary names 1 blocked attempt"
expect_out 'unshare +1' "human summary lists unshare"

run_sbx audit "$log" --blocked-only --json
expect_rc 0 "sbx audit --blocked-only --json"
n=$(grep -c . <<<"$OUT")
[[ $n -eq 1 && $OUT =~ \"syscall\":\"unshare\" ]] || fail "--blocked-only --json: want 1 record, got $n: $OUT"
pass "--blocked-only --json gives exactly the denied syscall"

run_sbx audit "$log" --category syscall --since 1h
expect_rc 0 "sbx audit --category syscall --since 1h"
expect_out 'syscall_denied .*BLOCKED unshare' "table shows the blocked unshare"
run_sbx audit "$log" --category dns --json
expect_rc 0 "sbx audit --category dns"
[[ -z $OUT ]] || fail "no dns records expected with --net none: $OUT"
pass "--category dns is empty for --net none"
run_sbx audit "$log" --category bogus
expect_rc 125 "unknown --category is a usage error"
run_sbx audit "$dir/missing.jsonl"
expect_rc 125 "a missing log is a usage error"

# --- an explicit log that cannot be written stops the run before it starts
run_sbx run --net none --audit-log "$report/sub/x.jsonl" --report "$dir/r2.json" -- true
expect_rc 125 "unwritable --audit-log refuses to run"
expect_out 'audit log' "the error names the audit log"
[[ ! -e $dir/r2.json ]] || fail "no report when the run never started"
pass "no report for a run that never started"

# --- a log inside the writable work dir is flagged
run_sbx run --net none --audit-log "$dir/work/in.jsonl" -- true
expect_rc 0 "run with the log in the work dir"
expect_out 'sandbox may write' "warns that the sandbox could alter a log in a writable path"

# --- denials beyond the rate limit are summarised, also when the command
# exits right after them: 100 denied unshare calls in a burst, then exit.
# The log holds the first 32 as records and the rest in one
# syscall_denied_suppressed summary written at the end (before the fix the
# last 68 were in neither the log nor the report).
burst_log=$dir/logs/burst.jsonl
run_sbx run --net none --audit-log "$burst_log" --report "$dir/burst.json" -- python3 -c '
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
assert all(libc.unshare(0x10000000) == -1 for _ in range(100))'
expect_rc 0 "100 denied unshare calls in a burst"
OUT=$(python3 - "$burst_log" "$dir/burst.json" <<'EOF' 2>&1
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
rep = json.load(open(sys.argv[2]))
single = sum(1 for r in recs if r["type"] == "syscall_denied" and r["syscall"] == "unshare")
summaries = [r for r in recs if r["type"] == "violation"]
assert summaries and all(s["kind"] == "syscall_denied_suppressed" and s["blocked"] for s in summaries), recs
folded = sum(s["syscalls"].get("unshare", 0) for s in summaries)
assert single + folded == 100, (single, folded)
assert recs[-1]["type"] == "sandbox_exit" and recs[-2]["type"] == "violation", recs[-2:]
assert rep["syscalls_denied"].get("unshare") == 100, rep["syscalls_denied"]
print(f"{single} records + {folded} in the summary")
EOF
) || fail "burst: $OUT"
pass "every denial of the burst is in the log and the report ($OUT)"
OUT=$(validate "$burst_log" 2>&1) || fail "burst log schema: $OUT"

# --- minimal level: no names or paths in the log
printf 'extends = "standard"\n[audit]\nlevel = "minimal"\n' >"$dir/min.toml"
run_sbx run --net none -p "$dir/min.toml" --audit-log "$dir/logs/min.jsonl" -- unshare -U true
expect_rc 1 "minimal-level run"
! grep -q -e '"argv"' -e '"comm"' -e "$dir" "$dir/logs/min.jsonl" ||
  fail "minimal log carries names/paths: $(cat "$dir/logs/min.jsonl")"
grep -q '"syscall":"unshare"' "$dir/logs/min.jsonl" || fail "minimal log lost the event"
pass "level minimal: the event is there, argv/comm/paths are not"
OUT=$(validate "$dir/logs/min.jsonl" 2>&1) || fail "minimal log schema: $OUT"
pass "minimal log validates"

# --- the log is not readable from the sandbox wherever it is: the base
# profile hides ~/.local/state/sbx, sbx hides a default log moved by
# XDG_STATE_HOME (its directory) and an --audit-log file. Outside /tmp,
# which the sandbox sees as a fresh tmpfs anyway.
vis=$(mktemp -d /var/tmp/sbx-test-audit.XXXXXX)
_SCRATCH_DIRS+=("$vis")
chmod 755 "$vis"
XDG_STATE_HOME=$vis/state run_sbx run --net none -p standard -- true
expect_rc 0 "a run logging to \$XDG_STATE_HOME"
[[ -s $vis/state/sbx/audit/standard.jsonl ]] || fail "no log in \$XDG_STATE_HOME: $(ls -R "$vis")"
XDG_STATE_HOME=$vis/state run_sbx run --net none -p standard -- cat "$vis/state/sbx/audit/standard.jsonl"
[[ $OUT != *'"type"'* ]] || fail "the sandbox read the audit log in \$XDG_STATE_HOME: $OUT"
pass "the audit log under \$XDG_STATE_HOME is hidden from the sandbox"
run_sbx run --net none -p standard --audit-log "$vis/custom.jsonl" -- true
run_sbx run --net none -p standard --audit-log "$vis/custom.jsonl" -- cat "$vis/custom.jsonl"
[[ -s $vis/custom.jsonl ]] || fail "no --audit-log file"
[[ $OUT != *'"type"'* ]] || fail "the sandbox read its --audit-log file: $OUT"
pass "an --audit-log file is hidden from the sandbox"

done_testing
