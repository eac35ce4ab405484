#!/usr/bin/env bash
# Instructions executed and reference-count calls of `dma-trace analyze` on one trace, counted
# by callgrind: the same figure whatever the machine's load, so a change to the hot path can
# be judged on a shared machine where wall times swing by 2x (Scripts/bench.sh still gives the
# times). Use a part of a big trace: callgrind runs ~50x slower (300 k events: ~20 s per binary).
#
# Usage: Scripts/bench-instructions.sh FILE.dat BIN [BIN...]
#   A part of the lab's big trace: trace-cmd split -i big-nvme-v6.dat -o part.dat -e 300000 -r
#   (keep part.dat.0002: the first part starts before the driver's probe has settled).
# Needs valgrind (apt-get install valgrind). Debug info is stripped from a copy of each binary
# first: valgrind 3.19 cannot read the DWARF 5 that swiftc writes.
set -euo pipefail
file=${1:?usage: Scripts/bench-instructions.sh FILE.dat BIN [BIN...]}
shift
[ $# -gt 0 ] || { echo "bench-instructions.sh: name at least one dma-trace binary" >&2; exit 2; }
command -v valgrind >/dev/null || { echo "bench-instructions.sh: needs valgrind (apt-get install valgrind)" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
calls() {  # total calls of function $2 in callgrind tree $1
    awk -v f="$2" '
        $0 ~ "\\*  \\?\\?\\?:" f " \\[" { print total + 0; exit }
        /^$/ { total = 0; next }
        match($0, /\(([0-9,]+)x\)/) { n = substr($0, RSTART + 1, RLENGTH - 3); gsub(",", "", n); total += n }
    ' "$1"
}
events=$("$1" events --count "$file" | awk '{print $1}')
printf '%s: %s events\n%-40s %16s %10s %12s %12s\n' "$file" "$events" "binary" "instructions" "per event" "retains" "releases"
for bin in "$@"; do
    strip --strip-debug -o "$work/bin" "$bin"
    valgrind --tool=callgrind --callgrind-out-file="$work/out" "$work/bin" analyze --format json --fail-on none "$file" \
        >/dev/null 2>"$work/err" || { echo "bench-instructions.sh: $bin failed under valgrind:" >&2; tail -5 "$work/err" >&2; exit 2; }
    callgrind_annotate --tree=caller "$work/out" > "$work/tree" 2>/dev/null
    ir=$(awk '/^summary:/ {print $2}' "$work/out")
    printf '%-40s %16s %10s %12s %12s\n' "$bin" "$ir" "$(( ir / events ))" "$(calls "$work/tree" swift_retain)" "$(calls "$work/tree" swift_release)"
done
