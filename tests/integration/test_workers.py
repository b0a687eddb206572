#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""Two workers: replies reach the flows that own them (TAP).

svcgw runs two worker lcores with two queue pairs per port (af_packet
fans packets out over its queues by flow hash). A client's packets and the
pod's replies to the SNAT address arrive on queues chosen independently,
so many replies land on the worker that does not own the flow and must be
handed to the owner. Many concurrent connections and UDP exchanges must
all succeed, and both workers must own flows.

On a machine with fewer than three CPUs the lcores share CPUs (sgnet.
eal_lcores); slower, but the hand-off is exercised the same way.
"""
import sys

import sgnet
from sgnet import NODE_ADDR, NODE_PORT, PODS, VIP, VIP_BULK

N = 200
POD_NAMES = [n for n, _ in PODS]


def main():
    return sgnet.run_test("workers", 7, run)


def run(tap, h):
    s = sgnet.Setup(h, workers=2)
    s.start_case(tap, "svcgw starts with two workers and says ready",
                 *s.settings()["eal"])
    c, gw = s.topo.client, s.gw

    names, bad = sgnet.curl_spread(c, f"http://{VIP}/",
                                   range(25000, 25000 + N), workers=16)
    names2, bad2 = sgnet.curl_spread(c, f"http://{NODE_ADDR}:{NODE_PORT}/",
                                     range(25500, 25500 + N // 2),
                                     workers=16)
    tap.ok(not bad and not bad2,
           f"{N} concurrent connections to the VIP and {N // 2} to the "
           "NodePort all answered", *(bad + bad2)[:10])
    counts = sgnet.spread(n for n in names + names2 if n)
    tap.ok(set(counts) == set(POD_NAMES), "every pod answered",
           f"answers per pod {counts}")

    unames, ubad = sgnet.udp_spread(c, VIP, 53, range(26000, 26000 + N // 2),
                                    workers=16)
    tap.ok(not ubad, f"{N // 2} concurrent UDP exchanges all answered",
           *ubad[:10])

    def flows():
        per = gw.ctl("flows")["/svcgw/flows"]["per_worker"]
        return (len(per) == 2 and all(n > 0 for n in per),
                f"flows per worker: {per}")
    tap.case("both workers own flows", flows)
    try:
        st = gw.ctl("stats")["/svcgw/stats"]
        tap.diag("counters: " + ", ".join(
            f"{k}={v}" for k, v in st.items() if isinstance(v, int) and v))
    except Exception as e:  # only a diagnostic
        tap.diag(f"stats: {e}")

    ip = sgnet.iperf3_reverse(h, s.topo, PODS[0][1], VIP_BULK, 32 << 20)
    tap.ok(ip["received"] is not None
           and 32 << 20 <= ip["received"] <= ip["sent"],
           "iperf3 -R -n 32M with two workers: the client received all "
           "32 MiB the pod sent", f"pod sent {ip['sent']}, client received "
           f"{ip['received']}", ip["error"] or "")
    if ip["bps"]:
        tap.diag(f"iperf3 TCP through svcgw (2 workers, af_packet on veths): "
                 f"{ip['bps'] / 1e9:.2f} Gbit/s")

    rc = gw.stop()
    tap.ok(rc == 0, "SIGTERM: exit 0", f"exit code {rc}", gw.tail())


if __name__ == "__main__":
    sys.exit(main())
