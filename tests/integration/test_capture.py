#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""What svcgw puts on the wire, checked on captures (TAP).

For each of three exchanges -- TCP to the VIP, TCP to the NodePort, UDP to
the VIP -- tcpdump records the client's link and the pods' link while one
client makes one connection, then check_capture.py checks that the client
only ever talked to VIP:port (or node:nodePort), that the pod only ever saw
SNAT:S -> pod:targetPort, that the same packets crossed in each direction,
and that every IPv4, TCP and UDP checksum on both links is valid.
"""
import sys
import time

import check_capture
import sgnet
from sgnet import (CLIENT_ADDR, HTTP_PORT, NODE_ADDR, NODE_PORT, PODS,
                   SNAT_ADDR, UDP_PORT, VIP)

EXCHANGES = (
    # name, proto, destination, client port, target port
    ("TCP to the VIP", "tcp", (VIP, 80), 23000, HTTP_PORT),
    ("TCP to the NodePort", "tcp", (NODE_ADDR, NODE_PORT), 23001, HTTP_PORT),
    ("UDP to the VIP", "udp", (VIP, 53), 23002, UDP_PORT),
)
CHECKS = 5  # results per exchange from check_capture.check()


def main():
    return sgnet.run_test("capture", 1 + len(EXCHANGES) * (1 + CHECKS) + 1, run)


def run(tap, h):
    s = sgnet.Setup(h)
    s.start_case(tap, "svcgw starts and says ready")
    pods = {a for _, a in PODS}
    for i, (name, proto, dst, cport, tport) in enumerate(EXCHANGES):
        cpcap, ppcap = h.path(f"client{i}.pcap"), h.path(f"pods{i}.pcap")
        c = sgnet.Capture(h, s.topo.client, "eth0",
                          f"ip and {proto} port {cport}", cpcap)
        p = sgnet.Capture(h, s.topo.pods, "eth0",
                          f"ip and {proto} port {tport}", ppcap)
        if proto == "tcp":
            r = sgnet.curl(s.topo.client, f"http://{dst[0]}:{dst[1]}/",
                           local_port=cport)
            answered = r.rc == 0 and r.out.strip() in dict(PODS)
        else:
            r = sgnet.udp_request(s.topo.client, dst[0], dst[1],
                                  local_port=cport)
            answered = r.out.strip() in dict(PODS)
        # The last ACK and FIN can trail the client's exit a little.
        time.sleep(0.5)
        c.stop()
        p.stop()
        tap.ok(answered, f"{name}: one exchange answered by a pod", repr(r))
        results, info = check_capture.check(
            cpcap, ppcap, proto, (CLIENT_ADDR, cport), dst, SNAT_ADDR,
            pods, tport)
        for check_name, ok, detail in results:
            tap.ok(ok, f"{name}: {check_name}", *detail)
        tap.diag(*info)
    rc = s.gw.stop()
    tap.ok(rc == 0, "SIGTERM: exit 0", f"exit code {rc}", s.gw.tail())


if __name__ == "__main__":
    sys.exit(main())
