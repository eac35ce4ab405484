#!/bin/bash
# arm64.sh OUT.dat [trace-cmd record flags...]: the arm64 non-coherent fault-injection run.
#
# Debian's generic arm64 kernel (same 6.12 release as the x86 runs: the amd64 alias
# 6.12 with -amd64 replaced by -arm64, or K612A=...) on `qemu-system-aarch64 -machine virt
# -cpu max,pauth-impdef=on` under TCG, with the PCIe host bridge made NON-COHERENT: the
# machine's device tree is dumped with the run's exact options (dumpdtb), `dma-coherent`
# is deleted from the pcie@10000000 node, and the tree is recompiled with dtc (the raw
# dump is padded to 1 MiB and hangs the boot) and passed with -dtb. Two nodes are added
# for the no-struct-page-pool scenario: a 1 MiB `shared-dma-pool` reserved-memory region
# with `no-map` (outside the linear map) and `/dmafi { memory-region = <&pool>; }`.
# Devices as on x86 where virt has them: virtio-blk (output), nvme, ich9-ahci + ide-hd,
# qemu-xhci + usb-storage, e1000e (restrict=on), edu (dma_mask=0xffffffff); 2 GiB RAM
# (0x40000000..0xc0000000, all below 4 GiB), 2 vCPUs.
#
# Guest userland: bookworm's arm64 busybox-static and trace-cmd 3.1.6 (the host's version)
# with the libraries readelf lists, unpacked from .debs (never installed); the lab's
# guest/init, guest/lib.sh and faultinject/workload-faultinject.sh. Module dependency
# order from the host's modprobe --show-depends on the arm64 module tree.
#
# Outputs like record.sh: OUT.dat, OUT-without-.dat-NAME for other files in /out,
# $(dirname OUT)/logs/NAME.{console.log,info.txt,workload.log,trace-cmd.log}.
# Env: LAB_CACHE, LAB_TIMEOUT (default 600), LAB_KEEP=1. About 1 to 2 minutes.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LAB=$(cd "$HERE/.." && pwd)
export LAB_CACHE=${LAB_CACHE:-/work/lab-cache}
LAB_TIMEOUT=${LAB_TIMEOUT:-600}
[ $# -ge 1 ] || { sed -n '2,25p' "$0"; exit 2; }
OUT=$1; shift
[ $# -gt 0 ] || set -- -e dma -e swiotlb -e iommu -b 20000
command -v qemu-system-aarch64 >/dev/null || { echo "apt-get install qemu-system-arm" >&2; exit 1; }
command -v dtc >/dev/null || { echo "apt-get install device-tree-compiler" >&2; exit 1; }

SRC=/etc/apt/sources.list.d/debian.sources
URI=$(awk '/^URIs:/{print $2; exit}' "$SRC")
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
DEBS=$LAB_CACHE/debs-arm64
mkdir -p "$DEBS"; if id _apt >/dev/null 2>&1; then chown _apt "$DEBS"; fi

# private arm64 apt states: trixie (kernel, headers) and bookworm (guest userland)
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

# ---- kernel
K612A=${K612A:-$(basename "$(readlink -f "$LAB_CACHE/kernels/6.12")" | sed 's/-amd64$/-arm64/')}
KDIR=$LAB_CACHE/kernels-arm64
KD=$KDIR/$K612A
if [ ! -e "$KD/.done" ]; then
  rm -rf "$KD"; mkdir -p "$KD/root"
  dpkg-deb -x "$(get_deb trixie "linux-image-$K612A")" "$KD/root"
  /sbin/depmod -b "$KD/root/usr" "$K612A"
  ln -sfn "root/boot/vmlinuz-$K612A" "$KD/vmlinuz"
  ln -sfn "root/boot/config-$K612A" "$KD/config"
  touch "$KD/.done"
fi
ln -sfn "$K612A" "$KDIR/6.12"
KO=$LAB_CACHE/modules/$K612A/dmafi.ko
LAB_ARCH=arm64 "$HERE/build-module.sh" 6.12

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
mkdir -p "$STAGE"/{bin,sbin,usr/bin,dev,proc,sys,tmp,out,lab,lib/modules/"$K612A"}
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
# the loader at the path the binaries ask for
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
    dst=/lib/modules/$K612A/$base
    case "$SEEN" in *" $base "*) ;; *)
      case "$path" in
        *.xz) xz -dc "$path" > "$STAGE$dst" ;;
        *.zst) zstd -qdc "$path" > "$STAGE$dst" ;;
        *) cp "$path" "$STAGE$dst" ;;
      esac
      SEEN="$SEEN$base " ;;
    esac
    grep -qx "$dst" "$list" || echo "$dst" >> "$list"
  done < <(/sbin/modprobe -d "$KD/root/usr" -S "$K612A" --show-depends -a "$@")
}
mods_for "$STAGE/lab/modules-early.list" virtio_blk
mods_for "$STAGE/lab/modules.list" nvme ahci xhci_pci usb_storage sd_mod e1000e
cp "$LAB/guest/init" "$STAGE/init"; chmod 755 "$STAGE/init"
cp "$LAB/guest/lib.sh" "$STAGE/lab/lib.sh"
cp "$HERE/workload-faultinject.sh" "$STAGE/lab/workload.sh"
echo workload-faultinject.sh > "$STAGE/lab/workload-name"
cp "$KO" "$STAGE/lab/dmafi.ko"
echo "$*" > "$STAGE/lab/record-args"
: > "$STAGE/lab/env"
(cd "$STAGE" && find . -mindepth 1 | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0) > "$RUN/initrd.cpio"
rm -rf "$STAGE"

