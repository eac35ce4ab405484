# drivers.sh: real drivers the other recordings do not have (record-drivers.sh; x86 q35 and
# arm64 virt alike): e1000 and rtl8139 (8139cp) NICs, a megasas and an lsi53c895a
# (sym53c8xx) SCSI disk, usb-storage behind EHCI, an SD card behind sdhci-pci, intel-hda
# with an hda-duplex codec (played and captured through the OSS emulation, /dev/dsp), a
# virtio-blk disk with iommu_platform=on (virtio_ring on the DMA API), and two instances of
# vivid, the kernel's virtual camera, with the videobuf2-dma-contig allocator: frames
# captured by /lab/v4l2-capture (tools/v4l2-capture.c) into coherent and then non-coherent
# buffers (dma_alloc_noncontiguous, synced around every frame), then instance 0's buffers
# exported as dma-bufs and filled by instance 1 (mapped again, for the importer; both
# instances do DMA as the one platform device vivid.0). Each device is used
# only if its driver bound, so one workload serves every machine of record-drivers.sh.
# Every phase starts with a trace_marker "LAB: phase ...". Each NIC has its own
# `-netdev user,restrict=on` (gateway 10.0.2.2, answered inside QEMU); the NICs are
# 10.0.2.15 and .16 and every ping is bound to its interface. At the end every interface
# goes down and every module is removed (teardown), so the drivers' releases are traced.
# Sourced by the guest's /init (busybox sh); helpers from guest/lib.sh.
# Drivers, in load order (build-initramfs.sh / arm64-run.sh stage them; the HDA codec driver
# before the controller, since nothing in the guest can autoload it):
# lab-modules: e1000 8139cp megaraid_sas sym53c8xx ehci_pci usb_storage sd_mod sdhci_pci mmc_block snd_hda_codec_generic snd_hda_intel snd_pcm_oss vivid
# vivid: two instances, each only a video capture node, dma-contig buffers, user cache hints
# allowed (V4L2_MEMORY_FLAG_NON_COHERENT)
# lab-module-args: vivid n_devs=2 node_types=0x1,0x1 allocators=1,1 cache_hints=1,1

phase load-drivers
insmod_list /lab/modules.list

