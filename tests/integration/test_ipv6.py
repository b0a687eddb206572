#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""IPv6 at the gateway itself: NDP, ICMPv6 echo, dual stack, extension
headers (TAP).

The topology of sgnet.py with IPv6 (the client 2001:db8:c::2 behind its
router 2001:db8:e::2, the gateway's gateway6), the pods routing replies
back through the gateway, and the direct link for DSR. Services:

  web     192.0.2.100 and 2001:db8:a::100 (dual stack), nat: TCP 80 ->
          8080 with NodePort 30080, UDP 53 -> 5353, pods a, b, c
  direct  2001:db8:a::101, dnat, the same ports, pods a, b, c
  tunnel  2001:db8:a::110, dsr-ipip, TCP 80, UDP 53, pod a (decap.py)

Proved: the gateway announces its VIPs and node address with unsolicited
neighbour advertisements when it starts (RFC 4861 §7.2.6), answers
neighbour solicitations for the addresses it owns on the external link
and for no other, answers ICMPv6 echo for VIPs, the node address and its
port addresses; a dual-stack service is one entry per family, each
serving its VIP and NodePort; and TCP and UDP packets carrying a hop-by-hop
and a destination options header before the upper layer are forwarded
in nat, dnat and dsr-ipip with the headers kept in place and every
checksum right (captures of the client's and the pods' links).
"""
import ipaddress
import os
import sys
import time

import check_capture
import sgnet
from sgnet import (CLIENT6, CLIENT_LINK6, EXT6, INT6, NODE6, NODE_ADDR,
                   NODE_PORT, PODS, PODS6, SNAT6)

WEB4, WEB6 = "192.0.2.100", "2001:db8:a::100"
DNAT6 = "2001:db8:a::101"
IPIP6 = "2001:db8:a::110"
GUE_PORT = 6080
NOT_OURS6 = "2001:db8:a::999"
ANNOUNCED = (WEB6, DNAT6, IPIP6, NODE6)


def services():
    both = [sgnet.endpoint(a) for _, a in PODS + PODS6]
    six = [sgnet.endpoint(a) for _, a in PODS6]
    ports = [sgnet.port("TCP", 80, 8080, node_port=NODE_PORT, name="http"),
             sgnet.port("UDP", 53, 5353, name="dns")]
    direct = sgnet.service("direct", [sgnet.port("TCP", 80, 8080, name="http"),
                                      sgnet.port("UDP", 53, 5353, name="dns")],
                           six, vips=[DNAT6])
    direct["mode"] = "dnat"
    tunnel = sgnet.service("tunnel", [sgnet.port("TCP", 80, 80, name="http"),
                                      sgnet.port("UDP", 53, 53, name="dns")],
                           [sgnet.endpoint(PODS6[0][1])], vips=[IPIP6])
    tunnel["mode"] = "dsr-ipip"
    return [sgnet.service("web", ports, both, vips=[WEB4, WEB6]), direct,
            tunnel]


def main():
    return sgnet.run_test("ipv6", 12, run)


def run(tap, h):
    s = sgnet.Setup(h, services=services(), ipv6=True, return_routes=True,
                    direct=True)
    announce = h.path("announce.pcap")

    def before_gateway(s):
        s.topo.hold_vips([IPIP6])
        s.pods.add("dsr", [IPIP6], [80], 53)
        s.decap_log = sgnet.start_decap(h, s.topo, GUE_PORT)
        s.announce = sgnet.Capture(h, s.topo.client, "eth0",
                                   "icmp6 and ip6[40] == 136", announce)
    s.start_case(tap, "svcgw starts dual-stack and says ready",
                 before_gateway=before_gateway)
    c, gw = s.topo.client, s.gw
    gw_mac = sgnet.run(["cat", "/sys/class/net/gw-ext/address"],
                       ns=s.topo.gw).stdout.strip()

    # -- NDP ---------------------------------------------------------------
    # The first round goes out as the addresses appear, before "ready";
    # wait (bounded) until the file holds one NA per address.
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and \
            os.path.getsize(announce) < 24 + len(ANNOUNCED) * (16 + 86):
        time.sleep(0.1)
    time.sleep(0.2)
    s.announce.stop()
    nas = {}
    for p in check_capture.read(announce):
        if not p.ip or p.error or getattr(p, "icmp_type", None) != 136:
            continue
        tgt = str(ipaddress.IPv6Address(p.l4[8:24]))
        opts = p.l4[24:]
        tlla = opts[2:8].hex(":") if len(opts) >= 8 and opts[0] == 2 else None
        nas.setdefault(tgt, set()).add(
            (p.dst, p.l4[4] & 0xe0, p.ttl, tlla, p.l4_csum_ok))
    want = {("ff02::1", 0x20, 255, gw_mac, True)}
    tap.ok(all(nas.get(a) == want for a in ANNOUNCED),
           "at start: an unsolicited NA to all-nodes for each VIP and the "
           "node address (override, not solicited, hop limit 255, the "
           "port's MAC, valid checksum)",
           *(f"{a}: {nas.get(a)}" for a in ANNOUNCED), f"want {want}")

    res = {a: sgnet.client_tool(c, "ndp-ns", "eth0", CLIENT_LINK6, a)
           for a in (EXT6, WEB6, NODE6)}
    tap.ok(all(r.out.split() == ["na", a, gw_mac, "SO"]
               for a, r in res.items()),
           "NS for the port address, a VIP and the node address: each "
           "answered by a solicited NA with the port's MAC",
           *(f"{a}: {r!r}" for a, r in res.items()))

    before = gw.stats()["neigh_ns_not_ours"]
    r = sgnet.client_tool(c, "ndp-ns", "eth0", CLIENT_LINK6, NOT_OURS6)
    after = gw.stats()["neigh_ns_not_ours"]
    tap.ok(r.out.strip() == "none" and after == before + 1,
           "NS for an address the gateway does not own: no answer, counted "
           "in neigh_ns_not_ours", repr(r), f"{before} -> {after}")

    # -- ICMPv6 echo --------------------------------------------------------
    def ping(ns, addr):
        return sgnet.timed(["ping", "-6", "-n", "-q", "-c", "2", "-i", "0.2",
                            "-W", "1", addr], ns, 10)
    pings = {a: ping(c, a) for a in (WEB6, NODE6, EXT6)}
    pings[INT6] = ping(s.topo.pods, INT6)
    tap.ok(all(r.rc == 0 for r in pings.values()),
           "ICMPv6 echo: a VIP, the node address and both port addresses "
           "answer", *(f"{a}: {r!r}" for a, r in pings.items()))

    # -- dual stack -----------------------------------------------------------
    def dual_stack():
        names = sorted(n for n in gw.ctl("services")["/svcgw/services"]["name"]
                       if sgnet.service_of_entry(n) == "web")
        want = ["test/web:dns/UDP", "test/web:dns/UDP/v6",
                "test/web:http/TCP", "test/web:http/TCP/v6"]
        got = {u: sgnet.curl(c, u, max_time=3) for u in (
            sgnet.url(WEB4, 80), sgnet.url(WEB6, 80),
            sgnet.url(NODE_ADDR, NODE_PORT), sgnet.url(NODE6, NODE_PORT))}
        udp = {a: sgnet.udp_request(c, a, 53) for a in (WEB4, WEB6)}
        pods = {n for n, _ in PODS}
        ok = names == want and \
            all(r.rc == 0 and r.out.strip() in pods for r in got.values()) \
            and all(r.out.strip() in pods for r in udp.values())
        return (ok, f"entries {names}, want {want}",
                *(f"{u}: {r!r}" for u, r in got.items()),
                *(f"udp {a}: {r!r}" for a, r in udp.items()))
    tap.case("a dual-stack service is one entry per family; its IPv4 and "
             "IPv6 VIPs and its NodePort on both node addresses answer",
             dual_stack)

    # -- extension headers ----------------------------------------------------
    pcaps = [h.path("ext-client.pcap"), h.path("ext-pods.pcap")]
    caps = [sgnet.Capture(h, c, "eth0", "ip6", pcaps[0]),
            sgnet.Capture(h, s.topo.pods, "eth0", "ip6", pcaps[1])]
    for vip, mode, who, server in ((WEB6, "nat", SNAT6, None),
                                   (DNAT6, "dnat", CLIENT6, None),
                                   (IPIP6, "dsr-ipip", CLIENT6, "dsr")):
        t = sgnet.client_tool(c, "ext-http", vip, 80, "/whoami")
        u = sgnet.client_tool(c, "ext-udp", vip, 53)
        f = t.out.split()
        names = {server} if server else {n for n, _ in PODS}
        tap.ok(t.rc == 0 and len(f) == 5 and f[0] in names and f[3] == who
               and u.rc == 0 and u.out.strip() in names,
               f"{mode}: TCP and UDP with a hop-by-hop and a destination "
               f"options header answered (the pod saw {who})",
               f"tcp: {t!r}", f"udp: {u!r}")
    time.sleep(0.3)
    for cap in caps:
        cap.stop()

    kept, lost = {}, []
    for p in check_capture.read(pcaps[1]):
        for q in p.layers():
            if not q.ip or q.error or q.proto not in (6, 17):
                continue
            # The clients' packets only, not the pods' answers.
            if q.src not in (SNAT6, CLIENT6) or q.dst == CLIENT6:
                continue
            if q.ext == [0, 60]:
                kept[(q.src, q.dst)] = kept.get((q.src, q.dst), 0) + 1
            else:
                lost.append(q.describe() + f" ext {q.ext}")
    want_pairs = {(SNAT6, a) for _, a in PODS6} | \
        {(CLIENT6, a) for _, a in PODS6} | {(CLIENT6, IPIP6)}
    tap.ok({k[1] for k in kept if k[0] == SNAT6} and
           {k for k in kept if k[0] == CLIENT6 and k[1] != IPIP6} and
           (CLIENT6, IPIP6) in kept and set(kept) <= want_pairs and not lost,
           "on the pods' link every one of those packets still carries both "
           "extension headers, in order (nat, dnat, and inside IPv6-in-IPv6)",
           f"(src, dst): packets with both headers {kept}", *lost[:5])
    for name, ok, detail in check_capture.checksums(pcaps):
        if not name.startswith("every IPv4"):
            tap.ok(ok, f"captures of the client's and the pods' links: {name}",
                   *detail)

    rc = gw.stop()
    tap.ok(rc == 0, "SIGTERM: exit 0", f"exit code {rc}", gw.tail())


if __name__ == "__main__":
    sys.exit(main())
