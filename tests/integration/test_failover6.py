#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""IPv6 VIP failover: two gateways on one link, one killed (TAP).

Topology: sgnet.Lan with ipv6=True (the client 2001:db8:e::2 on the
gateways' external link, 2001:db8:a::/64 on-link, so it solicits the VIP
and whoever advertises it gets the traffic; the pods on the internal link
and the direct link back to the client). Service "echo", UDP 5353, IPv6
only, VIP 2001:db8:a::100 in dsr-l2 mode; a pod holds the VIP on lo and
answers the client over the direct link. Leases in the API stand-in, as
test_failover.

Checks: both gateways see both alive; the VIP's owner is the one
sgnet.hrw_owner computes (SipHash of name, family 6 and the 16 bytes of the
address, as lib/lease/lease_hrw.c); a neighbour solicitation from the
client is answered by the owner alone (a capture of the client's link
holds no NA for the VIP from the other gateway), and after a UDP exchange
the client's neighbour cache holds the owner's MAC. Then one round: a UDP
request every 20 ms (a new flow each), the owner SIGKILLed; the VIP must
answer again within 3 s, the capture must hold the survivor's burst of
unsolicited NAs for the VIP (to all-nodes, override set, not solicited,
target link-layer address and Ethernet source the survivor's MAC), the
client's cache must have moved to the survivor's MAC, and the survivor
must answer a fresh solicitation.
"""
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sgnet  # noqa: E402

VIP6 = "2001:db8:a::100"
VIP6_LATER = "2001:db8:a::101"   # a Service created after the membership
NS = "svcgw-system"
NAMES = ("gw-a", "gw-b")
TARGET_S = 3.0
INTERVAL_MS = 20
ANNOUNCE_COUNT = 3      # failover.announce_count's default
NA_BPF = "icmp6 and ip6[40] == 136"


def main():
    return sgnet.run_test("failov6", 9, run)


def echo_service(srv, name, vip):
    """UDP echo on vip:UDP_PORT, IPv6 only, dsr-l2, to the pods."""
    import apiserver
    srv.create(apiserver.service(
        name, [("echo", "UDP", sgnet.UDP_PORT, sgnet.UDP_PORT)],
        status={"loadBalancer": {"ingress": [{"ip": vip}]}},
        annotations={"svcgw.io/mode": "dsr-l2"},
        ipFamilies=["IPv6"], ipFamilyPolicy="SingleStack"))
    srv.create(apiserver.endpoint_slice(
        f"{name}-a", name, [a for _, a in sgnet.PODS6],
        [("echo", "UDP", sgnet.UDP_PORT)], address_type="IPv6"))


def api_objects(srv):
    import apiserver
    srv.create({"apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": NS}})
    echo_service(srv, "echo", VIP6)
    srv.set_rbac(apiserver.rules_from_manifest(
        os.path.join(sgnet.SRC_ROOT, "config", "rbac.yaml")))


def nas(pcap, vip):
    """[(time, ether src, dst, R, S, O, target link-layer address)] of the
    neighbour advertisements for vip in pcap."""
    from scapy.all import (Ether, ICMPv6ND_NA, ICMPv6NDOptDstLLAddr, IPv6,
                           rdpcap)
    out = []
    for p in rdpcap(pcap):
        if ICMPv6ND_NA not in p or p[ICMPv6ND_NA].tgt != vip:
            continue
        na = p[ICMPv6ND_NA]
        tlla = p[ICMPv6NDOptDstLLAddr].lladdr.lower() \
            if ICMPv6NDOptDstLLAddr in p else None
        out.append((float(p.time), p[Ether].src.lower(), p[IPv6].dst,
                    na.R, na.S, na.O, tlla))
    return out


def neigh_mac(ns, addr):
    """The MAC in ns's neighbour cache for addr, or the line as is."""
    out = sgnet.run(["ip", "-n", ns, "-6", "neigh", "show", addr]).stdout
    f = out.split()
    return (f[f.index("lladdr") + 1].lower() if "lladdr" in f else None,
            out.strip())


def solicit(lan):
    """client.py ndp-ns for the VIP: (MAC, flags) of the answer."""
    r = sgnet.client_tool(lan.client, "ndp-ns", "eth0", sgnet.LAN_CLIENT6,
                          VIP6)
    f = r.out.split()
    return (f[2], f[3]) if len(f) == 4 and f[0] == "na" else (None, repr(r))


def run(tap, h):
    # The stand-in's cluster IPs in documentation ranges too (they are
    # only ever data here).
    lan, srv, gws = sgnet.lan_failover(
        h, VIP6, NAMES, NS, api_objects, ipv6=True, pods=(),
        service_cidrs=("10.96.0.0/16", "2001:db8:96::/112"))
    tap.ok(sgnet.lan_all_live(gws),
           "both gateways see both alive through their Leases",
           *[str(g.failover()) for g in gws])

    owner, (other,) = sgnet.hrw_split(gws, VIP6)
    owner_name = owner.name
    ok = sgnet.wait_until(lambda: owner.answering() == {VIP6}
                          and other.answering() == set(), timeout=5)
    tap.ok(ok, f"rendezvous: {owner_name} answers for {VIP6}, as computed "
           "independently for an IPv6 address; the other gateway is quiet",
           f"owner {owner.answering()}, other {other.answering()}")

    # A VIP that comes between memberships: its owner answers for it, and
    # each gateway's counts say what it answers for and what it leaves.
    echo_service(srv, "echo2", VIP6_LATER)
    owner2, _ = sgnet.hrw_split(gws, VIP6_LATER)

    def counted():
        fs = [g.failover() for g in gws]
        return all(VIP6_LATER in f["vip"]
                   and f["vips_owned"] == sum(f["answered"])
                   and f["vips_owned"] + f["vips_quiet"] == len(f["vip"])
                   for f in fs)
    ok = sgnet.wait_until(lambda: counted() and [
        VIP6_LATER in g.answering() for g in gws] == [g is owner2 for g in gws],
        timeout=10)
    tap.ok(ok, f"{VIP6_LATER}, added later, is answered by {owner2.name} "
           "alone, and every gateway's vips_owned and vips_quiet count "
           "the VIPs it answers for and those it leaves",
           *[str(g.failover()) for g in gws])

    # From here on every NA on the client's link is kept: before the kill
    # none for the VIP may come from the other gateway.
    pcap = h.path("na.pcap")
    cap = sgnet.Capture(h, lan.client, "eth0", NA_BPF, pcap)
    sol = solicit(lan)
    r = sgnet.client_tool(lan.client, "udp-loop", VIP6, str(sgnet.UDP_PORT),
                          "50", "20")
    n = len(r.out.splitlines())
    mac, line = neigh_mac(lan.client, VIP6)
    tap.ok(sol == (owner.mac, "SO") and n == 20 and mac == owner.mac,
           f"a neighbour solicitation for {VIP6} is answered by the owner "
           f"(solicited, override); 20 of 20 UDP requests answered ({n}); "
           "the client's neighbour cache holds the owner's MAC",
           f"NA {sol}, owner {owner.mac}, other {other.mac}",
           f"neigh: {line}", repr(r))

    o = sgnet.outage_across(h, lan.client, VIP6, sgnet.UDP_PORT, INTERVAL_MS,
                            lambda: owner.gw.stop(signal.SIGKILL))
    outage, wall_kill = o.outage, o.wall_kill
    sgnet.outage_case(tap, o, TARGET_S, f"{owner_name} killed (IPv6)")

    mac, line = neigh_mac(lan.client, VIP6)
    sol2 = solicit(lan)
    time.sleep(0.3)
    cap.stop()
    got = nas(pcap, VIP6)
    early = [a for a in got if a[0] < wall_kill]
    wrong = [a for a in early if a[1] != owner.mac or a[6] != owner.mac]
    tap.ok(bool(early) and not wrong,
           f"before the kill every NA for {VIP6} on the client's link came "
           f"from the owner {owner.mac} ({len(early)}), none from "
           f"{other.mac}", *[str(a) for a in early])
    late = [a for a in got if a[0] >= wall_kill]
    burst = [a for a in late if a[1] == other.mac and a[2] == "ff02::1"
             and (a[3], a[4], a[5]) == (0, 0, 1) and a[6] == other.mac]
    stray = [a for a in late if a[1] != other.mac or a[6] != other.mac]
    tap.ok(len(burst) >= ANNOUNCE_COUNT and not stray,
           f"the survivor {other.name} sent {len(burst)} unsolicited NAs for "
           f"{VIP6} to all-nodes (override, target link-layer address "
           f"{other.mac}; a burst of {ANNOUNCE_COUNT}), none came from "
           "anyone else",
           *[f"{a[0] - wall_kill:.3f} s after the kill: {a[1:]}"
             for a in late])
    tap.diag(f"outage {outage * 1000:.0f} ms; {len(burst)} unsolicited NA "
             "from the survivor, the first " +
             (f"{(burst[0][0] - wall_kill) * 1000:.0f} ms after the kill"
              if burst else "never"))
    tap.ok(mac == other.mac,
           "the client's neighbour cache moved to the survivor's MAC",
           f"neigh: {line}", f"survivor {other.mac}")
    tap.ok(sol2 == (other.mac, "SO") and VIP6 in other.answering(),
           "the survivor answers a new solicitation for the VIP and says "
           "it answers for it", f"NA {sol2}", str(other.failover()))


if __name__ == "__main__":
    sys.exit(main())
