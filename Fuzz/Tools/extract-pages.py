#!/usr/bin/env python3
"""Writes ring-buffer sub-buffers ("pages") of an uncompressed trace.dat v6 as seeds for
FuzzPageReader: the first, a middle and the last page of every CPU, each as one file holding
a format byte (0: 8-byte commit word, little-endian) followed by the page.

    extract-pages.py TRACE-v6.dat OUTDIR
(make the v6 file with `trace-cmd convert --file-version 6 --compression none`)
"""
import os
import struct
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "Scripts"))
import pathological  # noqa: E402  (the same v6 parser the stress generator uses)


def main(path, out):
    data = open(path, "rb").read()
    page_size = pathological.parse_v6(data)[0]
    fly = data.index(b"flyrecord\0")
    # The CPU count is the word just before the options section.
    cpus = struct.unpack_from("<I", data, data.rindex(b"options  \0", 0, fly) - 4)[0]
    table = fly + len(b"flyrecord\0")
    name = os.path.basename(path).split(".dat")[0]
    for cpu in range(cpus):
        offset, size = struct.unpack_from("<QQ", data, table + 16 * cpu)
        pages = size // page_size
        for label, i in (("first", 0), ("middle", pages // 2), ("last", pages - 1)):
            if pages == 0:
                continue
            page = data[offset + i * page_size: offset + (i + 1) * page_size]
            with open(os.path.join(out, "%s-cpu%d-%s" % (name, cpu, label)), "wb") as f:
                f.write(b"\0" + page)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
