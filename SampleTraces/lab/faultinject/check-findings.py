#!/usr/bin/env python3
"""check-findings.py: compare dma-trace's findings with scenarios.json, per marker window.

    check-findings.py [--dma-trace BIN] [--scenarios FILE] [--json OUT.json] \
        VARIANT=FILE.dat [VARIANT=FILE.dat ...]

For every recording: runs `BIN analyze --format json --fail-on none FILE`, reads the
"FI: begin NAME" / "FI: end NAME" trace_marker lines with the host's
`trace-cmd report -t` (an independent reader, nanosecond timestamps), and puts every
finding whose timestamp lies inside a window into that scenario. Leak findings carry the
map/alloc time, so they land in the window that made the leak. A finding on the edu
device (0000:00:06.0 unless --device) outside every window is reported as "outside";
findings on the other devices are counted, not judged (their drivers are not ours).

Prints a Markdown table scenario x variant (found rule:severity, "-" for none; a cell
is marked !! when it differs from the expectation) and the list of disagreements.
Exit status 0 always (it is a report, not a gate), 2 on bad usage.
"""
import argparse
import collections
import json
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def windows_of(dat):
    """[(name, begin_ts, end_ts)] from the trace's FI markers (trace-cmd report -t)."""
    out = subprocess.run(["trace-cmd", "report", "-t", dat], capture_output=True, text=True).stdout
    begins, wins = {}, []
    pat = re.compile(r"\s(\d+\.\d+):\s+print:.*?FI: (begin|end) (\S+)")
    for line in out.splitlines():
        m = pat.search(line)
        if not m:
            continue
        ts, kind, name = float(m.group(1)), m.group(2), m.group(3)
        if kind == "begin":
            begins[name] = ts
        elif name in begins:
            wins.append((name, begins.pop(name), ts))
    return wins


def expected_for(sc, variant):
    for o in sc.get("overrides", []):
        vs = o["variant"] if isinstance(o["variant"], list) else [o["variant"]]
        if variant in vs:
            return o["expect"], o.get("why", ""), o.get("tolerate", [])
    return sc["expect"], "", []


def key(f):
    return f"{f['rule']}:{f['severity']}"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dma-trace", default="/tmp/dma-trace-fi")
    ap.add_argument("--scenarios", default=os.path.join(HERE, "scenarios.json"))
    ap.add_argument("--device", default="0000:00:06.0")
    ap.add_argument("--json", help="write the per-variant results here")
    ap.add_argument("recordings", nargs="+", metavar="VARIANT=FILE.dat")
    a = ap.parse_args()
    spec = json.load(open(a.scenarios))
    names = [s["name"] for s in spec["scenarios"]]
    byname = {s["name"]: s for s in spec["scenarios"]}

    results = {}
    for arg in a.recordings:
        if "=" not in arg:
            ap.error(f"expected VARIANT=FILE.dat, got {arg}")
        variant, dat = arg.split("=", 1)
        r = subprocess.run([a.dma_trace, "analyze", "--format", "json", "--fail-on", "none", dat],
                           capture_output=True, text=True)
        if r.returncode != 0:
            print(f"!! {a.dma_trace} analyze {dat}: rc={r.returncode}\n{r.stderr}", file=sys.stderr)
            continue
        doc = json.loads(r.stdout)
        wins = windows_of(dat)
        per = collections.defaultdict(list)
        outside, others = [], collections.Counter()
        for f in doc["findings"]:
            ts = f.get("timestamp")
            hit = None
            if ts is not None:
                for name, b, e in wins:
                    if b <= ts <= e:
                        hit = name
                        break
            if hit:
                per[hit].append(f)
            elif f.get("device") == a.device:
                outside.append(f)
            else:
                others[f"{f.get('device')} {key(f)}"] += 1
        ran = [w[0] for w in wins]
        vres = {"file": dat, "ran": ran, "scenarios": {}, "outside": [], "other_devices": dict(others),
                "devices": {d["name"] if "name" in d else d.get("device", "?"): {
                    k: d.get(k) for k in ("path", "coherence", "cannotCheck")} for d in doc.get("devices", [])}}
        for n in names:
            exp, why, tolerated = expected_for(byname[n], variant)
            found = per.get(n, [])
            tk = {f"{e['rule']}:{e['severity']}" for e in tolerated}
            # Findings a documented kernel tracing gap produces are allowed, not required.
            fk = sorted(k for k in (key(f) for f in found) if k not in tk)
            ek = sorted(k for k in (f"{e['rule']}:{e['severity']}" for e in exp) if k not in tk)
            vres["scenarios"][n] = {
                "ran": n in ran, "expected": ek, "found": fk, "why_expected": why,
                "agree": fk == ek,
                "findings": [{k: f.get(k) for k in ("rule", "severity", "device", "timestamp", "message")}
                             for f in found],
            }
        vres["outside"] = [{k: f.get(k) for k in ("rule", "severity", "device", "timestamp", "message")}
                           for f in outside]
        results[variant] = vres

    variants = list(results)
    print("| scenario | " + " | ".join(variants) + " |")
    print("|---|" + "---|" * len(variants))
    for n in names:
        cells = []
        for v in variants:
            s = results[v]["scenarios"][n]
            c = ", ".join(s["found"]) if s["found"] else "-"
            if not s["ran"]:
                c = "(not run)"
            elif not s["agree"]:
                c = f"!! {c}"
            cells.append(c)
        print(f"| {n} | " + " | ".join(cells) + " |")
    print()
    for v in variants:
        for f in results[v]["outside"]:
            print(f"outside any window [{v}]: {key(f)} at {f['timestamp']}: {f['message'][:160]}")
        if results[v]["other_devices"]:
            print(f"other devices [{v}]: " + ", ".join(f"{k} x{c}" for k, c in sorted(results[v]["other_devices"].items())))
    print()
    print("Disagreements:")
    nd = 0
    for v in variants:
        for n in names:
            s = results[v]["scenarios"][n]
            if s["ran"] and not s["agree"]:
                nd += 1
                print(f"- {n} @ {v}: expected {s['expected'] or '[]'}, found {s['found'] or '[]'}")
                for f in s["findings"]:
                    print(f"    {f['rule']}:{f['severity']} at {f['timestamp']}: {f['message'][:220]}")
    if nd == 0:
        print("(none)")
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(results, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
