#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""What a connection tracker owes its flows beyond the first packet (TAP).

One gateway in nat mode, dual stack, on the standard services (the UDP
echo service with an IPv6 VIP too) plus "closed" (VIP:54/UDP, both
families, to a pod port nobody listens on). The UDP and ICMP cases run in
both families; fragments are IPv4's:

  UDP flows and endpoint conditions. A client keeps one UDP source port.
  When its pod stops serving (ready and serving false, terminating), its
  next datagram goes to a pod that serves -- kube-proxy's stale UDP
  conntrack entry would keep sending it into the void until the timeout.
  A pod that is terminating but still serving keeps its flows, while new
  flows avoid it.

  ICMP errors about a flow. A pod's "port unreachable" reaches the client
  translated (socat sees "Connection refused" on its connected socket);
  a router's "fragmentation needed" / "packet too big" about a reply
  reaches the pod translated, and the pod's kernel lowers its path MTU
  toward the SNAT address. The captures of both are checked: addresses,
  quoted tuple and every checksum (check_capture.py recomputes them from
  the raw bytes).

  IPv4 fragments. Datagrams larger than the MTU, fragmented by the
  client's kernel or sent by hand in reverse order, reach one pod whole
  (the pod logs length and digest); the gateway reassembles and cuts them
  again for the pods' link. A flood of fragments that never complete does
  not stop other traffic, and once it has timed out reassembly works
  again.
"""
import struct
import sys
import time

import check_capture
import pod
import sgnet
from sgnet import (CLIENT6, CLIENT_ADDR, CLIENT_LINK6, PODS, PODS6, SNAT6,
                   SNAT_ADDR, UDP_PORT, VIP)

VIP6 = "2001:db8:a::100"
CLOSED_PORT = 54
CLOSED_TARGET = 5999
REPORTED_MTU = 1300
POD_NAMES = [n for n, _ in PODS]


class Family:
    """What the UDP and ICMP cases need of one address family."""

    def __init__(self, name, vip, client, snat, pods, router, ports):
        self.name, self.vip, self.client, self.snat = name, vip, client, snat
        self.pods = dict(pods)
        # A hop on the client's side that reports errors about replies:
        # an address of its own for IPv4, the client's router for IPv6.
        self.router = router
        self.ports = iter(ports)


FAMILIES = (
    Family("IPv4", VIP, CLIENT_ADDR, SNAT_ADDR, PODS, "198.51.100.254",
           range(24000, 24100)),
    Family("IPv6", VIP6, CLIENT6, SNAT6, PODS6, CLIENT_LINK6,
           range(24100, 24200)),
)
ICMP_ERRORS = {4: (3, 11, 12), 6: (1, 2, 3, 4)}


def services(conditions=None):
    """The standard services, echo and "closed" in both families;
    conditions: {pod: {ready: ...}} for the echo service's endpoints."""
    conditions = conditions or {}
    svcs = [s for s in sgnet.standard_services() if s["name"] != "echo"]
    svcs.append(sgnet.service(
        "echo", [sgnet.port("UDP", 53, UDP_PORT)],
        [sgnet.endpoint(a, **conditions.get(n, {})) for n, a in PODS + PODS6],
        vips=[VIP, VIP6]))
    svcs.append(sgnet.service(
        "closed", [sgnet.port("UDP", CLOSED_PORT, CLOSED_TARGET)],
        [sgnet.endpoint(a) for _, a in PODS + PODS6], vips=[VIP, VIP6]))
    return svcs


def counters(gw):
    return gw.ctl("stats")["/svcgw/stats"]


def udp_answer(c, fam, port):
    return sgnet.udp_request(c, fam.vip, 53, local_port=port).out.strip()


def icmp_errors(path):
    """[(outer src, outer dst, type, code, mtu, quoted (src, sport, dst,
    dport), every checksum valid)] of the ICMP and ICMPv6 errors in a
    pcap."""
    out = []
    for p in check_capture.read(path):
        if not p.ip or p.error or p.proto not in (1, 58) or \
                p.icmp_type not in ICMP_ERRORS[4 if p.ipv4 else 6]:
            continue
        q = check_capture.Packet.inner_of(p.l4[8:], p.index, ())
        ok = (p.ip_csum_ok and p.l4_csum_ok and not q.error and q.ip_csum_ok
              and q.l4_csum_ok)
        out.append((p.src, p.dst, p.icmp_type, p.icmp_code,
                    struct.unpack("!I", p.l4[4:8])[0],
                    (q.src, getattr(q, "sport", None), q.dst,
                     getattr(q, "dport", None)), ok))
    return out


