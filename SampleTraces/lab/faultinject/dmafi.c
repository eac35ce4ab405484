// SPDX-License-Identifier: GPL-2.0
/*
 * dmafi: DMA-API fault injection on QEMU's "edu" PCI device (1234:11e8).
 *
 * A test driver for dma-trace. It misuses the DMA API ON PURPOSE, one scenario at a time,
 * so that a trace of the dma/swiotlb/iommu tracepoints contains bugs whose kind and time
 * are known exactly. Never load it on a machine you care about.
 *
 *   probe   dma_set_mask_and_coherent(32 bits), one coherent "ring" (4 KiB) that lives
 *           until remove: its free at rmmod is the driver's visible teardown
 *   /sys/kernel/debug/dmafi/scenarios   the scenario names, one per line, in run order
 *   /sys/kernel/debug/dmafi/run         write a name: the scenario runs synchronously;
 *                                       the write fails with its error if it failed
 *   remove  frees the ring, then (silently, no DMA-API call) the scenario buffers
 *
 * The edu device's DMA engine really reads and writes guest memory through the DMA
 * address it is given (so through the IOMMU or into the swiotlb slot when there is one).
 * Its registers: 0x80 source, 0x88 destination, 0x90 count, 0x98 command (bit 0 start /
 * busy, bit 1 direction: 1 = edu buffer -> RAM). Its buffer sits at device address
 * 0x40000 and is 4 KiB long. QEMU 7.2 aborts on a transfer that ends exactly at the end
 * of that buffer, so no transfer here moves more than 2 KiB. A transfer completes
 * about 100 ms (QEMU virtual clock) after it is started; edu_xfer() polls.
 *
 * Buffers given to streaming mappings are never reused within one load: they are kept
 * on a list and kfree()d only in remove, so one scenario's leftovers (mappings the
 * model still thinks live) cannot overlap the next scenario's buffers.
 */
#include <linux/module.h>
#include <linux/pci.h>
#include <linux/dma-mapping.h>
#include <linux/dma-map-ops.h>
#include <linux/scatterlist.h>
#include <linux/debugfs.h>
#include <linux/slab.h>
#include <linux/mm.h>
#include <linux/vmalloc.h>
#include <linux/delay.h>
#include <linux/io.h>
#include <linux/uaccess.h>
#include <linux/version.h>
#ifdef CONFIG_OF_RESERVED_MEM
#include <linux/of.h>
#include <linux/of_reserved_mem.h>
#endif

#define DRV_NAME "dmafi"

#define EDU_REG_IDENT	0x00
#define EDU_REG_SRC	0x80
#define EDU_REG_DST	0x88
#define EDU_REG_CNT	0x90
#define EDU_REG_CMD	0x98
#define EDU_CMD_START	0x1
#define EDU_CMD_TO_RAM	0x2
#define EDU_BUF_ADDR	0x40000
#define EDU_MAX_XFER	2048

#define RING_SIZE	4096
#define MAX_KEEP	128

struct dmafi {
	struct pci_dev *pdev;
	struct device *dev;
	void __iomem *bar;
	void *ring;
	dma_addr_t ring_dma;
	struct mutex lock;
	struct dentry *dbg;
	void *keep[MAX_KEEP];
	int nkeep;
	const char *cur;
	unsigned int xfers;
};

static struct dmafi *the_fi;

#define LOG(fi, fmt, ...) dev_info((fi)->dev, "%s: " fmt, (fi)->cur, ##__VA_ARGS__)
#define ERR(fi, fmt, ...) dev_err((fi)->dev, "%s: " fmt, (fi)->cur, ##__VA_ARGS__)

/* A zeroed kmalloc buffer that stays allocated until remove. */
static void *fi_buf(struct dmafi *fi, size_t size)
{
	void *p;

	if (fi->nkeep >= MAX_KEEP)
		return NULL;
	p = kzalloc(size, GFP_KERNEL);
	if (p)
		fi->keep[fi->nkeep++] = p;
	return p;
}

/*
 * One real edu DMA transfer of len bytes (at most EDU_MAX_XFER) between the device's
 * buffer and the DMA address addr. dev_writes: the device writes guest memory at addr
 * (the direction a FROM_DEVICE mapping is for); otherwise it reads it.
 */
static int edu_xfer(struct dmafi *fi, dma_addr_t addr, size_t len, bool dev_writes)
{
	unsigned long deadline = jiffies + 5 * HZ;
	u64 src = dev_writes ? EDU_BUF_ADDR : addr;
	u64 dst = dev_writes ? addr : EDU_BUF_ADDR;

	if (len == 0 || addr == DMA_MAPPING_ERROR)
		return -EINVAL;
	if (len > EDU_MAX_XFER)
		len = EDU_MAX_XFER;
	writeq(src, fi->bar + EDU_REG_SRC);
	writeq(dst, fi->bar + EDU_REG_DST);
	writeq(len, fi->bar + EDU_REG_CNT);
	writeq(EDU_CMD_START | (dev_writes ? EDU_CMD_TO_RAM : 0), fi->bar + EDU_REG_CMD);
	while (readq(fi->bar + EDU_REG_CMD) & EDU_CMD_START) {
		if (time_after(jiffies, deadline)) {
			ERR(fi, "edu DMA at %#llx len %zu timed out\n", (u64)addr, len);
			return -ETIMEDOUT;
		}
		usleep_range(2000, 4000);
	}
	fi->xfers++;
	LOG(fi, "edu DMA: device %s %zu bytes at dma %#llx\n",
	    dev_writes ? "wrote" : "read", len, (u64)addr);
	return 0;
}

