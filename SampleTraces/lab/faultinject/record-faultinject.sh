#!/bin/bash
# record-faultinject.sh [VARIANT...]: build dmafi.ko, record every fault-injection variant,
# check the files, write SampleTraces/faultinject/MANIFEST.md and compare dma-trace's
# findings with scenarios.json.
#
#   VARIANT  x86-6.12-plain x86-6.12-plain-stacks x86-6.12-iommu x86-6.12-swiotlb
#            x86-7.3-plain x86-7.3-plain-stacks x86-7.3-swiotlb arm64-6.12-noncoherent (default: all
#            of them but x86-7.3-plain, which x86-7.3-plain-stacks contains;
#            FI_ARM64=0 leaves the arm64 one out; it is made by arm64.sh)
#
# Environment:
#   LAB_CACHE   kernels, chroot, modules, run folders     (default /work/lab-cache)
#   FI_OUT      recordings, logs, dmesg, analysis JSON    (default /work/lab-out/faultinject)
#   FI_REPO     where the committed copies go             (default ../../faultinject, i.e.
#               SampleTraces/faultinject next to this lab)
#   DMA_TRACE   the analyzer binary for the comparison    (default /tmp/dma-trace-fi; skipped
#               if missing)
#
# Every variant boots the lab's usual device set (nvme, ahci, xhci + usb-storage, e1000e,
# drivers loaded so their probe-time DMA is in the trace) plus `-device
# edu,dma_mask=0xffffffff`, with 2 GiB of RAM (all of it below 4 GiB, so the plain
# variants have no swiotlb and nothing is bounced for the edu's 32-bit mask), and runs
# workload-faultinject.sh: every dmafi scenario between "FI: begin/end NAME" markers,
# then rmmod. About 20 s per variant under TCG; about 3 minutes for all seven (the first
# run also debootstraps the build chroot and downloads headers: a few minutes more).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LAB=$(cd "$HERE/.." && pwd)
export LAB_CACHE=${LAB_CACHE:-/work/lab-cache}
FI_OUT=${FI_OUT:-/work/lab-out/faultinject}
FI_REPO=${FI_REPO:-$(cd "$LAB/.." && pwd)/faultinject}
DMA_TRACE=${DMA_TRACE:-/tmp/dma-trace-fi}
ALL=(x86-6.12-plain x86-6.12-plain-stacks x86-6.12-iommu x86-6.12-swiotlb x86-7.3-plain-stacks x86-7.3-swiotlb)
[ "${FI_ARM64:-1}" = 1 ] && ALL+=(arm64-6.12-noncoherent)
[ $# -gt 0 ] || set -- "${ALL[@]}"
mkdir -p "$FI_OUT" "$FI_REPO"
if git -C "$FI_OUT" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  echo "FI_OUT=$FI_OUT is inside a git work tree; the run folders and logs stay outside" >&2; exit 1
fi

FAILED=()
fail() { echo "!! CHECK FAILED: $*" >&2; FAILED+=("$*"); }
REC=(-e dma -e swiotlb -e iommu -b 20000)

# 1. the module, once per kernel that is needed
need612=0 need7=0 needarm=0
for v in "$@"; do
  case "$v" in
    x86-6.12-*) need612=1 ;; x86-7.3-*) need7=1 ;; arm64-*) needarm=1 ;;
    *) echo "unknown variant $v" >&2; exit 2 ;;
  esac
done
"$LAB/fetch-kernels.sh" > /dev/null
KS=(); [ $need612 = 1 ] && KS+=(6.12); [ $need7 = 1 ] && KS+=(7)
[ ${#KS[@]} -gt 0 ] && "$HERE/build-module.sh" "${KS[@]}"
kver() { basename "$(readlink -f "$LAB_CACHE/kernels/$1")"; }

# 2. the recordings
for v in "$@"; do
  t0=$SECONDS
  case "$v" in
    arm64-*) "$HERE/arm64.sh" "$FI_OUT/$v.dat" || fail "$v: arm64.sh exited non-zero" ;;
    *)
      case "$v" in
        x86-6.12-*) K=6.12 ;; x86-7.3-*) K=7 ;;
      esac
      case "$v" in
        *-plain) MODE=plain FLAGS=("${REC[@]}") ;;
        *-plain-stacks) MODE=plain FLAGS=(-e dma -e swiotlb -e iommu -T -b 20000) ;;
        *-iommu) MODE=iommu FLAGS=("${REC[@]}") ;;
        *-swiotlb) MODE=swiotlb FLAGS=("${REC[@]}") ;;
      esac
      LAB_MEM=2G LAB_TIMEOUT=300 \
      LAB_QEMU_EXTRA="-device edu,dma_mask=0xffffffff" \
      LAB_EXTRA_FILES="$LAB_CACHE/modules/$(kver $K)/dmafi.ko" \
        "$LAB/record.sh" "$K" "$MODE" "$HERE/workload-faultinject.sh" "$FI_OUT/$v.dat" "${FLAGS[@]}" \
        || fail "$v: record.sh exited non-zero"
      ;;
  esac
  echo ">> $v: $((SECONDS - t0)) s"
  f=$FI_OUT/$v.dat
  [ -f "$f" ] || { fail "$v: no trace"; continue; }
  n=$(grep -c ' 0$' "$FI_OUT/$v-fi-results.txt" || true)
  echo ">> $v: scenarios that returned 0: $n of $(wc -l < "$FI_OUT/$v-fi-results.txt")"
  grep -v ' 0$' "$FI_OUT/$v-fi-results.txt" | sed 's/^/   non-zero: /' || true
  sz=$(stat -c %s "$f")
  [ "$sz" -lt 3000000 ] || fail "$v.dat is $sz bytes (limit 3 MB)"
  lost=$(trace-cmd report "$f" 2>/dev/null | grep -c -E '^CPU:[0-9]+ \[' || true)
  [ "$lost" -eq 0 ] || fail "$v.dat has $lost lost-event lines"
  cp "$f" "$FI_REPO/$v.dat"
done
tot=$(cat "$FI_REPO"/*.dat | wc -c)
echo ">> $FI_REPO: $tot bytes in $(ls "$FI_REPO"/*.dat | wc -l) recordings"
[ "$tot" -lt 20000000 ] || fail "recordings add up to $tot bytes (limit 20 MB)"

# 3. MANIFEST.md for every recording present in FI_REPO
"$HERE/manifest.sh" "$FI_OUT" "$FI_REPO"

# 4. the comparison with scenarios.json
if [ -x "$DMA_TRACE" ]; then
  ARGS=()
  for f in "$FI_REPO"/*.dat; do b=$(basename "$f" .dat); ARGS+=("$b=$f"); done
  python3 "$HERE/check-findings.py" --dma-trace "$DMA_TRACE" --json "$FI_OUT/check-findings.json" \
    "${ARGS[@]}" | tee "$FI_OUT/check-findings.md"
else
  echo ">> $DMA_TRACE missing: comparison skipped (cp .build/debug/dma-trace there)"
fi

if [ ${#FAILED[@]} -gt 0 ]; then
  printf '!! failed: %s\n' "${FAILED[@]}" >&2
  exit 1
fi
