#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""Kubernetes Service semantics in the data plane, IPv4 and IPv6 (TAP).

One svcgw, default_mode nat, dual-stack services (each has an IPv4 and an
IPv6 VIP and dual-stack pods), TCP 80 -> 8080 unless said otherwise:

  sticky    .120 ::120  sessionAffinity ClientIP, timeoutSeconds 2 (8 in
                        the scale-up cases at the end)
  ranged    .121 ::121  loadBalancerSourceRanges 198.51.100.0/25 and
                        2001:db8:c::/120; NodePort 30121
  local     .122 ::122  externalTrafficPolicy Local, no mode; NodePort
                        30122, UDP 53 too
  ready     .123 ::123  a ready; b serving and terminating; c neither
  fallback  .124 ::124  none ready: a serving and terminating, b only
                        terminating, c nothing
  drain     .125 ::125  all ready; later the pods serving two long
                        downloads become terminating (and not serving)
  multi     .126 ::126  TCP 80 -> 8080, TCP 8081 -> 8081, TCP 53 -> 8080,
                        pods a, b; and on the same VIP the service
  multi-dns             UDP 53 -> 5353, pod c only

(VIPs 192.0.2.x and 2001:db8:a::x.) The client has a second address
outside the source ranges (198.51.100.200, 2001:db8:c::200).