/* Fill the edu buffer with a known pattern: the device reads it from a coherent buffer. */
static int edu_load_pattern(struct dmafi *fi, u8 seed)
{
	memset(fi->ring, seed, EDU_MAX_XFER);
	return edu_xfer(fi, fi->ring_dma, EDU_MAX_XFER, false);
}

static dma_addr_t map_checked(struct dmafi *fi, void *buf, size_t size,
			      enum dma_data_direction dir, unsigned long attrs)
{
	dma_addr_t h = dma_map_single_attrs(fi->dev, buf, size, dir, attrs);

	if (dma_mapping_error(fi->dev, h)) {
		ERR(fi, "dma_map_single(%zu, dir %d) failed\n", size, dir);
		return DMA_MAPPING_ERROR;
	}
	LOG(fi, "mapped buf phys %#llx size %zu dir %d attrs %#lx -> dma %#llx\n",
	    (u64)virt_to_phys(buf), size, dir, attrs, (u64)h);
	return h;
}

/* ---------------------------------------------------------------- clean scenarios */

static int sc_clean_single(struct dmafi *fi)
{
	u8 *buf = fi_buf(fi, 4096);
	dma_addr_t h;
	int ret;

	if (!buf)
		return -ENOMEM;
	memset(buf, 0x5a, 4096);
	h = map_checked(fi, buf, 4096, DMA_TO_DEVICE, 0);
	if (h == DMA_MAPPING_ERROR)
		return -EIO;
	ret = edu_xfer(fi, h, 2048, false);
	dma_unmap_single(fi->dev, h, 4096, DMA_TO_DEVICE);
	return ret;
}

static int sc_clean_sg(struct dmafi *fi)
{
	struct scatterlist sg[3], *s;
	int i, ents, ret = 0;

	sg_init_table(sg, 3);
	for (i = 0; i < 3; i++) {
		void *b = fi_buf(fi, 4096);

		if (!b)
			return -ENOMEM;
		memset(b, 0x30 + i, 4096);
		sg_set_buf(&sg[i], b, 4096);
	}
	ents = dma_map_sg(fi->dev, sg, 3, DMA_TO_DEVICE);
	if (ents == 0) {
		ERR(fi, "dma_map_sg failed\n");
		return -EIO;
	}
	LOG(fi, "dma_map_sg nents 3 -> ents %d\n", ents);
	for_each_sg(sg, s, ents, i) {
		LOG(fi, "  seg %d: dma %#llx len %u\n", i, (u64)sg_dma_address(s), sg_dma_len(s));
		if (!ret)
			ret = edu_xfer(fi, sg_dma_address(s), min_t(size_t, sg_dma_len(s), 2048), false);
	}
	dma_unmap_sg(fi->dev, sg, 3, DMA_TO_DEVICE);
	return ret;
}

static int sc_clean_coherent(struct dmafi *fi)
{
	dma_addr_t h;
	u8 *cpu = dma_alloc_coherent(fi->dev, 4096, &h, GFP_KERNEL);
	int ret;

	if (!cpu)
		return -ENOMEM;
	LOG(fi, "coherent 4096: cpu %px dma %#llx (vmalloc: %d)\n", cpu, (u64)h, is_vmalloc_addr(cpu));
	ret = edu_load_pattern(fi, 0xc3);
	if (!ret)
		ret = edu_xfer(fi, h, 2048, true);
	LOG(fi, "cpu reads %#x (expect 0xc3)\n", cpu[100]);
	dma_free_coherent(fi->dev, 4096, cpu, h);
	return ret;
}

static int sc_clean_partial_sync(struct dmafi *fi)
{
	u8 *buf = fi_buf(fi, 4096);
	dma_addr_t h;
	int ret;

	if (!buf)
		return -ENOMEM;
	ret = edu_load_pattern(fi, 0x11);
	if (ret)
		return ret;
	h = map_checked(fi, buf, 4096, DMA_FROM_DEVICE, 0);
	if (h == DMA_MAPPING_ERROR)
		return -EIO;
	ret = edu_xfer(fi, h, 2048, true);
	dma_sync_single_range_for_cpu(fi->dev, h, 64, 1500, DMA_FROM_DEVICE);
	LOG(fi, "synced 1500 bytes at +64 for cpu, reads %#x (expect 0x11)\n", buf[100]);
	dma_sync_single_for_device(fi->dev, h, 4096, DMA_FROM_DEVICE);
	dma_unmap_single(fi->dev, h, 4096, DMA_FROM_DEVICE);
	return ret;
}

static int sc_clean_bidir(struct dmafi *fi)
{
	u8 *buf = fi_buf(fi, 4096);
	dma_addr_t h;
	int ret;

	if (!buf)
		return -ENOMEM;
	memset(buf, 0x77, 4096);
	ret = edu_load_pattern(fi, 0x22);
	if (ret)
		return ret;
	h = map_checked(fi, buf, 4096, DMA_BIDIRECTIONAL, 0);
	if (h == DMA_MAPPING_ERROR)
		return -EIO;
	dma_sync_single_for_device(fi->dev, h, 4096, DMA_BIDIRECTIONAL);
	ret = edu_xfer(fi, h, 2048, true);
	dma_sync_single_for_cpu(fi->dev, h, 4096, DMA_BIDIRECTIONAL);
	LOG(fi, "cpu reads %#x at 100 (expect 0x22) and %#x at 3000 (expect 0x77)\n", buf[100], buf[3000]);
	dma_unmap_single(fi->dev, h, 4096, DMA_BIDIRECTIONAL);
	return ret;
}

/* ---------------------------------------------------------------- overlapping mappings */

