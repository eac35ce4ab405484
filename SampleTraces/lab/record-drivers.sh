#!/bin/bash
# record-drivers.sh [--manifest-only] [RUN...]: recordings of real drivers that the other
# recordings do not have, their checks and MANIFEST.md, into $LAB_OUT/drivers/ (default
# /work/lab-out/drivers; never inside a git work tree). Nothing is copied into the
# repository: copy $LAB_OUT/drivers/{*.dat,MANIFEST.md} to SampleTraces/drivers/ yourself
# (remake-all.sh prints the commands).
#
#   RUN   x86-KERNEL-VARIANT    record.sh, KERNEL 6.12 or 7, VARIANT plain, iommu or swiotlb
#         arm64-KERNEL-VARIANT  arm64-run.sh, VARIANT coherent or noncoherent
#         default: x86-6.12-plain x86-6.12-iommu x86-7-plain x86-7-iommu x86-7-swiotlb
#                  arm64-6.12-noncoherent arm64-7-noncoherent
#   --manifest-only  only rewrite MANIFEST.md from the files already there
#
# Every run boots one guest with only these devices (LAB_STD_DEVICES=0; the lab's output
# disk stays) and runs workloads/drivers.sh under
#   trace-cmd record -e dma -e swiotlb -e iommu -b 20000    (LAB_NO_KALLSYMS=1)
#   00:05.0 e1000 (e1000)            own -netdev user,restrict=on (slirp gateway 10.0.2.2)
#   00:06.0 rtl8139 (8139cp)         own -netdev user,restrict=on
#   00:07.0 megasas (megaraid_sas)   + scsi-hd, 64 MiB sparse raw
#   00:08.0 lsi53c895a (sym53c8xx)   + scsi-hd, 64 MiB (not in the iommu runs, see LSI below)
#   00:09.0 usb-ehci (ehci-pci)      + usb-storage, 64 MiB
#   00:0a.0 sdhci-pci (sdhci-pci)    + sd-card, 64 MiB
#   00:0b.0 intel-hda (snd_hda_intel) + hda-duplex on `-audiodev none`
#   00:0c.0 virtio-blk-pci,iommu_platform=on,disable-legacy=on (virtio_blk), 64 MiB
#   vivid.0 (a platform device, no PCI) the kernel's virtual camera, two instances (one
#           struct device) on videobuf2-dma-contig, driven by tools/v4l2-capture.c (built static here with gcc,
#           or aarch64-linux-gnu-gcc for arm64; without that compiler the arm64 runs skip
#           the vivid phases): capture into coherent and non-coherent buffers, then instance
#           0's buffers exported as dma-bufs and filled by instance 1
# x86 guests get 6 GiB (q35: 2 GiB below 4 GiB, 4 GiB above), so drivers with a 32-bit DMA
# mask (e1000 on plain PCI, EHCI, sdhci) bounce through swiotlb even without swiotlb=force.
# The trace has no kallsyms (LAB_NO_KALLSYMS=1: an empty /proc/kallsyms for trace-cmd): it
# would be ~1.3 MB of a ~35 KB file, and no stacks are recorded.
# Checks per file: `trace-cmd report | head`, size below 400 kB, no lost-event lines, every
# device found by the workload, every ping answered, every vivid capture complete.
# About 1 to 3 minutes per run under TCG. Exits non-zero if a check failed.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export LAB_CACHE=${LAB_CACHE:-/work/lab-cache}
LAB_OUT=${LAB_OUT:-/work/lab-out}
OUT=$LAB_OUT/drivers
mkdir -p "$OUT"
if git -C "$OUT" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  echo "LAB_OUT=$LAB_OUT is inside a git work tree; choose a folder outside the repository" >&2
  exit 1
