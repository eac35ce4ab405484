#!/bin/bash
# build-initramfs.sh KERNEL WORKLOAD OUT.cpio [trace-cmd record flags... | --no-record]
#
#   KERNEL    an alias made by fetch-kernels.sh (6.12, 7) or a full release
#             (6.12.117+deb13-amd64), looked up in $LAB_CACHE/kernels/
#   WORKLOAD  a busybox-sh script (see workloads/), sourced by the guest's /init after
#             trace-cmd record has started; it must call load_drivers itself
#   OUT.cpio  the initramfs to write (uncompressed newc cpio: TCG decompression is slow)
#   flags     passed to `trace-cmd record` in the guest (default: -e dma -e swiotlb -e iommu);
#             the single word --no-record means: do not start trace-cmd at all
#   env LAB_GUEST_ENV  optional "KEY=VALUE KEY2=VALUE2" made available to the workload
#   env LAB_EXTRA_FILES optional "FILE1 FILE2": copied into the guest's /lab/ (e.g. an
#                      out-of-tree module such as faultinject/dmafi.ko for the workload)
#   env LAB_NO_KALLSYMS=1  trace-cmd in the guest sees an empty /proc/kallsyms (no symbol
#                      table in the file: ~1.3 MB smaller; only -T stacks need it)
#
# Contents, and WHY:
# - busybox-static: a whole userland in one static binary, no libc version questions.
# - the HOST's /usr/bin/trace-cmd with exactly the libraries `ldd` lists (and the dynamic
#   loader): the guest records with the same trace-cmd (3.1.6) that reads the files later.
# - the kernel's modules for virtio_blk (output disk) and the workload's drivers (its
#   "# lab-modules: MOD..." line; default nvme, ahci, xhci-pci, usb-storage, sd_mod,
#   e1000e), DECOMPRESSED (Debian ships .ko.xz; busybox insmod is safest with plain .ko) and
#   listed in dependency order as `modprobe -d ... --show-depends` gives it. The guest
#   insmods them from that list; no modules.dep or depmod needed inside.
# - guest/init + guest/lib.sh (the fixed procedure) and the workload (what varies).
# Takes 1 to 3 seconds.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LAB_CACHE=${LAB_CACHE:-/work/lab-cache}

[ $# -ge 3 ] || { sed -n '2,12p' "$0"; exit 2; }
KERNEL=$1 WORKLOAD=$2 OUT=$3; shift 3
KD=$LAB_CACHE/kernels/$KERNEL
[ -e "$KD/.done" ] || { echo "kernel $KERNEL not in $LAB_CACHE/kernels (run fetch-kernels.sh)" >&2; exit 1; }
KVER=$(basename "$(readlink -f "$KD")")
MODROOT=$KD/root/usr          # modprobe -d wants the folder that holds lib/modules/KVER
[ -f "$WORKLOAD" ] || { echo "no workload $WORKLOAD" >&2; exit 1; }
if [ $# -eq 0 ]; then set -- -e dma -e swiotlb -e iommu; fi
BUSYBOX=/bin/busybox
if ! { [ -x "$BUSYBOX" ] && file -L "$BUSYBOX" | grep -q 'statically linked'; }; then
  echo "need busybox-static (apt-get install busybox-static)" >&2; exit 1
fi

STAGE=$(mktemp -d "${TMPDIR:-/tmp}/lab-initramfs.XXXXXX")
trap 'rm -rf "$STAGE"' EXIT
mkdir -p "$STAGE"/{bin,sbin,usr/bin,dev,proc,sys,tmp,out,lab,lib/modules/"$KVER"}

# busybox; /init installs its applet links at boot.
cp "$BUSYBOX" "$STAGE/bin/busybox"

# trace-cmd plus every shared object ldd names, at the same paths (so the loader finds them).
cp /usr/bin/trace-cmd "$STAGE/usr/bin/trace-cmd"
ldd /usr/bin/trace-cmd | grep -o '/[^ ]*' | sort -u | while read -r lib; do
  mkdir -p "$STAGE$(dirname "$lib")"
  cp -L "$lib" "$STAGE$lib"
done
# Debian's trace-cmd looks in /lib64 for the loader on x86_64 (ldd lists it there already).

# LAB_PERF_ARGS: also run `perf record LAB_PERF_ARGS` in the guest (guest/init). bookworm's
# linux-perf 6.1 installs the real binary as /usr/bin/perf (it diverts the version wrapper
# away); its libraries are copied the same way as trace-cmd's.
if [ -n "${LAB_PERF_ARGS:-}" ]; then
  PERF_BIN=$(readlink -f /usr/bin/perf)
  file -L "$PERF_BIN" | grep -q ELF || { echo "$PERF_BIN is not the perf binary (apt-get install linux-perf)" >&2; exit 1; }
  cp "$PERF_BIN" "$STAGE/usr/bin/perf"
  ldd "$PERF_BIN" | grep -o '/[^ ]*' | sort -u | while read -r lib; do
    mkdir -p "$STAGE$(dirname "$lib")"
    cp -L "$lib" "$STAGE$lib"
  done
  echo "$LAB_PERF_ARGS" > "$STAGE/lab/perf-args"
  echo "${LAB_PERF_SCRIPT_ARGS:-}" > "$STAGE/lab/perf-script-args"   # for the guest's perf script
fi

# Modules: resolve dependencies on the host, decompress into a flat folder, keep order
# (mods_for in lib-host.sh).
# shellcheck source=lib-host.sh
. "$HERE/lib-host.sh"
# Early: the output disk only. virtio-pci is built into Debian's 6.12 and 7.x kernels (a
# "builtin" line, nothing to load) but a module in bookworm's 6.1.
mods_for "$STAGE/lab/modules-early.list" virtio_pci virtio_blk
# The traced drivers, loaded by the workload after tracing started: its "# lab-modules:"
# line, or the standard set. Order matters only for device naming: ahci before
# usb-storage so the SATA disk probes first.
# shellcheck disable=SC2046  # one word per module
mods_for "$STAGE/lab/modules.list" $(workload_modules "$WORKLOAD" nvme ahci xhci_pci usb_storage sd_mod e1000e)
module_args "$STAGE/lab/modules.list" "$WORKLOAD"

lab_stage_guest "$WORKLOAD" "${LAB_EXTRA_FILES:-}" "${LAB_GUEST_ENV:-}" "$@"

mkdir -p "$(dirname "$OUT")"
lab_cpio "$STAGE" "$OUT.tmp"
mv "$OUT.tmp" "$OUT"
echo ">> initramfs $OUT ($(du -h "$OUT" | cut -f1)) kernel=$KVER workload=$(basename "$WORKLOAD") record-args: $*"