static int sc_double_map_dirs(struct dmafi *fi)
{
	u8 *buf = fi_buf(fi, 4096);
	dma_addr_t hf, ht;
	int ret;

	if (!buf)
		return -ENOMEM;
	hf = map_checked(fi, buf, 4096, DMA_FROM_DEVICE, 0);
	if (hf == DMA_MAPPING_ERROR)
		return -EIO;
	ht = map_checked(fi, buf, 4096, DMA_TO_DEVICE, 0);	/* BUG: same memory, FROM and TO */	/* FI-LINE: double-map-dirs */
	if (ht == DMA_MAPPING_ERROR) {
		dma_unmap_single(fi->dev, hf, 4096, DMA_FROM_DEVICE);
		return -EIO;
	}
	ret = edu_xfer(fi, ht, 2048, false);
	if (!ret)
		ret = edu_xfer(fi, hf, 2048, true);
	dma_unmap_single(fi->dev, ht, 4096, DMA_TO_DEVICE);
	dma_unmap_single(fi->dev, hf, 4096, DMA_FROM_DEVICE);
	return ret;
}

static int sc_double_map_same(struct dmafi *fi)
{
	u8 *buf = fi_buf(fi, 4096);
	dma_addr_t h1, h2;
	int ret;

	if (!buf)
		return -ENOMEM;
	ret = edu_load_pattern(fi, 0x44);
	if (ret)
		return ret;
	h1 = map_checked(fi, buf, 4096, DMA_FROM_DEVICE, 0);
	if (h1 == DMA_MAPPING_ERROR)
		return -EIO;
	h2 = map_checked(fi, buf, 4096, DMA_FROM_DEVICE, 0);	/* BUG: mapped twice for the device to write */	/* FI-LINE: double-map-same */
	if (h2 == DMA_MAPPING_ERROR) {
		dma_unmap_single(fi->dev, h1, 4096, DMA_FROM_DEVICE);
		return -EIO;
	}
	ret = edu_xfer(fi, h2, 2048, true);
	dma_unmap_single(fi->dev, h2, 4096, DMA_FROM_DEVICE);
	LOG(fi, "after unmapping the second mapping the cpu reads %#x (device wrote 0x44)\n", buf[100]);
	dma_unmap_single(fi->dev, h1, 4096, DMA_FROM_DEVICE);
	LOG(fi, "after unmapping the first mapping the cpu reads %#x (device wrote 0x44)\n", buf[100]);
	return ret;
}

static int sc_streaming_over_coherent(struct dmafi *fi)
{
	dma_addr_t ch, h;
	u8 *cpu = dma_alloc_coherent(fi->dev, 4096, &ch, GFP_KERNEL);
	struct page *page;
	int ret = 0;

	if (!cpu)
		return -ENOMEM;
	LOG(fi, "coherent 4096: cpu %px dma %#llx (vmalloc: %d, coherent device: %d)\n",
	    cpu, (u64)ch, is_vmalloc_addr(cpu), dev_is_dma_coherent(fi->dev));
	if (is_vmalloc_addr(cpu) && !dev_is_dma_coherent(fi->dev)) {
		/*
		 * virt_to_page() of a vmalloc address is a made-up page; on a non-coherent
		 * device dma_map_page() would do cache maintenance through it and crash.
		 * Take the real page behind the remap instead: the same bug (a streaming
		 * mapping of coherent memory), minus the crash.
		 */
		page = vmalloc_to_page(cpu);
		LOG(fi, "non-coherent + remapped: using vmalloc_to_page() instead of virt_to_page()\n");
	} else {
		page = virt_to_page(cpu);	/* BUG: virt_to_page() of coherent memory */
	}
	LOG(fi, "page phys %#llx\n", (u64)page_to_phys(page));
	h = dma_map_page(fi->dev, page, 0, 4096, DMA_FROM_DEVICE);	/* FI-LINE: streaming-over-coherent */
	if (dma_mapping_error(fi->dev, h)) {
		ERR(fi, "dma_map_page failed\n");
		ret = -EIO;
	} else {
		LOG(fi, "streaming map of the coherent page -> dma %#llx\n", (u64)h);
		dma_unmap_page(fi->dev, h, 4096, DMA_FROM_DEVICE);
	}
	dma_free_coherent(fi->dev, 4096, cpu, ch);
	return ret;
}

static int sc_no_kernel_mapping(struct dmafi *fi)
{
	dma_addr_t h;
	void *cookie = dma_alloc_attrs(fi->dev, 8192, &h, GFP_KERNEL, DMA_ATTR_NO_KERNEL_MAPPING);	/* FI-LINE: no-kernel-mapping */
	int ret;

	if (!cookie)
		return -ENOMEM;
	/* The cookie is not an address the CPU may use; only the device touches the memory. */
	LOG(fi, "NO_KERNEL_MAPPING 8192: cookie %px dma %#llx\n", cookie, (u64)h);
	ret = edu_xfer(fi, h, 2048, true);
	dma_free_attrs(fi->dev, 8192, cookie, h, DMA_ATTR_NO_KERNEL_MAPPING);
	return ret;
}

/* ---------------------------------------------------------------- wrong unmaps */

static int sc_unmap_wrong_size(struct dmafi *fi)
{
	u8 *buf = fi_buf(fi, 4096);
	dma_addr_t h;
	int ret;

	if (!buf)
		return -ENOMEM;
	h = map_checked(fi, buf, 4096, DMA_FROM_DEVICE, 0);
	if (h == DMA_MAPPING_ERROR)
		return -EIO;
	ret = edu_xfer(fi, h, 2048, true);
	dma_unmap_single(fi->dev, h, 2048, DMA_FROM_DEVICE);	/* BUG: mapped 4096 */	/* FI-LINE: unmap-wrong-size */
	return ret;
}

