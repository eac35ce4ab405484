#!/bin/bash
# arm64-run.sh VARIANT WORKLOAD OUT.dat [trace-cmd record flags...]
#
# One real-driver recording on arm64: Debian's generic arm64 6.12 kernel on
# `qemu-system-aarch64 -machine virt,gic-version=3 -cpu max,pauth-impdef=on`, TCG, 2 vCPUs,
# 2 GiB (0x40000000..0xc0000000, all below 4 GiB). Counterpart of record.sh for arm64.
#
#   VARIANT   coherent     QEMU's own device tree (the pcie@10000000 node says dma-coherent)
#             noncoherent  the tree is dumped with this run's exact options (dumpdtb),
#                          `dma-coherent` is deleted from pcie@10000000, recompiled with dtc
#                          and passed with -dtb (the raw dump is padded to 1 MiB and hangs
#                          the boot: always recompile). Every PCI device is then
#                          non-coherent: dma-direct does cache maintenance, coherent
#                          allocations are vmalloc-remapped, small unaligned FROM_DEVICE
#                          kmalloc buffers are bounced (DMA_BOUNCE_UNALIGNED_KMALLOC).
#   WORKLOAD  a busybox-sh script (e.g. workloads/arm64-nvme-net.sh); it loads the drivers
#   OUT.dat   where trace.dat goes; other files in the guest's /out come back as
#             OUT-without-.dat + "-" + NAME
#   flags     for `trace-cmd record` in the guest; default -e dma -e swiotlb -e iommu -b 20000
#
# Devices (PCI addresses on the virt machine's pcie.0):
#   00:01.0 virtio-blk-pci      output disk (no iommu_platform: bypasses the DMA API)
#   00:02.0 nvme                1 GiB sparse raw disk                    driver nvme
#   00:03.0 e1000e              -netdev user,restrict=on (slirp 10.0.2.2) driver e1000e
#   00:04.0 virtio-net-pci      iommu_platform=on,disable-legacy=on: VIRTIO_F_ACCESS_PLATFORM,
#                               so virtio_ring uses the DMA API; its own -netdev
#                               user,restrict=on (a second slirp, also 10.0.2.2)
# (QEMU refuses iommu_platform=on on a transitional device; on the root bus virtio-pci
# devices are transitional unless disable-legacy=on.)
#
# Guest userland: bookworm's arm64 busybox-static and trace-cmd 3.1.6 (the host's version)
# with the libraries readelf lists, unpacked from .debs (never installed); guest/init and
# guest/lib.sh as on x86. Modules (decompressed, `modprobe --show-depends` order on the
# arm64 tree): virtio_blk early; nvme, e1000e, virtio_net for the workload.
# Code (lib-host.sh) and caches shared with faultinject/arm64.sh: $LAB_CACHE/kernels-arm64,
# arm64-userland, debs-arm64, apt-arm64-{trixie,trixie-backports,bookworm}. The kernel release is the amd64 6.12 alias's
# with -amd64 replaced by -arm64 (fetch-kernels.sh makes the alias), or K612A=...
# LAB_KERNEL=7 takes the 7.x backport instead (alias 7, or K7A=...).
#
# Outputs like record.sh: OUT.dat, $(dirname OUT)/logs/NAME.{console.log,info.txt,
# workload.log,trace-cmd.log,dts} (the .dts is the tree the guest booted with).
# Env: LAB_CACHE (default /work/lab-cache), LAB_TIMEOUT (default 600), LAB_MEM (2G),
# LAB_KEEP=1 (keep the run folder), LAB_GUEST_ENV ("KEY=VALUE ..." exported to the workload,
# e.g. TEARDOWN=0 for arm64-nvme-net.sh). About 20 to 30 s per run.
# Other devices (as record.sh): LAB_STD_DEVICES=0 leaves out nvme, e1000e and virtio-net;
# LAB_QEMU_EXTRA adds devices (also to the dumped tree; "%RUN%" is the run folder);
# LAB_DISKS="NAME=SIZE ..." makes sparse raw disks %RUN%/NAME.img; the workload's
# "# lab-modules:" line names its drivers. LAB_NO_KALLSYMS=1: no symbol table in the trace.
# LAB_EXTRA_FILES: files copied into the guest's /lab/ (arm64 binaries).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export LAB_CACHE=${LAB_CACHE:-/work/lab-cache}
LAB_TIMEOUT=${LAB_TIMEOUT:-600}
LAB_MEM=${LAB_MEM:-2G}
[ $# -ge 3 ] || { sed -n '2,48p' "$0"; exit 2; }
VARIANT=$1 WORKLOAD=$2 OUT=$3; shift 3
case "$VARIANT" in coherent|noncoherent) ;; *) echo "unknown variant $VARIANT (coherent|noncoherent)" >&2; exit 2 ;; esac
[ -f "$WORKLOAD" ] || { echo "no workload $WORKLOAD" >&2; exit 1; }
[ $# -gt 0 ] || set -- -e dma -e swiotlb -e iommu -b 20000
# shellcheck source=lib-host.sh
. "$HERE/lib-host.sh"
arm64_debs_init

# ---- kernel: LAB_KERNEL=6.12 (default) or 7, see arm64_kernel in lib-host.sh
LAB_KERNEL=${LAB_KERNEL:-6.12}
arm64_kernel "$LAB_KERNEL"
KVER=$KREL MODROOT=$KD/root/usr

# ---- guest userland (bookworm arm64)
arm64_userland

lab_run_dirs "$OUT"

# ---- initramfs (as build-initramfs.sh, with arm64 binaries)
STAGE=$RUN/stage
arm64_stage_userland
mods_for "$STAGE/lab/modules-early.list" virtio_blk
# shellcheck disable=SC2046  # one word per module
mods_for "$STAGE/lab/modules.list" $(workload_modules "$WORKLOAD" nvme e1000e virtio_net)
module_args "$STAGE/lab/modules.list" "$WORKLOAD"
lab_stage_guest "$WORKLOAD" "${LAB_EXTRA_FILES:-}" "${LAB_GUEST_ENV:-}" "$@"
lab_cpio "$STAGE" "$RUN/initrd.cpio"
rm -rf "$STAGE"

truncate -s 256M "$RUN/out.img"; truncate -s 1G "$RUN/nvme.img"
for d in ${LAB_DISKS:-}; do
  [[ $d =~ ^[a-z0-9_-]+=[0-9]+[KMG]?$ ]] || { echo "bad LAB_DISKS item: $d" >&2; exit 2; }
  truncate -s "${d#*=}" "$RUN/${d%%=*}.img"
done
STD_DEVICES=()
if [ "${LAB_STD_DEVICES:-1}" != 0 ]; then
  # shellcheck disable=SC2054  # the commas belong to QEMU option values
  STD_DEVICES=(
    -drive "file=$RUN/nvme.img,if=none,id=nvm,format=raw" -device nvme,serial=dmalab0001,drive=nvm,addr=02.0
    -netdev user,id=n0,restrict=on -device e1000e,netdev=n0,addr=03.0
    -netdev user,id=n1,restrict=on -device virtio-net-pci,netdev=n1,iommu_platform=on,disable-legacy=on,addr=04.0)
fi
# shellcheck disable=SC2206  # word splitting of the extra arguments is intended
EXTRA=(${LAB_QEMU_EXTRA//%RUN%/$RUN})
APPEND="console=ttyAMA0 panic=-1 loglevel=6"
MACHINE=virt,gic-version=3
# shellcheck disable=SC2054  # the commas belong to QEMU option values
DEVS=(-cpu max,pauth-impdef=on -smp 2 -m "$LAB_MEM" -nographic -no-reboot
  -kernel "$KD/vmlinuz" -initrd "$RUN/initrd.cpio" -append "$APPEND"
  -drive "file=$RUN/out.img,if=none,id=outd,format=raw" -device virtio-blk-pci,drive=outd,addr=01.0
  "${STD_DEVICES[@]}" "${EXTRA[@]}")

# ---- the device tree: always dumped with the run's exact options (kept in logs/);
# passed to the guest only for the non-coherent variant, without dma-coherent in pcie@10000000
arm64_dump_dts "$RUN/virt.dts"
DTB=()
if [ "$VARIANT" = noncoherent ]; then
  dts_noncoherent "$RUN/virt.dts" "$RUN/boot.dts"
  dtc -q -I dts -O dtb -o "$RUN/boot.dtb" "$RUN/boot.dts"
  DTB=(-dtb "$RUN/boot.dtb")
  DTNOTE="dumpdtb with the run's exact options; dma-coherent deleted from pcie@10000000; recompiled with dtc; -dtb"
else
  cp "$RUN/virt.dts" "$RUN/boot.dts"
  DTNOTE="QEMU's generated tree (no -dtb; pcie@10000000 has dma-coherent)"
fi

# shellcheck disable=SC2054
QEMU=(timeout --kill-after=10 "$LAB_TIMEOUT" qemu-system-aarch64 -machine "$MACHINE"
  -accel tcg,thread=multi "${DEVS[@]}" "${DTB[@]}")
echo ">> run folder $RUN; booting $KREL (arm64, $VARIANT PCIe), console -> $LOGDIR/$NAME.console.log"
lab_boot_collect "$DTNOTE" "$RUN/boot.dts"
