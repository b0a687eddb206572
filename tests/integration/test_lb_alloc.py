#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""svcgw as the LoadBalancer provider (the lb group), against the API
server stand-in (TAP).

The stand-in runs with config/rbac.yaml's rules and nothing else: any
request svcgw makes that the manifest does not list is refused (403) and
fails the cases that depend on it, and the request log is checked for it.
Pools (documentation addresses only):

  main    192.0.2.96/30          .97 .98 (network and broadcast left out)
  manual  192.0.2.120-.121       auto_assign off
  dev     192.0.2.112/30         namespace dev only, priority 10
  dual    192.0.2.104/31, 2001:db8:f::100-101   priority 200

Checked: allocation from pools in priority order, statuses with ipMode VIP
and the pool annotation, Events, requests by spec.loadBalancerIP and by
annotation, both at once (an Event, no status), sharing, dual stack
(Require and Prefer),
exhaustion then release, a curl through an allocated VIP, Services of
another class (and class-less ones) never named in any request, a status
patch that meets a concurrent write (409, re-read, retried), every status
kept across a restart (no patch at all) and across a pool edit by SIGHUP.
"""
import os
import sys
import time

import sgnet
from sgnet import PODS

CLASS = "svcgw.io/lb"
ADDR = dict(PODS)
POD_NAMES = [n for n, _ in PODS]
RBAC = os.path.join(sgnet.SRC_ROOT, "config", "rbac.yaml")

POOLS = [
    {"name": "main", "addresses": ["192.0.2.96/30"]},
    {"name": "manual", "addresses": ["192.0.2.120-192.0.2.121"],
     "auto_assign": False},
    {"name": "dev", "addresses": ["192.0.2.112/30"], "namespaces": ["dev"],
     "priority": 10},
    {"name": "dual", "addresses": ["192.0.2.104/31",
                                    "2001:db8:f::100-2001:db8:f::101"],
     "priority": 200},
]


def svc(name, port=("http", "TCP", 80, 8080), namespace="default", cls=CLASS,
        annotations=None, status=None, **spec):
    import apiserver
    if cls:
        spec["loadBalancerClass"] = cls
    return apiserver.service(name, [port], namespace=namespace,
                             annotations=annotations, status=status, **spec)


def ingress(srv, name, namespace="default"):
    """[(ip, ipMode)] of the status, and the pool annotation."""
    o = srv.get("services", name, namespace=namespace)
    ing = ((o.get("status") or {}).get("loadBalancer") or {}).get("ingress") \
        or []
    ann = (o["metadata"].get("annotations") or {}).get(
        "svcgw.io/ip-allocated-from-pool")
    return [(e.get("ip"), e.get("ipMode")) for e in ing], ann


def ips(srv, name, namespace="default"):
    return [ip for ip, _ in ingress(srv, name, namespace)[0]]


def events(srv, name, reason=None):
    out = []
    for e in srv.list("events"):
        inv = e.get("involvedObject") or e.get("regarding") or {}
        if inv.get("name") == name and (reason is None or
                                         e.get("reason") == reason):
            out.append(e.get("message") or e.get("note") or "")
    return out


def wait_ips(srv, name, want, timeout=10, namespace="default"):
    return sgnet.wait_until(lambda: ips(srv, name, namespace) == want, timeout)


def main():
    return sgnet.run_test("lballoc", 38, run)


def run(tap, h):
    topo = sgnet.Topology(h).create(1)
    sgnet.Pods(h, topo).start()
    c = topo.client
    srv = sgnet.apiserver(h, topo)
    import apiserver
    srv.set_rbac(apiserver.rules_from_manifest(RBAC))
    kc = srv.write_kubeconfig(h.path("kubeconfig"), auth="token")

    def write(pools, default_class=False):
        settings = sgnet.gateway_conf(h.prefix, [], extra={
            "kubernetes": sgnet.k8s_kubeconfig(kc),
            "lb": {"pools": pools, "default_class": default_class}})
        return sgnet.write_conf(h.path("svcgw.conf"), settings)

    conf = write(POOLS)
    # Before svcgw starts: one Service already allocated (by an earlier
    # run), one to allocate, and two that are not ours.
    srv.create(svc("kept", status={"loadBalancer": {"ingress": [
        {"ip": "192.0.2.98", "ipMode": "VIP"}]}}))
    srv.create(svc("web"))
    srv.create(apiserver.endpoint_slice(
        "web-a", "web", [ADDR[p] for p in POD_NAMES], [("http", "TCP", 8080)]))
    srv.create(svc("foreign", cls="example.com/other"))
    srv.create(svc("classless", cls=None))

    gw = sgnet.Svcgw(h, topo, conf, h.prefix)
    gw.start()
    got = wait_ips(srv, "web", ["192.0.2.97"])
    st, pool = ingress(srv, "web")
    tap.ok(got and st == [("192.0.2.97", "VIP")] and pool == "main",
           "web: the lowest free address of pool main, ipMode VIP, the pool "
           "in svcgw.io/ip-allocated-from-pool", repr((st, pool)))
    tap.ok(ips(srv, "kept") == ["192.0.2.98"],
           "kept: its address from before the start is rebuilt from its "
           "status before anything is allocated (web did not take it)",
           repr(ips(srv, "kept")))
    ev = sgnet.wait_until(lambda: events(srv, "web", "IPAllocated"), 5)
    tap.ok(ev and "192.0.2.97" in ev[0], "an IPAllocated Event on web",
           repr(ev))
    dropped = sgnet.sync_state(gw).get("events_dropped")
    tap.ok(dropped == 0, "/svcgw/sync: events_dropped, 0 while the API "
           "server keeps up", repr(dropped))
    patch = srv.requests(verb="patch", name="web")
    tap.ok(patch and patch[-1]["subresource"] == "status" and
           patch[-1]["headers"]["content-type"] ==
           "application/merge-patch+json" and
           patch[-1]["body"]["metadata"].get("resourceVersion"),
           "the status is written by a merge patch on services/status "
           "carrying metadata.resourceVersion", repr(patch[-1:]))

    names, bad = sgnet.curl_spread(c, "http://192.0.2.97/", range(22000, 22030))
    tap.ok(not bad and set(n for n in names if n) == set(POD_NAMES),
           "curl through the allocated VIP: 30 connections answered by the "
           "pods", sgnet.spread(names), *bad[:5])

    # Requests, conflicts, sharing.
    srv.create(svc("sa", annotations={"svcgw.io/address-pool": "manual",
                                      "svcgw.io/allow-shared-ip": "k"}))
    srv.create(svc("sb", port=("dns", "UDP", 53, 5353), annotations={
        "svcgw.io/address-pool": "manual",
        "svcgw.io/allow-shared-ip": "k"}))
    tap.ok(wait_ips(srv, "sa", ["192.0.2.120"]) and
           wait_ips(srv, "sb", ["192.0.2.120"]),
           "sa (TCP 80) and sb (UDP 53), one svcgw.io/allow-shared-ip key, "
           "pool manual by annotation: one shared address",
           repr((ips(srv, "sa"), ips(srv, "sb"))))
    srv.create(svc("byfield", loadBalancerIP="192.0.2.121"))
    tap.ok(wait_ips(srv, "byfield", ["192.0.2.121"]),
           "spec.loadBalancerIP: that address (from a pool without "
           "auto_assign)", repr(ips(srv, "byfield")))
    srv.create(svc("byann", annotations={
        "svcgw.io/loadBalancerIPs": "192.0.2.120"}))
    ev = sgnet.wait_until(lambda: events(srv, "byann", "AllocationFailed"), 5)
    tap.ok(ev and "192.0.2.120 is already used" in ev[0] and
           ips(srv, "byann") == [],
           "annotation svcgw.io/loadBalancerIPs naming an address held "
           "without a sharing key: AllocationFailed, no status", repr(ev))
    srv.create(svc("both", loadBalancerIP="192.0.2.121", annotations={
        "svcgw.io/loadBalancerIPs": "192.0.2.121"}))
    ev = sgnet.wait_until(lambda: events(srv, "both", "AllocationFailed"), 5)
    tap.ok(ev and "both spec.loadBalancerIP and the annotation" in ev[0] and
           ips(srv, "both") == [],
           "both the field and the annotation: an AllocationFailed Event, "
           "no status", repr(ev))
    srv.create(svc("indev", namespace="dev"))
    tap.ok(wait_ips(srv, "indev", ["192.0.2.113"], namespace="dev"),
           "a Service in namespace dev: pool dev comes first (priority 10)",
           repr(ips(srv, "indev", "dev")))
    srv.create(svc("notdev", annotations={"svcgw.io/address-pool": "dev"}))
    ev = sgnet.wait_until(lambda: events(srv, "notdev", "AllocationFailed"), 5)
    tap.ok(ev and ips(srv, "notdev") == [],
           "pool dev asked for from namespace default: AllocationFailed",
           repr(ev))

    # Dual stack.
    srv.create(svc("dual", ipFamilyPolicy="RequireDualStack",
                   ipFamilies=["IPv4", "IPv6"]))
    got = wait_ips(srv, "dual", ["192.0.2.104", "2001:db8:f::100"])
    tap.ok(got and ingress(srv, "dual")[1] == "dual",
           "RequireDualStack: one address of each family, from the pool "
           "that has both", repr(ingress(srv, "dual")))
    srv.create(svc("single6", ipFamilyPolicy="SingleStack",
                   ipFamilies=["IPv6"]))
    tap.ok(wait_ips(srv, "single6", ["2001:db8:f::101"]),
           "SingleStack IPv6: one IPv6 address", repr(ips(srv, "single6")))
    srv.create(svc("dual2", ipFamilyPolicy="RequireDualStack",
                   ipFamilies=["IPv4", "IPv6"]))
    ev = sgnet.wait_until(lambda: events(srv, "dual2", "AllocationFailed"), 5)
    tap.ok(ev and ips(srv, "dual2") == [],
           "RequireDualStack with no IPv6 left: AllocationFailed, nothing "
           "held (its IPv4 address is not taken)", repr(ev))
    srv.create(svc("prefer", ipFamilyPolicy="PreferDualStack",
                   ipFamilies=["IPv4", "IPv6"],
                   annotations={"svcgw.io/address-pool": "dual"}))
    got = wait_ips(srv, "prefer", ["192.0.2.105"])
    time.sleep(0.5)     # a failure Event, if any, would be posted by now
    tap.ok(got and not events(srv, "prefer", "AllocationFailed"),
           "PreferDualStack with no IPv6 left: its IPv4 address alone, no "
           "AllocationFailed", repr(ingress(srv, "prefer")))
    srv.delete("services", "prefer", namespace="default")
    time.sleep(0.5)     # its address back in the pool for racy below

    # Exhaustion, then release.
    srv.create(svc("late", annotations={"svcgw.io/address-pool": "main"}))
    ev = sgnet.wait_until(lambda: events(srv, "late", "AllocationFailed"), 5)
    tap.ok(ev and "no free IPv4 address" in ev[0] and ips(srv, "late") == [],
           "pool main exhausted: AllocationFailed, no status", repr(ev))
    srv.delete("services", "kept", namespace="default")
    tap.ok(wait_ips(srv, "late", ["192.0.2.98"]),
           "kept deleted: its address goes to late, retried without a change "
           "of late", repr(ips(srv, "late")))
    srv.patch("services", "late", {"spec": {"type": "ClusterIP",
                                            "loadBalancerClass": None}},
              namespace="default")
    tap.ok(wait_ips(srv, "late", []) and
           ingress(srv, "late")[1] is None and
           sgnet.wait_until(lambda: events(srv, "late", "IPReleased"), 5),
           "late turned ClusterIP: status and annotation cleared, an "
           "IPReleased Event", repr(ingress(srv, "late")))

    # A concurrent write: the patch meets a newer resourceVersion.
    srv.stall(1.5, n=1, where="headers",
              match={"verb": "patch", "name": "racy"})
    srv.create(svc("racy", annotations={"svcgw.io/address-pool": "dual"}))
    srv.wait_requests(1, 10, verb="patch", name="racy")
    srv.patch("services", "racy", {"metadata": {"labels": {"x": "y"}}},
              namespace="default")
    got = sgnet.wait_until(lambda: ips(srv, "racy") == ["192.0.2.105"], 15)
    seq = [(r["verb"], r["status"]) for r in srv.requests(name="racy")]
    tap.ok(got and seq[:3] == [("patch", 409), ("get", 200),
                               ("patch", 200)],
           "a status patch meeting a concurrent write: 409, re-read, "
           "written again", repr(seq))

    # Below, pool main has one free address (192.0.2.98); each case gives
    # it back when done.
    def main_free(name):
        srv.create(svc(name, annotations={"svcgw.io/address-pool": "main"}))
        return wait_ips(srv, name, ["192.0.2.98"])

    def gone(name):
        srv.delete("services", name, namespace="default")
        time.sleep(0.5)

    # Deleted and created again under the same name, of another class,
    # while a patch is in flight and before the watch says so: the 409's
    # re-read shows another object (uid), which is not written.
    srv.stall(2, n=1, where="headers", match={"verb": "patch", "name": "swap"})
    srv.create(svc("swap", annotations={"svcgw.io/address-pool": "main"}))
    srv.wait_requests(1, 10, verb="patch", name="swap")
    srv.delay_events(5)
    srv.delete("services", "swap", namespace="default")
    srv.create(svc("swap", cls="example.com/other"))
    sgnet.wait_until(lambda: srv.requests(verb="get", name="swap",
                                          status=200), 5)
    time.sleep(1)
    seq = [(r["verb"], r["status"]) for r in srv.requests(name="swap")]
    tap.ok(ips(srv, "swap") == [] and seq == [("patch", 409), ("get", 200)],
           "a Service deleted and created again of another class under a "
           "status patch: 409, re-read, not written", repr(seq))
    srv.delay_events(0)
    time.sleep(0.5)
    gone("swap")

    # Two writers fighting (409 after 409): backed off, not at once.
    srv.fail_next(3, code=409, match={"verb": "patch", "name": "fight"})
    got = main_free("fight")
    t = [r["time"] for r in srv.requests(verb="patch", name="fight")]
    gaps = [b - a for a, b in zip(t, t[1:])]
    tap.ok(got and len(gaps) == 3 and gaps[0] >= 0.45 and gaps[1] >= 0.9 and
           gaps[2] >= 1.8,
           "409 three times: re-read and written again after a backoff "
           "that doubles", repr(gaps))
    gone("fight")

    # 401 (a token rotated) and 403 (RBAC not applied yet) heal by
    # themselves: retried, not dropped.
    srv.fail_next(1, code=401, match={"verb": "patch", "name": "authz"})
    srv.fail_next(1, code=403, match={"verb": "patch", "name": "authz"})
    got = main_free("authz")
    seq = [r["status"] for r in srv.requests(verb="patch", name="authz")]
    tap.ok(got and seq == [401, 403, 200],
           "a status patch answered 401, then 403: retried until written",
           repr(seq))
    gone("authz")

    # Turned ClusterIP while the patch writing its address is in flight:
    # the address that patch wrote is cleared afterwards.
    srv.stall(2, n=1, where="body", match={"verb": "patch", "name": "moving"})
    srv.create(svc("moving", annotations={"svcgw.io/address-pool": "main"}))
    srv.wait_requests(1, 10, verb="patch", name="moving")
    time.sleep(0.3)
    srv.patch("services", "moving", {"spec": {"type": "ClusterIP",
                                              "loadBalancerClass": None}},
              namespace="default")
    got = sgnet.wait_until(lambda: events(srv, "moving", "IPReleased"), 10)
    tap.ok(got and ips(srv, "moving") == [] and
           ingress(srv, "moving")[1] is None,
           "turned ClusterIP under the patch that wrote its address: the "
           "status is cleared afterwards, an IPReleased Event",
           repr(ingress(srv, "moving")))
    gone("moving")

    # A status patch answered 404 (deleted before the watch says so): the
    # address goes back at once, not at the next restart.
    srv.fail_next(1, code=404, match={"verb": "patch", "name": "vanish"})
    srv.create(svc("vanish", annotations={"svcgw.io/address-pool": "main"}))
    srv.wait_requests(1, 10, verb="patch", name="vanish", status=404)
    got = main_free("heir")
    tap.ok(got, "a status patch answered 404: its address is free for "
           "another Service", repr(ips(srv, "heir")))
    gone("vanish")
    gone("heir")

    # Nothing ever named the Services that are not ours.
    named = srv.requests(name=("foreign", "classless"))
    tap.ok(not named and not events(srv, "foreign") and
           not events(srv, "classless") and
           ips(srv, "foreign") == [] and ips(srv, "classless") == [],
           "Services of another class, and class-less ones (lb.default_class "
           "false): no request names them, no Event, no status",
           repr(named[:3]))
    denied = srv.requests(status=403, fault=None)
    tap.ok(not denied, "every request svcgw made is allowed by "
           "config/rbac.yaml", repr([(r["verb"], r["path"])
                                     for r in denied[:5]]))

    # Restart: every status stays, nothing is patched.
    before = {n: ingress(srv, n) for n in ("web", "sa", "sb", "byfield",
                                             "dual", "single6", "racy")}
    before["indev"] = ingress(srv, "indev", "dev")
    gw.stop()
    srv.clear_requests()
    gw = sgnet.Svcgw(h, topo, conf, h.prefix)
    gw.start()
    sgnet.wait_until(lambda: sgnet.sync_state(gw)["first_sync_ms"], 15)
    time.sleep(2)
    after = {n: ingress(srv, n) for n in before if n != "indev"}
    after["indev"] = ingress(srv, "indev", "dev")
    patches = srv.requests(verb="patch")
    tap.ok(after == before and not patches,
           "restarted: every status and pool annotation as before, not one "
           "patch", repr([(r["name"], r["body"]) for r in patches[:3]]))
    names, bad = sgnet.curl_spread(c, "http://192.0.2.97/", range(22100, 22110))
    tap.ok(not bad, "after the restart, the VIP is served", *bad[:5])

    # A pool edit by SIGHUP: main grows, a better pool appears in front.
    pools = [dict(p) for p in POOLS]
    pools[0]["addresses"] = ["192.0.2.96/29"]
    pools.append({"name": "first", "addresses": ["192.0.2.88/30"],
                  "priority": 0})
    write(pools)
    tap.ok(gw.reload() == "reloaded", "SIGHUP with edited pools: reloaded",
           gw.tail(5))
    srv.create(svc("after"))
    got = wait_ips(srv, "after", ["192.0.2.89"])
    time.sleep(1)
    still = {n: ingress(srv, n) for n in before if n != "indev"}
    still["indev"] = ingress(srv, "indev", "dev")
    tap.ok(got and still == before,
           "after the edit: a new Service takes the new first pool, and no "
           "Service whose address is still in a pool moved",
           repr(ips(srv, "after")))
    # Shrink dual: dual's IPv4 address (192.0.2.104) falls out and is
    # replaced from the best pool; its IPv6 address and racy stay.
    pools[3]["addresses"] = ["192.0.2.105/32",
                             "2001:db8:f::100-2001:db8:f::101"]
    write(pools)
    gw.reload()
    got = wait_ips(srv, "dual", ["192.0.2.90", "2001:db8:f::100"])
    tap.ok(got and ips(srv, "racy") == ["192.0.2.105"] and
           ingress(srv, "dual")[1] == "first,dual",
           "dual's pool shrunk: its IPv4 address, now outside every pool, is "
           "replaced (the pool annotation names both pools), its IPv6 "
           "address and racy's stay", repr(ingress(srv, "dual")))

    # Deletion releases for others; the gateway stops serving the VIP.
    srv.delete("services", "web", namespace="default")
    ok = sgnet.wait_until(lambda: not sgnet.service_table(gw, "default/web"), 5)
    tap.ok(ok, "web deleted: its entries leave the tables")
    srv.create(svc("reuse", annotations={"svcgw.io/address-pool": "main"}))
    tap.ok(wait_ips(srv, "reuse", ["192.0.2.97"]),
           "its address is free again for another Service",
           repr(ips(srv, "reuse")))
    # lb.default_class turned on by a reload: the class-less Service,
    # which has no record yet, is taken in; turned off, it is given up.
    write(pools, default_class=True)
    gw.reload()
    got = sgnet.wait_until(lambda: ips(srv, "classless"), 10)
    tap.ok(got and ingress(srv, "classless")[1] == "main",
           "default_class turned on by SIGHUP: the class-less Service gets an "
           "address", repr(ingress(srv, "classless")))
    write(pools)
    gw.reload()
    got = sgnet.wait_until(lambda: not ips(srv, "classless") and
                           events(srv, "classless", "IPReleased"), 10)
    tap.ok(got and ingress(srv, "classless")[1] is None,
           "default_class turned off: its status is cleared, an IPReleased "
           "Event", repr(ingress(srv, "classless")))

    denied = srv.requests(status=403, fault=None)
    tap.ok(not denied and gw.running(),
           "still nothing refused by RBAC, svcgw running",
           repr([(r["verb"], r["path"]) for r in denied[:5]]))
    tap.ok(gw.stop() == 0, "svcgw exits cleanly on SIGTERM")


if __name__ == "__main__":
    sys.exit(main())
