#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""Endpoint changes by SIGHUP while traffic runs (TAP).

A long paced HTTP download runs through the VIP to one pod (P). Meanwhile
another pod (R) is removed from the web service in the config file and
svcgw gets SIGHUP: the download must complete intact (an established flow
to an endpoint that still exists is not touched), and new connections must
avoid R. Then a broken file is rejected on SIGHUP with the config error
line while the old config keeps serving, and restoring R brings it back.

Share bounds (see test_traffic.py for the reasoning): 90 connections over
two pods, Binomial(90, 1/2), sd 4.7: 25..65 each; over three pods,
Binomial(90, 1/3), sd 4.5: 10..55 each.
"""
import subprocess
import sys
import time

import pod
import sgnet
from sgnet import NODE_ADDR, NODE_PORT, PODS, VIP

STREAM_BYTES = 8_000_000
STREAM_SECONDS = 6
POD_NAMES = [n for n, _ in PODS]


def expected_stream(n):
    block = pod.stream_pattern(0, 251)
    return (block * (n // 251 + 1))[:n]


def web_backends(gw):
    svc = gw.ctl("services")["/svcgw/services"]
    ids = [i for i, n in zip(svc["id"], svc["name"])
           if sgnet.service_of_entry(n) == "web"]
    be = gw.ctl("backends", str(min(ids)))["/svcgw/backends"]
    return sorted(a.split(":")[0] for a in be["address"])


def main():
    return sgnet.run_test("reload", 13, run)


def wait_header(path, proc, timeout=5):
    """The X-Pod header of a running curl -D, or None."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(path, encoding="latin-1") as f:
                for line in f:
                    if line.lower().startswith("x-pod:"):
                        return line.split(":", 1)[1].strip()
        except FileNotFoundError:
            pass
        if proc.poll() is not None:
            return None
        time.sleep(0.05)
    return None


def run(tap, h):
    s = sgnet.Setup(h)
    s.start_case(tap, "svcgw starts and says ready")
    c, gw = s.topo.client, s.gw

    body, hdr = h.path("stream.bin"), h.path("stream.hdr")
    dl = h.spawn(["curl", "-sS", "--max-time", str(STREAM_SECONDS + 30),
                  "--local-port", "24000", "-o", body, "-D", hdr,
                  f"http://{VIP}/stream?bytes={STREAM_BYTES}"
                  f"&seconds={STREAM_SECONDS}"], ns=c,
                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    p_name = wait_header(hdr, dl)
    tap.ok(p_name in POD_NAMES, "a long download through the VIP is running",
           f"served by {p_name}")
    if p_name not in POD_NAMES:
        raise RuntimeError("no download to watch")
    r_name = next(n for n in POD_NAMES if n != p_name)
    keep = [n for n in POD_NAMES if n != r_name]
    tap.diag(f"download from {p_name}; removing {r_name}")

    sgnet.write_conf(s.conf_path, s.settings(
        sgnet.standard_services(web_pods=keep)))
    r_log = len(s.pods.log(r_name))
    res = gw.reload()
    tap.ok(res == "reloaded", f"SIGHUP with {r_name} removed: reloaded",
           f"answer: {res}", gw.tail(5))

    want = sorted(s.pods.address(n) for n in keep)
    tap.case(f"svcgwctl backends: {r_name} is gone",
             lambda: (web_backends(gw) == want, f"want {want}"))

    names, bad = sgnet.curl_spread(c, f"http://{VIP}/", range(24100, 24190))
    ok, d = sgnet.shares_ok(names, keep, 25, 65)
    tap.ok(not bad and ok and len(s.pods.log(r_name)) == r_log,
           f"90 new connections to the VIP all answered, none by {r_name}",
           d, *bad[:10])
    names, bad = sgnet.curl_spread(c, f"http://{NODE_ADDR}:{NODE_PORT}/",
                                   range(24200, 24230))
    tap.ok(not bad and r_name not in names,
           f"30 new connections to the NodePort, none by {r_name}",
           sgnet.spread(names), *bad[:10])

    try:
        rc = dl.wait(STREAM_SECONDS + 30)
    except subprocess.TimeoutExpired:
        rc = None
    try:
        with open(body, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        data = b""
    intact = data == expected_stream(STREAM_BYTES)
    tap.ok(rc == 0 and intact,
           f"the download from {p_name} completes, all "
           f"{STREAM_BYTES} bytes intact",
           f"curl exit {rc}, {len(data)} bytes, intact {intact}",
           dl.stderr.read() if dl.stderr else "")

    with open(s.conf_path, "w", encoding="utf-8") as f:
        f.write("workers = [ 1 ];\nports = ( { name = \"ext\" ;\n")
    start = len(gw.lines)
    res = gw.reload()
    err = [ln for ln in gw.lines_since(start)
           if ln.startswith(f"{s.conf_path}:")]
    tap.ok(res == "rejected" and len(err) == 1,
           "a broken file on SIGHUP: the config error line, reload rejected",
           f"answer: {res}", *gw.lines_since(start)[:10])

    names, bad = sgnet.curl_spread(c, f"http://{VIP}/", range(24300, 24330))
    tap.ok(not bad and r_name not in names and gw.running(),
           "the old config keeps serving after the rejected reload",
           sgnet.spread(names), *bad[:10])

    sgnet.write_conf(s.conf_path, s.settings())
    res = gw.reload()
    names, bad = sgnet.curl_spread(c, f"http://{VIP}/", range(24400, 24490))
    ok, d = sgnet.shares_ok(names, POD_NAMES, 10, 55)
    tap.ok(res == "reloaded" and not bad and ok,
           f"{r_name} restored by SIGHUP: new connections reach all three",
           f"answer: {res}", d, *bad[:10])

    # Keys that move between entries in one reload: a renamed service takes
    # its VIP and NodePort over from its old self (a new entry, a new id),
    # and UDP port 53 passes from echo (now on 54) to a new service echo2,
    # whatever the order in which the entries are republished.
    moved = sgnet.standard_services()
    moved[0]["name"] = "www"
    moved[1]["ports"] = [sgnet.port("UDP", 54, sgnet.UDP_PORT)]
    moved.append(sgnet.service("echo2", [sgnet.port("UDP", 53, sgnet.UDP_PORT)],
                               sgnet.pod_endpoints(), vips=[VIP]))
    sgnet.write_conf(s.conf_path, s.settings(moved))
    res = gw.reload()
    names, bad = sgnet.curl_spread(c, f"http://{VIP}/", range(24600, 24630))
    nport, nbad = sgnet.curl_spread(c, f"http://{NODE_ADDR}:{NODE_PORT}/",
                                    range(24700, 24710))
    tap.ok(res == "reloaded" and not bad and not nbad,
           "SIGHUP renaming web to www: its VIP and NodePort move with it",
           f"answer: {res}", *(bad + nbad)[:10], *gw.tail(5))
    u53, bad53 = sgnet.udp_spread(c, VIP, 53, range(24800, 24810))
    u54, bad54 = sgnet.udp_spread(c, VIP, 54, range(24900, 24910))
    tap.ok(not bad53 and not bad54,
           "the same SIGHUP: UDP 53 moves from echo to echo2, echo moves to 54",
           *(bad53 + bad54)[:10])

    rc = gw.stop()
    tap.ok(rc == 0, "SIGTERM: exit 0", f"exit code {rc}", gw.tail())


if __name__ == "__main__":
    sys.exit(main())
