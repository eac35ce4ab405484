#!/bin/bash
# remake-all.sh [--dry-run] [--only STEP[,STEP...]] [OUT]: remake every committed sample
# recording that this lab makes, into OUT (default $LAB_OUT or /work/lab-out; never inside
# a git work tree), then print which files to copy into SampleTraces/.
#
#   STEP  lab          record-all.sh: k6.12-stacks.dat, k6.12-lossy.dat, k7.3-tracefs.txt,
#                      k7.3-trace_pipe.txt, MANIFEST-lab.md (about 1.5 min; the big benchmark
#                      trace big-nvme.dat only with LAB_BIG=1: +5 to 6 min, never committed)
#         faultinject  faultinject/record-faultinject.sh: the 7 dmafi recordings, their
#                      MANIFEST.md and the findings comparison (about 3 min; builds dmafi.ko
#                      in a debootstrap chroot the first time: a few minutes more)
#         arm64        record-arm64.sh: arm64-6.12-coherent.dat, arm64-6.12-noncoherent.dat,
#                      arm64-7.3-noncoherent.dat and their MANIFEST.md (about 1.5 min;
#                      LAB_ARM64_7=0 leaves the 7.3 one out)
#         drivers      record-drivers.sh: the drivers/ recordings (e1000, 8139cp, megasas,
#                      sym53c8xx, EHCI, sdhci, HDA, virtio-blk with iommu_platform, vivid;
#                      x86 plain/iommu/swiotlb, arm64 non-coherent) and their MANIFEST.md
#                      (about 10 min)
#   (default: all four, in that order)
#   --dry-run          print the steps (commands and environment), run nothing
#
# Where things go (nothing is written into the repository):
#   OUT/                         record-all.sh's files, OUT/logs/
#   OUT/faultinject/             fault-injection run logs, dmesg, check-findings.{md,json}
#   OUT/faultinject-repo/        the 7 fault-injection .dat + MANIFEST.md (FI_REPO)
#   OUT/arm64/                   the arm64 .dat + MANIFEST.md, OUT/arm64/logs/
#   OUT/drivers/                 the drivers .dat + MANIFEST.md, OUT/drivers/logs/
# Kernels, chroot, modules and run folders: $LAB_CACHE (default /work/lab-cache).
# DMA_TRACE (default /tmp/dma-trace-fi) is the analyzer for the fault-injection comparison;
# if it is missing the comparison is skipped (copy .build/debug/dma-trace there first).
#
# NOT remade (delivered with /work/shared/traces, read-only in SampleTraces/):
# k6.12-nvme-e1000e-ahci-xhci.dat, k6.12-iommu.dat, k6.12-swiotlb.dat,
# k7.3-nvme-e1000e-ahci-xhci.dat, MANIFEST-shared.md.
#
# Exits non-zero if a step failed; the later steps still run.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ST=$(cd "$HERE/.." && pwd)          # SampleTraces/
export LAB_CACHE=${LAB_CACHE:-/work/lab-cache}
DRY=0 STEPS=lab,faultinject,arm64,drivers
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) DRY=1; shift ;;
    --only) STEPS=$2; shift 2 ;;
    --only=*) STEPS=${1#--only=}; shift ;;
    -h|--help) sed -n '2,38p' "$0"; exit 0 ;;
    -*) echo "unknown option $1" >&2; exit 2 ;;
    *) break ;;
  esac
done
OUT=${1:-${LAB_OUT:-/work/lab-out}}
for s in ${STEPS//,/ }; do
  case "$s" in lab|faultinject|arm64|drivers) ;; *) echo "unknown step $s (lab|faultinject|arm64|drivers)" >&2; exit 2 ;; esac
done
want() { case ",$STEPS," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }

if [ $DRY = 0 ]; then
  mkdir -p "$OUT"
  OUT=$(cd "$OUT" && pwd)
fi
if git -C "$(dirname "$OUT")" rev-parse --is-inside-work-tree >/dev/null 2>&1 \
   || { [ -d "$OUT" ] && git -C "$OUT" rev-parse --is-inside-work-tree >/dev/null 2>&1; }; then
  echo "OUT=$OUT is inside a git work tree; choose a folder outside the repository" >&2
  exit 1
fi

