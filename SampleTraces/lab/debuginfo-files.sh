#!/bin/bash
# debuginfo-files.sh OUT: the debug-info files the tests resolve stacks with, small.
#
#   OUT/faultinject/modules/KVER/dmafi.ko      dmafi.ko as the lab built and loaded it
#                                              (build-module.sh), for 6.12 and 7
#   OUT/debuginfo/KVER/e1000e.ko.debug         e1000e's debug file from Debian's
#                                              linux-image-KVER-dbg (6.12 only: the package is
#                                              1 GB; it is downloaded once into
#                                              $LAB_CACHE/debs-dbg and only this file extracted)
#
# shrink IN OUT keeps what libdw needs to turn symbol+offset into file:line with inlines:
# the symbol table, the section headers (the module's layout), .modinfo (vermagic),
# .debug_info/abbrev/line/str/line_str/rnglists/aranges (zlib-compressed: libdw reads
# them) and the relocations of those against code sections. Relocations between debug
# sections are applied in place first (eu-strip --reloc-debug-sections-only), code
# relocations, BTF, .debug_frame and .debug_loclists (variable locations) are dropped.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LAB_CACHE=${LAB_CACHE:-/work/lab-cache}
OUT=${1:?usage: debuginfo-files.sh OUT}
command -v eu-strip >/dev/null || { echo "apt-get install elfutils" >&2; exit 1; }

shrink() {
  local in=$1 out=$2 tmp
  tmp=$(mktemp)
  eu-strip --reloc-debug-sections-only -o "$tmp" "$in"
  local drop=()
  while read -r s; do drop+=(-R "$s"); done < <(readelf -S -W "$tmp" \
    | sed -n 's/^ *\[ *[0-9]*\] \([^ ]*\) .*/\1/p' \
    | grep -E '^\.rela' | grep -v -E '^\.rela\.debug_(info|line|aranges|rnglists)$' || true)
  for s in .BTF .BTF.base .debug_frame .rela.debug_frame .debug_loclists .rela.debug_loclists; do
    readelf -S -W "$tmp" | grep -q " $s " && drop+=(-R "$s")
  done
  mkdir -p "$(dirname "$out")"
  objcopy --compress-debug-sections=zlib "${drop[@]}" "$tmp" "$out"
  rm -f "$tmp"
  echo ">> $out: $(stat -c %s "$out") bytes (from $(stat -c %s "$in")), build ID $(readelf -n "$out" | sed -n 's/.*Build ID: //p')"
}

# 1. dmafi.ko for each lab kernel it was built for
for d in "$LAB_CACHE"/modules/*/; do
  kver=$(basename "$d")
  [ -f "$d/dmafi.ko" ] && shrink "$d/dmafi.ko" "$OUT/faultinject/modules/$kver/dmafi.ko"
done

# 2. e1000e from the 6.12 -dbg package (private apt state of fetch-kernels.sh)
KVER=$(basename "$(readlink -f "$LAB_CACHE/kernels/6.12")")
PKG=linux-image-$KVER-dbg
DEBS=$LAB_CACHE/debs-dbg
mkdir -p "$DEBS"
if ! ls "$DEBS/${PKG}"_*.deb >/dev/null 2>&1; then
  A=$LAB_CACHE/apt
  if id _apt >/dev/null 2>&1; then chown _apt "$DEBS"; fi
  (cd "$DEBS" && apt-get -o "Dir::Etc::SourceList=$A/sources.list" -o Dir::Etc::SourceParts=/dev/null \
    -o Dir::Etc::PreferencesParts=/dev/null -o "Dir::State::Lists=$A/lists" -o "Dir::State::status=$A/state/status" \
    -o "Dir::Cache=$A/cache" -o APT::Architecture=amd64 -o APT::Architectures=amd64 -qq download "$PKG")
fi
DEB=$(ls "$DEBS/${PKG}"_*.deb | head -n1)
REL=./usr/lib/debug/lib/modules/$KVER/kernel/drivers/net/ethernet/intel/e1000e/e1000e.ko
X=$(mktemp -d)
dpkg-deb --fsys-tarfile "$DEB" | tar -x -C "$X" "$REL"
shrink "$X/$REL" "$OUT/debuginfo/$KVER/e1000e.ko.debug"
rm -rf "$X"
