#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""The API server stand-in (apiserver.py) against plain clients (TAP).

Every case talks to the stand-in over real HTTPS with http.client, or with
a raw socket where the framing itself is under test (chunk boundaries,
streams cut mid-way), and checks what a client of the real kube-apiserver
relies on: authentication, Status bodies, allocation, validation,
optimistic concurrency, list paging and resourceVersion semantics, watch
events and bookmarks, 410 Expired, and each injected fault. Needs no root
except for the network-namespace case, which is skipped without it.
"""
import base64
import gzip
import http.client
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time

# The modules below are imported from the source tree: leave no
# __pycache__ in it.
sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))

import sgnet  # noqa: E402
from apiserver import (ApiServer, CLIENT_CERT_USER, DEFAULT_USER,  # noqa
                       endpoint_slice, lease, load_yaml_subset, make_ca,
                       node, rule, rules_from_manifest, service)


# -- clients ------------------------------------------------------------------

class Resp:
    def __init__(self, status, headers, raw):
        self.status, self.headers, self.raw = status, headers, raw
        try:
            self.json = json.loads(raw) if raw else None
        except ValueError:
            self.json = None

    def __repr__(self):
        return f"<{self.status} {self.raw[:300]!r}>"


class Client:
    """One keep-alive HTTPS connection, as a client library holds it."""

    def __init__(self, srv, token=True, cert=None, ca=None, timeout=10,
                 alpn=None):
        ctx = ssl.create_default_context(cafile=ca or srv.ca_path)
        if cert:
            ctx.load_cert_chain(*cert)
        if alpn:
            ctx.set_alpn_protocols(alpn)
        self.token = srv.token if token is True else token
        self.conn = http.client.HTTPSConnection(srv.host, srv.port,
                                                context=ctx, timeout=timeout)

    def req(self, method, path, body=None, ctype="application/json",
            headers=None):
        h = {"Accept": "application/json"}
        if self.token:
            h["Authorization"] = f"Bearer {self.token}"
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else \
                json.dumps(body).encode()
            h["Content-Type"] = ctype
        h.update(headers or {})
        self.conn.request(method, path, body=data, headers=h)
        r = self.conn.getresponse()
        raw = r.read()
        return Resp(r.status, {k.lower(): v for k, v in r.getheaders()}, raw)

    def get(self, path, **kw):
        return self.req("GET", path, **kw)

    def close(self):
        self.conn.close()


class Stream:
    """A raw HTTP/1.1 GET over TLS that keeps every chunk as it came, for
    watch streams: chunk sizes, the terminating chunk, and a connection
    closed without it are all visible."""

    def __init__(self, srv, path, token=True, timeout=10, headers=""):
        ctx = ssl.create_default_context(cafile=srv.ca_path)
        raw = socket.create_connection((srv.host, srv.port), timeout=timeout)
        self.s = ctx.wrap_socket(raw, server_hostname=srv.host)
        tok = srv.token if token is True else token
        req = (f"GET {path} HTTP/1.1\r\nHost: {srv.host}\r\n"
               f"Accept: application/json\r\n{headers}")
        if tok:
            req += f"Authorization: Bearer {tok}\r\n"
        self.s.sendall((req + "\r\n").encode())
        self.buf = b""
        self.chunks = []
        self.ended = False      # the terminating chunk came
        self.eof = False        # the connection closed
        self.reset = False      # ... with a RST
        line = self._line()
        self.status = int(line.split()[1])
        self.headers = {}
        while True:
            line = self._line()
            if line in (b"\r\n", b""):
                break
            k, _, v = line.decode().partition(":")
            self.headers[k.strip().lower()] = v.strip()
        self.pending = b""

    def _fill(self):
        try:
            data = self.s.recv(65536)
        except ConnectionResetError:
            self.reset = self.eof = True
            return False
        except ssl.SSLError:
            self.eof = True
            return False
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def _line(self):
        while b"\r\n" not in self.buf:
            if not self._fill():
                return b""
        i = self.buf.index(b"\r\n") + 2
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def _exact(self, n):
        while len(self.buf) < n:
            if not self._fill():
                return None
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def chunk(self, timeout=5):
        """The next chunk's data; None at the end of the stream or EOF;
        socket.timeout when nothing came."""
        self.s.settimeout(timeout)
        line = self._line()
        if not line:
            return None
        size = int(line.strip().split(b";")[0], 16)
        if size == 0:
            self._line()
            self.ended = True
            return None
        data = self._exact(size + 2)
        if data is None:
            return None
        self.chunks.append(data[:-2])
        return data[:-2]

    def event(self, timeout=5):
        """The next event line, parsed (a line that is not JSON comes back
        as ("raw", bytes)); None at the end."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self.pending:
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout("no event")
            data = self.chunk(left)
            if data is None:
                return None
            self.pending += data
        line, _, self.pending = self.pending.partition(b"\n")
        try:
            return json.loads(line)
        except ValueError:
            return ("raw", line)

    def events(self, n, timeout=5):
        return [self.event(timeout) for _ in range(n)]

    def rest(self, timeout=5):
        """Every event until the stream ends."""
        out = []
        while True:
            ev = self.event(timeout)
            if ev is None:
                return out
            out.append(ev)

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass


def rv_of(obj):
    return int(obj["metadata"]["resourceVersion"])


def svc_path(ns="default", name=None, sub=None):
    p = f"/api/v1/namespaces/{ns}/services"
    if name:
        p += "/" + name
    if sub:
        p += "/" + sub
    return p


def is_status(r, code, reason):
    j = r.json or {}
    return r.status == code and j.get("kind") == "Status" and \
        j.get("apiVersion") == "v1" and j.get("status") == "Failure" and \
        j.get("reason") == reason and j.get("code") == code


# -- the cases ----------------------------------------------------------------

def t_no_token(srv):
    r = Client(srv, token=None).get("/api/v1/services")
    return is_status(r, 401, "Unauthorized"), repr(r)


def t_wrong_token(srv):
    r = Client(srv, token="nope").get("/api/v1/services")
    return is_status(r, 401, "Unauthorized"), repr(r)


def t_token_ok(srv):
    r = Client(srv).get("/api/v1/services")
    ok = r.status == 200 and r.json["kind"] == "ServiceList" and \
        r.json["apiVersion"] == "v1" and \
        r.json["metadata"]["resourceVersion"] == srv.resource_version
    return ok, repr(r)


def t_client_cert(srv):
    srv.clear_requests()
    c = Client(srv, token=None, cert=(srv.client_cert_path,
                                      srv.client_key_path))
    r = c.get("/api/v1/nodes")
    log = srv.requests(path="/api/v1/nodes")
    ok = r.status == 200 and log and log[-1]["user"] == CLIENT_CERT_USER \
        and log[-1]["auth"] == "x509"
    return ok, repr(r), str(log[-1:])


def t_wrong_ca(srv):
    d = tempfile.mkdtemp()
    try:
        other, _ = make_ca(d, cn="not-the-cluster-ca")
        try:
            Client(srv, ca=other).get("/version")
            return False, "a server certificate from another CA verified"
        except ssl.SSLCertVerificationError as e:
            return True, str(e)
    finally:
        shutil.rmtree(d)


