#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""svcgw-bench --line-rate through the demo topology.

The usual set-up (sgnet.Setup: client, gw and pods namespaces, svcgw on the
standard services in nat mode), then svcgw-bench in the client namespace on
the client's veth through DPDK's af_packet PMD, with an address of its own
(BENCH_ADDR, which it answers ARP for; the kernel's 198.51.100.2 stays
untouched). It sends UDP probes at a modest paced rate to the echo service
(VIP:53 -> pods:5353); the pods echo each probe with their own address
appended (pod.py), so the bench tells the backends apart though every reply
comes from the VIP. The bounds are loose: two shared cores run the gateway's
busy-polling worker, the bench's loop and three Python pods at once.
"""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sgnet  # noqa: E402  (found through the path set just above)
from sgnet import EXT_ADDR, PODS, UDP_PORT, VIP  # noqa: E402

# The bench's own address, in the clients' documentation range.
BENCH_ADDR = "198.51.100.3"
RATE = 20000
SECONDS = 2
FLOWS = 256
# Loose: a busy two-core machine; the figures are reported, not judged.
MAX_LOSS_PCT = 5.0
MIN_SHARE = 0.15

PLAN = 10


def bench_path():
    return os.environ.get("SVCGW_BENCH") or os.path.join(
        sgnet.SRC_ROOT, "build", "app", "svcgw-bench", "svcgw-bench")


def run_bench(h, ns, *extra, timeout=60):
    """svcgw-bench --line-rate toward the echo service from ns; (exit
    code, stdout, stderr). Owned by the harness: stopped by PID if the
    test ends first."""
    argv = [bench_path(), "--line-rate",
            "--port", "net_af_packet0,iface=eth0",
            "--addr", BENCH_ADDR, "--gateway", EXT_ADDR,
            "--vip", f"{VIP}:53", *extra]
    p = h.spawn(argv, ns=ns, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, text=True)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        h.stop(p, timeout=5)
        return None, "", "timed out"
    return p.returncode, out, err


def check_run(tap, rc, out, err, res):
    count = RATE * SECONDS
    tap.ok(rc == 0, "svcgw-bench --line-rate exits 0",
           f"exit {rc}", out[-2000:], err[-2000:])
    try:
        res.update(json.loads(out))
        parsed = True
    except ValueError as e:
        parsed = False
        tap.diag(f"JSON: {e}")
    tap.ok(parsed and res.get("ok") is True, "--json parses and says ok",
           out[-2000:])
    tap.diag(f"sent {res.get('sent')} at {res.get('rate_pps', 0) / 1e3:.1f} "
             f"kpps, received {res.get('received')}, loss "
             f"{res.get('loss_pct')} %, latency {res.get('latency_us')}, "
             f"backends {res.get('backends')}")
    sent = res.get("sent", 0)
    tap.ok(count * 0.9 <= sent <= count and
           res.get("rate_pps", 0) >= RATE * 0.5,
           "paced: about rate x duration sent, and stopped by itself",
           f"sent {sent} of {count}, {res.get('rate_pps')} pps asked {RATE}")
    tap.ok(sent > 0 and res.get("loss_pct", 100) <= MAX_LOSS_PCT,
           f"loss at most {MAX_LOSS_PCT} %",
           f"loss {res.get('loss_pct')} %, received {res.get('received')}")
    tap.ok(res.get("bad") == 0 and res.get("duplicates") == 0,
           "replies intact: IPv4 and UDP checksums right after NAT, no "
           "duplicates", f"bad {res.get('bad')}, dup {res.get('duplicates')}")
    be = res.get("backends", {})
    got = sum(be.values()) if be else 0
    want = {a for _, a in PODS}
    tap.ok(set(be) == want and got == res.get("received") and
           all(n >= MIN_SHARE * got for n in be.values()),
           f"every pod answered a share (at least {MIN_SHARE:.0%}), no one "
           "else", f"backends {be}, received {res.get('received')}")
    lat = res.get("latency_us", {})
    tap.ok(lat.get("samples") == res.get("received") and
           0 < lat.get("min", 0) <= lat.get("p50", 0) <= lat.get("p99", 0)
           <= lat.get("max", 0) < 2e6,
           "latency figures present and ordered, under the 2 s bound",
           f"latency {lat}")


def main():
    return sgnet.run_test("lr", PLAN, run)


def run(tap, h):
    if not os.access(bench_path(), os.X_OK):
        tap.ok(False, f"svcgw-bench at {bench_path()}")
        return
    setup = sgnet.Setup(h).start()
    tap.ok(True, f"demo topology up, svcgw ready; UDP echo on "
           f"{VIP}:53 -> pods:{UDP_PORT}")
    client = setup.topo.client

    res = {}
    rc, out, err = run_bench(h, client, "--rate", str(RATE),
                             "--duration", str(SECONDS),
                             "--flows", str(FLOWS), "--json")
    check_run(tap, rc, out, err, res)

    # The human-readable report: a short run, its lines present.
    rc, out, err = run_bench(h, client, "--rate", "5000",
                             "--duration", "0.5", "--flows", "16")
    lines = out.splitlines()
    tap.ok(rc == 0 and any(line.startswith("received") and "loss" in line
                           for line in lines)
           and any(line.startswith("latency") and "p99" in line
                   for line in lines)
           and any(line.startswith("backends") for line in lines),
           "text report: sent, loss, latency, backends",
           f"exit {rc}", out, err[-1000:])
    tap.diag(*lines)

    rc = setup.gw.stop()
    tap.ok(rc == 0, "svcgw stops cleanly after the runs",
           f"exit {rc}", setup.gw.tail())


if __name__ == "__main__":
    sys.exit(main())
