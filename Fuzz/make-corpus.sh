#!/usr/bin/env bash
# Regenerates the committed seed corpora in Fuzz/Corpus from SampleTraces: small slices
# of every text format, raw records of every event type, configurations and a baseline.
# Needs trace-cmd, pkg-config and libtracecmd-dev (Scripts/setup.sh) and a built dma-trace.
set -eu   # no pipefail: `trace-cmd report | head` ends with SIGPIPE by design
cd "$(dirname "$0")/.."
S=SampleTraces
C=Fuzz/Corpus
rm -rf "$C"
mkdir -p "$C"/{FuzzTextReader,FuzzRecordDecoder,FuzzAuditConfig,FuzzBaseline}
T=$C/FuzzTextReader
report() { trace-cmd report "$1" 2>/dev/null; }

# tracefs `trace`: header, irq-flags column, kernel-rendered arrays.
head -60 $S/k7.3-tracefs.txt > $T/tracefs-head.txt
{ head -12 $S/k7.3-tracefs.txt; grep -m 6 -E 'dma_(un)?map_sg:' $S/k7.3-tracefs.txt; grep -m 4 -E 'dma_(alloc|free|sync)' $S/k7.3-tracefs.txt; } > $T/tracefs-sg.txt
# tracefs `trace_pipe`: no header.
head -40 $S/k7.3-trace_pipe.txt > $T/trace_pipe.txt
# trace-cmd report: stack blocks (-T), [FAILED TO PARSE] arrays, iommu, swiotlb, 7.x names.
report $S/k6.12-stacks.dat | head -80 > $T/report-stacks.txt
{ echo cpus=2; report $S/k7.3-nvme-e1000e-ahci-xhci.dat | grep -m 8 'FAILED TO PARSE'; } > $T/report-failed-to-parse.txt
{ echo cpus=2; report $S/k6.12-iommu.dat | grep -m 24 -E ' (map|unmap|dma_map_page|dma_unmap_page|dma_alloc|dma_free):'; } > $T/report-iommu.txt
{ echo cpus=2; report $S/k6.12-swiotlb.dat | grep -m 24 -E ' (swiotlb_bounced|dma_map_page|dma_unmap_page):'; } > $T/report-swiotlb.txt
{ echo cpus=2; report $S/faultinject/x86-7.3-swiotlb.dat | grep -m 30 -E 'dma_sync|dma_free|dma_alloc|FI: '; } > $T/report-syncs.txt
# Lost-event lines and the tracefs overwrite header, around real lines.
{
    echo '# entries-in-buffer/entries-written: 4/90   #P:2'
    sed -n 13,16p $S/k7.3-tracefs.txt
    echo 'CPU:1 [LOST 42 EVENTS]'
    sed -n 17,18p $S/k7.3-tracefs.txt
    echo 'CPU:0 [17 EVENTS DROPPED]'
    sed -n 19,20p $S/k7.3-tracefs.txt
    echo 'CPU:0 [EVENTS DROPPED]'
    sed -n 21,22p $S/k7.3-tracefs.txt
} > $T/lost-events.txt
# tracefs stack blocks (options/stacktrace).
{
    sed -n 16p $S/k7.3-tracefs.txt
    echo '    kworker/u8:0-12      [000] .....     3.860262: <stack trace>'
    echo ' => dma_map_phys+0x1a4/0x2c0'
    echo ' => nvme_prep_rq+0x2f1/0x8a0 [nvme]'
    echo ' => nvme_queue_rq+0x7c/0x1e0 [nvme]'
    sed -n 17p $S/k7.3-tracefs.txt
} > $T/tracefs-stack.txt

# Raw records: a selector byte (the index in FuzzRecordDecoder's formatTraces) + payload.
tool=$(mktemp -d)
trap 'rm -rf "$tool"' EXIT
cc -O2 -o "$tool/extract-records" Fuzz/Tools/extract-records.c $(pkg-config --cflags --libs libtracecmd)
i=0
for f in k6.12-stacks.dat k6.12-iommu.dat k6.12-swiotlb.dat k7.3-nvme-e1000e-ahci-xhci.dat \
         faultinject/x86-7.3-swiotlb.dat faultinject/arm64-6.12-noncoherent.dat; do
    "$tool/extract-records" "$S/$f" $i $C/FuzzRecordDecoder 1
    i=$((i + 1))
done

# .dma-trace.yml: every key, and a few mistakes.
cat > $C/FuzzAuditConfig/full.yml <<'YML'
disabled_rules:
  - cacheline-sharing
severity:
  mapping-leak: error
  dma-address-reuse: note
devices:
  include: ["0000:00:03.0", "0000:00:1f.2"]
  exclude:
    - "0000:00:02.0"
suppressions:
  - rule: mapping-leak
    device: "0000:00:02.0"
    function: e1000_alloc_rx_buffers
    reason: e1000e keeps its receive ring mapped until ifdown
YML
printf 'severity:\n  mapping-leak: loud\n' > $C/FuzzAuditConfig/bad-severity.yml
printf 'suppressions:\n  - rule: double-unmap\n' > $C/FuzzAuditConfig/no-reason.yml
printf 'disabled_rules: [nope]\n' > $C/FuzzAuditConfig/unknown-rule.yml
printf 'a: &x [*x]\nb: {c: [1, 2, {d: e}]}\n' > $C/FuzzAuditConfig/anchors.yml

# A real baseline from a recording with findings.
bin=.build/debug/dma-trace
"$bin" audit --write-baseline "$C/FuzzBaseline/faultinject.json" $S/faultinject/x86-6.12-plain.dat > /dev/null || true
printf '{"version":1,"tool":"dma-trace","entries":[]}\n' > $C/FuzzBaseline/empty.json
# Real ring-buffer pages: first, middle and last sub-buffer of every CPU of two recordings,
# converted to uncompressed v6 so the pages sit in the file as the kernel wrote them.
mkdir -p $C/FuzzPageReader
tmp=$(mktemp -d)
for t in k6.12-iommu faultinject/x86-6.12-plain-stacks; do
    v6=$tmp/$(basename $t)-v6.dat
    trace-cmd convert -i $S/$t.dat -o "$v6" --file-version 6 --compression none > /dev/null 2>&1
    python3 Fuzz/Tools/extract-pages.py "$v6" $C/FuzzPageReader
done
rm -rf "$tmp"
du -sb "$C"/* | sed 's/^/corpus bytes: /'
