# arm64-nvme-net.sh: the arm64 real-driver workload (arm64-run.sh): nvme, e1000e with MTU
# 9000 (packet-split receive), and virtio-net-pci with iommu_platform=on (virtio_ring on
# the DMA API). Loads nvme, e1000e, virtio_net after tracing started; a few O_DIRECT dd
# on nvme; e1000e up with MTU 9000 and pings of 56, 1400 and 8000 bytes; virtio-net up
# (MTU 1500) and pings of 56, 1400 and 4000 bytes. Each NIC has its own restrict=on slirp
# whose gateway is 10.0.2.2; both interfaces are in 10.0.2.0/24 and every ping is bound to
# its interface with -I; ip_no_pmtu_disc=1 so that slirp may fragment its large replies.
# Finally both interfaces go down and virtio_net, e1000e, nvme are removed (teardown).
# Every phase starts with a trace_marker "LAB: phase ...".
# Sourced by the guest's /init (busybox sh); helpers from guest/lib.sh.
# (Not load_drivers: it waits for the SATA and USB disks that this machine does not have.)

phase load-drivers
insmod_list /lab/modules.list
wait_for /dev/nvme0n1 30 && NVME_DEV=/dev/nvme0n1
# netdev_by_driver DRIVER: the interface whose device is bound to DRIVER
# (virtio-net's netdev hangs off the virtio device, whose driver is virtio_net)
netdev_by_driver() {
  for _n in /sys/class/net/*; do
    [ -e "$_n/device/driver" ] || continue
    [ "$(basename "$(readlink "$_n/device/driver")")" = "$1" ] && { echo "${_n##*/}"; return 0; }
  done
  return 1
}
_i=0
while [ $_i -lt 100 ]; do
  E1000E_IF=$(netdev_by_driver e1000e) || E1000E_IF=
  VIRTIO_IF=$(netdev_by_driver virtio_net) || VIRTIO_IF=
  [ -n "$E1000E_IF" ] && [ -n "$VIRTIO_IF" ] && break
  _i=$((_i + 1)); usleep 100000
done
info "devices: nvme=$NVME_DEV e1000e=$E1000E_IF virtio_net=$VIRTIO_IF"
echo "devices=nvme:$NVME_DEV e1000e:$E1000E_IF virtio_net:$VIRTIO_IF" >> /out/lab-info.txt
ip link set lo up
# No DF bit on the pings: slirp answers 10.0.2.2's echo requests itself (icmp_reflect) and
# fragments a reply above its 1500-byte MTU only if DF is clear (it drops it otherwise), so
# the 8000-byte jumbo ping over e1000e gets its answer as 1500-byte fragments.
echo 1 > /proc/sys/net/ipv4/ip_no_pmtu_disc

# if_up IF ADDR [MTU]: the MTU is set while the interface is down, so the receive ring is
# allocated once, with its final buffer layout (e1000e: packet split above 1500).
if_up() {
  [ -n "$3" ] && ip link set "$1" mtu "$3"
  ip link set "$1" up
  ip addr add "$2/24" dev "$1"
  _i=0
  while [ "$(cat "/sys/class/net/$1/carrier" 2>/dev/null)" != 1 ] && [ $_i -lt 100 ]; do
    _i=$((_i + 1)); usleep 100000
  done
  info "$1: mtu $(cat "/sys/class/net/$1/mtu") carrier $(cat "/sys/class/net/$1/carrier" 2>/dev/null)"
}

head -c 262144 /dev/urandom > /tmp/rand256k

phase nvme-write-4k-direct
dd if=/tmp/rand256k of="$NVME_DEV" bs=4k count=8 oflag=direct
phase nvme-read-4k-direct
dd if="$NVME_DEV" of=/dev/null bs=4k count=8 iflag=direct
phase nvme-write-128k-direct
dd if=/tmp/rand256k of="$NVME_DEV" bs=128k count=2 seek=8 oflag=direct
phase nvme-read-128k-direct
dd if="$NVME_DEV" of=/dev/null bs=128k count=2 skip=8 iflag=direct

if [ -n "$E1000E_IF" ]; then
  phase e1000e-up-mtu9000
  if_up "$E1000E_IF" 10.0.2.15 9000
  phase e1000e-ping-56
  lab_ping -I "$E1000E_IF" -c 8 -i 0.2 -W 2
  phase e1000e-ping-1400
  lab_ping -I "$E1000E_IF" -c 3 -i 0.2 -s 1400 -W 2
  phase e1000e-ping-8000
  lab_ping -I "$E1000E_IF" -c 3 -i 0.2 -s 8000 -W 2
fi

if [ -n "$VIRTIO_IF" ]; then
  phase virtio-net-up
  if_up "$VIRTIO_IF" 10.0.2.16
  phase virtio-net-ping-56
  lab_ping -I "$VIRTIO_IF" -c 5 -i 0.2 -W 2
  phase virtio-net-ping-1400
  lab_ping -I "$VIRTIO_IF" -c 3 -i 0.2 -s 1400 -W 2
  phase virtio-net-ping-4000
  lab_ping -I "$VIRTIO_IF" -c 3 -i 0.2 -s 4000 -W 2
fi

# Teardown, so the trace also holds what real drivers release: interfaces down (e1000e
# unmaps its receive buffers and frees its rings), then the modules removed (virtio_net
# detaches its unused receive buffers and frees its virtqueues, nvme its queues and pools).
# The PCI list with the drivers still bound is kept for the manifest first.
# (TEARDOWN=0 in LAB_GUEST_ENV leaves everything up and loaded.)
pci_devices > /out/pci-devices-loaded.txt
if [ "${TEARDOWN:-1}" = 1 ]; then
  phase teardown-links-down
  [ -n "$E1000E_IF" ] && ip link set "$E1000E_IF" down
  [ -n "$VIRTIO_IF" ] && ip link set "$VIRTIO_IF" down
  phase teardown-rmmod
  rmmod virtio_net e1000e nvme || info "rmmod failed"
fi
phase end
dmesg > /out/dmesg.txt