fi
MANIFEST_ONLY=0
if [ "${1:-}" = --manifest-only ]; then MANIFEST_ONLY=1; shift; fi
RUNS=(x86-6.12-plain x86-6.12-iommu x86-7-plain x86-7-iommu x86-7-swiotlb arm64-6.12-noncoherent arm64-7-noncoherent)
[ $# -gt 0 ] && RUNS=("$@")
WORKLOAD=$HERE/workloads/drivers.sh
REC=(-e dma -e swiotlb -e iommu -b 20000)
DISKS="mega=64M sym=64M ehci=64M sd=64M vblk=64M"
# shellcheck disable=SC2054  # the commas belong to QEMU option values
DEVS=(
  -netdev user,id=n1,restrict=on -device e1000,netdev=n1,addr=05.0
  -netdev user,id=n2,restrict=on -device rtl8139,netdev=n2,addr=06.0
  -device megasas,id=mega,addr=07.0
  -drive file=%RUN%/mega.img,if=none,id=megad,format=raw -device scsi-hd,drive=megad,bus=mega.0
  -device usb-ehci,id=ehci,addr=09.0
  -drive file=%RUN%/ehci.img,if=none,id=ehcid,format=raw -device usb-storage,bus=ehci.0,drive=ehcid
  -device sdhci-pci,addr=0a.0 -drive file=%RUN%/sd.img,if=none,id=sdd,format=raw -device sd-card,drive=sdd
  -audiodev none,id=ad0 -device intel-hda,id=hda,addr=0b.0 -device hda-duplex,bus=hda.0,audiodev=ad0
  -drive file=%RUN%/vblk.img,if=none,id=vblkd,format=raw
  -device virtio-blk-pci,drive=vblkd,iommu_platform=on,disable-legacy=on,addr=0c.0)
# Not under intel-iommu: QEMU 7.2's lsi53c895a fetches the SCRIPTS that sym53c8xx puts in the
# chip's on-chip RAM with pci_dma_read() of that RAM's BAR address, which the IOMMU does not
# map (DMAR "PTE Read access is not set" at the BAR, SCSI resets): an emulation limit (a real
# chip reads its own RAM internally), not driver behaviour.
# shellcheck disable=SC2054
LSI=(-device lsi53c895a,id=lsi,addr=08.0
  -drive file=%RUN%/sym.img,if=none,id=symd,format=raw -device scsi-hd,drive=symd,bus=lsi.0)

# The capture tool, per architecture (static: the guest has no libc but trace-cmd's).
TOOLS=$LAB_CACHE/drivers-tools
mkdir -p "$TOOLS"
build_capture() {  # build_capture ARCH -> path, or nothing if no compiler
  local cc=gcc
  [ "$1" = arm64 ] && cc=aarch64-linux-gnu-gcc
  command -v "$cc" >/dev/null || { echo "!! no $cc: the $1 runs skip vivid" >&2; return 0; }
  mkdir -p "$TOOLS/$1"
  "$cc" -static -O2 -Wall -Wextra -o "$TOOLS/$1/v4l2-capture" "$HERE/tools/v4l2-capture.c"
  echo "$TOOLS/$1/v4l2-capture"
}

FAILED=()
fail() { echo "!! CHECK FAILED: $*" >&2; FAILED+=("$*"); }
NAMES=()
ab() { basename "$(readlink -f "$LAB_CACHE/kernels/$1")" | sed -n 's/^\([0-9]*\.[0-9]*\)\..*/\1/p'; }
for r in "${RUNS[@]}"; do
  IFS=- read -r A K V <<< "$r"
  case "$A-$V" in x86-plain|x86-iommu|x86-swiotlb|arm64-coherent|arm64-noncoherent) ;;
    *) echo "unknown run $r (x86-KERNEL-plain|iommu|swiotlb, arm64-KERNEL-coherent|noncoherent)" >&2; exit 2 ;; esac
  case "$K" in 6.12|7) ;; *) echo "unknown kernel in $r (6.12|7)" >&2; exit 2 ;; esac
  [ -e "$LAB_CACHE/kernels/$K/.done" ] || "$HERE/fetch-kernels.sh" > /dev/null
  NAME=$A-$(ab "$K")-$V
  f=$OUT/$NAME.dat
  if [ $MANIFEST_ONLY = 1 ]; then [ -f "$f" ] && NAMES+=("$NAME"); continue; fi
  cap=$(build_capture "$A")
  RUNDEVS=("${DEVS[@]}")
  [ "$V" = iommu ] || RUNDEVS+=("${LSI[@]}")
  t0=$SECONDS
  if [ "$A" = x86 ]; then
    LAB_STD_DEVICES=0 LAB_NO_KALLSYMS=1 LAB_MEM=6G LAB_DISKS="$DISKS" LAB_QEMU_EXTRA="${RUNDEVS[*]}" \
      LAB_EXTRA_FILES="$cap" "$HERE/record.sh" "$K" "$V" "$WORKLOAD" "$f" "${REC[@]}" \
      || fail "$NAME: record.sh exited non-zero"
  else
    LAB_STD_DEVICES=0 LAB_NO_KALLSYMS=1 LAB_DISKS="$DISKS" LAB_QEMU_EXTRA="${RUNDEVS[*]}" \
      LAB_EXTRA_FILES="$cap" LAB_KERNEL=$K "$HERE/arm64-run.sh" "$V" "$WORKLOAD" "$f" "${REC[@]}" \
      || fail "$NAME: arm64-run.sh exited non-zero"
  fi
  echo ">> $NAME: $((SECONDS - t0)) s"
  [ -f "$f" ] || { fail "$NAME: no trace"; continue; }
  NAMES+=("$NAME")
  echo ">> trace-cmd report $f | head"
  trace-cmd report "$f" 2>/dev/null | head || true
  rep=$(trace-cmd report "$f" 2>/dev/null)
  sz=$(stat -c %s "$f")
  [ "$sz" -lt 400000 ] || fail "$NAME.dat is $sz bytes (limit 400 kB)"
  lost=$(grep -c -E '^CPU:[0-9]+ \[' <<< "$rep" || true)
  [ "$lost" -eq 0 ] || fail "$NAME.dat has $lost lost-event lines"
  devs=$(sed -n 's/^devices=//p' "$OUT/logs/$NAME.info.txt")
  for d in $devs; do
    case "$d" in
      video:|video2:) [ -z "$cap" ] || fail "$NAME: no vivid capture node ${d%:}" ;;
      sym53c8xx:) [ "$V" = iommu ] || fail "$NAME: workload found no sym53c8xx" ;;
      *:) fail "$NAME: workload found no ${d%:}" ;;
    esac
  done
  n=$(grep -c ' 0% packet loss' "$OUT/logs/$NAME.workload.log" || true)
  [ "$n" -eq 6 ] || fail "$NAME: $n of 6 ping runs without loss (see logs/$NAME.workload.log)"
  if [ -n "$cap" ]; then
    n=$(grep -c '^8 of 8 frames' "$OUT/logs/$NAME.workload.log" || true)
    [ "$n" -eq 4 ] || fail "$NAME: $n of 4 vivid captures complete"
  fi
