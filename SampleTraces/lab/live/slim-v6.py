#!/usr/bin/env python3
"""slim-v6.py IN.dat OUT.dat [NAMES]: a copy of an uncompressed trace.dat v6 with its kallsyms
section emptied (most of a small recording's size: ~4 to 10 MB of the guest's /proc/kallsyms),
every other section and every CPU's pages byte for byte, the CPU table moved by the bytes saved.
For committing lab outputs within SampleTraces' size budget.
With NAMES (a file of function names, one a line: the functions the recording's stack frames
name), kallsyms keeps the lines of those names and, for each, the next line in address order:
a frame's symbol and where that symbol ends are what name it ("func+0xoff") and give its span,
so stacks read from the slim file are the full file's, frame for frame.
Layout: trace-cmd.dat.v6(5)."""
import struct, sys

src, dst = sys.argv[1], sys.argv[2]
names = set(open(sys.argv[3]).read().split()) if len(sys.argv) > 3 else None
b = open(src, "rb").read()
at = 0
def take(n):
    global at
    if at + n > len(b): raise SystemExit(f"{src}: truncated at {at}")
    v = b[at:at + n]; at += n; return v
def u(n):
    return int.from_bytes(take(n), "little")
def cstr():
    global at
    end = b.index(b"\0", at); v = b[at:end]; at = end + 1; return v
if take(10) != b"\x17\x08Dtracing" or cstr() != b"6": raise SystemExit(f"{src}: not a trace.dat v6")
if take(1) != b"\0": raise SystemExit("big endian files are not handled")
take(1); page = u(4)
for label in (b"header_page", b"header_event"):
    if cstr() != label: raise SystemExit(f"no {label}")
    take(u(8))
for _ in range(u(4)): take(u(8))
for _ in range(u(4)):
    cstr()
    for _ in range(u(4)): take(u(8))
ks_at = at
ks = u(4); take(ks)
rest_at = at
take(u(4))            # printk
take(u(8))            # cmdlines
cpus = u(4)
label = cstr()
if label == b"options  ":
    while True:
        oid = u(2)
        if oid == 0: break
        take(u(4))
    label = cstr()
if label != b"flyrecord": raise SystemExit(f"{label!r} instead of flyrecord")
table_at = at
table = [(u(8), u(8)) for _ in range(cpus)]
kept = b""
if names:
    lines = b[ks_at + 4:ks_at + 4 + ks].decode("utf-8", "replace").splitlines()
    def addr(line):
        try: return int(line.split(" ", 1)[0], 16)
        except ValueError: return -1
    order = sorted(range(len(lines)), key=lambda i: addr(lines[i]))
    keep = set()
    for pos, i in enumerate(order):
        parts = lines[i].split()
        if len(parts) >= 3 and parts[2] in names:
            keep.add(i)
            # the next symbol at a higher address (several can share one)
            for j in order[pos + 1:]:
                if addr(lines[j]) > addr(lines[i]):
                    keep.add(j); break
    kept = ("\n".join(lines[i] for i in sorted(keep)) + "\n").encode()
head = b[:ks_at] + struct.pack("<I", len(kept)) + kept + b[rest_at:table_at]
start = (len(head) + 16 * cpus + page - 1) // page * page
out = bytearray(head)
entries, data, pos = [], bytearray(), start
for off, size in table:
    entries.append((pos if size else 0, size)); data += b[off:off + size]; pos += size
for off, size in entries: out += struct.pack("<QQ", off, size)
out += b"\0" * (start - len(out))
out += data
open(dst, "wb").write(out)
print(f"{dst}: {len(out)} bytes (kallsyms {ks} bytes, {len(kept)} kept, {cpus} CPUs)")
