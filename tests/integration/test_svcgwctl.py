#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""tools/svcgwctl against a fake telemetry server (TAP).

The fake speaks DPDK 22.11's telemetry v2 protocol on a SOCK_SEQPACKET
socket in a temp dir: a JSON greeting with max_output_len on connect, then
one {"<command>": value} message per request, null for a refused command.
Its tables follow svcgw's contract: columns (equal-length arrays) with
"total" and "start", at most 64 rows a page, page START asked for as
"command,START". This checks svcgwctl's rendering, paging, JSON output and
errors with no gateway running; the integration tests run it against the
real daemon.
"""
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading

import sgnet

PAGE = 64


class FakeTelemetry:
    """A telemetry server; handler(cmd) -> value (None: refused)."""

    def __init__(self, path, handler, greeting=None):
        self.path = path
        self.handler = handler
        self.greeting = greeting if greeting is not None else {
            "version": "DPDK 22.11.0", "pid": os.getpid(),
            "max_output_len": 16384}
        self.requests = []
        os.makedirs(os.path.dirname(path), exist_ok=True)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.sock.bind(path)
        self.sock.listen(4)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,),
                             daemon=True).start()

    def _serve(self, conn):
        with conn:
            g = self.greeting
            conn.send(g if isinstance(g, bytes) else json.dumps(g).encode())
            while True:
                data = conn.recv(1024)
                if not data:
                    return
                cmd = data.decode()
                self.requests.append(cmd)
                conn.send(json.dumps({cmd: self.handler(cmd)}).encode())

    def close(self):
        self.sock.close()
        os.unlink(self.path)


def page(columns, start, total=None, **scalars):
    """One page of a columnar table, as svcgw builds it."""
    n = len(next(iter(columns.values())))
    out = {"total": n if total is None else total, "start": start}
    out.update(scalars)
    for k, v in columns.items():
        out[k] = v[start:start + PAGE]
    return out


SERVICES = {
    "id": list(range(1, 151)),
    "name": [f"ns{i % 3}/svc-{i}" for i in range(1, 151)],
    "mode": ["nat"] * 150,
    "keys": [1 + i % 2 for i in range(150)],
    "backends": [3] * 150,
    "usable": [3] * 150,
    "maglev_size": [307] * 150,
    "generation": [1] * 150,
    "flags": [0] * 150,
}
BACKENDS = {
    "index": list(range(1, 71)),
    "address": [f"203.0.113.{i}:8080" for i in range(1, 71)],
    "state": ["ready"] * 69 + ["terminating"],
    "weight": [1] * 70,
    "slots": [4] * 69 + [1],
}
STATS = {"rx": 1000, "tx": 990, "fwd": 980, "drop_no_service": 7,
         "drop_bad_csum": 3,
         "port": ["ext", "int"], "port_rx": [600, 400],
         "port_tx": [390, 600], "port_missed": [0, 0], "port_errors": [0, 1]}
SYNC = {"source": "kubeconfig", "server": "https://127.0.0.1:6443",
        "synced": 1, "first_sync_ms": 41, "last_error": "", "served": 9,
        "resource": ["services", "endpointslices", "nodes"],
        "state": ["watching", "watching", "backoff"],
        "resource_version": ["812", "812", "790"], "objects": [10, 12, 3],
        "failures": [0, 0, 2]}
BAD_OBJECTS = {"service": [f"default/s{i:02d}" for i in range(40)],
               "state": ["refused"] * 39 + ["parked"],
               "reason": ["sessionAffinity ClientIP is not forwarded"] * 40}


def flows(n):
    sample = {"worker": [1, 2], "proto": ["tcp", "udp"],
              "client": ["198.51.100.2:40000", "198.51.100.2:40001"],
              "service": ["192.0.2.100:80", "192.0.2.100:53"],
              "snat": ["203.0.113.1:1024", "203.0.113.1:33000"],
              "backend": ["203.0.113.11:8080", "203.0.113.12:5353"],
              "state": ["established", "udp"], "age_ms": [12, 800]}
    out = {"count": 7, "per_worker": [3, 4]}
    out.update({k: v[:n] for k, v in sample.items()})
    return out


class Gateway:
    """The fake gateway's command table; `mode` bends it for error cases."""

    def __init__(self):
        self.mode = "good"

    def __call__(self, cmd):
        name, _, param = cmd.partition(",")
        args = param.split(",") if param else []
        try:
            nums = [int(a) for a in args]
        except ValueError:
            return None
        if name == "/svcgw/services" and len(nums) <= 1:
            start = nums[0] if nums else 0
            if self.mode == "wrong-start" and start:
                start += 1
            if self.mode == "shrink" and start:
                cols = {k: v[:100] for k, v in SERVICES.items()}
                return page(cols, start)
            return page(SERVICES, start)
        if name == "/svcgw/backends" and len(nums) in (1, 2):
            if nums[0] != 7:
                return None
            return page(BACKENDS, nums[1] if len(nums) > 1 else 0,
                        service=7)
        if name == "/svcgw/flows" and len(nums) <= 1:
            return flows(nums[0] if nums else 2)
        if name == "/svcgw/stats" and not nums:
            return STATS
        if name == "/svcgw/neighbours" and len(nums) <= 1:
            return page({"port": [], "address": [], "mac": [], "state": [],
                         "age_s": []}, nums[0] if nums else 0)
        if name == "/svcgw/sync" and not nums:
            return SYNC
        if name == "/svcgw/skipped" and len(nums) <= 1:
            return page(BAD_OBJECTS, nums[0] if nums else 0)
        if name == "/eal/params":
            return ["svcgw", "--no-huge", "-m", "512"]
        if name == "/big":
            return {"blob": "x" * 30000}
        return None