static int sc_unmap_wrong_dir(struct dmafi *fi)
{
	u8 *buf = fi_buf(fi, 4096);
	dma_addr_t h;
	int ret;

	if (!buf)
		return -ENOMEM;
	h = map_checked(fi, buf, 4096, DMA_FROM_DEVICE, 0);
	if (h == DMA_MAPPING_ERROR)
		return -EIO;
	ret = edu_xfer(fi, h, 2048, true);
	dma_unmap_single(fi->dev, h, 4096, DMA_TO_DEVICE);	/* BUG: mapped FROM_DEVICE */	/* FI-LINE: unmap-wrong-dir */
	return ret;
}

static int sc_unmap_wrong_function(struct dmafi *fi)
{
	struct scatterlist sg;
	void *b = fi_buf(fi, 4096);
	int ents, ret;

	if (!b)
		return -ENOMEM;
	sg_init_one(&sg, b, 4096);
	ents = dma_map_sg(fi->dev, &sg, 1, DMA_TO_DEVICE);
	if (ents == 0)
		return -EIO;
	LOG(fi, "dma_map_sg 1 -> dma %#llx len %u\n", (u64)sg_dma_address(&sg), sg_dma_len(&sg));
	ret = edu_xfer(fi, sg_dma_address(&sg), 2048, false);
	/* BUG: an sg mapping released with dma_unmap_page() */
	dma_unmap_page(fi->dev, sg_dma_address(&sg), sg_dma_len(&sg), DMA_TO_DEVICE);	/* FI-LINE: unmap-wrong-function */
	return ret;
}

static int sc_unmap_sg_count(struct dmafi *fi)
{
	struct scatterlist sg[3], *s;
	int i, ents, ret = 0;

	sg_init_table(sg, 3);
	for (i = 0; i < 3; i++) {
		void *b = fi_buf(fi, 4096);

		if (!b)
			return -ENOMEM;
		sg_set_buf(&sg[i], b, 4096);
	}
	ents = dma_map_sg(fi->dev, sg, 3, DMA_TO_DEVICE);
	if (ents == 0)
		return -EIO;
	LOG(fi, "dma_map_sg nents 3 -> ents %d\n", ents);
	for_each_sg(sg, s, ents, i)
		if (!ret)
			ret = edu_xfer(fi, sg_dma_address(s), min_t(size_t, sg_dma_len(s), 2048), false);
	dma_unmap_sg(fi->dev, sg, 1, DMA_TO_DEVICE);	/* BUG: mapped with nents 3 */	/* FI-LINE: unmap-sg-count */
	return ret;
}

static int sc_double_unmap(struct dmafi *fi)
{
	u8 *buf = fi_buf(fi, 4096);
	dma_addr_t h;
	int ret;

	if (!buf)
		return -ENOMEM;
	h = map_checked(fi, buf, 4096, DMA_TO_DEVICE, 0);
	if (h == DMA_MAPPING_ERROR)
		return -EIO;
	ret = edu_xfer(fi, h, 2048, false);
	dma_unmap_single(fi->dev, h, 4096, DMA_TO_DEVICE);
	dma_unmap_single(fi->dev, h, 4096, DMA_TO_DEVICE);	/* BUG: again */	/* FI-LINE: double-unmap */
	return ret;
}

/* ---------------------------------------------------------------- wrong frees */

static int sc_free_wrong_size(struct dmafi *fi)
{
	dma_addr_t h;
	void *cpu = dma_alloc_coherent(fi->dev, 8192, &h, GFP_KERNEL);
	int ret;

	if (!cpu)
		return -ENOMEM;
	LOG(fi, "coherent 8192: cpu %px dma %#llx\n", cpu, (u64)h);
	ret = edu_xfer(fi, h, 2048, true);
	dma_free_coherent(fi->dev, 4096, cpu, h);	/* BUG: allocated 8192 */	/* FI-LINE: free-wrong-size */
	return ret;
}

static int sc_free_wrong_addr(struct dmafi *fi)
{
	dma_addr_t h;
	u8 *cpu = dma_alloc_coherent(fi->dev, 4096, &h, GFP_KERNEL);
	int ret;

	if (!cpu)
		return -ENOMEM;
	LOG(fi, "coherent 4096: cpu %px dma %#llx\n", cpu, (u64)h);
	ret = edu_xfer(fi, h, 2048, true);
	dma_free_coherent(fi->dev, 4096, cpu + 64, h);	/* BUG: not the address alloc returned */	/* FI-LINE: free-wrong-addr */
	return ret;
}

/* ---------------------------------------------------------------- wrong syncs */

static int sc_sync_out_of_range(struct dmafi *fi)
{
	u8 *buf = fi_buf(fi, 4096);
	dma_addr_t h;
	int ret;

	if (!buf)
		return -ENOMEM;
	h = map_checked(fi, buf, 2048, DMA_FROM_DEVICE, 0);
	if (h == DMA_MAPPING_ERROR)
		return -EIO;
	ret = edu_xfer(fi, h, 2048, true);
	/* BUG: 1024..3072 of a 2048-byte mapping */
	dma_sync_single_range_for_cpu(fi->dev, h, 1024, 2048, DMA_FROM_DEVICE);	/* FI-LINE: sync-out-of-range */
	dma_unmap_single(fi->dev, h, 2048, DMA_FROM_DEVICE);
	return ret;
}

static int sc_sync_wrong_dir(struct dmafi *fi)
{
	u8 *buf = fi_buf(fi, 4096);
	dma_addr_t h;
	int ret;

	if (!buf)
		return -ENOMEM;
	h = map_checked(fi, buf, 4096, DMA_FROM_DEVICE, 0);
	if (h == DMA_MAPPING_ERROR)
		return -EIO;
	ret = edu_xfer(fi, h, 2048, true);
	dma_sync_single_for_cpu(fi->dev, h, 4096, DMA_BIDIRECTIONAL);	/* BUG: mapped FROM_DEVICE */	/* FI-LINE: sync-wrong-dir */
	dma_unmap_single(fi->dev, h, 4096, DMA_FROM_DEVICE);
	return ret;
}