def main():
    return sgnet.run_test("conntrk", 1 + 3 * 2 + 4 * 2 + 5 + 1, run)


def run(tap, h):
    s = sgnet.Setup(h, services=services(), ipv6=True)
    s.start_case(tap, "svcgw starts and says ready")
    sgnet.run(["ip", "addr", "add", f"{FAMILIES[0].router}/24", "dev",
               "eth0"], ns=s.topo.client)
    for fam in FAMILIES:
        udp_flows(tap, s, fam)
    for fam in FAMILIES:
        icmp_errors_cases(tap, h, s, fam)
    fragments(tap, s)
    rc = s.gw.stop()
    tap.ok(rc == 0, "SIGTERM: exit 0", f"exit code {rc}", s.gw.tail())


def reload_with(s, conditions):
    sgnet.write_conf(s.conf_path, s.settings(services(conditions)))
    return s.gw.reload()


def udp_flows(tap, s, fam):
    c, gw = s.topo.client, s.gw
    port = next(fam.ports)
    first = udp_answer(c, fam, port)
    gone = {"ready": False, "serving": False, "terminating": True}
    before = counters(gw)["flow_evicted"]
    r = reload_with(s, {first: gone})
    again = udp_answer(c, fam, port)
    evicted = counters(gw)["flow_evicted"] - before
    tap.ok(first in POD_NAMES and r == "reloaded" and again in POD_NAMES
           and again != first and evicted >= 1,
           f"{fam.name} UDP: a flow whose pod stops serving moves to a "
           "serving pod on its next datagram",
           f"before {first!r}, reload {r!r}, after {again!r}, "
           f"flows evicted {evicted}")

    # The flow of another client port, to a pod that will terminate but
    # keep serving; the first pod is still out.
    port2, port3 = next(fam.ports), next(fam.ports)
    kept = udp_answer(c, fam, port2)
    draining = {"ready": False, "serving": True, "terminating": True}
    r = reload_with(s, {first: gone, kept: draining})
    still = udp_answer(c, fam, port2)
    fresh = udp_answer(c, fam, port3)
    tap.ok(kept in POD_NAMES and r == "reloaded" and still == kept,
           f"{fam.name} UDP: a flow to a pod terminating but still serving "
           "stays there", f"before {kept!r}, reload {r!r}, after {still!r}")
    tap.ok(fresh in POD_NAMES and fresh not in (first, kept),
           f"{fam.name} UDP: a new flow avoids both the gone and the "
           "terminating pod",
           f"gone {first}, terminating {kept}, new flow to {fresh!r}")
    reload_with(s, {})


