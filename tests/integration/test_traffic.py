#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""Real clients through svcgw, one worker (TAP).

curl to a LoadBalancer VIP and to a NodePort, UDP request/response with
socat, a byte-exact curl upload, an iperf3 transfer (and its throughput),
the no-endpoint answers, ICMP echo, drops for what the gateway does not
own, telemetry through tools/svcgwctl, and a clean SIGTERM. The services
are sgnet.standard_services().

The share bound. Each load loop makes N = 150 connections from 150 fixed
client ports (so a run is reproducible for a given flow hash) to a service
with three endpoints of equal weight. Maglev fills a table of M slots (a
prime near 100 x 3) taking turns among the backends, so each owns
floor(M/3) or ceil(M/3) slots: a new flow lands on each pod with probability
1/3 (to within 1/M). If the 5-tuple hash spreads 150 distinct flows like
independent draws, each pod's count is Binomial(150, 1/3): mean 50, sd 5.8.
The bound 25..75 is 4.3 sd either side: a correct gateway fails it with
probability below 1e-4, while one that skipped a backend or favoured one
fails it for sure.
"""
import sys
import time

import sgnet
from sgnet import (CLIENT_ADDR, EXT_ADDR, NODE_ADDR, NODE_PORT, PODS,
                   SNAT_ADDR, VIP, VIP_BULK, VIP_EMPTY)

N = 150
LO, HI = 25, 75
POD_NAMES = [n for n, _ in PODS]


def stats_drops(gw):
    st = gw.ctl("stats")["/svcgw/stats"]
    return sum(v for k, v in st.items()
               if k.startswith("drop") and isinstance(v, int)), st


def rows(table, *cols):
    """The rows of a columnar telemetry dict as tuples of `cols`."""
    return list(zip(*(table[c] for c in cols)))


def main():
    return sgnet.run_test("traffic", 22, run)


def run(tap, h):
    s = sgnet.Setup(h)
    s.start_case(tap, "svcgw starts on the demo topology and says ready")
    c = s.topo.client
    gw = s.gw

    def ping(addr):
        return sgnet.timed(["ping", "-n", "-q", "-c", "2", "-i", "0.2",
                            "-W", "1", addr], c, 10)
    pings = {a: ping(a) for a in (VIP, NODE_ADDR, EXT_ADDR)}
    tap.ok(all(r.rc == 0 for r in pings.values()),
           "ICMP echo: the VIP, the node address and the port address "
           "answer", *(f"{a}: {r!r}" for a, r in pings.items()))

    names, bad = sgnet.curl_spread(c, f"http://{VIP}/", range(20000, 20000 + N))
    tap.ok(not bad, f"VIP {VIP}:80: {N} curl connections all answered",
           *bad[:10])
    ok, d = sgnet.shares_ok(names, POD_NAMES, LO, HI)
    tap.ok(ok, "VIP: every pod answers, each share within bounds", d)
    tap.diag(d)
    seen = {e[1] for n in POD_NAMES for e in s.pods.log(n) if e[0] == "http"}
    tap.ok(seen == {SNAT_ADDR},
           f"nat: the pods saw only the SNAT address {SNAT_ADDR}, never "
           f"the client {CLIENT_ADDR}", f"client addresses seen: {seen}")

    names, bad = sgnet.curl_spread(c, f"http://{NODE_ADDR}:{NODE_PORT}/",
                                   range(21000, 21000 + N))
    tap.ok(not bad, f"NodePort {NODE_ADDR}:{NODE_PORT}: {N} curl "
           "connections all answered", *bad[:10])
    ok, d = sgnet.shares_ok(names, POD_NAMES, LO, HI)
    tap.ok(ok, "NodePort: every pod answers, each share within bounds", d)
    tap.diag(d)

    names, bad = sgnet.udp_spread(c, VIP, 53, range(22000, 22000 + N))
    tap.ok(not bad, f"UDP {VIP}:53 with socat: {N} requests all answered",
           *bad[:10])
    ok, d = sgnet.shares_ok(names, POD_NAMES, LO, HI)
    tap.ok(ok, "UDP: every pod answers, each share within bounds", d)
    tap.diag(d)

    r = sgnet.curl(c, f"http://{VIP_EMPTY}/", max_time=5)
    tap.ok(r.rc == 7 and r.elapsed < 1.0,
           "no endpoints, TCP: curl is refused at once (RST), no timeout",
           repr(r))
    tap.diag(f"refused after {r.elapsed * 1000:.0f} ms: {r.err.strip()}")
    r = sgnet.udp_request(c, VIP_EMPTY, 53, wait=3)
    tap.ok(r.rc not in (0, None) and "refused" in r.err.lower()
           and r.elapsed < 1.0,
           "no endpoints, UDP: socat gets ICMP port unreachable at once",
           repr(r))

    def drop_counted():
        before, _ = stats_drops(gw)
        r = sgnet.curl(c, "http://192.0.2.200/", max_time=1)
        after, st = stats_drops(gw)
        return (r.rc != 0 and after > before,
                f"drop counters {before} -> {after}", repr(r), repr(st))
    tap.case("a packet to an address svcgw does not own is dropped and "
             "counted", drop_counted)

    ok, d = sgnet.upload(h, c, f"http://{VIP}/sink", 32 << 20)
    tap.ok(ok, "32 MiB uploaded with curl to the VIP: the pod read every "
           "byte, same SHA-256", d)

    t0 = time.monotonic()
    ip = sgnet.iperf3_reverse(h, s.topo, PODS[0][1], VIP_BULK, 64 << 20)
    tap.ok(ip["received"] is not None
           and 64 << 20 <= ip["received"] <= ip["sent"],
           "iperf3 -R -n 64M through the gateway: the client received all "
           "64 MiB the pod sent", f"pod sent {ip['sent']}, client received "
           f"{ip['received']}", ip["error"] or "")
    tap.diag(f"iperf3: pod sent {ip['sent']} bytes, client received "
             f"{ip['received']}")
    if ip["bps"]:
        tap.diag(f"iperf3 TCP through svcgw (1 worker, af_xdp on veths): "
                 f"{ip['bps'] / 1e9:.2f} Gbit/s, "
                 f"{time.monotonic() - t0:.1f} s")

    # Telemetry through tools/svcgwctl: each case stands alone, so one
    # broken command does not hide the others.
    ids = {}

    def services():
        svc = gw.ctl("services")["/svcgw/services"]
        got = {}
        for sid, name, usable in rows(svc, "id", "name", "usable"):
            short = sgnet.service_of_entry(name)
            got.setdefault(short, set()).add(usable)
            ids.setdefault(short, sid)
        want = {"web": 3, "echo": 3, "bulk": 1, "empty": 0}
        return (all(got.get(n) == {u} for n, u in want.items()),
                f"usable by name: {got}", repr(svc)[:800])
    tap.case("svcgwctl services: every service with its usable endpoints",
             services)

    def backends():
        be = gw.ctl("backends", str(ids["web"]))["/svcgw/backends"]
        addrs = {a.split(":")[0] for a in be["address"]}
        return (addrs == {a for _, a in PODS} and be["total"] == 3
                and be["state"] == ["ready serving"] * 3, repr(be)[:800])
    tap.case("svcgwctl backends: web's three pods, ready and serving",
             backends)

    def services_text():
        text = gw.ctl("services", json_out=False)
        lines = text.splitlines()
        return (any(ln.split()[:2] == ["id", "name"] for ln in lines)
                and any("web" in ln for ln in lines), text[:800])
    tap.case("svcgwctl services as a table for a person", services_text)

    def stats():
        st = gw.ctl("stats")["/svcgw/stats"]
        return (st["fwd"] >= 6 * N and st["rx"] >= st["fwd"]
                and len(st["port"]) == 2 and len(st["port_rx"]) == 2,
                repr(st)[:800])
    tap.case("svcgwctl stats: forwarded packets counted, both ports listed",
             stats)

    def svc_cache():
        # Hundreds of new connections to a handful of services: after the
        # first lookup of each, the worker's cache answers.
        st = gw.ctl("stats")["/svcgw/stats"]
        hits, misses = st["svc_cache_hits"], st["svc_cache_misses"]
        return (hits >= N and hits > 4 * misses and misses >= 1
                and st["svc_cache_rested"] == 0,
                f"hits {hits}, misses {misses}, "
                f"rested {st['svc_cache_rested']}")
    tap.case("svcgwctl stats: new flows' services come from the cache",
             svc_cache)

    def neighbours():
        nb = gw.ctl("neighbours")["/svcgw/neighbours"]
        known = set(nb["address"])
        want = {CLIENT_ADDR} | {a for _, a in PODS}
        return (want <= known, f"neighbours: {sorted(known)}",
                repr(nb)[:800])
    tap.case("svcgwctl neighbours: the client and the pods are resolved",
             neighbours)

    def flows():
        # Twice: each request must find the worker free to answer again.
        got = [gw.ctl("flows")["/svcgw/flows"] for _ in range(2)]
        return (all(fl["count"] > 0 and len(fl["per_worker"]) == 1
                    and sum(fl["per_worker"]) == fl["count"]
                    and fl["unanswered"] == 0 and len(fl["client"]) > 0
                    and all(x.split(":")[0] == CLIENT_ADDR
                            for x in fl["client"])
                    for fl in got),
                repr(got)[:800])
    tap.case("svcgwctl flows: counted per worker, a sample of the client's "
             "flows, answered twice", flows)

    rc = gw.stop()
    tap.ok(rc == 0, "SIGTERM: svcgw stops its ports and exits 0",
           f"exit code {rc}", gw.tail())


if __name__ == "__main__":
    sys.exit(main())
