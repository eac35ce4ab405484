#!/usr/bin/env bash
# Pathological but valid inputs at full size, generated on the fly into a temporary folder
# (never committed) and run through a release `dma-trace analyze`, one at a time, each file
# removed after its run. Prints wall time and peak RSS (/usr/bin/time -v) per case.
#   Scripts/stress.sh [CASE...]
# Cases: live-mappings devices long-line sg-list backwards cpus (default: all).
# STRESS_SCALE=0.1 shrinks every case (a quick look); STRESS_DIR sets the scratch folder.
# Exit status: 1 if any case did not finish with exit 0 or 1 (findings) and no trap.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
cases=("$@")
[ ${#cases[@]} -eq 0 ] && cases=(live-mappings devices long-line sg-list backwards cpus)
scale=${STRESS_SCALE:-1}
dir=$(mktemp -d "${STRESS_DIR:-${TMPDIR:-/tmp}}/dma-trace-stress.XXXXXX")
trap 'rm -rf "$dir"' EXIT

echo "== swift build -c release --static-swift-stdlib"
swift build -c release --static-swift-stdlib > "$dir/build.log" 2>&1 || { tail -20 "$dir/build.log"; exit 2; }
bin=$(swift build -c release --static-swift-stdlib --show-bin-path)/dma-trace
gen=(python3 "$root/Scripts/pathological.py")
n() { python3 -c "print(max(1, int($1 * $scale)))"; }

status=0
printf '%-14s %-28s %10s %10s %12s %6s  %s\n' case size input wall "peak RSS" exit notes
for c in "${cases[@]}"; do
    f=$dir/$c.trace
    extra=()
    case "$c" in
        live-mappings) size=$(n 10000000); what="$size live mappings" ;;
        devices) size=$(n 100000); what="$size devices" ;;
        long-line) size=$(n 2147483648); what="one line of $size bytes" ;;
        sg-list) size=$(n 100000); what="sg list of $size entries" ;;
        backwards) size=$(n 5000000); what="$size pairs, time falling" ;;
        cpus)
            size=256
            pages=$(n 64)
            what="256 CPUs x $pages pages"
            trace-cmd convert -i SampleTraces/k6.12-nvme-e1000e-ahci-xhci.dat -o "$dir/base-v6.dat" \
                --file-version 6 --compression none > /dev/null 2>&1 || { echo "trace-cmd convert failed"; status=1; continue; }
            extra=(--base "$dir/base-v6.dat" --pages "$pages")
            ;;
        *) echo "unknown case '$c'" >&2; exit 2 ;;
    esac
    gstart=$(date +%s)
    if ! "${gen[@]}" "$c" "$size" "$f" "${extra[@]}"; then echo "$c: generator failed"; status=1; continue; fi
    input=$(du -h "$f" | cut -f1)
    /usr/bin/time -v "$bin" analyze -v --format json "$f" > "$dir/$c.json" 2> "$dir/$c.err"
    rc=$?
    wall=$(grep 'Elapsed (wall clock)' "$dir/$c.err" | awk '{print $NF}')
    rss=$(grep 'Maximum resident set size' "$dir/$c.err" | awk '{printf "%.0f MiB", $NF / 1024}')
    notes=$(python3 - "$dir/$c.json" <<'EOF'
import json, sys
try:
    d = json.load(open(sys.argv[1]))
except Exception as e:
    print("no JSON document: %s" % e); sys.exit()
d = d[0] if isinstance(d, list) else d
stats = d.get("stats", d)
findings = d.get("findings", [])
sev = {}
for f in findings:
    sev[f["severity"]] = sev.get(f["severity"], 0) + 1
print("events %s, devices %d, unreadable lines %s, findings %s" % (
    stats.get("dmaEvents", "?"), len(d.get("devices", [])), stats.get("unreadableLines", "?"),
    ", ".join("%s %d" % kv for kv in sorted(sev.items())) or "none"))
EOF
)
    printf '%-14s %-28s %10s %10s %12s %6s  %s\n' "$c" "$what" "$input" "$wall" "$rss" "$rc" "$notes"
    if [ "$rc" -gt 1 ]; then
        status=1
        grep -v '^\s' "$dir/$c.err" | head -5 | sed 's/^/    /'
    fi
    rm -f "$f" "$dir/base-v6.dat"
done
exit $status
