#!/bin/bash
# record-perf.sh [RUN...]: the perf recordings of SampleTraces/perf/.
#
# Each RUN is ONE boot in which `perf record` and `trace-cmd record` trace the same workload
# at the same time. They do not share a buffer: trace-cmd reads ftrace's ring buffer, perf
# its own perf_event buffers, and every tracepoint hit goes to both. So the two files hold
# the same events, and any difference between them is the tool's (or a lost event's).
#
#   RUN  fi-6.12-plain     dmafi fault injection, 6.12, dma-direct          (perf -a)
#        fi-6.12-plain-g   the same with callchains                          (perf -a -g)
#        fi-6.12-swiotlb   dmafi under swiotlb=force (syncs and bounces)     (perf -a)
#        fi-6.12-iommu     dmafi under intel-iommu (iommu:map/unmap)         (perf -a)
#        fi-7.3-plain      dmafi on 7.3 (dma_map_phys)                       (perf -a)
#        io-6.12-plain     workloads/short-io-net.sh: nvme, ahci, xhci, e1000e (perf -a)
#        lossy-6.12        workloads/io-heavy.sh with perf -m 1 and perf reniced behind two
#                          CPU hogs, no trace-cmd: perf loses events. Only the first 400 lines
#                          of `perf script --show-lost-events` are kept (lossy-6.12.head.txt)
#        (default: all of them)
#
# perf: bookworm's linux-perf 6.1 (the host's /usr/bin/perf and the libraries ldd lists, put
# into the initramfs by build-initramfs.sh through LAB_PERF_ARGS), recording
#     perf record -e 'dma:*' -e 'swiotlb:*' -e 'iommu:*' -e ftrace:print -e printk:console -a -k mono [-g]
# -k mono: perf's default clock (local_clock) is per CPU; under QEMU TCG an unmap on one CPU
# was stamped before its map on the other (false double-unmap errors). CLOCK_MONOTONIC is one
# clock for all CPUs.
# ftrace:print is in the list to show what it does: perf accepts it, but trace_marker writes
# go straight into ftrace's buffer and never reach perf (no sample). The workload's markers
# are also written to /dev/kmsg (LAB_MARKER_KMSG=1), which printk:console records.
#
# Per RUN, in OUT (default /work/lab-out/perf; SampleTraces/perf/ gets copies of the results):
#   RUN.perf.data        what perf recorded
#   RUN.perf.txt         `perf script` (default fields; -g: --max-stack 12) run in the guest
#                        after recording, where the modules' .ko files give perf their symbols
#   RUN.trace-cmd.txt    `trace-cmd report` of the same run's trace.dat (the reference)
#   RUN.dat, RUN-kallsyms, logs/   stay in OUT only (trace.dat is 1.5 MB, mostly kallsyms)
# and SampleTraces/perf/MANIFEST.md (command lines, counts per event and per device for both
# tools, what ftrace:print gave). About 40 s per RUN under TCG.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export LAB_CACHE=${LAB_CACHE:-/work/lab-cache}
OUT=${PERF_OUT:-/work/lab-out/perf}
REPO=${PERF_REPO:-$(cd "$HERE/.." && pwd)/perf}
ALL=(fi-6.12-plain fi-6.12-plain-g fi-6.12-swiotlb fi-6.12-iommu fi-7.3-plain io-6.12-plain lossy-6.12)
[ $# -gt 0 ] || set -- "${ALL[@]}"
mkdir -p "$OUT" "$REPO"
if git -C "$OUT" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  echo "PERF_OUT=$OUT is inside a git work tree; run folders and logs stay outside" >&2; exit 1
fi
command -v perf >/dev/null || { echo "perf missing: apt-get install linux-perf" >&2; exit 1; }
"$HERE/fetch-kernels.sh" > /dev/null
kver() { basename "$(readlink -f "$LAB_CACHE/kernels/$1")"; }

PERF_EVENTS="-e dma:* -e swiotlb:* -e iommu:* -e ftrace:print -e printk:console -a -k mono -N"
# -C mono: ftrace's default clock ("local") is per CPU too: in one run it gave an unmap on
# vCPU 0 and its map on vCPU 1 the same microsecond, the unmap first. (Each tool stamps an
# event itself, so one event's times still differ by microseconds between the two files.)
TC=(-e dma -e swiotlb -e iommu -b 20000 -C mono)
FAILED=()
fail() { echo "!! CHECK FAILED: $*" >&2; FAILED+=("$*"); }

for r in "$@"; do
  K=6.12 MODE=plain WL=$HERE/faultinject/workload-faultinject.sh PA=$PERF_EVENTS PS=

  case "$r" in
    fi-6.12-plain) ;;
    # 12 frames reach past the driver's call into the block/net core; deeper ones (syscall
    # entry, workqueue) only add size.
    fi-6.12-plain-g) PA="$PERF_EVENTS -g" PS="--max-stack 12" ;;
    fi-6.12-swiotlb) MODE=swiotlb ;;
    fi-6.12-iommu) MODE=iommu ;;
    fi-7.3-plain) K=7 ;;
    io-6.12-plain) WL=$HERE/workloads/short-io-net.sh ;;
    lossy-6.12)
      t0=$SECONDS
      env LAB_MEM=3G LAB_TIMEOUT=500 LAB_PERF_ARGS="-e dma:* -e swiotlb:* -e iommu:* -a -k mono -N -m 1" \
        LAB_GUEST_ENV="LAB_MARKER_KMSG=1 READERS=perf" \
        "$HERE/record.sh" 6.12 plain "$HERE/workloads/io-heavy.sh" "$OUT/$r.dat" --no-record \
        || { fail "$r: record.sh exited non-zero"; continue; }
      echo ">> $r: $((SECONDS - t0)) s"
      perf script --show-lost-events -i "$OUT/$r-perf.data" 2>/dev/null | head -n 400 > "$REPO/$r.head.txt"
      grep -q PERF_RECORD_LOST "$REPO/$r.head.txt" || fail "$r: nothing lost in the first 400 lines"
      continue ;;
    *) echo "unknown run $r" >&2; exit 2 ;;
  esac
  extra=() mem=3G
  if [[ $r == fi-* ]]; then
    # as faultinject/record-faultinject.sh: 2 GiB (no swiotlb on plain), the edu device, dmafi
    build=("$HERE/faultinject/build-module.sh" "$K")
    [ -f "$LAB_CACHE/modules/$(kver $K)/dmafi.ko" ] || "${build[@]}"
    mem=2G
    extra=(LAB_QEMU_EXTRA="-device edu,dma_mask=0xffffffff" LAB_EXTRA_FILES="$LAB_CACHE/modules/$(kver $K)/dmafi.ko")
  fi
  t0=$SECONDS
  mkdir -p "$OUT/logs"; echo "$PA" > "$OUT/logs/$r.perf-args"; echo "$PS" > "$OUT/logs/$r.perf-script-args"
  env LAB_MEM=$mem LAB_TIMEOUT=400 LAB_PERF_ARGS="$PA" LAB_PERF_SCRIPT_ARGS="$PS" LAB_GUEST_ENV="LAB_MARKER_KMSG=1" "${extra[@]}" \
    "$HERE/record.sh" "$K" "$MODE" "$WL" "$OUT/$r.dat" "${TC[@]}" || { fail "$r: record.sh exited non-zero"; continue; }
  echo ">> $r: $((SECONDS - t0)) s"
  [ -f "$OUT/$r-perf.data" ] || { fail "$r: no perf.data"; continue; }
  mv "$OUT/$r-perf.data" "$OUT/$r.perf.data"
  # perf script ran in the guest (guest/init), where it finds the modules' symbols.
  [ -s "$OUT/$r-perf-script.txt" ] || { fail "$r: no perf script output from the guest"; continue; }
  mv "$OUT/$r-perf-script.txt" "$OUT/$r.perf.txt"
  trace-cmd report "$OUT/$r.dat" > "$OUT/$r.trace-cmd.txt" 2>/dev/null || fail "$r: trace-cmd report failed"
  for f in perf.data perf.txt trace-cmd.txt; do
    sz=$(stat -c %s "$OUT/$r.$f")
    [ "$sz" -lt 1000000 ] || fail "$r.$f is $sz bytes (limit 1 MB)"
    cp "$OUT/$r.$f" "$REPO/$r.$f"
  done
done

tot=$(cat "$REPO"/* | wc -c)
echo ">> $REPO: $tot bytes"
[ "$tot" -lt 3000000 ] || fail "SampleTraces/perf adds up to $tot bytes (limit 3 MB)"
"$HERE/perf-manifest.sh" "$OUT" "$REPO" > "$REPO/MANIFEST.md"
if [ ${#FAILED[@]} -gt 0 ]; then
  printf '!! failed: %s\n' "${FAILED[@]}" >&2
  exit 1
fi
