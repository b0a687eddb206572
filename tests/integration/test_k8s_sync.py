#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""svcgw following a Kubernetes API server (tests/apiserver), end to end (TAP).

The stand-in listens on 127.0.0.1 inside the gateway's namespace; svcgw
reads it with a kubeconfig (client certificate). A LoadBalancer Service
"web" whose VIP comes from status.loadBalancer.ingress, and its
EndpointSlices, are changed in the stand-in while real clients go through
the gateway: every change (scaling, readiness, ports, node ports, a second
port, a late VIP, deletion) must be followed by the traffic. VIPs shared by
two services stay owned until the last one goes. Bad Services, and the
one combination svcgw cannot serve (externalTrafficPolicy Local with
svcgw.io/mode nat), are logged once with their namespace/name and skipped
while the others work; every mode and service semantics is served, the file's services win every conflict (by namespace/name and
by address, port and protocol) and give way when a reload removes them; a
reload's default_mode reaches the Services without svcgw.io/mode; between
two of the cluster's Services the first served keeps a VIP and port.
Last, svcgw is started with a wrong CA and with a wrong token: a clear
error, in the log and in /svcgw/sync, while the file's services are served.

Share bounds as test_traffic.py explains: each answer is a draw among the
usable pods. 90 connections over three pods, Binomial(90, 1/3), sd 4.5:
10..55 each; 60 over two, Binomial(60, 1/2), sd 3.9: 15..45 each.
"""
import sys
import time

import sgnet
from sgnet import NODE_ADDR, PODS, UDP_PORT, VIP, VIP_BULK, VIP_EMPTY

POD_NAMES = [n for n, _ in PODS]


def modes(gw, namespace_name):
    """The modes of the entries of one service in the gateway's tables."""
    svc = gw.ctl("services")["/svcgw/services"]
    return {m for name, m in zip(svc["name"], svc["mode"])
            if name.split(":", 1)[0] == namespace_name}
ADDR = dict(PODS)
VIP_OTHER = "192.0.2.103"
NODE_PORT = 30080
NODE_PORT2 = 30081


def api_service(name, ports, vip=None, namespace="default", **kw):
    """A Service as a user and the LoadBalancer controller write it."""
    import apiserver
    status = {"loadBalancer": {"ingress": [{"ip": vip}]}} if vip else None
    return apiserver.service(name, ports, namespace=namespace, status=status,
                             **kw)


def api_slice(name, service, pods, ports, namespace="default", **cond):
    """An EndpointSlice of `pods` (names), ready unless cond says otherwise."""
    import apiserver
    eps = [{"addresses": [ADDR[p]], "conditions": {
        "ready": cond.get(p, True), "serving": True, "terminating": False}}
        for p in pods]
    return apiserver.endpoint_slice(name, service, eps, ports,
                                    namespace=namespace)


def main():
    return sgnet.run_test("k8ssync", 29, run)


class Ports:
    """Client source ports, never reused in a run: a 5-tuple the gateway
    still tracks would keep its old pod."""

    def __init__(self, first=21000):
        self.next = first

    def take(self, n):
        r = range(self.next, self.next + n)
        self.next += n
        return r


def web_backends(gw, name="default/web"):
    """Sorted backend addresses of the service's first entry, or None."""
    t = sgnet.service_table(gw, name)
    return sorted({a.split(":")[0] for _, be in t.values() for a in be}) \
        if t else None


def answered_by(names):
    return set(n for n in names if n)


