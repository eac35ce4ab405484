# shellcheck shell=bash
# lib-host.sh: host-side helpers shared by the lab's scripts; sourced (bash, set -euo pipefail),
# never run. One place for what record.sh, build-initramfs.sh, arm64-run.sh and
# faultinject/arm64.sh all do:
#   lab_run_dirs OUT                NAME, OUTDIR, LOGDIR, RUN (a fresh run folder)
#   mods_for LIST MODULE...         modules into $STAGE, in load order (needs STAGE, KVER, MODROOT)
#   workload_modules WORKLOAD DEF...  a workload's "# lab-modules:" line, or DEF...
#   module_args LIST WORKLOAD       its "# lab-module-args: MODULE ARGS" lines into LIST
#   lab_stage_guest WORKLOAD "EXTRA_FILES" "GUEST_ENV" [record args...]
#                                   guest/init, guest/lib.sh, the workload and /lab/* into $STAGE
#                                   (LAB_NO_KALLSYMS=1: the guest hides /proc/kallsyms from trace-cmd)
#   lab_cpio STAGE OUT.cpio         the initramfs archive
#   lab_boot_collect [DTNOTE [DTS]] runs ${QEMU[@]}, unpacks the guest's tar, writes logs/ and
#                                   the results next to OUT (as record.sh always did)
# arm64 only (arm64-run.sh, faultinject/arm64.sh):
#   arm64_debs_init, apt_opts, apt_state, get_deb   private arm64 apt states and the .deb cache
#   arm64_kernel KERNEL             Debian's arm64 kernel unpacked: KREL, KD (KERNEL 6.12 or 7)
#   arm64_userland                  bookworm's arm64 busybox-static + trace-cmd unpacked: UL
#   arm64_stage_userland            busybox, trace-cmd and its libraries from $UL into $STAGE
#   arm64_dump_dts OUT.dts          the device tree of `-machine $MACHINE ${DEVS[@]}` as dts
#   dts_noncoherent IN OUT [ADD]    IN without dma-coherent in pcie@10000000, plus file ADD
LAB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# ---- run folder and output names (OUT.dat -> NAME; logs next to it)
lab_run_dirs() {
  NAME=$(basename "$1"); NAME=${NAME%.dat}
  mkdir -p "$(dirname "$1")"
  OUTDIR=$(cd "$(dirname "$1")" && pwd)
  LOGDIR=$OUTDIR/logs
  RUN=$LAB_CACHE/runs/$NAME-$(date +%Y%m%d-%H%M%S)
  mkdir -p "$RUN" "$LOGDIR"
}

# ---- initramfs pieces
# Modules: resolve dependencies on the host, decompress into a flat folder, keep order.
# mods_for LISTFILE MODULE...: append "path-in-guest" lines, each module once.
# Uses STAGE, KVER and MODROOT (the folder that holds lib/modules/KVER, for modprobe -d).
SEEN=" "
mods_for() {
  local list=$1; shift
  : > "$list"
  local kind path base dst
  # --show-depends prints "insmod /abs/path.ko.xz [params]" in load order, deps first;
  # "builtin X" lines are for modules compiled into the kernel (nothing to load).
  while read -r kind path _rest; do
    [ "$kind" = insmod ] || continue
    base=$(basename "$path"); base=${base%.xz}; base=${base%.zst}; base=${base%.gz}
    dst=/lib/modules/$KVER/$base
    case "$SEEN" in *" $base "*) ;; *)
      case "$path" in
        *.xz) xz -dc "$path" > "$STAGE$dst" ;;
        *.zst) zstd -qdc "$path" > "$STAGE$dst" ;;
        *.gz) gzip -dc "$path" > "$STAGE$dst" ;;
        *) cp "$path" "$STAGE$dst" ;;
      esac
      SEEN="$SEEN$base " ;;
    esac
    # A module may appear in both lists (scsi_mod); the guest skips loaded ones.
    grep -qx "$dst" "$list" || echo "$dst" >> "$list"
  done < <(/sbin/modprobe -d "$MODROOT" -S "$KVER" --show-depends -a "$@")
}

# workload_modules WORKLOAD DEFAULT...: the traced drivers a workload loads, from its
# "# lab-modules: MOD..." header line (in load order), or DEFAULT... if it has none.
workload_modules() {
  local w=$1 line; shift
  line=$(sed -n 's/^# lab-modules: *//p' "$w" | head -n1)
  if [ -n "$line" ]; then echo "$line"; else echo "$*"; fi
}

