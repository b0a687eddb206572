#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""A SYN flood against a gateway with a new-flow rate (TAP).

One gateway in nat mode on the standard services, with flow_rate 20: each
worker makes at most 20 new flows a second, in bursts of up to a second's
worth. While a paced download runs through VIP:80, the client sends
2,000 SYNs to VIP:80 from as many source ports (client.py syn-flood,
made by hand with scapy):

  - the gateway makes no more flows than the rate allows over the
    flood's length, and drops the rest of the SYNs, counted as
    drop_flow_rate: a nat flow without state could not be translated
    back, so there is nothing else to do with it;
  - the download, a flow made before the flood, finishes with every byte;
  - once the bucket has filled again, a new connection goes through.
"""
import sys
import time

import sgnet
from sgnet import VIP

RATE = 20
SYNS = 2000
SYN_PORT = 30000
DOWNLOAD_BYTES = 4_000_000
DOWNLOAD_SECONDS = 4


def main():
    return sgnet.run_test("flood", 5, run)


def run(tap, h):
    s = sgnet.Setup(h, extra={"flow_rate": RATE})
    s.start_case(tap, "svcgw starts and says ready")
    c, gw = s.topo.client, s.gw
    dl = sgnet.Download(h, c, sgnet.url(VIP, 80, "/stream"), DOWNLOAD_BYTES,
                        DOWNLOAD_SECONDS, "flood")
    serving = dl.pod()

    before = gw.stats()
    t0 = time.monotonic()
    flood = sgnet.client_tool(c, "syn-flood", VIP, 80, SYN_PORT, SYNS,
                              timeout=120)
    elapsed = time.monotonic() - t0
    time.sleep(0.5)    # the last SYNs through the worker
    after = gw.stats()
    made = after["flow_new"] - before["flow_new"]
    refused = after["drop_flow_rate"] - before["drop_flow_rate"]
    # The bucket starts at most full (a second's worth) and refills at
    # RATE a second while the flood lasts.
    most = RATE + int(RATE * (elapsed + 0.5)) + 1
    tap.ok(flood.rc == 0 and 0 < made <= most and made + refused == SYNS,
           f"{SYNS} SYNs in {elapsed:.1f} s: {made} new flows (at most "
           f"{most}), the rest dropped as over the rate",
           f"flows made {made}, drop_flow_rate {refused}, {flood!r}")

    ok, detail = dl.finish()
    tap.ok(ok and serving is not None,
           "a download through the gateway during the flood finishes "
           "whole", detail, f"served by {serving}")

    time.sleep(1.5)    # the bucket full again
    web = sgnet.curl(c, f"http://{VIP}/")
    tap.ok(web.rc == 0 and web.out.strip() in dict(sgnet.PODS),
           "after the flood, a new connection goes through", repr(web))
    rc = gw.stop()
    tap.ok(rc == 0, "SIGTERM: exit 0", f"exit code {rc}", gw.tail())


if __name__ == "__main__":
    sys.exit(main())