def t_keepalive_alpn(srv):
    c = Client(srv, alpn=["h2", "http/1.1"])
    r1 = c.get("/version")
    sock = c.conn.sock
    proto = sock.selected_alpn_protocol()
    r2 = c.get("/api/v1/namespaces")
    r3 = c.get("/healthz")
    ok = r1.status == r2.status == r3.status == 200 and \
        c.conn.sock is sock and proto == "http/1.1" and \
        r1.json["gitVersion"].startswith("v1.") and r3.raw == b"ok"
    return ok, f"alpn {proto!r}", repr(r2)


def t_discovery(srv):
    c = Client(srv)
    a = c.get("/api").json
    g = c.get("/apis").json
    v1 = c.get("/api/v1").json
    d = c.get("/apis/discovery.k8s.io/v1").json
    nf = c.get("/api/v1/widgets")
    names = {x["name"] for x in v1["resources"]}
    ok = a["versions"] == ["v1"] and \
        {"discovery.k8s.io", "coordination.k8s.io", "events.k8s.io"} <= \
        {x["name"] for x in g["groups"]} and \
        {"services", "services/status", "nodes", "events"} <= names and \
        d["resources"][0]["kind"] == "EndpointSlice" and \
        is_status(nf, 404, "NotFound")
    return ok, repr(nf)


def t_service_allocation(srv):
    c = Client(srv)
    body = service("alloc", [("http", "TCP", 80, 8080), ("dns", "UDP", 53,
                                                         5353)],
                   status={"loadBalancer": {"ingress": [{"ip": "1.2.3.4"}]}})
    r = c.req("POST", svc_path(), body)
    s = r.json
    sp = s["spec"]
    nps = [p["nodePort"] for p in sp["ports"]]
    ok = r.status == 201 and s["kind"] == "Service" and \
        sp["clusterIP"].startswith("10.96.") and \
        sp["clusterIPs"] == [sp["clusterIP"]] and \
        all(30000 <= n <= 32767 for n in nps) and len(set(nps)) == 2 and \
        s["status"] == {"loadBalancer": {}} and \
        sp["externalTrafficPolicy"] == "Cluster" and \
        sp["sessionAffinity"] == "None" and \
        sp["allocateLoadBalancerNodePorts"] is True and \
        sp["ipFamilies"] == ["IPv4"] and s["metadata"]["uid"]
    return ok, repr(r)


def t_service_nodeport_rules(srv):
    c = Client(srv)
    no_np = c.req("POST", svc_path(), service(
        "nonp", [("http", "TCP", 80, 8080)],
        allocateLoadBalancerNodePorts=False)).json
    given = c.req("POST", svc_path(), service(
        "given", [("http", "TCP", 80, 8080, 30080)], type="NodePort"))
    dup = c.req("POST", svc_path(), service(
        "dup", [("http", "TCP", 81, 8080, 30080)], type="NodePort"))
    rng = c.req("POST", svc_path(), service(
        "range", [("http", "TCP", 81, 8080, 80)], type="NodePort"))
    causes = (dup.json.get("details") or {}).get("causes") or [{}]
    ok = "nodePort" not in no_np["spec"]["ports"][0] and \
        given.status == 201 and \
        given.json["spec"]["ports"][0]["nodePort"] == 30080 and \
        is_status(dup, 422, "Invalid") and \
        causes[0].get("field") == "spec.ports[0].nodePort" and \
        "already allocated" in dup.json["message"] and \
        is_status(rng, 422, "Invalid") and "valid range" in rng.json[
            "message"]
    return ok, repr(dup), repr(rng)


def t_service_type_change(srv):
    c = Client(srv)
    s = c.req("POST", svc_path(), service(
        "flip", [("http", "TCP", 80, 8080)])).json
    np = s["spec"]["ports"][0]["nodePort"]
    # An update that leaves nodePort out keeps it (patchAllocatedValues).
    upd = dict(s)
    upd["spec"] = dict(s["spec"])
    upd["spec"]["ports"] = [{"name": "http", "protocol": "TCP", "port": 80,
                             "targetPort": 9090}]
    r1 = c.req("PUT", svc_path(name="flip"), upd).json
    # To ClusterIP: the unchanged nodePort and LB fields go.
    r2 = c.req("PATCH", svc_path(name="flip"), {"spec": {"type":
                                                         "ClusterIP"}},
               ctype="application/merge-patch+json")
    sp = r2.json["spec"]
    # The freed node port can be taken by another service.
    r3 = c.req("POST", svc_path(), service(
        "taker", [("http", "TCP", 80, 8080, np)], type="NodePort"))
    ok = r1["spec"]["ports"][0]["nodePort"] == np and \
        r1["spec"]["ports"][0]["targetPort"] == 9090 and \
        r2.status == 200 and "nodePort" not in sp["ports"][0] and \
        "externalTrafficPolicy" not in sp and \
        "allocateLoadBalancerNodePorts" not in sp and r3.status == 201
    return ok, repr(r2), repr(r3)


def t_service_invalid(srv):
    c = Client(srv)
    bad = service("bad", [("a", "FOO", 0, 8080), ("", "TCP", 70000, 1)])
    r = c.req("POST", svc_path(), bad)
    fields = {x["field"] for x in (r.json.get("details") or {})
              .get("causes", [])}
    ok = is_status(r, 422, "Invalid") and \
        r.json["message"].startswith('Service "bad" is invalid: [') and \
        {"spec.ports[0].port", "spec.ports[0].protocol",
         "spec.ports[1].name", "spec.ports[1].port"} <= fields and \
        r.json["details"]["kind"] == "Service"
    noname = c.req("POST", svc_path(), {"kind": "Service", "apiVersion":
                                        "v1", "metadata": {}, "spec": {}})
    return ok and is_status(noname, 422, "Invalid"), repr(r), repr(noname)


def t_exists_notfound(srv):
    c = Client(srv)
    c.req("POST", svc_path(), service("twice", [("", "TCP", 80, 80)]))
    again = c.req("POST", svc_path(), service("twice", [("", "TCP", 80,
                                                         80)]))
    missing = c.get(svc_path(name="nosuch"))
    es = c.get("/apis/discovery.k8s.io/v1/namespaces/default/"
               "endpointslices/nosuch")
    nons = c.req("POST", svc_path(ns="nosuchns"),
                 service("x", [("", "TCP", 80, 80)], namespace="nosuchns"))
    ok = is_status(again, 409, "AlreadyExists") and \
        again.json["message"] == 'services "twice" already exists' and \
        is_status(missing, 404, "NotFound") and \
        missing.json["details"] == {"name": "nosuch", "kind": "services"} \
        and es.json["message"] == \
        'endpointslices.discovery.k8s.io "nosuch" not found' and \
        es.json["details"]["group"] == "discovery.k8s.io" and \
        is_status(nons, 404, "NotFound") and \
        nons.json["message"] == 'namespaces "nosuchns" not found'
    return ok, repr(again), repr(missing), repr(es), repr(nons)


def t_endpointslice_shape(srv):
    c = Client(srv)
    base = "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices"
    empty = endpoint_slice("web-empty", "web", [], [])
    r = c.req("POST", base, empty)
    full = endpoint_slice("web-abc", "web", ["203.0.113.11"],
                          [{"name": "http", "port": 8080}])
    r2 = c.req("POST", base, full)
    bad = c.req("POST", base, endpoint_slice("web-bad", "web",
                                             ["2001:db8::1"], []))
    raw = json.loads(r.raw)
    ok = r.status == 201 and raw["endpoints"] is None and \
        raw["ports"] is None and raw["metadata"]["generation"] == 1 and \
        r2.json["ports"][0]["protocol"] == "TCP" and \
        is_status(bad, 422, "Invalid")
    # A spec change bumps generation.
    upd = r2.json
    upd["endpoints"].append({"addresses": ["203.0.113.12"]})
    r3 = c.req("PUT", base + "/web-abc", upd)
    return ok and r3.json["metadata"]["generation"] == 2, repr(r), \
        repr(bad), repr(r3)


