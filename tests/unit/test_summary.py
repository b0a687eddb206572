#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""tools/test-summary.py on made-up meson test logs (TAP).

Checks that the one line tools/test.sh ends with says what happened and
that its exit status fails a run with a failure, a crash after the last
TAP case, a failed stage, no passing test at all, or any skip (a whole
test, meson's SKIP, or one TAP case "# skip"): no test may skip silently.
"""
import json
import os
import subprocess
import sys
import tempfile

SUMMARY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                       "tools", "test-summary.py")


def entry(name, result, stdout="", rc=0):
    return {"name": name, "result": result, "stdout": stdout,
            "returncode": rc}


TAP_OK = "1..2\nok 1 - a\nok 2 - b\n"
CASES = [
    # (what, log entries, extra args, exit status, last line, FAILED lines)
    ("all pass", [entry("t", "OK", TAP_OK), entry("plain", "OK")], [],
     0, "3 passed, 0 failed", []),
    ("a failed TAP case", [entry("t", "FAIL", "1..2\nok 1 - a\nnot ok 2 - b\n",
                                 1)], [],
     1, "1 passed, 1 failed", ["L: t: 2 - b"]),
    ("a crash after the last case", [entry("t", "ERROR", "1..3\nok 1 - a\n",
                                           -11)], [],
     1, "1 passed, 1 failed", ["L: t: ERROR (exit -11)"]),
    ("a skipped test", [entry("t", "OK", TAP_OK), entry("needs", "SKIP", "",
                                                        77)], [],
     1, "2 passed, 0 failed, 1 skipped", ["L: needs: skipped"]),
    ("a skipped TAP case", [entry("t", "OK",
                                  "1..2\nok 1 - a\nok 2 - b # SKIP no tool\n")],
     [], 1, "1 passed, 0 failed, 1 skipped", ["L: t: skipped: 2 - b # SKIP no tool"]),
    ("a failed stage", [entry("t", "OK", TAP_OK)], ["--failed-stage", "build"],
     1, "2 passed, 1 failed", ["stage failed: build"]),
    ("nothing passed", [], [], 1, "0 passed, 0 failed", []),
]


def run(entries, extra):
    with tempfile.TemporaryDirectory() as d:
        log = os.path.join(d, "testlog.json")
        with open(log, "w", encoding="utf-8") as f:
            for e in entries:
                f.write(json.dumps(e) + "\n")
        p = subprocess.run([sys.executable, SUMMARY, *extra, f"L={log}"],
                           capture_output=True, text=True)
    lines = p.stdout.splitlines()
    return p.returncode, lines[-1] if lines else "", [
        line[len("FAILED "):] for line in lines if line.startswith("FAILED ")]


def main():
    print(f"1..{len(CASES)}")
    failed = 0
    for i, (what, entries, extra, rc, last, fails) in enumerate(CASES, 1):
        got = run(entries, extra)
        ok = got == (rc, last, fails)
        failed += not ok
        print(f"{'ok' if ok else 'not ok'} {i} - {what}: exit {rc}, '{last}'")
        if not ok:
            print(f"# got exit {got[0]}, '{got[1]}', FAILED {got[2]}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