def run(tap, h):
    topo = sgnet.Topology(h).create(1)
    pods = sgnet.Pods(h, topo).start()
    c = topo.client
    srv = sgnet.apiserver(h, topo)
    kc = srv.write_kubeconfig(h.path("kubeconfig"), auth="client-cert",
                              embed=False)
    fixed = sgnet.service("fixed", [sgnet.port("TCP", 80, sgnet.HTTP_PORT)],
                          sgnet.pod_endpoints(["pod-a"]), vips=[VIP_BULK])
    # Its own mode: a reload may change default_mode under it.
    fixed["mode"] = "nat"
    settings = sgnet.gateway_conf(
        h.prefix, [fixed], extra={"kubernetes": sgnet.k8s_kubeconfig(kc)})
    conf = sgnet.write_conf(h.path("svcgw.conf"), settings)
    ports = Ports()

    http = {"name": "http", "protocol": "TCP", "port": 80,
            "targetPort": "web", "nodePort": NODE_PORT}
    srv.create(api_service("web", [http], vip=VIP))
    srv.create(api_slice("web-a", "web", POD_NAMES, [("http", "TCP", 8080)]))
    srv.create(api_service("echo", [("", "UDP", 53, UDP_PORT)], vip=VIP,
                           allocateLoadBalancerNodePorts=False))
    srv.create(api_slice("echo-a", "echo", POD_NAMES, [("", "UDP", UDP_PORT)]))

    gw = sgnet.Svcgw(h, topo, conf, h.prefix)
    try:
        gw.start()
        tap.ok(True, "svcgw starts with a kubernetes group (kubeconfig, "
               "client certificate) and says ready")
    except Exception as e:
        tap.ok(False, "svcgw starts with a kubernetes group and says ready",
               str(e), gw.tail())
        raise

    st = sgnet.wait_until(lambda: (lambda s: s if s["synced"] and
                                   s["first_sync_ms"] else None)(
        sgnet.sync_state(gw)), 15)
    tap.ok(bool(st) and st["served"] == 2 and
           set(st["state"]) == {"watching"} and st["last_error"] == "",
           "/svcgw/sync: synced, every resource watched, the first full "
           "sync timed, both services served", repr(st))

    names, bad = sgnet.curl_spread(c, f"http://{VIP}/", ports.take(90))
    ok, d = sgnet.shares_ok(names, POD_NAMES, 10, 55)
    tap.ok(not bad and ok, "the VIP of status.loadBalancer.ingress: 90 "
           "connections spread over the three pods", d, *bad[:10])

    names, bad = sgnet.curl_spread(c, f"http://{NODE_ADDR}:{NODE_PORT}/",
                                   ports.take(30))
    tap.ok(not bad and answered_by(names) == set(POD_NAMES),
           f"the NodePort {NODE_PORT} on the node address: 30 connections "
           "answered by the pods", sgnet.spread(names), *bad[:10])

    u, ubad = sgnet.udp_spread(c, VIP, 53, ports.take(12))
    tap.ok(not ubad and answered_by(u) <= set(POD_NAMES),
           "UDP 53 of service echo, on the same VIP: answered",
           sgnet.spread(u), *ubad[:10])

    # Scale down, then up with a second slice: the slices of a service merge.
    srv.apply(api_slice("web-a", "web", ["pod-a", "pod-b"],
                        [("http", "TCP", 8080)]))
    want = sorted([ADDR["pod-a"], ADDR["pod-b"]])
    got = sgnet.wait_until(lambda: web_backends(gw) == want, 10)
    names, bad = sgnet.curl_spread(c, f"http://{VIP}/", ports.take(60))
    ok, d = sgnet.shares_ok(names, ["pod-a", "pod-b"], 15, 45)
    tap.ok(got and not bad and ok, "scaled down to pod-a and pod-b: the "
           "tables follow, 60 new connections avoid pod-c", d, *bad[:10])

    srv.create(api_slice("web-b", "web", ["pod-c"], [("http", "TCP", 8080)]))
    got = sgnet.wait_until(lambda: web_backends(gw) == sorted(ADDR.values()),
                           10)
    names, bad = sgnet.curl_spread(c, f"http://{VIP}/", ports.take(90))
    ok, d = sgnet.shares_ok(names, POD_NAMES, 10, 55)
    tap.ok(got and not bad and ok, "scaled up by a second EndpointSlice "
           "(pod-c): the slices merge, all three answer", d, *bad[:10])

    srv.apply(api_slice("web-a", "web", ["pod-a", "pod-b"],
                        [("http", "TCP", 8080)], **{"pod-b": False}))
    pubs = sgnet.sync_state(gw)["publications"]
    sgnet.wait_until(lambda: sgnet.sync_state(gw)["publications"] > pubs, 10)
    names, bad = sgnet.curl_spread(c, f"http://{VIP}/", ports.take(60))
    ok, d = sgnet.shares_ok(names, ["pod-a", "pod-c"], 15, 45)
    tap.ok(not bad and ok, "pod-b not ready in its slice: new connections "
           "avoid it", d, *bad[:10])
    srv.apply(api_slice("web-a", "web", ["pod-a", "pod-b"],
                        [("http", "TCP", 8080)]))

    # A second port: its target port is that of the slice port of its name.
    dns = {"name": "dns", "protocol": "UDP", "port": 54, "targetPort": "dns"}
    srv.patch("services", "web", {"spec": {"ports": [http, dns]}},
              namespace="default")
    srv.apply(api_slice("web-a", "web", ["pod-a", "pod-b"],
                        [("http", "TCP", 8080), ("dns", "UDP", UDP_PORT)]))
    srv.apply(api_slice("web-b", "web", ["pod-c"],
                        [("http", "TCP", 8080), ("dns", "UDP", UDP_PORT)]))
    sgnet.wait_until(lambda: "default/web:dns/UDP" in
                     sgnet.service_table(gw, "default/web"), 10)
    u, ubad = sgnet.udp_spread(c, VIP, 54, ports.take(12))
    tap.ok(not ubad and answered_by(u) <= set(POD_NAMES),
           "a second port (UDP 54, target port from the slice's port "
           "\"dns\"): answered through the VIP", sgnet.spread(u),
           *ubad[:10])

    # Port and node port changes.
    http2 = dict(http, port=8081, nodePort=NODE_PORT2)
    srv.patch("services", "web", {"spec": {"ports": [http2, dns]}},
              namespace="default")
    sgnet.wait_until(lambda: any(
        f"{VIP}:8081/TCP" in k for k, _ in
        sgnet.service_table(gw, "default/web").values()), 10)
    new, nbad = sgnet.curl_spread(c, f"http://{VIP}:8081/", ports.take(20))
    old = sgnet.curl(c, f"http://{VIP}:80/", max_time=2)
    tap.ok(not nbad and old.rc != 0, "service port 80 -> 8081: the VIP "
           "answers on 8081, no more on 80", sgnet.spread(new), repr(old),
           *nbad[:10])
    new, nbad = sgnet.curl_spread(c, f"http://{NODE_ADDR}:{NODE_PORT2}/",
                                  ports.take(20))
    old = sgnet.curl(c, f"http://{NODE_ADDR}:{NODE_PORT}/", max_time=2)
    tap.ok(not nbad and old.rc != 0, f"nodePort {NODE_PORT} -> {NODE_PORT2}: "
           "the new one answers, the old one no more", sgnet.spread(new),
           repr(old), *nbad[:10])

    # A VIP that appears in the status later.
    def ping(addr):
        return sgnet.timed(["ping", "-n", "-q", "-c", "2", "-i", "0.2",
                            "-W", "1", addr], c, 10)
    srv.create(api_service("late", [("", "TCP", 80, 8080)],
                           allocateLoadBalancerNodePorts=False))
    srv.create(api_slice("late-a", "late", ["pod-c"], [("", "TCP", 8080)]))
    sgnet.wait_until(lambda: sgnet.sync_state(gw)["served"] == 3, 10)
    before = ping(VIP_EMPTY)
    srv.patch("services", "late", {"status": {"loadBalancer": {
        "ingress": [{"ip": VIP_EMPTY}]}}}, namespace="default",
        subresource="status")
    sgnet.wait_until(lambda: sgnet.service_table(gw, "default/late"), 10)
    after = ping(VIP_EMPTY)
    r = sgnet.curl(c, f"http://{VIP_EMPTY}/")
    tap.ok(before.rc != 0 and after.rc == 0 and r.rc == 0 and
           r.out.strip() == "pod-c", "a VIP set in the status later: "
           "owned and answered once it is there, not before",
           f"ping before {before!r}", f"after {after!r}", repr(r))

    # Deletion, and a VIP two services share.
    srv.delete("services", "web", namespace="default")
    sgnet.wait_until(lambda: not sgnet.service_table(gw, "default/web"), 10)
    gone = sgnet.curl(c, f"http://{VIP}:8081/", max_time=2)
    u, ubad = sgnet.udp_spread(c, VIP, 53, ports.take(6))
    p = ping(VIP)
    tap.ok(gone.rc != 0 and not ubad and p.rc == 0,
           "web deleted: its port is gone, the VIP it shares with echo "
           "stays owned and echo answers", repr(gone), repr(p), *ubad[:5])
    srv.delete("services", "echo", namespace="default")
    sgnet.wait_until(lambda: not sgnet.service_table(gw, "default/echo"), 10)
    p = sgnet.wait_until(lambda: ping(VIP).rc != 0, 5)
    tap.ok(p, "echo deleted too: the VIP is dropped (no ICMP echo answer)")

    # Bad objects: lib/k8s skips them, once per version, with their name.
    # Stored unvalidated, they get no cluster IP unless given one.
    start = len(gw.lines)
    srv.create(api_service("bad-proto", [("", "FOO", 80, 8080)],
                           vip=VIP_OTHER, clusterIP="10.96.7.1"),
               validate=False)
    srv.create(api_service("bad-port", [("", "TCP", 70000, 8080)],
                           vip=VIP_OTHER, clusterIP="10.96.7.2"),
               validate=False)
    # Served in the mode they ask for, with default_mode nat: Local as
    # dnat (the client address kept), ClientIP affinity, an annotation's
    # DSR. Local with svcgw.io/mode nat cannot be: refused, once.
    srv.create(api_service("local", [("", "TCP", 80, 8080)], vip=VIP_OTHER,
                           externalTrafficPolicy="Local"))
    srv.create(api_service("sticky", [("", "TCP", 81, 8080)], vip=VIP_OTHER,
                           sessionAffinity="ClientIP"))
    srv.create(api_service("dsr", [("", "TCP", 82, 8080)], vip=VIP_OTHER,
                           annotations={"svcgw.io/mode": "dsr-ipip"}))
    srv.create(api_service("local-nat", [("", "TCP", 83, 8080)],
                           vip=VIP_OTHER, externalTrafficPolicy="Local",
                           annotations={"svcgw.io/mode": "nat"}))
    time.sleep(1)
    srv.patch("services", "local-nat",
              {"metadata": {"labels": {"touched": "1"}}}, namespace="default")
    sgnet.wait_until(lambda: sgnet.sync_state(gw)["refused"] == 1, 10)
    time.sleep(0.5)
    logged = gw.lines_since(start)

    def count(name):
        return sum(1 for ln in logged if f"default/{name}" in ln
                   and "skipped" in ln)
    r = sgnet.curl(c, f"http://{VIP_EMPTY}/")
    tap.ok(count("bad-proto") == 1 and count("bad-port") == 1 and
           r.out.strip() == "pod-c", "bad Services (an unknown protocol, "
           "port 70000): one log line each with namespace/name; the others "
           "keep working", f"late answers {r!r}", *logged[-12:])
    skipped = gw.ctl("skipped")["/svcgw/skipped"]
    reasons = dict(zip(skipped["service"], skipped["reason"]))
    got = {n: modes(gw, f"default/{n}") for n in ("local", "sticky", "dsr")}
    tap.ok(got == {"local": {"dnat"}, "sticky": {"nat"}, "dsr": {"dsr-ipip"}}
           and count("local-nat") == 1
           and "Local" in reasons.get("default/local-nat", "")
           and not {"default/local", "default/sticky", "default/dsr"} &
           set(reasons),
           "Local (as dnat), ClientIP and svcgw.io/mode dsr-ipip are served "
           "in their modes; Local with svcgw.io/mode nat is logged once, "
           "even after a change, and listed by svcgwctl skipped",
           f"modes {got}", repr(skipped), *logged[-12:])
    for n in ("local", "sticky", "dsr", "local-nat"):
        srv.delete("services", n, namespace="default")
    sgnet.wait_until(lambda: not any(
        modes(gw, f"default/{n}") for n in ("local", "sticky", "dsr")), 10)

    # The file wins: by namespace/name, and by (address, port, protocol).
    start = len(gw.lines)
    srv.create(api_service("fixed", [("", "TCP", 80, 8080)], vip=VIP_OTHER,
                           namespace="test"))
    srv.create(api_slice("fixed-a", "fixed", ["pod-b"], [("", "TCP", 8080)],
                         namespace="test"))
    srv.create(api_service("steal", [("", "TCP", 80, 8080)], vip=VIP_BULK))
    srv.create(api_slice("steal-a", "steal", ["pod-b", "pod-c"],
                         [("", "TCP", 8080)]))
    sgnet.wait_until(lambda: sgnet.sync_state(gw)["parked"] == 2, 10)
    logged = gw.lines_since(start)
    names, bad = sgnet.curl_spread(c, f"http://{VIP_BULK}/", ports.take(20))
    other = sgnet.curl(c, f"http://{VIP_OTHER}/", max_time=2)
    tap.ok(any("test/fixed" in ln and "the file wins" in ln for ln in logged)
           and any("default/steal" in ln and f"{VIP_BULK}:80/TCP" in ln and
                   "the file wins" in ln for ln in logged) and
           not bad and answered_by(names) == {"pod-a"} and other.rc != 0,
           "the file wins: the cluster's test/fixed (same name) and "
           "default/steal (same VIP, port, protocol) are logged and skipped, "
           "the file's test/fixed keeps its VIP", sgnet.spread(names),
           repr(other), *(logged + bad)[-12:])

    sgnet.write_conf(conf, dict(settings, services=[]))
    res = gw.reload()
    sgnet.wait_until(lambda: sgnet.sync_state(gw)["parked"] == 0, 10)
    names, bad = sgnet.curl_spread(c, f"http://{VIP_BULK}/", ports.take(30))
    other = sgnet.curl(c, f"http://{VIP_OTHER}/")
    tap.ok(res == "reloaded" and not bad and
           answered_by(names) == {"pod-b", "pod-c"} and
           other.out.strip() == "pod-b", "SIGHUP without the file's "
           "test/fixed: the cluster's two are served in its place",
           f"answer {res}", sgnet.spread(names), repr(other), *bad[:10])

    start = len(gw.lines)
    sgnet.write_conf(conf, settings)
    res = gw.reload()
    sgnet.wait_until(lambda: sgnet.sync_state(gw)["parked"] == 2, 10)
    names, bad = sgnet.curl_spread(c, f"http://{VIP_BULK}/", ports.take(20))
    logged = gw.lines_since(start)
    tap.ok(res == "reloaded" and not bad and answered_by(names) == {"pod-a"}
           and sum("the file wins" in ln for ln in logged) == 2,
           "SIGHUP bringing it back: the file wins again, the cluster's two "
           "are withdrawn and logged", f"answer {res}", sgnet.spread(names),
           *(logged + bad)[-12:])

    # default_mode applies to the cluster's Services without svcgw.io/mode:
    # dnat (the pods here have no route back to the clients, so nothing
    # answers), then nat again.
    sgnet.write_conf(conf, dict(settings, default_mode="dnat"))
    res = gw.reload()
    dnat = sgnet.wait_until(lambda: modes(gw, "default/late") == {"dnat"}, 10)
    sgnet.write_conf(conf, settings)
    res2 = gw.reload()
    nat = sgnet.wait_until(lambda: modes(gw, "default/late") == {"nat"}, 10)
    r2 = sgnet.curl(c, f"http://{VIP_EMPTY}/")
    tap.ok(res == res2 == "reloaded" and dnat and nat
           and r2.out.strip() == "pod-c",
           "SIGHUP to default_mode dnat: the cluster's Services without "
           "svcgw.io/mode are republished in dnat; back to nat, and served",
           f"answers {res} {res2}", f"modes now {modes(gw, 'default/late')}",
           repr(r2))

    text = gw.ctl("sync", json_out=False)
    lines = [" ".join(ln.split()) for ln in text.splitlines()]
    tap.ok("synced: 1" in lines and "source: kubeconfig" in lines and
           any(ln.startswith("services watching ") for ln in lines),
           "svcgwctl sync: the sync state, one row per resource", text)

    # Changes while the API server is away are picked up on its return.
    srv.stop()
    sgnet.wait_until(lambda: sgnet.sync_state(gw)["last_error"], 10)
    r = sgnet.curl(c, f"http://{VIP_EMPTY}/")
    srv.create(api_slice("late-b", "late", ["pod-a"], [("", "TCP", 8080)]))
    srv.start()
    got = sgnet.wait_until(lambda: web_backends(gw, "default/late") ==
                           sorted([ADDR["pod-a"], ADDR["pod-c"]]), 20)
    tap.ok(r.out.strip() == "pod-c" and got,
           "API server down: forwarding goes on; a change made meanwhile "
           "is followed once it is back", repr(r))

    # Between two of the cluster's Services, the one served first keeps an
    # (address, port, protocol); the other is served once it is free.
    start = len(gw.lines)
    srv.create(api_service("twin", [("", "TCP", 80, 8080)], vip=VIP_EMPTY,
                           allocateLoadBalancerNodePorts=False))
    srv.create(api_slice("twin-a", "twin", ["pod-b"], [("", "TCP", 8080)]))
    parked = sgnet.wait_until(lambda: sgnet.sync_state(gw)["parked"] == 3, 10)
    names, bad = sgnet.curl_spread(c, f"http://{VIP_EMPTY}/", ports.take(12))
    logged = gw.lines_since(start)
    tap.ok(parked and not bad and answered_by(names) == {"pod-a", "pod-c"}
           and any("default/twin" in ln and "default/late already" in ln
                   for ln in logged),
           "a second Service on late's VIP and port: logged and skipped, "
           "late keeps them", sgnet.spread(names), *(logged + bad)[-8:])
    srv.delete("services", "late", namespace="default")
    served = sgnet.wait_until(lambda: web_backends(gw, "default/twin") ==
                              [ADDR["pod-b"]], 10)
    names, bad = sgnet.curl_spread(c, f"http://{VIP_EMPTY}/", ports.take(12))
    tap.ok(served and not bad and answered_by(names) == {"pod-b"},
           "late deleted: the waiting Service is served in its place",
           sgnet.spread(names), *bad[:8])

    rc = gw.stop()
    tap.ok(rc == 0, "SIGTERM: exit 0", f"exit code {rc}", gw.tail())

    # Credentials the API server refuses: a clear error, the file served.
    import apiserver
    wrong_ca, _ = apiserver.make_ca(h.path("wrong-ca"), cn="not-the-cluster")
    for what, kw, expect in (
            ("a CA that did not sign the server's certificate",
             {"ca_path": wrong_ca}, ("SSL", "certificate")),
            ("a token the server does not know",
             {"token": "not-a-valid-token"}, ("HTTP 401", "Unauthorized"))):
        kpath = srv.write_kubeconfig(h.path("kc-wrong"), **kw)
        sgnet.write_conf(conf, dict(settings, kubernetes=sgnet.k8s_kubeconfig(
            kpath)))
        g = sgnet.Svcgw(h, topo, conf, h.prefix)
        g.start()
        err = g.wait_line("k8s: list ", 0, 10)
        st = sgnet.wait_until(lambda: (lambda s: s if s["last_error"] else
                                       None)(sgnet.sync_state(g)), 10)
        r = sgnet.curl(c, f"http://{VIP_BULK}/")
        line = g.lines[err] if err is not None else ""
        tap.ok(err is not None and all(x in line for x in expect) and
               st and not st["synced"] and
               all(x in st["last_error"] for x in expect) and
               r.out.strip() == "pod-a",
               f"{what}: a clear error in the log and /svcgw/sync, the "
               "file's service still served", line, repr(st), repr(r))
        rc = g.stop()
        tap.ok(rc == 0, f"{what}: SIGTERM, exit 0", f"exit {rc}", g.tail())
        time.sleep(0.5)


if __name__ == "__main__":
    sys.exit(main())
