# nvme-4k-loop.sh: the benchmark workload: 4 KiB O_DIRECT I/O on nvme from two dd loops
# running side by side (one per vCPU), a reader walking the first 64 MiB and a writer the
# next 64 MiB, until about TARGET_EVENTS (default 4300000) dma events have been caused or
# MAX_SECONDS (default 420) have passed. On 6.12 dma-direct each 4 KiB I/O is one
# dma_map_page plus one dma_unmap_page. At ~16 k events/s under TCG: 4.5 minutes.
# Smaller run: LAB_GUEST_ENV="TARGET_EVENTS=500000".
load_drivers
head -c 4194304 /dev/urandom > /tmp/rand4m
TARGET_EVENTS=${TARGET_EVENTS:-4300000}
MAX_SECONDS=${MAX_SECONDS:-420}
END=$(( $(cut -d. -f1 /proc/uptime) + MAX_SECONDS ))
echo 0 > /tmp/reader.rounds
echo 0 > /tmp/writer.rounds
phase "nvme-4k-loop target ${TARGET_EVENTS} events, at most ${MAX_SECONDS}s"

# WHY two loops: one dd keeps one vCPU busy at most; under TCG a single loop gives about
# 11k events/s, two about 16k/s. WHY count instead of a fixed time: the rate depends on
# the host's load (a fixed 280 s gave 4.5 M events once and 3.96 M the next time).
# Estimated events so far: a reader round is 4096 I/Os (8192 events), a writer round
# 1024 I/Os (2048 events). Each loop publishes its round count in a file, replaced with
# mv (atomic) so the other loop never reads a half-written number.
more() {
  _est=$(( $(cat /tmp/reader.rounds) * 8192 + $(cat /tmp/writer.rounds) * 2048 ))
  [ "$_est" -lt "$TARGET_EVENTS" ] && [ "$(cut -d. -f1 /proc/uptime)" -lt "$END" ]
}
reader() {
  _n=0
  while more; do
    dd if="$NVME_DEV" of=/dev/null bs=4k count=4096 skip=$(( (_n % 4) * 4096 )) iflag=direct 2>/dev/null
    _n=$((_n + 1)); echo "$_n" > /tmp/reader.tmp; mv /tmp/reader.tmp /tmp/reader.rounds
  done
  echo "reader_rounds=$_n" >> /out/lab-info.txt
}
writer() {
  _n=0
  while more; do
    dd if=/tmp/rand4m of="$NVME_DEV" bs=4k count=1024 seek=$(( 16384 + (_n % 16) * 1024 )) oflag=direct 2>/dev/null
    _n=$((_n + 1)); echo "$_n" > /tmp/writer.tmp; mv /tmp/writer.tmp /tmp/writer.rounds
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