def t_put_conflict_noop(srv):
    c = Client(srv)
    s = c.req("POST", svc_path(), service("occ", [("", "TCP", 80,
                                                   80)])).json
    stale = json.loads(json.dumps(s))
    s["metadata"]["labels"] = {"v": "1"}
    r1 = c.req("PUT", svc_path(name="occ"), s)
    stale["metadata"]["labels"] = {"v": "2"}
    r2 = c.req("PUT", svc_path(name="occ"), stale)
    # Unconditional (no resourceVersion) update is allowed.
    del stale["metadata"]["resourceVersion"]
    r3 = c.req("PUT", svc_path(name="occ"), stale)
    # Writing the same object again stores nothing: same resourceVersion.
    r4 = c.req("PUT", svc_path(name="occ"), r3.json)
    ok = r1.status == 200 and rv_of(r1.json) > rv_of(s) and \
        is_status(r2, 409, "Conflict") and \
        r2.json["message"].startswith(
            'Operation cannot be fulfilled on services "occ": the object '
            "has been modified") and r3.status == 200 and \
        r3.json["metadata"]["labels"] == {"v": "2"} and \
        rv_of(r4.json) == rv_of(r3.json)
    return ok, repr(r2), repr(r4)


def t_status_patch(srv):
    c = Client(srv)
    s = c.req("POST", svc_path(), service("lb", [("", "TCP", 80, 80)],
                                          loadBalancerClass="svcgw.io/lb"))
    s = s.json
    rv = s["metadata"]["resourceVersion"]
    ing = {"loadBalancer": {"ingress": [{"ip": "192.0.2.100",
                                         "ipMode": "VIP"}]}}
    mp = "application/merge-patch+json"
    ok1 = c.req("PATCH", svc_path(name="lb", sub="status"),
                {"metadata": {"resourceVersion": rv}, "status": ing,
                 "spec": {"type": "NodePort"}}, ctype=mp)
    stale = c.req("PATCH", svc_path(name="lb", sub="status"),
                  {"metadata": {"resourceVersion": rv}, "status": {
                      "loadBalancer": {}}}, ctype=mp)
    # Through the main resource a status change is ignored.
    main = c.req("PATCH", svc_path(name="lb"),
                 {"status": {"loadBalancer": {"ingress": [
                     {"ip": "192.0.2.9"}]}}}, ctype=mp)
    badip = c.req("PATCH", svc_path(name="lb", sub="status"),
                  {"status": {"loadBalancer": {"ingress": [
                      {"ip": "not-an-ip"}]}}}, ctype=mp)
    noip_mode = c.req("PATCH", svc_path(name="lb", sub="status"),
                      {"status": {"loadBalancer": {"ingress": [
                          {"hostname": "lb.example", "ipMode": "VIP"}]}}},
                      ctype=mp)
    log = srv.requests(verb="patch", subresource="status", name="lb")
    ok = ok1.status == 200 and ok1.json["status"] == ing and \
        ok1.json["spec"]["type"] == "LoadBalancer" and \
        is_status(stale, 409, "Conflict") and \
        main.json["status"] == ing and is_status(badip, 422, "Invalid") \
        and is_status(noip_mode, 422, "Invalid") and len(log) == 4 and \
        log[0]["headers"]["content-type"] == mp and \
        log[0]["body"]["status"] == ing
    return ok, repr(ok1), repr(stale), repr(main)


def t_patch_types(srv):
    c = Client(srv)
    c.req("POST", svc_path(), service("pt", [("a", "TCP", 80, 80),
                                             ("b", "TCP", 81, 81)]))
    sm = c.req("PATCH", svc_path(name="pt"),
               {"spec": {"ports": [{"port": 81, "targetPort": 9091},
                                   {"name": "c", "port": 82,
                                    "protocol": "TCP", "targetPort": 82}]}},
               ctype="application/strategic-merge-patch+json")
    ports = {p["port"]: p["targetPort"] for p in sm.json["spec"]["ports"]}
    jp = c.req("PATCH", svc_path(name="pt"),
               [{"op": "test", "path": "/spec/type", "value": "NodePort"},
                {"op": "replace", "path": "/spec/type",
                 "value": "ClusterIP"}],
               ctype="application/json-patch+json")
    jp2 = c.req("PATCH", svc_path(name="pt"),
                [{"op": "add", "path": "/metadata/labels",
                  "value": {"x": "y"}}],
                ctype="application/json-patch+json")
    apply = c.req("PATCH", svc_path(name="pt"), b"{}",
                  ctype="application/apply-patch+yaml")
    missing = c.req("PATCH", svc_path(name="nope"), {"a": 1},
                    ctype="application/merge-patch+json")
    ok = sm.status == 200 and ports == {80: 80, 81: 9091, 82: 82} and \
        is_status(jp, 422, "Invalid") and jp2.status == 200 and \
        jp2.json["metadata"]["labels"] == {"x": "y"} and \
        is_status(apply, 415, "UnsupportedMediaType") and \
        is_status(missing, 404, "NotFound")
    return ok, repr(sm), repr(jp), repr(apply)


def t_lease(srv):
    c = Client(srv)
    base = "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases"
    body = lease("svcgw-leader", "gw-a")
    r1 = c.req("PUT", base + "/svcgw-leader", body)
    held = r1.json
    held["spec"]["holderIdentity"] = "gw-b"
    r2 = c.req("PUT", base + "/svcgw-leader", held)
    held["spec"]["holderIdentity"] = "gw-c"
    r3 = c.req("PUT", base + "/svcgw-leader", held)   # stale now
    bad = dict(body)
    bad["metadata"] = {"name": "bad-time", "namespace": "kube-system"}
    bad["spec"] = dict(body["spec"], renewTime="yesterday")
    r4 = c.req("POST", base, bad)
    ok = r1.status == 201 and r2.status == 200 and \
        r2.json["spec"]["holderIdentity"] == "gw-b" and \
        is_status(r3, 409, "Conflict") and r4.status == 400 and \
        r1.json["apiVersion"] == "coordination.k8s.io/v1"
    return ok, repr(r1), repr(r3), repr(r4)


def t_events(srv):
    c = Client(srv)
    ev = {"apiVersion": "events.k8s.io/v1", "kind": "Event",
          "metadata": {"name": "web.1", "namespace": "default"},
          "eventTime": "2024-01-01T00:00:00.000000Z",
          "reportingController": "svcgw.io/lb",
          "reportingInstance": "gw-a", "action": "Allocate",
          "reason": "IPAllocated", "type": "Normal",
          "note": "192.0.2.100 from pool a",
          "regarding": {"kind": "Service", "namespace": "default",
                        "name": "web", "apiVersion": "v1"}}
    r = c.req("POST", "/apis/events.k8s.io/v1/namespaces/default/events", ev)
    core = c.get("/api/v1/namespaces/default/events/web.1").json
    sel = c.get("/api/v1/namespaces/default/events?fieldSelector="
                "involvedObject.name%3Dweb,reason%3DIPAllocated").json
    bad = dict(ev, metadata={"name": "web.2", "namespace": "default"})
    del bad["action"]
    del bad["reportingController"]
    r2 = c.req("POST", "/apis/events.k8s.io/v1/namespaces/default/events",
               bad)
    legacy = {"metadata": {"name": "web.3", "namespace": "default"},
              "involvedObject": {"kind": "Service", "namespace": "default",
                                 "name": "web"},
              "reason": "IPReleased", "message": "gone", "type": "Normal",
              "source": {"component": "svcgw"}, "count": 1}
    r3 = c.req("POST", "/api/v1/namespaces/default/events", legacy)
    fields = {x["field"] for x in (r2.json.get("details") or {})
              .get("causes", [])}
    ok = r.status == 201 and r.json["note"] == ev["note"] and \
        core["involvedObject"]["name"] == "web" and \
        core["message"] == ev["note"] and \
        core["reportingComponent"] == "svcgw.io/lb" and \
        core["firstTimestamp"] is None and \
        [i["metadata"]["name"] for i in sel["items"]] == ["web.1"] and \
        is_status(r2, 422, "Invalid") and \
        {"action", "reportingController"} <= fields and r3.status == 201
    return ok, repr(r), json.dumps(core), repr(r2)


