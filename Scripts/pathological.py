#!/usr/bin/env python3
"""Writes pathological but valid traces for Scripts/stress.sh and the test suite.

    pathological.py live-mappings N OUT      N dma_map_phys never unmapped (text)
    pathological.py devices N OUT            N devices, each allocating, mapping and unmapping (text)
    pathological.py long-line BYTES OUT      a trace_marker line of BYTES bytes between normal lines (text)
    pathological.py sg-list N OUT            dma_map_sg of N entries, synced both ways, unmapped (text)
    pathological.py backwards N OUT          N map/unmap pairs whose timestamps fall on one CPU (text)
    pathological.py cpus N OUT --base V6     a trace.dat v6 with N CPUs, each with map/unmap pairs,
                                             built on the header and event formats of the v6 file V6
                                             (`trace-cmd convert --file-version 6 --compression none`)
        [--pages P]                          ring-buffer pages per CPU (default 1)

Text is tracefs `trace_pipe` in the 7.x kernels' rendering; every mapping is well formed, so the
only findings are the ones the case is about (leaks when nothing is unmapped).
"""
import struct
import sys

DEVICE = "0000:00:03.0"


def ts(ns):
    return "%d.%06d" % (ns // 1_000_000_000, (ns // 1000) % 1_000_000)


def line(ns, cpu, event, payload, task="kworker/u8:0", pid=12):
    return "%16s-%-7d [%03d] .....  %s: %s: %s\n" % (task, pid, cpu, ts(ns), event, payload)


def map_phys(ns, cpu, dev, addr, size=4096, direction="FROM_DEVICE"):
    return line(ns, cpu, "dma_map_phys",
                "%s dir=%s dma_addr=%x size=%d phys_addr=%x attrs=" % (dev, direction, addr, size, addr))


def unmap_phys(ns, cpu, dev, addr, size=4096, direction="FROM_DEVICE"):
    return line(ns, cpu, "dma_unmap_phys", "%s dir=%s dma_addr=%x size=%d attrs=" % (dev, direction, addr, size))


def alloc(ns, cpu, dev, addr, size=4096):
    return line(ns, cpu, "dma_alloc", "%s dir=BIDIRECTIONAL dma_addr=%x size=%d virt_addr=%016x flags=GFP_KERNEL attrs="
                % (dev, addr, size, 0xffff888000000000 + addr))


class Out:
    """Buffered writes: the large cases are gigabytes."""

    def __init__(self, path):
        self.f = open(path, "w")
        self.parts = []
        self.size = 0

    def add(self, s):
        self.parts.append(s)
        self.size += len(s)
        if self.size > 1 << 22:
            self.flush()

    def flush(self):
        self.f.write("".join(self.parts))
        self.parts, self.size = [], 0

    def close(self):
        self.flush()
        self.f.close()


def live_mappings(n, path):
    out = Out(path)
    out.add(alloc(1000, 0, DEVICE, 0xf0000))
    for i in range(n):
        out.add(map_phys(1_000_000 + i * 1000, i & 1, DEVICE, 0x100000000 + i * 4096))
    out.close()


def device_name(i):
    return "%04x:%02x:%02x.%d" % (i >> 16, (i >> 8) & 0xFF, (i >> 3) & 0x1F, i & 7)


def devices(n, path):
    out = Out(path)
    t = 1_000_000
    for i in range(n):
        dev = device_name(i)
        base = 0x100000000 + i * 0x10000
        out.add(alloc(t, 0, dev, base))
        out.add(map_phys(t + 1000, 0, dev, base + 0x1000))
        out.add(unmap_phys(t + 2000, 0, dev, base + 0x1000))
        t += 3000
    out.close()


def long_line(nbytes, path):
    with open(path, "w") as f:
        f.write(map_phys(1_000_000, 0, DEVICE, 0x100000000))
        head = "%16s-%-7d [%03d] .....  %s: tracing_mark_write: " % ("writer", 77, 0, ts(2_000_000))
        f.write(head)
        chunk = "A" * (1 << 20)
        left = max(nbytes - len(head), 0)
        while left > 0:
            f.write(chunk[: min(left, len(chunk))])
            left -= len(chunk)
        f.write("\n")
        f.write(unmap_phys(3_000_000, 0, DEVICE, 0x100000000))


def sg_list(n, path):
    addrs = [0x100000000 + i * 4096 for i in range(n)]
    dma = "{" + ",".join("0x%x" % a for a in addrs) + "}"
    sizes = "{" + ",".join("0x1000" for _ in addrs) + "}"
    dev = "0000:00:1f.2"
    with open(path, "w") as f:
        f.write(alloc(1000, 1, dev, 0xf0000))
        f.write(line(1_000_000, 1, "dma_map_sg", "%s dir=FROM_DEVICE nents=%d/%d ents=%d/%d dma_addrs=%s sizes=%s phys_addrs=%s attrs="
                     % (dev, n, n, n, n, dma, sizes, dma)))
        f.write(line(2_000_000, 1, "dma_sync_sg_for_cpu", "%s dir=FROM_DEVICE dma_addrs=%s sizes=%s" % (dev, dma, sizes)))
        f.write(line(3_000_000, 1, "dma_sync_sg_for_device", "%s dir=FROM_DEVICE dma_addrs=%s sizes=%s" % (dev, dma, sizes)))
        f.write(line(4_000_000, 1, "dma_unmap_sg", "%s dir=FROM_DEVICE phys_addrs=%s attrs=" % (dev, dma)))


def backwards(n, path):
    out = Out(path)
    out.add(alloc(10_000_000_000, 0, DEVICE, 0xf0000))
    # Each pair in order, but every pair earlier than the one before, on the same CPU.
    t = 9_000_000_000
    for i in range(n):
        addr = 0x100000000 + (i % 4096) * 4096
        out.add(map_phys(t, 0, DEVICE, addr))
        out.add(unmap_phys(t + 500, 0, DEVICE, addr))
        t -= 1000
    out.close()


# --- trace.dat v6 (trace-cmd.dat.v6(5)) -------------------------------------------------


def parse_v6(data):
    """Splits a v6 file into the parts reused verbatim and the event formats by name."""
    if data[:10] != b"\x17\x08Dtracing" or data[10:12] != b"6\0":
        raise SystemExit("--base must be a trace.dat version 6 (trace-cmd convert --file-version 6)")
    if data[12] != 0 or data[13] != 8:
        raise SystemExit("--base must be little-endian with 8-byte longs")
    page_size = struct.unpack_from("<I", data, 14)[0]
    o = 18
    for name in (b"header_page\0", b"header_event\0"):
        assert data[o:o + len(name)] == name
        o += len(name)
        o += 8 + struct.unpack_from("<Q", data, o)[0]
    formats = {}

    def read_format(at):
        size = struct.unpack_from("<Q", data, at)[0]
        text = data[at + 8:at + 8 + size].decode()
        return at + 8 + size, text

    n = struct.unpack_from("<I", data, o)[0]
    o += 4
    for _ in range(n):
        o, _text = read_format(o)
    systems = struct.unpack_from("<I", data, o)[0]
    o += 4
    for _ in range(systems):
        end = data.index(b"\0", o)
        o = end + 1
        count = struct.unpack_from("<I", data, o)[0]
        o += 4
        for _ in range(count):
            o, text = read_format(o)
            name = text.split("\n", 1)[0].split(": ", 1)[1]
            formats[name] = text
    formats_end = o
    kallsyms = struct.unpack_from("<I", data, o)[0]
    o += 4 + kallsyms
    printk_start = o
    printk = struct.unpack_from("<I", data, o)[0]
    o += 4 + printk
    cmdlines = struct.unpack_from("<Q", data, o)[0]
    o += 8 + cmdlines
    cmdlines_end = o
    o += 4  # CPU count
    assert data[o:o + 10] == b"options  \0", data[o:o + 10]
    o += 10
    options = []
    while True:
        oid = struct.unpack_from("<H", data, o)[0]
        if oid == 0:
            break
        size = struct.unpack_from("<I", data, o + 2)[0]
        o += 6
        options.append((oid, data[o:o + size]))
        o += size
    # Without kallsyms (megabytes, and no stack is recorded here).
    head = data[:formats_end] + struct.pack("<I", 0) + data[printk_start:cmdlines_end]
    return page_size, head, formats, options


def layout(fmt):
    event_id = int(fmt.split("ID: ", 1)[1].split("\n", 1)[0])
    fields = {}
    for part in fmt.split("field:")[1:]:
        decl = part.split(";", 1)[0]
        name = decl.split()[-1].split("[")[0]
        offset = int(part.split("offset:", 1)[1].split(";", 1)[0])
        size = int(part.split("size:", 1)[1].split(";", 1)[0])
        fields[name] = (offset, size)
    return event_id, fields


def record(event_id, fields, values, device, pid=12):
    fixed = max(off + size for off, size in fields.values())
    dev = device.encode() + b"\0"
    body = bytearray(fixed + len(dev))
    struct.pack_into("<HBBi", body, 0, event_id, 0, 0, pid)
    for name, value in values.items():
        off, size = fields[name]
        struct.pack_into({1: "<B", 4: "<I", 8: "<Q"}[size], body, off, value)
    off, _ = fields["device"]
    struct.pack_into("<I", body, off, (len(dev) << 16) | fixed)
    body[fixed:] = dev
    while len(body) % 4:
        body.append(0)
    return bytes(body)


def cpus(n, path, base, pages):
    page_size, head, formats, options = parse_v6(open(base, "rb").read())
    for needed in ("dma_map_page", "dma_unmap_page"):
        if needed not in formats:
            raise SystemExit("--base has no %s format (use a 6.12 recording)" % needed)
    map_id, map_fields = layout(formats["dma_map_page"])
    unmap_id, unmap_fields = layout(formats["dma_unmap_page"])
    keep = [(oid, body) for oid, body in options if oid in (4, 5)]  # TRACECLOCK, UNAME
    out = bytearray(head)
    out += struct.pack("<I", n)
    out += b"options  \0"
    for oid, body in keep:
        out += struct.pack("<HI", oid, len(body)) + body
    out += struct.pack("<H", 0)  # TRACECMD_OPTION_DONE has no size
    out += b"flyrecord\0"
    table_at = len(out)
    out += bytes(16 * n)
    pad = (-len(out)) % page_size
    out += bytes(pad)
    t0 = 5_000_000_000
    for cpu in range(n):
        start = len(out)
        serial = 0
        for page in range(pages):
            events = bytearray()
            page_ts = t0 + cpu * 100 + page * 10_000_000
            while True:
                addr = 0x100000000 + ((cpu * pages + page) * 4096 + serial) * 4096
                serial += 1
                m = record(map_id, map_fields, {"phys_addr": addr, "dma_addr": addr, "size": 4096, "dir": 2,
                                                "attrs": 0}, DEVICE)
                u = record(unmap_id, unmap_fields, {"addr": addr, "size": 4096, "dir": 2, "attrs": 0}, DEVICE)
                pair = b""
                for rec in (m, u):
                    assert len(rec) <= 112
                    delta = 0 if not events and not pair else 1000
                    pair += struct.pack("<I", (len(rec) // 4) | (delta << 5)) + rec
                if 16 + len(events) + len(pair) > page_size:
                    break
                events += pair
            out += struct.pack("<QQ", page_ts, len(events)) + events
            out += bytes(page_size - 16 - len(events))
        struct.pack_into("<QQ", out, table_at + 16 * cpu, start, len(out) - start)
    open(path, "wb").write(out)


def main(argv):
    if len(argv) < 4:
        sys.stderr.write(__doc__)
        return 2
    case, size, path = argv[1], int(argv[2]), argv[3]
    if case == "cpus":
        base = argv[argv.index("--base") + 1] if "--base" in argv else None
        if not base:
            sys.stderr.write("cpus needs --base V6\n")
            return 2
        pages = int(argv[argv.index("--pages") + 1]) if "--pages" in argv else 1
        cpus(size, path, base, pages)
        return 0
    cases = {"live-mappings": live_mappings, "devices": devices, "long-line": long_line, "sg-list": sg_list,
             "backwards": backwards}
    if case not in cases:
        sys.stderr.write(__doc__)
        return 2
    cases[case](size, path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