static int sc_sync_never_mapped(struct dmafi *fi)
{
	u8 *buf = fi_buf(fi, 4096);
	dma_addr_t h;

	if (!buf)
		return -ENOMEM;
	/* BUG: a DMA address nobody mapped (the buffer's physical address, as dma-direct would give) */
	h = (dma_addr_t)virt_to_phys(buf);
	LOG(fi, "sync_for_cpu of never-mapped dma %#llx size 512\n", (u64)h);
	dma_sync_single_for_cpu(fi->dev, h, 512, DMA_FROM_DEVICE);	/* FI-LINE: sync-never-mapped */
	return 0;
}

static int sc_sync_after_unmap(struct dmafi *fi)
{
	u8 *buf = fi_buf(fi, 4096);
	dma_addr_t h;
	int ret;

	if (!buf)
		return -ENOMEM;
	h = map_checked(fi, buf, 4096, DMA_FROM_DEVICE, 0);
	if (h == DMA_MAPPING_ERROR)
		return -EIO;
	ret = edu_xfer(fi, h, 2048, true);
	dma_unmap_single(fi->dev, h, 4096, DMA_FROM_DEVICE);
	dma_sync_single_for_cpu(fi->dev, h, 4096, DMA_FROM_DEVICE);	/* BUG: already unmapped */	/* FI-LINE: sync-after-unmap */
	return ret;
}

static int sc_sync_cpu_twice(struct dmafi *fi)
{
	u8 *buf = fi_buf(fi, 4096);
	dma_addr_t h;
	int ret;

	if (!buf)
		return -ENOMEM;
	ret = edu_load_pattern(fi, 0x61);
	if (ret)
		return ret;
	h = map_checked(fi, buf, 4096, DMA_FROM_DEVICE, 0);
	if (h == DMA_MAPPING_ERROR)
		return -EIO;
	ret = edu_xfer(fi, h, 2048, true);
	dma_sync_single_for_cpu(fi->dev, h, 4096, DMA_FROM_DEVICE);
	LOG(fi, "first read %#x (expect 0x61)\n", buf[100]);
	if (!ret)
		ret = edu_load_pattern(fi, 0x62);
	/* BUG: the device writes again without a sync_for_device in between */
	if (!ret)
		ret = edu_xfer(fi, h, 2048, true);
	dma_sync_single_for_cpu(fi->dev, h, 4096, DMA_FROM_DEVICE);	/* FI-LINE: sync-cpu-twice */
	LOG(fi, "second read %#x (device wrote 0x62)\n", buf[100]);
	dma_unmap_single(fi->dev, h, 4096, DMA_FROM_DEVICE);
	return ret;
}

/*
 * Two buffers side by side in one 64-byte cache line (one kmalloc(64) object): bytes
 * 0..from_len-1 mapped FROM_DEVICE, the rest TO_DEVICE, both live at once. Harmless on a
 * cache-coherent device; on a non-coherent one the invalidation for the device's write
 * throws away whatever the CPU wrote into the other half meanwhile. arm64 kernels
 * bounce a FROM_DEVICE mapping through swiotlb when its size is not cache-line aligned
 * "as kmalloc would round it" (DMA_BOUNCE_UNALIGNED_KMALLOC): 32 bytes are bounced (the
 * bug is hidden on this kernel), 48 bytes are not (kmalloc_size_roundup(48) = 64 counts
 * as aligned), so the line really is shared.
 */
static int cacheline_pair(struct dmafi *fi, size_t from_len)
{
	u8 *buf = fi_buf(fi, 64);	/* kmalloc-64: one cache line */
	size_t to_len = 64 - from_len;
	dma_addr_t ha, hb;
	int ret;

	if (!buf)
		return -ENOMEM;
	memset(buf + from_len, 0x99, to_len);
	ha = map_checked(fi, buf, from_len, DMA_FROM_DEVICE, 0);
	if (ha == DMA_MAPPING_ERROR)
		return -EIO;
	/* BUG (on a non-coherent device): the rest of the same cache line, mapped too */
	hb = map_checked(fi, buf + from_len, to_len, DMA_TO_DEVICE, 0);	/* FI-LINE: cacheline-share cacheline-share-bounced */
	if (hb == DMA_MAPPING_ERROR) {
		dma_unmap_single(fi->dev, ha, from_len, DMA_FROM_DEVICE);
		return -EIO;
	}
	LOG(fi, "FROM_DEVICE %zu bytes %s, TO_DEVICE %zu bytes in the same line\n", from_len,
	    ha == (dma_addr_t)virt_to_phys(buf) ? "not bounced" : "bounced", to_len);
	ret = edu_xfer(fi, hb, to_len, false);
	if (!ret)
		ret = edu_xfer(fi, ha, from_len, true);
	dma_unmap_single(fi->dev, ha, from_len, DMA_FROM_DEVICE);
	dma_unmap_single(fi->dev, hb, to_len, DMA_TO_DEVICE);
	LOG(fi, "cpu reads %#x at 0 (device copied 0x99 there) and %#x at %zu (expect 0x99)\n",
	    buf[0], buf[from_len], from_len);
	return ret;
}

static int sc_cacheline_share(struct dmafi *fi)
{
	return cacheline_pair(fi, 48);
}

static int sc_cacheline_share_bounced(struct dmafi *fi)
{
	return cacheline_pair(fi, 32);
}