def t_delete_finalizers(srv):
    c = Client(srv)
    s = service("fin", [("", "TCP", 80, 80)])
    s["metadata"]["finalizers"] = ["svcgw.io/release"]
    created = c.req("POST", svc_path(), s).json
    w = Stream(srv, svc_path() + "?watch=1&fieldSelector=metadata.name%3D"
               f"fin&resourceVersion={created['metadata']['resourceVersion']}")
    d1 = c.req("DELETE", svc_path(name="fin"))
    still = c.get(svc_path(name="fin"))
    fin = c.req("PATCH", svc_path(name="fin"), {"metadata": {
        "finalizers": None}}, ctype="application/merge-patch+json")
    gone = c.get(svc_path(name="fin"))
    evs = w.events(2)
    w.close()
    c.req("POST", svc_path(), service("plain", [("", "TCP", 80, 80)]))
    d2 = c.req("DELETE", svc_path(name="plain"), {
        "preconditions": {"uid": "wrong"}})
    d3 = c.req("DELETE", svc_path(name="plain"))
    ok = d1.status == 200 and d1.json["metadata"].get("deletionTimestamp") \
        and still.status == 200 and fin.status == 200 and \
        gone.status == 404 and \
        [e["type"] for e in evs] == ["MODIFIED", "DELETED"] and \
        is_status(d2, 409, "Conflict") and d3.json["status"] == "Success" \
        and d3.json["details"]["name"] == "plain"
    return ok, repr(d1), repr(fin), str(evs), repr(d3)


def t_label_selectors(srv):
    c = Client(srv)
    labels = {"s1": {"app": "a", "tier": "web"},
              "s2": {"app": "b", "service.kubernetes.io/headless": ""},
              "s3": {"app": "c", "service.kubernetes.io/service-proxy-name":
                     "other"},
              "s4": {}}
    for n, lab in labels.items():
        srv.create(service(n, [("", "TCP", 80, 80)], namespace="sel",
                           labels=lab))

    def names(sel):
        r = c.get("/api/v1/namespaces/sel/services?labelSelector=" +
                  sel.replace(" ", "%20").replace(",", "%2C")
                  .replace("!", "%21").replace("=", "%3D"))
        return sorted(i["metadata"]["name"] for i in r.json["items"])
    got = {
        "kube-proxy": names("!service.kubernetes.io/service-proxy-name,"
                            "!service.kubernetes.io/headless"),
        "eq": names("app=a"), "eqeq": names("app==b"),
        "ne": names("app!=a"), "in": names("app in (a, c)"),
        "notin": names("app notin (a,c)"), "exists": names("tier"),
        "both": names("tier,app=a"), "none": names("tier,app=b"),
    }
    want = {"kube-proxy": ["s1", "s4"], "eq": ["s1"], "eqeq": ["s2"],
            "ne": ["s2", "s3", "s4"], "in": ["s1", "s3"],
            "notin": ["s2", "s4"], "exists": ["s1"], "both": ["s1"],
            "none": []}
    bad = c.get("/api/v1/services?labelSelector=app%20in%20(a")
    bad2 = c.get("/api/v1/services?labelSelector=app%2C")
    return got == want and is_status(bad, 400, "BadRequest") and \
        is_status(bad2, 400, "BadRequest"), str(got), repr(bad2)


def t_field_selectors(srv):
    c = Client(srv)
    r1 = c.get("/api/v1/services?fieldSelector=metadata.namespace%3Dsel")
    r2 = c.get("/api/v1/services?fieldSelector=metadata.name%3Ds1,"
               "metadata.namespace!%3Ddefault")
    r3 = c.get("/api/v1/services?fieldSelector=spec.ports%3D1")
    ok = sorted(i["metadata"]["name"] for i in r1.json["items"]) == \
        ["s1", "s2", "s3", "s4"] and \
        [i["metadata"]["name"] for i in r2.json["items"]] == ["s1"] and \
        is_status(r3, 400, "BadRequest")
    return ok, repr(r3)


def t_paging(srv):
    c = Client(srv)
    for i in range(7):
        srv.create(service(f"p{i}", [("", "TCP", 80, 80)], namespace="page"))
    p1 = c.get("/api/v1/namespaces/page/services?limit=3").json
    rv = p1["metadata"]["resourceVersion"]
    # Changes between pages must not show: the pages are one snapshot.
    srv.delete("services", "p4", "page")
    srv.create(service("p35", [("", "TCP", 80, 80)], namespace="page"))
    srv.patch("services", "p5", {"metadata": {"labels": {"new": "1"}}},
              "page")
    p2 = c.get("/api/v1/namespaces/page/services?limit=3&continue=" +
               p1["metadata"]["continue"]).json
    p3 = c.get("/api/v1/namespaces/page/services?limit=3&continue=" +
               p2["metadata"]["continue"]).json
    names = [i["metadata"]["name"] for p in (p1, p2, p3) for i in p["items"]]
    ok = names == [f"p{i}" for i in range(7)] and \
        p1["metadata"]["remainingItemCount"] == 4 and \
        p2["metadata"]["resourceVersion"] == rv and \
        "labels" not in p2["items"][2]["metadata"] and \
        "continue" not in p3["metadata"] and \
        "remainingItemCount" not in p3["metadata"]
    sel = c.get("/api/v1/namespaces/page/services?limit=2&labelSelector="
                "new").json
    bad = c.get("/api/v1/namespaces/page/services?limit=3&continue=xyz")
    both = c.get("/api/v1/namespaces/page/services?limit=3&"
                 "resourceVersion=5&continue=" + p1["metadata"]["continue"])
    return ok and [i["metadata"]["name"] for i in sel["items"]] == ["p5"] \
        and "remainingItemCount" not in sel["metadata"] and \
        is_status(bad, 400, "BadRequest") and \
        is_status(both, 400, "BadRequest"), str(names), \
        json.dumps(p1["metadata"]), repr(bad)


def t_continue_expired(srv):
    c = Client(srv)
    p1 = c.get("/api/v1/namespaces/page/services?limit=2").json
    srv.patch("services", "p6", {"metadata": {"labels": {"late": "1"}}},
              "page")
    srv.compact()
    r = c.get("/api/v1/namespaces/page/services?limit=2&continue=" +
              p1["metadata"]["continue"])
    tok = (r.json.get("metadata") or {}).get("continue")
    rest = c.get("/api/v1/namespaces/page/services?continue=" + tok).json \
        if tok else {"items": []}
    ok = is_status(r, 410, "Expired") and \
        "continue parameter is too old" in r.json["message"] and \
        tok and [i["metadata"]["name"] for i in rest["items"]][-1] == "p6" \
        and rest["items"][-1]["metadata"]["labels"] == {"late": "1"}
    return ok, repr(r)


