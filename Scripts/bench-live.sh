#!/bin/bash
# bench-live.sh V6.dat [DMA_TRACE]: the live path's throughput without a kernel. The raw pages
# of an uncompressed trace.dat v6 are served by a fake tracefs directory (per_cpu/cpuN/
# trace_pipe_raw), and `dma-trace watch --tracefs DIR -- true` reads them with libtracefs,
# decodes them with the page decoder, merges, replays and judges them. Prints the events, the
# wall time and events/s. DMA_TRACE default: the release build (.build/release/dma-trace).
# Needs about the file's size in $TMPDIR (the pages are written once, then hard-linked into the
# instance, so the timed part is the capture alone).
set -euo pipefail
IN=$1
BIN=${2:-$(cd "$(dirname "$0")/.." && pwd)/.build/release/dma-trace}
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
python3 - "$IN" "$W" <<'PY'
import os, sys
src, w = sys.argv[1], sys.argv[2]
b = open(src, "rb").read()
at = 0
def take(n):
    global at
    v = b[at:at + n]; at += n; return v
def u(n): return int.from_bytes(take(n), "little")
def cstr():
    global at
    e = b.index(b"\0", at); v = b[at:e]; at = e + 1; return v
def put(rel, data):
    p = os.path.join(w, "tracefs", rel); os.makedirs(os.path.dirname(p), exist_ok=True); open(p, "wb").write(data)
assert take(10) == b"\x17\x08Dtracing" and cstr() == b"6"
take(2); page = u(4)
cstr(); put("events/header_page", take(u(8)))
cstr(); put("events/header_event", take(u(8)))
def name(f): return [l[6:] for l in f.decode().splitlines() if l.startswith("name: ")][0]
for _ in range(u(4)):
    f = take(u(8)); put(f"events/ftrace/{name(f)}/format", f)
systems = []
for _ in range(u(4)):
    s = cstr().decode(); systems.append(s); put(f"events/{s}/enable", b"0\n")
    for _ in range(u(4)):
        f = take(u(8)); put(f"events/{s}/{name(f)}/format", f)
put("kallsyms", take(u(4))); put("printk_formats", take(u(4))); put("saved_cmdlines", take(u(8)))
cpus = u(4); label = cstr()
if label == b"options  ":
    while u(2): take(u(4))
    cstr()
t = os.path.join(w, "template")
for f in ["tracing_on", "buffer_size_kb", "trace_marker", "trace_clock", "options/stacktrace"] + [f"events/{s}/enable" for s in systems]:
    p = os.path.join(t, f); os.makedirs(os.path.dirname(p), exist_ok=True); open(p, "w").write("0\n")
os.makedirs(os.path.join(w, "tracefs/instances"), exist_ok=True)
for c in range(cpus):
    off, size = u(8), u(8)
    d = os.path.join(t, f"per_cpu/cpu{c}"); os.makedirs(d, exist_ok=True)
    open(os.path.join(d, "trace_pipe_raw"), "wb").write(b[off:off + size])
    open(os.path.join(d, "stats"), "w").write("entries: 0\noverrun: 0\ndropped events: 0\nnow ts: 0.000000\n")
PY
T0=$(date +%s.%N)
# BENCH_LIVE_PERF=FILE profiles the run (perf record -g of our own process, no kernel tracing).
${BENCH_LIVE_PERF:+perf record -q -g -o "$BENCH_LIVE_PERF" --} /usr/bin/time -f %M -o "$W/rss" sh -c "cp -rl '$W/template' '$W/tracefs/instances/dma-trace-'\$\$ && exec '$BIN' watch --format json --fail-on none --tracefs '$W/tracefs' -- true" > "$W/out.ndjson" 2> "$W/err.txt" || true
T1=$(date +%s.%N)
EV=$(tail -1 "$W/out.ndjson" | python3 -c 'import json,sys; print(json.load(sys.stdin)["summary"]["analysis"]["dmaEvents"])')
echo "$IN: $EV events in $(echo "$T1 - $T0" | bc) s wall: $(echo "$EV / ($T1 - $T0)" | bc) events/s (watch --tracefs, whole process); peak RSS $(( $(tail -1 "$W/rss") / 1024 )) MiB"
