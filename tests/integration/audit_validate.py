#!/usr/bin/env python3
"""audit_validate.py SCHEMA LOG: every line of an sbx audit log must be one
JSON object valid against docs/audit.schema.json (jsonschema, Draft 2020-12),
and the records of each sandbox must be numbered 1..n without a gap (no lost
line). Prints "valid N" or exits 1 naming the first bad line. Used by the
audit/control integration tests."""
import collections
import json
import sys

import re

schema = json.load(open(sys.argv[1]))


class MiniValidator:
    """The keywords docs/audit.schema.json uses, for hosts without
    python3-jsonschema (the real library is used when present)."""
    TYPES = {"object": dict, "array": list, "string": str, "boolean": bool}

    class Err:
        def __init__(self, message, path):
            self.message, self.path = message, path

    def __init__(self, s):
        self.schema = s

    def iter_errors(self, rec):
        errs = []
        self.check(rec, self.schema, [], errs)
        return errs

    def check(self, v, s, path, errs):
        t = s.get("type")
        if t == "integer":
            if not (isinstance(v, int) and not isinstance(v, bool)):
                errs.append(self.Err("not an integer", path)); return
        elif t and not isinstance(v, self.TYPES[t]):
            errs.append(self.Err(f"not {t}", path)); return
        if "const" in s and v != s["const"]: errs.append(self.Err(f"{v!r} != {s['const']!r}", path))
        if "enum" in s and v not in s["enum"]: errs.append(self.Err(f"{v!r} not in enum", path))
        if "pattern" in s and isinstance(v, str) and not re.search(s["pattern"], v):
            errs.append(self.Err(f"{v!r} !~ {s['pattern']}", path))
        if "minimum" in s and isinstance(v, (int, float)) and v < s["minimum"]:
            errs.append(self.Err(f"{v} < minimum", path))
        if "maximum" in s and isinstance(v, (int, float)) and v > s["maximum"]:
            errs.append(self.Err(f"{v} > maximum", path))
        if isinstance(v, dict):
            for r in s.get("required", []):
                if r not in v: errs.append(self.Err(f"missing {r}", path))
            for k, sub in s.get("properties", {}).items():
                if k in v: self.check(v[k], sub, path + [k], errs)
        if isinstance(v, list) and "items" in s:
            for i, x in enumerate(v): self.check(x, s["items"], path + [i], errs)
        for sub in s.get("allOf", []):
            probe = []
            self.check(v, sub.get("if", {}), path, probe)
            if not probe and "then" in sub: self.check(v, sub["then"], path, errs)


try:
    import jsonschema
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    which = "jsonschema"
except ImportError:
    validator = MiniValidator(schema)
    which = "built-in validator"
seqs = collections.defaultdict(list)
n = 0
with open(sys.argv[2], "rb") as f:
    for i, raw in enumerate(f, 1):
        if not raw.endswith(b"\n"):
            sys.exit(f"line {i}: no newline (torn last line)")
        try:
            rec = json.loads(raw)
        except ValueError as e:
            sys.exit(f"line {i}: not JSON ({e}): {raw[:200]!r}")
        errors = sorted(validator.iter_errors(rec), key=lambda e: list(e.path))
        if errors:
            sys.exit(f"line {i}: {errors[0].message} at {list(errors[0].path)}: {raw[:300]!r}")
        seqs[rec["sandbox_id"]].append(rec["seq"])
        n += 1
for sid, s in seqs.items():
    if s != list(range(1, len(s) + 1)):
        missing = sorted(set(range(1, max(s) + 1)) - set(s))[:10]
        sys.exit(f"sandbox {sid}: seq not 1..{len(s)} (missing {missing})")
print(f"valid {n} ({which})")
