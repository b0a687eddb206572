#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Sum the results of meson test runs into one line: "N passed, N failed".

Reads meson's testlog.json files (one JSON object per test). A TAP test
(its output has a plan line "1..N") counts each of its cases; any other test counts once. A test that crashed or
timed out after its last reported case counts one more failure, so a test
can never pass by dying early. Stages that failed before any test ran (a
compile error, say) are passed with --failed-stage and count as failures.
No test may skip: a test that lacks something on this machine must fail
and say what. A skipped test or TAP case (meson's SKIP, exit 77, or
"ok N # skip") is counted in ", N skipped", named, and makes the run fail
as a failure would.

usage: test-summary.py [--failed-stage NAME]... LABEL=testlog.json...
"""
import argparse
import json
import re
import sys

TAP_CASE = re.compile(r"^(not )?ok\b(.*)$")
TAP_PLAN = re.compile(r"^1\.\.\d+", re.MULTILINE)


def tap_counts(stdout):
    """(passed, failed, skipped, failed case names, skipped case names)
    from TAP output."""
    passed = failed = skipped = 0
    names, skips = [], []
    for line in stdout.splitlines():
        m = TAP_CASE.match(line)
        if not m:
            continue
        rest = m.group(2)
        if re.search(r"#\s*skip", rest, re.IGNORECASE):
            skipped += 1
            skips.append(rest.strip(" -"))
        elif m.group(1):
            failed += 1
            names.append(rest.strip(" -"))
        else:
            passed += 1
    return passed, failed, skipped, names, skips


def summarise(label, path, totals, failures):
    try:
        with open(path, encoding="utf-8") as f:
            entries = [json.loads(line) for line in f if line.strip()]
    except OSError as e:
        totals["failed"] += 1
        failures.append(f"{label}: no test log ({e.strerror}: {path})")
        return
    for e in entries:
        name = f"{label}: {e['name']}"
        result = e.get("result", "ERROR")
        stdout = e.get("stdout") or ""
        if TAP_PLAN.search(stdout):
            p, f, s, names, skips = tap_counts(stdout)
            totals["passed"] += p
            totals["failed"] += f
            totals["skipped"] += s
            failures.extend(f"{name}: {n}" for n in names)
            failures.extend(f"{name}: skipped: {n}" for n in skips)
            if result not in ("OK", "SKIP") and f == 0:
                totals["failed"] += 1
                failures.append(f"{name}: {result} (exit {e.get('returncode')})")
            elif result == "SKIP" and s == 0:
                totals["skipped"] += 1
                failures.append(f"{name}: skipped")
        elif result == "OK":
            totals["passed"] += 1
        elif result == "SKIP":
            totals["skipped"] += 1
            failures.append(f"{name}: skipped")
        else:
            totals["failed"] += 1
            failures.append(f"{name}: {result} (exit {e.get('returncode')})")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--failed-stage", action="append", default=[])
    ap.add_argument("logs", nargs="*", metavar="LABEL=testlog.json")
    args = ap.parse_args()

    totals = {"passed": 0, "failed": 0, "skipped": 0}
    failures = [f"stage failed: {s}" for s in args.failed_stage]
    totals["failed"] += len(args.failed_stage)
    for arg in args.logs:
        label, _, path = arg.partition("=")
        summarise(label, path, totals, failures)

    # A skip fails the run too (see the docstring), named as a failure is.
    for f in failures:
        print(f"FAILED {f}")
    line = f"{totals['passed']} passed, {totals['failed']} failed"
    if totals["skipped"]:
        line += f", {totals['skipped']} skipped"
    print(line)
    return 1 if (totals["failed"] or totals["skipped"] or
                 totals["passed"] == 0) else 0


if __name__ == "__main__":
    sys.exit(main())
