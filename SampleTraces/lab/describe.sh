#!/bin/bash
# describe.sh FILE [MANIFEST.md]
#
# Print (and, with a second argument, append to MANIFEST.md) a manifest entry for one
# recording made by record.sh: kernel and its CONFIG_DMA_API_DEBUG line, QEMU and kernel
# command lines, record command, workload, guest timings, record counts per event type and
# per device, kernel-stack records, and lost events.
#
#   FILE  a trace.dat (read with the host's `trace-cmd report`) or a tracefs text file
#         (`cat trace` / `cat trace_pipe` output, parsed directly)
# The run's details come from $(dirname FILE)/logs/NAME.info.txt, written by record.sh
# (NAME = FILE's base name without extension, or without its "-tracefs"/"-trace_pipe" part
# for the text files).
#
# WHY count from `trace-cmd report` text instead of a library: this is the reference the
# Swift reader must agree with, and it needs nothing beyond the host's trace-cmd 3.1.6.
# Takes a few seconds for small files, about a minute per million events.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LAB_CACHE=${LAB_CACHE:-/work/lab-cache}
[ $# -ge 1 ] || { sed -n '2,14p' "$0"; exit 2; }
FILE=$1 MANIFEST=${2:-}
DIR=$(cd "$(dirname "$FILE")" && pwd)
BASE=$(basename "$FILE")
NAME=${BASE%.*}
case "$BASE" in
  *.dat) KIND=dat ;;
  *) KIND=text ;;
esac
INFO=$DIR/logs/$NAME.info.txt
if [ ! -f "$INFO" ]; then
  for suffix in -tracefs -trace_pipe; do
    [ -f "$DIR/logs/${NAME%"$suffix"}.info.txt" ] && INFO=$DIR/logs/${NAME%"$suffix"}.info.txt
  done
fi
[ -f "$INFO" ] || { echo "no info file for $FILE in $DIR/logs" >&2; exit 1; }
field() { sed -n "s/^$1=//p" "$INFO" | head -n1; }

KVER=$(field kernel)
CONFIG=$(find "$LAB_CACHE/kernels/$KVER/" "$LAB_CACHE/kernels-arm64/$KVER/" -maxdepth 1 -name config -print -quit 2>/dev/null || true)
DMADBG=$(grep -E '^(# )?CONFIG_DMA_API_DEBUG[ =]' "$CONFIG" 2>/dev/null || echo "(config not found)")
RECARGS=$(field record_args)
WORKLOAD=$(field workload)
RUNDIR=$(field qemu_cmdline | grep -o '/[^ ]*/runs/[^/ ]*' | head -n1 || true)
QEMU=$(field qemu_cmdline | sed -e "s#${RUNDIR:-@@none@@}#\$RUN#g" -e "s#$LAB_CACHE#\$LAB_CACHE#g" -e 's/\\,/,/g' -e 's/\\ / /g')

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
if [ $KIND = dat ]; then
  trace-cmd report "$FILE" > "$TMP/report.txt" 2> "$TMP/report.err"
  trace-cmd report --stat "$FILE" > "$TMP/stat.txt" 2>&1
else
  cp "$FILE" "$TMP/report.txt"
fi

