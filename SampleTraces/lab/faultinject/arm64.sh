#!/bin/bash
# arm64.sh OUT.dat [trace-cmd record flags...]: the arm64 non-coherent fault-injection run.
#
# Debian's generic arm64 kernel (same 6.12 release as the x86 runs: the amd64 alias
# 6.12 with -amd64 replaced by -arm64, or K612A=...) on `qemu-system-aarch64 -machine virt
# -cpu max,pauth-impdef=on` under TCG, with the PCIe host bridge made NON-COHERENT: the
# machine's device tree is dumped with the run's exact options (dumpdtb), `dma-coherent`
# is deleted from the pcie@10000000 node, and the tree is recompiled with dtc (the raw
# dump is padded to 1 MiB and hangs the boot) and passed with -dtb. Two nodes are added
# for the no-struct-page-pool scenario: a 1 MiB `shared-dma-pool` reserved-memory region
# with `no-map` (outside the linear map) and `/dmafi { memory-region = <&pool>; }`.
# Devices as on x86 where virt has them: virtio-blk (output), nvme, ich9-ahci + ide-hd,
# qemu-xhci + usb-storage, e1000e (restrict=on), edu (dma_mask=0xffffffff); 2 GiB RAM
# (0x40000000..0xc0000000, all below 4 GiB), 2 vCPUs.
#
# Guest userland: bookworm's arm64 busybox-static and trace-cmd 3.1.6 (the host's version)
# with the libraries readelf lists, unpacked from .debs (never installed); the lab's
# guest/init, guest/lib.sh and faultinject/workload-faultinject.sh. Module dependency
# order from the host's modprobe --show-depends on the arm64 module tree.
#
# Outputs like record.sh: OUT.dat, OUT-without-.dat-NAME for other files in /out,
# $(dirname OUT)/logs/NAME.{console.log,info.txt,workload.log,trace-cmd.log,dts}; code shared
# with arm64-run.sh in ../lib-host.sh. Env: LAB_CACHE, LAB_TIMEOUT (default 600), LAB_KEEP=1.
# About 1 to 2 minutes.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LAB=$(cd "$HERE/.." && pwd)
export LAB_CACHE=${LAB_CACHE:-/work/lab-cache}
LAB_TIMEOUT=${LAB_TIMEOUT:-600}
[ $# -ge 1 ] || { sed -n '2,26p' "$0"; exit 2; }
OUT=$1; shift
[ $# -gt 0 ] || set -- -e dma -e swiotlb -e iommu -b 20000
# shellcheck source=../lib-host.sh
. "$LAB/lib-host.sh"
arm64_debs_init

# ---- kernel (the 6.12 release of the x86 runs, see arm64_kernel in lib-host.sh) and dmafi.ko
arm64_kernel 6.12
KVER=$KREL MODROOT=$KD/root/usr
KO=$LAB_CACHE/modules/$KREL/dmafi.ko
LAB_ARCH=arm64 "$HERE/build-module.sh" 6.12

# ---- guest userland (bookworm arm64)
arm64_userland

lab_run_dirs "$OUT"

# ---- initramfs (as build-initramfs.sh, with arm64 binaries)
STAGE=$RUN/stage
arm64_stage_userland
mods_for "$STAGE/lab/modules-early.list" virtio_blk
mods_for "$STAGE/lab/modules.list" nvme ahci xhci_pci usb_storage sd_mod e1000e
lab_stage_guest "$HERE/workload-faultinject.sh" "$KO" "" "$@"
lab_cpio "$STAGE" "$RUN/initrd.cpio"
rm -rf "$STAGE"

truncate -s 256M "$RUN/out.img"; truncate -s 1G "$RUN/nvme.img"
truncate -s 512M "$RUN/sata.img"; truncate -s 128M "$RUN/usb.img"
APPEND="console=ttyAMA0 panic=-1 loglevel=6"
MACHINE=virt,gic-version=3
# shellcheck disable=SC2054
DEVS=(-cpu max,pauth-impdef=on -smp 2 -m 2G -nographic -no-reboot
  -kernel "$KD/vmlinuz" -initrd "$RUN/initrd.cpio" -append "$APPEND"
  -drive "file=$RUN/out.img,if=none,id=outd,format=raw" -device virtio-blk-pci,drive=outd
  -drive "file=$RUN/nvme.img,if=none,id=nvm,format=raw" -device nvme,serial=dmalab0001,drive=nvm
  -drive "file=$RUN/sata.img,if=none,id=sata0,format=raw" -device ich9-ahci,id=ahci -device ide-hd,drive=sata0,bus=ahci.0
  -device qemu-xhci,id=xhci
  -drive "file=$RUN/usb.img,if=none,id=usbd,format=raw" -device usb-storage,bus=xhci.0,drive=usbd
  -netdev user,id=n0,restrict=on -device e1000e,netdev=n0
  -device edu,dma_mask=0xffffffff)

# ---- the device tree: dump with the exact options, make PCIe non-coherent, add the pool
arm64_dump_dts "$RUN/virt.dts"
# for no-struct-page-pool: a 1 MiB no-map shared-dma-pool and a /dmafi node that points at it
cat > "$RUN/pool.dts" <<'DTS'
/ {
	reserved-memory {
		#address-cells = <0x02>;
		#size-cells = <0x02>;
		ranges;
		dmafi_pool: dmafi-pool@b0000000 {
			compatible = "shared-dma-pool";
			reg = <0x00 0xb0000000 0x00 0x100000>;
			no-map;
		};
	};
	dmafi {
		compatible = "lab,dmafi-pool-user";
		memory-region = <&dmafi_pool>;
	};
};
DTS
dts_noncoherent "$RUN/virt.dts" "$RUN/fi.dts" "$RUN/pool.dts"
dtc -q -I dts -O dtb -o "$RUN/fi.dtb" "$RUN/fi.dts"

# shellcheck disable=SC2054
QEMU=(timeout --kill-after=10 "$LAB_TIMEOUT" qemu-system-aarch64 -machine "$MACHINE"
  -accel tcg,thread=multi "${DEVS[@]}" -dtb "$RUN/fi.dtb")
echo ">> run folder $RUN; booting $KREL (arm64, non-coherent PCIe), console -> $LOGDIR/$NAME.console.log"
lab_boot_collect "dumpdtb of the same options; dma-coherent removed from pcie@10000000; reserved-memory dmafi-pool@b0000000 (shared-dma-pool, no-map, 1 MiB) + /dmafi { memory-region }" "$RUN/fi.dts"