def t_rv_semantics(srv):
    c = Client(srv)
    base = "/api/v1/namespaces/page/services"
    before = c.get(base).json
    rv = before["metadata"]["resourceVersion"]
    srv.create(service("p9", [("", "TCP", 80, 80)], namespace="page"))
    exact = c.get(f"{base}?resourceVersion={rv}&resourceVersionMatch="
                  "Exact").json
    legacy = c.get(f"{base}?resourceVersion={rv}&limit=500").json
    newer = c.get(f"{base}?resourceVersion={rv}&resourceVersionMatch="
                  "NotOlderThan").json
    any0 = c.get(f"{base}?resourceVersion=0&limit=1").json
    n = len(before["items"])
    srv.compact()
    gone = c.get(f"{base}?resourceVersion={rv}&resourceVersionMatch=Exact")
    future = c.get(f"{base}?resourceVersion={int(rv) + 1000}")
    nomatch = c.get(f"{base}?resourceVersionMatch=Exact")
    ok = len(exact["items"]) == n and exact["metadata"][
        "resourceVersion"] == rv and len(legacy["items"]) == n and \
        len(newer["items"]) == n + 1 and len(any0["items"]) == n + 1 and \
        "continue" not in any0["metadata"] and \
        is_status(gone, 410, "Expired") and \
        is_status(future, 504, "Timeout") and \
        future.json["details"]["causes"][0]["reason"] == \
        "ResourceVersionTooLarge" and is_status(nomatch, 422, "Invalid")
    return ok, repr(gone), repr(future), repr(nomatch)


def t_framing_gzip(srv):
    c = Client(srv)
    for i in range(260):
        srv.create(service(f"b{i:03d}", [("", "TCP", 80, 80)],
                           namespace="bulk"))
    big = c.get("/api/v1/namespaces/bulk/services",
                headers={"Accept-Encoding": "gzip"})
    plain = c.get("/api/v1/namespaces/bulk/services")
    small = c.get("/version")
    body = json.loads(gzip.decompress(big.raw))
    ok = big.headers.get("content-encoding") == "gzip" and \
        len(body["items"]) == 260 and \
        plain.headers.get("transfer-encoding") == "chunked" and \
        "content-length" not in plain.headers and \
        len(plain.json["items"]) == 260 and \
        small.headers.get("content-length") == str(len(small.raw))
    return ok, str(big.headers), str(plain.headers)


def t_watch_from_list(srv):
    c = Client(srv)
    lst = c.get(svc_path(ns="w1")).json
    rv = lst["metadata"]["resourceVersion"]
    w = Stream(srv, svc_path(ns="w1") + f"?watch=1&resourceVersion={rv}")
    srv.create(service("a", [("", "TCP", 80, 80)], namespace="w1"))
    srv.patch("services", "a", {"metadata": {"labels": {"x": "1"}}}, "w1")
    srv.delete("services", "a", "w1")
    srv.create(service("other", [("", "TCP", 80, 80)], namespace="w2"))
    evs = w.events(3)
    w.close()
    rvs = [rv_of(e["object"]) for e in evs]
    ok = w.status == 200 and \
        w.headers.get("transfer-encoding") == "chunked" and \
        [e["type"] for e in evs] == ["ADDED", "MODIFIED", "DELETED"] and \
        all(e["object"]["kind"] == "Service" and
            e["object"]["apiVersion"] == "v1" for e in evs) and \
        rvs == sorted(rvs) and len(set(rvs)) == 3 and rvs[0] > int(rv) \
        and evs[2]["object"]["metadata"]["labels"] == {"x": "1"} and \
        len(w.chunks) == 3
    return ok, str(evs)


def t_watch_initial(srv):
    w = Stream(srv, "/api/v1/namespaces/sel/services?watch=true")
    evs = w.events(4)
    w.close()
    names = sorted(e["object"]["metadata"]["name"] for e in evs)
    return all(e["type"] == "ADDED" for e in evs) and \
        names == ["s1", "s2", "s3", "s4"], str(names)


def t_watch_future(srv):
    srv.create({"kind": "Namespace", "apiVersion": "v1",
                "metadata": {"name": "fu"}})
    rv = int(srv.resource_version)
    w = Stream(srv, svc_path(ns="fu") + f"?watch=1&resourceVersion={rv + 2}")
    srv.wait_watches(1, namespace="fu")
    for n in ("f1", "f2", "f3"):
        srv.create(service(n, [("", "TCP", 80, 80)], namespace="fu"))
    ev = w.event()
    w.close()
    return ev["object"]["metadata"]["name"] == "f3", str(ev)[:300]


def t_bookmarks(srv):
    rv = srv.resource_version
    w = Stream(srv, svc_path(ns="bm") + f"?watch=1&resourceVersion={rv}"
               "&allowWatchBookmarks=true")
    nob = Stream(srv, svc_path(ns="bm") + f"?watch=1&resourceVersion={rv}")
    srv.wait_watches(2, path=svc_path(ns="bm"))
    srv.create(service("x", [("", "TCP", 80, 80)], namespace="w2"))
    n = srv.send_bookmarks()
    ev = w.event()
    try:
        nob.event(0.5)
        quiet = False
    except socket.timeout:
        quiet = True
    w.close()
    nob.close()
    o = ev["object"]
    ok = n >= 1 and ev["type"] == "BOOKMARK" and o["kind"] == "Service" \
        and set(o["metadata"]) == {"resourceVersion", "creationTimestamp"} \
        and o["metadata"]["resourceVersion"] == srv.resource_version and \
        o["spec"] == {} and quiet
    return ok, str(ev)


def t_watch_timeout(srv):
    t = time.monotonic()
    w = Stream(srv, svc_path(ns="bm") + "?watch=1&timeoutSeconds=3&"
               f"allowWatchBookmarks=true&resourceVersion="
               f"{srv.resource_version}")
    evs = w.rest(timeout=10)
    took = time.monotonic() - t
    w.close()
    # The stream ends cleanly (final chunk), after a bookmark sent shortly
    # before the timeout, as the watch cache does.
    return w.ended and not w.eof and \
        [e["type"] for e in evs] == ["BOOKMARK"], f"{took:.1f}s {evs}"


def t_selector_transitions(srv):
    rv = srv.resource_version
    w = Stream(srv, svc_path(ns="tr") + "?watch=1&labelSelector=svcgw%3Dyes"
               f"&resourceVersion={rv}")
    srv.create(service("t", [("", "TCP", 80, 80)], namespace="tr",
                       labels={"svcgw": "no"}))
    srv.patch("services", "t", {"metadata": {"labels": {"svcgw": "yes"}}},
              "tr")
    srv.patch("services", "t", {"metadata": {"labels": {"svcgw": "yes",
                                                         "b": "1"}}}, "tr")
    srv.patch("services", "t", {"metadata": {"labels": {"svcgw": "no"}}},
              "tr")
    last = srv.get("services", "t", "tr")
    evs = w.events(3)
    w.close()
    types = [e["type"] for e in evs]
    gone = evs[2]["object"]
    ok = types == ["ADDED", "MODIFIED", "DELETED"] and \
        gone["metadata"]["labels"]["svcgw"] == "yes" and \
        gone["metadata"]["resourceVersion"] == \
        last["metadata"]["resourceVersion"]
    return ok, str(types), json.dumps(gone["metadata"])


