#!/usr/bin/env python3
"""compare-live.py OUT RUN...: dma-trace's live results against trace-cmd's recording of the
same guest run (record-live.sh). Exit 1 on any disagreement.

  RUN-watch.ndjson (watch)   its finding lines and its summary vs `dma-trace analyze` of RUN.dat
  RUN-record.dat   (record)  `dma-trace analyze` of it vs of RUN.dat; `trace-cmd report` reads it

Findings are compared by (rule, device, severity, marker window) and timestamp. The two
buffers stamp the same event separately (the tracepoint writes one buffer, then the other),
so timestamps agree only to within a small delta; the largest delta is printed and must stay
under TOLERANCE_MS (default 5; TOLERANCE_STACKS_MS, default 25, for the stack runs). Per-device counts (maps, unmaps, syncs, allocs, frees,
bounces, failed maps) must be equal. For real-driver runs (-io) nothing may be at warning or
error.
"""
import json, os, subprocess, sys

DMA = os.environ.get("DMA_TRACE", os.path.join(os.path.dirname(__file__), "../../../.build/debug/dma-trace"))
TOL = float(os.environ.get("TOLERANCE_MS", "5")) / 1000.0
COUNTS = ["maps", "sgMaps", "unmaps", "syncsForCPU", "syncsForDevice", "allocs", "frees", "bounces", "failedMaps"]

def analyze(path):
    r = subprocess.run([DMA, "analyze", "--format", "json", "--fail-on", "none", path], capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"analyze {path}: rc={r.returncode} {r.stderr}")
    return json.loads(r.stdout)

def key(f):
    return (f["rule"], f["device"], f["severity"], f.get("marker"))

STACKS = []  # (run, got stack, trace-cmd's stack) of every pair, for the stack runs

# With stacks (-T, --stack) each buffer's event is followed by its own stack unwind before
# the other buffer's event is stamped: under TCG the two stamps were up to 9.4 ms apart.
TOL_STACKS = float(os.environ.get("TOLERANCE_STACKS_MS", "25")) / 1000.0

def compare(name, got, want, problems, stacks=False):
    """got/want: lists of finding objects. Pairs them in order per key; returns the largest |dt|.
    stacks: the paired findings' stack frames and call sites must be equal too."""
    worst = 0.0
    by = {}
    for f in want:
        by.setdefault(key(f), []).append(f)
    unmatched = []
    for f in sorted(got, key=lambda f: f["timestamp"]):
        lst = by.get(key(f))
        if not lst:
            unmatched.append(f); continue
        best = min(lst, key=lambda w: abs(w["timestamp"] - f["timestamp"]))
        lst.remove(best)
        dt = abs(best["timestamp"] - f["timestamp"])
        worst = max(worst, dt)
        if dt > (TOL_STACKS if stacks else TOL):
            problems.append(f"{name}: {key(f)} at {f['timestamp']:.6f} vs {best['timestamp']:.6f} (dt {dt*1000:.3f} ms)")
        if stacks:
            STACKS.append((name, f.get("stack"), best.get("stack")))
            a, b = f.get("stack") or [], best.get("stack") or []
            if stacks == "unload":
                # dmafi was unloaded before trace-cmd read kallsyms: only its raw frames may
                # differ, and watch must have named them.
                if len(a) != len(b) or any(x != y and not (y.startswith("0x") and not x.startswith("0x")) for x, y in zip(a, b)):
                    problems.append(f"{name}: {key(f)} at {f['timestamp']:.6f}: stack {a} vs trace-cmd's {b}")
            elif a != b or f.get("callSite") != best.get("callSite"):
                problems.append(f"{name}: {key(f)} at {f['timestamp']:.6f}: stack {a} vs trace-cmd's {b}")
    for f in unmatched:
        problems.append(f"{name}: extra finding {key(f)} at {f['timestamp']:.6f}: {f['message']}")
    for k, lst in by.items():
        for f in lst:
            problems.append(f"{name}: missing finding {k} at {f['timestamp']:.6f}: {f['message']}")
    return worst

def devices(doc):
    return {d["profile"]["name"]: {c: d["profile"][c] for c in COUNTS} for d in doc["devices"]}

