#!/bin/bash
# record-all.sh: remake the lab recordings, check each one, and write MANIFEST-lab.md.
#
#   ./record-all.sh                 all four (about 8 minutes; the big one takes 5 to 6)
#   LAB_SKIP_BIG=1 ./record-all.sh  only the small ones (about 1.5 minutes)
#   LAB_OUT=/somewhere ./record-all.sh   (default /work/lab-out; never inside a git work tree)
#
# Recordings (file names take the kernel's major.minor, e.g. k6.12 / k7.3):
#   1. kA.B-stacks.dat      6.12 plain, `-e dma -e swiotlb -e iommu -T`, short workload
#                           (kernel stack per event), must stay under 3 MB
#   2. kA.B-lossy.dat       6.12 plain, `-b 8` (tiny per-CPU buffer) + I/O-heavy workload
#                           with CPU hogs, must show "EVENTS DROPPED", under 3 MB
#   3. kC.D-tracefs.txt     7.x plain, no trace-cmd: `cat trace` after a short workload,
#      kC.D-trace_pipe.txt  and `cat trace_pipe` during a second one; under 2 MB each
#   4. big-nvme.dat         6.12 plain, 4 to 5 minutes of 4 KiB O_DIRECT I/O on nvme with
#                           `-b 200000`: 4.3 M+ events, nothing lost. Benchmarks only:
#                           NEVER commit it (it stays outside the repository on purpose).
# After each: `trace-cmd report | head`, `| wc -l`, `--stat` on the console, and a
# manifest entry (describe.sh). Exits non-zero if a check failed (all are still attempted).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export LAB_CACHE=${LAB_CACHE:-/work/lab-cache}
LAB_OUT=${LAB_OUT:-/work/lab-out}
MANIFEST=$LAB_OUT/MANIFEST-lab.md
mkdir -p "$LAB_OUT"
# WHY: the big trace must never end up in a commit; refuse any output folder in a repo.
if git -C "$LAB_OUT" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  echo "LAB_OUT=$LAB_OUT is inside a git work tree; choose a folder outside the repository" >&2
  exit 1
fi

"$HERE/fetch-kernels.sh"
short() { basename "$(readlink -f "$LAB_CACHE/kernels/$1")" | sed -n 's/^\([0-9]*\.[0-9]*\)\..*/k\1/p'; }
K6=$(short 6.12)
K7=$(short 7)

FAILED=()
TIMES=()
fail() { echo "!! CHECK FAILED: $*" >&2; FAILED+=("$*"); }

# check_dat FILE MAXBYTES: the checks asked for on every trace.dat, plus the size limit.
check_dat() {
  local f=$1 max=$2
  echo ">> trace-cmd report $f | head"
  trace-cmd report "$f" 2>/dev/null | head || true
  echo ">> trace-cmd report $f | wc -l: $(trace-cmd report "$f" 2>/dev/null | wc -l)"
  echo ">> trace-cmd report --stat $f"
  trace-cmd report --stat "$f"
  if [ "$max" -gt 0 ] && [ "$(stat -c %s "$f")" -ge "$max" ]; then
    fail "$f is $(stat -c %s "$f") bytes, limit $max"
  fi
}

# timed NAME CMD...: run one recording and remember how long it took.
timed() {
  local name=$1; shift
  local t0=$SECONDS
  if "$@"; then :; else fail "$name: record.sh exited non-zero"; fi
  TIMES+=("$name: $((SECONDS - t0)) s")
}

# 1. kernel stacks. -b 20000 (KB per CPU) as in MANIFEST.md: nothing is lost.
timed "$K6-stacks" "$HERE/record.sh" 6.12 plain "$HERE/workloads/short-io-net.sh" \
  "$LAB_OUT/$K6-stacks.dat" -e dma -e swiotlb -e iommu -T -b 20000
check_dat "$LAB_OUT/$K6-stacks.dat" 3000000
"$HERE/describe.sh" "$LAB_OUT/$K6-stacks.dat" "$MANIFEST" > /dev/null

# 2. lossy: -b 8 asks for 8 KB per CPU (the kernel rounds up to a few pages).
timed "$K6-lossy" "$HERE/record.sh" 6.12 plain "$HERE/workloads/io-heavy.sh" \
  "$LAB_OUT/$K6-lossy.dat" -e dma -e swiotlb -e iommu -b 8
check_dat "$LAB_OUT/$K6-lossy.dat" 3000000
n=$(trace-cmd report "$LAB_OUT/$K6-lossy.dat" 2>/dev/null | grep -c 'EVENTS DROPPED' || true)
echo ">> EVENTS DROPPED lines: $n"
[ "$n" -gt 0 ] || fail "$K6-lossy.dat lost nothing"
"$HERE/describe.sh" "$LAB_OUT/$K6-lossy.dat" "$MANIFEST" > /dev/null

# 3. tracefs text, no trace-cmd (record.sh names the files $K7-tracefs.txt, $K7-trace_pipe.txt).
timed "$K7-tracefs" "$HERE/record.sh" 7 plain "$HERE/workloads/tracefs-text.sh" \
  "$LAB_OUT/$K7.dat" --no-record
for f in "$LAB_OUT/$K7-tracefs.txt" "$LAB_OUT/$K7-trace_pipe.txt"; do
  if [ -f "$f" ]; then
    echo ">> head $f"; head -n 15 "$f"; echo ">> wc -l $f: $(wc -l < "$f")"
    [ "$(stat -c %s "$f")" -lt 2000000 ] || fail "$f is over 2 MB"
    "$HERE/describe.sh" "$f" "$MANIFEST" > /dev/null
  else
    fail "$f missing"
  fi
done

# 4. the big one. 6 GB guest RAM: trace-cmd keeps ~330 MB of per-CPU data in the guest's
# tmpfs before merging; the 2 GiB output disk takes the tar of the ~20 MB result easily.
# -b 200000 (KB per CPU): generous on purpose. The readers' splice() waits until the
# buffer is buffer_percent (default 50) full, so about half of any buffer is always unread
# (--stat shows 700 k "entries" per CPU with -b 100000, 1.4 M with -b 200000) and is
# flushed when trace-cmd stops; the free half absorbs bursts while the readers, sharing
# 2 vCPUs with two dd loops under TCG, get around to it. Nothing was lost with either size.
if [ "${LAB_SKIP_BIG:-0}" != 1 ]; then
  timed big-nvme env LAB_MEM=6G LAB_OUT_MB=2048 LAB_TIMEOUT=1200 \
    "$HERE/record.sh" 6.12 plain "$HERE/workloads/nvme-4k-loop.sh" \
    "$LAB_OUT/big-nvme.dat" -e dma -e swiotlb -e iommu -b 200000
  check_dat "$LAB_OUT/big-nvme.dat" 0
  n=$(trace-cmd report "$LAB_OUT/big-nvme.dat" 2>/dev/null | grep -c -E '^CPU:[0-9]+ \[' || true)
  [ "$n" -eq 0 ] || fail "big-nvme.dat has $n lost-event lines"
  "$HERE/describe.sh" "$LAB_OUT/big-nvme.dat" "$MANIFEST" > /dev/null
fi

echo ">> host wall-clock time per recording (initramfs build + QEMU run + unpacking; checks not included):"
printf '   %s\n' "${TIMES[@]}"
echo ">> manifest: $MANIFEST"
ls -l "$LAB_OUT"
if [ ${#FAILED[@]} -gt 0 ]; then
  printf '!! failed: %s\n' "${FAILED[@]}" >&2
  exit 1
fi
