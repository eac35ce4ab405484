# live-runner.sh: the command `dma-trace watch/record -- sh /lab/live-runner.sh` runs in the
# guest. It sources guest/lib.sh and one lab workload ($LIVE_BODY, e.g.
# workload-faultinject.sh), with markers written twice: to the top-level trace_marker (for
# the trace-cmd record that init runs at the same time) and to $DMA_TRACE_MARKER, the
# marker file of dma-trace's own instance (a top-level marker does not reach an instance).
T=/sys/kernel/tracing
. /lab/lib.sh
marker() {
  [ -w $T/trace_marker ] && echo "$*" > $T/trace_marker
  [ -n "$DMA_TRACE_MARKER" ] && echo "$*" > "$DMA_TRACE_MARKER"
  return 0
}
# LIVE_KEEP_DMAFI=1 (watchstack): the fault-injection body's closing `rmmod dmafi` is skipped,
# so the module is still loaded when watch and trace-cmd read kallsyms at their ends and
# both name its stack frames (unloaded, both would give raw addresses).
if [ "${LIVE_KEEP_DMAFI:-0}" = 1 ]; then
  rmmod() { info "LIVE_KEEP_DMAFI: $* stays loaded"; }
fi
. "/lab/$LIVE_BODY"
# Let the devices finish (interrupts, NAPI, completions) before the command ends and watch stops.
sleep 2