static int sc_skip_cpu_sync(struct dmafi *fi)
{
	u8 *buf = fi_buf(fi, 4096);
	dma_addr_t h;
	int ret;

	if (!buf)
		return -ENOMEM;
	ret = edu_load_pattern(fi, 0x55);
	if (ret)
		return ret;
	h = map_checked(fi, buf, 4096, DMA_FROM_DEVICE, DMA_ATTR_SKIP_CPU_SYNC);
	if (h == DMA_MAPPING_ERROR)
		return -EIO;
	ret = edu_xfer(fi, h, 2048, true);
	/* BUG: no sync_for_cpu anywhere, and the unmap skips it too */
	dma_unmap_single_attrs(fi->dev, h, 4096, DMA_FROM_DEVICE, DMA_ATTR_SKIP_CPU_SYNC);	/* FI-LINE: skip-cpu-sync */
	LOG(fi, "cpu reads %#x (device wrote 0x55; 0 means the data never reached the cpu)\n", buf[100]);
	return ret;
}

/*
 * Second way to make a map fail, where no small mask is accepted (dma-direct with all of
 * RAM inside ZONE_DMA, e.g. arm64 virt with 2 GiB): fill the swiotlb pool. A
 * non-coherent device bounces every FROM_DEVICE mapping whose size is not a multiple of
 * the cache line (DMA_BOUNCE_UNALIGNED_KMALLOC); each such mapping takes a 2 KiB slot.
 * The fillers are correct driver code (checked, NO_WARN, each in its own cache line);
 * the one map that is not checked is the bug.
 */
static int exhaust_swiotlb(struct dmafi *fi)
{
	const int max = 8192;
	/*
	 * 32 bytes: not a multiple of the cache line, and kmalloc would not round it up to
	 * one either (kmalloc_size_roundup(48) is 64, which counts as aligned: no bounce).
	 */
	const size_t slot = 64, len = 32;
	u8 *pool = fi_buf(fi, max * slot);
	dma_addr_t *hs, h;
	int i, n, ret = 0;

	if (!pool)
		return -ENOMEM;
	hs = kvmalloc_array(max, sizeof(*hs), GFP_KERNEL);
	if (!hs)
		return -ENOMEM;
	for (n = 0; n < max; n++) {
		hs[n] = dma_map_single_attrs(fi->dev, pool + n * slot, len, DMA_FROM_DEVICE,
					     DMA_ATTR_NO_WARN);
		if (dma_mapping_error(fi->dev, hs[n]))
			break;
		if (n == 0 && hs[0] == (dma_addr_t)virt_to_phys(pool)) {
			/* not bounced (a coherent device): this cannot fill anything */
			dma_unmap_single(fi->dev, hs[0], len, DMA_FROM_DEVICE);
			ERR(fi, "small FROM_DEVICE mappings are not bounced here: cannot fill swiotlb\n");
			kvfree(hs);
			return -EOPNOTSUPP;
		}
	}
	if (n == max) {
		ERR(fi, "%d bounced mappings did not fill swiotlb\n", n);
		ret = -EOPNOTSUPP;
	} else {
		LOG(fi, "%d bounced %zu-byte FROM_DEVICE mappings filled the swiotlb pool (the next map failed, checked)\n",
		    n, len);
		h = dma_map_single(fi->dev, pool + n * slot, len, DMA_FROM_DEVICE);
		LOG(fi, "dma_map_single returned %#llx (%s)\n", (u64)h,
		    h == DMA_MAPPING_ERROR ? "DMA_MAPPING_ERROR" : "a real mapping: the failure was not forced");
		/* BUG: dma_mapping_error() never asked; the "mapping" is used and unmapped */
		dma_unmap_single(fi->dev, h, len, DMA_FROM_DEVICE);	/* FI-LINE: unchecked-map-failure */
		if (h != DMA_MAPPING_ERROR)
			ret = -EAGAIN;
	}
	for (i = 0; i < n; i++)
		dma_unmap_single(fi->dev, hs[i], len, DMA_FROM_DEVICE);
	kvfree(hs);
	return ret;
}