truncate -s 256M "$RUN/out.img"; truncate -s 1G "$RUN/nvme.img"
truncate -s 512M "$RUN/sata.img"; truncate -s 128M "$RUN/usb.img"
APPEND="console=ttyAMA0 panic=-1 loglevel=6"
MACHINE=virt,gic-version=3
# shellcheck disable=SC2054
DEVS=(-cpu max,pauth-impdef=on -smp 2 -m 2G -nographic -no-reboot
  -kernel "$KD/vmlinuz" -initrd "$RUN/initrd.cpio" -append "$APPEND"
  -drive "file=$RUN/out.img,if=none,id=outd,format=raw" -device virtio-blk-pci,drive=outd
  -drive "file=$RUN/nvme.img,if=none,id=nvm,format=raw" -device nvme,serial=dmalab0001,drive=nvm
  -drive "file=$RUN/sata.img,if=none,id=sata0,format=raw" -device ich9-ahci,id=ahci -device ide-hd,drive=sata0,bus=ahci.0
  -device qemu-xhci,id=xhci
  -drive "file=$RUN/usb.img,if=none,id=usbd,format=raw" -device usb-storage,bus=xhci.0,drive=usbd
  -netdev user,id=n0,restrict=on -device e1000e,netdev=n0
  -device edu,dma_mask=0xffffffff)

# ---- the device tree: dump with the exact options, make PCIe non-coherent, add the pool
qemu-system-aarch64 -machine "$MACHINE,dumpdtb=$RUN/virt.dtb" -accel tcg "${DEVS[@]}" > /dev/null 2>&1 || true
[ -s "$RUN/virt.dtb" ] || { echo "dumpdtb failed" >&2; exit 1; }
dtc -q -I dtb -O dts -o "$RUN/virt.dts" "$RUN/virt.dtb"
python3 - "$RUN/virt.dts" "$RUN/fi.dts" <<'PY'
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
out.append("""
/ {
	reserved-memory {
		#address-cells = <0x02>;
		#size-cells = <0x02>;
		ranges;
		dmafi_pool: dmafi-pool@b0000000 {
			compatible = "shared-dma-pool";
			reg = <0x00 0xb0000000 0x00 0x100000>;
			no-map;
		};
	};
	dmafi {
		compatible = "lab,dmafi-pool-user";
		memory-region = <&dmafi_pool>;
	};
};
""")
open(sys.argv[2], "w").write("\n".join(out))
PY
dtc -q -I dts -O dtb -o "$RUN/fi.dtb" "$RUN/fi.dts"

# shellcheck disable=SC2054
QEMU=(timeout --kill-after=10 "$LAB_TIMEOUT" qemu-system-aarch64 -machine "$MACHINE"
  -accel tcg,thread=multi "${DEVS[@]}" -dtb "$RUN/fi.dtb")
printf '%q ' "${QEMU[@]}" > "$RUN/qemu-cmdline.txt"; echo >> "$RUN/qemu-cmdline.txt"
echo ">> run folder $RUN; booting $K612A (arm64, non-coherent PCIe), console -> $LOGDIR/$NAME.console.log"
T0=$(date +%s.%N)
set +e
"${QEMU[@]}" < /dev/null > "$RUN/console.log" 2>&1
QRC=$?
set -e
WALL=$(echo "$(date +%s.%N) - $T0" | bc)
cp "$RUN/console.log" "$LOGDIR/$NAME.console.log"
echo ">> qemu rc=$QRC wall=${WALL}s"
grep -q LAB-TAR-OK "$RUN/console.log" || { echo "!! guest did not write its tar" >&2; tail -n 30 "$RUN/console.log" >&2; exit 1; }
mkdir -p "$RUN/out"
tar xf "$RUN/out.img" -C "$RUN/out"
{
  cat "$RUN/out/lab-info.txt"
  echo "host_qemu_rc=$QRC"
  echo "host_wall_s=$WALL"
  echo "qemu_cmdline=$(cat "$RUN/qemu-cmdline.txt")"
  echo "device_tree=dumpdtb of the same options; dma-coherent removed from pcie@10000000; reserved-memory dmafi-pool@b0000000 (shared-dma-pool, no-map, 1 MiB) + /dmafi { memory-region }"
  echo "== pci devices"; cat "$RUN/out/pci-devices.txt"
  echo "== ring buffer stats at workload end"; cat "$RUN/out/ringbuffer-stats.txt"
} > "$LOGDIR/$NAME.info.txt"
cp "$RUN/fi.dts" "$LOGDIR/$NAME.dts"
for f in workload.log trace-cmd.log; do
  [ -f "$RUN/out/$f" ] && cp "$RUN/out/$f" "$LOGDIR/$NAME.$f"
done
for f in "$RUN"/out/*; do
  b=$(basename "$f")
  case "$b" in
    lab-info.txt|pci-devices.txt|ringbuffer-stats.txt|cmdline.txt|workload.log|trace-cmd.log) ;;
    trace.dat) cp "$f" "$OUT"; echo ">> $OUT ($(stat -c %s "$OUT") bytes)" ;;
    *) cp "$f" "$OUTDIR/$NAME-$b" ;;
  esac
done
[ "${LAB_KEEP:-0}" = 1 ] || rm -rf "$RUN"
