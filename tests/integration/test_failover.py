#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""Two gateways on one link, Leases in the API stand-in, and a gateway killed.

Topology: sgnet.Lan (two svcgw processes, each in its own namespace, their
external ports on one bridge with the client, their internal ports on one
bridge with the pods, the stand-in on a third). Services "web" (TCP 8080)
and "echo" (UDP 5353) share VIP 192.0.2.100 in dsr-l2 mode; the pods hold
the VIP on lo and answer the client over the direct link. Both gateways
have the same lb pool. The stand-in allows exactly the rules of
config/rbac.yaml (its Role for the Leases in its own namespace, NS).

Checks: both gateways see both alive and agree with an independent
implementation of the rendezvous hash (sgnet.hrw_owner) on the VIP's
owner; only the owner answers ARP for it. Then, in each of ROUNDS rounds: a
client sends a UDP request every 20 ms (a new flow each), the owner is
SIGKILLed, and the outage (last answer before the kill to first after) must
stay under 3 s; the client's capture shows the survivor's gratuitous ARP
burst for the VIP from its MAC; in the first round a paced TCP download in
progress through the killed owner completes intact (its ACKs, mid-stream,
are picked up by the survivor's Maglev). The killed gateway then starts
again and takes its VIP back.

Allocation follows leadership: a Service of class svcgw.io/lb gets one
address, one status patch and one IPAllocated Event, all from the leader
(the stand-in logs each request's source address); after the leader is
killed the survivor leads and allocates a Service created then.
"""
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sgnet  # noqa: E402

VIP = "192.0.2.100"
NS = "svcgw-system"
NAMES = ("gw-a", "gw-b")
ROUNDS = 3
CLASS = "svcgw.io/lb"
POOL = {"name": "lan", "addresses": ["192.0.2.120/30"]}  # .121 and .122
TARGET_S = 3.0
INTERVAL_MS = 20


def main():
    return sgnet.run_test("failover", 7 + 4 * ROUNDS + 2, run)


def api_objects(srv):
    import apiserver
    srv.create({"apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": NS}})
    status = {"loadBalancer": {"ingress": [{"ip": VIP}]}}
    ann = {"svcgw.io/mode": "dsr-l2"}
    srv.create(apiserver.service("web", [("http", "TCP", 8080, 8080)],
                                 status=status, annotations=ann))
    srv.create(apiserver.service("echo", [("echo", "UDP", 5353, 5353)],
                                 status=status, annotations=ann))
    addrs = [a for _, a in sgnet.PODS]
    srv.create(apiserver.endpoint_slice("web-a", "web", addrs,
                                        [("http", "TCP", 8080)]))
    srv.create(apiserver.endpoint_slice("echo-a", "echo", addrs,
                                        [("echo", "UDP", 5353)]))
    # As shipped: the Role's namespace in the manifest is NS.
    srv.set_rbac(apiserver.rules_from_manifest(
        os.path.join(sgnet.SRC_ROOT, "config", "rbac.yaml")))


def ips(srv, name):
    o = srv.get("services", name, namespace="default")
    ing = ((o.get("status") or {}).get("loadBalancer") or {}).get("ingress")
    return [e.get("ip") for e in ing or []]


def allocated(tap, srv, name, leader, gws, what):
    """Create a Service of our class; its address must come from the
    pool, written by the leader alone: one status patch, one Event."""
    import apiserver
    srv.create(apiserver.service(name, [("http", "TCP", 80, 8080)],
                                 loadBalancerClass=CLASS))
    got = sgnet.wait_until(lambda: ips(srv, name), timeout=10)
    sgnet.wait_until(lambda: srv.requests(verb="create", resource="events",
                                          status=201), timeout=5)
    time.sleep(1)   # a second writer, if any, would have written by now
    patches = srv.requests(verb="patch", name=name)
    evs = [e for e in srv.list("events")
           if (e.get("involvedObject") or {}).get("name") == name]
    srcs = {r["client"] for r in patches} | {
        r["client"] for r in srv.requests(verb="create", resource="events")
        if name in str(r.get("body"))}
    ok = (got and ips(srv, name)[0] in ("192.0.2.121", "192.0.2.122")
          and [r["status"] for r in patches] == [200] and len(evs) == 1
          and srcs == {sgnet.LAN_API_GW[leader.i]})
    tap.ok(ok, f"{what}: {name} gets {ips(srv, name)} from pool lan, in one "
           f"status patch and one Event, all from the leader {leader.name}",
           repr([(r["client"], r["status"]) for r in patches]),
           f"events {len(evs)}, sources {srcs}",
           *[f"{g.name}: leader {g.failover().get('leader')}" for g in gws])


def garps(pcap, vip, mac, since):
    """Gratuitous ARP requests for vip from mac, captured after `since`
    (CLOCK_REALTIME seconds)."""
    from scapy.all import ARP, rdpcap
    return [p for p in rdpcap(pcap)
            if ARP in p and p[ARP].op == 1 and p[ARP].psrc == vip
            and p[ARP].pdst == vip and p[ARP].hwsrc.lower() == mac
            and float(p.time) >= since]


def run(tap, h):
    lan, srv, gws = sgnet.lan_failover(h, VIP, NAMES, NS, api_objects,
                                       gw_extra={"lb": {"pools": [POOL]}})
    tap.ok(sgnet.lan_all_live(gws),
           "both gateways see both alive through their Leases",
           *[str(g.failover()) for g in gws])
    owner, (other,) = sgnet.hrw_split(gws, VIP)
    ok = sgnet.wait_until(lambda: owner.answering() == {VIP}
                          and other.answering() == set(), timeout=5)
    tap.ok(ok, f"rendezvous: {owner.name} answers for {VIP}, as computed "
           "independently; the other gateway is quiet",
           f"owner {owner.answering()}, other {other.answering()}")
    leaders = [g.failover()["leader"] for g in gws]
    tap.ok(sorted(leaders) == [0, 1], "exactly one leader", str(leaders))
    leader = gws[leaders.index(1)] if 1 in leaders else gws[0]
    allocated(tap, srv, "alloc1", leader, gws, "one writer")
    denied = srv.requests(status=403)
    tap.ok(not denied, "every request is allowed by config/rbac.yaml",
           *[f"{r['method']} {r['path']}" for r in denied[:5]])

    r = sgnet.client_tool(lan.client, "udp-loop", VIP, str(sgnet.UDP_PORT),
                          "50", "20")
    n = len(r.out.splitlines())
    tap.ok(n == 20, f"before any failure: 20 of 20 UDP requests answered ({n})")
    arp = sgnet.run(["ip", "-n", lan.client, "neigh", "show", VIP]).stdout
    tap.ok(lan.gw_mac(owner.i) in arp.lower(),
           "the client reaches the VIP at the owner's MAC", arp.strip())

    outages = []
    for rnd in range(ROUNDS):
        outage, detail = failover_round(tap, h, lan, srv, owner, other, rnd)
        outages.append(outage)
        tap.diag(f"round {rnd + 1}: outage {outage * 1000:.0f} ms; {detail}")
    tap.diag("failover outages (ms): " +
             ", ".join(f"{o * 1000:.0f}" for o in outages))

    # Kill the leader: the survivor leads and allocates.
    leader = next(g for g in gws if g.failover()["leader"] == 1)
    survivor = gws[1 - gws.index(leader)]
    leader.gw.stop(signal.SIGKILL)
    ok = sgnet.wait_until(lambda: survivor.failover()["leader"] == 1, 10)
    tap.ok(ok, f"the leader {leader.name} killed: {survivor.name} leads",
           str(survivor.failover()))
    srv.clear_requests()
    allocated(tap, srv, "alloc2", survivor, [survivor], "after the leader's kill")


def failover_round(tap, h, lan, srv, owner, other, rnd):
    pcap = h.path(f"arp{rnd}.pcap")
    cap = sgnet.Capture(h, lan.client, "eth0", "arp", pcap)
    dl = None
    if rnd == 0:
        dl = sgnet.Download(h, lan.client,
                            sgnet.url(VIP, sgnet.HTTP_PORT, "/stream"),
                            600000, 6, "dl")
    o = sgnet.outage_across(h, lan.client, VIP, sgnet.UDP_PORT, INTERVAL_MS,
                            lambda: owner.gw.stop(signal.SIGKILL))
    outage, wall_kill = o.outage, o.wall_kill
    sgnet.outage_case(tap, o, TARGET_S, f"round {rnd + 1}: {owner.name} killed")
    time.sleep(0.3)
    cap.stop()
    mac = other.mac
    burst = garps(pcap, VIP, mac, wall_kill)
    tap.ok(len(burst) >= 3,
           f"round {rnd + 1}: the capture shows {len(burst)} gratuitous ARP "
           f"for {VIP} from the survivor's MAC {mac} (a burst of 3)",
           *[f"{float(p.time) - wall_kill:.3f} s after the kill"
             for p in burst])
    detail = f"{len(burst)} gratuitous ARP"
    if dl is not None:
        ok, why = dl.finish()
        tap.ok(ok, "dsr-l2: a TCP download through the killed gateway "
               "completes intact through the survivor", why)
    else:
        tap.ok(True, f"round {rnd + 1}: (download checked in round 1)")
    # The killed gateway comes back and takes its VIP back.
    owner.start()
    # (The lb pool's VIPs have owners of their own: only VIP counts here.)
    ok = sgnet.lan_all_live([owner, other]) and sgnet.wait_until(
        lambda: VIP in owner.answering() and VIP not in other.answering(), 10)
    tap.ok(ok, f"round {rnd + 1}: {owner.name} restarted, rejoined and "
           "answers for its VIP again",
           str(owner.failover()), str(other.failover()))
    return outage, detail


if __name__ == "__main__":
    sys.exit(main())