def icmp_errors_cases(tap, h, s, fam):
    c, p, gw = s.topo.client, s.topo.pods, s.gw
    ip = ["ip", "-6"] if fam.name == "IPv6" else ["ip"]
    icmp = "icmp6" if fam.name == "IPv6" else "icmp"

    # Port unreachable from the pod, about a NATed datagram.
    port = next(fam.ports)
    cap = sgnet.Capture(h, c, "eth0", icmp, h.path(f"client-{icmp}.pcap"))
    before = counters(gw)["icmp_xlate"]
    r = sgnet.udp_request(c, fam.vip, CLOSED_PORT, local_port=port)
    time.sleep(0.3)
    errs = [e for e in icmp_errors(cap.stop()) if e[1] == fam.client]
    unreach = (3, 3) if fam.name == "IPv4" else (1, 4)
    tap.ok(r.rc not in (0, None) and "refused" in r.err.lower()
           and counters(gw)["icmp_xlate"] - before >= 1,
           f"{fam.name} ICMP: a pod's port unreachable reaches the client, "
           "whose socket sees the connection refused", repr(r))
    want = (fam.vip, fam.client, *unreach,
            (fam.client, port, fam.vip, CLOSED_PORT))
    tap.ok(errs and all((e[0], e[1], e[2], e[3], e[5]) == want and e[6]
                        for e in errs),
           f"{fam.name} ICMP: on the client's link it comes from the VIP and "
           "quotes client -> VIP, every checksum valid", *map(repr, errs))

    # Too big, from a router on the client's side, about a reply.
    port = next(fam.ports)
    target = udp_answer(c, fam, port)
    pod_addr = fam.pods.get(target)
    snat_port = next((pt for kind, ip, pt, _ in reversed(s.pods.log(target))
                      if kind == "udp" and ip == fam.snat), None) \
        if pod_addr else None
    cap = sgnet.Capture(h, p, "eth0", icmp, h.path(f"pods-{icmp}.pcap"))
    sgnet.client_tool(c, "too-big", fam.router, fam.vip, REPORTED_MTU,
                      fam.vip, 53, fam.client, port)
    time.sleep(0.3)
    errs = [e for e in icmp_errors(cap.stop()) if e[2] in (3, 2)]
    too_big = (3, 4) if fam.name == "IPv4" else (2, 0)
    want = (fam.snat, pod_addr, *too_big, REPORTED_MTU,
            (pod_addr, UDP_PORT, fam.snat, snat_port))
    tap.ok(pod_addr is not None and errs
           and all(e[:6] == want and e[6] for e in errs),
           f"{fam.name} ICMP: a router's too-big about a reply reaches the "
           "pod from the SNAT address, quoting pod -> SNAT, checksums valid",
           f"pod {target!r}, SNAT port {snat_port}", *map(repr, errs))
    route = sgnet.run(ip + ["route", "get", fam.snat, "from",
                            pod_addr or fam.snat], ns=p, check=False).stdout
    tap.ok(f"mtu {REPORTED_MTU}" in route,
           f"{fam.name} ICMP: the pod's kernel takes it: path MTU to the "
           f"SNAT address lowered to {REPORTED_MTU}", route.strip())


def pod_digests(s):
    """{digest: [pods that logged it]} over every pod's UDP log."""
    out = {}
    for name in POD_NAMES:
        for kind, _ip, _port, digest in s.pods.log(name):
            if kind == "udp":
                out.setdefault(digest, []).append(name)
    return out


def fragments(tap, s):
    c, gw = s.topo.client, s.gw
    before = counters(gw)
    sizes = (2000, 4000, 9000)
    answers = [sgnet.client_tool(c, "udp", VIP, 53, 24200 + i, n).out.strip()
               for i, n in enumerate(sizes)]
    digests = pod_digests(s)
    whole = [digests.get(pod.udp_digest(pod.stream_pattern(0, n)), [])
             for n in sizes]
    after = counters(gw)
    tap.ok(all(a in POD_NAMES for a in answers)
           and all(w == [a] for w, a in zip(whole, answers)),
           "fragments: datagrams of 2000, 4000 and 9000 bytes, fragmented "
           "by the client's kernel, each reach one pod whole and are "
           "answered", f"answers {answers}, logged by {whole}")
    tap.ok(after["frag_reassembled"] - before["frag_reassembled"] >= 3
           and after["frag_out"] - before["frag_out"] >= 2 + 3 + 7,
           "fragments: reassembled by the gateway, cut again for the pods' "
           "link", *(f"{k}: +{after[k] - before[k]}"
                     for k in ("frag_in", "frag_reassembled", "frag_out")))

    out = sgnet.client_tool(c, "frags", VIP, 53, 24210, 3000,
                            "reverse").out.strip()
    digest = pod.udp_digest(pod.stream_pattern(0, 3000))
    tap.ok(out in POD_NAMES and pod_digests(s).get(digest) == [out],
           "fragments: sent last first, a datagram still arrives whole",
           f"answer {out!r}, logged by {pod_digests(s).get(digest)}")

    before = counters(gw)
    flood = sgnet.client_tool(c, "frag-flood", VIP, 53, 1500, timeout=60)
    web = sgnet.curl(c, f"http://{VIP}/")
    tap.ok(flood.rc == 0 and web.rc == 0
           and web.out.strip() in POD_NAMES,
           "fragments: after 1500 datagrams that never complete, HTTP "
           "through the gateway still works", repr(web),
           f"frag_in +{counters(gw)['frag_in'] - before['frag_in']}")
    # Incomplete datagrams time out after 2 s.
    time.sleep(2.5)
    answer = sgnet.client_tool(c, "udp", VIP, 53, 24220, 4000).out.strip()
    tap.ok(answer in POD_NAMES,
           "fragments: once the flood has timed out, reassembly works again",
           f"answer {answer!r}")


if __name__ == "__main__":
    sys.exit(main())