def main():
    out, runs = sys.argv[1], sys.argv[2:]
    problems = []
    for run in runs:
        base = os.path.join(out, run)
        ref = analyze(base + ".dat")
        sev = {s: sum(1 for f in ref["findings"] if f["severity"] == s) for s in ("error", "warning", "note")}
        if os.path.exists(base + "-watch.ndjson"):
            lines = [json.loads(l) for l in open(base + "-watch.ndjson") if l.strip()]
            summary = lines[-1].get("summary")
            if summary is None:
                problems.append(f"{run}: the last NDJSON line is no summary"); continue
            streamed = lines[:-1]
            final = summary["analysis"]["findings"]
            stacks = "unload" if "-watchstackunload-" in run else "-watchstack-" in run
            w1 = compare(f"{run} watch lines", streamed, ref["findings"], problems, stacks)
            w2 = compare(f"{run} watch summary", final, ref["findings"], problems, stacks)
            if stacks:
                mine = [s for n, s, _ in STACKS if n.startswith(run + " ")]
                frames = sum(len(s or []) for s in mine)
                raw = sum(1 for s in mine for fr in (s or []) if fr.startswith("0x"))
                # dmafi's functions, as trace-cmd's own file names them ("ADDR NAME [dmafi]")
                funcs = subprocess.run(["trace-cmd", "report", "-f", "-i", base + ".dat"], capture_output=True, text=True).stdout
                module = {l.split()[1] for l in funcs.splitlines() if l.endswith("[dmafi]") and len(l.split()) == 3}
                dmafi = sum(1 for s in mine if any(fr.split("+")[0] in module for fr in (s or [])))
                theirs = [t for n, _, t in STACKS if n.startswith(run + " ")]
                only = sum(1 for s, t in zip(mine, theirs) for x, y in zip(s or [], t or []) if x != y)
                print(f"{run}: stacks of {len(mine)} paired findings {'equal to' if not only else 'against'} trace-cmd's: {frames} frames, "
                      f"{raw} raw addresses, {dmafi} with dmafi frames, {only} frames named by watch only")
            got_dev, want_dev = devices(summary["analysis"]), devices(ref)
            if got_dev != want_dev:
                for d in sorted(set(got_dev) | set(want_dev)):
                    if got_dev.get(d) != want_dev.get(d):
                        problems.append(f"{run} watch device {d}: {got_dev.get(d)} vs trace-cmd {want_dev.get(d)}")
            print(f"{run}: watch {len(streamed)} finding lines, summary {len(final)} findings, trace-cmd's file {len(ref['findings'])} {sev}; "
                  f"events {summary['analysis']['dmaEvents']} vs {ref['dmaEvents']}; largest dt {max(w1, w2)*1000:.3f} ms; devices {len(got_dev)} "
                  f"{'equal' if got_dev == want_dev else 'DIFFER'}; lost {summary['analysis']['lostGaps'] and len(summary['analysis']['lostGaps'])} vs {len(ref['lostGaps'])}")
            if run.endswith("-io"):
                bad = [f for f in final if f["severity"] in ("warning", "error")]
                for f in bad:
                    problems.append(f"{run}: real-driver run has a {f['severity']}: {f['rule']} {f['device']} {f['message']}")
        if os.path.exists(base + "-record.dat"):
            mine = analyze(base + "-record.dat")
            w = compare(f"{run} record", mine["findings"], ref["findings"], problems)
            got_dev, want_dev = devices(mine), devices(ref)
            if got_dev != want_dev:
                problems.append(f"{run} record devices differ: {got_dev} vs {want_dev}")
            r = subprocess.run(["trace-cmd", "report", "-i", base + "-record.dat"], capture_output=True, text=True)
            t = subprocess.run(["trace-cmd", "report", "-i", base + ".dat"], capture_output=True, text=True)
            fails = r.stdout.count("FAILED TO PARSE")
            if r.returncode != 0:
                problems.append(f"{run}: trace-cmd report of record's file failed: {r.stderr[-300:]}")
            if fails != t.stdout.count("FAILED TO PARSE"):
                problems.append(f"{run}: trace-cmd report of record's file has {fails} FAILED TO PARSE lines, of trace-cmd's {t.stdout.count('FAILED TO PARSE')}")
            print(f"{run}: record {len(mine['findings'])} findings vs trace-cmd's file {len(ref['findings'])} {sev}; events {mine['dmaEvents']} vs {ref['dmaEvents']}; "
                  f"largest dt {w*1000:.3f} ms; devices {'equal' if got_dev == want_dev else 'DIFFER'}; trace-cmd report: rc {r.returncode}, "
                  f"{len(r.stdout.splitlines())} lines vs {len(t.stdout.splitlines())} for trace-cmd's own file")
    for p in problems:
        print("!!", p)
    sys.exit(1 if problems else 0)

main()
