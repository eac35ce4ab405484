#!/bin/bash
# record.sh KERNEL VARIANT WORKLOAD OUT.dat [trace-cmd record flags... | --no-record]
#
# One recording: build the initramfs, boot a QEMU guest with the lab's device set, run the
# workload under `trace-cmd record`, bring back trace.dat as OUT.dat.
#
#   KERNEL    6.12 | 7 | a full release from $LAB_CACHE/kernels (fetch-kernels.sh)
#   VARIANT   plain    dma-direct (no IOMMU, no forced bouncing)
#             iommu    -device intel-iommu + intel_iommu=on iommu.strict=1
#             swiotlb  swiotlb=force on the kernel command line
#   WORKLOAD  a script from workloads/ (busybox sh, see guest/lib.sh for its helpers)
#   OUT.dat   where trace.dat goes. Any OTHER file the workload leaves in the guest's /out
#             (e.g. tracefs.txt) is copied to OUT-without-.dat + "-" + its name.
#   flags     for `trace-cmd record` in the guest; default -e dma -e swiotlb -e iommu
#
# Environment (all optional):
#   LAB_CACHE     kernels, initramfs and run folders          (default /work/lab-cache)
#   LAB_MEM       guest RAM                                   (default 3G, as MANIFEST.md)
#   LAB_OUT_MB    size of the raw output disk in MiB          (default 256)
#   LAB_TIMEOUT   hard limit for the QEMU run in seconds      (default 600)
#   LAB_GUEST_ENV "KEY=VALUE ..." exported to the workload    (e.g. TARGET_EVENTS=500000)
#   LAB_KEEP=1    keep the run folder (disks, initramfs, unpacked /out) for debugging
#   LAB_QEMU_EXTRA extra QEMU arguments, appended after the lab's devices
#                 (e.g. "-device edu,dma_mask=0xffffffff" for faultinject/)
#   LAB_EXTRA_FILES files copied into the guest's /lab/ (see build-initramfs.sh)
#   LAB_STD_DEVICES=0 leave out the lab's nvme, SATA, xhci + usb-storage and e1000e (only
#                 the output disk stays): the devices come from LAB_QEMU_EXTRA
#   LAB_DISKS     "NAME=SIZE ..." sparse raw disks made in the run folder as NAME.img
#                 (SIZE as for truncate); "%RUN%" in LAB_QEMU_EXTRA is the run folder
#   LAB_NO_KALLSYMS=1 no symbol table in the trace (see build-initramfs.sh)
# Guest console, lab-info (timings, PCI devices, ring-buffer stats) and the trace-cmd log
# go to $(dirname OUT)/logs/.
#
# WHY the QEMU flags: copied from /work/shared/traces/MANIFEST.md so that new recordings
# have the same PCI layout (nvme 00:03.0, xhci 00:04.0, e1000e 00:05.0, ahci 00:1f.2).
# TCG (not KVM: no hardware virtualisation here), q35, 2 vCPUs, multi-threaded TCG.
# `-netdev user,restrict=on`: the guest can only talk to QEMU's internal slirp stack;
# nothing leaves the host. Disks are sparse raw files made fresh for every run.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LAB_CACHE=${LAB_CACHE:-/work/lab-cache}
LAB_MEM=${LAB_MEM:-3G}
LAB_OUT_MB=${LAB_OUT_MB:-256}
LAB_TIMEOUT=${LAB_TIMEOUT:-600}

[ $# -ge 4 ] || { sed -n '2,31p' "$0"; exit 2; }
KERNEL=$1 VARIANT=$2 WORKLOAD=$3 OUT=$4; shift 4
KD=$LAB_CACHE/kernels/$KERNEL
[ -e "$KD/.done" ] || { echo "kernel $KERNEL not in $LAB_CACHE/kernels (run fetch-kernels.sh)" >&2; exit 1; }
KVER=$(basename "$(readlink -f "$KD")")

APPEND="console=ttyS0 panic=-1 loglevel=6"
QEXTRA=()
case "$VARIANT" in
  plain) ;;
  # lab.sata_maxkb=16: QEMU 7.2's AHCI under intel-iommu crashes on large writes.
  iommu) APPEND="$APPEND intel_iommu=on iommu.strict=1 lab.sata_maxkb=16"; QEXTRA=(-device intel-iommu) ;;
  swiotlb) APPEND="$APPEND swiotlb=force" ;;
  *) echo "unknown variant $VARIANT (plain|iommu|swiotlb)" >&2; exit 2 ;;
esac

# shellcheck source=lib-host.sh
. "$HERE/lib-host.sh"
lab_run_dirs "$OUT"

"$HERE/build-initramfs.sh" "$KERNEL" "$WORKLOAD" "$RUN/initrd.cpio" "$@"

# Fresh sparse disks. nvme/sata/usb start as zeros: the workloads read and write raw blocks.
truncate -s "${LAB_OUT_MB}M" "$RUN/out.img"
truncate -s 1G "$RUN/nvme.img"
truncate -s 512M "$RUN/sata.img"
truncate -s 128M "$RUN/usb.img"
for d in ${LAB_DISKS:-}; do
  [[ $d =~ ^[a-z0-9_-]+=[0-9]+[KMG]?$ ]] || { echo "bad LAB_DISKS item: $d" >&2; exit 2; }
  truncate -s "${d#*=}" "$RUN/${d%%=*}.img"
done
STD_DEVICES=()
if [ "${LAB_STD_DEVICES:-1}" != 0 ]; then
  # shellcheck disable=SC2054  # the commas belong to QEMU option values
  STD_DEVICES=(
    -drive "file=$RUN/nvme.img,if=none,id=nvm,format=raw" -device nvme,serial=dmalab0001,drive=nvm
    -drive "file=$RUN/sata.img,if=none,id=sata0,format=raw" -device ide-hd,drive=sata0,bus=ide.0
    -device qemu-xhci,id=xhci
    -drive "file=$RUN/usb.img,if=none,id=usbd,format=raw" -device usb-storage,bus=xhci.0,drive=usbd
    -netdev user,id=n0,restrict=on -device e1000e,netdev=n0)
fi

# shellcheck disable=SC2054  # the commas belong to QEMU option values
QEMU=(timeout --kill-after=10 "$LAB_TIMEOUT" qemu-system-x86_64
  -machine q35 -accel tcg,thread=multi -cpu max -smp 2 -m "$LAB_MEM"
  -nographic -no-reboot "${QEXTRA[@]}"
  -kernel "$KD/vmlinuz" -initrd "$RUN/initrd.cpio" -append "$APPEND"
  -drive "file=$RUN/out.img,if=none,id=outd,format=raw" -device virtio-blk-pci,drive=outd
  "${STD_DEVICES[@]}"
  -monitor "unix:$RUN/monitor.sock,server,nowait")
# shellcheck disable=SC2206  # word splitting of the extra arguments is intended
[ -n "${LAB_QEMU_EXTRA:-}" ] && QEMU+=(${LAB_QEMU_EXTRA//%RUN%/$RUN})

echo ">> run folder $RUN"
echo ">> booting $KVER ($VARIANT), timeout ${LAB_TIMEOUT}s, console -> $LOGDIR/$NAME.console.log"
lab_boot_collect