def ctl(*args, env=None):
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run([sys.executable, sgnet.svcgwctl_path()]
                          + list(args), capture_output=True, text=True,
                          timeout=20, env=e)


def main():
    tap = sgnet.Tap(27)
    tmp = tempfile.mkdtemp(prefix="svcgwctl-test-")
    gw = Gateway()
    sock = os.path.join(tmp, "dpdk", "fakegw", "dpdk_telemetry.v2")
    srv = FakeTelemetry(sock, gw)
    try:
        run_cases(tap, tmp, gw, srv, sock)
    finally:
        srv.close()
        subprocess.run(["rm", "-rf", tmp])
    return tap.finish()


def run_cases(tap, tmp, gw, srv, sock):
    # -- usage and connection errors first
    p = ctl()
    tap.ok(p.returncode == 2, "no command: usage error, exit 2", repr(p))
    p = ctl("-s", sock, "raw", "svcgw/stats")
    tap.ok(p.returncode == 2 and "starts with '/'" in p.stderr,
           "raw command without '/': usage error", repr(p))
    p = ctl("-s", sock, "-p", "x", "stats")
    tap.ok(p.returncode == 2, "-s and -p together: usage error", repr(p))
    p = ctl("backends")
    tap.ok(p.returncode == 2, "backends without an ID: usage error", repr(p))
    missing = os.path.join(tmp, "nothing", "dpdk_telemetry.v2")
    p = ctl("-s", missing, "stats")
    tap.ok(p.returncode == 1 and missing in p.stderr and not p.stdout,
           "no socket: exit 1, the path in the message", repr(p))

    bad_path = os.path.join(tmp, "bad.sock")
    bad = FakeTelemetry(bad_path, gw, greeting=b"hello")
    p = ctl("-s", bad_path, "stats")
    bad.close()
    tap.ok(p.returncode == 1 and "not JSON" in p.stderr,
           "a socket that is not telemetry: exit 1", repr(p))

    p = ctl("-s", sock, "backends", "9")
    tap.ok(p.returncode == 1 and "refused" in p.stderr
           and "/svcgw/backends,9" in p.stderr,
           "null reply (unknown service): exit 1, command named", repr(p))

    # -- paging and rendering
    del srv.requests[:]
    p = ctl("-s", sock, "services")
    tap.ok(srv.requests == ["/svcgw/services", "/svcgw/services,64",
                            "/svcgw/services,128"],
           "services: all three pages asked for, in order",
           repr(srv.requests))
    lines = p.stdout.splitlines()
    header = next((ln for ln in lines if ln.split()[:1] == ["id"]), "")
    rows = [ln for ln in lines if ln[:5].strip().isdigit()]
    tap.ok(p.returncode == 0 and header.split() == list(SERVICES)
           and len(rows) == 150,
           "services: one header and 150 rows, a column per array",
           p.stdout[:600], p.stderr)
    tap.ok("total: 150" in lines and not any(ln.startswith("start")
                                            for ln in lines),
           "services: scalars as 'name: value', paging detail hidden",
           p.stdout[:300])
    r149 = rows[148].split() if len(rows) == 150 else []
    tap.ok(r149 == ["149", "ns2/svc-149", "nat", "1", "3", "3", "307", "1",
                    "0"], "services: row 149 comes from the third page",
           repr(r149))

    p = ctl("-s", sock, "--json", "services")
    try:
        got = json.loads(p.stdout)
    except json.JSONDecodeError:
        got = None
    want = {"/svcgw/services": dict({"total": 150, "start": 0}, **SERVICES)}
    tap.ok(got == want, "services --json: the pages merged, as received",
           p.stdout[:300], p.stderr)

    del srv.requests[:]
    p = ctl("-s", sock, "backends", "7")
    lines = p.stdout.splitlines()
    tap.ok(srv.requests == ["/svcgw/backends,7", "/svcgw/backends,7,64"],
           "backends 7: the ID then the start as parameters",
           repr(srv.requests))
    last = lines[-1] if lines else ""
    hdr = next((ln for ln in lines if ln.lstrip().startswith("index")), "")
    # Numbers right-aligned under their header, text left-aligned.
    tap.ok(p.returncode == 0 and last.split() ==
           ["70", "203.0.113.70:8080", "terminating", "1", "1"]
           and hdr.index("index") + len("index") == last.index("70") + 2
           and hdr.index("address") == last.index("203.0.113.70"),
           "backends: aligned table, numbers right, text left",
           hdr, last)
    tap.ok("service: 7" in lines and "total:   70" in lines,
           "backends: scalars aligned by name", p.stdout[:200])

    p = ctl("-s", sock, "flows")
    lines = p.stdout.splitlines()
    tap.ok(p.returncode == 0 and "per_worker: 3 4" in lines
           and any(ln.split()[:2] == ["worker", "proto"] for ln in lines)
           and not any("per_worker" in ln and "worker" in ln.split()[1:]
                       for ln in lines),
           "flows: per_worker is a summary line even when as long as the "
           "sample", p.stdout)
    del srv.requests[:]
    p = ctl("-s", sock, "flows", "1")
    rows = [ln for ln in p.stdout.splitlines() if ln.split()[:1] == ["1"]]
    tap.ok(srv.requests == ["/svcgw/flows,1"] and len(rows) == 1
           and "198.51.100.2:40000" in rows[0],
           "flows N: the sample size is passed on", repr(srv.requests),
           p.stdout)

    p = ctl("-s", sock, "stats")
    lines = p.stdout.splitlines()
    tap.ok(p.returncode == 0 and "drop_no_service: 7" in
           [" ".join(ln.split()) for ln in lines]
           and any(ln.split() == ["int", "400", "600", "0", "1"]
                   for ln in lines),
           "stats: counters as lines, ports as a table", p.stdout)

    p = ctl("-s", sock, "neighbours")
    lines = p.stdout.splitlines()
    tap.ok(p.returncode == 0 and lines[-1] == "(none)"
           and lines[-2].split() == ["port", "address", "mac", "state",
                                     "age_s"],
           "neighbours: an empty table says so under its header", p.stdout)

    p = ctl("-s", sock, "sync")
    lines = [" ".join(ln.split()) for ln in p.stdout.splitlines()]
    tap.ok(p.returncode == 0 and "synced: 1" in lines
           and "server: https://127.0.0.1:6443" in lines
           and "nodes backoff 790 3 2" in lines,
           "sync: scalars as lines, one row per resource", p.stdout)

    p = ctl("-s", sock, "--json", "skipped")
    got = (json.loads(p.stdout or "null") or {}).get("/svcgw/skipped", {})
    tap.ok(p.returncode == 0 and got.get("service") == BAD_OBJECTS["service"]
           and got.get("state", [None])[-1] == "parked",
           "skipped: every page of the skipped services", repr(p)[:400])

    env = {"RUNTIME_DIRECTORY": tmp}
    p = ctl("-p", "fakegw", "--json", "stats", env=env)
    tap.ok(p.returncode == 0 and json.loads(p.stdout or "null") ==
           {"/svcgw/stats": STATS},
           "-p FILE_PREFIX finds the socket where EAL puts it", repr(p))

    p = ctl("-s", sock, "raw", "/eal/params")
    tap.ok(p.stdout.splitlines() == ["svcgw", "--no-huge", "-m", "512"],
           "raw: a list reply, one item a line", p.stdout)
    del srv.requests[:]
    p = ctl("-s", sock, "--one-page", "--json", "raw", "/svcgw/services")
    got = json.loads(p.stdout or "null") or {}
    tap.ok(srv.requests == ["/svcgw/services"] and
           len(got.get("/svcgw/services", {}).get("id", [])) == 64,
           "--one-page: only the first page", repr(srv.requests))

    p = ctl("-s", sock, "--json", "raw", "/big")
    tap.ok(p.returncode == 0 and len(p.stdout) > 30000,
           "a reply longer than 16 KB arrives whole", p.stderr)

    gw.mode = "wrong-start"
    p = ctl("-s", sock, "services")
    tap.ok(p.returncode == 1 and "not the page asked for" in p.stderr,
           "a page with the wrong start is an error, not a bad table",
           repr(p))
    gw.mode = "shrink"
    p = ctl("-s", sock, "--json", "services")
    got = (json.loads(p.stdout or "null") or {}).get("/svcgw/services", {})
    tap.ok(p.returncode == 0 and got.get("total") == 100
           and len(got.get("id", [])) == 100,
           "a table that shrinks while paged: stops at the new total",
           repr(p)[:400])
    gw.mode = "good"


if __name__ == "__main__":
    sys.exit(main())
