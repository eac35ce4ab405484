#!/bin/bash
# manifest.sh FI_OUT FI_REPO: write FI_REPO/MANIFEST.md for the recordings FI_REPO/*.dat.
#
# Per recording: the lab's describe.sh entry (kernel, QEMU and kernel command lines, record
# command, timings, counts per event type and per device, lost events), made from the
# run's logs in FI_OUT/logs, plus the scenarios that ran with the run write's exit status
# (FI_OUT/VARIANT-fi-results.txt) and dmafi's kernel log per scenario
# (FI_OUT/VARIANT-dmesg.txt, filtered to the module's lines and the kernel's warnings).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LAB=$(cd "$HERE/.." && pwd)
[ $# -eq 2 ] || { sed -n '2,8p' "$0"; exit 2; }
FI_OUT=$1 FI_REPO=$2
M=$FI_REPO/MANIFEST.md
ORDER=(x86-6.12-plain x86-6.12-plain-stacks x86-6.12-iommu x86-6.12-swiotlb x86-7.3-plain x86-7.3-plain-stacks x86-7.3-swiotlb arm64-6.12-noncoherent)
TMP=$(mktemp -d); trap 'rm -rf "$TMP"' EXIT

{
  echo "# Fault-injection recordings (dmafi on QEMU's edu device)"
  echo
  echo "Made by \`SampleTraces/lab/faultinject/record-faultinject.sh\` (see SampleTraces/lab/README.md,"
  echo "section \"Fault injection\"). Each file is one boot of an unmodified Debian kernel under QEMU"
  echo "TCG (q35, 2 vCPUs, 2 GiB) with the lab's devices (nvme, ahci, xhci + usb-storage, e1000e:"
  echo "drivers loaded, no I/O workload, e1000e down) plus \`-device edu,dma_mask=0xffffffff\`"
  echo "(0000:00:06.0), bound to the out-of-tree test driver \`dmafi.ko\`, which runs every"
  echo "scenario of \`faultinject/scenarios.json\` between trace_marker lines \`FI: begin NAME\` and"
  echo "\`FI: end NAME\`, then is unloaded (rmmod frees its probe-time coherent ring). The"
  echo "expected dma-trace findings per scenario and variant are in scenarios.json;"
  echo "\`faultinject/check-findings.py\` compares them. Timestamps are guest seconds since boot."
  echo
  echo "| file | kernel | kernel command line | bytes | edu (0000:00:06.0) dma/swiotlb events | all records |"
  echo "|---|---|---|---|---|---|"
} > "$TMP/head.md"
: > "$TMP/body.md"

for v in "${ORDER[@]}"; do
  f=$FI_REPO/$v.dat
  [ -f "$f" ] || continue
  src=$FI_OUT/$v.dat
  "$LAB/describe.sh" "$src" > "$TMP/entry.md" 2> "$TMP/describe.err" || { cat "$TMP/describe.err" >&2; exit 1; }
  kver=$(sed -n 's/^kernel=//p' "$FI_OUT/logs/$v.info.txt" | head -n1)
  cmdl=$(sed -n 's/^cmdline=//p' "$FI_OUT/logs/$v.info.txt" | head -n1)
  recs=$(sed -n 's/^- records: \([0-9]*\) events.*/\1/p' "$TMP/entry.md")
  edu=$(trace-cmd report "$f" 2>/dev/null | grep -c '0000:00:06\.0' || true)
  echo "| \`$v.dat\` | $kver | \`$cmdl\` | $(stat -c %s "$f") | $edu | $recs |" >> "$TMP/head.md"
  {
    # describe.sh's entry, with the committed file's name in place of the work path
    # (the guest lists PCI drivers after rmmod, so the edu device shows no driver)
    sed -e "s#^- file: \`[^\`]*\`#- file: \`SampleTraces/faultinject/$v.dat\` (variant $v)#" \
        -e "s#0000:00:06.0 (?)#0000:00:06.0 (dmafi, unloaded before the device list was taken)#" "$TMP/entry.md"
    echo "- scenarios run (name, exit status of the guest's \`echo NAME > run\`: 0 ok, 1 the write failed;"
    echo "  the errno is in the kernel log below: no-struct-page-pool returns -EOPNOTSUPP (-95) where it is skipped):"
    echo '```'
    cat "$FI_OUT/$v-fi-results.txt"
    echo '```'
    echo
    echo "<details><summary>dmafi kernel log, per scenario ($v)</summary>"
    echo
    echo '```'
    # the module's own lines, and the kernel's reactions to the misuse (WARN headers,
    # dma-direct/swiotlb/vmalloc complaints); register dumps and call traces left out
    grep -E 'dmafi|WARNING:|overflow|Trying to v|Buffer overflow|swiotlb|DMAR: .*(fault|Fault)' "$FI_OUT/$v-dmesg.txt" \
      | grep -v -E 'Modules linked in|^\[ *[0-9.]+\] +(\? )?[a-z_]+\+0x' || true
    echo '```'
    echo
    echo "</details>"
  } >> "$TMP/body.md"
done
cat "$TMP/head.md" "$TMP/body.md" > "$M"
echo ">> $M"
