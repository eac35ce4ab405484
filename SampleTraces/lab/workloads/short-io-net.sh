# short-io-net.sh: a SHORT workload for recordings with kernel stacks (-T), where every
# event costs a stack record: a few O_DIRECT dd reads/writes on nvme and the SATA disk,
# and a few pings over e1000e. Every phase starts with a trace_marker "LAB: phase ...".
# Sourced by the guest's /init (busybox sh); helpers from guest/lib.sh.
load_drivers

# Random payload so writes are not all-zero pages (no behavioural difference for DMA,
# but it makes read-back checks meaningful).
head -c 262144 /dev/urandom > /tmp/rand256k

phase nvme-write-4k-direct
dd if=/tmp/rand256k of="$NVME_DEV" bs=4k count=8 oflag=direct
phase nvme-read-4k-direct
dd if="$NVME_DEV" of=/dev/null bs=4k count=8 iflag=direct
phase nvme-write-128k-direct
dd if=/tmp/rand256k of="$NVME_DEV" bs=128k count=2 seek=8 oflag=direct
phase nvme-read-128k-direct
dd if="$NVME_DEV" of=/dev/null bs=128k count=2 skip=8 iflag=direct

phase sata-write-4k-direct
dd if=/tmp/rand256k of="$SATA_DEV" bs=4k count=8 oflag=direct
phase sata-read-4k-direct
dd if="$SATA_DEV" of=/dev/null bs=4k count=8 iflag=direct
phase sata-write-64k-direct
dd if=/tmp/rand256k of="$SATA_DEV" bs=64k count=2 seek=8 oflag=direct
phase sata-read-64k-direct
dd if="$SATA_DEV" of=/dev/null bs=64k count=2 skip=8 iflag=direct

phase net-up
net_up
phase net-ping-56
lab_ping -c 5 -i 0.2 -W 2
phase net-ping-1400
lab_ping -c 3 -i 0.2 -s 1400 -W 2
phase end
