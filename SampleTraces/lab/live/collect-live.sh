#!/bin/bash
# collect-live.sh [LIVE_OUT]: the committed copies in SampleTraces/live/ from record-live.sh's
# outputs (default /work/lab-out/live), within the 2 MB budget:
#   RUN-watch.ndjson              watch's output, as written in the guest
#   RUN-watch-trace-cmd.dat       trace-cmd's recording of that same run, converted to v6 without
#                                 compression (trace-cmd convert) and without kallsyms (slim-v6.py)
#   RUN-record.dat                record's trace.dat without kallsyms (slim-v6.py), pages as written
#   RUN-record-trace-cmd.dat      trace-cmd's recording of the record run, like the watch one
#   faults-6.12.log               the bad-use and fault cases (workload-live.sh faults)
# RUN is x86-KERNEL-BODY. Then compare-live.py over the originals. Recordings without stacks
# only: kallsyms is what a stack needs.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
DEST=$(cd "$HERE/../.." && pwd)/live
OUT=${1:-/work/lab-out/live}
mkdir -p "$DEST"
v6() { # IN.dat OUT.dat
  trace-cmd convert --file-version 6 --compression none -i "$1" -o "$2.tmp" > /dev/null
  "$HERE/slim-v6.py" "$2.tmp" "$2"; rm -f "$2.tmp"
}
for k in 6.12 7; do
  name=x86-$([ $k = 7 ] && echo 7.3 || echo $k)
  if [ -f "$OUT/$k-watch-fi-watch.ndjson" ]; then
    cp "$OUT/$k-watch-fi-watch.ndjson" "$DEST/$name-fi-watch.ndjson"
    v6 "$OUT/$k-watch-fi.dat" "$DEST/$name-fi-watch-trace-cmd.dat"
  fi
  if [ -f "$OUT/$k-record-fi-record.dat" ]; then
    "$HERE/slim-v6.py" "$OUT/$k-record-fi-record.dat" "$DEST/$name-fi-record.dat"
    v6 "$OUT/$k-record-fi.dat" "$DEST/$name-fi-record-trace-cmd.dat"
  fi
done
if [ -f "$OUT/6.12-watch-io-watch.ndjson" ]; then
  cp "$OUT/6.12-watch-io-watch.ndjson" "$DEST/x86-6.12-io-watch.ndjson"
  v6 "$OUT/6.12-watch-io.dat" "$DEST/x86-6.12-io-watch-trace-cmd.dat"
fi
[ -f "$OUT/6.12-faults-fi-faults.log" ] && cp "$OUT/6.12-faults-fi-faults.log" "$DEST/faults-6.12.log"
# The second session's runs (LIVE_OUT of those: record-live.sh 6.12-watchstack-fi 7-watchstack-fi
# 6.1-pre612-io-swiotlb 6.12-watchstackunload-fi):
#   RUN-fi-stack-watch.ndjson, RUN-fi-stack-watch-trace-cmd.dat  watch --stack; trace-cmd -T,
#        its kallsyms cut to the functions the stacks name (slim-v6.py NAMES); RUN-fi-stack-unload-*
#        the same with dmafi unloaded at the end (6.12 only)
#   nonroot-KERNEL.log                                            the not-root cases
#   x86-6.1-io-partial-watch.ndjson, ...-trace-cmd.dat, pre612-6.1.log   6.1: no dma events
DMA=${DMA_TRACE:-$HERE/../../../.build/debug/dma-trace}
for run in 6.12-watchstack 7-watchstack 6.12-watchstackunload; do
  k=${run%%-*}
  name=x86-$([ $k = 7 ] && echo 7.3 || echo $k)
  base=$name-fi-stack; [ "${run#*-}" = watchstackunload ] && base=$name-fi-stack-unload
  f=$OUT/$run-fi
  [ -f "$f-watch.ndjson" ] || continue
  cp "$f-watch.ndjson" "$DEST/$base-watch.ndjson"
  trace-cmd convert --file-version 6 --compression none -i "$f.dat" -o "$f-v6.tmp" > /dev/null
  "$DMA" events --json "$f-v6.tmp" | python3 -c '
import json, sys
names = set()
for line in sys.stdin:
    for frame in json.loads(line).get("stack", []):
        names.add(frame.split("+")[0])
print("\n".join(sorted(names)))' > "$f-frames.txt"
  "$HERE/slim-v6.py" "$f-v6.tmp" "$DEST/$base-watch-trace-cmd.dat" "$f-frames.txt"; rm -f "$f-v6.tmp"
  [ "${run#*-}" = watchstack ] && [ -f "$f-nonroot.log" ] && cp "$f-nonroot.log" "$DEST/nonroot-${name#x86-}.log"
done
f=$OUT/6.1-pre612-io-swiotlb
if [ -f "$f-watch.ndjson" ]; then
  cp "$f-watch.ndjson" "$DEST/x86-6.1-io-partial-watch.ndjson"
  v6 "$f.dat" "$DEST/x86-6.1-io-partial-watch-trace-cmd.dat"
  cp "$f-pre612.log" "$DEST/pre612-6.1.log"
  cp "$f-nonroot.log" "$DEST/nonroot-6.1.log"
fi
du -cb "$DEST"/* | tail -1
runs=$(cd "$OUT" && { ls *-watch.ndjson *-record.dat 2>/dev/null || true; } | sed 's/-watch.ndjson$//; s/-record.dat$//' | sort -u)
# shellcheck disable=SC2086
"$HERE/compare-live.py" "$OUT" $runs
