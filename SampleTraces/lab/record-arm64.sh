#!/bin/bash
# record-arm64.sh [RUN...]: the arm64 real-driver recordings, their checks and MANIFEST.md.
#
#   RUN   KERNEL-VARIANT, KERNEL 6.12 or 7, VARIANT coherent or noncoherent
#         (default: 6.12-coherent 6.12-noncoherent 7-noncoherent; LAB_ARM64_7=0 leaves the
#         7.x one out. 6.12's virtio-net maps every receive buffer through virtio_ring and
#         never syncs; 7.x's virtio-net receives into a page_pool and does: sync for device on
#         map/recycle, for cpu on the received bytes)
#   LAB_OUT=/somewhere ./record-arm64.sh     (default /work/lab-out; never inside a git work
#                                             tree); files go to $LAB_OUT/arm64/
#   ./record-arm64.sh --manifest-only [RUN...]  only rewrite MANIFEST.md from the files there
#
# Each run is one arm64-run.sh boot (Debian arm64 kernel, qemu-system-aarch64 virt,
# gic-version=3, TCG, -cpu max,pauth-impdef=on, 2 vCPUs, 2 GiB) of workloads/arm64-nvme-net.sh
# (nvme O_DIRECT dd, e1000e MTU 9000 pings, virtio-net-pci,iommu_platform=on pings) under
#   trace-cmd record -e dma -e swiotlb -e iommu -b 20000
# and is written as $LAB_OUT/arm64/arm64-A.B-VARIANT.dat (A.B = the kernel's major.minor).
# Checks per file: `trace-cmd report | head`, size below 3 MB, no lost-event lines, every
# ping answered; non-coherent runs must have dma_sync_* events of e1000e (0000:00:03.0).
# Then $LAB_OUT/arm64/MANIFEST.md (describe.sh entries, named as committed:
# SampleTraces/arm64/NAME.dat). Nothing is copied into the repository: copy
# $LAB_OUT/arm64/{*.dat,MANIFEST.md} to SampleTraces/arm64/ yourself (remake-all.sh prints
# the commands). About 25 s per run plus ~10 s of checks. Exits non-zero if a check failed.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export LAB_CACHE=${LAB_CACHE:-/work/lab-cache}
LAB_OUT=${LAB_OUT:-/work/lab-out}
OUT=$LAB_OUT/arm64
mkdir -p "$OUT"
if git -C "$OUT" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  echo "LAB_OUT=$LAB_OUT is inside a git work tree; choose a folder outside the repository" >&2
  exit 1
