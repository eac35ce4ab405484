#!/usr/bin/env python3
"""Checks a dma-trace HTML report with Python's HTML parser: the document is
well nested, has the report's sections, and references nothing outside
itself (no URL with a scheme or //, no external stylesheet, script, font or
image). With --allow-source-links, <a href="http(s)://..."> (a link the reader may
follow to a source line, never fetched by the page) is accepted. Prints a summary
line; exit 1 on any problem."""
import re
import sys
from html.parser import HTMLParser

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
URL_ATTRS = {"href", "src", "srcset", "action", "formaction", "poster", "data", "xlink:href"}


class Checker(HTMLParser):
    allow_links = False

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack, self.problems, self.ids, self.counts = [], [], set(), {}
        self.in_style = False
        self.style = ""

    def handle_starttag(self, tag, attrs):
        self.counts[tag] = self.counts.get(tag, 0) + 1
        if tag not in VOID:
            self.stack.append(tag)
        for name, value in attrs:
            if name == "id":
                if value in self.ids:
                    self.problems.append(f"duplicate id {value}")
                self.ids.add(value)
            if Checker.allow_links and tag == "a" and name == "href" and re.match(r"^https?://", value or ""):
                continue
            if name in URL_ATTRS and value and not value.startswith("#") and (re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", value) or value.startswith("//")):
                self.problems.append(f"external reference <{tag} {name}={value}>")
            if name.startswith("on"):
                self.problems.append(f"inline event handler <{tag} {name}>")
        if tag == "link":
            self.problems.append("a <link> element (the report must embed its stylesheet)")
        if tag == "script" and any(n == "src" for n, _ in attrs):
            self.problems.append("an external script")
        if tag == "style":
            self.in_style = True

    def handle_endtag(self, tag):
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.problems.append(f"</{tag}> closes <{self.stack[-1] if self.stack else 'nothing'}>")
            if tag in self.stack:
                while self.stack and self.stack.pop() != tag:
                    pass
            return
        self.stack.pop()
        if tag == "style":
            self.in_style = False

    def handle_data(self, data):
        if self.in_style:
            self.style += data


def check(path, required):
    text = open(path, encoding="utf-8").read()
    c = Checker()
    c.feed(text)
    c.close()
    if c.stack:
        c.problems.append(f"unclosed elements: {c.stack}")
    if re.search(r"@import|url\(\s*['\"]?(https?:|//)", c.style):
        c.problems.append("the stylesheet loads something from outside")
    for rid in required:
        if rid not in c.ids:
            c.problems.append(f"missing section #{rid}")
    for p in c.problems[:20]:
        print(f"{path}: {p}")
    print(f"{path}: {len(text)} bytes, {c.counts.get('article', 0)} articles, {c.counts.get('svg', 0)} charts, "
          f"{c.counts.get('tr', 0)} table rows, {len(c.problems)} problem(s)")
    return not c.problems


if __name__ == "__main__":
    args = sys.argv[1:]
    required = []
    if args and args[0] == "--allow-source-links":
        Checker.allow_links = True
        args = args[1:]
    if args and args[0].startswith("--require="):
        required = [r for r in args[0].split("=", 1)[1].split(",") if r]
        args = args[1:]
    ok = all([check(p, required) for p in args])
    sys.exit(0 if ok else 1)
