#!/bin/bash
# record-live.sh [RUN...]: dma-trace watch and record inside the lab's guests, next to a
# trace-cmd record of the same run (init records the top-level buffer; dma-trace uses its own
# instance), then the comparisons.
#
#   RUN  KERNEL-MODE-BODY, e.g. 6.12-watch-fi 7-record-fi 6.12-watch-io 6.12-faults-fi
#        KERNEL 6.12 | 7 | 6.1 (fetch-kernel-6.1.sh); MODE watch | record | faults |
#        watchstack (trace-cmd also records stacks, -T) | watchstackunload (the same, dmafi
#        unloaded at the end) | pre612 (workload-live.sh);
#        BODY fi (faultinject/workload-faultinject.sh: dmafi's scenarios on QEMU's edu device)
#             io (workloads/short-io-net.sh: nvme, SATA and e1000e, real drivers)
#             nvme (workloads/nvme-4k-loop.sh: a busy NVMe, LIVE_NVME_EVENTS events, default 300000)
#        VARIANT (optional 4th part) plain (default) | iommu | swiotlb, as record.sh's
#        default: 6.12-watch-fi 6.12-record-fi 7-watch-fi 7-record-fi 6.12-watch-io 6.12-faults-fi
#        the gaps of the second session: 6.12-watchstack-fi 7-watchstack-fi 6.1-pre612-io-swiotlb
#
# Environment:
#   LIVE_OUT     results and logs                        (default /work/lab-out/live)
#   DMA_TRACE_STATIC  the guest binary: `swift build -c release --static-swift-stdlib
#                --scratch-path .build-static` (default REPO/.build-static/release/dma-trace)
#   DMA_TRACE    the host binary for the comparisons     (default REPO/.build/debug/dma-trace)
# Each run takes 20 to 60 s under TCG. Outputs: OUT/RUN.dat (trace-cmd's), OUT/RUN-watch.ndjson
# or OUT/RUN-record.dat, OUT/RUN-*.log, OUT/logs/; compare.sh prints the comparison.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LAB=$(cd "$HERE/.." && pwd)
REPO=$(cd "$LAB/../.." && pwd)
export LAB_CACHE=${LAB_CACHE:-/work/lab-cache}
LIVE_OUT=${LIVE_OUT:-/work/lab-out/live}
BIN=${DMA_TRACE_STATIC:-$REPO/.build-static/release/dma-trace}
[ $# -gt 0 ] || set -- 6.12-watch-fi 6.12-record-fi 7-watch-fi 7-record-fi 6.12-watch-io 6.12-faults-fi
mkdir -p "$LIVE_OUT"
if git -C "$LIVE_OUT" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  echo "LIVE_OUT=$LIVE_OUT is inside a git work tree" >&2; exit 1
fi
[ -x "$BIN" ] || { echo "no guest binary $BIN (swift build -c release --static-swift-stdlib --scratch-path .build-static)" >&2; exit 1; }

# The binary and the shared objects ldd lists, at their own paths, as the lab does for trace-cmd.
STAGE=$(mktemp -d)
chmod 755 "$STAGE"   # its mode becomes that of the guest's / (tar x -C /): 0700 locks out the not-root cases
trap 'rm -rf "$STAGE"' EXIT
mkdir -p "$STAGE/usr/bin"
cp "$BIN" "$STAGE/usr/bin/dma-trace"
# util-linux's setpriv for the not-root cases (busybox's cannot change the uid).
cp /usr/bin/setpriv "$STAGE/usr/bin/setpriv"
{ ldd "$BIN"; ldd /usr/bin/setpriv; } | grep -o '/[^ ]*' | sort -u | while read -r lib; do
  mkdir -p "$STAGE$(dirname "$lib")"; cp -L "$lib" "$STAGE$lib"
done
tar cf "$LIVE_OUT/dma-trace-guest.tar" -C "$STAGE" .
kver() { basename "$(readlink -f "$LAB_CACHE/kernels/$1")"; }

for run in "$@"; do
  IFS=- read -r K MODE BODY VARIANT <<< "$run"
  VARIANT=${VARIANT:-plain}
  # Before 6.12 there is no dma system: trace-cmd refuses `-e dma`.
  FLAGS=(-e dma -e swiotlb -e iommu -b 20000)
  [ "$K" = 6.1 ] && FLAGS=(-e swiotlb -e iommu -b 20000)
  KEEP=
  [ "$MODE" = watchstack ] && { FLAGS+=(-T); KEEP="LIVE_KEEP_DMAFI=1"; }
  # The same with dmafi unloaded at the end: only a kallsyms read while it was loaded has it.
  [ "$MODE" = watchstackunload ] && FLAGS+=(-T)
  GENV=
  case "$BODY" in
    fi) B=workload-faultinject.sh; SRC=$LAB/faultinject/workload-faultinject.sh
        QX="-device edu,dma_mask=0xffffffff"; EXTRA="$LAB_CACHE/modules/$(kver "$K")/dmafi.ko" ;;
    io) B=short-io-net.sh; SRC=$LAB/workloads/short-io-net.sh; QX=""; EXTRA="" ;;
    # a busy NVMe for "it keeps up": two O_DIRECT 4 KiB loops, the instance's default buffer
    nvme) B=nvme-4k-loop.sh; SRC=$LAB/workloads/nvme-4k-loop.sh; QX=""; EXTRA=""
          GENV="TARGET_EVENTS=${LIVE_NVME_EVENTS:-300000} MAX_SECONDS=${LIVE_NVME_SECONDS:-90}" ;;
    *) echo "unknown body $BODY in $run" >&2; exit 2 ;;
  esac
  GENV=${GENV:-}
  t0=$SECONDS
  LAB_MEM=2G LAB_TIMEOUT=400 LAB_QEMU_EXTRA="$QX" \
  LAB_GUEST_ENV="LIVE_MODE=$MODE LIVE_BODY=$B $GENV $KEEP" \
  LAB_EXTRA_FILES="$EXTRA $SRC $HERE/live-runner.sh $LIVE_OUT/dma-trace-guest.tar" \
    "$LAB/record.sh" "$K" "$VARIANT" "$HERE/workload-live.sh" "$LIVE_OUT/$run.dat" "${FLAGS[@]}"
  echo ">> $run: $((SECONDS - t0)) s"
done
