#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""The demo's body (tools/demo.sh builds first, then runs this as root).

Builds the demo topology with the integration harness (tests/integration/
sgnet.py: namespaces client, gw and pods joined by veths, three stand-in
pods), runs svcgw in gw on config/demo.conf, then from client: curls the
LoadBalancer VIP and the NodePort a few dozen times each and prints which
pod answered and the spread, makes UDP exchanges with socat, shows
svcgwctl's tables, and tears everything down. Exit status 0 only if every
request was answered, every pod answered, and svcgw stopped cleanly.
"""
import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests",
                                "integration"))
import sgnet  # noqa: E402  (found through the path set just above)
from sgnet import NODE_ADDR, NODE_PORT, PODS, VIP  # noqa: E402

REQUESTS = 30
POD_NAMES = [n for n, _ in PODS]


def say(text=""):
    print(text, flush=True)


def show_answers(label, names):
    say(f"   {label}: {len(names)} requests, who answered each:")
    for i in range(0, len(names), 10):
        say("     " + " ".join(f"{n or 'FAILED':<6}" for n in
                               names[i:i + 10]))
    counts = sgnet.spread(n for n in names if n)
    say("   spread: " + ", ".join(f"{p} {counts.get(p, 0)}"
                                  for p in POD_NAMES)
        + (f", failed {names.count(None)}" if None in names else ""))
    return None not in names and all(counts.get(p) for p in POD_NAMES)


def ctl(gw, title, *args):
    say(f"\n$ svcgwctl -p {gw.file_prefix} {' '.join(args)}    # {title}")
    try:
        say(gw.ctl(*args, json_out=False).rstrip())
        return True
    except Exception as e:  # shown and counted; the demo goes on
        say(f"   FAILED: {e}")
        return False


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--svcgw", required=True)
    ap.add_argument("--config", required=True)
    args = ap.parse_args()
    os.environ["SVCGW"] = os.path.abspath(args.svcgw)

    t0 = time.monotonic()
    h = sgnet.Harness("demo")
    ok = True
    try:
        ok = demo(h, os.path.abspath(args.config))
    except Exception as e:
        say(f"\ndemo FAILED: {type(e).__name__}: {e}")
        ok = False
    finally:
        say("\n== tearing down: svcgw, pods, namespaces")
        h.close()
    say(f"== demo {'done' if ok else 'FAILED'} in "
        f"{time.monotonic() - t0:.0f} s")
    return 0 if ok else 1


def demo(h, config):
    topo = sgnet.Topology(h)
    say(f"== namespaces {topo.client}, {topo.gw}, {topo.pods}, joined by "
        "veth pairs")
    topo.create()
    say(f"   client {sgnet.CLIENT_ADDR} -- [gw-ext {sgnet.EXT_ADDR} | svcgw |"
        f" gw-int {sgnet.INT_ADDR}] -- pods "
        + ", ".join(f"{n} {a}" for n, a in PODS))
    pods = sgnet.Pods(h, topo).start()
    say("== pods: HTTP on :8080 and UDP echo on :5353 in " + topo.pods)

    say(f"== svcgw -c {os.path.relpath(config)} in {topo.gw} "
        "(DPDK af_xdp ports on the veths)")
    gw = sgnet.Svcgw(h, topo, config, h.prefix,
                     extra_args=[f"--file-prefix={h.prefix}"])
    try:
        gw.start()
    except Exception:
        say("   svcgw did not become ready; its last lines:")
        say(gw.tail())
        raise
    say("   " + gw.lines[gw.wait_line("svcgw: ready", 0, 0)])

    ok = True
    say(f"\n== curl http://{VIP}/ from {topo.client} (LoadBalancer VIP)")
    names, _ = sgnet.curl_spread(topo.client, f"http://{VIP}/",
                                 [None] * REQUESTS, workers=1)
    ok &= show_answers("VIP", names)
    say(f"\n== curl http://{NODE_ADDR}:{NODE_PORT}/ (NodePort)")
    names, _ = sgnet.curl_spread(topo.client,
                                 f"http://{NODE_ADDR}:{NODE_PORT}/",
                                 [None] * REQUESTS, workers=1)
    ok &= show_answers("NodePort", names)
    seen = {e[1] for n in POD_NAMES for e in pods.log(n)}
    say(f"   the pods saw the connections come from {', '.join(sorted(seen))}"
        " (nat mode: the SNAT address, not the client)")

    say(f"\n== UDP: socat to {VIP}:53 (pods' echo on :5353)")
    names, _ = sgnet.udp_spread(topo.client, VIP, 53, [None] * REQUESTS,
                                workers=1)
    ok &= show_answers("UDP", names)

    ok &= ctl(gw, "the service table", "services")
    try:
        svc = gw.ctl("services")["/svcgw/services"]
        web = [i for i, n in zip(svc["id"], svc["name"]) if "web" in n]
    except Exception:  # already shown by the table above
        web = []
    if web:
        ok &= ctl(gw, "the web service's backends", "backends", str(web[0]))
    else:
        say("\n   no web service in the table")
        ok = False
    ok &= ctl(gw, "flows: counts and a sample", "flows", "8")
    ok &= ctl(gw, "counters", "stats")
    ok &= ctl(gw, "ARP: the client and the pods", "neighbours")

    rc = gw.stop()
    say(f"\n== svcgw stopped by SIGTERM: exit code {rc}")
    return bool(ok) and rc == 0


if __name__ == "__main__":
    sys.exit(main())
