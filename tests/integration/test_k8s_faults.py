#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""svcgw against a misbehaving Kubernetes API server (TAP).

svcgw reads the stand-in (tests/apiserver) with in-cluster credentials: a
service-account directory of its own (kubernetes.service_account) and the
KUBERNETES_SERVICE_* variables. A long paced download runs through a
LoadBalancer VIP the whole time. The stand-in then injects every fault it
has, one after the other: watches dropped (FIN and RST), HTTP 500 and 429
(with Retry-After), responses stalled before their headers and before the
first event, a malformed line in a watch, compaction (410 Expired, a
relist that turns what vanished into deletions), events split across
chunks at random bytes, delayed events, the server going away, and the
service-account token rotated with the old one revoked. After each, an
EndpointSlice change made during the fault must reach the tables and the
traffic, and the download must still be running. At the end the download
is intact and the tables hold exactly what the API server holds.

The client backs off 0.8 s doubling to 30 s between failures and starts
again from 0.8 s after a successful list (or a watch that stood 30 s):
compactions come between the other faults so that the backoff stays short
and the test does not mostly wait.
"""
import subprocess
import sys
import time

import pod
import sgnet
from sgnet import PODS, VIP, VIP_BULK, VIP_EMPTY

ADDR = dict(PODS)
STREAM_BYTES = 6_000_000
STREAM_SECONDS = 90
# The endpoints of web after each fault, in turn: every change is visible.
SUBSETS = (["pod-a", "pod-b"], ["pod-b", "pod-c"], ["pod-a", "pod-c"],
           ["pod-a", "pod-b", "pod-c"], ["pod-c"], ["pod-a"])


def api_service(name, port, vip):
    import apiserver
    status = {"loadBalancer": {"ingress": [{"ip": vip}]}}
    return apiserver.service(name, [("http", "TCP", port, 8080)],
                             status=status,
                             allocateLoadBalancerNodePorts=False)


def api_slice(name, service, pods):
    import apiserver
    return apiserver.endpoint_slice(name, service, [ADDR[p] for p in pods],
                                    [("http", "TCP", 8080)])


def expected_stream(n):
    block = pod.stream_pattern(0, 251)
    return (block * (n // 251 + 1))[:n]


def backends(gw, name):
    t = sgnet.service_table(gw, name)
    return sorted({a.split(":")[0] for _, be in t.values() for a in be}) \
        if t else None


def main():
    return sgnet.run_test("k8sflt", 24, run)


def run(tap, h):
    topo = sgnet.Topology(h).create(1)
    pods = sgnet.Pods(h, topo).start()
    c = topo.client
    srv = sgnet.apiserver(h, topo)
    sa = h.path("serviceaccount")
    env = srv.write_in_cluster(sa)
    settings = sgnet.gateway_conf(h.prefix, [], extra={
        "kubernetes": sgnet.k8s_in_cluster(sa, watch_timeout=60,
                                           request_timeout=10)})
    conf = sgnet.write_conf(h.path("svcgw.conf"), settings)
    srv.create(api_service("web", 80, VIP))
    srv.create(api_slice("web-a", "web", [n for n, _ in PODS]))
    srv.create(api_service("bulk", 80, VIP_BULK))
    srv.create(api_slice("bulk-a", "bulk", ["pod-a"]))
    srv.create(api_service("extra", 80, VIP_EMPTY))
    srv.create(api_slice("extra-a", "extra", ["pod-b"]))

    gw = sgnet.Svcgw(h, topo, conf, h.prefix, env=env)
    try:
        gw.start()
        ok = sgnet.wait_until(lambda: sgnet.sync_state(gw)["served"] == 3, 15)
        tap.ok(ok, "svcgw with in-cluster credentials (service_account, "
               "KUBERNETES_SERVICE_*) syncs three services", gw.tail(8))
    except Exception as e:
        tap.ok(False, "svcgw with in-cluster credentials syncs", str(e),
               gw.tail())
        raise

    body, hdr = h.path("stream.bin"), h.path("stream.hdr")
    dl = h.spawn(["curl", "-sS", "--max-time", str(STREAM_SECONDS + 60),
                  "--local-port", "29000", "-o", body, "-D", hdr,
                  f"http://{VIP_BULK}/stream?bytes={STREAM_BYTES}"
                  f"&seconds={STREAM_SECONDS}"], ns=c,
                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    time.sleep(1)
    tap.ok(dl.poll() is None, f"a {STREAM_SECONDS} s download through "
           f"{VIP_BULK} is running", dl.stderr.read() if dl.poll() else "")

    state = {"step": 0, "port": 30000}

    def change_and_check(name, during=None, after=None, timeout=40):
        """Change web's endpoints (during the fault: `during` runs first),
        end the fault (`after`), then the tables and traffic must follow."""
        want = SUBSETS[state["step"] % len(SUBSETS)]
        state["step"] += 1
        if during:
            during()
        srv.apply(api_slice("web-a", "web", want))
        if after:
            after()
        addrs = sorted(ADDR[p] for p in want)
        got = sgnet.wait_until(lambda: backends(gw, "default/web") == addrs,
                               timeout, 0.1)
        ports = range(state["port"], state["port"] + 8)
        state["port"] += 8
        names, bad = sgnet.curl_spread(c, f"http://{VIP}/", ports)
        srv.clear_faults()
        running = dl.poll() is None
        tap.ok(got and not bad and set(names) <= set(want) and running,
               f"{name}: the change reaches the tables and the traffic; the "
               "download goes on", f"want {want}, tables "
               f"{backends(gw, 'default/web')}, answers {sgnet.spread(names)}",
               f"download running: {running}", *bad[:5],
               *gw.tail(6).splitlines())

    # A successful list resets the client's backoff (as client-go's
    # reflector); failures seconds apart would otherwise grow it to its
    # 30 s cap and the test would mostly wait. So a compaction (the watch
    # from an old resourceVersion gets 410 Expired, svcgw lists afresh)
    # comes after every few faults.
    compactions = {"n": 0, "lists": None}

    def compaction():
        compactions["n"] += 1
        compactions["lists"] = sgnet.sync_state(gw)["lists"][0]
        change_and_check(f"history compacted, watches dropped (410 Expired, "
                         f"a relist; #{compactions['n']})",
                         lambda: (srv.drop_watches(), srv.compact()))
        relisted = sgnet.wait_until(
            lambda: sgnet.sync_state(gw)["lists"][0] > compactions["lists"],
            40, 0.1)
        return relisted

    change_and_check("watches dropped (FIN)", srv.drop_watches)
    change_and_check("watches reset (RST)",
                     lambda: srv.drop_watches(reset=True))

    # Compaction while svcgw cannot watch: a service deleted meanwhile
    # reaches it only through the relist, as a deletion.
    lists = sgnet.sync_state(gw)["lists"][0]
    change_and_check("history compacted while the watches are down (410 "
                     "Expired, a relist)", lambda: (
                         srv.drop_watches(),
                         srv.delete("services", "extra", namespace="default"),
                         srv.compact()))
    # Each resource relists on its own: Services may come after the slices.
    gone = sgnet.wait_until(lambda: sgnet.sync_state(gw)["lists"][0] > lists
                            and not sgnet.service_table(gw, "default/extra"),
                            40, 0.1)
    st = sgnet.sync_state(gw)
    r = sgnet.curl(c, f"http://{VIP_EMPTY}/", max_time=2)
    tap.ok(gone and r.rc != 0,
           "the relist turns the service deleted meanwhile into a deletion",
           f"service lists {lists} -> {st['lists'][0]}", repr(r))

    change_and_check("HTTP 500 for the next requests", lambda: (
        srv.fail_next(4, 500), srv.drop_watches()))
    relisted = compaction()
    change_and_check("HTTP 429 with Retry-After", lambda: (
        srv.fail_next(4, 429, retry_after=1), srv.drop_watches()))
    relisted = compaction() and relisted
    change_and_check("responses stalled 3 s before their headers", lambda: (
        srv.stall(3, n=3, where="headers"), srv.drop_watches()))
    change_and_check("watches stalled 3 s before their first event",
                     lambda: (srv.stall(3, n=3, where="body",
                                        match={"verb": "watch"}),
                              srv.drop_watches()))
    change_and_check("a malformed line in the watches", srv.inject_watch_line)
    relisted = compaction() and relisted
    change_and_check("events split across chunks at random bytes", lambda: (
        srv.split_chunks(max_size=7), srv.drop_watches()))
    change_and_check("events delayed by 2 s", lambda: srv.delay_events(2))

    before = {}

    def away():
        srv.stop()
        before["err"] = sgnet.wait_until(
            lambda: sgnet.sync_state(gw)["last_error"], 10)
        before["curl"] = sgnet.curl(c, f"http://{VIP}/")

    change_and_check("the API server unreachable, then back", away,
                     srv.start)
    tap.ok(before.get("err") and before["curl"].rc == 0,
           "while it was unreachable: the error in /svcgw/sync, the tables "
           "kept forwarding", repr(before))
    relisted = compaction() and relisted
    tap.ok(relisted, "each compaction was followed by a relist of the "
           "Services", f"{compactions['n']} compactions")

    change_and_check("the service-account token rotated, the old one "
                     "revoked", lambda: (
                         srv.rotate_in_cluster_token(sa, revoke_old=True),
                         srv.drop_watches()))

    try:
        rc = dl.wait(STREAM_SECONDS + 60)
    except subprocess.TimeoutExpired:
        rc = None
    try:
        with open(body, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        data = b""
    intact = data == expected_stream(STREAM_BYTES)
    tap.ok(rc == 0 and intact, f"the download completes, all {STREAM_BYTES} "
           "bytes intact", f"curl exit {rc}, {len(data)} bytes, intact "
           f"{intact}", dl.stderr.read() if dl.stderr else "")

    st = sgnet.sync_state(gw)
    tables = {n: backends(gw, f"default/{n}")
              for n in ("web", "bulk", "extra")}
    want_web = sorted(ADDR[p] for p in SUBSETS[(state["step"] - 1) %
                                                len(SUBSETS)])
    tap.ok(st["synced"] and st["served"] == 2 and sum(st["failures"]) > 0 and
           tables == {"web": want_web, "bulk": [ADDR["pod-a"]], "extra": None},
           "afterwards: synced, the tables hold what the API server holds, "
           "the failures counted", repr(tables), repr(st))
    rc = gw.stop()
    tap.ok(rc == 0, "SIGTERM: exit 0", f"exit {rc}", gw.tail())


if __name__ == "__main__":
    sys.exit(main())