fi
MANIFEST_ONLY=0
if [ "${1:-}" = --manifest-only ]; then MANIFEST_ONLY=1; shift; fi
RUNS=(6.12-coherent 6.12-noncoherent)
[ "${LAB_ARM64_7:-1}" = 1 ] && RUNS+=(7-noncoherent)
[ $# -gt 0 ] && RUNS=("$@")
WORKLOAD=$HERE/workloads/arm64-nvme-net.sh
REC=(-e dma -e swiotlb -e iommu -b 20000)

FAILED=()
fail() { echo "!! CHECK FAILED: $*" >&2; FAILED+=("$*"); }
NAMES=()
for r in "${RUNS[@]}"; do
  K=${r%%-*} V=${r#*-}
  if [ $MANIFEST_ONLY = 1 ]; then
    AB=$(basename "$(readlink -f "$LAB_CACHE/kernels/$K")" | sed -n 's/^\([0-9]*\.[0-9]*\)\..*/\1/p')
    [ -f "$OUT/arm64-$AB-$V.dat" ] && NAMES+=("arm64-$AB-$V")
    continue
  fi
  case "$K" in 6.12|7) ;; *) echo "unknown kernel in $r (6.12|7)" >&2; exit 2 ;; esac
  case "$V" in coherent|noncoherent) ;; *) echo "unknown variant in $r (coherent|noncoherent)" >&2; exit 2 ;; esac
  [ -e "$LAB_CACHE/kernels/$K/.done" ] || "$HERE/fetch-kernels.sh" > /dev/null
  AB=$(basename "$(readlink -f "$LAB_CACHE/kernels/$K")" | sed -n 's/^\([0-9]*\.[0-9]*\)\..*/\1/p')
  NAME=arm64-$AB-$V
  f=$OUT/$NAME.dat
  t0=$SECONDS
  LAB_KERNEL=$K "$HERE/arm64-run.sh" "$V" "$WORKLOAD" "$f" "${REC[@]}" || fail "$NAME: arm64-run.sh exited non-zero"
  echo ">> $NAME: $((SECONDS - t0)) s"
  [ -f "$f" ] || { fail "$NAME: no trace"; continue; }
  NAMES+=("$NAME")
  echo ">> trace-cmd report $f | head"
  trace-cmd report "$f" 2>/dev/null | head || true
  trace-cmd report "$f" > "$OUT/.report.txt" 2>/dev/null
  echo ">> records: $(wc -l < "$OUT/.report.txt") lines"
  sz=$(stat -c %s "$f")
  [ "$sz" -lt 3000000 ] || fail "$NAME.dat is $sz bytes (limit 3 MB)"
  lost=$(grep -c -E '^CPU:[0-9]+ \[' "$OUT/.report.txt" || true)
  [ "$lost" -eq 0 ] || fail "$NAME.dat has $lost lost-event lines"
  syncs=$(grep -c -E 'dma_sync_single_for_(cpu|device): +0000:00:03\.0' "$OUT/.report.txt" || true)
  echo ">> $NAME: e1000e dma_sync_* events: $syncs; all dma_sync_* events: $(grep -c ' dma_sync_' "$OUT/.report.txt" || true)"
  [ "$V" = coherent ] || [ "$syncs" -gt 0 ] || fail "$NAME.dat: no dma_sync_* events of e1000e"
  # every ping of the workload answered (6 ping commands, each "N packets received, 0% loss")
  n=$(grep -c ' 0% packet loss' "$OUT/logs/$NAME.workload.log" || true)
  [ "$n" -eq 6 ] || fail "$NAME: $n of 6 ping runs without loss (see logs/$NAME.workload.log)"
  rm -f "$OUT/.report.txt"
done

