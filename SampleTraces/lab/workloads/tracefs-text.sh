# tracefs-text.sh: record WITHOUT trace-cmd, the way a user does with plain tracefs
# (use with record.sh ... --no-record). Two files come back:
#   /out/tracefs.txt    `cat /sys/kernel/tracing/trace` after a short workload (with the
#                       '#' header; the buffer is not consumed)
#   /out/trace_pipe.txt `cat trace_pipe` running in the background during a second short
#                       workload (consuming read, no header)
# Text output keeps the kernel's defaults (hash-ptr on: %p values are hashed).
T=/sys/kernel/tracing
echo 0 > $T/tracing_on
echo > $T/trace                       # drop anything from boot
echo 1 > $T/events/dma/enable
echo 1 > $T/events/swiotlb/enable
echo 1 > $T/tracing_on
load_drivers                          # after enabling: probe-time allocations are in

phase nvme-rw-4k-direct
head -c 65536 /dev/urandom > /tmp/rand64k
dd if=/tmp/rand64k of="$NVME_DEV" bs=4k count=8 oflag=direct
dd if="$NVME_DEV" of=/dev/null bs=4k count=8 iflag=direct
phase sata-rw-4k-direct
dd if=/tmp/rand64k of="$SATA_DEV" bs=4k count=8 oflag=direct
dd if="$SATA_DEV" of=/dev/null bs=4k count=8 iflag=direct
phase usb-read-64k-direct
dd if="$USB_DEV" of=/dev/null bs=64k count=4 iflag=direct
phase net-ping
net_up
lab_ping -c 5 -i 0.2 -W 2
phase save-trace
cat $T/trace > /out/tracefs.txt

# Second part: a consuming reader on trace_pipe while the workload runs.
echo > $T/trace
cat $T/trace_pipe > /out/trace_pipe.txt &
CATPID=$!
sleep 1
phase pipe-nvme-rw-4k-direct
dd if=/tmp/rand64k of="$NVME_DEV" bs=4k count=8 seek=64 oflag=direct
dd if="$NVME_DEV" of=/dev/null bs=4k count=8 skip=64 iflag=direct
phase pipe-sata-read-4k-direct
dd if="$SATA_DEV" of=/dev/null bs=4k count=8 iflag=direct
phase pipe-net-ping
lab_ping -c 3 -i 0.2 -W 2
phase pipe-end
sleep 2                               # let cat drain the buffer
kill "$CATPID"
wait "$CATPID"
echo 0 > $T/events/dma/enable
echo 0 > $T/events/swiotlb/enable
