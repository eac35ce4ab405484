# workload-live.sh: sourced by the guest's /init while trace-cmd record records the
# top-level buffer. Runs the lab workload $LIVE_BODY under dma-trace (the static build
# unpacked from /lab/dma-trace-guest.tar), in the mode $LIVE_MODE:
#   watch   dma-trace watch --format json -- sh /lab/live-runner.sh  > /out/watch.ndjson
#   record  dma-trace record -o /out/record.dat -- sh /lab/live-runner.sh
#   faults  the bad-use and fault cases, one after the other (see below), with a short body
#   watchstack  dma-trace watch --stack --format json -- sh /lab/live-runner.sh > /out/watch.ndjson
#           (the runner loads the drivers and dmafi after watch started; LIVE_KEEP_DMAFI=1 keeps
#           dmafi loaded to the end), then the not-root cases into /out/nonroot.log
#   watchstackunload  the same without LIVE_KEEP_DMAFI: the runner unloads dmafi at its end
#   pre612  (a kernel before 6.12, no dma events) watch without --allow-partial into
#           /out/pre612.log, then dma-trace watch --allow-partial --format json -- sh
#           /lab/live-runner.sh > /out/watch.ndjson
# Exit statuses and stderr go to /out/live-rc.txt and /out/MODE.log.
tar xf /lab/dma-trace-guest.tar -C / && rm /lab/dma-trace-guest.tar
info "dma-trace: $(md5sum /usr/bin/dma-trace | cut -c1-12) (md5) mode=$LIVE_MODE body=$LIVE_BODY"
# What a refused run must leave as it was: our instances, the top-level events (trace-cmd's)
# and tracing_on.
tracefs_state() {
  echo "instances=[$(ls $T/instances | tr '\n' ' ')] set_event=$(cat $T/set_event | grep -c .) tracing_on=$(cat $T/tracing_on)"
}
# The not-root cases: each must exit 2 with one message and change nothing in tracefs.
nonroot_checks() {
  {
    for args in "watch" "watch --format json --stack" "watch --tracefs $T" "record -o /tmp/nobody.dat"; do
      echo "== dma-trace $args -- true, as uid 65534"
      echo "before: $(tracefs_state)"
      # shellcheck disable=SC2086  # the words of args are intended
      # util-linux's (record-live.sh packs it): /bin/setpriv is busybox's, without --reuid
      /usr/bin/setpriv --reuid=65534 --regid=65534 --clear-groups dma-trace $args -- true; echo "rc=$?"
      echo "after:  $(tracefs_state)"
    done
    echo "== /tmp/nobody.dat: $([ -e /tmp/nobody.dat ] && echo exists || echo absent)"
  } > /out/nonroot.log 2>&1
}
case "$LIVE_MODE" in
  watchstack|watchstackunload)
    dma-trace watch --stack --format json --fail-on none -- sh /lab/live-runner.sh > /out/watch.ndjson 2> /out/watch.log
    echo "watch rc=$?" >> /out/live-rc.txt
    nonroot_checks
    ;;
  pre612)
    {
      echo "== dma-trace watch --format json -- sh /lab/live-runner.sh (kernel $(uname -r))"
      echo "before: $(tracefs_state)"
      dma-trace watch --format json -- sh /lab/live-runner.sh; echo "rc=$?"
      echo "after:  $(tracefs_state)"
      echo "== events/ has: $(ls $T/events | grep -E '^(dma|swiotlb|iommu)$' | tr '\n' ' ')"
    } > /out/pre612.log 2>&1
    dma-trace watch --allow-partial --format json --fail-on none -- sh /lab/live-runner.sh > /out/watch.ndjson 2> /out/watch.log
    echo "watch rc=$?" >> /out/live-rc.txt
    nonroot_checks
    ;;
  watch)
    dma-trace watch --format json --fail-on none -- sh /lab/live-runner.sh > /out/watch.ndjson 2> /out/watch.log
    echo "watch rc=$?" >> /out/live-rc.txt
    dma-trace watch --fail-on none --duration 1 > /out/watch-idle.txt 2>> /out/watch.log
    echo "watch-duration rc=$?" >> /out/live-rc.txt
    ;;
  record)
    dma-trace record -o /out/record.dat -- sh /lab/live-runner.sh 2> /out/record.log
    echo "record rc=$?" >> /out/live-rc.txt
    ;;
  faults)
    {
      echo "== no tracefs at /tmp"; dma-trace record -o /out/x.dat --tracefs /tmp --duration 1; echo "rc=$?"
      echo "== command not found"; dma-trace record -o /out/x.dat -- /no/such/cmd; echo "rc=$?"
      # Room for the header (kallsyms is most of it, with the drivers loaded) and about 100
      # pages, then 4 KiB O_DIRECT reads on nvme until the spools fill it.
      load_drivers > /dev/null 2>&1
      KB=$(( $(cat /proc/kallsyms | wc -c) / 1024 + 400 ))
      echo "== disk full: a ${KB} KiB tmpfs"
      mkdir -p /small && mount -t tmpfs -o size=${KB}k tmpfs /small
      dma-trace record -o /small/full.dat -- dd if=$NVME_DEV of=/dev/null bs=4k count=20000 iflag=direct; echo "rc=$?"
      ls -l /small; cp /small/full.dat /out/diskfull.dat
      echo "== SIGTERM while tracing"
      dma-trace record -o /out/sigterm.dat -- sleep 30 & P=$!
      sleep 3; ls $T/instances; kill -TERM $P; wait $P; echo "rc=$?"
      echo "== instances left: [$(ls $T/instances)]"
      echo "== outside rmdir of our instance while it is being set up"
      dma-trace record -o /out/rmdir.dat -- sleep 6 & P=$!
      i=0; while [ $i -lt 200 ] && ! ls -d $T/instances/dma-trace-* >/dev/null 2>&1; do usleep 10000; i=$((i+1)); done
      for d in $T/instances/dma-trace-*; do rmdir "$d"; echo "rmdir $d: $?"; done
      wait $P; echo "rc=$?"
      echo "== outside rmdir of our instance while tracing (the kernel refuses: we hold its buffers)"
      dma-trace record -o /out/rmdir2.dat -- sleep 8 & P=$!
      i=0; while [ $i -lt 300 ]; do
        d=$(ls -d $T/instances/dma-trace-* 2>/dev/null | head -1)
        [ -n "$d" ] && [ "$(cat $d/tracing_on 2>/dev/null)" = 1 ] && [ "$(cat $d/events/dma/enable 2>/dev/null)" = 1 ] && break
        usleep 20000; i=$((i+1))
      done
      rmdir "$d"; echo "rmdir $d: $?"
      wait $P; echo "rc=$?"
      echo "== stale instance"
      mkdir $T/instances/dma-trace-999999
      dma-trace record -o /out/x.dat --duration 1; echo "rc=$?"
      dma-trace record -o /out/x.dat --duration 1 --clean-stale; echo "rc=$?"
      echo "== instances left: [$(ls $T/instances)]"
      echo "== a second SIGTERM while record ends (tracing off, waiting for a command that ignores SIGTERM), over an old file"
      echo OLD > /out/second.dat
      # nvme reads fill sub-buffers (record spools only full ones); the command then idles.
      dma-trace record -o /out/second.dat -- sh -c "trap '' TERM; dd if=$NVME_DEV of=/dev/null bs=4k count=3000 iflag=direct 2>/dev/null; sleep 8" & P=$!
      i=0; while [ $i -lt 300 ]; do
        d=$(ls -d $T/instances/dma-trace-* 2>/dev/null | head -1)
        [ -n "$d" ] && [ "$(cat $d/tracing_on 2>/dev/null)" = 1 ] && ls /out/.second.dat.cpu* >/dev/null 2>&1 && break
        usleep 20000; i=$((i+1))
      done
      echo "spooling: $(ls -a /out | grep -c '^\.second\.dat\.cpu') spool files"
      kill -TERM $P
      i=0; while [ $i -lt 300 ] && [ "$(cat $d/tracing_on 2>/dev/null)" != 0 ]; do usleep 20000; i=$((i+1)); done
      echo "tracing_on after the first: $(cat $d/tracing_on 2>/dev/null)"
      kill -TERM $P; wait $P; echo "rc=$?"
      echo "second.dat: $([ "$(cat /out/second.dat)" = OLD ] && echo OLD || echo "replaced, $(wc -c < /out/second.dat) bytes"); left next to it: [$(ls -a /out | grep '^\.second' | tr '\n' ' ')]; instances: [$(ls $T/instances)]"
      echo "== events enabled at the top level: [$(cat $T/set_event | grep -v '^$' | wc -l) lines, trace-cmd's]"
    } > /out/faults.log 2>&1
    ;;
esac
