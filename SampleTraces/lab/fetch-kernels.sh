#!/bin/bash
# fetch-kernels.sh: download and unpack Debian's generic amd64 kernels for the lab.
#
#   LAB_CACHE=/work/lab-cache ./fetch-kernels.sh            # newest 6.12.* and newest 7.x
#   K612=6.12.117+deb13-amd64 K7=7.3.4+deb13-amd64 ./fetch-kernels.sh   # pin versions
#
# Result, per kernel release KVER:
#   $LAB_CACHE/kernels/KVER/root/            the unpacked packages (boot/, lib/modules/KVER/, ...)
#   $LAB_CACHE/kernels/KVER/vmlinuz          -> root/boot/vmlinuz-KVER
#   $LAB_CACHE/kernels/KVER/config           -> root/boot/config-KVER
#   $LAB_CACHE/kernels/6.12 and .../7        symlinks to the chosen KVER (aliases for record.sh)
#
# WHY this way:
# - The kernels are never installed on the host: `apt-get download` + `dpkg-deb -x` only.
#   Installing would run maintainer scripts, touch /boot and the host's dpkg database.
# - The host's apt sources name bookworm only. The same mirror also carries trixie
#   (linux-image-6.12.*) and trixie-backports (7.x, split into linux-binary-, linux-modules-,
#   linux-base-). We use a private sources list + state folder under $LAB_CACHE so the
#   host's apt state is untouched, and we read the mirror URI from the host's
#   debian.sources at run time so no host name is ever written into a file of this repo.
# - Generic -amd64 flavour, not -cloud-amd64: the cloud flavour lacks e1000e, ahci, ...
#
# Takes about 1 to 2 minutes (about 230 MB of downloads) the first time; a no-op after.
set -euo pipefail

LAB_CACHE=${LAB_CACHE:-/work/lab-cache}
APTDIR=$LAB_CACHE/apt
KDIR=$LAB_CACHE/kernels
DEBDIR=$LAB_CACHE/debs
mkdir -p "$APTDIR/lists/partial" "$APTDIR/cache/archives/partial" "$APTDIR/state" "$KDIR" "$DEBDIR"
# apt downloads as the unprivileged _apt user when it can write the target folder;
# give it the download folder so apt keeps its sandbox (and does not warn).
if id _apt >/dev/null 2>&1; then chown _apt "$DEBDIR" "$APTDIR/lists/partial"; fi
# An empty dpkg status: apt must not think anything is installed (or consult the host's).
[ -e "$APTDIR/state/status" ] || : > "$APTDIR/state/status"

# The mirror URI, taken from the host's deb822 sources file (first URIs: line = main archive).
SRC=/etc/apt/sources.list.d/debian.sources
URI=$(awk '/^URIs:/{print $2; exit}' "$SRC")
[ -n "$URI" ] || { echo "no URIs: line in $SRC" >&2; exit 1; }
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg

# Regenerated on every run (it contains the URI, and lives in the cache, not the repo).
cat > "$APTDIR/sources.list" <<EOF
deb [signed-by=$KEYRING] $URI trixie main
deb [signed-by=$KEYRING] $URI trixie-backports main
EOF

# Every apt call goes through these options: private sources, lists, status, cache;
# no host preferences (pins) and an explicit architecture.
APTOPT=(
  -o "Dir::Etc::SourceList=$APTDIR/sources.list"
  -o "Dir::Etc::SourceParts=/dev/null"
  -o "Dir::Etc::PreferencesParts=/dev/null"
  -o "Dir::State::Lists=$APTDIR/lists"
  -o "Dir::State::status=$APTDIR/state/status"
  -o "Dir::Cache=$APTDIR/cache"
  -o "APT::Architecture=amd64"
  -o "APT::Architectures=amd64"
)

echo ">> apt-get update (private lists in $APTDIR)"
apt-get "${APTOPT[@]}" -qq update

# All package names known to the private index (only names, nothing is downloaded here).
names() { apt-cache "${APTOPT[@]}" pkgnames "$1" | sort -u; }

