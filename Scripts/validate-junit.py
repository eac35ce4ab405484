#!/usr/bin/env python3
"""Reads JUnit XML with junitparser (what CI dashboards do) and prints
suite,tests,failures,errors per suite; exit 1 when a file cannot be read."""
import sys

from junitparser import JUnitXml

for path in sys.argv[1:]:
    xml = JUnitXml.fromfile(path)
    for suite in xml:
        print(f"{suite.name},{suite.tests},{suite.failures},{suite.errors}")