BIG=1; [ "${LAB_BIG:-0}" = 1 ] && BIG=0
FI_REPO=$OUT/faultinject-repo
DMA_TRACE=${DMA_TRACE:-/tmp/dma-trace-fi}
FAILED=()
# step NAME ENV... -- CMD...: print it; run it unless --dry-run
step() {
  local name=$1; shift
  local envs=()
  while [ "$1" != -- ]; do envs+=("$1"); shift; done
  shift
  echo
  echo "== step $name"
  echo "   $(printf '%s ' "${envs[@]}")$(printf '%q ' "$@")"
  [ $DRY = 1 ] && return 0
  local t0=$SECONDS
  if env "${envs[@]}" "$@"; then
    echo "== step $name: ok, $((SECONDS - t0)) s"
  else
    echo "!! step $name failed (rc $?), $((SECONDS - t0)) s" >&2
    FAILED+=("$name")
  fi
}

step kernels LAB_CACHE="$LAB_CACHE" -- "$HERE/fetch-kernels.sh"
want lab && step lab LAB_CACHE="$LAB_CACHE" LAB_OUT="$OUT" LAB_SKIP_BIG=$BIG -- "$HERE/record-all.sh"
want faultinject && step faultinject LAB_CACHE="$LAB_CACHE" FI_OUT="$OUT/faultinject" FI_REPO="$FI_REPO" \
  DMA_TRACE="$DMA_TRACE" -- "$HERE/faultinject/record-faultinject.sh"
want arm64 && step arm64 LAB_CACHE="$LAB_CACHE" LAB_OUT="$OUT" LAB_ARM64_7="${LAB_ARM64_7:-1}" -- "$HERE/record-arm64.sh"
want drivers && step drivers LAB_CACHE="$LAB_CACHE" LAB_OUT="$OUT" -- "$HERE/record-drivers.sh"

# ---- what to copy into SampleTraces/
echo
echo "== files to copy into the repository (review them first: sizes, MANIFESTs, analyzer output)"
copy() {  # copy SRC DESTDIR: print the command (and whether SRC exists yet)
  local note=""
  [ $DRY = 1 ] || [ -e "$1" ] || note="   # MISSING"
  echo "cp $(printf '%q' "$1") $(printf '%q' "$2")/$note"
}
if want lab; then
  k6=$(basename "$(readlink -f "$LAB_CACHE/kernels/6.12" 2>/dev/null)" | sed -n 's/^\([0-9]*\.[0-9]*\)\..*/k\1/p')
  k7=$(basename "$(readlink -f "$LAB_CACHE/kernels/7" 2>/dev/null)" | sed -n 's/^\([0-9]*\.[0-9]*\)\..*/k\1/p')
  k6=${k6:-k6.12} k7=${k7:-k7.x}
  for f in "$k6-stacks.dat" "$k6-lossy.dat" "$k7-tracefs.txt" "$k7-trace_pipe.txt" MANIFEST-lab.md; do
    copy "$OUT/$f" "$REPO_ST"
  done
  echo "# (not $OUT/big-nvme.dat: benchmarks only, never committed)"
fi
if want faultinject; then
  for v in x86-6.12-plain x86-6.12-plain-stacks x86-6.12-iommu x86-6.12-swiotlb x86-7.3-plain-stacks \
           x86-7.3-swiotlb arm64-6.12-noncoherent; do
    copy "$FI_REPO/$v.dat" "$REPO_ST/faultinject"
  done
  copy "$FI_REPO/MANIFEST.md" "$REPO_ST/faultinject"
fi
if want arm64; then
  if [ $DRY = 1 ] || ! ls "$OUT"/arm64/arm64-*.dat >/dev/null 2>&1; then
    for n in arm64-6.12-coherent arm64-6.12-noncoherent arm64-7.3-noncoherent; do
      copy "$OUT/arm64/$n.dat" "$REPO_ST/arm64"
    done
  else
    for f in "$OUT"/arm64/arm64-*.dat; do copy "$f" "$REPO_ST/arm64"; done
  fi
  copy "$OUT/arm64/MANIFEST.md" "$REPO_ST/arm64"
fi
if want drivers; then
  if [ $DRY = 1 ] || ! ls "$OUT"/drivers/*.dat >/dev/null 2>&1; then
    for n in x86-6.12-plain x86-6.12-iommu x86-7.3-plain x86-7.3-iommu x86-7.3-swiotlb arm64-6.12-noncoherent arm64-7.3-noncoherent; do
      copy "$OUT/drivers/$n.dat" "$REPO_ST/drivers"
    done
  else
    for f in "$OUT"/drivers/*.dat; do copy "$f" "$REPO_ST/drivers"; done
  fi
  copy "$OUT/drivers/MANIFEST.md" "$REPO_ST/drivers"
fi
echo "# then run the analyzer on the copies and update SampleTraces/README.md if counts changed"

if [ ${#FAILED[@]} -gt 0 ]; then
  printf '!! failed steps: %s\n' "${FAILED[*]}" >&2
  exit 1
fi
