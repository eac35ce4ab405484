#!/usr/bin/env bash
# Times dma-trace against a bare libtracecmd iteration and `trace-cmd report` on the
# same trace in trace.dat v6 (flat pages) and v7 (compressed), all in one run, and prints
# wall time, events per second, peak RSS, the ratios issue 13 asks for, peak RSS minus
# the bare iteration's, and audit's per-trace overhead.
#
# Usage: Scripts/bench.sh FILE.dat [V6.dat] [RUNS]
#   FILE.dat  any trace.dat (the lab's big-nvme.dat: SampleTraces/lab, LAB_BIG=1)
#   V6.dat    the same trace as v6; default: made from FILE with `trace-cmd convert`
#   RUNS      rounds: each command runs once a round, its best kept (default 3)
# BENCH_BEFORE=/path/to/an/older/dma-trace adds its events --count and analyze rows, so a
# change is measured before and after in the same run.
# Outputs go to $BENCH_OUT (default bench-out/, ignored by git).
# Numbers from a shared machine are noisy: the load average is printed with them.
set -euo pipefail
file=${1:?usage: Scripts/bench.sh FILE.dat [V6.dat] [RUNS]}
v6=${2:-}
runs=${3:-3}
cd "$(dirname "$0")/.."
[ -x /usr/bin/time ] || { echo "bench.sh: needs /usr/bin/time (apt-get install time)" >&2; exit 2; }
out=${BENCH_OUT:-bench-out}
mkdir -p "$out"
# Linked as users should build it for speed: the Swift runtime statically (direct calls to
# retain and release instead of through the PLT: 7-10% of analyze's time).
swift build -c release --static-swift-stdlib >/dev/null
bin=$PWD/.build/release/dma-trace
cc -O2 -o "$out/bare-iterate" Scripts/bare-iterate.c $(pkg-config --cflags --libs libtracecmd libtraceevent)

version() { head -c 12 "$1" | tail -c 2 | tr -d '\0'; }
if [ -z "$v6" ]; then
    v6=$out/$(basename "$file" .dat)-v6.dat
    [ -s "$v6" ] || trace-cmd convert --file-version 6 -i "$file" -o "$v6" >/dev/null 2>&1
fi
v7=$file
if [ "$(version "$file")" = 6 ]; then
    v7=$out/$(basename "$file" .dat)-v7.dat
    [ -s "$v7" ] || trace-cmd convert --file-version 7 --compression zstd -i "$file" -o "$v7" >/dev/null 2>&1
fi

# best wall time (s) and largest peak RSS (KiB) of a command over $runs runs
measure() {
    local best="" rss=0
    for _ in $(seq "$runs"); do
        /usr/bin/time -f "%e %M" -o "$out/time.txt" "$@" >/dev/null 2>"$out/stderr.txt" || {
            echo "bench.sh: failed: $*" >&2; cat "$out/stderr.txt" >&2; exit 2; }
        read -r t m < "$out/time.txt"
        if [ -z "$best" ] || awk "BEGIN{exit !($t < $best)}"; then best=$t; fi
        [ "$m" -gt "$rss" ] && rss=$m
    done
    echo "$best $rss"
}
# One run of a command, keeping its best wall time in T[key] and largest peak RSS in M[key].
run_once() {
    local key=$1; shift
    /usr/bin/time -f "%e %M" -o "$out/time.txt" "$@" >/dev/null 2>"$out/stderr.txt" || {
        echo "bench.sh: failed: $*" >&2; cat "$out/stderr.txt" >&2; exit 2; }
    read -r t m < "$out/time.txt"
    if [ -z "${T[$key]:-}" ] || awk "BEGIN{exit !($t < ${T[$key]})}"; then T[$key]=$t; fi
    if [ "$m" -gt "${M[$key]:-0}" ]; then M[$key]=$m; fi
}
ratio() { awk "BEGIN{ if ($2 == 0) print \"inf\"; else printf \"%.2f\", $1 / $2 }"; }
rate() { awk "BEGIN{ if ($2 == 0) print \"inf\"; else printf \"%.0f\", $1 / $2 }"; }
mib() { awk "BEGIN{printf \"%.1f\", $1/1024}"; }
verdict() { awk "BEGIN{ print ($1) ? \"met\" : \"NOT met\" }"; }

