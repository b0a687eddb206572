#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""What a connection tracker owes its flows beyond the first packet (TAP).

One gateway in nat mode on the standard services plus "closed" (VIP:54/UDP
to a pod port nobody listens on):

  UDP flows and endpoint conditions. A client keeps one UDP source port.
  When its pod stops serving (ready and serving false, terminating), its
  next datagram goes to a pod that serves -- kube-proxy's stale UDP
  conntrack entry would keep sending it into the void until the timeout.
  A pod that is terminating but still serving keeps its flows, while new
  flows avoid it.

  ICMP errors about a flow. A pod's "port unreachable" reaches the client
  translated (socat sees "Connection refused" on its connected socket);
  a router's "fragmentation needed" about a reply reaches the pod
  translated, and the pod's kernel lowers its path MTU toward the SNAT
  address. The captures of both are checked: addresses, quoted tuple and
  every checksum, recomputed from the raw bytes.

  IPv4 fragments. Datagrams larger than the MTU, fragmented by the
  client's kernel or sent by hand in reverse order, reach one pod whole
  (the pod logs length and digest); the gateway reassembles and cuts them
  again for the pods' link. A flood of fragments that never complete does
  not stop other traffic, and once it has timed out reassembly works
  again.
"""
import ipaddress
import struct
import sys
import time

import pod
import sgnet
from sgnet import CLIENT_ADDR, PODS, SNAT_ADDR, UDP_PORT, VIP

CLOSED_PORT = 54
CLOSED_TARGET = 5999
ROUTER = "198.51.100.254"  # a hop on the client's side, for ICMP errors
REPORTED_MTU = 1300
POD_ADDR = dict(PODS)


def services(conditions=None):
    """The standard services plus "closed"; conditions: {pod: {ready: ...}}
    applied to the echo service's endpoints."""
    conditions = conditions or {}
    svcs = sgnet.standard_services()
    for s in svcs:
        if s["name"] == "echo":
            s["endpoints"] = [sgnet.endpoint(a, **conditions.get(n, {}))
                              for n, a in PODS]
    svcs.append(sgnet.service("closed",
                              [sgnet.port("UDP", CLOSED_PORT, CLOSED_TARGET)],
                              sgnet.pod_endpoints(), vips=[VIP]))
    return svcs


def counters(gw):
    return gw.ctl("stats")["/svcgw/stats"]


def udp_answer(c, port):
    return sgnet.udp_request(c, VIP, 53, local_port=port).out.strip()


def ip4(b):
    return str(ipaddress.IPv4Address(bytes(b)))


def ones_sum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return s


def icmp_errors(path):
    """[(outer src, outer dst, type, code, mtu, quoted (src, sport, dst,
    dport), checksums ok)] of the IPv4 ICMP errors in a pcap."""
    from scapy.utils import RawPcapReader
    out = []
    for frame, _ in RawPcapReader(path):
        frame = bytes(frame)
        if frame[12:14] != b"\x08\x00":
            continue
        ip = frame[14:]
        ihl = (ip[0] & 15) * 4
        total = struct.unpack("!H", ip[2:4])[0]
        ip = ip[:total]
        if ip[9] != 1 or ip[ihl] not in (3, 11, 12):
            continue
        icmp = ip[ihl:]
        q = icmp[8:]
        qihl = (q[0] & 15) * 4
        quoted = (ip4(q[12:16]), struct.unpack("!H", q[qihl:qihl + 2])[0],
                  ip4(q[16:20]),
                  struct.unpack("!H", q[qihl + 2:qihl + 4])[0])
        ok = (ones_sum(ip[:ihl]) == 0xffff and ones_sum(icmp) == 0xffff
              and ones_sum(q[:qihl]) == 0xffff)
        out.append((ip4(ip[12:16]), ip4(ip[16:20]), icmp[0],
                    icmp[1], struct.unpack("!H", icmp[6:8])[0], quoted, ok))
    return out


def main():
    sgnet.require_root()
    tap = sgnet.Tap(14)
    h = sgnet.Harness("conntrk")
    try:
        run(tap, h)
    except Exception as e:
        tap.diag(f"aborted: {type(e).__name__}: {e}")
    finally:
        h.close()
    return tap.finish()


def run(tap, h):
    s = sgnet.Setup(h, services=services())
    try:
        s.start()
        tap.ok(True, "svcgw starts and says ready")
    except Exception as e:
        tap.ok(False, "svcgw starts and says ready", str(e),
               s.gw.tail() if s.gw else "")
        raise
    udp_flows(tap, s)
    icmp_errors_cases(tap, h, s)
    fragments(tap, s)
    rc = s.gw.stop()
    tap.ok(rc == 0, "SIGTERM: exit 0", f"exit code {rc}", s.gw.tail())


def reload_with(s, conditions):
    sgnet.write_conf(s.conf_path, s.settings(services(conditions)))
    return s.gw.reload()


