"""The team's corpus of legal and illegal DMA-API usage, written from the kernel's sources.

Each case is a small trace of what a driver does, a citation (kernel function or documentation
section) for why it is legal or illegal, and for illegal cases the rule that must fire and the
event it must fire at. `python3 Scripts/corpus/generate.py` writes Tests/Corpus from this file.
"""
from render import Event, MAPPING_ERROR

A = "0000:00:05.0"
B = "0000:00:06.0"
LINEAR = 0xFFFF888000000000          # x86-64 linear map (page_offset_base without KASLR)
ARM_LINEAR = 0xFFFF000000000000      # arm64 linear map start (48-bit VA)

DEBUG = "kernel/dma/debug.c"
API = "Documentation/core-api/dma-api.rst"
HOWTO = "Documentation/core-api/dma-api-howto.rst"
ATTRS = "Documentation/core-api/dma-attributes.rst"
MAPPING = "kernel/dma/mapping.c"
DIRECT = "kernel/dma/direct.c"
SWIOTLB = "kernel/dma/swiotlb.c"
IOMMU = "drivers/iommu/dma-iommu.c"

CASES = []


class Case:
    def __init__(self, cid, family, legal, cite, kernel="7", fmt="tracefs", arch="x86", why=""):
        self.id, self.family, self.legal, self.cite = cid, family, legal, cite
        self.kernel, self.fmt, self.arch, self.why = kernel, fmt, arch, why
        self.events, self.t, self.expect = [], 1.0, []
        # Findings about the trace itself rather than the driver (a lossy recording) that a case may show.
        self.allow = []
        self.linear = ARM_LINEAR if arch == "arm64" else LINEAR
        CASES.append(self)

    def add(self, name, dt=0.001, cpu=0, task="kworker/u8:1", pid=29, **f):
        self.t += dt
        e = Event(round(self.t, 6), name, f, cpu=cpu, task=task, pid=pid)
        self.events.append(e)
        return e

    def expects(self, rule, event):
        self.expect.append({"rule": rule, "at": "%.6f" % event.ts})
        return event

    # -- the DMA API, in the event names of the case's kernel --------------------------------
    def probe(self, dev=A, dma=0xF0000, size=4096, virt=None):
        """The driver's probe-time ring: the device's history starts inside the trace."""
        return self.alloc(dma, size, dev=dev, virt=virt)

    def alloc(self, dma, size, dev=A, attrs="", virt=None):
        return self.add("dma_alloc", dev=dev, dma=dma, size=size, virt=virt if virt is not None else self.linear + dma, attrs=attrs)

    def free(self, dma, size, dev=A, attrs="", virt=None):
        return self.add("dma_free", dev=dev, dma=dma, size=size, virt=virt if virt is not None else self.linear + dma, attrs=attrs)

    def alloc_pages(self, dma, size, dir, dev=A, phys=None, virt=None):
        """dma_alloc_pages / dma_alloc_noncoherent: 6.12.0 traced them as dma_map_page, 6.13+ as dma_alloc_pages."""
        phys = dma if phys is None else phys
        if self.kernel == "6.12.0":
            return self.add("dma_map_page", dev=dev, dir=dir, dma=dma, size=size, phys=phys)
        return self.add("dma_alloc_pages", dev=dev, dir=dir, dma=dma, size=size, virt=virt if virt is not None else self.linear + phys)

    def free_pages(self, dma, size, dir, dev=A, phys=None, virt=None):
        phys = dma if phys is None else phys
        if self.kernel == "6.12.0":
            return self.add("dma_unmap_page", dev=dev, dir=dir, dma=dma, size=size)
        return self.add("dma_free_pages", dev=dev, dir=dir, dma=dma, size=size, virt=virt if virt is not None else self.linear + phys)

    def alloc_sgt(self, dma, size, dir, phys, dev=A, attrs=""):
        return self.add("dma_alloc_sgt", dev=dev, dir=dir, dma=dma, size=size, phys=phys, attrs=attrs)

    def free_sgt(self, dma, size, dir, phys, dev=A):
        return self.add("dma_free_sgt", dev=dev, dir=dir, dma=dma, size=size, phys=phys)

    def map(self, dir, dma, size, phys=None, attrs="", dev=A, mmio=False, **kw):
        phys = dma if phys is None else phys
        if self.kernel.startswith("6.12"):
            name = "dma_map_resource" if mmio else "dma_map_page"
        else:
            name = "dma_map_phys"
            if mmio:
                attrs = "|".join(filter(None, [attrs, "MMIO"]))
        return self.add(name, dev=dev, dir=dir, dma=dma, size=size, phys=phys, attrs=attrs, **kw)

    def unmap(self, dir, dma, size, attrs="", dev=A, mmio=False, **kw):
        if self.kernel.startswith("6.12"):
            name = "dma_unmap_resource" if mmio else "dma_unmap_page"
        else:
            name = "dma_unmap_phys"
            if mmio:
                attrs = "|".join(filter(None, [attrs, "MMIO"]))
        return self.add(name, dev=dev, dir=dir, dma=dma, size=size, attrs=attrs, **kw)

    def map_sg(self, dir, phys, dmas, lens, attrs="", dev=A, nents=None, ents=None, **kw):
        n = len(phys) if nents is None else nents
        m = len(dmas) if ents is None else ents
        return self.add("dma_map_sg", dev=dev, dir=dir, phys=phys[:128], dmas=dmas[:128], lens=lens[:128],
                        nents=n, ents=m, attrs=attrs, **kw)

    def map_sg_err(self, dir, phys, err=-12, dev=A):
        return self.add("dma_map_sg_err", dev=dev, dir=dir, phys=phys, err=err)

    def unmap_sg(self, dir, phys, attrs="", dev=A, **kw):
        return self.add("dma_unmap_sg", dev=dev, dir=dir, phys=phys, attrs=attrs, **kw)

    def sync(self, to, dir, dma, size, dev=A, **kw):
        return self.add("dma_sync_single_for_" + to, dev=dev, dir=dir, dma=dma, size=size, **kw)

    def sync_sg(self, to, dir, dmas, lens, dev=A, **kw):
        return self.add("dma_sync_sg_for_" + to, dev=dev, dir=dir, dmas=dmas, lens=lens, **kw)

    def bounce(self, orig, size, dev=A, mask=0xFFFFFFFF, force=False):
        return self.add("swiotlb_bounced", dev=dev, orig=orig, size=size, mask=mask, force=force)

    def iommu_map(self, iova, paddr, size=4096, **kw):
        return self.add("map", iova=iova, paddr=paddr, size=size, **kw)

    def iommu_unmap(self, iova, size=4096, **kw):
        return self.add("unmap", iova=iova, size=size, **kw)

    def marker(self, text):
        return self.add("marker", text=text, task="init", pid=1)

    def wait(self, seconds):
        self.t += seconds


def pages(base, n, step=0x1000):
    return [base + i * step for i in range(n)]


# =============================================================================================
# Family: alloc-pages (dma_alloc_pages, dma_alloc_noncoherent): owned like streaming memory.
# =============================================================================================
for k, fmt in (("7", "tracefs"), ("6.12", "trace_pipe"), ("6.12.0", "report")):
    c = Case("noncoherent-ownership-%s" % k.replace(".", "_"), "alloc-pages", True,
             API + " Part II: dma_alloc_noncoherent (sync_for_device before the device, sync_for_cpu before reading)",
             kernel=k, fmt=fmt, arch="arm64",
             why="dma_alloc_noncoherent memory handed to the device and back with the syncs the API asks for")
    c.probe(dma=0x48000000)
    c.alloc_pages(0x48100000, 8192, "FROM_DEVICE")
    for _ in range(3):
        c.sync("device", "FROM_DEVICE", 0x48100000, 8192)
        c.sync("cpu", "FROM_DEVICE", 0x48100000, 8192)
    c.free_pages(0x48100000, 8192, "FROM_DEVICE")

c = Case("noncoherent-to-device", "alloc-pages", True, API + " Part II: dma_alloc_noncoherent", arch="arm64",
         why="TO_DEVICE noncoherent buffer: the CPU fills it, then gives it to the device")
c.probe(dma=0x48000000)
c.alloc_pages(0x48200000, 4096, "TO_DEVICE")
c.sync("device", "TO_DEVICE", 0x48200000, 4096)
c.sync("device", "TO_DEVICE", 0x48200000, 512)
c.free_pages(0x48200000, 4096, "TO_DEVICE")

c = Case("noncoherent-partial-sync", "alloc-pages", True,
         API + " Part I: dma_sync_single_for_cpu (a sub-range of the mapping may be synced)", arch="arm64", fmt="trace_pipe",
         why="syncs of a part of a dma_alloc_pages buffer")
c.probe(dma=0x48000000)
c.alloc_pages(0x48300000, 16384, "BIDIRECTIONAL")
c.sync("device", "BIDIRECTIONAL", 0x48300000, 16384)
c.sync("cpu", "BIDIRECTIONAL", 0x48301000, 2048)
c.sync("device", "BIDIRECTIONAL", 0x48301000, 2048)
c.sync("cpu", "BIDIRECTIONAL", 0x48303000, 4096)
c.free_pages(0x48300000, 16384, "BIDIRECTIONAL")

c = Case("alloc-pages-iommu", "alloc-pages", True, IOMMU + " dma_common_alloc_pages via " + MAPPING + " dma_alloc_pages",
         fmt="report", why="dma_alloc_pages behind an IOMMU: the handle is an IOVA, syncs use it")
c.iommu_map(0xFFFFF000, 0x10A000000, task="kworker/u8:1")
c.probe(dma=0xFFFFF000)
c.iommu_map(0xFFFF0000, 0x10B000000, size=8192)
c.alloc_pages(0xFFFF0000, 8192, "FROM_DEVICE", phys=0x10B000000)
c.sync("device", "FROM_DEVICE", 0xFFFF0000, 8192)
c.sync("cpu", "FROM_DEVICE", 0xFFFF0000, 8192)
c.free_pages(0xFFFF0000, 8192, "FROM_DEVICE", phys=0x10B000000)
c.iommu_unmap(0xFFFF0000, size=8192)

c = Case("alloc-pages-x86-direct", "alloc-pages", True, DIRECT + " dma_direct_alloc_pages",
         why="dma_alloc_pages on coherent x86 dma-direct, synced by a driver written for every platform")
