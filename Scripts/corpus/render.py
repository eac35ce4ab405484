"""Renders corpus cases (cases.py) into the three real text formats.

Line shapes are copied from real recordings: tracefs `trace` (SampleTraces/k7.3-tracefs.txt),
`trace_pipe` (k7.3-trace_pipe.txt) and `trace-cmd report` of trace.dat files, where libtraceevent
cannot print the array-carrying events and shows `[FAILED TO PARSE]` with raw fields.
Payloads follow the TP_printk formats of include/trace/events/dma.h, swiotlb.h and iommu.h.
"""

TRACEFS_HEADER = """# tracer: nop
#
# entries-in-buffer/entries-written: {n}/{n}   #P:2
#
#                                _-----=> irqs-off/BH-disabled
#                               / _----=> need-resched
#                              | / _---=> hardirq/softirq
#                              || / _--=> preempt-depth
#                              ||| / _-=> migrate-disable
#                              |||| /     delay
#           TASK-PID     CPU#  |||||  TIMESTAMP  FUNCTION
#              | |         |   |||||     |         |
"""

DIRS = {"BIDIRECTIONAL": 0, "TO_DEVICE": 1, "FROM_DEVICE": 2, "NONE": 3}
ATTR_BITS = {"WEAK_ORDERING": 1 << 1, "WRITE_COMBINE": 1 << 2, "NO_KERNEL_MAPPING": 1 << 4,
             "SKIP_CPU_SYNC": 1 << 5, "FORCE_CONTIGUOUS": 1 << 6, "ALLOC_SINGLE_PAGES": 1 << 7,
             "NO_WARN": 1 << 8, "PRIVILEGED": 1 << 9, "MMIO": 1 << 10, "CACHELINES_OVERLAP": 1 << 11,
             "REQUIRE_COHERENT": 1 << 12}
MAPPING_ERROR = 0xFFFFFFFFFFFFFFFF


def attr_value(attrs):
    v = 0
    for a in filter(None, attrs.split("|")):
        v |= ATTR_BITS[a]
    return v


def arr(values):
    return "{" + ",".join("0x%x" % v for v in values) + "}"


def raw_array(values, size):
    out = []
    for v in values:
        for k in range(size):
            out.append("%02x" % ((v >> (8 * k)) & 0xFF))
    return "ARRAY[" + ", ".join(out) + "]"


