#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""Every forwarding mode of DESIGN.md, in IPv4 and IPv6, one gateway (TAP).

One svcgw serves six dual-stack services, one per mode (each has an IPv4
and an IPv6 VIP and dual-stack endpoints), with default_mode "dnat" and
gue_port 6635 in the config:

  nat     192.0.2.100  2001:db8:a::100  mode nat       pods a, b, c
  dnat    192.0.2.101  2001:db8:a::101  mode dnat      pods a, b, c
  deflt   192.0.2.102  2001:db8:a::102  (default_mode) pods a, b, c
  ipip    192.0.2.110  2001:db8:a::110  mode dsr-ipip  pods a, b
  gue     192.0.2.111  2001:db8:a::111  mode dsr-gue   pods b, c
  l2      192.0.2.112  2001:db8:a::112  mode dsr-l2    pods a, c

TCP 80 and UDP 53 on each; nat, dnat and deflt target the pods' 8080 and
5353, the DSR modes leave ports alone (80, 53). The pods route the
clients' prefixes back through the gateway (dnat). For DSR the pods'
namespace holds the DSR VIPs on lo, served by one stand-in ("dsr"), and
decap.py stands in for the ipip/ip6tnl/fou tunnel end; answers from a VIP
leave by a veth straight to the client, never through the gateway.