def t_watch_expired(srv):
    old = srv.resource_version
    srv.create(service("e", [("", "TCP", 80, 80)], namespace="ex"))
    srv.compact()
    w = Stream(srv, svc_path(ns="ex") + f"?watch=1&resourceVersion={old}")
    evs = w.rest()
    w.close()
    o = evs[0]["object"] if evs else {}
    ok = w.status == 200 and len(evs) == 1 and evs[0]["type"] == "ERROR" \
        and o.get("kind") == "Status" and o.get("code") == 410 and \
        o.get("reason") == "Expired" and \
        o["message"].startswith("too old resource version") and w.ended
    return ok, str(evs)


def t_watch_path_and_initial_events(srv):
    srv.create(service("one", [("", "TCP", 80, 80)], namespace="wp"))
    srv.create(service("two", [("", "TCP", 80, 80)], namespace="wp"))
    w = Stream(srv, "/api/v1/watch/namespaces/wp/services/two")
    ev = w.event()
    w.close()
    w2 = Stream(srv, "/api/v1/namespaces/wp/services?watch=1&"
                "sendInitialEvents=true&resourceVersionMatch=NotOlderThan&"
                "allowWatchBookmarks=true")
    evs = w2.events(3)
    w2.close()
    bad = Client(srv).get("/api/v1/services?watch=1&resourceVersionMatch="
                          "NotOlderThan&resourceVersion=1")
    notbool = Client(srv).get("/api/v1/services?watch=maybe")
    ok = ev["type"] == "ADDED" and ev["object"]["metadata"]["name"] == \
        "two" and [e["type"] for e in evs] == ["ADDED", "ADDED",
                                               "BOOKMARK"] and \
        evs[2]["object"]["metadata"]["annotations"] == {
            "k8s.io/initial-events-end": "true"} and \
        is_status(bad, 422, "Invalid") and \
        is_status(notbool, 400, "BadRequest")
    return ok, str(evs), repr(bad), repr(notbool)


def t_fail_next(srv):
    c = Client(srv)
    srv.fail_next(2, 500, match={"verb": "list", "resource": "services"})
    r1 = c.get("/api/v1/services")
    r0 = c.get("/api/v1/nodes")     # not matched
    r2 = c.get("/api/v1/services")
    r3 = c.get("/api/v1/services")
    srv.fail_next(1, 429, retry_after=3)
    r4 = c.get("/api/v1/nodes")
    log = srv.requests(fault=lambda f: f is not None)
    ok = is_status(r1, 500, "InternalError") and r0.status == 200 and \
        is_status(r2, 500, "InternalError") and r3.status == 200 and \
        is_status(r4, 429, "TooManyRequests") and \
        r4.headers.get("retry-after") == "3" and \
        r4.json["details"]["retryAfterSeconds"] == 3 and len(log) >= 3
    return ok, repr(r1), repr(r4)


def t_stall(srv):
    srv.stall(2.0, match={"path": "/api/v1/nodes"})
    c = Client(srv, timeout=0.5)
    try:
        c.get("/api/v1/nodes")
        timed_out = False
    except socket.timeout:
        timed_out = True
    after = Client(srv).get("/api/v1/nodes")
    # A watch stalled after its headers: headers come, events wait.
    srv.stall(1.5, match={"watch": True, "namespace": "st"}, where="body")
    w = Stream(srv, svc_path(ns="st") + "?watch=1")
    srv.create(service("s", [("", "TCP", 80, 80)], namespace="st"))
    try:
        w.event(0.3)
        held = False
    except socket.timeout:
        held = True
    ev = w.event(5)
    w.close()
    return timed_out and after.status == 200 and w.status == 200 and \
        held and ev["type"] == "ADDED", repr(after), str(ev)


def t_drop_watches(srv):
    w1 = Stream(srv, svc_path(ns="dr") + "?watch=1")
    w2 = Stream(srv, svc_path(ns="dr2") + "?watch=1")
    srv.wait_watches(2, namespace=("dr", "dr2"))
    n = srv.drop_watches(match={"namespace": "dr"})
    r1 = w1.chunk(5)
    srv.create(service("still", [("", "TCP", 80, 80)], namespace="dr2"))
    ev = w2.event()
    n2 = srv.drop_watches(reset=True, match={"namespace": "dr2"})
    r2 = w2.chunk(5)
    w1.close()
    w2.close()
    ok = n == 1 and r1 is None and w1.eof and not w1.ended and \
        ev["type"] == "ADDED" and n2 == 1 and r2 is None and w2.eof and \
        not w2.ended
    return ok, f"dropped {n}, {n2}; w2 reset={w2.reset}"


def t_malformed_line(srv):
    w = Stream(srv, svc_path(ns="ml") + "?watch=1")
    srv.wait_watches(1, namespace="ml")
    n = srv.inject_watch_line(match={"namespace": "ml"})
    bad = w.event()
    srv.create(service("m", [("", "TCP", 80, 80)], namespace="ml"))
    good = w.event()
    w.close()
    return n == 1 and isinstance(bad, tuple) and good["type"] == "ADDED", \
        str(bad), str(good)


def t_split_chunks(srv):
    # Cuts of 1-5 bytes over a dozen events: a cut on a boundary would
    # be all but certain if the stand-in did not avoid it.
    srv.split_chunks(max_size=5, gap=0)
    try:
        w = Stream(srv, svc_path(ns="sp") + "?watch=1")
        srv.wait_watches(1, namespace="sp")
        # Changes in one burst reach the watch in one batch, so chunks
        # also straddle event boundaries.
        with srv.registry.cond:
            for i in range(12):
                srv.create(service(f"c{i:02d}", [("", "TCP", 80, 80)],
                                   namespace="sp"))
        evs = w.events(12)
        w.close()
    finally:
        srv.split_chunks(False)
    ends, off = set(), 0
    data = b"".join(w.chunks)
    for line in data.split(b"\n")[:-1]:
        off += len(line) + 1
        ends.add(off)
    cuts, off = [], 0
    for ch in w.chunks:
        off += len(ch)
        cuts.append(off)
    inner = [x for x in cuts[:-1] if x in ends]
    straddle = any(b"\n" in ch[:-1] for ch in w.chunks)
    ok = [e["object"]["metadata"]["name"] for e in evs] == \
        [f"c{i:02d}" for i in range(12)] and not inner and straddle and \
        max(len(c) for c in w.chunks) <= 5 and \
        len(w.chunks) >= len(data) // 5
    return ok, f"{len(w.chunks)} chunks, boundaries on events: {inner}"


def t_delay_events(srv):
    srv.delay_events(1.5)
    try:
        w = Stream(srv, svc_path(ns="dl") + "?watch=1")
        srv.wait_watches(1, namespace="dl")
        srv.create(service("d", [("", "TCP", 80, 80)], namespace="dl"))
        try:
            w.event(0.3)
            held = False
        except socket.timeout:
            held = True
        ev = w.event(5)
        w.close()
    finally:
        srv.delay_events(0)
    return held and ev["type"] == "ADDED", str(ev)