# module_args LIST WORKLOAD: each "# lab-module-args: MODULE ARGS..." line of WORKLOAD puts
# ARGS after MODULE's line in LIST (insmod_list passes them to insmod).
module_args() {
  local list=$1 w=$2 mod args
  while read -r mod args; do
    [ -n "$mod" ] || continue
    grep -q "/$mod\.ko\$" "$list" || { echo "lab-module-args: $mod is not in $(basename "$list")" >&2; exit 1; }
    sed -i "s#/$mod\.ko\$#/$mod.ko $args#" "$list"
  done < <(sed -n 's/^# lab-module-args: *//p' "$w")
}

# lab_stage_guest WORKLOAD "EXTRA_FILES" "GUEST_ENV" [record args...]: guest/init +
# guest/lib.sh (the fixed procedure), the workload (what varies), extra files into /lab/,
# the trace-cmd record arguments and the "KEY=VALUE ..." items exported to the workload.
lab_stage_guest() {
  local workload=$1 extra=$2 genv=$3 f kv; shift 3
  cp "$LAB_DIR/guest/init" "$STAGE/init"
  cp "$LAB_DIR/guest/lib.sh" "$STAGE/lab/lib.sh"
  cp "$workload" "$STAGE/lab/workload.sh"
  for f in $extra; do
    [ -f "$f" ] || { echo "LAB_EXTRA_FILES: no file $f" >&2; exit 1; }
    cp "$f" "$STAGE/lab/"
  done
  basename "$workload" > "$STAGE/lab/workload-name"
  chmod 755 "$STAGE/init"
  echo "$*" > "$STAGE/lab/record-args"
  rm -f "$STAGE/lab/no-kallsyms"
  [ "${LAB_NO_KALLSYMS:-0}" != 1 ] || : > "$STAGE/lab/no-kallsyms"
  : > "$STAGE/lab/env"
  for kv in $genv; do
    [[ $kv =~ ^[A-Z_][A-Z0-9_]*=[A-Za-z0-9_./:-]*$ ]] || { echo "bad LAB_GUEST_ENV item: $kv" >&2; exit 1; }
    echo "export $kv" >> "$STAGE/lab/env"
  done
}

# lab_cpio STAGE OUT: newc cpio, root-owned, reproducible order (uncompressed: TCG
# decompression is slow).
lab_cpio() {
  (cd "$1" && find . -mindepth 1 | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0) > "$2"
}