# One awk pass over the text: event records, stack records and frames, lost-event lines,
# first/last timestamp, per-type and per-(type, device) counts.
awk -v out="$TMP" '
  /^=> / { frames++; next }
  /^CPU:[0-9]+ \[/ { lost_lines++; print > (out "/lost.txt");
                     if (match($0, /\[[0-9]+ (EVENTS DROPPED|LOST)/)) { s = substr($0, RSTART + 1); split(s, a, " "); lost_sum += a[1] }
                     else unknown++;
                     next }
  /^#/ { next }
  {
    if (!match($0, /\] [^ ]* *[0-9]+\.[0-9]+: +[A-Za-z_0-9]+:/)) next
    m = substr($0, RSTART, RLENGTH)
    rest = substr($0, RSTART + RLENGTH)
    n = split(m, p, " ")
    ev = p[n]; sub(/:$/, "", ev)
    ts = p[n - 1]; sub(/:$/, "", ts)
    if (first == "") first = ts
    last = ts
    if (ev == "kernel_stack") { stacks++; next }
    records++
    type[ev]++
    dev = ""
    if (ev ~ /^dma_/) {
      if (match(rest, /device=[^ ]+/)) dev = substr(rest, RSTART + 7, RLENGTH - 7)
      else { split(rest, r, " "); dev = r[1] }
    } else if (ev == "swiotlb_bounced") {
      if (match(rest, /dev_name: [^ ]+/)) dev = substr(rest, RSTART + 10, RLENGTH - 10)
    }
    if (dev != "") perdev[ev " " dev]++
    if (rest ~ /FAILED TO PARSE/) failed[ev]++
  }
  END {
    printf "records=%d\nstacks=%d\nframes=%d\nfirst=%s\nlast=%s\nlost_lines=%d\nlost_sum=%d\nlost_unknown=%d\n", \
      records, stacks, frames, first, last, lost_lines, lost_sum, unknown > (out "/sum.txt")
    for (t in type) printf "%10d %s\n", type[t], t > (out "/types.txt")
    for (d in perdev) { split(d, q, " "); printf "%10d %s %s\n", perdev[d], q[1], q[2] > (out "/devs.txt") }
    for (f in failed) printf "%s: %d; ", f, failed[f] > (out "/failed.txt")
  }' "$TMP/report.txt"
touch "$TMP/types.txt" "$TMP/devs.txt" "$TMP/lost.txt" "$TMP/failed.txt"
s() { sed -n "s/^$1=//p" "$TMP/sum.txt"; }

# Driver names per PCI address, from the guest's sysfs listing in the info file.
declare -A DRV=()
while read -r bdf _ _ drv _; do
  DRV[$bdf]=${drv#driver=}
done < <(sed -n '/^== pci devices/,/^==/p' "$INFO" | grep '^0000:' || true)

{
  echo
  echo "## $BASE"
  echo
  echo "- file: \`$DIR/$BASE\`, $(stat -c %s "$FILE") bytes"
  echo "- kernel: \`$KVER\`; its config: \`$DMADBG\`"
  echo "- kernel cmdline: \`$(field cmdline)\`"
  echo "- QEMU: \`$QEMU\` (\$RUN = a fresh run folder under \$LAB_CACHE/runs, sparse raw disks made per run)"
  if [ "$RECARGS" = "--no-record" ]; then
    echo "- record command: none (tracefs written directly by the workload, see workloads/$WORKLOAD)"
  else
    echo "- record command (in guest): \`trace-cmd record $RECARGS -o /out/trace.dat\`"
  fi
  # (faultinject/ keeps its workload next to its module)
  WLDIR=workloads; [ -f "$HERE/$WLDIR/$WORKLOAD" ] || WLDIR=faultinject
  echo "- workload: \`$WLDIR/$WORKLOAD\`: $(awk '!/^#/{exit} {sub(/^# ?/, ""); printf "%s ", $0}' "$HERE/$WLDIR/$WORKLOAD")"
  if grep -q '_rounds=' "$INFO"; then echo "- loop rounds: $(grep '_rounds=' "$INFO" | tr '\n' ' ')"; fi
  echo "- guest timing (s since boot): trace_start=$(field trace_start) workload_start=$(field workload_start) workload_end=$(field workload_end) record_end=$(field record_end); host: qemu rc=$(field host_qemu_rc) wall=$(field host_wall_s)s"
  echo "- records: $(s records) events (plus $(s stacks) ftrace:kernel_stack records with $(s frames) frames) from $(s first) to $(s last)"
  if [ $KIND = dat ]; then
    echo "- \`trace-cmd report | wc -l\`: $(wc -l < "$TMP/report.txt")"
  else
    echo "- lines: $(wc -l < "$FILE") ($(grep -c '^#' "$FILE" || true) header lines starting with '#')"
  fi
  echo "- lost events: $(s lost_lines) lost-event lines, stated counts add up to $(s lost_sum), $(s lost_unknown) lines without a count"
  if [ -s "$TMP/lost.txt" ]; then
    echo '  first lost-event lines, verbatim:'
    echo '```'; head -n 5 "$TMP/lost.txt"; echo '```'
  fi
  if [ $KIND = dat ]; then
    echo "- kernel buffer statistics (\`trace-cmd report --stat\`), per CPU: $(awk '/^CPU: /{c=$2} /^entries:/{e=$2} /^overrun:/{o=$2} /^dropped events:/{d=$3} /^read events:/{printf "cpu%s entries=%s overrun=%s dropped=%s read=%s; ", c, e, o, d, $3}' "$TMP/stat.txt")"
    echo "  (trace-cmd samples these before its final flush: non-zero \"entries\" were still in the kernel buffer at stop and are normally in the file; \"overrun\" counts events overwritten, i.e. lost)"
  fi
  [ -s "$TMP/failed.txt" ] && echo "- host libtraceevent could not render (\`[FAILED TO PARSE]\`): $(cat "$TMP/failed.txt")"
  echo "- events per type:"
  echo '```'; sort -rn "$TMP/types.txt"; echo '```'
  echo "- dma/swiotlb events per device (driver):"
  echo '```'
  sort -rn "$TMP/devs.txt" | while read -r n ev dev; do
    printf '%10d %s %s (%s)\n' "$n" "$ev" "$dev" "${DRV[$dev]:-?}"
  done
  echo '```'
} > "$TMP/entry.md"

cat "$TMP/entry.md"
if [ -n "$MANIFEST" ]; then
  if [ ! -f "$MANIFEST" ]; then
    {
      echo "# Lab recordings (made with SampleTraces/lab/)"
      echo
      echo "Made by SampleTraces/lab/record-all.sh on this host: QEMU TCG q35, 2 vCPUs, unmodified"
      echo "Debian kernels, trace-cmd $(trace-cmd --version 2>/dev/null | sed -n 's/^trace-cmd version \([^ ]*\).*/\1/p') inside the guest. Timestamps are guest seconds since boot."
      echo "Device set and PCI addresses as in /work/shared/traces/MANIFEST.md."
    } > "$MANIFEST"
  fi
  # Replace an older entry for the same file, keep the others.
  awk -v h="## $BASE" '
    $0 == h { skip = 1; next }
    skip && /^## / { skip = 0 }
    !skip' "$MANIFEST" | sed -e :a -e '/^\n*$/{$d;N;ba' -e '}' > "$TMP/manifest"
  cat "$TMP/manifest" "$TMP/entry.md" > "$MANIFEST"
fi