def t_request_log(srv):
    srv.clear_requests()
    srv.create(service("foreign", [("", "TCP", 80, 80)],
                       loadBalancerClass="other.io/lb"))
    c = Client(srv)
    c.get("/api/v1/services?labelSelector=app", headers={
        "User-Agent": "svcgw/test"})
    c.req("PATCH", svc_path(name="lb", sub="status"), {"metadata": {}},
          ctype="application/merge-patch+json")
    every = srv.requests()
    touched = srv.requests(name="foreign")
    lst = srv.requests(verb="list", resource="services")
    ok = not touched and len(every) == 2 and lst and \
        lst[0]["query"] == {"labelSelector": "app"} and \
        lst[0]["headers"]["user-agent"] == "svcgw/test" and \
        lst[0]["headers"]["authorization"] == "Bearer ..." and \
        lst[0]["user"] == DEFAULT_USER and lst[0]["status"] == 200 and \
        every[1]["subresource"] == "status"
    return ok, json.dumps(every[:2], default=str)[:600]


def t_rbac(srv):
    d = tempfile.mkdtemp()
    try:
        path = os.path.join(d, "rbac.yaml")
        with open(path, "w", encoding="utf-8") as f:
            f.write("""# the gateway's role
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: svcgw
rules:
  - apiGroups: [""]
    resources: ["services", "nodes"]
    verbs: ["get", "list", "watch"]
  - apiGroups: ["discovery.k8s.io"]
    resources:
      - endpointslices
    verbs: ["list", "watch"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: svcgw-leases
  namespace: kube-system
rules:
- apiGroups: ["coordination.k8s.io"]
  resources: ["leases"]
  verbs: ["get", "update", 'create']
""")
        rules = rules_from_manifest(path)
    finally:
        shutil.rmtree(d)
    srv.set_rbac(rules)
    try:
        c = Client(srv)
        lst = c.get("/api/v1/services")
        patch = c.req("PATCH", svc_path(name="lb", sub="status"),
                      {"metadata": {}}, ctype="application/merge-patch+json")
        es = c.get("/apis/discovery.k8s.io/v1/endpointslices")
        es_get = c.get("/apis/discovery.k8s.io/v1/namespaces/default/"
                       "endpointslices/x")
        ls = c.get("/apis/coordination.k8s.io/v1/namespaces/kube-system/"
                   "leases/svcgw-leader")
        ls2 = c.get("/apis/coordination.k8s.io/v1/namespaces/default/"
                    "leases/svcgw-leader")
        # Per user, from rule(): this user may list services, no more.
        srv.set_rbac({DEFAULT_USER: [rule(["list"], ["services"])]})
        mine = c.get("/api/v1/services")
        other = c.get("/api/v1/nodes")
    finally:
        srv.set_rbac(None)
    want = (f'services "lb" is forbidden: User "{DEFAULT_USER}" cannot '
            'patch resource "services/status" in API group "" in the '
            'namespace "default"')
    ok = len(rules) == 3 and rules[2]["namespaces"] == ["kube-system"] and \
        lst.status == 200 and is_status(patch, 403, "Forbidden") and \
        patch.json["message"] == want and es.status == 200 and \
        is_status(es_get, 403, "Forbidden") and ls.status == 200 and \
        is_status(ls2, 403, "Forbidden") and mine.status == 200 and \
        is_status(other, 403, "Forbidden") and other.json["message"] == (
            f'nodes is forbidden: User "{DEFAULT_USER}" cannot list '
            'resource "nodes" in API group "" at the cluster scope')
    return ok, repr(patch), repr(other), str(rules)


def t_restart(srv):
    port = srv.port
    w = Stream(srv, svc_path(ns="rs") + "?watch=1")
    srv.wait_watches(1, namespace="rs")
    srv.create(service("keep", [("", "TCP", 80, 80)], namespace="rs"))
    w.event()
    srv.stop()
    cut = w.chunk(5)
    try:
        Client(srv, timeout=2).get("/version")
        refused = False
    except OSError:
        refused = True
    srv.start()
    r = Client(srv).get(svc_path(ns="rs", name="keep"))
    w.close()
    return cut is None and not w.ended and refused and srv.port == port \
        and r.status == 200, repr(r)


def t_kubeconfig(srv):
    d = tempfile.mkdtemp()
    try:
        p1 = srv.write_kubeconfig(os.path.join(d, "kc-token"))
        p2 = srv.write_kubeconfig(os.path.join(d, "kc-cert"),
                                  auth="client-cert", embed=False)
        p3 = srv.write_kubeconfig(os.path.join(d, "kc-file"),
                                  auth="token-file", decoy=False,
                                  fmt="json")
        with open(p1, encoding="utf-8") as f:
            k1 = load_yaml_subset(f.read())[0]
        with open(p2, encoding="utf-8") as f:
            k2 = load_yaml_subset(f.read())[0]
        with open(p3, encoding="utf-8") as f:
            k3 = json.load(f)

        def current(k):
            ctx = next(c["context"] for c in k["contexts"]
                       if c["name"] == k["current-context"])
            cl = next(c["cluster"] for c in k["clusters"]
                      if c["name"] == ctx["cluster"])
            us = next(u["user"] for u in k["users"]
                      if u["name"] == ctx["user"])
            return cl, us
        cl1, us1 = current(k1)
        cl2, us2 = current(k2)
        cl3, us3 = current(k3)
        with open(srv.ca_path, "rb") as f:
            ca = f.read()
        with open(us3["tokenFile"], encoding="ascii") as f:
            tok = f.read()
        # The credentials work: the token against the API, the client
        # certificate and key load and authenticate.
        r = Client(srv, token=us1["token"]).get("/api/v1/nodes")
        r2 = Client(srv, token=None, cert=(us2["client-certificate"],
                                           us2["client-key"]),
                    ca=cl2["certificate-authority"]).get("/api/v1/nodes")
        ok = k1["contexts"][0]["name"] == "decoy" and \
            cl1["server"] == srv.url and \
            base64.b64decode(cl1["certificate-authority-data"]) == ca and \
            r.status == 200 and r2.status == 200 and tok == srv.token and \
            cl3["certificate-authority-data"] and len(k3["contexts"]) == 1
        return ok, repr(r), repr(r2)
    finally:
        shutil.rmtree(d)


def t_in_cluster(srv):
    d = tempfile.mkdtemp()
    try:
        sa = os.path.join(d, "serviceaccount")
        env = srv.write_in_cluster(sa)
        with open(os.path.join(sa, "token"), encoding="ascii") as f:
            t1 = f.read()
        layout = os.path.islink(os.path.join(sa, "token")) and \
            os.readlink(os.path.join(sa, "token")) == "..data/token" and \
            os.path.islink(os.path.join(sa, "..data"))
        t2 = srv.rotate_in_cluster_token(sa)
        with open(os.path.join(sa, "token"), encoding="ascii") as f:
            now = f.read()
        old_ok = Client(srv, token=t1).get("/version").status
        t3 = srv.rotate_in_cluster_token(sa, revoke_old=True)
        revoked = Client(srv, token=t2).get("/version").status
        new_ok = Client(srv, token=t3).get("/version").status
        dirs = [x for x in os.listdir(sa) if x.startswith("..2")]
        ok = env == {"KUBERNETES_SERVICE_HOST": "127.0.0.1",
                     "KUBERNETES_SERVICE_PORT": str(srv.port),
                     "KUBERNETES_SERVICE_PORT_HTTPS": str(srv.port)} and \
            layout and now == t2 != t1 and old_ok == 200 and \
            revoked == 401 and new_ok == 200 and len(dirs) == 1
        return ok, f"{env} layout={layout} {old_ok} {revoked} {new_ok}"
    finally:
        shutil.rmtree(d)