c.probe()
c.alloc_pages(0x102000000, 4096, "TO_DEVICE")
c.sync("device", "TO_DEVICE", 0x102000000, 4096)
c.map("TO_DEVICE", 0x103000000, 4096)
c.unmap("TO_DEVICE", 0x103000000, 4096)
c.free_pages(0x102000000, 4096, "TO_DEVICE")

c = Case("noncoherent-sync-after-free", "alloc-pages", False, DEBUG + " check_sync ('device driver tries to sync DMA memory it has not allocated')",
         arch="arm64")
c.probe(dma=0x48000000)
c.alloc_pages(0x48100000, 4096, "FROM_DEVICE")
c.sync("device", "FROM_DEVICE", 0x48100000, 4096)
c.free_pages(0x48100000, 4096, "FROM_DEVICE")
c.expects("sync-unknown", c.sync("cpu", "FROM_DEVICE", 0x48100000, 4096))

c = Case("noncoherent-sync-out-of-range", "alloc-pages", False, DEBUG + " check_sync ('DMA-API: device driver syncs DMA memory outside allocated range')",
         arch="arm64", fmt="trace_pipe")
c.probe(dma=0x48000000)
c.alloc_pages(0x48100000, 4096, "FROM_DEVICE")
c.expects("sync-out-of-range", c.sync("cpu", "FROM_DEVICE", 0x48100800, 4096))
c.free_pages(0x48100000, 4096, "FROM_DEVICE")

c = Case("noncoherent-sync-direction", "alloc-pages", False, DEBUG + " check_sync ('syncs DMA memory with different direction')",
         arch="arm64", kernel="6.12")
c.probe(dma=0x48000000)
c.alloc_pages(0x48100000, 4096, "TO_DEVICE")
c.expects("sync-direction-mismatch", c.sync("device", "FROM_DEVICE", 0x48100000, 4096))
c.free_pages(0x48100000, 4096, "TO_DEVICE")

c = Case("noncoherent-free-size", "alloc-pages", False, API + " Part II: dma_free_noncoherent (size and dir must be the same as passed to dma_alloc_noncoherent)",
         arch="arm64")
c.probe(dma=0x48000000)
c.alloc_pages(0x48100000, 8192, "FROM_DEVICE")
c.expects("free-size-mismatch", c.free_pages(0x48100000, 4096, "FROM_DEVICE"))

c = Case("noncoherent-free-size-6120", "alloc-pages", False, DEBUG + " check_unmap ('frees DMA memory with different size')",
         arch="arm64", kernel="6.12.0", fmt="report")
c.probe(dma=0x48000000)
c.alloc_pages(0x48100000, 8192, "FROM_DEVICE")
c.expects("unmap-size-mismatch", c.free_pages(0x48100000, 4096, "FROM_DEVICE"))

c = Case("noncoherent-double-free", "alloc-pages", False, DEBUG + " check_unmap ('device driver tries to free DMA memory it has not allocated')",
         arch="arm64", fmt="trace_pipe")
c.probe(dma=0x48000000)
c.alloc_pages(0x48100000, 4096, "FROM_DEVICE")
c.free_pages(0x48100000, 4096, "FROM_DEVICE")
c.expects("free-unknown", c.free_pages(0x48100000, 4096, "FROM_DEVICE"))

c = Case("noncoherent-free-other-page", "alloc-pages", False, DEBUG + " debug_dma_free_pages / check_unmap ('frees DMA memory with different CPU address')",
         arch="arm64", fmt="trace_pipe")
c.probe(dma=0x48000000)
c.alloc_pages(0x48100000, 8192, "FROM_DEVICE")
c.expects("free-address-mismatch", c.free_pages(0x48100000, 8192, "FROM_DEVICE", virt=ARM_LINEAR + 0x48101000))

c = Case("noncoherent-free-direction", "alloc-pages", False, API + " Part II: dma_free_noncoherent (dir must be the same)", arch="arm64")
c.probe(dma=0x48000000)
c.alloc_pages(0x48100000, 4096, "FROM_DEVICE")
c.expects("unmap-direction-mismatch", c.free_pages(0x48100000, 4096, "TO_DEVICE"))

c = Case("noncoherent-sync-for-cpu-twice", "alloc-pages", False, API + " Part II: dma_alloc_noncoherent (sync_for_device before giving the memory to the device)",
         arch="arm64", fmt="report")
c.probe(dma=0x48000000)
c.alloc_pages(0x48100000, 4096, "FROM_DEVICE")
c.sync("device", "FROM_DEVICE", 0x48100000, 4096)
c.sync("cpu", "FROM_DEVICE", 0x48100000, 4096)
c.expects("missing-sync", c.sync("cpu", "FROM_DEVICE", 0x48100000, 4096))
c.free_pages(0x48100000, 4096, "FROM_DEVICE")

c = Case("noncoherent-streaming-overlap", "alloc-pages", False, DEBUG + " add_dma_entry / active_cacheline_insert (EEXIST: overlapping mappings)",
         arch="arm64")
c.probe(dma=0x48000000)
c.alloc_pages(0x48100000, 4096, "FROM_DEVICE")
c.expects("double-mapping", c.map("FROM_DEVICE", 0x48100000, 4096))
c.unmap("FROM_DEVICE", 0x48100000, 4096)
c.free_pages(0x48100000, 4096, "FROM_DEVICE")

# =============================================================================================
# Family: alloc-sgt (dma_alloc_noncontiguous): an sg table owned like streaming memory.
# =============================================================================================
SGT_PAGES = [0x10A003000, 0x10A001000, 0x10A00F000, 0x10A004000]
for k, fmt in (("7", "tracefs"), ("6.12", "trace_pipe")):
    c = Case("noncontiguous-iommu-%s" % k.replace(".", "_"), "alloc-sgt", True,
             MAPPING + " dma_alloc_noncontiguous / " + IOMMU + " iommu_dma_alloc_noncontiguous (one IOVA range, sgt->nents = 1)",
             kernel=k, fmt=fmt, arch="arm64", why="videobuf2-style noncontiguous buffer behind an SMMU on a non-coherent arm64, synced with dma_sync_sgtable_*")
    c.iommu_map(0xFFFFF000, 0x10A000000)
    c.probe(dma=0xFFFFF000)
    for i, p in enumerate(SGT_PAGES):
        c.iommu_map(0xFFFF0000 + i * 0x1000, p)
    c.alloc_sgt(0xFFFF0000, 16384, "FROM_DEVICE", SGT_PAGES)
    for _ in range(2):
        c.sync_sg("device", "FROM_DEVICE", [0xFFFF0000, 0, 0, 0], [16384, 0, 0, 0])
        c.sync_sg("cpu", "FROM_DEVICE", [0xFFFF0000, 0, 0, 0], [16384, 0, 0, 0])
    c.free_sgt(0xFFFF0000, 16384, "FROM_DEVICE", SGT_PAGES)
    c.iommu_unmap(0xFFFF0000, size=16384)

c = Case("noncontiguous-direct-single", "alloc-sgt", True, MAPPING + " alloc_single_sgt (dma-direct: one entry, dma_len = PAGE_ALIGN(size))",
         arch="arm64", why="without an IOMMU dma_alloc_noncontiguous is one contiguous entry")
c.probe(dma=0x48000000)
c.alloc_sgt(0x48400000, 12288, "BIDIRECTIONAL", [0x48400000])
c.sync_sg("device", "BIDIRECTIONAL", [0x48400000], [12288])
c.sync_sg("cpu", "BIDIRECTIONAL", [0x48400000], [12288])
c.sync("device", "BIDIRECTIONAL", 0x48400000, 4096)
c.free_sgt(0x48400000, 12288, "BIDIRECTIONAL", [0x48400000])

c = Case("noncontiguous-sync-after-free", "alloc-sgt", False, DEBUG + " check_sync (memory not allocated)", arch="arm64")
c.probe(dma=0x48000000)
c.alloc_sgt(0x48400000, 8192, "FROM_DEVICE", [0x48400000])
c.free_sgt(0x48400000, 8192, "FROM_DEVICE", [0x48400000])
c.expects("sync-unknown", c.sync_sg("cpu", "FROM_DEVICE", [0x48400000], [8192]))

c = Case("noncontiguous-sync-out-of-range", "alloc-sgt", False, DEBUG + " check_sync ('syncs DMA memory outside allocated range')",
         arch="arm64", fmt="trace_pipe")
c.probe(dma=0x48000000)
c.alloc_sgt(0x48400000, 8192, "FROM_DEVICE", [0x48400000])
c.expects("sync-out-of-range", c.sync("cpu", "FROM_DEVICE", 0x48401000, 8192))
c.free_sgt(0x48400000, 8192, "FROM_DEVICE", [0x48400000])

c = Case("noncontiguous-free-size", "alloc-sgt", False, MAPPING + " dma_free_noncontiguous (size must match the allocation)", fmt="tracefs")
c.iommu_map(0xFFFFF000, 0x10A000000)
c.probe(dma=0xFFFFF000)
for i, p in enumerate(SGT_PAGES):
    c.iommu_map(0xFFFF0000 + i * 0x1000, p)
c.alloc_sgt(0xFFFF0000, 16384, "FROM_DEVICE", SGT_PAGES)
c.expects("free-size-mismatch", c.free_sgt(0xFFFF0000, 8192, "FROM_DEVICE", SGT_PAGES))

c = Case("noncontiguous-sync-direction", "alloc-sgt", False, DEBUG + " check_sync ('different direction')", arch="arm64")
c.probe(dma=0x48000000)
c.alloc_sgt(0x48400000, 8192, "TO_DEVICE", [0x48400000])
c.expects("sync-direction-mismatch", c.sync_sg("device", "FROM_DEVICE", [0x48400000], [8192]))
c.free_sgt(0x48400000, 8192, "TO_DEVICE", [0x48400000])

c = Case("noncontiguous-double-free", "alloc-sgt", False, DEBUG + " check_unmap (memory not allocated)", arch="arm64", fmt="trace_pipe")
c.probe(dma=0x48000000)
c.alloc_sgt(0x48400000, 8192, "TO_DEVICE", [0x48400000])
c.free_sgt(0x48400000, 8192, "TO_DEVICE", [0x48400000])
c.expects("free-unknown", c.free_sgt(0x48400000, 8192, "TO_DEVICE", [0x48400000]))

