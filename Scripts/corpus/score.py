#!/usr/bin/env python3
"""Runs the built dma-trace on every corpus case and prints the table by family:
legal clean X/Y (nothing at warning or error), illegal caught X/Y (the expected rule, at
warning or error, at the expected event). Usage: Scripts/corpus/score.py [path/to/dma-trace] [-v]"""
import json
import os
import subprocess
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
binary = next((a for a in sys.argv[1:] if not a.startswith("-")), os.path.join(ROOT, ".build", "debug", "dma-trace"))
verbose = "-v" in sys.argv
manifest = json.load(open(os.path.join(ROOT, "Tests", "Corpus", "MANIFEST.json")))["cases"]
table = {}
failures = []
for case in manifest:
    path = os.path.join(ROOT, "Tests", "Corpus", case["file"])
    out = subprocess.run([binary, "analyze", "--format", "json", "--fail-on", "none", path], capture_output=True, text=True)
    if out.returncode != 0:
        ok, why = False, "exit %d: %s" % (out.returncode, out.stderr.strip()[:200])
    else:
        findings = json.loads(out.stdout)["findings"]
        serious = [f for f in findings if f["severity"] in ("warning", "error") and f["rule"] not in case.get("allow", [])]
        if case["legal"]:
            ok = not serious
            why = "; ".join("%s %s at %.6f: %s" % (f["severity"], f["rule"], f["timestamp"], f["message"][:160]) for f in serious)
        else:
            missing = [e for e in case["expect"]
                       if not any(f["rule"] == e["rule"] and abs(f["timestamp"] - float(e["at"])) < 5e-7 for f in serious)]
            ok = not missing
            why = "expected %s; got %s" % (", ".join("%s at %s" % (e["rule"], e["at"]) for e in missing),
                                          "; ".join("%s %s at %.6f" % (f["severity"], f["rule"], f["timestamp"]) for f in findings) or "nothing")
    row = table.setdefault(case["family"], [0, 0, 0, 0])
    base = 0 if case["legal"] else 2
    row[base + 1] += 1
    row[base] += ok
    if not ok:
        failures.append("%s %s: %s" % ("LEGAL" if case["legal"] else "ILLEGAL", case["id"], why))
print("| family | legal clean | illegal caught |")
print("| --- | --- | --- |")
tot = [0, 0, 0, 0]
for fam, r in table.items():
    print("| %s | %d/%d | %d/%d |" % (fam, r[0], r[1], r[2], r[3]))
    tot = [a + b for a, b in zip(tot, r)]
print("| all | %d/%d | %d/%d |" % tuple(tot))
if verbose:
    print()
    print("\n".join(failures))
