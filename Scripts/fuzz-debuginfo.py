#!/usr/bin/env python3
"""fuzz-debuginfo.py [N] [SEED]: truncated and bit-flipped copies of a committed dmafi.ko
given to `dma-trace analyze --debuginfo` with the fault-injection trace it belongs to.
Every run must end with exit 0, 1 or 2 (2 with one line naming the file), never a signal
or a hang. The test suite runs a short version (DebugInfoTests.corruptELFFilesGiveAClearMessage)."""
import os, random, subprocess, sys, tempfile

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
tool = os.environ.get("DMA_TRACE", os.path.join(root, ".build/debug/dma-trace"))
ko = os.path.join(root, "SampleTraces/faultinject/modules/6.12.117+deb13-amd64/dmafi.ko")
trace = os.path.join(root, "SampleTraces/faultinject/x86-6.12-plain-stacks.dat")
n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
random.seed(int(sys.argv[2]) if len(sys.argv) > 2 else 1)
src = open(ko, "rb").read()
counts = {0: 0, 1: 0, 2: 0}
bad = []
with tempfile.TemporaryDirectory() as tmp:
    path = os.path.join(tmp, "dmafi.ko")
    for i in range(n):
        d = bytearray(src)
        if i % 2 == 0:
            d = d[: random.randrange(0, len(d))]
        else:
            for _ in range(random.choice([1, 4, 16, 64])):
                d[random.randrange(len(d))] ^= random.randrange(1, 256)
        open(path, "wb").write(d)
        try:
            r = subprocess.run([tool, "analyze", "--fail-on", "none", "--format", "json", "--debuginfo", path,
                                "--module-base", "dmafi=0xffffffffc0683000", trace], capture_output=True, timeout=120)
        except subprocess.TimeoutExpired:
            bad.append((i, "hang"))
            continue
        if r.returncode not in counts or (r.returncode == 2 and path.encode() not in r.stderr):
            keep = os.path.join(tempfile.gettempdir(), f"fuzz-debuginfo-{i}.ko")
            open(keep, "wb").write(d)
            bad.append((i, f"exit {r.returncode}: {r.stderr[-300:]!r} (kept {keep})"))
        else:
            counts[r.returncode] += 1
print(f"{n} variants: exit 0: {counts[0]}, exit 2 (refused with a message): {counts[2]}, problems: {len(bad)}")
for i, why in bad:
    print(f"  variant {i}: {why}")
sys.exit(1 if bad else 0)
