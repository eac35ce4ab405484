# workload-faultinject.sh: the dmafi fault-injection scenarios, one after the other.
# Sourced by the guest's /init (busybox sh) after trace-cmd record started; helpers from
# guest/lib.sh. The real lab devices are attached and their drivers loaded (so the trace
# has their probe-time DMA, as a real machine would), but no disk or network workload
# runs: the only DMA after probe is dmafi's, on QEMU's edu device.
#   1. load_drivers (nvme, ahci, xhci + usb-storage, e1000e; the interface stays down)
#   2. insmod /lab/dmafi.ko: probe allocates the coherent "ring"; the marker
#      "LAB: module dmafi .text ADDR" gives the module's load address
#   3. for every name in /sys/kernel/debug/dmafi/scenarios (the module's run order):
#        trace_marker "FI: begin NAME"; echo NAME > /sys/kernel/debug/dmafi/run;
#        trace_marker "FI: end NAME"
#   4. rmmod dmafi: remove frees the ring (the teardown evidence for leak findings)
# Leaves /out/fi-results.txt (scenario and the run write's exit status) and
# /out/dmesg.txt (the module's log per scenario) next to trace.dat.
load_drivers
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
FI=/sys/kernel/debug/dmafi

phase faultinject-load
insmod /lab/dmafi.ko || info "insmod dmafi.ko failed"
wait_for $FI/run 10 || info "WARNING: $FI/run missing (is -device edu,dma_mask=0xffffffff attached?)"
# dmafi is unloaded before trace-cmd saves kallsyms, so its stack frames stay raw addresses;
# with its .ko they resolve from the load address of its .text (dma-trace --module-base).
marker "LAB: module dmafi .text $(cat /sys/module/dmafi/sections/.text 2>/dev/null)"
: > /out/fi-results.txt
for s in $(cat $FI/scenarios 2>/dev/null); do
  marker "FI: begin $s"
  if echo "$s" > $FI/run; then rc=0; else rc=$?; fi
  marker "FI: end $s"
  info "FI: $s rc=$rc"
  echo "$s $rc" >> /out/fi-results.txt
done

phase faultinject-unload
rmmod dmafi || info "rmmod dmafi failed"
phase end
dmesg > /out/dmesg.txt