static int sc_unchecked_map_failure(struct dmafi *fi)
{
	static const int bits[] = { 12, 24 };
	u8 *buf = NULL, *spare;
	dma_addr_t h, hs;
	int i, mask_bits = 0;

	/*
	 * Make dma_map_single() fail for real: a DMA mask the buffer lies above, with no
	 * way around it. iommu-dma accepts any mask and fails to find an IOVA below 4 KiB;
	 * dma-direct refuses masks below ZONE_DMA (16 MiB on x86) but with a 24-bit mask a
	 * buffer above 16 MiB is not addressable, and swiotlb (if any) bounces into a pool
	 * that is above 16 MiB too, so the map fails either way. Where no such mask is
	 * accepted: exhaust_swiotlb().
	 *
	 * iommu-dma side effect: a failed IOVA allocation below 4 GiB sets the domain's
	 * max32_alloc_size hint, and every later 32-bit allocation of this device then fails
	 * fast until an IOVA is freed into the rbtree (rcache-sized frees do not count). So
	 * a spare 192 KiB mapping (48 pages: too big for the IOVA rcache) is made before and
	 * released after the failure; on dma-direct it is just one more clean map/unmap.
	 */
	spare = fi_buf(fi, 192 * 1024);
	if (!spare)
		return -ENOMEM;
	hs = map_checked(fi, spare, 192 * 1024, DMA_TO_DEVICE, 0);
	if (hs == DMA_MAPPING_ERROR)
		return -EIO;
	for (i = 0; i < ARRAY_SIZE(bits); i++) {
		if (dma_set_mask(fi->dev, DMA_BIT_MASK(bits[i])) == 0) {
			mask_bits = bits[i];
			break;
		}
	}
	if (!mask_bits) {
		int ret;

		LOG(fi, "no DMA mask below 32 bits accepted: filling swiotlb instead\n");
		ret = exhaust_swiotlb(fi);
		dma_unmap_single(fi->dev, hs, 192 * 1024, DMA_TO_DEVICE);
		return ret;
	}
	for (i = 0; i < 8; i++) {
		buf = fi_buf(fi, 4096);
		if (!buf || virt_to_phys(buf) >= DMA_BIT_MASK(mask_bits))
			break;
	}
	if (!buf) {
		dma_set_mask(fi->dev, DMA_BIT_MASK(32));
		dma_unmap_single(fi->dev, hs, 192 * 1024, DMA_TO_DEVICE);
		return -ENOMEM;
	}
	LOG(fi, "DMA mask now %d bits; buffer phys %#llx\n", mask_bits, (u64)virt_to_phys(buf));
	h = dma_map_single(fi->dev, buf, 4096, DMA_TO_DEVICE);
	dma_set_mask(fi->dev, DMA_BIT_MASK(32));
	LOG(fi, "dma_map_single returned %#llx (%s); mask back to 32 bits\n", (u64)h,
	    h == DMA_MAPPING_ERROR ? "DMA_MAPPING_ERROR" : "a real mapping: the failure was not forced");
	/* BUG: dma_mapping_error() never asked; the "mapping" is used and unmapped */
	dma_unmap_single(fi->dev, h, 4096, DMA_TO_DEVICE);	/* FI-LINE: unchecked-map-failure */
	dma_unmap_single(fi->dev, hs, 192 * 1024, DMA_TO_DEVICE);
	return h == DMA_MAPPING_ERROR ? 0 : -EAGAIN;
}

static int sc_leak(struct dmafi *fi)
{
	u8 *buf = fi_buf(fi, 4096);
	dma_addr_t h, ch;
	void *cpu;
	int ret;

	if (!buf)
		return -ENOMEM;
	h = map_checked(fi, buf, 4096, DMA_FROM_DEVICE, 0);	/* FI-LINE: leak mapping-leak */
	if (h == DMA_MAPPING_ERROR)
		return -EIO;
	ret = edu_xfer(fi, h, 2048, true);
	cpu = dma_alloc_coherent(fi->dev, 4096, &ch, GFP_KERNEL);	/* FI-LINE: leak coherent-leak */
	if (!cpu)
		return -ENOMEM;
	LOG(fi, "coherent 4096: cpu %px dma %#llx\n", cpu, (u64)ch);
	if (!ret)
		ret = edu_xfer(fi, ch, 2048, true);
	/* BUG: neither is ever released (the buffer is kfree()d in remove, still mapped) */
	LOG(fi, "leaking the mapping dma %#llx and the coherent buffer dma %#llx\n", (u64)h, (u64)ch);
	return ret;
}

static int sc_no_struct_page_pool(struct dmafi *fi)
{
#if defined(CONFIG_OF_RESERVED_MEM) && defined(CONFIG_DMA_DECLARE_COHERENT)
	/*
	 * A per-device coherent pool over memory outside the linear map. The in-kernel way,
	 * dma_declare_coherent_memory(), is not exported to modules; the exported way is a
	 * device-tree "shared-dma-pool" reserved-memory region with "no-map", attached with
	 * of_reserved_mem_device_init_by_idx(). The lab's arm64 variant adds a node
	 * /dmafi { memory-region = <&pool>; } for this (see record-faultinject.sh).
	 */
	struct device_node *np = of_find_node_by_path("/dmafi");
	dma_addr_t h;
	void *cpu;
	int ret;

	if (!np) {
		LOG(fi, "SKIPPED: no /dmafi node with a memory-region in the device tree\n");
		return -EOPNOTSUPP;
	}
	ret = of_reserved_mem_device_init_by_idx(fi->dev, np, 0);
	of_node_put(np);
	if (ret) {
		ERR(fi, "of_reserved_mem_device_init_by_idx: %d\n", ret);
		return ret;
	}
	cpu = dma_alloc_coherent(fi->dev, 4096, &h, GFP_KERNEL);	/* FI-LINE: no-struct-page-pool */
	if (!cpu) {
		of_reserved_mem_device_release(fi->dev);
		return -ENOMEM;
	}
	LOG(fi, "coherent 4096 from the no-map pool: cpu %px dma %#llx (vmalloc: %d)\n",
	    cpu, (u64)h, is_vmalloc_addr(cpu));
	ret = edu_xfer(fi, h, 2048, true);
	dma_free_coherent(fi->dev, 4096, cpu, h);
	of_reserved_mem_device_release(fi->dev);
	return ret;
#else
	LOG(fi, "SKIPPED: dma_declare_coherent_memory() is not exported to modules%s; "
	    "no device-tree reserved-memory either\n",
	    IS_ENABLED(CONFIG_DMA_DECLARE_COHERENT) ? "" :
	    " and CONFIG_DMA_DECLARE_COHERENT is not set in this kernel");
	return -EOPNOTSUPP;
#endif
}

/* ---------------------------------------------------------------- table and debugfs */

struct scenario {
	const char *name;
	int (*fn)(struct dmafi *fi);
};

