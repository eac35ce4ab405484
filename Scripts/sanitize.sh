#!/usr/bin/env bash
# The whole test suite under AddressSanitizer (with LeakSanitizer) and under
# ThreadSanitizer, each in its own scratch folder (.build-asan, .build-tsan).
#   Scripts/sanitize.sh [address] [thread]     (default: both)
# Exit status: 0 when every run passed with no sanitizer report, 1 otherwise.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
kinds=("$@")
[ ${#kinds[@]} -eq 0 ] && kinds=(address thread)

# Reports go to files as well as stderr: a child process (the CLI tests' dma-trace, audit
# workers) reports into its own file, which a test that only reads its exit status hides.
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:halt_on_error=1:log_path=$root/.build-asan/reports/asan"
export LSAN_OPTIONS="suppressions=$root/Scripts/sanitizers/lsan.supp:print_suppressions=0"
export TSAN_OPTIONS="halt_on_error=0:second_deadlock_stack=1:log_path=$root/.build-tsan/reports/tsan:suppressions=$root/Scripts/sanitizers/tsan.supp"

# The executable's jemalloc would serve C++ operator new behind the sanitizer's malloc
# (Package.swift): the sanitized builds use the system allocator.
export DMA_TRACE_SYSTEM_MALLOC=1

status=0
for kind in "${kinds[@]}"; do
    case "$kind" in
        address) scratch=.build-asan ;;
        thread) scratch=.build-tsan ;;
        *) echo "unknown sanitizer '$kind' (address, thread)" >&2; exit 2 ;;
    esac
    rm -rf "$scratch/reports"
    mkdir -p "$scratch/reports"
    echo "== swift test --sanitize=$kind --scratch-path $scratch"
    start=$(date +%s)
    swift test --sanitize="$kind" --scratch-path "$scratch" 2>&1 | tee "$scratch/test.log" | grep -E "^(✔|✘|􀢄)? ?Test run|error:|failed|SUMMARY:" | tail -20
    rc=${PIPESTATUS[0]}
    reports=$(ls "$scratch/reports" 2>/dev/null | wc -l)
    echo "   exit $rc, $reports sanitizer report file(s) in $scratch/reports, $(( $(date +%s) - start )) s"
    for f in "$scratch"/reports/*; do
        [ -e "$f" ] || continue
        echo "   -- $f:"; grep -E "SUMMARY|WARNING: ThreadSanitizer|ERROR: AddressSanitizer|ERROR: LeakSanitizer" "$f" | sort | uniq -c | head
    done
    if [ "$rc" -ne 0 ] || [ "$reports" -ne 0 ]; then status=1; fi
done
exit $status
