#!/usr/bin/env python3
"""Makes Tests/Fixtures/hostile.dat: a real recording whose trace-derived text is hostile.

A traced process names itself anything (prctl PR_SET_NAME), and device names and
trace_marker text come from the traced machine. This takes a real trace.dat from
SampleTraces, has trace-cmd convert it to file version 6 (uncompressed, one plain
layout), and writes it back with:

- every saved command line (task name) replaced by one holding an escape sequence,
  a carriage return, a workflow command (`::error::`) or `%`, `:` and `,`; a newline is
  impossible there: the section is one `pid comm` per line;
- every PCI device name in the event records patched, byte for byte at the same
  length, to one holding a newline followed by a workflow command, or ESC and CR;
- the `LAB: ` marker prefix patched to an OSC escape and a newline, and the first
  marker's text to `::error::`;
- the kallsyms section emptied and each CPU's data cut to its first pages, so the
  file stays small (no stacks are recorded in the source trace anyway).

Usage: Scripts/make-hostile-trace.py [SOURCE.dat] [OUTPUT.dat]
Check: trace-cmd report OUTPUT.dat
"""
import os
import re
import struct
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOURCE = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "SampleTraces/k6.12-iommu.dat")
OUTPUT = sys.argv[2] if len(sys.argv) > 2 else os.path.join(ROOT, "Tests/Fixtures/hostile.dat")
PAGES_PER_CPU = 12

TASK_NAMES = [
    b"evil\x1b[31mRED",        # the example: colours the terminal red
    b"x\r::error::pwn",        # a carriage return, then a workflow command
    b"a%0A,b:c%25",            # already-escaped-looking text: must be escaped again
    b"\x1b]0;title\x07",       # OSC: sets the terminal's title
    b"tab\there\x7f\x01",      # TAB, DEL and a C0 control
]
# Each exactly 12 bytes, the length of "0000:00:05.0".
DEVICE_NAMES = [
    b"0\n::error::X",
    b"\x1b[31mRED\r,:%",
    b"d\n::warning:",
    b"<x>&'\"\n%0A\x1b!",
    b"e\x01f\n::notice",
    b"g\x1b[2J\n::erro",
    b"h\x0b\x0c\n::debug:",
]
assert all(len(d) == 12 for d in DEVICE_NAMES), [len(d) for d in DEVICE_NAMES]


def u32(d, p):
    return struct.unpack_from("<I", d, p)[0]


def u64(d, p):
    return struct.unpack_from("<Q", d, p)[0]


def main():
    with tempfile.TemporaryDirectory() as tmp:
        v6 = os.path.join(tmp, "v6.dat")
        subprocess.run(["trace-cmd", "convert", "-i", SOURCE, "-o", v6, "--file-version", "6", "--compression", "none"],
                       check=True, stdout=subprocess.DEVNULL)
        d = open(v6, "rb").read()

    # Initial format: magic, "6\0", endianness, long size, page size.
    p = d.index(b"\0", 10) + 1
    assert d[10:p] == b"6\0" and d[p] == 0, "expected a little-endian version 6 file"
    page = u32(d, p + 2)
    p += 6
    for name in (b"header_page\0", b"header_event\0"):
        assert d[p:p + len(name)] == name
        p += len(name) + 8 + u64(d, p + len(name))
    count = u32(d, p)
    p += 4
    for _ in range(count):  # ftrace formats
        p += 8 + u64(d, p)
    systems = u32(d, p)
    p += 4
    for _ in range(systems):  # event formats per system
        p = d.index(b"\0", p) + 1
        count = u32(d, p)
        p += 4
        for _ in range(count):
            p += 8 + u64(d, p)
    formats_end = p
    p += 4 + u32(d, p)  # kallsyms
    printk_start = p
    p += 4 + u32(d, p)  # trace_printk formats
    printk = d[printk_start:p]
    cmdlines = d[p + 8:p + 8 + u64(d, p)]
    p += 8 + u64(d, p)
    cpus = u32(d, p)
    p += 4
    assert d[p:p + 10] == b"options  \0"
    options_start = p
    p += 10
    while True:
        oid = struct.unpack_from("<H", d, p)[0]
        if oid == 0:
            p += 2
            break
        p += 6 + u32(d, p + 2)
    assert d[p:p + 10] == b"flyrecord\0", "expected flyrecord data"
    options = d[options_start:p + 10]
    p += 10
    cpu_data = []
    for _ in range(cpus):
        off, size = struct.unpack_from("<QQ", d, p)
        cpu_data.append(d[off:off + min(size, PAGES_PER_CPU * page)])
        p += 16
    clock = d[p:p + 8 + u64(d, p)]

    # Task names: every saved command line gets a hostile one.
    lines = [l for l in cmdlines.split(b"\n") if l]
    hostile_cmdlines = b"".join(
        l.split(b" ", 1)[0] + b" " + TASK_NAMES[i % len(TASK_NAMES)] + b"\n" for i, l in enumerate(lines))

    # Device names and markers in the records, patched at the same length.
    devices = sorted({m for data in cpu_data for m in re.findall(rb"0000:00:[0-9a-f]{2}\.[0-7]", data)})
    assert len(devices) <= len(DEVICE_NAMES), devices
    patched = []
    for data in cpu_data:
        for real, hostile in zip(devices, DEVICE_NAMES):
            data = data.replace(real, hostile)
        data = data.replace(b"LAB: trace start", b"\x1b]0;\n::error::XY").replace(b"LAB: ", b"\x1b]0;\n")
        patched.append(data)

    out = bytearray(d[:formats_end])
    out += struct.pack("<I", 0)  # no kallsyms
    out += printk
    out += struct.pack("<Q", len(hostile_cmdlines)) + hostile_cmdlines
    out += struct.pack("<I", cpus) + options
    table_at = len(out)
    out += b"\0" * (16 * cpus) + clock
    offsets = []
    for data in patched:
        out += b"\0" * (-len(out) % page)
        offsets.append((len(out), len(data)))
        out += data
    for i, (off, size) in enumerate(offsets):
        struct.pack_into("<QQ", out, table_at + 16 * i, off, size)
    with open(OUTPUT, "wb") as f:
        f.write(out)
    print(f"{OUTPUT}: {len(out)} bytes, {cpus} CPUs, devices {[x.decode() for x in devices]}")


if __name__ == "__main__":
    main()