# The virtio-blk disk with iommu_platform was probed by virtio_blk (loaded for the output
# disk before tracing started): unbind and bind it again so its probe-time virtqueue
# allocations are in the trace: the virtio_blk device that is not /dev/vda (the output disk,
# probed first).
VBLK=
for _v in /sys/bus/virtio/drivers/virtio_blk/virtio*; do
  [ -e "$_v" ] || continue
  [ -e "$_v/block/vda" ] && continue
  VBLK=${_v##*/}
done
if [ -n "$VBLK" ]; then
  echo "$VBLK" > /sys/bus/virtio/drivers/virtio_blk/unbind
  echo "$VBLK" > /sys/bus/virtio/drivers/virtio_blk/bind
fi

# netdev_by_driver DRIVER: the interface of a device bound to DRIVER
netdev_by_driver() {
  for _n in /sys/class/net/*; do
    [ -e "$_n/device/driver" ] || continue
    [ "$(basename "$(readlink "$_n/device/driver")")" = "$1" ] && { echo "${_n##*/}"; return 0; }
  done
  return 1
}
block_by_driver() {  # block_by_driver DRIVER: the first disk below a PCI device bound to DRIVER
  for _b in /sys/block/sd* /sys/block/mmcblk* /sys/block/vd*; do
    [ -e "$_b" ] || continue
    _p=$(readlink -f "$_b/device")
    while [ "$_p" != / ] && [ -n "$_p" ]; do
      if [ -e "$_p/driver" ] && [ "$(basename "$(readlink "$_p/driver")")" = "$1" ]; then
        echo "/dev/${_b##*/}"; return 0
      fi
      _p=${_p%/*}
    done
  done
  return 1
}
_i=0
while [ $_i -lt 150 ]; do
  E1000_IF=$(netdev_by_driver e1000) || E1000_IF=
  RTL_IF=$(netdev_by_driver 8139cp) || RTL_IF=
  MEGA_DEV=$(block_by_driver megaraid_sas) || MEGA_DEV=
  SYM_DEV=$(block_by_driver sym53c8xx) || SYM_DEV=
  EHCI_DEV=$(block_by_driver ehci-pci) || EHCI_DEV=
  SD_DEV=$(block_by_driver sdhci-pci) || SD_DEV=
  VBLK_DEV=
  [ -n "$VBLK" ] && [ -e "/sys/bus/virtio/devices/$VBLK/block" ] && VBLK_DEV=/dev/$(ls "/sys/bus/virtio/devices/$VBLK/block" | head -n1)
  [ -e /dev/dsp ] && DSP=/dev/dsp || DSP=
  VIDEO= VIDEO2=
  for _v in /sys/class/video4linux/video*; do
    [ -e "$_v" ] || continue
    case "$(cat "$_v/name" 2>/dev/null)" in
      vivid-000-*) VIDEO=/dev/${_v##*/} ;;
      vivid-001-*) VIDEO2=/dev/${_v##*/} ;;
    esac
  done
  [ -n "$E1000_IF" ] && [ -n "$RTL_IF" ] && [ -n "$MEGA_DEV" ] && [ -n "$SYM_DEV" ] && [ -n "$EHCI_DEV" ] \
    && [ -n "$SD_DEV" ] && [ -n "$DSP" ] && [ -n "$VIDEO" ] && [ -n "$VIDEO2" ] && break
  _i=$((_i + 1)); usleep 100000
done
info "devices: e1000=$E1000_IF 8139cp=$RTL_IF megasas=$MEGA_DEV sym53c8xx=$SYM_DEV ehci=$EHCI_DEV sdhci=$SD_DEV virtio-blk=$VBLK_DEV dsp=$DSP video=$VIDEO video2=$VIDEO2"
echo "devices=e1000:$E1000_IF 8139cp:$RTL_IF megasas:$MEGA_DEV sym53c8xx:$SYM_DEV ehci:$EHCI_DEV sdhci:$SD_DEV virtio-blk:$VBLK_DEV dsp:$DSP video:$VIDEO video2:$VIDEO2" >> /out/lab-info.txt

head -c 131072 /dev/urandom > /tmp/rand128k

# disk_io NAME DEV: 8 x 4 KiB and 2 x 64 KiB O_DIRECT writes and reads back
disk_io() {
  [ -n "$2" ] || return 0
  phase "$1-write-4k-direct"
  dd if=/tmp/rand128k of="$2" bs=4k count=8 oflag=direct
  phase "$1-read-4k-direct"
  dd if="$2" of=/dev/null bs=4k count=8 iflag=direct
  phase "$1-write-64k-direct"
  dd if=/tmp/rand128k of="$2" bs=64k count=2 seek=2 oflag=direct
  phase "$1-read-64k-direct"
  dd if="$2" of=/dev/null bs=64k count=2 skip=2 iflag=direct
}
disk_io megasas "$MEGA_DEV"
disk_io sym53c8xx "$SYM_DEV"
disk_io ehci-usb-storage "$EHCI_DEV"
disk_io sdhci "$SD_DEV"
disk_io virtio-blk-iommu "$VBLK_DEV"

if [ -n "$DSP" ]; then
  # OSS defaults: unsigned 8-bit mono 8 kHz; the OSS layer converts for the codec.
  phase hda-play
  head -c 8000 /dev/urandom > /tmp/noise
  cat /tmp/noise > "$DSP"
  phase hda-capture
  dd if="$DSP" of=/dev/null bs=4000 count=1
fi

if [ -n "$VIDEO" ] && [ -x /lab/v4l2-capture ]; then
  phase vivid-capture-coherent
  /lab/v4l2-capture "$VIDEO" 8
  phase vivid-capture-noncoherent
  /lab/v4l2-capture "$VIDEO" 8 noncoherent
  if [ -n "$VIDEO2" ]; then
    phase vivid-share-coherent
    /lab/v4l2-capture --share "$VIDEO" "$VIDEO2" 8
    phase vivid-share-noncoherent
    /lab/v4l2-capture --share "$VIDEO" "$VIDEO2" 8 noncoherent
  fi
fi

ip link set lo up
echo 1 > /proc/sys/net/ipv4/ip_no_pmtu_disc
# if_up IF ADDR: up, address, wait for carrier
if_up() {
  ip link set "$1" up
  ip addr add "$2/24" dev "$1"
  _i=0
  while [ "$(cat "/sys/class/net/$1/carrier" 2>/dev/null)" != 1 ] && [ $_i -lt 100 ]; do
    _i=$((_i + 1)); usleep 100000
  done
}
# nic NAME IF ADDR: up, then pings of 56, 1400 and 4000 bytes of the slirp gateway
nic() {
  [ -n "$2" ] || return 0
  phase "$1-up"
  if_up "$2" "$3"
  phase "$1-ping-56"
  lab_ping -I "$2" -c 5 -i 0.2 -W 2
  phase "$1-ping-1400"
  lab_ping -I "$2" -c 3 -i 0.2 -s 1400 -W 2
  phase "$1-ping-4000"
  lab_ping -I "$2" -c 2 -i 0.2 -s 4000 -W 2
}
nic e1000 "$E1000_IF" 10.0.2.15
nic 8139cp "$RTL_IF" 10.0.2.16

pci_devices > /out/pci-devices-loaded.txt
if [ "${TEARDOWN:-1}" = 1 ]; then
  phase teardown-links-down
  [ -n "$E1000_IF" ] && ip link set "$E1000_IF" down
  [ -n "$RTL_IF" ] && ip link set "$RTL_IF" down
  phase teardown-rmmod
  # reverse load order; virtio_blk stays (the output disk), its iommu disk is unbound
  [ -n "$VBLK" ] && echo "$VBLK" > /sys/bus/virtio/drivers/virtio_blk/unbind
  for _m in vivid snd_pcm_oss snd_hda_intel snd_hda_codec_generic mmc_block sdhci_pci usb_storage ehci_pci sym53c8xx megaraid_sas sd_mod 8139cp e1000; do
    grep -q "^$_m " /proc/modules && { rmmod "$_m" || info "rmmod $_m failed"; }
  done
fi
phase end
dmesg > /out/dmesg.txt