# ---- MANIFEST.md for every recording of this run
M=$OUT/MANIFEST.md
{
  echo "# arm64 real-driver recordings"
  echo
  echo "Made by \`SampleTraces/lab/record-arm64.sh\` (one boot per file with \`lab/arm64-run.sh\`, see"
  echo "SampleTraces/lab/README.md). Unmodified Debian arm64 kernels on \`qemu-system-aarch64 -machine"
  echo "virt,gic-version=3 -cpu max,pauth-impdef=on\` under TCG (multi-threaded), 2 vCPUs, 2 GiB"
  echo "(RAM 0x40000000..0xc0000000), QEMU $(qemu-system-aarch64 --version | sed -n '1s/.*version //p'), trace-cmd 3.1.6 (bookworm arm64) inside the guest."
  echo "Timestamps are guest seconds since boot. Every phase starts with a trace_marker line"
  echo "\`LAB: phase NAME\`."
  echo
  echo "Devices (virt's pcie.0; the drivers are loaded after tracing started, so their probe-time"
  echo "allocations are in the trace):"
  echo
  echo "| PCI | QEMU device | driver | DMA |"
  echo "|---|---|---|---|"
  echo "| 0000:00:01.0 | virtio-blk-pci (output disk) | virtio_blk | none traced: without iommu_platform virtio bypasses the DMA API |"
  echo "| 0000:00:02.0 | nvme, 1 GiB sparse raw | nvme | O_DIRECT dd: 8x4 KiB write + read, 2x128 KiB write + read |"
  echo "| 0000:00:03.0 | e1000e, \`-netdev user,restrict=on\` | e1000e | MTU 9000 (packet-split receive: 3 pages per descriptor); 8x56, 3x1400, 3x8000-byte pings of 10.0.2.2 |"
  echo "| 0000:00:04.0 | virtio-net-pci,iommu_platform=on,disable-legacy=on, its own \`-netdev user,restrict=on\` | virtio_net | MTU 1500; 5x56, 3x1400, 3x4000-byte pings of 10.0.2.2 |"
  echo
  echo "Teardown at the end of every run: both interfaces down, then \`rmmod virtio_net e1000e nvme\`"
  echo "(phases \`teardown-links-down\`, \`teardown-rmmod\`), so the rings, receive buffers and pools the"
  echo "drivers release are in the trace too."
  echo
  echo "Device tree: \`coherent\` boots with QEMU's generated tree (\`pcie@10000000\` has"
  echo "\`dma-coherent\`). \`noncoherent\` dumps the tree with the run's exact options"
  echo "(\`-machine virt,gic-version=3,dumpdtb=FILE\` plus the same -cpu/-smp/-m/devices), deletes"
  echo "\`dma-coherent\` from \`pcie@10000000\` (nothing else changes), recompiles with \`dtc -I dts -O"
  echo "dtb\` (the raw dump is padded to 1 MiB and hangs the boot) and boots with \`-dtb\`."
  echo "Both networks are QEMU user-mode (slirp) with restrict=on: the only peer is the slirp gateway"
  echo "10.0.2.2, nothing leaves QEMU. Both NICs are in 10.0.2.0/24 (e1000e .15, virtio-net .16);"
  echo "every ping is bound to its interface (\`ping -I IF\`). \`net.ipv4.ip_no_pmtu_disc=1\` clears DF,"
  echo "so slirp fragments its replies above 1500 bytes instead of dropping them."
  echo
  cat <<'EOT'
What the drivers do in these recordings (seen in all three; the same every run):

- nvme: map/unmap only, never a sync (also on the non-coherent PCIe: the cache maintenance
  is inside dma_map/dma_unmap, which the tracepoints do not show). At rmmod, `nvme_remove()`
  calls `nvme_free_host_mem()` although QEMU's nvme has no host memory buffer:
  `dma_free_coherent(dev, 0, NULL, 0)`, a legal no-op. Since the "trace more error paths"
  change, `dma_free_attrs()` emits `dma_free` BEFORE its `if (!cpu_addr) return;`, so the
  trace has `dma_free ... dma_addr=0 size=0 virt_addr=(nil)` (the first nvme free at
  teardown). It is not a free of unknown memory.
- e1000e with MTU 9000 uses packet split: every receive descriptor maps 3 whole pages
  FROM_DEVICE (`dma_map_page`, 4096) and a 128-byte header buffer (the skb head,
  `dma_map_single`), in that order; 255 of the 256 descriptors are filled at `ip link up`.
  A received frame whose data fits the copybreak (256 bytes; e.g. the 56-byte ping replies) is
  copied out of page 0 between `dma_sync_single_for_cpu` and `dma_sync_single_for_device`
  (FROM_DEVICE, 4096, same address) and the page stays mapped; larger frames consume
  (unmap) the pages they used. These sync pairs are only in the non-coherent recordings:
  on the coherent PCIe the kernel skips them before the tracepoint.
- e1000e teardown leaks two page mappings (a real driver bug, in 6.12 and 7.3 alike):
  the descriptor cleaned last is never refilled (the ring keeps one slot empty), so after
  a non-copybreak frame it holds page 0 = NULL and pages 1 and 2 still mapped;
  `e1000_clean_rx_ring()` stops at the first NULL page (`if (!ps_page->page) break;`) and
  never unmaps or frees pages 1 and 2. Here it is descriptor 30 (the 31st frame was the
  last one): its pages 1 and 2, mapped at `ip link up`, are still mapped at the end.
- virtio-net (iommu_platform=on, so virtio_ring uses the DMA API): the control queue maps
  a 2-byte TO_DEVICE header and a 1-byte FROM_DEVICE status next to each other (same
  cache line); on the non-coherent PCIe the 1-byte buffer is bounced through swiotlb
  (DMA_BOUNCE_UNALIGNED_KMALLOC: `swiotlb_bounced` size=1), on the coherent one not.
  6.12 maps every receive buffer (1536 bytes, several per page, cache-line aligned)
  through virtio_ring with `dma_map_page` and unmaps it on receive: no sync at all.
  7.3 receives into a page_pool: pages mapped FROM_DEVICE with
  `WEAK_ORDERING|SKIP_CPU_SYNC`, `dma_sync_single_for_device` of the whole page on
  map/recycle, `dma_sync_single_for_cpu` of just the received bytes at an offset inside
  the page (partial syncs, e.g. 110 bytes at +0x600), unmapped with SKIP_CPU_SYNC when the
  pool is destroyed at rmmod (buffers that never received data were never synced for the
  CPU).

What dma-trace reported on these recordings when they were made (`analyze`, warning and up):
`mapping-leak` warning x2 on 0000:00:03.0 (the e1000e teardown leak above: a true finding)
and `free-unknown` error on 0000:00:02.0 (the traced `dma_free_coherent(NULL)` no-op of
nvme: a false positive), in all three files; nothing else at warning or error. The notes of
the 7.3 file: `cacheline-sharing` x9 (virtio-net's control header/status pair, bounced) and
`missing-sync` x118 (page_pool pages unmapped at rmmod that never received data).

EOT
  echo "| file | kernel | PCIe | bytes | records | dma_sync_* (e1000e / all) | swiotlb_bounced | lost |"
  echo "|---|---|---|---|---|---|---|---|"
} > "$M.tmp"
: > "$M.body"
for NAME in "${NAMES[@]}"; do
  f=$OUT/$NAME.dat
  "$HERE/describe.sh" "$f" > "$OUT/.entry.md"
  rep=$(trace-cmd report "$f" 2>/dev/null)
  recs=$(sed -n 's/^- records: \([0-9]*\) events.*/\1/p' "$OUT/.entry.md")
  lost=$(grep -c -E '^CPU:[0-9]+ \[' <<< "$rep" || true)
  es=$(grep -c -E 'dma_sync_single_for_(cpu|device): +0000:00:03\.0' <<< "$rep" || true)
  as=$(grep -c ' dma_sync_' <<< "$rep" || true)
  bo=$(grep -c ' swiotlb_bounced: ' <<< "$rep" || true)
  kver=$(sed -n 's/^kernel=//p' "$OUT/logs/$NAME.info.txt" | head -n1)
  echo "| \`$NAME.dat\` | $kver | ${NAME##*-} | $(stat -c %s "$f") | $recs | $es / $as | $bo | $lost |" >> "$M.tmp"
  {
    sed -e "s#^- file: \`[^\`]*\`#- file: \`SampleTraces/arm64/$NAME.dat\`#" "$OUT/.entry.md"
    echo "- device tree: $(sed -n 's/^device_tree=//p' "$OUT/logs/$NAME.info.txt")"
    echo "- phases (trace_marker, guest time):"
    echo '```'
    grep -o '[0-9.]*: print: *tracing_mark_write: LAB: phase .*' <<< "$rep" | sed 's/: print: *tracing_mark_write: LAB: phase / /'
    echo '```'
    echo "- ping summaries (workload log):"
    echo '```'
    grep -E 'data bytes|packet loss' "$OUT/logs/$NAME.workload.log" || true
    echo '```'
  } >> "$M.body"
done
rm -f "$OUT/.entry.md"
cat "$M.tmp" "$M.body" > "$M"; rm -f "$M.tmp" "$M.body"
echo ">> manifest: $M"
ls -l "$OUT"
if [ ${#FAILED[@]} -gt 0 ]; then
  printf '!! failed: %s\n' "${FAILED[@]}" >&2
  exit 1
fi
