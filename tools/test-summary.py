#!/usr/bin/env python3
"""Fold meson's testlog.json files into the one line CI reads: 'N passed, N failed'.

argv: number of build steps that failed (each counts as one failure), then build dirs
(their meson-logs/testlog.json) or testlog files saved under another name.
A missing testlog (a build that failed before testing) adds nothing here: the failed
build was already counted. Exit status 1 when anything failed.
"""
import json
import os
import sys

passed = failed = skipped = 0
failed += int(sys.argv[1])
for d in sys.argv[2:]:
    log = d if d.endswith(".json") else os.path.join(d, "meson-logs", "testlog.json")
    if not os.path.exists(log):
        continue
    for line in open(log):
        line = line.strip()
        if not line:
            continue
        r = json.loads(line)["result"]
        if r in ("OK", "EXPECTEDFAIL"):
            passed += 1
        elif r == "SKIP":
            skipped += 1
        else:
            failed += 1
extra = f", {skipped} skipped" if skipped else ""
print(f"{passed} passed, {failed} failed{extra}")
sys.exit(1 if failed or passed == 0 else 0)
