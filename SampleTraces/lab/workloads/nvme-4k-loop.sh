# nvme-4k-loop.sh: the benchmark workload: LOOP_SECONDS (default 280) of 4 KiB O_DIRECT
# I/O on nvme, from two dd loops running side by side (one per vCPU): a reader walking the
# first 64 MiB and a writer walking the next 64 MiB. On 6.12 dma-direct each 4 KiB I/O is
# one dma_map_page plus one dma_unmap_page. Shorter run: LAB_GUEST_ENV="LOOP_SECONDS=60".
load_drivers
head -c 4194304 /dev/urandom > /tmp/rand4m
LOOP_SECONDS=${LOOP_SECONDS:-280}
END=$(( $(cut -d. -f1 /proc/uptime) + LOOP_SECONDS ))
phase "nvme-4k-loop ${LOOP_SECONDS}s"

# WHY two loops: one dd keeps one vCPU busy at most; under TCG a single loop gives about
# 11k events/s, too few for 4 M events in 4 minutes; two give about 16k/s, and 280 s
# (not 240) leave a margin above 4 M.
reader() {
  _n=0
  while [ "$(cut -d. -f1 /proc/uptime)" -lt "$END" ]; do
    dd if="$NVME_DEV" of=/dev/null bs=4k count=4096 skip=$(( (_n % 4) * 4096 )) iflag=direct 2>/dev/null
    _n=$((_n + 1))
  done
  echo "reader_rounds=$_n" >> /out/lab-info.txt
}
writer() {
  _n=0
  while [ "$(cut -d. -f1 /proc/uptime)" -lt "$END" ]; do
    dd if=/tmp/rand4m of="$NVME_DEV" bs=4k count=1024 seek=$(( 16384 + (_n % 16) * 1024 )) oflag=direct 2>/dev/null
    _n=$((_n + 1))
  done
  echo "writer_rounds=$_n" >> /out/lab-info.txt
}
reader &
RP=$!
writer &
WP=$!
wait "$RP"
wait "$WP"
grep _rounds= /out/lab-info.txt
echo "each reader round: 4096 reads of 4 KiB, each writer round: 1024 writes of 4 KiB"
phase end