echo "machine: $(nproc) cores; load before: $(cut -d' ' -f1-3 /proc/loadavg)"
declare -A T M
for v in 6 7; do
    f=$v6; [ $v = 7 ] && f=$v7
    records=$("$out/bare-iterate" "$f" | awk '{print $1}')
    events=$($bin events --count "$f" | awk '{print $1}')
    # Round after round, each command once a round: the commands compared share the same
    # minutes of a shared machine (a command's five runs in a row met other neighbours than
    # the next command's, and the ratios showed the neighbours).
    for _ in $(seq "$runs"); do
        run_once bare$v "$out/bare-iterate" "$f"
        run_once events$v "$bin" events --count "$f"
        run_once analyze$v "$bin" analyze --format json --fail-on none "$f"
        if [ -n "${BENCH_BEFORE:-}" ]; then
            run_once bevents$v "$BENCH_BEFORE" events --count "$f"
            run_once banalyze$v "$BENCH_BEFORE" analyze --format json --fail-on none "$f"
        fi
        run_once report$v trace-cmd report "$f"
    done
    rows=("bare libtracecmd iteration:bare" "dma-trace events --count:events" "dma-trace analyze:analyze")
    if [ -n "${BENCH_BEFORE:-}" ]; then
        rows+=("before (BENCH_BEFORE) events --count:bevents" "before (BENCH_BEFORE) analyze:banalyze")
    fi
    rows+=("trace-cmd report > /dev/null:report")
    printf '\nv%s: %s (%s bytes, %s records, %s DMA events)\n' "$v" "$f" "$(stat -c %s "$f")" "$records" "$events"
    printf '%-32s %9s %12s %12s %12s\n' "command" "wall s" "events/s" "peak RSS MiB" "x bare"
    for row in "${rows[@]}"; do
        IFS=: read -r name key <<< "$row"
        t=${T[$key$v]}; m=${M[$key$v]}
        printf '%-32s %9s %12s %12s %12s\n' "$name" "$t" "$(rate "$events" "$t")" "$(mib "$m")" "$(ratio "$t" "${T[bare$v]}")"
    done
    # Negative when dma-trace holds less than the bare iteration (whose peak on these files is
    # about the size of the trace's data).
    printf 'peak RSS minus the bare iteration'"'"'s: events %s MiB, analyze %s MiB\n' \
        "$(mib $(( ${M[events$v]} - ${M[bare$v]} )))" "$(mib $(( ${M[analyze$v]} - ${M[bare$v]} )))"
done

echo
echo "issue 13 goals (this run):"
echo "  analyze v6 / bare v6        : $(ratio "${T[analyze6]}" "${T[bare6]}")x  (goal <= 1.2: $(verdict "${T[analyze6]} <= 1.2 * ${T[bare6]}"))"
echo "  analyze v7 / bare v7        : $(ratio "${T[analyze7]}" "${T[bare7]}")x  (goal <= 0.25: $(verdict "${T[analyze7]} <= 0.25 * ${T[bare7]}"))"
echo "  events --count v6 / bare v6 : $(ratio "${T[events6]}" "${T[bare6]}")x  (goal <= 1.0: $(verdict "${T[events6]} <= ${T[bare6]}"))"
echo "  trace-cmd report / analyze v6: $(ratio "${T[report6]}" "${T[analyze6]}")x faster  (goal >= 20: $(verdict "${T[report6]} >= 20 * ${T[analyze6]}"))"
d6=$(( ${M[analyze6]} - ${M[bare6]} )); d7=$(( ${M[analyze7]} - ${M[bare7]} ))
echo "  analyze RSS - bare RSS       : v6 $(mib $d6) MiB, v7 $(mib $d7) MiB  (goal <= 64: $(verdict "$d6 <= 65536 && $d7 <= 65536"))"
echo "  analyze v7 total RSS         : $(mib ${M[analyze7]}) MiB  (goal <= 128: $(verdict "${M[analyze7]} <= 131072"))"

# audit: one worker process per trace, JSON back to the parent. The overhead per trace is
# what a worker costs beyond analyzing: process start and the JSON round trip.
small=SampleTraces/faultinject/x86-6.12-plain.dat
mkdir -p "$out/audit"
for i in $(seq 1 16); do cp "$small" "$out/audit/t$i.dat"; done
read -r t_start _ < <(measure "$bin" rules)
read -r t_one _ < <(measure "$bin" analyze --format json --fail-on none "$small")
read -r t_audit1 _ < <(measure "$bin" audit --quiet -j 1 --format json --fail-on none "$out/audit")
read -r t_auditn _ < <(measure "$bin" audit --quiet -j "$(nproc)" --format json --fail-on none "$out/audit")
echo
echo "audit of 16 copies of $small:"
echo "  process start (dma-trace rules)       : $t_start s"
echo "  one analyze --format json, own process : $t_one s"
echo "  audit -j 1: $t_audit1 s = $(awk "BEGIN{printf \"%.3f\", $t_audit1/16}") s per trace; -j $(nproc): $t_auditn s (speed-up $(ratio "$t_audit1" "$t_auditn")x on $(nproc) cores)"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
