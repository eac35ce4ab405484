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
du -cb "$DEST"/* | tail -1
runs=$(cd "$OUT" && ls *-watch.ndjson *-record.dat 2>/dev/null | sed 's/-watch.ndjson$//; s/-record.dat$//' | sort -u)
# shellcheck disable=SC2086
"$HERE/compare-live.py" "$OUT" $runs
