#!/bin/bash
# build-module.sh [KERNEL...]: build dmafi.ko against Debian's linux-headers of each KERNEL.
#
#   KERNEL  an alias or release from $LAB_CACHE/kernels (default: 6.12 7), e.g. 6.12,
#           7, 6.12.117+deb13-amd64. With LAB_ARCH=arm64 the arm64 kernels of
#           arm64.sh ($LAB_CACHE/kernels-arm64) are used and the module is
#           cross-compiled with trixie's gcc-14-aarch64-linux-gnu (host tools from the
#           amd64 linux-kbuild package of the same version).
#
# Result: $LAB_CACHE/modules/KVER/dmafi.ko (plus build.log next to it).
#
# WHY this way (see /work/shared/LAB-NOTES.md):
# - Debian's headers are made for the suite's own gcc (trixie: gcc-14; the 7.x backports
#   are built for trixie too), and the host is bookworm (gcc-12). So the build runs in a
#   `debootstrap --variant=minbase trixie` chroot, cached in $LAB_CACHE/chroot/trixie,
#   created once (about 2 minutes) and reused.
# - The headers are not "installed" with apt in the chroot: linux-headers-6.12.*-amd64
#   depends on the whole linux-image. We download exactly linux-headers-KVER, its
#   -common and linux-kbuild-* (names taken from the package's Depends) with the private
#   apt state of fetch-kernels.sh, and unpack them with dpkg-deb -x into the chroot.
# - 7.x objtool reads /proc: the chroot gets /proc mounted for the build only.
# - The mirror URI comes from /etc/apt/sources.list.d/debian.sources at run time.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LAB_CACHE=${LAB_CACHE:-/work/lab-cache}
LAB_ARCH=${LAB_ARCH:-amd64}
CHROOT=$LAB_CACHE/chroot/trixie
APTDIR=$LAB_CACHE/apt
DEBDIR=$LAB_CACHE/debs
[ "$(id -u)" = 0 ] || { echo "needs root (debootstrap, chroot, mount)" >&2; exit 1; }
command -v debootstrap >/dev/null || { echo "apt-get install debootstrap" >&2; exit 1; }
[ $# -gt 0 ] || set -- 6.12 7

SRC=/etc/apt/sources.list.d/debian.sources
URI=$(awk '/^URIs:/{print $2; exit}' "$SRC")
[ -n "$URI" ] || { echo "no URIs: line in $SRC" >&2; exit 1; }
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg

# ---- 1. the trixie build chroot (once)
if [ ! -e "$CHROOT/.lab-done" ]; then
  echo ">> debootstrap trixie into $CHROOT (once, a few minutes)"
  rm -rf "$CHROOT"; mkdir -p "$CHROOT"
  debootstrap --variant=minbase --keyring="$KEYRING" \
    --include=gcc-14,gcc-14-for-host,make,libc6-dev,libelf1t64,libssl3t64,zlib1g,pahole,kmod,xz-utils \
    trixie "$CHROOT" "$URI" > "$LAB_CACHE/chroot/debootstrap.log" 2>&1 \
    || { tail -n 30 "$LAB_CACHE/chroot/debootstrap.log" >&2; exit 1; }
  touch "$CHROOT/.lab-done"
fi
if [ "$LAB_ARCH" = arm64 ] && [ ! -x "$CHROOT/usr/bin/aarch64-linux-gnu-gcc-14" ]; then
  echo ">> adding the arm64 cross compiler to the chroot"
  # sources.list inside the cache only (it holds the URI); removed again afterwards
  echo "deb [signed-by=$KEYRING] $URI trixie main" > "$CHROOT/etc/apt/sources.list"
  cp "$KEYRING" "$CHROOT$KEYRING" 2>/dev/null || { mkdir -p "$CHROOT$(dirname "$KEYRING")"; cp "$KEYRING" "$CHROOT$KEYRING"; }
  chroot "$CHROOT" apt-get -qq update
  chroot "$CHROOT" env DEBIAN_FRONTEND=noninteractive apt-get -qq install -y --no-install-recommends \
    gcc-14-aarch64-linux-gnu binutils-aarch64-linux-gnu >/dev/null
  rm -f "$CHROOT/etc/apt/sources.list"; chroot "$CHROOT" apt-get clean
fi

# ---- 2. private apt states: amd64 (the one fetch-kernels.sh made) and, for LAB_ARCH=arm64,
# an arm64 one (fetch-arm64.sh made it). The headers come from LAB_ARCH's index; linux-kbuild
# (the host tools: fixdep, modpost, ...) always from amd64's, because they run in the chroot.
# apt_opts DIR ARCH: the options for a private apt state in DIR.
apt_opts() {
  echo "-o Dir::Etc::SourceList=$1/sources.list -o Dir::Etc::SourceParts=/dev/null"
  echo "-o Dir::Etc::PreferencesParts=/dev/null -o Dir::State::Lists=$1/lists"
  echo "-o Dir::State::status=$1/state/status -o Dir::Cache=$1/cache"
  echo "-o APT::Architecture=$2 -o APT::Architectures=$2"
}
# apt_state DIR ARCH: create the state (sources: trixie, trixie-backports) and update once.
apt_state() {
  mkdir -p "$1/lists/partial" "$1/cache/archives/partial" "$1/state"
  [ -e "$1/state/status" ] || : > "$1/state/status"
  if id _apt >/dev/null 2>&1; then chown _apt "$1/lists/partial"; fi
  printf 'deb [signed-by=%s] %s %s main\n' "$KEYRING" "$URI" trixie "$KEYRING" "$URI" trixie-backports \
    > "$1/sources.list"
  # shellcheck disable=SC2046
  ls "$1"/lists/*trixie_InRelease >/dev/null 2>&1 || apt-get $(apt_opts "$1" "$2") -qq update
}
apt_state "$APTDIR" amd64
if [ "$LAB_ARCH" = arm64 ]; then
  AAPT=$LAB_CACHE/apt-arm64-trixie ADEB=$LAB_CACHE/debs-arm64 KDIR=$LAB_CACHE/kernels-arm64
  apt_state "$AAPT" arm64
else
  AAPT=$APTDIR ADEB=$DEBDIR KDIR=$LAB_CACHE/kernels
fi
mkdir -p "$DEBDIR" "$ADEB"
if id _apt >/dev/null 2>&1; then chown _apt "$DEBDIR" "$ADEB"; fi

# get_deb APTDIR ARCH DEBDIR PKG: download PKG's newest .deb into DEBDIR once, print its path.
get_deb() {
  local f
  f=$(ls "$3/${4}"_*.deb 2>/dev/null | head -n1 || true)
  if [ -z "$f" ]; then
    # shellcheck disable=SC2046
    (cd "$3" && apt-get $(apt_opts "$1" "$2") -qq download "$4") >&2
    f=$(ls "$3/${4}"_*.deb | head -n1)
  fi
  echo "$f"
}

# ---- 3. per kernel: headers into the chroot, then the build
for K in "$@"; do
  KD=$KDIR/$K
  [ -e "$KD/.done" ] || { echo "kernel $K not in $KDIR (run fetch-kernels.sh)" >&2; exit 1; }
  KVER=$(basename "$(readlink -f "$KD")")
  HDR=/usr/src/linux-headers-$KVER
  if [ ! -e "$CHROOT$HDR/.lab-done" ]; then
    echo ">> linux-headers for $KVER into the chroot"
    # linux-headers-KVER depends on linux-headers-X-common and linux-kbuild-X: take their
    # exact names from the package's Depends line.
    # shellcheck disable=SC2046
    DEPS=$(apt-cache $(apt_opts "$AAPT" "$LAB_ARCH") show "linux-headers-$KVER" | sed -n 's/^Depends: //p' \
           | head -n1 | tr ',' '\n' | sed 's/^ *//; s/ .*//' | grep -E '^linux-(headers-.*-common.*|kbuild-.*)$' || true)
    for p in "linux-headers-$KVER" $DEPS; do
      case "$p" in
        linux-kbuild-*) d=$(get_deb "$APTDIR" amd64 "$DEBDIR" "$p") ;;
        *) d=$(get_deb "$AAPT" "$LAB_ARCH" "$ADEB" "$p") ;;
      esac
      echo "   unpack $(basename "$d")"; dpkg-deb -x "$d" "$CHROOT"
    done
    [ -e "$CHROOT$HDR/Makefile" ] || { echo "no $HDR/Makefile after unpacking" >&2; exit 1; }
    touch "$CHROOT$HDR/.lab-done"
  fi
  B=/build/dmafi-$KVER
  rm -rf "${CHROOT:?}$B"; mkdir -p "$CHROOT$B"
  cp "$HERE/dmafi.c" "$HERE/Kbuild" "$HERE/Makefile" "$CHROOT$B/"
  OUTD=$LAB_CACHE/modules/$KVER
  mkdir -p "$OUTD"
  # Debian's headers set ARCH and CROSS_COMPILE themselves (.kernelvariables): for the
  # arm64 headers that is aarch64-linux-gnu-gcc-14, the chroot's cross compiler.
  MAKEARGS=(-C "$HDR" M="$B" modules)
  echo ">> building dmafi.ko for $KVER ($LAB_ARCH)"
  mountpoint -q "$CHROOT/proc" || mount -t proc proc "$CHROOT/proc"
  set +e
  chroot "$CHROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
    make "${MAKEARGS[@]}" > "$OUTD/build.log" 2>&1
  rc=$?
  set -e
  umount "$CHROOT/proc"
  if [ $rc -ne 0 ] || [ ! -f "$CHROOT$B/dmafi.ko" ]; then
    cat "$OUTD/build.log" >&2; echo "!! build failed for $KVER" >&2; exit 1
  fi
  grep -E 'warning|error' "$OUTD/build.log" | grep -v 'Skipping BTF' || true
  cp "$CHROOT$B/dmafi.ko" "$OUTD/dmafi.ko"
  echo ">> $OUTD/dmafi.ko ($(stat -c %s "$OUTD/dmafi.ko") bytes, vermagic: $(/sbin/modinfo -F vermagic "$OUTD/dmafi.ko"))"
done
