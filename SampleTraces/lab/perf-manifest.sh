#!/bin/bash
# perf-manifest.sh OUT REPO: SampleTraces/perf/MANIFEST.md on stdout, for the runs of
# record-perf.sh whose files are in REPO (logs and the trace.dat of each run in OUT).
# Counts come from the text files themselves (awk), not from dma-trace.
set -euo pipefail
OUT=$1 REPO=$2

cat <<'EOF'
# perf recordings (perf record and trace-cmd record of the same boot)

Made by `SampleTraces/lab/record-perf.sh` (see SampleTraces/lab/README.md, "perf recordings").
Each run is one boot of an unmodified Debian kernel under QEMU TCG (q35, 2 vCPUs) in which
`perf record` and `trace-cmd record` trace the same workload at the same time. They share no
buffer (perf_event ring buffers vs ftrace's), and every tracepoint hit goes to both, so the
two files of a run hold the same events. perf is bookworm's linux-perf 6.1 (in the guest and
on the host).

    perf record -e 'dma:*' -e 'swiotlb:*' -e 'iommu:*' -e ftrace:print -e printk:console -a -k mono [-g] -N -o perf.data
    trace-cmd record -e dma -e swiotlb -e iommu -b 20000 -C mono -o trace.dat

Files per run: `RUN.perf.data` (what perf wrote), `RUN.perf.txt` (`perf script` with its
default fields, run in the guest right after recording, where perf finds the modules' symbols;
for the `-g` run with `--max-stack 12` to keep the file small), `RUN.trace-cmd.txt`
(`trace-cmd report` of the same run's trace.dat; the trace.dat itself is 1.5 MB, mostly
kallsyms, and stays out). perf 6.1 in the guest symbolized the in-tree modules through
kallsyms (their frames say `[kernel.kallsyms]`) but not the out-of-tree dmafi.ko, loaded from
/lab (its frames are `[unknown]`).

What was seen:
- `perf record` of a tracepoint samples every hit (period 1): per run, the dma/swiotlb/iommu
  counts per device and per event are identical in the two files up to perf's last event
  (tables below; guest/init stops perf first, so trace-cmd's file alone has what came in the
  seconds after: in io-6.12-plain two e1000e maps and two unmaps). These six runs lost nothing.
- `ftrace:print` is accepted by perf (it is in `perf evlist`) but records nothing: a
  `trace_marker` write goes straight into ftrace's ring buffer and never through a perf
  hook. The markers are also written to `/dev/kmsg`, and `printk:console` records every
  kernel log line, those included.
- Clocks. perf's default clock (`local_clock`, per CPU) put an unmap on one vCPU 0.2 ms
  before its map on the other in a first recording without `-k mono` (false double-unmap
  findings), and ftrace's default `local` clock, in another run, stamped an AHCI map on vCPU 1
  and its unmap on vCPU 0 with the same microsecond (trace-cmd report put the unmap first: a
  false unmap-unknown error). Both tools record on CLOCK_MONOTONIC here (`-k mono`, `-C mono`).
  Each stamps an event itself (ftrace when it reserves the record, perf when it builds its
  sample), so one event's times differ between the two files by microseconds, up to a few
  tenths of a millisecond under TCG.
EOF

