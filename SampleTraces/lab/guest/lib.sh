# shellcheck shell=sh
# /lab/lib.sh: helpers for /init and the workload scripts (busybox sh, sourced).
#
# Workloads use:
#   load_drivers          load nvme, ahci, xhci+usb-storage, e1000e (in dependency order)
#                         and set NVME_DEV, SATA_DEV, USB_DEV
#   phase NAME            trace_marker "LAB: phase NAME" (also printed on the console)
#   net_up                e1000e up as 10.0.2.15/24 (QEMU user net, restrict=on)
#   lab_ping ARGS         ping 10.0.2.2 ONLY (the QEMU-internal gateway; never anything else)
#   now                   seconds since boot (from /proc/uptime)
T=/sys/kernel/tracing

now() { cut -d' ' -f1 /proc/uptime; }
info() { echo "[lab $(now)] $*" > /dev/console; }

# marker TEXT: write TEXT into the trace (ftrace:print event) if tracefs is there. With
# LAB_MARKER_KMSG=1 also into the kernel log (/dev/kmsg), which `perf record -e
# printk:console` records: perf cannot record trace_marker writes (ftrace:print stays empty).
marker() {
  [ -w $T/trace_marker ] && echo "$*" > $T/trace_marker
  [ "${LAB_MARKER_KMSG:-0}" = 1 ] && echo "$*" > /dev/kmsg
  return 0
}
phase() { info "LAB: phase $*"; marker "LAB: phase $*"; }

# wait_for PATH SECONDS: poll until PATH exists.
wait_for() {
  _i=0
  while [ ! -e "$1" ]; do
    _i=$((_i + 1)); [ $_i -gt $(($2 * 10)) ] && return 1
    usleep 100000
  done
  return 0
}

# insmod_list FILE: insmod each module named in FILE (a path per line, already in
# dependency order; build-initramfs.sh made it with `modprobe --show-depends`).
# A line may carry module parameters after the path.
insmod_list() {
  while read -r _m _args; do
    [ -n "$_m" ] || continue
    grep -q "^$(basename "$_m" .ko | tr - _) " /proc/modules && continue
    # shellcheck disable=SC2086
    insmod "$_m" $_args || info "insmod $_m failed"
  done < "$1"
}

# disk_by_driver PATTERN: first /dev/sdX whose sysfs device path matches PATTERN
# (ahci disks live under .../ata*/..., usb-storage under .../usb*/...).
disk_by_driver() {
  for _b in /sys/block/sd*; do
    [ -e "$_b" ] || continue
    case "$(readlink -f "$_b/device")" in *$1*) echo "/dev/${_b##*/}"; return 0 ;; esac
  done
  return 1
}

load_drivers() {
  phase load-drivers
  insmod_list /lab/modules.list
  wait_for /dev/nvme0n1 30 && NVME_DEV=/dev/nvme0n1
  _i=0
  while [ $_i -lt 150 ]; do
    SATA_DEV=$(disk_by_driver /ata) || SATA_DEV=
    USB_DEV=$(disk_by_driver /usb) || USB_DEV=
    [ -n "$SATA_DEV" ] && [ -n "$USB_DEV" ] && break
    _i=$((_i + 1)); usleep 100000
  done
  # QEMU 7.2's AHCI under intel-iommu crashes on large writes: the iommu variant passes
  # lab.sata_maxkb=16 on the kernel command line.
  _mk=$(sed -n 's/.*lab\.sata_maxkb=\([0-9]*\).*/\1/p' /proc/cmdline)
  if [ -n "$_mk" ] && [ -n "$SATA_DEV" ]; then
    echo "$_mk" > "/sys/block/${SATA_DEV#/dev/}/queue/max_sectors_kb"
  fi
  info "disks: nvme=$NVME_DEV sata=$SATA_DEV usb=$USB_DEV"
  echo "disks=nvme:$NVME_DEV sata:$SATA_DEV usb:$USB_DEV" >> /out/lab-info.txt
}

net_up() {
  ip link set lo up
  ip link set eth0 up
  ip addr add 10.0.2.15/24 dev eth0
  _i=0
  while [ "$(cat /sys/class/net/eth0/carrier 2>/dev/null)" != 1 ] && [ $_i -lt 100 ]; do
    _i=$((_i + 1)); usleep 100000
  done
}

# The only address the guest ever pings: QEMU's slirp gateway, answered inside QEMU
# (restrict=on keeps every packet inside the emulator).
lab_ping() { ping "$@" 10.0.2.2; }

# pci_devices: bdf vendor:device class driver iommu_group (same layout as MANIFEST.md).
pci_devices() {
  for _d in /sys/bus/pci/devices/*; do
    _drv=; _grp=
    [ -e "$_d/driver" ] && _drv=$(basename "$(readlink "$_d/driver")")
    [ -e "$_d/iommu_group" ] && _grp=$(basename "$(readlink "$_d/iommu_group")")
    echo "${_d##*/} $(cat "$_d/vendor"):$(cat "$_d/device") class=$(cat "$_d/class") driver=$_drv iommu_group=$_grp"
  done
}
