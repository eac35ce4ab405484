#!/usr/bin/env python3
"""Writes Tests/Corpus/{legal,illegal}/<id>.txt and Tests/Corpus/MANIFEST.json from cases.py."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from render import render  # noqa: E402
from cases import CASES  # noqa: E402

ROOT = os.path.join(os.path.dirname(__file__), "..", "..", "Tests", "Corpus")


class Lost:
    """A ring-buffer overrun, as each format prints it."""
    def line(self, fmt):
        return "CPU:0 [120 EVENTS DROPPED]" if fmt == "report" else "CPU:0 [LOST 120 EVENTS]"


def main():
    manifest = []
    seen = set()
    for kind in ("legal", "illegal"):
        os.makedirs(os.path.join(ROOT, kind), exist_ok=True)
        for name in os.listdir(os.path.join(ROOT, kind)):
            os.remove(os.path.join(ROOT, kind, name))
    for c in CASES:
        assert c.id not in seen, c.id
        seen.add(c.id)
        assert c.legal == (not c.expect), c.id
        events = [e if e is not None else Lost() for e in c.events]
        text = render(events, c.fmt)
        kind = "legal" if c.legal else "illegal"
        path = "%s/%s.txt" % (kind, c.id)
        with open(os.path.join(ROOT, path), "w") as f:
            f.write(text)
        manifest.append({"id": c.id, "file": path, "family": c.family, "legal": c.legal, "kernel": c.kernel,
                         "arch": c.arch, "format": c.fmt, "citation": c.cite, "why": c.why, "expect": c.expect, "allow": c.allow})
    with open(os.path.join(ROOT, "MANIFEST.json"), "w") as f:
        json.dump({"about": "Legal and illegal DMA-API usage, written from the kernel's sources (Scripts/corpus/cases.py). "
                            "Legal cases must give nothing at warning or error; illegal ones the expected rule at the expected event.",
                   "cases": manifest}, f, indent=1)
        f.write("\n")
    legal = sum(1 for c in CASES if c.legal)
    print("%d legal, %d illegal" % (legal, len(CASES) - legal))


main()
