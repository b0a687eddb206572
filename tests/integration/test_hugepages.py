#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""svcgw on hugepages, as in production (TAP).

Every other test runs EAL with --no-huge so it needs nothing of the
machine. This one reserves 2 MiB hugepages (put back afterwards), mounts a
hugetlbfs of its own for EAL's --huge-dir, and checks that svcgw starts,
forwards a LoadBalancer VIP and a NodePort to every pod, and stops cleanly.
"""
import os
import sys

import sgnet
from sgnet import NODE_ADDR, NODE_PORT, PODS, VIP

POD_NAMES = [n for n, _ in PODS]
MEGABYTES = 512


def main():
    return sgnet.run_test("huge", 4, run)


def run(tap, h):
    mnt = sgnet.hugepages(h, MEGABYTES + 64)
    eal = ["--file-prefix=" + h.prefix, "--huge-dir=" + mnt,
           "-m", str(MEGABYTES), "--no-pci"] + sgnet.eal_lcores(1)
    s = sgnet.Setup(h, extra={"eal": eal})
    s.start_case(tap, "svcgw starts on hugepages and says ready", *eal)
    c, gw = s.topo.client, s.gw

    used = [f for f in os.listdir(mnt) if f.startswith(h.prefix + "map_")]
    tap.ok(used, "EAL's memory is on the hugetlbfs mount",
           f"{len(used)} page files in {mnt}")

    names, bad = sgnet.curl_spread(c, f"http://{VIP}/", range(26000, 26060))
    names2, bad2 = sgnet.curl_spread(c, f"http://{NODE_ADDR}:{NODE_PORT}/",
                                     range(26100, 26130))
    counts = sgnet.spread(n for n in names + names2 if n)
    tap.ok(not bad and not bad2 and set(counts) == set(POD_NAMES),
           "the VIP and the NodePort reach every pod",
           f"answers per pod {counts}", *(bad + bad2)[:10])

    rc = gw.stop()
    tap.ok(rc == 0, "SIGTERM: exit 0", f"exit code {rc}", gw.tail())


if __name__ == "__main__":
    sys.exit(main())