Proved, per family: a ClientIP client's connections from 20 source ports
all reach one pod (the same 20 ports to a service without affinity reach
several); only the listed prefixes reach the ranged VIP, others are
dropped and counted, while its NodePort serves everyone; Local keeps the
client's address with nat as the default mode; new connections go to the
ready endpoints only, or with none ready to the serving terminating ones;
several ports of one service, and TCP and UDP on one port number of one
VIP, each reach their own target port and pods. Then, by SIGHUP: two long
downloads whose pods become terminating complete intact while new
connections avoid those pods; affinity switched off spreads the client,
switched on again pins it; when its pod goes away the client moves to
one other pod and stays; after the affinity timeout the client is still
served. Affinity is remembered, not only hashed: 20 more client addresses
per family keep their pods when a third pod joins (Maglev alone would move
about a third of them), and spread onto the new pod once they stayed away
past the timeout.
"""
import sys
import time

import sgnet
from sgnet import CLIENT6, CLIENT_ADDR, PODS, PODS6, SNAT6, SNAT_ADDR

OUT4, OUT6 = "198.51.100.200", "2001:db8:c::200"
CLIENTS = ([f"198.51.100.{130 + i}" for i in range(20)],
           [f"2001:db8:c::{130 + i}" for i in range(20)])
RANGES = ["198.51.100.0/25", "2001:db8:c::/120"]
RANGED_NODE_PORT = 30121
LOCAL_NODE_PORT = 30122
AFFINITY_TIMEOUT = 2
SCALE_UP_TIMEOUT = 8
POD_NAMES = [n for n, _ in PODS]
N = 20
STREAM_BYTES, STREAM_SECONDS = 6_000_000, 5


def vips(last):
    return (f"192.0.2.{last}", f"2001:db8:a::{last}")


def eps(names=POD_NAMES, **cond):
    """Endpoints of both families for pods `names`, with conditions."""
    return [sgnet.endpoint(a, **cond) for n, a in PODS + PODS6 if n in names]


def web(name, last, endpoints, **more):
    s = sgnet.service(name, [sgnet.port("TCP", 80, 8080)], endpoints,
                      vips=vips(last))
    s.update(more)
    return s


def services(affinity=True, sticky_gone=(), draining=(),
             timeout=AFFINITY_TIMEOUT):
    """The services above; sticky_gone: endpoint addresses left out of
    sticky; draining: pods of drain that are terminating."""
    sticky = web("sticky", 120, [e for e in eps()
                                 if e["address"] not in sticky_gone])
    if affinity:
        sticky.update(session_affinity="ClientIP", affinity_timeout=timeout)
    ranged = sgnet.service("ranged", [sgnet.port(
        "TCP", 80, 8080, node_port=RANGED_NODE_PORT)], eps(), vips=vips(121))
    ranged["source_ranges"] = RANGES
    local = sgnet.service("local", [
        sgnet.port("TCP", 80, 8080, node_port=LOCAL_NODE_PORT, name="http"),
        sgnet.port("UDP", 53, 5353, name="dns")], eps(), vips=vips(122))
    local["external_traffic_policy"] = "Local"
    ready = web("ready", 123,
                eps(["pod-a"]) +
                eps(["pod-b"], ready=False, serving=True, terminating=True) +
                eps(["pod-c"], ready=False, serving=False))
    fallback = web("fallback", 124,
                   eps(["pod-a"], ready=False, serving=True, terminating=True)
                   + eps(["pod-b"], ready=False, serving=False,
                         terminating=True)
                   + eps(["pod-c"], ready=False, serving=False))
    live = [n for n in POD_NAMES if n not in draining]
    drain = web("drain", 125, eps(live) + eps(
        draining, ready=False, serving=False, terminating=True))
    multi = sgnet.service("multi", [
        sgnet.port("TCP", 80, 8080, name="http"),
        sgnet.port("TCP", 8081, 8081, name="alt"),
        sgnet.port("TCP", 53, 8080, name="dns-tcp")],
        eps(["pod-a", "pod-b"]), vips=vips(126))
    multi_dns = sgnet.service("multi-dns", [sgnet.port("UDP", 53, 5353)],
                              eps(["pod-c"]), vips=vips(126))
    return [sticky, ranged, local, ready, fallback, drain, multi, multi_dns]


def main():
    return sgnet.run_test("semantic", 1 + 2 * 6 + 9, run)


def names_from(c, vip, ports, port=80, local_addr=None, max_time=5):
    return sgnet.curl_spread(c, sgnet.url(vip, port), list(ports),
                             local_addr=local_addr, max_time=max_time)


def whoami(c, vip, port, ports):
    res = sgnet.parallel(lambda p: sgnet.curl(
        c, sgnet.url(vip, port, "/whoami"), local_port=p), list(ports))
    out = [r.out.split() for r in res]
    bad = [repr(r) for r in res if r.rc != 0]
    return [o for o in out if len(o) == 5], bad


def run(tap, h):
    s = sgnet.Setup(h, services=services(), ipv6=True, return_routes=True,
                    http_ports=(8080, 8081))
    s.start_case(tap, "svcgw starts with the semantics services, dual-stack, "
                 "and says ready")
    c, gw = s.topo.client, s.gw
    sgnet.run(["ip", "-n", c, "addr", "add", f"{OUT4}/24", "dev", "eth0"])
    sgnet.run(["ip", "-n", c, "addr", "add", f"{OUT6}/64", "dev", "eth0"])

    # Two long downloads, then their pods start terminating (SIGHUP); the
    # checks come at the end, after the downloads have run their course.
    downloads = [sgnet.Download(h, c, sgnet.url(vips(125)[f], 80, "/stream"),
                                STREAM_BYTES, STREAM_SECONDS, f"drain{f}",
                                local_port=35000 + f) for f in (0, 1)]
    drained = [d.pod() for d in downloads]
    if None in drained:
        tap.diag(f"downloads not running: {drained}")
    draining = sorted({p for p in drained if p})
    sgnet.write_conf(s.conf_path, s.settings(services(draining=draining)))
    drain_reload = gw.reload()

    sticky_pod = {}
    for fam, fam_name in ((0, "IPv4"), (1, "IPv6")):
        sticky_pod[fam] = family_cases(tap, s, fam, fam_name)
    sticky_end = time.monotonic()

    # -- endpoints that start terminating ---------------------------------
    spread, bad = {}, []
    for f in (0, 1):
        names, b = names_from(c, vips(125)[f], range(36000 + 100 * f,
                                                     36000 + 100 * f + N))
        spread[f], bad = sgnet.spread(names), bad + b
    tap.ok(drain_reload == "reloaded" and draining and not bad and
           all(set(spread[f]) and not set(spread[f]) & set(draining)
               for f in (0, 1)),
           f"SIGHUP marks the pods of two running downloads terminating: "
           f"new connections ({N} per family) avoid them",
           f"reload: {drain_reload}, terminating: {draining}",
           f"answers {spread}", *bad[:5])
    done = [d.finish() for d in downloads]
    tap.ok(all(ok for ok, _ in done),
           f"both downloads ({STREAM_BYTES} bytes each, IPv4 and IPv6) "
           f"complete intact from their terminating pods",
           *(f"{f}: served by {drained[f]}, {d}" for f, (_, d)
             in enumerate(done)))

    # -- affinity at run time ------------------------------------------------
    time.sleep(max(0.0, AFFINITY_TIMEOUT + 0.5 -
                   (time.monotonic() - sticky_end)))
    got = {f: names_from(c, vips(120)[f], range(37000 + 100 * f,
                                                37000 + 100 * f + 5))
           for f in (0, 1)}
    tap.ok(all(not b and None not in n for n, b in got.values()),
           f"{AFFINITY_TIMEOUT} s after its last connection, past the "
           "affinity timeout, the client is still served",
           *(f"{f}: {sgnet.spread(n)} {b[:3]}" for f, (n, b) in got.items()))

    draining_conf = dict(draining=draining)
    for affinity, ports in ((False, 38000), (True, 38500)):
        sgnet.write_conf(s.conf_path, s.settings(
            services(affinity=affinity, **draining_conf)))
        res = gw.reload()
        got = {f: names_from(c, vips(120)[f], range(ports + 100 * f,
                                                    ports + 100 * f + N))
               for f in (0, 1)}
        pods = {f: set(n) for f, (n, _) in got.items()}
        bad = [x for _, b in got.values() for x in b]
        if affinity:
            ok = all(pods[f] == {sticky_pod[f]} for f in (0, 1))
            what = "on again: the client's connections all go to its pod " \
                "again"
        else:
            ok = all(len(pods[f]) >= 2 and None not in pods[f]
                     for f in (0, 1))
            what = "off: the same client's connections spread over the pods"
        tap.ok(res == "reloaded" and not bad and ok,
               f"SIGHUP turning ClientIP affinity {what} (both families)",
               f"reload: {res}", f"pods per family {pods}, "
               f"pinned before {sticky_pod}", *bad[:5])

    # Each family's pinned pod leaves (its address of that family): two
    # pods are left to choose from. (No pinned pod: a failed case above;
    # then nothing leaves, and this case fails too.)
    gone = {dict(PODS).get(sticky_pod[0]), dict(PODS6).get(sticky_pod[1])}
    gone.discard(None)
    sgnet.write_conf(s.conf_path, s.settings(
        services(sticky_gone=gone, **draining_conf)))
    res = gw.reload()
    got = {f: names_from(c, vips(120)[f], range(39000 + 100 * f,
                                                39000 + 100 * f + N))
           for f in (0, 1)}
    pods = {f: set(n) for f, (n, _) in got.items()}
    tap.ok(res == "reloaded" and
           all(len(pods[f]) == 1 and None not in pods[f] and
               sticky_pod[f] not in pods[f] | {None} for f in (0, 1)),
           "SIGHUP removing the client's pod: its connections move to one "
           "other pod of the two left and all stay there (both families)",
           f"reload: {res}, removed {sorted(gone)}",
           f"pods per family {pods}, pinned before {sticky_pod}")

    scale_up(tap, s, gone, draining_conf)

    rc = gw.stop()
    tap.ok(rc == 0, "SIGTERM: exit 0", f"exit code {rc}", gw.tail())


def pods_of_clients(c, fam, port):
    """One connection to sticky from each of CLIENTS[fam] (from `port`);
    (pod names in client order, None: failed), [failures])."""
    res = sgnet.parallel(lambda a: sgnet.curl(
        c, sgnet.url(vips(120)[fam], 80), local_port=port, local_addr=a),
        CLIENTS[fam])
    names = [r.out.strip() if r.rc == 0 and r.out.strip() else None
             for r in res]
    return names, [f"{a}: {r!r}" for a, r in zip(CLIENTS[fam], res)
                   if r.rc != 0]


def scale_up(tap, s, gone, draining_conf):
    """sticky has two pods per family (`gone` left out): its clients
    keep their pods when the third comes back, until the timeout. The
    timeout is longer here: from a client's first connection to its
    second, a round of 40 curls and a reload pass, seconds on a loaded
    machine."""
    c, gw = s.topo.client, s.gw
    conf = dict(draining_conf, timeout=SCALE_UP_TIMEOUT)
    for a in CLIENTS[0]:
        sgnet.run(["ip", "-n", c, "addr", "add", f"{a}/24", "dev", "eth0"])
    for a in CLIENTS[1]:
        sgnet.run(["ip", "-n", c, "addr", "add", f"{a}/64", "dev", "eth0",
                   "nodad"])
    sgnet.write_conf(s.conf_path, s.settings(services(sticky_gone=gone,
                                                      **conf)))
    res = [gw.reload()]
    before = {f: pods_of_clients(c, f, 40000) for f in (0, 1)}
    sgnet.write_conf(s.conf_path, s.settings(services(**conf)))
    res.append(gw.reload())
    after = {f: pods_of_clients(c, f, 40001) for f in (0, 1)}
    bad = [x for got in (before, after) for _, b in got.values() for x in b]
    tap.ok(res == ["reloaded"] * 2 and not bad and gone and
           all(after[f][0] == before[f][0] and None not in before[f][0]
               for f in (0, 1)),
           f"a pod joins sticky (SIGHUP): {len(CLIENTS[0])} clients per "
           "family connect again within the timeout, each to the pod it "
           "had", f"reload: {res}, joined {sorted(gone)}",
           *(f"{f}: before {sgnet.spread(before[f][0])}, after "
             f"{sgnet.spread(after[f][0])}" for f in (0, 1)), *bad[:5])

    time.sleep(SCALE_UP_TIMEOUT + 0.5)
    late = {f: pods_of_clients(c, f, 40002) for f in (0, 1)}
    joined = {f: {dict((PODS, PODS6)[f]).get(n) for n in late[f][0]} & gone
              for f in (0, 1)}
    bad = [x for _, b in late.values() for x in b]
    tap.ok(not bad and all(joined[f] for f in (0, 1)),
           "past the affinity timeout, the same clients spread again: "
           "some of each family reach the pod that joined",
           f"joined {sorted(gone)}, reached by {joined}",
           *(f"{f}: {sgnet.spread(late[f][0])}" for f in (0, 1)), *bad[:5])


def family_cases(tap, s, fam, fam_name):
    """The per-family cases; returns the pod the sticky client got."""
    c, gw = s.topo.client, s.gw
    client = (CLIENT_ADDR, CLIENT6)[fam]
    outside = (OUT4, OUT6)[fam]
    node = (sgnet.NODE_ADDR, sgnet.NODE6)[fam]
    base = 30000 + 1000 * fam  # client ports: each case its own

    # sessionAffinity: ClientIP
    names, bad = names_from(c, vips(120)[fam], range(base, base + N))
    control, cbad = names_from(c, vips(125)[fam], range(base + N,
                                                        base + 2 * N))
    ctl = set(control) - {None}
    pinned = set(names)
    tap.ok(not bad and not cbad and len(pinned) == 1 and None not in pinned
           and len(ctl) >= 2,
           f"{fam_name} ClientIP affinity: {N} connections from {N} source "
           f"ports all reach one pod (without affinity the same ports reach "
           f"{len(ctl)})", f"affinity: {sgnet.spread(names)}",
           f"without: {sgnet.spread(control)}", *(bad + cbad)[:5])

    # loadBalancerSourceRanges
    before = gw.stats()["drop_src_range"]
    inside, ibad = names_from(c, vips(121)[fam], range(base + 40,
                                                       base + 45))
    out = sgnet.curl(c, sgnet.url(vips(121)[fam], 80), max_time=1,
                     local_addr=outside)
    after = gw.stats()["drop_src_range"]
    nport, nbad = names_from(c, node, range(base + 45, base + 50),
                             port=RANGED_NODE_PORT, local_addr=outside)
    tap.ok(not ibad and out.rc == 28 and after > before and not nbad,
           f"{fam_name} source ranges: {client} (inside) reaches the VIP, "
           f"{outside} (outside) is dropped and counted, and reaches the "
           f"same service's NodePort",
           f"inside: {sgnet.spread(inside)} {ibad[:3]}",
           f"outside to the VIP: {out!r}",
           f"drop_src_range {before} -> {after}",
           f"outside to the NodePort: {sgnet.spread(nport)} {nbad[:3]}")

    # externalTrafficPolicy: Local with default_mode nat
    got, bad = whoami(c, vips(122)[fam], 80, range(base + 50, base + 55))
    nport, nbad = whoami(c, node, LOCAL_NODE_PORT, range(base + 55,
                                                         base + 60))
    got, bad = got + nport, bad + nbad
    logged = {p: len(s.pods.log(p)) for p in POD_NAMES}
    udp, ubad = sgnet.udp_spread(c, vips(122)[fam], 53,
                                 range(base + 60, base + 64))
    seen = {g[3] for g in got}
    useen = {e[1] for p in POD_NAMES for e in s.pods.log(p)[logged[p]:]
             if e[0] == "udp"}
    tap.ok(not bad and not ubad and seen == {client} and useen == {client},
           f"{fam_name} externalTrafficPolicy Local, default_mode nat: TCP "
           f"to the VIP and the NodePort and UDP answered, the pods saw the "
           f"client's own address",
           f"TCP: client seen {seen}; UDP: {useen}",
           f"(nat would show {(SNAT_ADDR, SNAT6)[fam]})", *(bad + ubad)[:5])

    # Endpoint conditions
    for p0, last, label in (
            (base + 100, 123, "ready endpoints only: pod-a, not the "
             "terminating pod-b or the unready pod-c"),
            (base + 100 + N, 124, "none ready: the serving terminating "
             "pod-a, not the non-serving pod-b and pod-c")):
        names, bad = names_from(c, vips(last)[fam], range(p0, p0 + N))
        tap.ok(not bad and set(names) == {"pod-a"},
               f"{fam_name} endpoint conditions: {N} new connections go to "
               f"the {label}", f"answers {sgnet.spread(names)}", *bad[:5])

    # Several ports, and TCP and UDP on one port number of one VIP
    vip = vips(126)[fam]
    res = {}
    bad = []
    for i, port in enumerate((80, 8081, 53)):
        p0 = base + 100 + 2 * N + 4 * i
        got, b = whoami(c, vip, port, range(p0, p0 + 4))
        res[port] = {(g[0], int(g[2])) for g in got}
        bad += b
    udp, ubad = sgnet.udp_spread(c, vip, 53, range(base + 200, base + 208))
    want_pods = {"pod-a", "pod-b"}
    ok = {p for p, _ in res[80] | res[8081] | res[53]} <= want_pods and \
        {lp for _, lp in res[80]} == {8080} and \
        {lp for _, lp in res[8081]} == {8081} and \
        {lp for _, lp in res[53]} == {8080} and set(udp) == {"pod-c"}
    tap.ok(ok and not bad and not ubad,
           f"{fam_name} one VIP, several ports: TCP 80 -> 8080, TCP 8081 -> "
           f"8081, TCP 53 -> 8080 on pods a and b, UDP 53 -> 5353 on pod-c "
           f"alone", f"TCP (pod, target port): {res}",
           f"UDP 53: {sgnet.spread(udp)}", *(bad + ubad)[:5])
    return names_pinned(pinned)


def names_pinned(pinned):
    return next(iter(pinned)) if len(pinned) == 1 else None


if __name__ == "__main__":
    sys.exit(main())