/* Run order. scenarios.json lists the same names with their expected findings. */
static const struct scenario scenarios[] = {
	{ "clean-single", sc_clean_single },
	{ "clean-sg", sc_clean_sg },
	{ "clean-coherent", sc_clean_coherent },
	{ "clean-partial-sync", sc_clean_partial_sync },
	{ "clean-bidir", sc_clean_bidir },
	{ "double-map-dirs", sc_double_map_dirs },
	{ "double-map-same", sc_double_map_same },
	{ "streaming-over-coherent", sc_streaming_over_coherent },
	{ "no-kernel-mapping", sc_no_kernel_mapping },
	{ "unmap-wrong-size", sc_unmap_wrong_size },
	{ "unmap-wrong-dir", sc_unmap_wrong_dir },
	{ "unmap-wrong-function", sc_unmap_wrong_function },
	{ "unmap-sg-count", sc_unmap_sg_count },
	{ "double-unmap", sc_double_unmap },
	{ "free-wrong-size", sc_free_wrong_size },
	{ "free-wrong-addr", sc_free_wrong_addr },
	{ "sync-out-of-range", sc_sync_out_of_range },
	{ "sync-wrong-dir", sc_sync_wrong_dir },
	{ "sync-never-mapped", sc_sync_never_mapped },
	{ "sync-after-unmap", sc_sync_after_unmap },
	{ "sync-cpu-twice", sc_sync_cpu_twice },
	{ "cacheline-share", sc_cacheline_share },
	{ "cacheline-share-bounced", sc_cacheline_share_bounced },
	{ "skip-cpu-sync", sc_skip_cpu_sync },
	{ "unchecked-map-failure", sc_unchecked_map_failure },
	{ "leak", sc_leak },
	{ "no-struct-page-pool", sc_no_struct_page_pool },
};

static ssize_t run_write(struct file *file, const char __user *ubuf, size_t count, loff_t *ppos)
{
	struct dmafi *fi = the_fi;
	char name[64];
	size_t n = min(count, sizeof(name) - 1);
	int i, ret = -ENOENT;

	if (!fi)
		return -ENODEV;
	if (copy_from_user(name, ubuf, n))
		return -EFAULT;
	name[n] = 0;
	strim(name);
	mutex_lock(&fi->lock);
	for (i = 0; i < ARRAY_SIZE(scenarios); i++) {
		if (strcmp(name, scenarios[i].name))
			continue;
		fi->cur = scenarios[i].name;
		fi->xfers = 0;
		LOG(fi, "begin\n");
		ret = scenarios[i].fn(fi);
		LOG(fi, "end: %d (%u edu transfers)\n", ret, fi->xfers);
		fi->cur = "-";
		break;
	}
	mutex_unlock(&fi->lock);
	if (ret == -ENOENT)
		pr_err(DRV_NAME ": unknown scenario '%s'\n", name);
	return ret < 0 ? ret : count;
}

static const struct file_operations run_fops = {
	.owner = THIS_MODULE,
	.write = run_write,
	.llseek = noop_llseek,
};

static int scenarios_show(struct seq_file *m, void *v)
{
	int i;

	for (i = 0; i < ARRAY_SIZE(scenarios); i++)
		seq_printf(m, "%s\n", scenarios[i].name);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(scenarios);

static int dmafi_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	struct dmafi *fi;
	int ret;

	if (the_fi)
		return -EBUSY;	/* one edu device is enough */
	fi = devm_kzalloc(&pdev->dev, sizeof(*fi), GFP_KERNEL);
	if (!fi)
		return -ENOMEM;
	fi->pdev = pdev;
	fi->dev = &pdev->dev;
	fi->cur = "probe";
	mutex_init(&fi->lock);
	ret = pcim_enable_device(pdev);
	if (ret)
		return ret;
	fi->bar = pcim_iomap(pdev, 0, 0);
	if (!fi->bar)
		return -ENOMEM;
	ret = dma_set_mask_and_coherent(fi->dev, DMA_BIT_MASK(32));
	if (ret)
		return ret;
	pci_set_master(pdev);
	LOG(fi, "edu ident %#x, coherent device: %d\n", readl(fi->bar + EDU_REG_IDENT),
	    dev_is_dma_coherent(fi->dev));
	fi->ring = dma_alloc_coherent(fi->dev, RING_SIZE, &fi->ring_dma, GFP_KERNEL);
	if (!fi->ring)
		return -ENOMEM;
	LOG(fi, "ring: cpu %px dma %#llx size %d\n", fi->ring, (u64)fi->ring_dma, RING_SIZE);
	fi->dbg = debugfs_create_dir(DRV_NAME, NULL);
	debugfs_create_file("run", 0200, fi->dbg, NULL, &run_fops);
	debugfs_create_file("scenarios", 0444, fi->dbg, NULL, &scenarios_fops);
	pci_set_drvdata(pdev, fi);
	fi->cur = "-";
	the_fi = fi;
	return 0;
}

static void dmafi_remove(struct pci_dev *pdev)
{
	struct dmafi *fi = pci_get_drvdata(pdev);
	int i;

	debugfs_remove_recursive(fi->dbg);
	mutex_lock(&fi->lock);
	the_fi = NULL;
	fi->cur = "remove";
	/* The driver's teardown: the probe-time coherent ring goes last. */
	dma_free_coherent(fi->dev, RING_SIZE, fi->ring, fi->ring_dma);
	LOG(fi, "ring freed\n");
	for (i = 0; i < fi->nkeep; i++)
		kfree(fi->keep[i]);
	mutex_unlock(&fi->lock);
}

static const struct pci_device_id dmafi_ids[] = {
	{ PCI_DEVICE(0x1234, 0x11e8) },
	{ }
};
MODULE_DEVICE_TABLE(pci, dmafi_ids);

static struct pci_driver dmafi_driver = {
	.name = DRV_NAME,
	.id_table = dmafi_ids,
	.probe = dmafi_probe,
	.remove = dmafi_remove,
};
module_pci_driver(dmafi_driver);

MODULE_DESCRIPTION("DMA-API fault injection on QEMU's edu device (test driver for dma-trace)");
MODULE_LICENSE("GPL");