# Newest 6.12 generic kernel in trixie: linux-image-6.12.N+deb13-amd64 (one package
# containing vmlinuz, config and modules).
if [ -z "${K612:-}" ]; then
  K612=$(names linux-image-6.12. | sed -n 's/^linux-image-\(6\.12\.[0-9]*+deb[0-9]*-amd64\)$/\1/p' \
         | sort -V | tail -n1)
fi
# Newest 7.x in trixie-backports that is split into binary + modules + base packages.
if [ -z "${K7:-}" ]; then
  K7=$(comm -12 \
        <(names linux-binary-7. | sed -n 's/^linux-binary-\(7\.[0-9.]*+deb[0-9]*-amd64\)$/\1/p' | sort) \
        <(names linux-modules-7. | sed -n 's/^linux-modules-\(7\.[0-9.]*+deb[0-9]*-amd64\)$/\1/p' | sort) \
       | sort -V | tail -n1)
fi
if [ -z "$K612" ] || [ -z "$K7" ]; then
  echo "could not find kernels (6.12: '$K612', 7.x: '$K7')" >&2; exit 1
fi
echo ">> 6.12 kernel: $K612"
echo ">> 7.x  kernel: $K7"

# fetch_unpack KVER ALIAS PKG...: download PKGs (if not cached) and unpack them into one tree.
fetch_unpack() {
  local kver=$1 alias=$2; shift 2
  local dest=$KDIR/$kver
  if [ -e "$dest/.done" ]; then
    echo ">> $kver already unpacked in $dest"
  else
    rm -rf "$dest"; mkdir -p "$dest/root"
    local pkg deb
    for pkg in "$@"; do
      # apt-get download writes into the current directory; it verifies the hash
      # against the signed index.
      if ! ls "$DEBDIR/${pkg}"_*.deb >/dev/null 2>&1; then
        echo ">> downloading $pkg"
        (cd "$DEBDIR" && apt-get "${APTOPT[@]}" -qq download "$pkg")
      fi
      for deb in "$DEBDIR/${pkg}"_*.deb; do
        echo ">> unpacking $(basename "$deb")"
        dpkg-deb -x "$deb" "$dest/root"
      done
    done
    # 6.12 keeps them as boot/vmlinuz-KVER and boot/config-KVER; the 7.x split packages
    # as usr/lib/modules/KVER/vmlinuz and .../config. Accept either.
    local vml cfg
    vml=$(find "$dest/root/boot/vmlinuz-$kver" "$dest/root/usr/lib/modules/$kver/vmlinuz" \
             -maxdepth 0 -type f 2>/dev/null | head -n1 || true)
    cfg=$(find "$dest/root/boot/config-$kver" "$dest/root/usr/lib/modules/$kver/config" \
             -maxdepth 0 -type f 2>/dev/null | head -n1 || true)
    if [ -z "$vml" ] || [ -z "$cfg" ]; then echo "vmlinuz/config missing for $kver" >&2; exit 1; fi
    ln -sfn "${vml#"$dest"/}" "$dest/vmlinuz"
    ln -sfn "${cfg#"$dest"/}" "$dest/config"
    [ -d "$dest/root/usr/lib/modules/$kver/kernel" ] \
      || { echo "modules missing for $kver (expected usr/lib/modules/$kver)" >&2; exit 1; }
    # The packages ship no modules.dep: Debian's postinst runs depmod, and we never run
    # maintainer scripts. Generate it with the host's depmod (kmod 30 reads .ko.xz) so
    # build-initramfs.sh can resolve dependencies with `modprobe -d ... --show-depends`.
    /sbin/depmod -b "$dest/root/usr" "$kver"
    touch "$dest/.done"
  fi
  ln -sfn "$kver" "$KDIR/$alias"
  echo ">> $alias -> $kver: $(grep -E '^(# )?CONFIG_DMA_API_DEBUG[ =]' "$dest/config" || echo 'CONFIG_DMA_API_DEBUG not in config')"
}

fetch_unpack "$K612" 6.12 "linux-image-$K612"
fetch_unpack "$K7" 7 "linux-binary-$K7" "linux-modules-$K7" "linux-base-$K7"
echo ">> done: 6.12 -> $(readlink "$KDIR/6.12"), 7 -> $(readlink "$KDIR/7")"