For each family, 16 curl connections (fixed client ports, so Maglev's
choices are reproducible) and 4 UDP exchanges per service prove: who
answered and which client address the pod saw (/whoami: the SNAT address
in nat; the client's own in dnat, the default-mode service and every DSR
mode); what the gateway sent to the pods (decap.py's log: IP-in-IP or GUE
variant 1 on port 6635 from the gateway's internal address to the
endpoints only; dsr-l2 frames to the pods' MAC with the packet
unchanged); that DSR answers bypass the gateway (captures of the pods'
link and of the direct link, and the gateway's `rev` counter); and that
every checksum on every captured link is valid, encapsulated ones too.

MTU: a UDP datagram with DF that fills the 1500-byte client link exceeds
the internal port's MTU once encapsulated; the gateway answers ICMP
"fragmentation needed" (IPv4) / "packet too big" (IPv6) quoting the MTU
that fits (1500 minus 20 or 40 for IP-in-IP, minus 28 or 48 for GUE), the
client's kernel learns it, too_big_sent counts it; then a 300 KB curl
upload through the tunnel completes intact by path MTU discovery alone.

Last, SIGHUP with default_mode "nat": the service without a mode of its own
now SNATs, while the one with mode dnat still keeps the client address.
"""
import sys
import time

import check_capture
import sgnet
from sgnet import (CLIENT6, CLIENT_ADDR, INT6, INT_ADDR, PODS, PODS6,
                   SNAT6, SNAT_ADDR)

GUE_PORT = 6635
DEFAULT_MODE = "dnat"
MTU = 1500
N_TCP, N_UDP = 16, 4

# name: (mode or None for default_mode, VIPs, endpoints, TCP/UDP targets)
SERVICES = {
    "nat": ("nat", ("192.0.2.100", "2001:db8:a::100"),
            ("pod-a", "pod-b", "pod-c"), (8080, 5353)),
    "dnat": ("dnat", ("192.0.2.101", "2001:db8:a::101"),
             ("pod-a", "pod-b", "pod-c"), (8080, 5353)),
    "deflt": (None, ("192.0.2.102", "2001:db8:a::102"),
              ("pod-a", "pod-b", "pod-c"), (8080, 5353)),
    "ipip": ("dsr-ipip", ("192.0.2.110", "2001:db8:a::110"),
             ("pod-a", "pod-b"), (80, 53)),
    "gue": ("dsr-gue", ("192.0.2.111", "2001:db8:a::111"),
            ("pod-b", "pod-c"), (80, 53)),
    "l2": ("dsr-l2", ("192.0.2.112", "2001:db8:a::112"),
           ("pod-a", "pod-c"), (80, 53)),
}
DSR = ("ipip", "gue", "l2")
DSR_VIPS = [v for n in DSR for v in SERVICES[n][1]]
FAMILIES = (("IPv4", 0), ("IPv6", 1))
# Outer headers per encapsulation and family: IPv4 20 / IPv6 40, GUE +8.
ENCAP_LEN = {("ipip", 0): 20, ("ipip", 1): 40, ("gue", 0): 28, ("gue", 1): 48}


def services():
    out = []
    for name, (mode, vips, pods, (tcp, udp)) in SERVICES.items():
        eps = [sgnet.endpoint(a) for n, a in PODS if n in pods] + \
            [sgnet.endpoint(a) for n, a in PODS6 if n in pods]
        s = sgnet.service(name, [sgnet.port("TCP", 80, tcp, name="http"),
                                 sgnet.port("UDP", 53, udp, name="dns")],
                          eps, vips=vips)
        if mode:
            s["mode"] = mode
        out.append(s)
    return out


def pod_addrs(names, fam):
    table = PODS6 if fam else PODS
    return {a for n, a in table if n in names}


def main():
    return sgnet.run_test("modes", 1 + 16 + 15 + 2, run)


def whoami(c, vip, ports):
    """curl /whoami from each client port: [(pod, local ip, local port,
    client ip)] (None for a failure), failures."""
    res = sgnet.parallel(
        lambda p: sgnet.curl(c, sgnet.url(vip, 80, "/whoami"), local_port=p,
                             max_time=5), list(ports))
    out, bad = [], []
    for p, r in zip(ports, res):
        f = r.out.split()
        if r.rc == 0 and len(f) == 5:
            out.append((f[0], f[1], int(f[2]), f[3]))
        else:
            out.append(None)
            bad.append(f"port {p}: {r!r}")
    return out, bad


def run(tap, h):
    s = sgnet.Setup(h, services=services(), ipv6=True, return_routes=True,
                    direct=True,
                    extra={"default_mode": DEFAULT_MODE,
                           "gue_port": GUE_PORT})

    def before_gateway(s):
        s.topo.hold_vips(DSR_VIPS)
        s.pods.add("dsr", DSR_VIPS, [80], 53)
        s.decap_log = sgnet.start_decap(h, s.topo, GUE_PORT)
    s.start_case(tap, "svcgw starts with six dual-stack services, one per "
                 "mode, and says ready", before_gateway=before_gateway)
    pods_mac = sgnet.run(["cat", "/sys/class/net/eth0/address"],
                         ns=s.topo.pods).stdout.strip()
    for fam_name, fam in FAMILIES:
        family_cases(tap, h, s, fam_name, fam, pods_mac)

    # default_mode changes on reload: the mode-less service follows it.
    sgnet.write_conf(s.conf_path, s.settings(extra={"default_mode": "nat"}))
    res = s.gw.reload()
    seen, bad = {}, []
    for i, name in enumerate(("deflt", "dnat")):
        for fam in (0, 1):
            p0 = 47000 + 100 * fam + 10 * i
            got, b = whoami(s.topo.client, SERVICES[name][1][fam],
                            range(p0, p0 + 4))
            bad += b
            seen[(name, fam)] = {g[3] for g in got if g}
    want = {("deflt", 0): {SNAT_ADDR}, ("deflt", 1): {SNAT6},
            ("dnat", 0): {CLIENT_ADDR}, ("dnat", 1): {CLIENT6}}
    tap.ok(res == "reloaded" and not bad and seen == want,
           "SIGHUP with default_mode nat: the service without a mode now "
           "SNATs, the one with mode dnat still keeps the client address",
           f"reload: {res}", f"client addresses seen: {seen}", *bad[:5])

    rc = s.gw.stop()
    tap.ok(rc == 0, "SIGTERM: exit 0", f"exit code {rc}", s.gw.tail())


def family_cases(tap, h, s, fam_name, fam, pods_mac):
    c, gw = s.topo.client, s.gw
    client = (CLIENT_ADDR, CLIENT6)[fam]
    snat = (SNAT_ADDR, SNAT6)[fam]
    internal = (INT_ADDR, INT6)[fam]
    proto = ("ip", "ip6")[fam]
    caps = {n: h.path(f"{n}{fam}.pcap") for n in ("client", "pods", "direct")}
    cap = [sgnet.Capture(h, c, "eth0", proto, caps["client"]),
           sgnet.Capture(h, s.topo.pods, "eth0", proto, caps["pods"]),
           sgnet.Capture(h, c, "direct", proto, caps["direct"])]
    base = 40000 + 3000 * fam

    # -- nat, dnat and default_mode: who the pods saw ----------------------
    for i, (name, label, want) in enumerate((
            ("nat", "nat", snat),
            ("dnat", "dnat", client),
            ("deflt", f"no mode, default_mode {DEFAULT_MODE}", client))):
        vip, pods = SERVICES[name][1][fam], SERVICES[name][2]
        ports = range(base + 100 * i, base + 100 * i + N_TCP)
        got, bad = whoami(c, vip, ports)
        logged = {p: len(s.pods.log(p)) for p in pods}
        udp, ubad = sgnet.udp_spread(c, vip, 53,
                                     range(base + 100 * i + 50,
                                           base + 100 * i + 50 + N_UDP))
        who = {g[3] for g in got if g}
        where = {g[1] for g in got if g}
        udp_log = {e[1] for p in pods for e in s.pods.log(p)[logged[p]:]
                   if e[0] == "udp"}
        ok = not bad and not ubad and who == {want} and \
            where <= pod_addrs(pods, fam) and udp_log <= {want} and \
            set(udp) <= set(pods)
        tap.ok(ok, f"{fam_name} {label}: {N_TCP} TCP connections and "
               f"{N_UDP} UDP exchanges answered by the pods, which saw "
               f"{want} as the client",
               f"TCP: pods at {sorted(where)}, client seen {who}",
               f"UDP: answered by {sgnet.spread(udp)}, client seen (log) "
               f"{udp_log}", *(bad + ubad)[:8])

    # -- DSR ------------------------------------------------------------
    rev0 = gw.stats()["rev"]
    decap_before = len(sgnet.read_decap(s.decap_log)[0])
    for i, name in enumerate(DSR):
        mode, vips, pods, _ = SERVICES[name]
        vip = vips[fam]
        p0 = base + 1000 + 100 * i
        got, bad = whoami(c, vip, range(p0, p0 + N_TCP))
        udp, ubad = sgnet.udp_spread(c, vip, 53, range(p0 + 50,
                                                       p0 + 50 + N_UDP))
        who = {g[3] for g in got if g}
        at = {(g[0], g[1], g[2]) for g in got if g}
        tap.ok(not bad and not ubad and who == {client} and
               at == {("dsr", vip, 80)} and set(udp) == {"dsr"},
               f"{fam_name} {mode}: {N_TCP} TCP connections and {N_UDP} UDP "
               f"exchanges answered by the pod holding the VIP, which saw "
               f"the client's address {client}",
               f"TCP: served at {at}, client seen {who}",
               f"UDP: {sgnet.spread(udp)}", *(bad + ubad)[:8])
        if name == "l2":
            continue
        entries = [e for e in sgnet.read_decap(s.decap_log)[0]
                   [decap_before:] if e[4] == vip]
        bad_lines = sgnet.read_decap(s.decap_log)[1]
        kinds = {e[0] for e in entries}
        outer = {(e[1], e[2]) for e in entries}
        inner = {(e[3], e[4]) for e in entries}
        want_dst = pod_addrs(pods, fam)
        what = "IP-in-IP" if name == "ipip" else \
            f"GUE variant 1 to UDP port {GUE_PORT}"
        tap.ok(kinds == {name} and not bad_lines and
               {o[0] for o in outer} == {internal} and
               {o[1] for o in outer} == want_dst and inner == {(client, vip)},
               f"{fam_name} {mode}: the gateway sent the client's packets "
               f"unchanged inside {what} from {internal} to every endpoint "
               f"({', '.join(pods)}) and nowhere else",
               f"{len(entries)} packets, kinds {kinds}, outer (src, dst) "
               f"{sorted(outer)}, inner {sorted(inner)}", *bad_lines[:5])

    rev1 = gw.stats()["rev"]
    time.sleep(0.3)  # the last ACKs and FINs
    for p in cap:
        p.stop()
    l2_case(tap, s, fam_name, SERVICES["l2"][1][fam], client, pods_mac,
            caps["pods"])
    bypass_case(tap, fam_name, fam, client, caps, rev0, rev1)
    for check_name, ok, detail in check_capture.checksums(
            caps.values(), gue_ports=(GUE_PORT,)):
        # IPv6 has no header checksum: only the IPv4 phase has one to check.
        if fam == 0 or not check_name.startswith("every IPv4"):
            tap.ok(ok, f"{fam_name} captures of every mode (client, pods, "
                   f"direct links): {check_name}", *detail)

    mtu_cases(tap, h, s, fam_name, fam)


def l2_case(tap, s, fam_name, vip, client, pods_mac, pcap):
    """dsr-l2 on the pods' link: the client's packet to the pods' MAC,
    unchanged, not encapsulated."""
    entries = [e for e in sgnet.read_decap(s.decap_log)[0] if e[4] == vip]
    frames = [p for p in check_capture.read(pcap, (GUE_PORT,))
              if p.ip and not p.error and p.dst == vip]
    macs = {p.eth_dst.hex(":") for p in frames}
    srcs = {p.src for p in frames}
    tap.ok(frames and not entries and macs == {pods_mac} and
           srcs == {client} and all(p.inner is None for p in frames),
           f"{fam_name} dsr-l2: the client's packets reached the pods' MAC "
           f"{pods_mac} unchanged ({client} -> {vip}), not encapsulated",
           f"{len(frames)} frames, MACs {macs}, sources {srcs}, "
           f"{len(entries)} decapsulated")


def bypass_case(tap, fam_name, fam, client, caps, rev0, rev1):
    vips = {SERVICES[n][1][fam] for n in DSR}
    pods = check_capture.read(caps["pods"], (GUE_PORT,))
    direct = check_capture.read(caps["direct"])
    to_vip, from_vip = 0, []
    for p in pods:
        for q in p.layers():
            if not q.ip or q.error:
                continue
            if q.dst in vips and q.src == client:
                to_vip += 1
            if q.src in vips:
                from_vip.append(q.describe())
    answers = {p.src for p in direct if p.ip and not p.error and
               p.src in vips and p.dst == client}
    tap.ok(to_vip > 0 and not from_vip and answers == vips and rev1 == rev0,
           f"{fam_name} DSR: the answers came from the VIPs over the direct "
           f"link; the gateway's internal link carried client->VIP packets "
           f"only and the gateway translated no reply (rev unchanged)",
           f"pods' link: {to_vip} client->VIP packets, "
           f"{len(from_vip)} from a VIP", *from_vip[:5],
           f"direct link: answers from {sorted(answers)}",
           f"counter rev {rev0} -> {rev1}")


def mtu_cases(tap, h, s, fam_name, fam):
    c, gw = s.topo.client, s.gw
    flush = ["ip", "-6" if fam else "-4", "route", "flush", "cache"]
    for name in ("ipip", "gue"):
        mode, vips, _, _ = SERVICES[name]
        vip = vips[fam]
        want = MTU - ENCAP_LEN[(name, fam)]
        size = MTU - (48 if fam else 28)  # a datagram filling the link
        pcap = h.path(f"toobig-{name}{fam}.pcap")
        icmp = "icmp" if not fam else "icmp6"
        cap = sgnet.Capture(h, c, "eth0", icmp, pcap)
        sgnet.run(flush, ns=c)
        before = gw.stats()["too_big_sent"]
        r = sgnet.client_tool(c, "df-udp", vip, 53, size)
        after = gw.stats()["too_big_sent"]
        time.sleep(0.2)
        cap.stop()
        got = []
        for p in check_capture.read(pcap):
            if not p.ip or p.error or p.src != vip:
                continue
            t = getattr(p, "icmp_type", None)
            if fam == 0 and t == 3 and p.icmp_code == 4:
                got.append(int.from_bytes(p.l4[6:8], "big"))
            elif fam == 1 and t == 2:
                got.append(int.from_bytes(p.l4[4:8], "big"))
        what = "fragmentation needed" if not fam else "packet too big"
        tap.ok(r.out.split() == ["mtu", str(want)] and got == [want] and
               after == before + 1,
               f"{fam_name} {mode}: a {size + (48 if fam else 28)}-byte UDP "
               f"datagram with DF gets ICMP {what} from the VIP with MTU "
               f"{want}, the client learns it, too_big_sent counts it",
               f"client: {r!r}", f"ICMP MTUs seen: {got}",
               f"too_big_sent {before} -> {after}")

        sgnet.run(flush, ns=c)
        before = gw.stats()["too_big_sent"]
        ok, d = sgnet.upload(h, c, sgnet.url(vip, 80, "/sink"), 300_000,
                             max_time=20)
        after = gw.stats()["too_big_sent"]
        tap.ok(ok and after > before,
               f"{fam_name} {mode}: a 300 KB curl upload through the tunnel "
               f"completes intact by path MTU discovery",
               d, f"too_big_sent {before} -> {after}")


if __name__ == "__main__":
    sys.exit(main())
