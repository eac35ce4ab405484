#!/bin/bash
# fetch-kernel-6.1.sh: bookworm's generic 6.1 kernel (before the dma events of 6.12) for
# live-pre612.sh, unpacked the way fetch-kernels.sh unpacks the others: never installed,
# `apt-get download` through the host's own bookworm sources + `dpkg-deb -x`, modules moved
# under usr/lib/modules (bookworm is not usr-merged; build-initramfs.sh looks there), depmod.
#   LAB_CACHE=/work/lab-cache ./fetch-kernel-6.1.sh      -> $LAB_CACHE/kernels/6.1 -> 6.1.0-N-amd64
set -euo pipefail
LAB_CACHE=${LAB_CACHE:-/work/lab-cache}
KDIR=$LAB_CACHE/kernels
DEBDIR=$LAB_CACHE/debs
mkdir -p "$KDIR" "$DEBDIR"
PKG=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-6\.1\.0-[0-9]+-amd64/{print $2; exit}')
[ -n "$PKG" ] || { echo "no linux-image-6.1.0-*-amd64 behind linux-image-amd64 (not bookworm's apt sources?)" >&2; exit 1; }
KVER=${PKG#linux-image-}
dest=$KDIR/$KVER
if [ ! -e "$dest/.done" ]; then
  ls "$DEBDIR/${PKG}"_*.deb >/dev/null 2>&1 || (cd "$DEBDIR" && apt-get -qq download "$PKG")
  rm -rf "$dest"; mkdir -p "$dest/root/usr"
  dpkg-deb -x "$DEBDIR/${PKG}"_*.deb "$dest/root"
  mv "$dest/root/lib" "$dest/root/usr/lib"
  ln -sfn "root/boot/vmlinuz-$KVER" "$dest/vmlinuz"
  ln -sfn "root/boot/config-$KVER" "$dest/config"
  /sbin/depmod -b "$dest/root/usr" "$KVER"
  touch "$dest/.done"
fi
ln -sfn "$KVER" "$KDIR/6.1"
echo ">> 6.1 -> $KVER"
