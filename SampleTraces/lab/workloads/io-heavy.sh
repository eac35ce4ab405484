# io-heavy.sh: many small DMA operations in a short time on nvme, AHCI, usb-storage and
# e1000e, while two CPU hogs keep both vCPUs busy. For the lossy recording: with a tiny
# per-CPU ring buffer the reader cannot keep up and the kernel overwrites unread pages.
# WHY the hogs: trace-cmd's readers block in splice() and wake as soon as a page is full,
# so on an idle guest even a 2-page buffer loses nothing. A busy machine (the situation in
# which users do lose events) delays the readers; set READER_NICE to renice them (default:
# the readers are reniced to 19 so the hogs win the CPU; READER_NICE=0 leaves them alone).
load_drivers
head -c 1048576 /dev/urandom > /tmp/rand1m
HOGS=
for _c in 1 2; do
  ( while :; do :; done ) > /dev/null 2>&1 &
  HOGS="$HOGS $!"
done
READER_NICE=${READER_NICE:-19}
if [ "$READER_NICE" != 0 ]; then
  # READERS: whose processes to renice (record-perf.sh's lossy run: perf)
  for _p in $(pidof ${READERS:-trace-cmd}); do renice -n "$READER_NICE" -p "$_p" > /dev/null; done
fi

phase nvme-write-4k-direct
dd if=/tmp/rand1m of="$NVME_DEV" bs=4k count=256 oflag=direct
phase nvme-read-4k-direct
dd if="$NVME_DEV" of=/dev/null bs=4k count=4096 iflag=direct
phase nvme-read-64k-direct
dd if="$NVME_DEV" of=/dev/null bs=64k count=256 iflag=direct
phase sata-write-4k-direct
dd if=/tmp/rand1m of="$SATA_DEV" bs=4k count=256 oflag=direct
phase sata-read-4k-direct
dd if="$SATA_DEV" of=/dev/null bs=4k count=2048 iflag=direct
phase usb-read-64k-direct
dd if="$USB_DEV" of=/dev/null bs=64k count=128 iflag=direct
phase nvme-sata-parallel
dd if="$NVME_DEV" of=/dev/null bs=4k count=4096 skip=4096 iflag=direct &
P1=$!
dd if="$SATA_DEV" of=/dev/null bs=4k count=2048 skip=2048 iflag=direct
wait "$P1"
phase net-up
net_up
phase net-ping-flood
lab_ping -c 100 -i 0.01 -q -W 2
phase end
# Stop the hogs by pid (never by name), and reap them.
# shellcheck disable=SC2086
kill $HOGS
for _p in $HOGS; do wait "$_p" 2>/dev/null; done