def udp_flows(tap, s):
    c, gw = s.topo.client, s.gw
    first = udp_answer(c, 24000)
    gone = {"ready": False, "serving": False, "terminating": True}
    before = counters(gw)["flow_evicted"]
    r = reload_with(s, {first: gone})
    again = udp_answer(c, 24000)
    evicted = counters(gw)["flow_evicted"] - before
    tap.ok(first in POD_ADDR and r == "reloaded" and again in POD_ADDR
           and again != first and evicted >= 1,
           "UDP: a flow whose pod stops serving moves to a serving pod on "
           "its next datagram",
           f"before {first!r}, reload {r!r}, after {again!r}, "
           f"flows evicted {evicted}")

    # The flow of another client port, to a pod that will terminate but
    # keep serving; the first pod is still out.
    kept = udp_answer(c, 24001)
    draining = {"ready": False, "serving": True, "terminating": True}
    r = reload_with(s, {first: gone, kept: draining})
    still = udp_answer(c, 24001)
    fresh = udp_answer(c, 24002)
    tap.ok(kept in POD_ADDR and r == "reloaded" and still == kept,
           "UDP: a flow to a pod terminating but still serving stays there",
           f"before {kept!r}, reload {r!r}, after {still!r}")
    tap.ok(fresh in POD_ADDR and fresh not in (first, kept),
           "UDP: a new flow avoids both the gone and the terminating pod",
           f"gone {first}, terminating {kept}, new flow to {fresh!r}")
    reload_with(s, {})


def icmp_errors_cases(tap, h, s):
    c, p, gw = s.topo.client, s.topo.pods, s.gw

    # Port unreachable from the pod, about a NATed datagram.
    cap = sgnet.Capture(h, c, "eth0", "icmp", h.path("client-icmp.pcap"))
    before = counters(gw)["icmp_xlate"]
    r = sgnet.udp_request(c, VIP, CLOSED_PORT, local_port=24100)
    time.sleep(0.3)
    errs = icmp_errors(cap.stop())
    tap.ok(r.rc not in (0, None) and "refused" in r.err.lower()
           and counters(gw)["icmp_xlate"] - before >= 1,
           "ICMP: a pod's port unreachable reaches the client, whose socket "
           "sees the connection refused", repr(r))
    want = (VIP, CLIENT_ADDR, 3, 3, (CLIENT_ADDR, 24100, VIP, CLOSED_PORT))
    tap.ok(errs and all((e[0], e[1], e[2], e[3], e[5]) == want and e[6]
                        for e in errs),
           "ICMP: on the client's link it comes from the VIP and quotes "
           "client -> VIP, with valid IP, ICMP and quoted checksums",
           *map(repr, errs))

    # Fragmentation needed from a router on the client's side, about a reply.
    sgnet.run(["ip", "addr", "add", f"{ROUTER}/24", "dev", "eth0"], ns=c)
    target = udp_answer(c, 24101)
    pod_addr = POD_ADDR.get(target)
    snat_port = next((port for kind, ip, port, _ in reversed(s.pods.log(target))
                      if kind == "udp" and ip == SNAT_ADDR), None) \
        if target in POD_ADDR else None
    cap = sgnet.Capture(h, p, "eth0", "icmp", h.path("pods-icmp.pcap"))
    sgnet.client_tool(c, "frag-needed", ROUTER, VIP, REPORTED_MTU, VIP, 53,
                      CLIENT_ADDR, 24101)
    time.sleep(0.3)
    errs = icmp_errors(cap.stop())
    want = (SNAT_ADDR, pod_addr, 3, 4, REPORTED_MTU,
            (pod_addr, UDP_PORT, SNAT_ADDR, snat_port))
    tap.ok(pod_addr is not None and errs
           and all(e[:6] == want and e[6] for e in errs),
           "ICMP: a router's fragmentation needed about a reply reaches the "
           "pod from the SNAT address, quoting pod -> SNAT, checksums valid",
           f"pod {target!r}, SNAT port {snat_port}", *map(repr, errs))
    route = sgnet.run(["ip", "route", "get", SNAT_ADDR, "from", pod_addr or
                       "0.0.0.0"], ns=p, check=False).stdout
    tap.ok(f"mtu {REPORTED_MTU}" in route,
           "ICMP: the pod's kernel takes it: path MTU to the SNAT address "
           f"lowered to {REPORTED_MTU}", route.strip())


def pod_digests(s):
    """{digest: [pods that logged it]} over every pod's UDP log."""
    out = {}
    for name, _ in PODS:
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
    tap.ok(all(a in POD_ADDR for a in answers)
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
    tap.ok(out in POD_ADDR and pod_digests(s).get(digest) == [out],
           "fragments: sent last first, a datagram still arrives whole",
           f"answer {out!r}, logged by {pod_digests(s).get(digest)}")

    before = counters(gw)
    flood = sgnet.client_tool(c, "frag-flood", VIP, 53, 1500, timeout=60)
    web = sgnet.curl(c, f"http://{VIP}/")
    tap.ok(flood.rc == 0 and web.rc == 0
           and web.out.strip() in POD_ADDR,
           "fragments: after 1500 datagrams that never complete, HTTP "
           "through the gateway still works", repr(web),
           f"frag_in +{counters(gw)['frag_in'] - before['frag_in']}")
    # Incomplete datagrams time out after 2 s.
    time.sleep(2.5)
    answer = sgnet.client_tool(c, "udp", VIP, 53, 24220, 4000).out.strip()
    tap.ok(answer in POD_ADDR,
           "fragments: once the flood has timed out, reassembly works again",
           f"answer {answer!r}")


if __name__ == "__main__":
    sys.exit(main())