# =============================================================================================
# Family: coherent (dma_alloc_coherent / dma_alloc_attrs).
# =============================================================================================
for k, fmt in (("7", "tracefs"), ("6.12", "report"), ("7", "trace_pipe")):
    c = Case("coherent-lifecycle-%s-%s" % (k.replace(".", "_"), fmt), "coherent", True, API + " Part Ia: dma_alloc_coherent / dma_free_coherent",
             kernel=k, fmt=fmt, why="probe allocates rings, remove frees them with the same parameters")
    c.probe()
    c.alloc(0xF2000, 8192)
    c.map("TO_DEVICE", 0x101000000, 1500)
    c.unmap("TO_DEVICE", 0x101000000, 1500)
    c.free(0xF2000, 8192)
    c.free(0xF0000, 4096)

c = Case("coherent-free-null", "coherent", True, MAPPING + " dma_free_attrs (traces, then returns for a NULL cpu_addr)",
         why="drivers free optional buffers unconditionally; freeing NULL is a no-op")
c.probe()
c.free(0, 0, virt=0)
c.free(0xF0000, 4096)

c = Case("coherent-no-kernel-mapping", "coherent", True, ATTRS + " DMA_ATTR_NO_KERNEL_MAPPING",
         fmt="report", why="the returned cookie is only handed back to dma_free_attrs with the same attrs")
c.probe()
c.alloc(0x104000000, 1 << 20, attrs="NO_KERNEL_MAPPING", virt=0xFFFFEA0004100000)
c.free(0x104000000, 1 << 20, attrs="NO_KERNEL_MAPPING", virt=0xFFFFEA0004100000)

c = Case("coherent-force-contiguous", "coherent", True, ATTRS + " DMA_ATTR_FORCE_CONTIGUOUS",
         why="an IOMMU-backed allocation that asks for physically contiguous memory")
c.iommu_map(0xFFFFF000, 0x10A000000)
c.probe(dma=0xFFFFF000)
c.iommu_map(0xFFF00000, 0x120000000, size=65536)
c.alloc(0xFFF00000, 65536, attrs="FORCE_CONTIGUOUS", virt=0xFFFFC90000400000)
c.free(0xFFF00000, 65536, attrs="FORCE_CONTIGUOUS", virt=0xFFFFC90000400000)
c.iommu_unmap(0xFFF00000, size=65536)

c = Case("coherent-free-size", "coherent", False, DEBUG + " check_unmap ('frees DMA memory with different size')", fmt="trace_pipe")
c.probe()
c.alloc(0xF2000, 8192)
c.expects("free-size-mismatch", c.free(0xF2000, 4096))

c = Case("coherent-double-free", "coherent", False, DEBUG + " check_unmap (memory not allocated)")
c.probe()
c.alloc(0xF2000, 8192)
c.free(0xF2000, 8192)
c.expects("free-unknown", c.free(0xF2000, 8192))

c = Case("coherent-free-never-allocated", "coherent", False, DEBUG + " check_unmap ('tries to free DMA memory it has not allocated')", fmt="report")
c.probe()
c.expects("free-unknown", c.free(0xF8000, 4096))

c = Case("coherent-free-other-cpu-addr-raw", "coherent", False, DEBUG + " check_unmap ('frees DMA memory with different CPU address')", fmt="report")
c.probe()
c.alloc(0xF2000, 8192)
c.expects("free-address-mismatch", c.free(0xF2000, 8192, virt=LINEAR + 0xF3000))

c = Case("coherent-free-other-cpu-addr-hashed", "coherent", False,
         DEBUG + " check_unmap ('different CPU address'); %p hashes are stable within a boot", fmt="tracefs")
c.probe()
c.alloc(0xF2000, 8192)
c.expects("free-address-mismatch", c.free(0xF2000, 8192, virt=LINEAR + 0xF3000))

c = Case("coherent-hashed-equal", "coherent", True, MAPPING + " dma_free_attrs", fmt="trace_pipe",
         why="the same %p hash at alloc and free: the same CPU address")
c.probe()
c.alloc(0xF2000, 8192)
c.free(0xF2000, 8192)

c = Case("coherent-streaming-map", "coherent", False, MAPPING + " dma_get_sgtable_attrs comment ('Passing coherent DMA memory into the streaming APIs is not allowed')")
c.probe()
c.alloc(0x104000000, 8192)
c.expects("streaming-over-coherent", c.map("TO_DEVICE", 0x104001000, 4096))
c.unmap("TO_DEVICE", 0x104001000, 4096)

c = Case("coherent-free-size-6_12", "coherent", False, API + " Part Ia: dma_free_coherent (size must match dma_alloc_coherent)", kernel="6.12", fmt="report")
c.probe()
c.alloc(0xF4000, 16384)
c.expects("free-size-mismatch", c.free(0xF4000, 8192))

c = Case("no-kernel-mapping-other-cookie", "coherent", False, ATTRS + " DMA_ATTR_NO_KERNEL_MAPPING (the cookie must be passed back unchanged)", fmt="report")
c.probe()
c.alloc(0x104000000, 1 << 20, attrs="NO_KERNEL_MAPPING", virt=0xFFFFEA0004100000)
c.expects("free-address-mismatch", c.free(0x104000000, 1 << 20, attrs="NO_KERNEL_MAPPING", virt=0xFFFFEA0004100040))

c = Case("force-contiguous-free-size", "coherent", False, API + " Part II: dma_free_attrs (parameters identical to dma_alloc_attrs)")
c.probe()
c.alloc(0x104000000, 65536, attrs="FORCE_CONTIGUOUS")
c.expects("free-size-mismatch", c.free(0x104000000, 32768, attrs="FORCE_CONTIGUOUS"))

# =============================================================================================
# Family: streaming single mappings (dma_map_page / dma_map_phys / dma_map_single).
# =============================================================================================
for k, fmt in (("7", "tracefs"), ("6.12", "trace_pipe"), ("7", "report"), ("6.12", "report")):
    c = Case("single-tx-rx-%s-%s" % (k.replace(".", "_"), fmt), "streaming", True, API + " Part Ic: dma_map_single / dma_unmap_single",
             kernel=k, fmt=fmt, why="a NIC's transmit and receive buffers mapped and unmapped with the same parameters")
    c.probe()
    for i in range(4):
        c.map("TO_DEVICE", 0x101000000 + i * 0x800, 1514)
        c.map("FROM_DEVICE", 0x102000000 + i * 0x1000, 2048)
    for i in range(4):
        c.unmap("TO_DEVICE", 0x101000000 + i * 0x800, 1514)
        c.unmap("FROM_DEVICE", 0x102000000 + i * 0x1000, 2048)

c = Case("single-readers-share-page", "streaming", True, DEBUG + " active_cacheline_insert (TO_DEVICE mappings are not tracked)",
         why="several live TO_DEVICE mappings of one page (AHCI during mkfs)")
c.probe()
for _ in range(4):
    c.map("TO_DEVICE", 0x103000000, 4096)
for _ in range(4):
    c.unmap("TO_DEVICE", 0x103000000, 4096)

c = Case("single-reuse-after-unmap", "streaming", True, API + " Part Ic: dma_unmap_single", fmt="trace_pipe",
         why="the same buffer mapped again after its unmap")
c.probe()
for _ in range(3):
    c.map("FROM_DEVICE", 0x103000000, 4096)
    c.unmap("FROM_DEVICE", 0x103000000, 4096)

c = Case("single-bidirectional-syncs", "streaming", True, API + " Part Ic: dma_sync_single_for_cpu/_for_device (BIDIRECTIONAL: before and after)",
         arch="arm64", why="a BIDIRECTIONAL buffer passed back and forth")
c.probe(dma=0x48000000)
c.map("BIDIRECTIONAL", 0x48500000, 4096)
c.sync("cpu", "BIDIRECTIONAL", 0x48500000, 4096)
c.sync("device", "BIDIRECTIONAL", 0x48500000, 4096)
c.sync("cpu", "BIDIRECTIONAL", 0x48500000, 4096)
c.unmap("BIDIRECTIONAL", 0x48500000, 4096)

c = Case("single-predates-trace", "streaming", True, HOWTO + " (a trace starts mid-flight: mappings made before it)",
         fmt="report", why="a device busy before tracing began unmaps what it mapped earlier")
c.map("FROM_DEVICE", 0x102000000, 2048)
c.unmap("FROM_DEVICE", 0x101000000, 2048)
c.unmap("FROM_DEVICE", 0x102000000, 2048)

c = Case("single-unmap-size", "streaming", False, DEBUG + " check_unmap ('frees DMA memory with different size')")
c.probe()
c.map("FROM_DEVICE", 0x102000000, 2048)
c.expects("unmap-size-mismatch", c.unmap("FROM_DEVICE", 0x102000000, 4096))

c = Case("single-unmap-direction", "streaming", False, DEBUG + " check_unmap ('frees DMA memory with different direction')", kernel="6.12", fmt="report")
c.probe()
c.map("FROM_DEVICE", 0x102000000, 2048)
c.expects("unmap-direction-mismatch", c.unmap("TO_DEVICE", 0x102000000, 2048))

c = Case("single-double-unmap", "streaming", False, DEBUG + " check_unmap ('device driver tries to free DMA memory it has not allocated')", fmt="trace_pipe")
c.probe()
c.map("TO_DEVICE", 0x102000000, 2048)
c.unmap("TO_DEVICE", 0x102000000, 2048)
c.expects("double-unmap", c.unmap("TO_DEVICE", 0x102000000, 2048))