for pd in "$REPO"/*.perf.data; do
  r=$(basename "$pd" .perf.data)
  info=$OUT/logs/$r.info.txt
  echo
  echo "## $r"
  echo
  if [ -f "$info" ]; then
    echo "- kernel: \`$(sed -n 's/^kernel=//p' "$info")\`, command line \`$(sed -n 's/^cmdline=//p' "$info")\`"
    echo "- workload: \`$(sed -n 's/^workload=//p' "$info")\`; guest times (s since boot): $(grep -E '^(trace_start|perf_start|workload_start|workload_end|perf_end|record_end)=' "$info" | tr '\n' ' ')"
    echo "- perf record: \`perf record $(cat "$OUT/logs/$r.perf-args" 2>/dev/null || echo '(see record-perf.sh)')\`; its log: $(grep 'Captured and wrote' "$OUT/$r-perf.log" 2>/dev/null | tr -d '[]' | sed 's/^ *//')"
    echo "- perf script (in the guest): \`perf script $(cat "$OUT/logs/$r.perf-script-args" 2>/dev/null)\`"
  fi
  echo "- sizes: $(for f in perf.data perf.txt trace-cmd.txt; do printf '%s %s bytes; ' "$r.$f" "$(stat -c %s "$REPO/$r.$f")"; done)"
  echo "- ftrace:print samples in perf: $(grep -c ' ftrace:print:' "$REPO/$r.perf.txt" || true); printk:console lines: $(grep -c ' printk:console:' "$REPO/$r.perf.txt" || true); trace-cmd print (trace_marker) lines: $(grep -c ' print: ' "$REPO/$r.trace-cmd.txt" || true)"
  echo "- callchain frame lines in perf text: $(grep -c -P '^\t' "$REPO/$r.perf.txt" || true)"
  last=$(grep -o -E ' [0-9]+\.[0-9]{6,9}: ' "$REPO/$r.perf.txt" | tail -n1 | tr -d ' :')
  after=$(awk -v t="$last" '{for(i=1;i<=NF;i++) if ($i ~ /^[0-9]+\.[0-9]+:$/) {ts=substr($i,1,length($i)-1); if (ts > t + 0.001 && $(i+1) ~ /^(dma_|swiotlb_|map:|unmap:)/) n++; break}} END{print n+0}' "$REPO/$r.trace-cmd.txt")
  echo "- perf's last event at $last s; trace-cmd events after it (perf is stopped first): $after"
  echo
  echo "| event | device | perf | trace-cmd |"
  echo "|---|---|---|---|"
  join -a1 -a2 -e 0 -o 0,1.2,2.2 \
    <(awk '{for(i=1;i<=NF;i++) if ($i ~ /^(dma|swiotlb|iommu):[a-z_]+:$/) {e=$i; sub(/^[a-z]+:/,"",e); sub(/:$/,"",e); d=$(i+1); if (d=="[FAILED") {for(j=i;j<=NF;j++) if ($j ~ /^device=/) {d=substr($j,8)}} if (d=="dev_name:") d=$(i+2); print e"|"d; break}}' "$REPO/$r.perf.txt" | sort | uniq -c | awk '{print $2, $1}' | sort) \
    <(awk '{for(i=1;i<=NF;i++) if ($i ~ /^(dma_[a-z_]+|swiotlb_bounced|map|unmap|io_page_fault):$/) {e=$i; sub(/:$/,"",e); d=$(i+1); if (d=="[FAILED") {for(j=i;j<=NF;j++) if ($j ~ /^device=/) {d=substr($j,8)}} if (d=="dev_name:") d=$(i+2); print e"|"d; break}}' "$REPO/$r.trace-cmd.txt" | sort | uniq -c | awk '{print $2, $1}' | sort) \
    | awk '{split($1,a,"|"); printf "| %s | %s | %s | %s |\n", a[1], a[2], $2, $3}'
done

for head in "$REPO"/*.head.txt; do
  [ -f "$head" ] || continue
  r=$(basename "$head" .head.txt)
  echo
  echo "## $r (first 400 lines only)"
  echo
  echo "A recording that loses events: \`workloads/io-heavy.sh\` with two CPU hogs, perf reniced to 19"
  echo "(\`READERS=perf\`), \`perf record -e 'dma:*' -e 'swiotlb:*' -e 'iommu:*' -a -k mono -N -m 1\` (one data"
  echo "page per CPU), no trace-cmd. \`$r.head.txt\` is the first 400 lines of \`perf script --show-lost-events\`"
  echo "(perf 6.1 on the host); the whole perf.data (1.3 MB) stays in the lab's output folder."
  echo
  echo "- in the first 400 lines: $(grep -c PERF_RECORD_LOST "$head") PERF_RECORD_LOST records, $(awk '/PERF_RECORD_LOST/{s+=$NF} END{print s+0}' "$head") events lost"
  if [ -f "$OUT/$r-perf.data" ]; then
    echo "- in the whole recording: $(perf script --show-lost-events -i "$OUT/$r-perf.data" 2>/dev/null | grep -c PERF_RECORD_LOST) PERF_RECORD_LOST records, $(perf script --show-lost-events -i "$OUT/$r-perf.data" 2>/dev/null | awk '/PERF_RECORD_LOST/{s+=$NF} END{print s+0}') events lost"
    echo "- perf record said: $(grep -E 'lost|Captured' "$OUT/$r-perf.log" | tr -d '[]' | sed 's/^ *//' | tr '\n' ' ')"
  fi
done
