#!/usr/bin/env bash
# Times dma-trace against a bare libtracecmd iteration and `trace-cmd report`
# on the same trace.dat, and prints events per second, peak memory and ratios.
# Usage: Scripts/bench.sh FILE [RUNS]   (release build; best of RUNS, default 3)
set -euo pipefail
file=${1:?usage: Scripts/bench.sh FILE [RUNS]}
runs=${2:-3}
cd "$(dirname "$0")/.."
[ -x /usr/bin/time ] || { echo "bench.sh: needs /usr/bin/time (apt-get install time)" >&2; exit 2; }
out=${BENCH_OUT:-bench-out}
mkdir -p "$out"
swift build -c release >/dev/null
bin=.build/release/dma-trace
cc -O2 -o "$out/bare-iterate" Scripts/bare-iterate.c $(pkg-config --cflags --libs libtracecmd libtraceevent)

# best wall time (s) and peak RSS (KiB) of a command over $runs runs
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

events=$($bin events --count "$file" | awk '{print $1}')
records=$("$out/bare-iterate" "$file" | awk '{print $1}')
read -r t_bare m_bare < <(measure "$out/bare-iterate" "$file")
read -r t_events m_events < <(measure "$bin" events --count "$file")
read -r t_analyze m_analyze < <(measure "$bin" analyze --format json --fail-on none "$file")
read -r t_report m_report < <(measure trace-cmd report "$file")

ratio() { awk "BEGIN{ if ($2 == 0) print \"inf\"; else printf \"%.2f\", $1 / $2 }"; }
rate() { awk "BEGIN{ if ($2 == 0) print \"inf\"; else printf \"%.0f\", $1 / $2 }"; }
printf 'file: %s (%s bytes, %s records, %s DMA events)\n' "$file" "$(stat -c %s "$file")" "$records" "$events"
printf '%-34s %9s %12s %12s\n' "command" "wall s" "events/s" "peak RSS MiB"
for row in "bare libtracecmd iteration:$t_bare:$m_bare" "dma-trace events --count:$t_events:$m_events" \
           "dma-trace analyze:$t_analyze:$m_analyze" "trace-cmd report:$t_report:$m_report"; do
    IFS=: read -r name t m <<< "$row"
    printf '%-34s %9s %12s %12s\n' "$name" "$t" "$(rate "$events" "$t")" "$(awk "BEGIN{printf \"%.1f\", $m/1024}")"
done
echo "events  / bare iteration : $(ratio "$t_events" "$t_bare")x   (target <= 2)"
echo "analyze / bare iteration : $(ratio "$t_analyze" "$t_bare")x   (target <= 2)"
echo "trace-cmd report / events : $(ratio "$t_report" "$t_events")x faster   (target >= 8)"
echo "trace-cmd report / analyze: $(ratio "$t_report" "$t_analyze")x faster   (target >= 8)"