def colliding(key, slots_bits=12):
    """An address that lands in the same slot of a 4096-slot multiplicative hash table."""
    slot = ((key * 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF) >> (64 - slots_bits)
    cand = 0x105000000
    while True:
        if cand != key and ((cand * 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF) >> (64 - slots_bits) == slot:
            return cand
        cand += 0x40


c = Case("single-double-unmap-after-others", "streaming", False, DEBUG + " check_unmap (memory not allocated); the recent past remembered exactly",
         why="a double unmap after unrelated unmaps, one of them at an address that shares a hash slot")
c.probe()
c.map("TO_DEVICE", 0x102000000, 2048)
c.unmap("TO_DEVICE", 0x102000000, 2048)
other = colliding(0x102000000)
for i in range(6):
    a = other if i == 3 else 0x106000000 + i * 0x1000
    c.map("TO_DEVICE", a, 512)
    c.unmap("TO_DEVICE", a, 512)
c.expects("double-unmap", c.unmap("TO_DEVICE", 0x102000000, 2048))

c = Case("single-unmap-never-mapped", "streaming", False, DEBUG + " check_unmap (memory not allocated)", fmt="report")
c.probe()
c.map("TO_DEVICE", 0x102000000, 2048)
c.unmap("TO_DEVICE", 0x102000000, 2048)
c.expects("unmap-unknown", c.unmap("TO_DEVICE", 0x109000000, 2048))

c = Case("single-unmap-mapping-error", "streaming", False, DEBUG + " check_unmap ('device driver tries to free an invalid DMA memory address')")
c.probe()
c.map("TO_DEVICE", MAPPING_ERROR, 2048, phys=0x102000000)
c.expects("mapping-error-used", c.unmap("TO_DEVICE", MAPPING_ERROR, 2048))

c = Case("single-sync-out-of-range", "streaming", False, DEBUG + " check_sync ('syncs DMA memory outside allocated range')", arch="arm64", fmt="trace_pipe")
c.probe(dma=0x48000000)
c.map("FROM_DEVICE", 0x48500000, 2048)
c.expects("sync-out-of-range", c.sync("cpu", "FROM_DEVICE", 0x48500400, 2048))
c.unmap("FROM_DEVICE", 0x48500000, 2048)

c = Case("single-sync-for-cpu-to-device", "streaming", False, DEBUG + " check_sync ('syncs device read-only DMA memory for cpu')", arch="arm64")
c.probe(dma=0x48000000)
c.map("TO_DEVICE", 0x48500000, 2048)
c.expects("sync-for-cpu-to-device", c.sync("cpu", "FROM_DEVICE", 0x48500000, 2048))
c.unmap("TO_DEVICE", 0x48500000, 2048)

c = Case("single-sync-after-unmap", "streaming", False, DEBUG + " check_sync (memory not allocated)", arch="arm64", kernel="6.12")
c.probe(dma=0x48000000)
c.map("FROM_DEVICE", 0x48500000, 2048)
c.unmap("FROM_DEVICE", 0x48500000, 2048)
c.expects("sync-unknown", c.sync("cpu", "FROM_DEVICE", 0x48500000, 2048))

c = Case("single-double-mapping-rw", "streaming", False, SWIOTLB + " swiotlb_tbl_unmap_single (a FROM_DEVICE unmap copies the bounce slot back over the original: the other mapping's data is overwritten)", fmt="report")
c.probe()
c.map("FROM_DEVICE", 0x103000000, 4096)
c.expects("double-mapping", c.map("TO_DEVICE", 0x103000800, 512))
c.unmap("TO_DEVICE", 0x103000800, 512)
c.unmap("FROM_DEVICE", 0x103000000, 4096)

c = Case("single-wrong-function-resource", "streaming", False, DEBUG + " check_unmap ('frees DMA memory with wrong function')", kernel="6.12")
c.probe()
c.map("BIDIRECTIONAL", 0xFE000000, 4096, mmio=True)
c.expects("unmap-wrong-function", c.unmap("BIDIRECTIONAL", 0xFE000000, 4096))

# =============================================================================================
# Family: sg (dma_map_sg / dma_unmap_sg / dma_sync_sg_*): merged, truncated, chained, checked entry by entry.
# =============================================================================================
for k, fmt in (("7", "tracefs"), ("6.12", "report"), ("7", "report")):
    c = Case("sg-direct-%s-%s" % (k.replace(".", "_"), fmt), "sg", True, API + " Part Id: dma_map_sg / dma_unmap_sg (unmap with the nents passed to map)",
             kernel=k, fmt=fmt, why="a block request of four pages on dma-direct")
    c.probe()
    ph = [0x103A00000, 0x103A05000, 0x103A02000, 0x103A09000]
    c.map_sg("FROM_DEVICE", ph, ph, [4096] * 4)
    c.unmap_sg("FROM_DEVICE", ph)

c = Case("sg-merged-iommu", "sg", True, IOMMU + " iommu_dma_map_sg / __finalise_sg (entries merged into one IOVA segment)",
         fmt="report", why="three entries merged into one segment; the last entry ends mid-page and the rest of that page is mapped separately")
c.iommu_map(0xFFFFF000, 0x10A000000)
c.probe(dma=0xFFFFF000)
for i, p in enumerate([0x103A00000, 0x103A05000, 0x103A02000]):
    c.iommu_map(0xFFFF0000 + i * 0x1000, p)
c.map_sg("FROM_DEVICE", [0x103A00000, 0x103A05000, 0x103A02000], [0xFFFF0000], [4096 + 4096 + 1024])
c.iommu_map(0xFFFE0000, 0x103A02000)
c.map("FROM_DEVICE", 0xFFFE0400, 2048, phys=0x103A02400)
c.unmap("FROM_DEVICE", 0xFFFE0400, 2048)
c.unmap_sg("FROM_DEVICE", [0x103A00000, 0x103A05000, 0x103A02000])

c = Case("sg-merged-no-iommu-events", "sg", True, IOMMU + " __finalise_sg (merges only at granule boundaries: the last entry ends where the segment ends)",
         fmt="tracefs", why="recorded with -e dma only: the merged entry lengths are inferred; the rest of the last page is mapped separately")
c.probe(dma=0xFFFFF000, virt=0xFFFFC90000100000)
c.map_sg("FROM_DEVICE", [0x103A00000, 0x103A05000, 0x103A02000], [0xFFFF0000], [4096 + 4096 + 1024])
c.map("FROM_DEVICE", 0xFFFE0400, 2048, phys=0x103A02400)
c.unmap("FROM_DEVICE", 0xFFFE0400, 2048)
c.unmap_sg("FROM_DEVICE", [0x103A00000, 0x103A05000, 0x103A02000])

c = Case("sg-merged-no-iommu-overlap", "sg", False, SWIOTLB + " / " + HOWTO + " (a device-written buffer mapped twice); the merged entry's inferred length",
         fmt="trace_pipe", why="recorded with -e dma only: a FROM_DEVICE map of bytes inside the merged list's last entry")
c.probe(dma=0xFFFFF000, virt=0xFFFFC90000100000)
c.map_sg("FROM_DEVICE", [0x103A00000, 0x103A05000, 0x103A02000], [0xFFFF0000], [4096 + 4096 + 1024])
c.expects("double-mapping", c.map("FROM_DEVICE", 0xFFFE0200, 512, phys=0x103A02200))
c.unmap("FROM_DEVICE", 0xFFFE0200, 512)
c.unmap_sg("FROM_DEVICE", [0x103A00000, 0x103A05000, 0x103A02000])

c = Case("sg-merged-sync-error-entries", "sg", True, IOMMU + " __finalise_sg (unused entries get DMA_MAPPING_ERROR and length 0)",
         arch="x86", why="dma_sync_sg of a merged list passes orig_nents entries; the unused ones carry no DMA range")
c.iommu_map(0xFFFFF000, 0x10A000000)
c.probe(dma=0xFFFFF000)
for i, p in enumerate([0x103A00000, 0x103A05000]):
    c.iommu_map(0xFFFF0000 + i * 0x1000, p)
c.map_sg("FROM_DEVICE", [0x103A00000, 0x103A05000], [0xFFFF0000], [8192])
c.sync_sg("cpu", "FROM_DEVICE", [0xFFFF0000, MAPPING_ERROR], [8192, 0])
c.sync_sg("device", "FROM_DEVICE", [0xFFFF0000, MAPPING_ERROR], [8192, 0])
c.unmap_sg("FROM_DEVICE", [0x103A00000, 0x103A05000])

big = pages(0x110000000, 200)
c = Case("sg-truncated-200", "sg", True, "include/trace/events/dma.h dma_map_sg (arrays capped at DMA_TRACE_MAX_ENTRIES = 128, full_nents kept)",
         fmt="tracefs", why="a 200-entry list: the map event keeps 128 entries, the unmap all 200")
c.probe()
c.map_sg("TO_DEVICE", big, big, [4096] * 200)
c.unmap_sg("TO_DEVICE", big)

c = Case("sg-truncated-200-report", "sg", True, "include/trace/events/dma.h dma_map_sg (truncated, full_nents, full_ents)", fmt="report")
c.probe()
c.map_sg("FROM_DEVICE", big, big, [4096] * 200)
c.unmap_sg("FROM_DEVICE", big)

chain = pages(0x120000000, 130, step=0x2000)
c = Case("sg-chained-130", "sg", True, "include/linux/scatterlist.h sg_chain / " + API + " Part Id (a chained list is one list to the API)",
         fmt="trace_pipe", why="a list longer than one scatterlist page (SG_MAX_SINGLE_ALLOC) is chained")
c.probe()
c.map_sg("FROM_DEVICE", chain, chain, [4096] * 130)
c.unmap_sg("FROM_DEVICE", chain)

c = Case("sg-same-page-to-device", "sg", True, DEBUG + " active_cacheline_insert (TO_DEVICE entries are not tracked)",
         why="the zero page several times in one TO_DEVICE list (mkfs)")
c.probe()
z = [0x103F00000] * 4
c.map_sg("TO_DEVICE", z, z, [4096] * 4)
c.unmap_sg("TO_DEVICE", z)

c = Case("sg-swiotlb-bounced", "sg", True, SWIOTLB + " swiotlb_tbl_map_single (each entry bounced on its own)", fmt="report",
         why="a two-entry list bounced through swiotlb (32-bit device on x86)")
c.probe()
c.bounce(0x103A00200, 512)
c.bounce(0x103A05000, 4096)
c.map_sg("FROM_DEVICE", [0x103A00200, 0x103A05000], [0x7B0D2000, 0x7B0D3000], [512, 4096])
c.sync_sg("cpu", "FROM_DEVICE", [0x7B0D2000, 0x7B0D3000], [512, 4096])
c.unmap_sg("FROM_DEVICE", [0x103A00200, 0x103A05000])

c = Case("sg-partial-entries-sync", "sg", True, API + " Part Id: dma_sync_sg_for_cpu (with the nents passed to dma_map_sg)", arch="arm64",
         why="an sg list synced for the CPU and back for the device")
c.probe(dma=0x48000000)
ph = [0x48600000, 0x48602000]
c.map_sg("FROM_DEVICE", ph, ph, [4096, 4096])
c.sync_sg("cpu", "FROM_DEVICE", ph, [4096, 4096])
c.sync_sg("device", "FROM_DEVICE", ph, [4096, 4096])
c.unmap_sg("FROM_DEVICE", ph)

c = Case("sg-map-err-then-retry", "sg", True, MAPPING + " __dma_map_sg_attrs (a failed map is traced by dma_map_sg_err and maps nothing)",
         why="a failed sg map is retried")
c.probe()
ph = [0x103A00000, 0x103A01000]
c.map_sg_err("FROM_DEVICE", ph)
c.map_sg("FROM_DEVICE", ph, ph, [4096, 4096])
c.unmap_sg("FROM_DEVICE", ph)

c = Case("sg-unmap-count", "sg", False, DEBUG + " check_unmap ('frees DMA sg list with different entry count'); " + MAPPING + " dma_map_sg_attrs comment",
         fmt="tracefs")
c.probe()
ph = pages(0x103A00000, 3)
c.map_sg("TO_DEVICE", ph, [0x103A00000], [12288])
c.expects("unmap-sg-count-mismatch", c.unmap_sg("TO_DEVICE", ph[:1]))

c = Case("sg-unmap-count-report", "sg", False, DEBUG + " check_unmap ('different entry count')", fmt="report", kernel="6.12")
c.probe()
ph = pages(0x103A00000, 4)
c.map_sg("TO_DEVICE", ph, ph, [4096] * 4)
c.expects("unmap-sg-count-mismatch", c.unmap_sg("TO_DEVICE", ph[:2]))

c = Case("sg-unmap-modified-list", "sg", False, DEBUG + " debug_dma_unmap_sg / check_unmap (every entry: 'frees DMA memory with different CPU address')")
c.probe()
ph = [0x103A00000, 0x103A05000, 0x103A02000]
c.map_sg("FROM_DEVICE", ph, ph, [4096] * 3)
c.expects("unmap-sg-list-mismatch", c.unmap_sg("FROM_DEVICE", [0x103A00000, 0x103B00000, 0x103B01000]))

c = Case("sg-same-page-twice-from-device", "sg", False, DEBUG + " add_dma_entry ('cacheline tracking EEXIST, overlapping mappings aren't supported')",
         fmt="trace_pipe")
c.probe()
ph = [0x103A00000, 0x103A05000, 0x103A00000]
c.expects("double-mapping", c.map_sg("FROM_DEVICE", ph, ph, [4096] * 3))
c.unmap_sg("FROM_DEVICE", ph)

c = Case("sg-merged-hidden-overlap", "sg", False, IOMMU + " iommu_dma_map_sg (iommu_map of each entry's real length); " + DEBUG + " checks only an entry's first cache line and misses this",
         fmt="report", why="a 12 KiB merged first entry overlaps a later FROM_DEVICE mapping of its third page")
c.iommu_map(0xFFFFF000, 0x10A000000)
c.probe(dma=0xFFFFF000)
c.iommu_map(0xFFFF0000, 0x103A00000, size=12288)
c.iommu_map(0xFFFF3000, 0x103C00000)
c.map_sg("FROM_DEVICE", [0x103A00000, 0x103C00000], [0xFFFF0000], [12288 + 4096])
c.iommu_map(0xFFFE0000, 0x103A02000)
c.expects("double-mapping", c.map("FROM_DEVICE", 0xFFFE0000, 4096, phys=0x103A02000))
c.unmap("FROM_DEVICE", 0xFFFE0000, 4096)
c.unmap_sg("FROM_DEVICE", [0x103A00000, 0x103C00000])

c = Case("sg-sync-count", "sg", False, DEBUG + " check_sync ('syncs DMA sg list with different entry count')", arch="arm64")
c.probe(dma=0x48000000)
ph = [0x48600000, 0x48602000, 0x48604000]
c.map_sg("FROM_DEVICE", ph, ph, [4096] * 3)
c.expects("sync-sg-count-mismatch", c.sync_sg("cpu", "FROM_DEVICE", ph[:2], [4096, 4096]))
c.unmap_sg("FROM_DEVICE", ph)

c = Case("sg-sync-out-of-range", "sg", False, DEBUG + " check_sync ('outside allocated range')", arch="arm64", fmt="report")
c.probe(dma=0x48000000)
ph = [0x48600000, 0x48602000]
c.map_sg("FROM_DEVICE", ph, ph, [4096, 2048])
c.expects("sync-out-of-range", c.sync_sg("cpu", "FROM_DEVICE", ph, [4096, 4096]))
c.unmap_sg("FROM_DEVICE", ph)

c = Case("sg-unmap-direction", "sg", False, DEBUG + " check_unmap ('different direction')", fmt="trace_pipe")
c.probe()
ph = [0x103A00000, 0x103A05000]
c.map_sg("FROM_DEVICE", ph, ph, [4096, 4096])
c.expects("unmap-direction-mismatch", c.unmap_sg("TO_DEVICE", ph))

c = Case("sg-double-unmap", "sg", False, DEBUG + " check_unmap (memory not allocated)")
c.probe()
ph = [0x103A00000, 0x103A05000]
c.map_sg("TO_DEVICE", ph, ph, [4096, 4096])
c.unmap_sg("TO_DEVICE", ph)
c.expects("double-unmap", c.unmap_sg("TO_DEVICE", ph))

c = Case("sg-truncated-unmap-count", "sg", False, DEBUG + " check_unmap ('different entry count'); full_nents of the capped event", fmt="report")
c.probe()
c.map_sg("FROM_DEVICE", big, big, [4096] * 200)
c.expects("unmap-sg-count-mismatch", c.unmap_sg("FROM_DEVICE", big[:128]))

c = Case("sg-unmap-single-function", "sg", False, DEBUG + " check_unmap ('frees DMA memory with wrong function')")
c.probe()
ph = [0x103A00000]
c.map_sg("TO_DEVICE", ph, ph, [4096])
c.expects("unmap-wrong-function", c.unmap("TO_DEVICE", 0x103A00000, 4096))

c = Case("sg-map-err-unmapped", "sg", False, MAPPING + " dma_map_sg_attrs (zero returned: nothing was mapped, nothing to unmap)")
c.probe()
ph = [0x103A00000, 0x103A01000]
c.map_sg_err("FROM_DEVICE", ph)
c.expects("mapping-error-used", c.unmap_sg("FROM_DEVICE", ph))

# =============================================================================================
# Family: attributes (SKIP_CPU_SYNC, CACHELINES_OVERLAP, MMIO, NO_KERNEL_MAPPING, FORCE_CONTIGUOUS).
# =============================================================================================
c = Case("skip-cpu-sync-page-pool", "attributes", True, ATTRS + " DMA_ATTR_SKIP_CPU_SYNC (the driver syncs only what it uses)", arch="arm64",
         why="page_pool: map with SKIP_CPU_SYNC, sync for the device, sync the received bytes for the CPU")
c.probe(dma=0x48000000)
c.map("FROM_DEVICE", 0x48700000, 4096, attrs="SKIP_CPU_SYNC")
c.sync("device", "FROM_DEVICE", 0x48700000, 4096)
c.sync("cpu", "FROM_DEVICE", 0x48700040, 1500)
c.unmap("FROM_DEVICE", 0x48700000, 4096, attrs="SKIP_CPU_SYNC")

c = Case("cachelines-overlap-both", "attributes", True, DEBUG + " add_dma_entry (EEXIST ignored when both entries are CACHELINES_OVERLAP); " + ATTRS,
         arch="arm64", why="two small buffers in one cache line, both declared")
c.probe(dma=0x48000000)
c.map("FROM_DEVICE", 0x48800000, 32, attrs="CACHELINES_OVERLAP")
c.sync("cpu", "FROM_DEVICE", 0x48800000, 32)
c.map("FROM_DEVICE", 0x48800020, 32, attrs="CACHELINES_OVERLAP")
c.unmap("FROM_DEVICE", 0x48800020, 32, attrs="CACHELINES_OVERLAP")
c.unmap("FROM_DEVICE", 0x48800000, 32, attrs="CACHELINES_OVERLAP")

c = Case("require-coherent-both", "attributes", True, DEBUG + " add_dma_entry (is_cache_clean: CACHELINES_OVERLAP or REQUIRE_COHERENT on both entries)",
         arch="arm64", fmt="report", why="two RDMA-style mappings that require coherence share a cache line")
c.probe(dma=0x48000000)
c.map("FROM_DEVICE", 0x48800000, 64)
c.sync("cpu", "FROM_DEVICE", 0x48800000, 64)
c.unmap("FROM_DEVICE", 0x48800000, 64)
c.map("BIDIRECTIONAL", 0x48C00000, 48, attrs="REQUIRE_COHERENT")
c.map("BIDIRECTIONAL", 0x48C00030, 16, attrs="CACHELINES_OVERLAP")
c.unmap("BIDIRECTIONAL", 0x48C00030, 16, attrs="CACHELINES_OVERLAP")
c.unmap("BIDIRECTIONAL", 0x48C00000, 48, attrs="REQUIRE_COHERENT")

c = Case("cachelines-overlap-one-side", "attributes", False, DEBUG + " add_dma_entry (the exemption needs both entries CACHELINES_OVERLAP)",
         arch="arm64")
c.probe(dma=0x48000000)
c.map("FROM_DEVICE", 0x48800000, 32)
c.sync("cpu", "FROM_DEVICE", 0x48800000, 32)
c.expects("cacheline-sharing", c.map("FROM_DEVICE", 0x48800020, 32, attrs="CACHELINES_OVERLAP"))
c.unmap("FROM_DEVICE", 0x48800020, 32, attrs="CACHELINES_OVERLAP")
c.unmap("FROM_DEVICE", 0x48800000, 32)

c = Case("cacheline-shared-noncoherent", "attributes", False, HOWTO + " (DMA buffers must not share a cache line with other data on non-coherent platforms)",
         arch="arm64", fmt="report")
c.probe(dma=0x48000000)
c.map("FROM_DEVICE", 0x48800000, 64)
c.sync("cpu", "FROM_DEVICE", 0x48800000, 64)
c.unmap("FROM_DEVICE", 0x48800000, 64)
c.map("TO_DEVICE", 0x48900000, 2)
c.expects("cacheline-sharing", c.map("FROM_DEVICE", 0x48900002, 1))
c.unmap("FROM_DEVICE", 0x48900002, 1)
c.unmap("TO_DEVICE", 0x48900000, 2)

c = Case("mmio-peer-bar-6_12", "attributes", True, MAPPING + " dma_map_resource (MMIO of a peer device)", kernel="6.12",
         why="a peer device's BAR mapped for DMA, far above RAM")
c.probe()
c.map("BIDIRECTIONAL", 0x38000000000, 65536, mmio=True)
c.map("BIDIRECTIONAL", 0x38000000000, 65536, mmio=True, dev=B)
c.unmap("BIDIRECTIONAL", 0x38000000000, 65536, mmio=True, dev=B)
c.unmap("BIDIRECTIONAL", 0x38000000000, 65536, mmio=True)

c = Case("mmio-peer-bar-7", "attributes", True, MAPPING + " dma_map_phys with DMA_ATTR_MMIO; " + ATTRS + " DMA_ATTR_MMIO", fmt="report",
         why="7.x: MMIO mappings are dma_map_phys with the MMIO attribute")
c.probe()
c.map("FROM_DEVICE", 0x38000100000, 4096, mmio=True)
c.unmap("FROM_DEVICE", 0x38000100000, 4096, mmio=True)

c = Case("mmio-unmapped-as-memory", "attributes", False, DEBUG + " check_unmap ('wrong function': mapped as resource, unmapped as phys)")
c.probe()
c.map("FROM_DEVICE", 0x38000100000, 4096, mmio=True)
c.expects("unmap-wrong-function", c.unmap("FROM_DEVICE", 0x38000100000, 4096))

c = Case("skip-cpu-sync-never-synced", "attributes", False, ATTRS + " DMA_ATTR_SKIP_CPU_SYNC (the driver must sync itself)", arch="arm64",
         why="a FROM_DEVICE buffer mapped and unmapped with SKIP_CPU_SYNC, never synced on a platform where syncs are visible")
c.probe(dma=0x48000000)
c.map("FROM_DEVICE", 0x48A00000, 4096)
c.sync("cpu", "FROM_DEVICE", 0x48A00000, 4096)
c.unmap("FROM_DEVICE", 0x48A00000, 4096)
c.map("FROM_DEVICE", 0x48B00000, 4096, attrs="SKIP_CPU_SYNC")
c.expects("missing-sync", c.unmap("FROM_DEVICE", 0x48B00000, 4096, attrs="SKIP_CPU_SYNC"))

c = Case("no-kernel-mapping-streamed", "attributes", False, ATTRS + " DMA_ATTR_NO_KERNEL_MAPPING (no kernel virtual mapping: the cookie is not memory)",
         fmt="report", why="the cookie's memory is then mapped as streaming memory")
c.probe()
c.alloc(0x104000000, 65536, attrs="NO_KERNEL_MAPPING", virt=0xFFFFEA0004100000)
c.expects("streaming-over-coherent", c.map("TO_DEVICE", 0x104000000, 4096))
c.unmap("TO_DEVICE", 0x104000000, 4096)

# =============================================================================================
# Family: sharing (one buffer, several devices).
# =============================================================================================
for k, fmt in (("7", "tracefs"), ("6.12", "report")):
    c = Case("dmabuf-skip-cpu-sync-%s" % k.replace(".", "_"), "sharing", True,
             ATTRS + " DMA_ATTR_SKIP_CPU_SYNC ('mapping the same buffer for several devices'); " + DEBUG + " add_dma_entry",
             kernel=k, fmt=fmt, why="an exporter maps for device A, the importer maps the same pages for device B with SKIP_CPU_SYNC")
    c.probe()
    c.probe(dev=B, dma=0xF8000)
    c.map("BIDIRECTIONAL", 0x105000000, 65536)
    c.map("BIDIRECTIONAL", 0x105000000, 65536, attrs="SKIP_CPU_SYNC", dev=B)
    c.unmap("BIDIRECTIONAL", 0x105000000, 65536, attrs="SKIP_CPU_SYNC", dev=B)
    c.unmap("BIDIRECTIONAL", 0x105000000, 65536)

c = Case("dmabuf-export-coherent", "sharing", True,
         MAPPING + " dma_get_sgtable_attrs / " + DIRECT + " dma_direct_get_sgtable; " + ATTRS + " DMA_ATTR_SKIP_CPU_SYNC",
         why="videobuf2-dma-contig exports a coherent buffer; the importer maps its pages with SKIP_CPU_SYNC (vivid, drivers helper F2)")
c.probe()
c.alloc(0x1240000, 155648)
ph = [0x1240000]
c.map_sg("FROM_DEVICE", ph, ph, [155648], attrs="SKIP_CPU_SYNC")
c.unmap_sg("FROM_DEVICE", ph, attrs="SKIP_CPU_SYNC")
c.free(0x1240000, 155648)

c = Case("dmabuf-export-noncontiguous", "sharing", True,
         MAPPING + " dma_alloc_noncontiguous; " + ATTRS + " DMA_ATTR_SKIP_CPU_SYNC", arch="arm64", fmt="trace_pipe",
         why="an exporter maps its dma_alloc_noncontiguous buffer for an importer with SKIP_CPU_SYNC and syncs the pages itself while the importer uses them")
c.probe(dma=0x48000000)
c.alloc_sgt(0xB9940000, 233472, "FROM_DEVICE", [0xB9940000])
c.sync_sg("device", "FROM_DEVICE", [0xB9940000], [233472])
c.map_sg("FROM_DEVICE", [0xB9940000], [0xB9940000], [233472], attrs="SKIP_CPU_SYNC")
c.sync_sg("cpu", "FROM_DEVICE", [0xB9940000], [233472])
c.unmap_sg("FROM_DEVICE", [0xB9940000], attrs="SKIP_CPU_SYNC")
c.free_sgt(0xB9940000, 233472, "FROM_DEVICE", [0xB9940000])

c = Case("sharing-readers", "sharing", True, DEBUG + " active_cacheline_insert (TO_DEVICE not tracked)", fmt="trace_pipe",
         why="two devices read the same buffer")
c.probe()
c.probe(dev=B, dma=0xF8000)
c.map("TO_DEVICE", 0x105000000, 4096)
c.map("TO_DEVICE", 0x105000000, 4096, dev=B)
c.unmap("TO_DEVICE", 0x105000000, 4096, dev=B)
c.unmap("TO_DEVICE", 0x105000000, 4096)

c = Case("sharing-sg-skip-cpu-sync", "sharing", True, ATTRS + " DMA_ATTR_SKIP_CPU_SYNC", fmt="report",
         why="a dma-buf sg table mapped for a second device with SKIP_CPU_SYNC")
c.probe()
c.probe(dev=B, dma=0xF8000)
ph = [0x105000000, 0x105010000]
c.map_sg("FROM_DEVICE", ph, ph, [4096, 4096])
c.map_sg("FROM_DEVICE", ph, ph, [4096, 4096], attrs="SKIP_CPU_SYNC", dev=B)
c.unmap_sg("FROM_DEVICE", ph, attrs="SKIP_CPU_SYNC", dev=B)
c.unmap_sg("FROM_DEVICE", ph)

c = Case("dmabuf-importer-never-synced", "sharing", False,
         ATTRS + " DMA_ATTR_SKIP_CPU_SYNC (the driver must then sync itself); " + MAPPING + " dma_alloc_noncontiguous (cacheable pages)",
         arch="arm64", why="the importer's SKIP_CPU_SYNC mapping of cacheable pages on a non-coherent device, synced by nobody (vb2 exporter, drivers helper F3)")
c.probe(dma=0x48000000)
c.alloc_sgt(0xB9980000, 233472, "FROM_DEVICE", [0xB9980000])
c.sync_sg("device", "FROM_DEVICE", [0xB9980000], [233472])
c.sync_sg("cpu", "FROM_DEVICE", [0xB9980000], [233472])
c.map_sg("FROM_DEVICE", [0xB9980000], [0xB9980000], [233472], attrs="SKIP_CPU_SYNC")
c.expects("missing-sync", c.unmap_sg("FROM_DEVICE", [0xB9980000], attrs="SKIP_CPU_SYNC"))
c.free_sgt(0xB9980000, 233472, "FROM_DEVICE", [0xB9980000])

c = Case("dmabuf-export-coherent-noncoherent-arm64", "sharing", True,
         DIRECT + " dma_direct_alloc (an uncached remap on a non-coherent device); " + ATTRS + " DMA_ATTR_SKIP_CPU_SYNC",
         arch="arm64", why="a coherent buffer exported on non-coherent arm64: the importer's unsynced SKIP_CPU_SYNC mapping loses nothing (drivers helper F4)")
c.probe(dma=0x48000000)
c.map("FROM_DEVICE", 0x48A00000, 4096)
c.sync("cpu", "FROM_DEVICE", 0x48A00000, 4096)
c.unmap("FROM_DEVICE", 0x48A00000, 4096)
c.alloc(0xB9940000, 233472, virt=0xFFFF800083A00000)
c.map_sg("FROM_DEVICE", [0xB9940000], [0xB9940000], [233472], attrs="SKIP_CPU_SYNC")
c.unmap_sg("FROM_DEVICE", [0xB9940000], attrs="SKIP_CPU_SYNC")
c.free(0xB9940000, 233472, virt=0xFFFF800083A00000)

c = Case("sharing-without-skip", "sharing", False, DEBUG + " add_dma_entry (EEXIST without SKIP_CPU_SYNC)")
c.probe()
c.probe(dev=B, dma=0xF8000)
c.map("FROM_DEVICE", 0x105000000, 65536)
c.expects("double-mapping", c.map("BIDIRECTIONAL", 0x105000000, 65536, dev=B))
c.unmap("BIDIRECTIONAL", 0x105000000, 65536, dev=B)
c.unmap("FROM_DEVICE", 0x105000000, 65536)

c = Case("sharing-writer-and-reader", "sharing", False, SWIOTLB + " swiotlb_tbl_unmap_single (a FROM_DEVICE unmap copies the bounce slot back over the original: the other mapping's data is overwritten)", fmt="report")
c.probe()
c.probe(dev=B, dma=0xF8000)
c.map("TO_DEVICE", 0x105000000, 4096)
c.expects("double-mapping", c.map("FROM_DEVICE", 0x105000000, 4096, dev=B))
c.unmap("FROM_DEVICE", 0x105000000, 4096, dev=B)
c.unmap("TO_DEVICE", 0x105000000, 4096)

c = Case("sharing-unmap-other-device", "sharing", False, DEBUG + " check_unmap (entries are per device: memory not allocated for this device)", fmt="trace_pipe")
c.probe()
c.probe(dev=B, dma=0xF8000)
c.map("TO_DEVICE", 0x105000000, 4096)
c.expects("unmap-unknown", c.unmap("TO_DEVICE", 0x105000000, 4096, dev=B))
c.unmap("TO_DEVICE", 0x105000000, 4096)

# =============================================================================================
# Family: bus-offset (dma = phys + constant: Raspberry Pi's 0xc0000000, no IOMMU).
# =============================================================================================
OFF = 0xC0000000
for k, fmt in (("7", "tracefs"), ("6.12", "report")):
    c = Case("bus-offset-readers-%s" % k.replace(".", "_"), "bus-offset", True, DIRECT + " phys_to_dma (dma_range_map offset; every mapping of a page gets the same bus address)",
             kernel=k, fmt=fmt, arch="arm64", why="two live TO_DEVICE mappings of one page share a bus address behind a constant offset")
    c.probe(dma=0x2F000000 + OFF)
    for i in range(3):
        c.map("TO_DEVICE", 0x03000000 + i * 0x1000 + OFF, 4096, phys=0x03000000 + i * 0x1000)
    c.map("TO_DEVICE", 0x03000000 + OFF, 4096, phys=0x03000000)
    c.unmap("TO_DEVICE", 0x03000000 + OFF, 4096)
    for i in range(3):
        c.unmap("TO_DEVICE", 0x03000000 + i * 0x1000 + OFF, 4096)

c = Case("bus-offset-coherent", "bus-offset", True, DIRECT + " dma_direct_alloc (phys_to_dma of the allocation)", arch="arm64", fmt="trace_pipe",
         why="coherent allocations and streaming maps behind a bus offset")
c.probe(dma=0x2F000000 + OFF)
c.alloc(0x2F100000 + OFF, 8192, virt=ARM_LINEAR + 0x2F100000)
c.map("FROM_DEVICE", 0x03100000 + OFF, 2048, phys=0x03100000)
c.sync("cpu", "FROM_DEVICE", 0x03100000 + OFF, 2048)
c.unmap("FROM_DEVICE", 0x03100000 + OFF, 2048)
c.free(0x2F100000 + OFF, 8192, virt=ARM_LINEAR + 0x2F100000)

c = Case("bus-offset-double-mapping", "bus-offset", False, HOWTO + " (streaming ownership: the device owns the buffer between map and unmap; a second mapping's cache maintenance invalidates the first)", arch="arm64")
c.probe(dma=0x2F000000 + OFF)
c.map("FROM_DEVICE", 0x03000000 + OFF, 4096, phys=0x03000000)
c.expects("double-mapping", c.map("TO_DEVICE", 0x03000000 + OFF, 4096, phys=0x03000000))
c.unmap("TO_DEVICE", 0x03000000 + OFF, 4096)
c.unmap("FROM_DEVICE", 0x03000000 + OFF, 4096)

c = Case("bus-offset-unmap-size", "bus-offset", False, DEBUG + " check_unmap ('different size')", arch="arm64", fmt="report")
c.probe(dma=0x2F000000 + OFF)
c.map("FROM_DEVICE", 0x03000000 + OFF, 4096, phys=0x03000000)
c.expects("unmap-size-mismatch", c.unmap("FROM_DEVICE", 0x03000000 + OFF, 2048))

c = Case("bus-offset-double-unmap", "bus-offset", False, DEBUG + " check_unmap (memory not allocated)", arch="arm64", fmt="trace_pipe")
c.probe(dma=0x2F000000 + OFF)
c.map("TO_DEVICE", 0x03000000 + OFF, 4096, phys=0x03000000)
c.unmap("TO_DEVICE", 0x03000000 + OFF, 4096)
c.expects("double-unmap", c.unmap("TO_DEVICE", 0x03000000 + OFF, 4096))

# =============================================================================================
# Family: iommu (iommu-dma: IOVAs, iommu:map/unmap before the dma event).
# =============================================================================================
for k, fmt in (("7", "report"), ("6.12", "tracefs")):
    c = Case("iommu-streaming-%s" % k.replace(".", "_"), "iommu", True, IOMMU + " iommu_dma_map_page / iommu_dma_unmap_page",
             kernel=k, fmt=fmt, why="IOVAs handed out top-down, each unmapped before reuse")
    c.iommu_map(0xFFFFF000, 0x10A000000)
    c.probe(dma=0xFFFFF000)
    for i in range(3):
        iova = 0xFFFFE000 - i * 0x1000
        c.iommu_map(iova, 0x106000000 + i * 0x3000)
        c.map("FROM_DEVICE", iova, 4096, phys=0x106000000 + i * 0x3000)
    for i in range(3):
        iova = 0xFFFFE000 - i * 0x1000
        c.unmap("FROM_DEVICE", iova, 4096)
        c.iommu_unmap(iova)
    c.iommu_map(0xFFFFE000, 0x107000000)
    c.map("TO_DEVICE", 0xFFFFE000, 4096, phys=0x107000000)
    c.unmap("TO_DEVICE", 0xFFFFE000, 4096)
    c.iommu_unmap(0xFFFFE000)

c = Case("iommu-alloc-vmalloc", "iommu", True, IOMMU + " iommu_dma_alloc (remapped CPU address, pages in any order)", fmt="report",
         why="a coherent allocation under an IOMMU: a vmalloc CPU address is normal")
c.iommu_map(0xFFFF8000, 0x10A004000)
c.iommu_map(0xFFFF9000, 0x10A001000)
c.alloc(0xFFFF8000, 8192, virt=0xFFFFC90000100000)
c.map("TO_DEVICE", 0xFFFF7000, 512, phys=0x108000200)
c.unmap("TO_DEVICE", 0xFFFF7000, 512)
c.free(0xFFFF8000, 8192, virt=0xFFFFC90000100000)

c = Case("iommu-iova-reuse-live", "iommu", False, IOMMU + " iommu_dma_map_page (an IOVA is handed out once until its unmap)", fmt="report")
c.iommu_map(0xFFFFF000, 0x10A000000)
c.probe(dma=0xFFFFF000)
c.iommu_map(0xFFFFE000, 0x106000000)
c.map("FROM_DEVICE", 0xFFFFE000, 4096, phys=0x106000000)
c.iommu_map(0xFFFFE000, 0x106100000)
c.expects("dma-address-reuse", c.map("FROM_DEVICE", 0xFFFFE000, 4096, phys=0x106100000))

c = Case("iommu-double-unmap", "iommu", False, DEBUG + " check_unmap (memory not allocated)", fmt="tracefs")
c.iommu_map(0xFFFFF000, 0x10A000000)
c.probe(dma=0xFFFFF000)
c.iommu_map(0xFFFFE000, 0x106000000)
c.map("FROM_DEVICE", 0xFFFFE000, 4096, phys=0x106000000)
c.unmap("FROM_DEVICE", 0xFFFFE000, 4096)
c.iommu_unmap(0xFFFFE000)
c.expects("double-unmap", c.unmap("FROM_DEVICE", 0xFFFFE000, 4096))

c = Case("iommu-unmap-size", "iommu", False, DEBUG + " check_unmap ('different size')", fmt="trace_pipe")
c.iommu_map(0xFFFFF000, 0x10A000000)
c.probe(dma=0xFFFFF000)
c.iommu_map(0xFFFFE000, 0x106000000)
c.map("FROM_DEVICE", 0xFFFFE000, 4096, phys=0x106000000)
c.expects("unmap-size-mismatch", c.unmap("FROM_DEVICE", 0xFFFFE000, 2048))

c = Case("iommu-double-mapping", "iommu", False, DEBUG + " active_cacheline_insert (EEXIST: the same page mapped twice, device-written)", fmt="report")
c.iommu_map(0xFFFFF000, 0x10A000000)
c.probe(dma=0xFFFFF000)
c.iommu_map(0xFFFFE000, 0x106000000)
c.map("FROM_DEVICE", 0xFFFFE000, 4096, phys=0x106000000)
c.iommu_map(0xFFFFD000, 0x106000000)
c.expects("double-mapping", c.map("FROM_DEVICE", 0xFFFFD000, 4096, phys=0x106000000))

# =============================================================================================
# Family: swiotlb (bounce buffering; coherent x86 with a 32-bit device).
# =============================================================================================
for k, fmt in (("7", "report"), ("6.12", "tracefs")):
    c = Case("swiotlb-32bit-x86-%s" % k.replace(".", "_"), "swiotlb", True,
             SWIOTLB + " swiotlb_tbl_map_single (dev->dma_skip_sync cleared: syncs traced on a coherent machine)",
             kernel=k, fmt=fmt, why="a 32-bit device on x86: bounced buffers, visible syncs, two small buffers in one cache line (coherent: harmless)")
    c.probe()
    c.bounce(0x103000000, 2)
    c.map("TO_DEVICE", 0x7B000000, 2, phys=0x103000000)
    c.map("FROM_DEVICE", 0x103000002, 1, phys=0x103000002)
    c.sync("cpu", "FROM_DEVICE", 0x103000002, 1)
    c.unmap("FROM_DEVICE", 0x103000002, 1)
    c.unmap("TO_DEVICE", 0x7B000000, 2)
    c.bounce(0x103001000, 4096)
    c.map("FROM_DEVICE", 0x7B001000, 4096, phys=0x103001000)
    c.sync("cpu", "FROM_DEVICE", 0x7B001000, 4096)
    c.sync("device", "FROM_DEVICE", 0x7B001000, 4096)
    c.unmap("FROM_DEVICE", 0x7B001000, 4096)

c = Case("swiotlb-forced", "swiotlb", True, SWIOTLB + " swiotlb_map (swiotlb=force)", fmt="trace_pipe",
         why="every buffer bounced; slots reused after unmap")
c.probe()
for i in range(3):
    c.bounce(0x103000000 + i * 0x1000, 4096, mask=0xFFFFFFFFFFFFFFFF, force=True)
    c.map("FROM_DEVICE", 0x7B000000, 4096, phys=0x103000000 + i * 0x1000)
    c.sync("cpu", "FROM_DEVICE", 0x7B000000, 4096)
    c.unmap("FROM_DEVICE", 0x7B000000, 4096)

c = Case("swiotlb-sync-twice", "swiotlb", False, API + " Part Ic: dma_sync_single_for_device (before the device writes again)", fmt="report")
c.probe()
c.bounce(0x103001000, 4096)
c.map("FROM_DEVICE", 0x7B001000, 4096, phys=0x103001000)
c.sync("cpu", "FROM_DEVICE", 0x7B001000, 4096)
c.expects("missing-sync", c.sync("cpu", "FROM_DEVICE", 0x7B001000, 4096))
c.unmap("FROM_DEVICE", 0x7B001000, 4096)

c = Case("swiotlb-sync-after-unmap", "swiotlb", False, DEBUG + " check_sync (memory not allocated); " + SWIOTLB + " (the slot is free after unmap)")
c.probe()
c.bounce(0x103001000, 4096)
c.map("FROM_DEVICE", 0x7B001000, 4096, phys=0x103001000)
c.unmap("FROM_DEVICE", 0x7B001000, 4096)
c.expects("sync-unknown", c.sync("cpu", "FROM_DEVICE", 0x7B001000, 4096))

c = Case("swiotlb-unmap-direction", "swiotlb", False, DEBUG + " check_unmap ('different direction')", fmt="trace_pipe")
c.probe()
c.bounce(0x103001000, 4096)
c.map("FROM_DEVICE", 0x7B001000, 4096, phys=0x103001000)
c.expects("unmap-direction-mismatch", c.unmap("TO_DEVICE", 0x7B001000, 4096))

c = Case("swiotlb-slot-reuse-live", "swiotlb", False, SWIOTLB + " swiotlb_tbl_map_single (a slot is handed out once until swiotlb_tbl_unmap_single)", fmt="report")
c.probe()
c.bounce(0x103001000, 4096)
c.map("FROM_DEVICE", 0x7B001000, 4096, phys=0x103001000)
c.bounce(0x103005000, 4096)
c.expects("dma-address-reuse", c.map("FROM_DEVICE", 0x7B001000, 4096, phys=0x103005000))

# =============================================================================================
# Family: platform (coherent and non-coherent platforms, address classes, pre-6.12 kernels).
# =============================================================================================
c = Case("ram-above-1tib", "platform", True, DIRECT + " dma_direct_map_phys (any RAM the mask reaches)",
         why="a NUMA machine with RAM above 1 TiB: a coherent allocation low, streaming maps high")
c.probe(dma=0x100000)
c.map("FROM_DEVICE", 0x40000002000, 4096)
c.unmap("FROM_DEVICE", 0x40000002000, 4096)
c.map("TO_DEVICE", 0x1000000, 4096)
c.unmap("TO_DEVICE", 0x1000000, 4096)

c = Case("coherent-arm64-no-syncs", "platform", True, DIRECT + " dma_direct_sync_single_for_cpu (skipped on a coherent device: dma_skip_sync)",
         arch="arm64", fmt="report", why="a coherent arm64 device: no syncs traced, small buffers side by side")
c.probe(dma=0x48000000)
for i in range(20):
    c.map("TO_DEVICE", 0x49000000 + i * 64, 2)
    c.map("FROM_DEVICE", 0x49000002 + i * 64, 1)
    c.unmap("FROM_DEVICE", 0x49000002 + i * 64, 1)
    c.unmap("TO_DEVICE", 0x49000000 + i * 64, 2)

c = Case("noncoherent-arm64-rx", "platform", True, API + " Part Ic (FROM_DEVICE: sync for the CPU before reading, for the device before reuse)",
         arch="arm64", fmt="trace_pipe", why="e1000e-style receive pages on a non-coherent arm64 PCIe host")
c.probe(dma=0x48000000)
for i in range(4):
    c.map("FROM_DEVICE", 0x4A000000 + i * 0x1000, 4096)
for _ in range(2):
    for i in range(4):
        c.sync("cpu", "FROM_DEVICE", 0x4A000000 + i * 0x1000, 4096)
        c.sync("device", "FROM_DEVICE", 0x4A000000 + i * 0x1000, 4096)
for i in range(4):
    c.unmap("FROM_DEVICE", 0x4A000000 + i * 0x1000, 4096)

c = Case("pre-6.12-swiotlb-iommu-only", "platform", True, "include/trace/events/dma.h (the dma tracepoints arrived in 6.12); " + SWIOTLB + " swiotlb_bounced",
         kernel="6.1", fmt="report", why="a 6.1 kernel: bounces and IOMMU map/unmap, no dma events")
for i in range(3):
    c.bounce(0x103000000 + i * 0x1000, 4096, force=True)
    c.iommu_map(0xFFFFE000 - i * 0x1000, 0x104000000 + i * 0x1000)
for i in range(3):
    c.iommu_unmap(0xFFFFE000 - i * 0x1000)

c = Case("impossible-phys-after-alloc", "platform", False, API + " Part Ia: dma_alloc_coherent (virt_to_page() of its CPU address is invalid)",
         fmt="report", why="coherent memory's CPU address fed to virt_to_phys: a physical address beyond 2^52")
c.iommu_map(0xFFFFF000, 0x10A000000)
c.alloc(0xFFFFF000, 4096, virt=0xFFFFC90000200000)
c.iommu_map(0xFFFFE000, 0x10F000000000000)
c.expects("coherent-no-struct-page", c.map("TO_DEVICE", 0xFFFFE000, 4096, phys=0x10F000000000000, task="kworker/u8:1", pid=29))
c.unmap("TO_DEVICE", 0xFFFFE000, 4096)

# =============================================================================================
# Family: lifecycle (leaks need evidence of teardown; lost events).
# =============================================================================================
c = Case("rx-ring-quiet-after-burst", "lifecycle", True, HOWTO + " (receive rings stay mapped while the interface is up)",
         fmt="tracefs", why="a burst of short transmit mappings, then quiet: the receive ring stays mapped")
c.probe()
c.alloc(0xF2000, 4096)
c.free(0xF2000, 4096)
for i in range(8):
    c.map("FROM_DEVICE", 0x102000000 + i * 0x1000, 2048)
for i in range(20):
    c.map("FROM_DEVICE", 0x101000000 + i * 0x800, 2048)
    c.unmap("FROM_DEVICE", 0x101000000 + i * 0x800, 2048)
c.wait(30.0)
c.marker("LAB: phase idle")

c = Case("scratch-buffer-freed", "lifecycle", True, API + " Part Ia: dma_free_coherent (a driver may free a buffer at any time)", fmt="report",
         why="freeing one probe-time scratch buffer is not a teardown")
c.probe()
c.alloc(0xF2000, 4096)
c.map("FROM_DEVICE", 0x102000000, 2048)
c.free(0xF2000, 4096)

c = Case("teardown-leaks-mapping", "lifecycle", False, DEBUG + " dma_debug_device_change ('device driver has pending DMA allocations while released from device')",
         fmt="tracefs")
c.probe()
c.alloc(0xF2000, 4096)
c.alloc(0xF4000, 4096)
lk = c.map("FROM_DEVICE", 0x102000000, 2048)
c.map("FROM_DEVICE", 0x102001000, 2048)
c.unmap("FROM_DEVICE", 0x102001000, 2048)
c.free(0xF4000, 4096)
c.free(0xF2000, 4096)
c.free(0xF0000, 4096)
c.expects("mapping-leak", lk)

c = Case("teardown-leaks-coherent", "lifecycle", False, DEBUG + " dma_debug_device_change (pending allocations at driver release)", fmt="report")
c.probe()
c.alloc(0xF2000, 4096)
c.alloc(0xF4000, 4096)
c.map("FROM_DEVICE", 0x102001000, 2048)
leaked = c.alloc(0xF6000, 4096)
c.unmap("FROM_DEVICE", 0x102001000, 2048)
c.free(0xF4000, 4096)
c.free(0xF2000, 4096)
c.free(0xF0000, 4096)
c.expects("coherent-leak", leaked)

c = Case("lost-partner-unmap-sg", "lifecycle", True, "kernel/trace/ring_buffer.c (overruns drop events; the real partner of an unmap may be lost)",
         fmt="tracefs", why="mkfs: the zero page starts many lists; after lost events a 168-entry unmap has its map in the gap")
c.probe()
zp = [0x103F00000] * 88
c.map_sg("TO_DEVICE", zp, [0x103F00000] * 88, [4096] * 88)
c.events.append(None)  # the lost-events line
c.t += 0.01
zp2 = [0x103F00000] * 168
c.unmap_sg("TO_DEVICE", zp2)
c.unmap_sg("TO_DEVICE", zp)
c.allow = ["events-lost"]

c = Case("lost-partner-gap-before-near-match", "lifecycle", True,
         "kernel/trace/ring_buffer.c (overruns drop events); " + DEBUG + " check_unmap matches an sg unmap to its own map only",
         fmt="report", why="the issue's mkfs case: events lost, then an 88-entry list of the zero page is mapped, then a 168-entry unmap whose map was lost")
c.probe()
c.map("TO_DEVICE", 0x103000000, 4096)
c.unmap("TO_DEVICE", 0x103000000, 4096)
c.events.append(None)  # the lost-events line: the 168-entry map was in it
c.t += 0.01
zp = [0x103F00000] * 88
c.map_sg("TO_DEVICE", zp, zp, [4096] * 88)
c.unmap_sg("TO_DEVICE", [0x103F00000] * 168)
c.unmap_sg("TO_DEVICE", zp)
c.allow = ["events-lost"]