def t_nodes(srv):
    c = Client(srv)
    r = c.req("POST", "/api/v1/nodes", node("n1", ["192.0.2.1"]))
    st = c.req("PATCH", "/api/v1/nodes/n1/status",
               {"status": {"addresses": [{"type": "ExternalIP",
                                          "address": "192.0.2.2"}]}},
               ctype="application/strategic-merge-patch+json")
    types = [a["type"] for a in st.json["status"]["addresses"]]
    nons = c.get("/api/v1/namespaces/default/nodes/n1")
    ok = r.status == 201 and "namespace" not in r.json["metadata"] and \
        types == ["InternalIP", "ExternalIP"] and \
        is_status(nons, 404, "NotFound")
    return ok, repr(st), repr(nons)


def t_ipv6_and_guard(srv):
    try:
        ApiServer(host="192.0.2.1")
        guarded = False
    except ValueError:
        guarded = True
    with ApiServer(host="::1", default_objects=False) as s6:
        r = Client(s6).get("/version")
        s = s6.create(service("v6", [("", "TCP", 80, 80)],
                              ipFamilyPolicy="PreferDualStack"))
        env = s6.in_cluster_env()
        url = s6.url
    ok = guarded and r.status == 200 and url.startswith("https://[::1]:") \
        and env["KUBERNETES_SERVICE_HOST"] == "::1" and \
        s["spec"]["ipFamilies"] == ["IPv4", "IPv6"] and \
        len(s["spec"]["clusterIPs"]) == 2
    return ok, repr(r), url, json.dumps(s["spec"])


def t_history_window(_srv):
    with ApiServer(history_events=3, default_objects=False) as s:
        s.create({"kind": "Namespace", "apiVersion": "v1",
                  "metadata": {"name": "h"}})
        rv = s.resource_version
        for i in range(2):
            s.create(service(f"h{i}", [("", "TCP", 80, 80)], namespace="h"))
        w_ok = Stream(s, svc_path(ns="h") + f"?watch=1&resourceVersion={rv}")
        first = w_ok.events(2)
        w_ok.close()
        for i in range(2, 6):
            s.create(service(f"h{i}", [("", "TCP", 80, 80)], namespace="h"))
        w_old = Stream(s, svc_path(ns="h") + f"?watch=1&resourceVersion={rv}")
        evs = w_old.rest()
        w_old.close()
    ok = [e["type"] for e in first] == ["ADDED", "ADDED"] and \
        len(evs) == 1 and evs[0]["type"] == "ERROR" and \
        evs[0]["object"]["code"] == 410
    return ok, str(evs)


def t_netns(_srv):
    ns = f"apisrv{os.getpid()}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"],
                       check=True)
        with ApiServer(netns=ns, default_objects=False) as s:
            # Not reachable from here: the socket lives in the namespace.
            try:
                socket.create_connection(("127.0.0.1", s.port), 1).close()
                outside = True
            except OSError:
                outside = False
            p = subprocess.run(
                ["ip", "netns", "exec", ns, "curl", "-sS", "--cacert",
                 s.ca_path, "-H", f"Authorization: Bearer {s.token}",
                 s.url + "/version"], capture_output=True, text=True,
                timeout=20)
        return not outside and '"gitVersion"' in p.stdout, p.stdout, \
            p.stderr
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)


CASES = [
    ("401 Status without a token", t_no_token),
    ("401 Status with a wrong token", t_wrong_token),
    ("a good token lists", t_token_ok),
    ("client-certificate authentication", t_client_cert),
    ("a client trusting another CA refuses the server", t_wrong_ca),
    ("HTTP/1.1 keep-alive, ALPN picks http/1.1 over h2", t_keepalive_alpn),
    ("discovery documents and 404 Status", t_discovery),
    ("Service create: clusterIP, nodePorts, defaults, status dropped",
     t_service_allocation),
    ("nodePort rules: allocateLoadBalancerNodePorts, given, duplicate, "
     "range", t_service_nodeport_rules),
    ("type change keeps then drops allocated values",
     t_service_type_change),
    ("invalid Service: 422 Invalid with causes", t_service_invalid),
    ("409 AlreadyExists, 404 NotFound for objects and namespaces",
     t_exists_notfound),
    ("EndpointSlice: null lists, defaults, generation, address family",
     t_endpointslice_shape),
    ("PUT: 409 on a stale resourceVersion, no-op writes keep it",
     t_put_conflict_noop),
    ("PATCH services/status: merge patch, 409, status only there",
     t_status_patch),
    ("strategic merge, JSON patch, 415 for apply", t_patch_types),
    ("Lease: create on PUT, 409 on a stale holder update", t_lease),
    ("Events: events.k8s.io/v1 and core/v1 views, validation", t_events),
    ("DELETE: Status, finalizers, preconditions", t_delete_finalizers),
    ("label selectors: !key, =, ==, !=, in, notin, exists",
     t_label_selectors),
    ("field selectors: metadata.name/namespace, unknown field 400",
     t_field_selectors),
    ("limit/continue: one snapshot across pages, remainingItemCount",
     t_paging),
    ("continue after compaction: 410 Expired with a continue token",
     t_continue_expired),
    ("list resourceVersion: Exact, legacy, NotOlderThan, 0, 410, 504",
     t_rv_semantics),
    ("framing: Content-Length small, chunked large, gzip over 128 KiB",
     t_framing_gzip),
    ("watch from a list's version: ordered events, one chunk each",
     t_watch_from_list),
    ("watch without a version starts with ADDED for every object",
     t_watch_initial),
    ("watch from a future version skips the changes up to it",
     t_watch_future),
    ("bookmarks: only resourceVersion, only when allowed", t_bookmarks),
    ("timeoutSeconds ends the stream cleanly after a bookmark",
     t_watch_timeout),
    ("label-selector watch: stops matching = DELETED", t_selector_transitions),
    ("watch from a compacted version: 200 then ERROR 410 Expired",
     t_watch_expired),
    ("/watch/ path, sendInitialEvents with its end bookmark",
     t_watch_path_and_initial_events),
    ("fault: 500 for the next N matching requests, 429 Retry-After",
     t_fail_next),
    ("fault: stall before headers and before watch events", t_stall),
    ("fault: drop open watches (FIN and RST) without the final chunk",
     t_drop_watches),
    ("fault: malformed line in a watch, events go on", t_malformed_line),
    ("fault: chunks cut inside events, never on their boundaries",
     t_split_chunks),
    ("fault: delayed events", t_delay_events),
    ("request log: what was touched, query, headers, user",
     t_request_log),
    ("RBAC rules from a manifest: 403 Forbidden like the real one", t_rbac),
    ("stop/start: connections cut, same port, objects kept", t_restart),
    ("kubeconfig writer: token, token file, client cert, decoy context",
     t_kubeconfig),
    ("in-cluster directory: atomic-writer layout, token rotation",
     t_in_cluster),
    ("Nodes: cluster-scoped, status subresource, strategic merge keys",
     t_nodes),
    ("IPv6 listener, dual-stack service, loopback guard", t_ipv6_and_guard),
    ("history window by event count: 410 past it", t_history_window),
    ("listens inside a network namespace", t_netns),
]


def main():
    tap = sgnet.Tap(len(CASES))
    srv = ApiServer(too_large_wait=0.5).start()
    try:
        for name, fn in CASES:
            tap.case(name, fn, srv)
    finally:
        srv.close()
    return tap.finish()


if __name__ == "__main__":
    sys.exit(main())