def hashed(ptr):
    """tracefs prints %p hashed (hash-ptr on by default): stable per boot, 32 significant bits."""
    if ptr == 0:
        return "0000000000000000"
    h = (ptr * 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
    return "%016x" % (h >> 32)


class Event:
    def __init__(self, ts, name, fields, cpu=0, task="kworker/u8:1", pid=29):
        self.ts, self.name, self.f, self.cpu, self.task, self.pid = ts, name, fields, cpu, task, pid

    def payload(self, fmt):
        f, n = self.f, self.name
        raw = fmt == "report"
        dev = f.get("dev")
        ptr = (lambda p: "0x%x" % p if p else "(nil)") if raw else hashed
        if n in ("dma_map_page", "dma_map_phys", "dma_map_resource"):
            return "%s dir=%s dma_addr=%x size=%d phys_addr=%x attrs=%s" % (dev, f["dir"], f["dma"], f["size"], f["phys"], f.get("attrs", ""))
        if n in ("dma_unmap_page", "dma_unmap_phys", "dma_unmap_resource"):
            return "%s dir=%s dma_addr=%x size=%d attrs=%s" % (dev, f["dir"], f["dma"], f["size"], f.get("attrs", ""))
        if n in ("dma_alloc", "dma_alloc_pages"):
            return "%s dir=%s dma_addr=%x size=%d virt_addr=%s flags=GFP_KERNEL attrs=%s" % (
                dev, f.get("dir", "BIDIRECTIONAL"), f["dma"], f["size"], ptr(f["virt"]), f.get("attrs", ""))
        if n in ("dma_free", "dma_free_pages"):
            return "%s dir=%s dma_addr=%x size=%d virt_addr=%s attrs=%s" % (
                dev, f.get("dir", "BIDIRECTIONAL"), f["dma"], f["size"], ptr(f["virt"]), f.get("attrs", ""))
        if n == "dma_alloc_sgt":
            return "%s dir=%s dma_addr=%x size=%d phys_addrs=%s flags=GFP_KERNEL attrs=%s" % (
                dev, f["dir"], f["dma"], f["size"], arr(f["phys"]), f.get("attrs", ""))
        if n == "dma_free_sgt":
            return "%s dir=%s dma_addr=%x size=%d phys_addrs=%s" % (dev, f["dir"], f["dma"], f["size"], arr(f["phys"]))
        if n == "dma_map_sg":
            phys, dma, lens = f["phys"], f["dmas"], f["lens"]
            nents, ents = f.get("nents", len(phys)), f.get("ents", len(dma))
            trunc = nents > 128 or ents > 128
            if raw:
                return "[FAILED TO PARSE] device=%s full_nents=%d full_ents=%d truncated=%d phys_addrs=%s dma_addrs=%s lengths=%s dir=%d attrs=0x%x" % (
                    dev, nents, ents, int(trunc), raw_array(phys, 8), raw_array(dma, 8), raw_array(lens, 4),
                    DIRS[f["dir"]], attr_value(f.get("attrs", "")))
            return "%s dir=%s nents=%d/%d ents=%d/%d%s dma_addrs=%s sizes=%s phys_addrs=%s attrs=%s" % (
                dev, f["dir"], min(nents, 128), nents, min(ents, 128), ents, " [TRUNCATED]" if trunc else "",
                arr(dma), arr(lens), arr(phys), f.get("attrs", ""))
        if n == "dma_map_sg_err":
            return "%s dir=%s dma_addrs=%s err=%d attrs=%s" % (dev, f["dir"], arr(f["phys"]), f["err"], f.get("attrs", ""))
        if n == "dma_unmap_sg":
            if raw:
                return "[FAILED TO PARSE] device=%s addrs=%s dir=%d attrs=0x%x" % (
                    dev, raw_array(f["phys"], 8), DIRS[f["dir"]], attr_value(f.get("attrs", "")))
            return "%s dir=%s phys_addrs=%s attrs=%s" % (dev, f["dir"], arr(f["phys"]), f.get("attrs", ""))
        if n in ("dma_sync_single_for_cpu", "dma_sync_single_for_device"):
            return "%s dir=%s dma_addr=%x size=%d" % (dev, f["dir"], f["dma"], f["size"])
        if n in ("dma_sync_sg_for_cpu", "dma_sync_sg_for_device"):
            if raw:
                return "[FAILED TO PARSE] device=%s dma_addrs=%s lengths=%s dir=%d" % (
                    dev, raw_array(f["dmas"], 8), raw_array(f["lens"], 4), DIRS[f["dir"]])
            return "%s dir=%s dma_addrs=%s sizes=%s" % (dev, f["dir"], arr(f["dmas"]), arr(f["lens"]))
        if n == "swiotlb_bounced":
            return "dev_name: %s dma_mask=%x dev_addr=%x size=%d %s" % (dev, f.get("mask", 0xFFFFFFFF), f["orig"], f["size"], "FORCE" if f.get("force") else "NORMAL")
        if n == "map":
            return "IOMMU: iova=0x%016x - 0x%016x paddr=0x%016x size=%d" % (f["iova"], f["iova"] + f["size"], f["paddr"], f["size"])
        if n == "unmap":
            return "IOMMU: iova=0x%016x - 0x%016x size=%d unmapped_size=%d" % (f["iova"], f["iova"] + f["size"], f["size"], f["size"])
        if n in ("add_device_to_group", "remove_device_from_group"):
            return "IOMMU: groupID=%d device=%s" % (f["group"], dev)
        if n == "marker":
            return f["text"]
        raise ValueError(n)

    def line(self, fmt):
        ts = "%.6f" % self.ts
        name = self.name
        if name == "marker":
            name = "print:                tracing_mark_write" if fmt == "report" else "tracing_mark_write"
        task = "%s-%d" % (self.task, self.pid)
        if fmt == "report":
            head = "%16s-%-5d [%03d] %12s: " % (self.task, self.pid, self.cpu, ts)
            return head + ("%-21s " % (name + ":")) + self.payload(fmt)
        head = "%16s-%-7d [%03d] ..... %12s: " % (self.task, self.pid, self.cpu, ts)
        return head + name + ": " + self.payload(fmt)


def render(events, fmt):
    lines = [e.line(fmt) for e in events]
    if fmt == "report":
        return "cpus=2\n" + "\n".join(lines) + "\n"
    if fmt == "tracefs":
        return TRACEFS_HEADER.format(n=len(lines)) + "\n".join(lines) + "\n"
    return "\n".join(lines) + "\n"
