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
# Caches shared with faultinject/arm64.sh: $LAB_CACHE/kernels-arm64, arm64-userland,
# debs-arm64, apt-arm64-{trixie,bookworm}. The kernel release is the amd64 6.12 alias's
# with -amd64 replaced by -arm64 (fetch-kernels.sh makes the alias), or K612A=...
# LAB_KERNEL=7 takes the 7.x backport instead (alias 7, or K7A=...).
#
# Outputs like record.sh: OUT.dat, $(dirname OUT)/logs/NAME.{console.log,info.txt,
# workload.log,trace-cmd.log,dts} (the .dts is the tree the guest booted with).
# Env: LAB_CACHE (default /work/lab-cache), LAB_TIMEOUT (default 600), LAB_MEM (2G),
# LAB_KEEP=1 (keep the run folder), LAB_GUEST_ENV ("KEY=VALUE ..." exported to the workload,
# e.g. TEARDOWN=0 for arm64-nvme-net.sh). About 20 to 30 s per run.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export LAB_CACHE=${LAB_CACHE:-/work/lab-cache}
LAB_TIMEOUT=${LAB_TIMEOUT:-600}
LAB_MEM=${LAB_MEM:-2G}
[ $# -ge 3 ] || { sed -n '2,44p' "$0"; exit 2; }
VARIANT=$1 WORKLOAD=$2 OUT=$3; shift 3
case "$VARIANT" in coherent|noncoherent) ;; *) echo "unknown variant $VARIANT (coherent|noncoherent)" >&2; exit 2 ;; esac
[ -f "$WORKLOAD" ] || { echo "no workload $WORKLOAD" >&2; exit 1; }
[ $# -gt 0 ] || set -- -e dma -e swiotlb -e iommu -b 20000
command -v qemu-system-aarch64 >/dev/null || { echo "apt-get install qemu-system-arm" >&2; exit 1; }
command -v dtc >/dev/null || { echo "apt-get install device-tree-compiler" >&2; exit 1; }

SRC=/etc/apt/sources.list.d/debian.sources
URI=$(awk '/^URIs:/{print $2; exit}' "$SRC")
[ -n "$URI" ] || { echo "no URIs: line in $SRC" >&2; exit 1; }
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
DEBS=$LAB_CACHE/debs-arm64
mkdir -p "$DEBS"; if id _apt >/dev/null 2>&1; then chown _apt "$DEBS"; fi

# private arm64 apt states: trixie (kernel) and bookworm (guest userland)
apt_opts() {
  echo "-o Dir::Etc::SourceList=$1/sources.list -o Dir::Etc::SourceParts=/dev/null"
  echo "-o Dir::Etc::PreferencesParts=/dev/null -o Dir::State::Lists=$1/lists"
  echo "-o Dir::State::status=$1/state/status -o Dir::Cache=$1/cache"
  echo "-o APT::Architecture=arm64 -o APT::Architectures=arm64"
}
apt_state() {  # apt_state SUITE -> prints the state folder
  local d=$LAB_CACHE/apt-arm64-$1
  mkdir -p "$d/lists/partial" "$d/cache/archives/partial" "$d/state"
  [ -e "$d/state/status" ] || : > "$d/state/status"
  if id _apt >/dev/null 2>&1; then chown _apt "$d/lists/partial"; fi
  [ -f "$d/sources.list" ] || echo "deb [signed-by=$KEYRING] $URI $1 main" > "$d/sources.list"
  # shellcheck disable=SC2046
  ls "$d"/lists/*_InRelease >/dev/null 2>&1 || apt-get $(apt_opts "$d") -qq update >&2
  echo "$d"
}
get_deb() {  # get_deb SUITE PKG -> path of the .deb
  local f d
  f=$(ls "$DEBS/${2}"_*.deb 2>/dev/null | head -n1 || true)
  if [ -z "$f" ]; then
    d=$(apt_state "$1")
    # shellcheck disable=SC2046
    (cd "$DEBS" && apt-get $(apt_opts "$d") -qq download "$2") >&2
    f=$(ls "$DEBS/${2}"_*.deb | head -n1)
  fi
  echo "$f"
}

# ---- kernel: LAB_KERNEL=6.12 (default; trixie's linux-image-*-arm64) or 7 (trixie-backports'
# split linux-binary-/linux-modules-/linux-base-*-arm64). The release is the amd64 alias's
# (fetch-kernels.sh) with -amd64 replaced by -arm64, unless K612A / K7A name one.
LAB_KERNEL=${LAB_KERNEL:-6.12}
case "$LAB_KERNEL" in
  6.12) KREL=${K612A:-} SUITE=trixie ;;
  7) KREL=${K7A:-} SUITE=trixie-backports ;;
  *) echo "LAB_KERNEL must be 6.12 or 7" >&2; exit 2 ;;
esac
if [ -z "$KREL" ]; then
  [ -e "$LAB_CACHE/kernels/$LAB_KERNEL/.done" ] || "$HERE/fetch-kernels.sh" > /dev/null
  KREL=$(basename "$(readlink -f "$LAB_CACHE/kernels/$LAB_KERNEL")" | sed 's/-amd64$/-arm64/')
fi
KDIR=$LAB_CACHE/kernels-arm64
KD=$KDIR/$KREL
if [ ! -e "$KD/.done" ]; then
  rm -rf "$KD"; mkdir -p "$KD/root"
  if [ "$LAB_KERNEL" = 6.12 ]; then PKGS=("linux-image-$KREL")
  else PKGS=("linux-binary-$KREL" "linux-modules-$KREL" "linux-base-$KREL"); fi
  for p in "${PKGS[@]}"; do dpkg-deb -x "$(get_deb "$SUITE" "$p")" "$KD/root"; done
  # 6.12: boot/vmlinuz-KVER, boot/config-KVER; 7.x: usr/lib/modules/KVER/{vmlinuz,config}
  vml=$(find "$KD/root/boot/vmlinuz-$KREL" "$KD/root/usr/lib/modules/$KREL/vmlinuz" -maxdepth 0 -type f 2>/dev/null | head -n1 || true)
  cfg=$(find "$KD/root/boot/config-$KREL" "$KD/root/usr/lib/modules/$KREL/config" -maxdepth 0 -type f 2>/dev/null | head -n1 || true)
  [ -n "$vml" ] && [ -n "$cfg" ] || { echo "vmlinuz/config missing for $KREL" >&2; exit 1; }
  /sbin/depmod -b "$KD/root/usr" "$KREL"
  ln -sfn "${vml#"$KD"/}" "$KD/vmlinuz"
  ln -sfn "${cfg#"$KD"/}" "$KD/config"
  touch "$KD/.done"
fi
ln -sfn "$KREL" "$KDIR/$LAB_KERNEL"

# ---- guest userland (bookworm arm64)
UL=$LAB_CACHE/arm64-userland
if [ ! -e "$UL/.done" ]; then
  rm -rf "$UL"; mkdir -p "$UL"
  for p in busybox-static trace-cmd libtraceevent1 libtracefs1 libzstd1 libc6; do
    dpkg-deb -x "$(get_deb bookworm "$p")" "$UL"
  done
  touch "$UL/.done"
fi

NAME=$(basename "$OUT"); NAME=${NAME%.dat}
mkdir -p "$(dirname "$OUT")"
OUTDIR=$(cd "$(dirname "$OUT")" && pwd)
LOGDIR=$OUTDIR/logs
RUN=$LAB_CACHE/runs/$NAME-$(date +%Y%m%d-%H%M%S)
mkdir -p "$RUN" "$LOGDIR"

# ---- initramfs (as build-initramfs.sh, with arm64 binaries)
STAGE=$RUN/stage
mkdir -p "$STAGE"/{bin,sbin,usr/bin,dev,proc,sys,tmp,out,lab,lib/modules/"$KREL"}
cp "$UL/bin/busybox" "$STAGE/bin/busybox"
cp "$UL/usr/bin/trace-cmd" "$STAGE/usr/bin/trace-cmd"
# the shared objects trace-cmd needs, transitively (readelf: no arm64 ldd on this host)
find_lib() { find "$UL/lib" "$UL/usr/lib" -name "$1" \( -type f -o -type l \) 2>/dev/null | head -n1; }
todo=("$UL/usr/bin/trace-cmd") seen=" "
while [ ${#todo[@]} -gt 0 ]; do
  f=${todo[0]}; todo=("${todo[@]:1}")
  for n in $(readelf -d "$f" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
    case "$seen" in *" $n "*) continue ;; esac
    seen="$seen$n "
    p=$(find_lib "$n"); [ -n "$p" ] || { echo "no $n in the arm64 userland" >&2; exit 1; }
    rel=${p#"$UL"}
    mkdir -p "$STAGE$(dirname "$rel")"; cp -L "$p" "$STAGE$rel"
    todo+=("$p")
  done
done
interp=$(readelf -l "$UL/usr/bin/trace-cmd" | sed -n 's/.*interpreter: \(.*\)\]/\1/p')
mkdir -p "$STAGE$(dirname "$interp")"; cp -L "$(find_lib "$(basename "$interp")")" "$STAGE$interp"

SEEN=" "
mods_for() {
  local list=$1; shift
  : > "$list"
  local kind path base dst
  while read -r kind path _rest; do
    [ "$kind" = insmod ] || continue
    base=$(basename "$path"); base=${base%.xz}; base=${base%.zst}; base=${base%.gz}
    dst=/lib/modules/$KREL/$base
    case "$SEEN" in *" $base "*) ;; *)
      case "$path" in
        *.xz) xz -dc "$path" > "$STAGE$dst" ;;
        *.zst) zstd -qdc "$path" > "$STAGE$dst" ;;
        *) cp "$path" "$STAGE$dst" ;;
      esac
      SEEN="$SEEN$base " ;;
    esac
    grep -qx "$dst" "$list" || echo "$dst" >> "$list"
  done < <(/sbin/modprobe -d "$KD/root/usr" -S "$KREL" --show-depends -a "$@")
}
mods_for "$STAGE/lab/modules-early.list" virtio_blk
mods_for "$STAGE/lab/modules.list" nvme e1000e virtio_net
cp "$HERE/guest/init" "$STAGE/init"; chmod 755 "$STAGE/init"
cp "$HERE/guest/lib.sh" "$STAGE/lab/lib.sh"
cp "$WORKLOAD" "$STAGE/lab/workload.sh"
basename "$WORKLOAD" > "$STAGE/lab/workload-name"
echo "$*" > "$STAGE/lab/record-args"
: > "$STAGE/lab/env"
for kv in ${LAB_GUEST_ENV:-}; do
  [[ $kv =~ ^[A-Z_][A-Z0-9_]*=[A-Za-z0-9_./:-]*$ ]] || { echo "bad LAB_GUEST_ENV item: $kv" >&2; exit 1; }
  echo "export $kv" >> "$STAGE/lab/env"
done
(cd "$STAGE" && find . -mindepth 1 | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0) > "$RUN/initrd.cpio"
rm -rf "$STAGE"

truncate -s 256M "$RUN/out.img"; truncate -s 1G "$RUN/nvme.img"
APPEND="console=ttyAMA0 panic=-1 loglevel=6"
MACHINE=virt,gic-version=3
# shellcheck disable=SC2054  # the commas belong to QEMU option values
DEVS=(-cpu max,pauth-impdef=on -smp 2 -m "$LAB_MEM" -nographic -no-reboot
  -kernel "$KD/vmlinuz" -initrd "$RUN/initrd.cpio" -append "$APPEND"
  -drive "file=$RUN/out.img,if=none,id=outd,format=raw" -device virtio-blk-pci,drive=outd,addr=01.0
  -drive "file=$RUN/nvme.img,if=none,id=nvm,format=raw" -device nvme,serial=dmalab0001,drive=nvm,addr=02.0
  -netdev user,id=n0,restrict=on -device e1000e,netdev=n0,addr=03.0
  -netdev user,id=n1,restrict=on -device virtio-net-pci,netdev=n1,iommu_platform=on,disable-legacy=on,addr=04.0)

# ---- the device tree: always dumped with the run's exact options (kept in logs/);
# passed to the guest only for the non-coherent variant, without dma-coherent in pcie@10000000
qemu-system-aarch64 -machine "$MACHINE,dumpdtb=$RUN/virt.dtb" -accel tcg "${DEVS[@]}" > /dev/null 2>&1 || true
[ -s "$RUN/virt.dtb" ] || { echo "dumpdtb failed" >&2; exit 1; }
dtc -q -I dtb -O dts -o "$RUN/virt.dts" "$RUN/virt.dtb"
DTB=()
if [ "$VARIANT" = noncoherent ]; then
  python3 - "$RUN/virt.dts" "$RUN/boot.dts" <<'PY'
import re, sys
src = open(sys.argv[1]).read().split("\n")
out, depth, in_pcie, removed = [], 0, False, 0
for line in src:
    s = line.strip()
    if re.match(r"pcie@10000000 \{", s):
        in_pcie, pdepth = True, depth
    if in_pcie and s == "dma-coherent;" and depth == pdepth + 1:
        removed += 1
        continue
    depth += line.count("{") - line.count("}")
    if in_pcie and depth <= pdepth:
        in_pcie = False
    out.append(line)
assert removed == 1, f"dma-coherent removed {removed} times"
open(sys.argv[2], "w").write("\n".join(out))
PY
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
printf '%q ' "${QEMU[@]}" > "$RUN/qemu-cmdline.txt"; echo >> "$RUN/qemu-cmdline.txt"
echo ">> run folder $RUN; booting $KREL (arm64, $VARIANT PCIe), console -> $LOGDIR/$NAME.console.log"
T0=$(date +%s.%N)
set +e
"${QEMU[@]}" < /dev/null > "$RUN/console.log" 2>&1
QRC=$?
set -e
WALL=$(echo "$(date +%s.%N) - $T0" | bc)
cp "$RUN/console.log" "$LOGDIR/$NAME.console.log"
cp "$RUN/boot.dts" "$LOGDIR/$NAME.dts"
echo ">> qemu rc=$QRC wall=${WALL}s"
[ $QRC -eq 124 ] && echo "!! QEMU hit the ${LAB_TIMEOUT}s timeout" >&2
grep -q LAB-TAR-OK "$RUN/console.log" || { echo "!! guest did not write its tar; see $LOGDIR/$NAME.console.log" >&2; tail -n 30 "$RUN/console.log" >&2; exit 1; }
mkdir -p "$RUN/out"
tar xf "$RUN/out.img" -C "$RUN/out"
{
  cat "$RUN/out/lab-info.txt"
  echo "host_qemu_rc=$QRC"
  echo "host_wall_s=$WALL"
  echo "qemu_cmdline=$(cat "$RUN/qemu-cmdline.txt")"
  echo "device_tree=$DTNOTE"
  # (the workload's list from before its teardown, when there is one: drivers still bound)
  PCIL=$RUN/out/pci-devices.txt; [ -f "$RUN/out/pci-devices-loaded.txt" ] && PCIL=$RUN/out/pci-devices-loaded.txt
  echo "== pci devices"; cat "$PCIL"
  echo "== ring buffer stats at workload end"; cat "$RUN/out/ringbuffer-stats.txt"
} > "$LOGDIR/$NAME.info.txt"
for f in workload.log trace-cmd.log; do
  [ -f "$RUN/out/$f" ] && cp "$RUN/out/$f" "$LOGDIR/$NAME.$f"
done
for f in "$RUN"/out/*; do
  b=$(basename "$f")
  case "$b" in
    lab-info.txt|pci-devices.txt|pci-devices-loaded.txt|ringbuffer-stats.txt|cmdline.txt|workload.log|trace-cmd.log) ;;
    trace.dat) cp "$f" "$OUT"; echo ">> $OUT ($(stat -c %s "$OUT") bytes)" ;;
    trace.dat.cpu*) echo "!! leftover $b: trace-cmd did not finish merging" >&2 ;;
    *) cp "$f" "$OUTDIR/$NAME-$b"; echo ">> $OUTDIR/$NAME-$b ($(stat -c %s "$OUTDIR/$NAME-$b") bytes)" ;;
  esac
done
[ "${LAB_KEEP:-0}" = 1 ] || rm -rf "$RUN"
echo ">> info: $LOGDIR/$NAME.info.txt"