done

# ---- MANIFEST.md for every recording of this run
M=$OUT/MANIFEST.md
{
  cat <<'EOT'
# Real drivers not in the other recordings

Made by `SampleTraces/lab/record-drivers.sh` (one boot per file: `lab/record.sh` on x86,
`lab/arm64-run.sh` on arm64; see SampleTraces/lab/README.md) running
`lab/workloads/drivers.sh` on unmodified Debian kernels under QEMU TCG, 2 vCPUs, with
`trace-cmd record -e dma -e swiotlb -e iommu -b 20000` inside the guest. Only these devices
are in the guest (plus the lab's virtio-blk output disk at 00:02.0 on x86 and 00:01.0 on
arm64, which bypasses the DMA API); every driver is loaded after tracing started, so its
probe-time allocations are in the trace. Every phase starts with a trace_marker line
`LAB: phase NAME`. The files have no kallsyms (trace-cmd saw an empty /proc/kallsyms: the
symbol table would be ~1.3 MB of a ~35 KB file, and no stacks were recorded), so
`trace-cmd report` shows the marker's caller as a raw address.

| PCI | QEMU device | driver | what the workload does |
|---|---|---|---|
| 0000:00:05.0 | e1000, own `-netdev user,restrict=on` | e1000 | 10.0.2.15; 5x56, 3x1400, 2x4000-byte pings of 10.0.2.2 |
| 0000:00:06.0 | rtl8139, own `-netdev user,restrict=on` | 8139cp | 10.0.2.16; the same pings |
| 0000:00:07.0 | megasas + scsi-hd | megaraid_sas | O_DIRECT dd: 8x4 KiB write + read, 2x64 KiB write + read |
| 0000:00:08.0 | lsi53c895a + scsi-hd | sym53c8xx | the same dd |
| 0000:00:09.0 | usb-ehci + usb-storage | ehci-pci, usb-storage | the same dd |
| 0000:00:0a.0 | sdhci-pci + sd-card | sdhci-pci, mmc_block | the same dd |
| 0000:00:0b.0 | intel-hda + hda-duplex (`-audiodev none`) | snd_hda_intel, snd_hda_codec_generic | 8000 bytes played and 4000 captured through the OSS emulation (`/dev/dsp`, snd_pcm_oss) |
| 0000:00:0c.0 | virtio-blk-pci,iommu_platform=on,disable-legacy=on | virtio_blk (virtio_ring on the DMA API) | unbound and bound again after tracing started (virtio_blk was loaded for the output disk), then the same dd |
| vivid.0 | none (platform device) | vivid, `n_devs=2 allocators=1,1 cache_hints=1,1` (videobuf2-dma-contig; both instances use the one platform device vivid.0 for DMA) | `tools/v4l2-capture`: instance 0 captures 8 frames of 320x240 YUYV into 4 MMAP buffers, once coherent, once with `V4L2_MEMORY_FLAG_NON_COHERENT` (dma_alloc_noncontiguous); then twice (coherent, non-coherent) instance 0's 4 buffers are exported as dma-bufs (`VIDIOC_EXPBUF`) and instance 1 imports them (`V4L2_MEMORY_DMABUF`) and captures 8 frames into them: the exporter builds an sg table of its allocation (`dma_get_sgtable_attrs`, or the noncontiguous sg table) and maps it for the importer with `dma_map_sgtable(..., DMA_ATTR_SKIP_CPU_SYNC)` (`vb2_dc_dmabuf_ops_map`), unmapped at detach |

Teardown at the end: both interfaces down, the virtio-blk disk unbound, every module
removed (`rmmod`, reverse load order).

Variants: x86 `plain` (dma-direct), `iommu` (`-device intel-iommu`, `intel_iommu=on
iommu.strict=1`), `swiotlb` (`swiotlb=force`); x86 guests have 6 GiB (q35: 2 GiB below
4 GiB, 4 GiB above), so devices with a 32-bit DMA mask bounce through swiotlb on `plain`
too. arm64 `noncoherent`: `qemu-system-aarch64 -machine virt,gic-version=3 -cpu
max,pauth-impdef=on`, 2 GiB, the device tree dumped with the run's options and
`dma-coherent` deleted from `pcie@10000000` (every PCI device non-coherent: dma-direct
does cache maintenance, coherent memory is vmalloc-remapped, small kmalloc buffers read
from the device are bounced).

EOT
  echo "| file | kernel | bytes | records | dma_sync_* | swiotlb_bounced | iommu map/unmap | lost |"
  echo "|---|---|---|---|---|---|---|---|"
} > "$M.tmp"
: > "$M.body"
for NAME in "${NAMES[@]}"; do
  f=$OUT/$NAME.dat
  "$HERE/describe.sh" "$f" > "$OUT/.entry.md"
  rep=$(trace-cmd report "$f" 2>/dev/null)
  recs=$(sed -n 's/^- records: \([0-9]*\) events.*/\1/p' "$OUT/.entry.md")
  lost=$(grep -c -E '^CPU:[0-9]+ \[' <<< "$rep" || true)
  sy=$(grep -c ' dma_sync_' <<< "$rep" || true)
  bo=$(grep -c ' swiotlb_bounced: ' <<< "$rep" || true)
  im=$(grep -c -E ' (map|unmap): +IOMMU' <<< "$rep" || true)
  kver=$(sed -n 's/^kernel=//p' "$OUT/logs/$NAME.info.txt" | head -n1)
  echo "| \`$NAME.dat\` | $kver | $(stat -c %s "$f") | $recs | $sy | $bo | $im | $lost |" >> "$M.tmp"
  {
    sed -e "s#^- file: \`[^\`]*\`#- file: \`SampleTraces/drivers/$NAME.dat\`#" "$OUT/.entry.md"
    [ "${NAME%%-*}" = arm64 ] && echo "- device tree: $(sed -n 's/^device_tree=//p' "$OUT/logs/$NAME.info.txt")"
    echo "- devices found by the workload: \`$(sed -n 's/^devices=//p' "$OUT/logs/$NAME.info.txt")\`"
    echo "- phases (trace_marker, guest time):"
    echo '```'
    grep -o '[0-9.]*: print: *[^ ]*: LAB: phase .*' <<< "$rep" | sed 's/: print: *[^ ]*: LAB: phase / /'
    echo '```'
    echo "- ping and capture summaries (workload log):"
    echo '```'
    grep -E 'packet loss|frames, checksum|buffers, capabilities' "$OUT/logs/$NAME.workload.log" || true
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
