#!/usr/bin/env bash
# Builds the libFuzzer targets (Fuzz/, with AddressSanitizer) and runs each for SECONDS.
#   Scripts/fuzz.sh [SECONDS] [TARGET...]
# Targets: FuzzTextReader FuzzRecordDecoder FuzzPageReader FuzzAuditConfig FuzzBaseline (default: all).
# Each run starts from the committed seeds (Fuzz/Corpus/TARGET) plus what earlier runs on this
# machine found (.build-fuzz/corpus/TARGET); crashing inputs land in .build-fuzz/artifacts.
# Prints executions, coverage (cov, ft) and crashes per target; exits 1 if any target crashed.
# Environment: FUZZ_JOBS=N runs N targets at once (default 1).
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
seconds=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(FuzzTextReader FuzzRecordDecoder FuzzPageReader FuzzAuditConfig FuzzBaseline)
scratch=$root/.build-fuzz

mkdir -p "$scratch"
echo "== building fuzz targets (swift build -c release --sanitize=fuzzer --sanitize=address)"
# -enable-testing: the targets reach Ingest's internal entry points with @testable import.
# -sanitize-coverage: SwiftPM hands swiftc -sanitize=fuzzer and -sanitize=address as two flags,
# and Swift 6.3 then keeps only the last: without it no Swift code has coverage counters.
swiftflags=(-Xswiftc -enable-testing -Xswiftc -sanitize-coverage=edge,inline-8bit-counters,pc-table,trace-cmp)
if ! swift build --package-path Fuzz --scratch-path "$scratch" -c release "${swiftflags[@]}" \
        --sanitize=fuzzer --sanitize=address > "$scratch/build.log" 2>&1; then
    tail -30 "$scratch/build.log"
    echo "fuzz build failed (full log: $scratch/build.log)" >&2
    exit 2
fi
bin=$(swift build --package-path Fuzz --scratch-path "$scratch" -c release "${swiftflags[@]}" \
        --sanitize=fuzzer --sanitize=address --show-bin-path)

# The harness keeps its own leak checks: LeakSanitizer is on for every input.
export ASAN_OPTIONS="detect_leaks=1:allocator_may_return_null=1"
status=0
run_one() {
    local t=$1
    local corpus=$scratch/corpus/$t artifacts=$scratch/artifacts/$t log=$scratch/logs/$t.log
    mkdir -p "$corpus" "$artifacts" "$(dirname "$log")"
    local flags=()
    [ -f "Fuzz/Dictionaries/$t.dict" ] && flags+=(-dict="Fuzz/Dictionaries/$t.dict")
    # analyze's reader thread is released by Foundation just after the input returns, which the
    # per-input leak check reports at random: off for this target (Scripts/sanitize.sh checks
    # analyze for leaks under the test suite).
    [ "$t" = FuzzTextReader ] && flags+=(-detect_leaks=0)
    # Committed regression inputs first: each once, then the campaign.
    if [ -d "Fuzz/Regressions/$t" ] && ls "Fuzz/Regressions/$t"/* > /dev/null 2>&1; then
        if ! "$bin/$t" -runs=0 "Fuzz/Regressions/$t"/* > "$log.regressions" 2>&1; then
            echo "$t: a committed regression input fails again (see $log.regressions)"
            return 1
        fi
    fi
    local stamp=$scratch/logs/$t.started
    touch "$stamp"
    "$bin/$t" "$corpus" "Fuzz/Corpus/$t" "${flags[@]}" -max_total_time="$seconds" -timeout=60 -rss_limit_mb=2048 \
        -max_len=16384 -print_final_stats=1 -artifact_prefix="$artifacts/" > "$log" 2>&1
    local rc=$?
    local execs cov ft crashes
    execs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | awk '{print $2}' | tail -1)
    cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1 | awk '{print $2}')
    ft=$(grep -oE 'ft: [0-9]+' "$log" | tail -1 | awk '{print $2}')
    crashes=$(find "$artifacts" -type f -newer "$stamp" | wc -l)
    printf '%-18s %4ss  execs %-10s cov %-6s ft %-6s corpus %-5s exit %s  new crash inputs %s\n' "$t" "$seconds" \
        "${execs:-?}" "${cov:-?}" "${ft:-?}" "$(ls "$corpus" | wc -l)" "$rc" "$crashes"
    if [ "$rc" -ne 0 ]; then
        grep -m 3 -E 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|Fatal error|SUMMARY' "$log" | sed 's/^/    /'
        find "$artifacts" -type f -newer "$stamp" | head -3 | sed 's|^|    |'
        return 1
    fi
}

jobs=${FUZZ_JOBS:-1}
pids=()
for t in "${targets[@]}"; do
    if [ ! -x "$bin/$t" ]; then echo "unknown fuzz target '$t'" >&2; exit 2; fi
    run_one "$t" &
    pids+=($!)
    if [ ${#pids[@]} -ge "$jobs" ]; then
        wait "${pids[0]}" || status=1
        pids=("${pids[@]:1}")
    fi
done
for p in "${pids[@]}"; do wait "$p" || status=1; done
exit $status