# ---- one QEMU run and its results
# lab_boot_collect [DTNOTE [DTS]]: runs ${QEMU[@]} (console to logs/NAME.console.log), brings
# back /out from the raw output disk: logs/NAME.info.txt (the guest's lab-info, QEMU's exit
# status, wall time, command line, DTNOTE as device_tree= if given, PCI devices, ring-buffer
# statistics), logs/NAME.{workload,trace-cmd}.log, DTS as logs/NAME.dts if given, trace.dat as
# OUT and every other file as OUTDIR/NAME-FILE. Deletes the run folder unless LAB_KEEP=1.
# Uses QEMU, RUN, NAME, OUT, OUTDIR, LOGDIR, LAB_TIMEOUT.
lab_boot_collect() {
  local dtnote=${1:-} dts=${2:-} f b pcil
  printf '%q ' "${QEMU[@]}" > "$RUN/qemu-cmdline.txt"; echo >> "$RUN/qemu-cmdline.txt"
  T0=$(date +%s.%N)
  set +e
  "${QEMU[@]}" < /dev/null > "$RUN/console.log" 2>&1
  QRC=$?
  set -e
  WALL=$(echo "$(date +%s.%N) - $T0" | bc)
  cp "$RUN/console.log" "$LOGDIR/$NAME.console.log"
  [ -z "$dts" ] || cp "$dts" "$LOGDIR/$NAME.dts"
  echo ">> qemu rc=$QRC wall=${WALL}s"
  [ $QRC -eq 124 ] && echo "!! QEMU hit the ${LAB_TIMEOUT}s timeout" >&2
  grep -q LAB-TAR-OK "$RUN/console.log" || { echo "!! guest did not write its tar; see $LOGDIR/$NAME.console.log" >&2; tail -n 30 "$RUN/console.log" >&2; exit 1; }
  mkdir -p "$RUN/out"
  # The raw disk holds a plain tar stream followed by zeros; tar stops at its end marker.
  tar xf "$RUN/out.img" -C "$RUN/out"
  {
    cat "$RUN/out/lab-info.txt"
    echo "host_qemu_rc=$QRC"
    echo "host_wall_s=$WALL"
    echo "qemu_cmdline=$(cat "$RUN/qemu-cmdline.txt")"
    [ -z "$dtnote" ] || echo "device_tree=$dtnote"
    # (a workload's list from before its teardown, when it wrote one: drivers still bound;
    # only workloads/arm64-nvme-net.sh does)
    pcil=$RUN/out/pci-devices.txt; [ -f "$RUN/out/pci-devices-loaded.txt" ] && pcil=$RUN/out/pci-devices-loaded.txt
    echo "== pci devices"; cat "$pcil"
    echo "== ring buffer stats at workload end"; cat "$RUN/out/ringbuffer-stats.txt"
  } > "$LOGDIR/$NAME.info.txt"
  for f in workload.log trace-cmd.log; do
    [ -f "$RUN/out/$f" ] && cp "$RUN/out/$f" "$LOGDIR/$NAME.$f"
  done
  # Bring the results home.
  for f in "$RUN"/out/*; do
    b=$(basename "$f")
    case "$b" in
      lab-info.txt|pci-devices.txt|pci-devices-loaded.txt|ringbuffer-stats.txt|cmdline.txt|workload.log|trace-cmd.log) ;;
      trace.dat) cp "$f" "$OUT"; echo ">> $OUT ($(stat -c %s "$OUT") bytes)" ;;
      trace.dat.cpu*) echo "!! leftover $b: trace-cmd did not finish merging" >&2 ;;
      *) cp "$f" "$OUTDIR/$NAME-$b"; echo ">> $OUTDIR/$NAME-$b ($(stat -c %s "$OUTDIR/$NAME-$b") bytes)" ;;
    esac
  done
  # Everything worth keeping was copied out (results next to OUT, logs to logs/); the run
  # folder holds the disks and a copy of the results.
  if [ "${LAB_KEEP:-0}" != 1 ]; then
    rm -rf "$RUN"
  fi
  echo ">> info: $LOGDIR/$NAME.info.txt"
}

# ---- arm64: kernels and guest userland from Debian .debs (never installed). Caches:
# $LAB_CACHE/kernels-arm64, arm64-userland, debs-arm64, apt-arm64-{trixie,trixie-backports,bookworm}.
arm64_debs_init() {
  command -v qemu-system-aarch64 >/dev/null || { echo "apt-get install qemu-system-arm" >&2; exit 1; }
  command -v dtc >/dev/null || { echo "apt-get install device-tree-compiler" >&2; exit 1; }
  local src=/etc/apt/sources.list.d/debian.sources
  URI=$(awk '/^URIs:/{print $2; exit}' "$src")
  [ -n "$URI" ] || { echo "no URIs: line in $src" >&2; exit 1; }
  KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
  DEBS=$LAB_CACHE/debs-arm64
  mkdir -p "$DEBS"; if id _apt >/dev/null 2>&1; then chown _apt "$DEBS"; fi
}
# private arm64 apt states: trixie (kernel, headers), trixie-backports (7.x) and bookworm
# (guest userland)
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

# arm64_kernel KERNEL: 6.12 (trixie's linux-image-*-arm64) or 7 (trixie-backports' split
# linux-binary-/linux-modules-/linux-base-*-arm64). The release is the amd64 alias's
# (fetch-kernels.sh) with -amd64 replaced by -arm64, unless K612A / K7A name one.
# Sets KREL, KD (kernels-arm64/KREL: vmlinuz, config, root/ with a depmod'ed module tree).
arm64_kernel() {
  local suite vml cfg p kdir=$LAB_CACHE/kernels-arm64 pkgs
  case "$1" in
    6.12) KREL=${K612A:-} suite=trixie ;;
    7) KREL=${K7A:-} suite=trixie-backports ;;
    *) echo "LAB_KERNEL must be 6.12 or 7" >&2; exit 2 ;;
  esac
  if [ -z "$KREL" ]; then
    [ -e "$LAB_CACHE/kernels/$1/.done" ] || "$LAB_DIR/fetch-kernels.sh" > /dev/null
    KREL=$(basename "$(readlink -f "$LAB_CACHE/kernels/$1")" | sed 's/-amd64$/-arm64/')
  fi
  KD=$kdir/$KREL
  if [ ! -e "$KD/.done" ]; then
    rm -rf "$KD"; mkdir -p "$KD/root"
    if [ "$1" = 6.12 ]; then pkgs=("linux-image-$KREL")
    else pkgs=("linux-binary-$KREL" "linux-modules-$KREL" "linux-base-$KREL"); fi
    for p in "${pkgs[@]}"; do dpkg-deb -x "$(get_deb "$suite" "$p")" "$KD/root"; done
    # 6.12: boot/vmlinuz-KVER, boot/config-KVER; 7.x: usr/lib/modules/KVER/{vmlinuz,config}
    vml=$(find "$KD/root/boot/vmlinuz-$KREL" "$KD/root/usr/lib/modules/$KREL/vmlinuz" -maxdepth 0 -type f 2>/dev/null | head -n1 || true)
    cfg=$(find "$KD/root/boot/config-$KREL" "$KD/root/usr/lib/modules/$KREL/config" -maxdepth 0 -type f 2>/dev/null | head -n1 || true)
    [ -n "$vml" ] && [ -n "$cfg" ] || { echo "vmlinuz/config missing for $KREL" >&2; exit 1; }
    /sbin/depmod -b "$KD/root/usr" "$KREL"
    ln -sfn "${vml#"$KD"/}" "$KD/vmlinuz"
    ln -sfn "${cfg#"$KD"/}" "$KD/config"
    touch "$KD/.done"
  fi
  ln -sfn "$KREL" "$kdir/$1"
}

# arm64_userland: bookworm's arm64 busybox-static and trace-cmd 3.1.6 (the host's version)
# with its libraries, unpacked into UL.
arm64_userland() {
  local p
  UL=$LAB_CACHE/arm64-userland
  if [ ! -e "$UL/.done" ]; then
    rm -rf "$UL"; mkdir -p "$UL"
    for p in busybox-static trace-cmd libtraceevent1 libtracefs1 libzstd1 libc6; do
      dpkg-deb -x "$(get_deb bookworm "$p")" "$UL"
    done
    touch "$UL/.done"
  fi
}

# arm64_stage_userland: STAGE's folders (modules under lib/modules/KVER), busybox, trace-cmd
# and the shared objects it needs, transitively (readelf: no arm64 ldd on this host).
find_lib() { find "$UL/lib" "$UL/usr/lib" -name "$1" \( -type f -o -type l \) 2>/dev/null | head -n1; }
arm64_stage_userland() {
  local todo seen f n p rel interp
  mkdir -p "$STAGE"/{bin,sbin,usr/bin,dev,proc,sys,tmp,out,lab,lib/modules/"$KVER"}
  cp "$UL/bin/busybox" "$STAGE/bin/busybox"
  cp "$UL/usr/bin/trace-cmd" "$STAGE/usr/bin/trace-cmd"
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
}

# ---- arm64 device tree
# arm64_dump_dts OUT.dts: QEMU's tree for `-machine $MACHINE` with the run's exact options
# (${DEVS[@]}: same devices, -cpu/-smp/-m) via dumpdtb, as dts. The raw dump is padded to
# 1 MiB and hangs the boot: a tree passed with -dtb is always recompiled with dtc.
arm64_dump_dts() {
  qemu-system-aarch64 -machine "$MACHINE,dumpdtb=$RUN/virt.dtb" -accel tcg "${DEVS[@]}" > /dev/null 2>&1 || true
  [ -s "$RUN/virt.dtb" ] || { echo "dumpdtb failed" >&2; exit 1; }
  dtc -q -I dtb -O dts -o "$1" "$RUN/virt.dtb"
}
# dts_noncoherent IN.dts OUT.dts [ADD.dts]: IN with `dma-coherent` deleted from
# pcie@10000000 only (every PCI device becomes non-coherent), plus ADD's text appended
# after an empty line.
dts_noncoherent() {
  python3 - "$@" <<'PY'
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
if len(sys.argv) > 3:
    out.append("\n" + open(sys.argv[3]).read())
open(sys.argv[2], "w").write("\n".join(out))
PY
}
