#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""k8s-bench: the real svcgw following a large cluster (the API server
stand-in of tests/apiserver), and how fast.

usage: sudo tools/k8s-bench.py [--build DIR] [--services N]
                               [--endpoints-per-service E] [--changes C]
                               [--seed S] [--quick]

The stand-in (in this process, on 127.0.0.1) is filled with N LoadBalancer
Services (default 10,000), each with one EndpointSlice of E ready endpoints
(default 10: 100,000 in all) and a VIP in status.loadBalancer.ingress.
They do not ask for node ports (allocateLoadBalancerNodePorts: false): the
stand-in, as a real API server, has 2,768 of them (30000-32767), and each
port of a NodePort or LoadBalancer Service would take one. VIPs are
192.0.2.10 and up, each shared by 50 services on ports 1000-1049, and
endpoints come from 203.0.113.2-251 (documentation ranges only).

svcgw then starts with a kubeconfig for it, on two net_null ports (no
packets: this is the control plane's benchmark; tools/svcgw-bench and the
micro-benchmarks measure the data path), and three figures are taken:

  first full sync   from svcgw's start (spawn) until every service is in
                    the data plane (/svcgw/sync: served == N), and as svcgw
                    times it itself (first_sync_ms: from the client's start
                    to the tables holding the first full list);
  change latency    C times (default 1,000), one at a time: an
                    EndpointSlice of a random service is rewritten (one
                    endpoint replaced), and the time from just before the
                    write to the moment svcgw's control thread returned from
                    publishing that service's new entry (RCU pointer swap:
                    workers use it from their next burst). svcgw stamps
                    each publication with CLOCK_REALTIME and its service
                    (/svcgw/sync: last_publish_us, last_publish); this
                    process stamps the write with the same clock on the
                    same host, and waits for that publication before the
                    next change. p50, p90, p99 and max;
  memory            svcgw's resident set (VmRSS) after the sync and after
                    the changes, and its peak (VmHWM); DPDK's memory is
                    --no-huge anonymous memory, counted as it is touched.

Targets (issue 6): sync under 3 s, p99 under 10 ms, memory under 1 GiB.
--quick: 500 services and 50 changes, a smoke run of a few seconds.
Python 3 standard library only; run as root (DPDK's telemetry socket).
"""
import argparse
import importlib.machinery
import importlib.util
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(TOP, "tests", "apiserver"))
import apiserver  # noqa: E402

NAMESPACE = "bench"
PER_VIP = 50
TARGETS = {"sync_s": 3.0, "p99_ms": 10.0, "rss_mib": 1024}


def load_svcgwctl():
    path = os.path.join(TOP, "tools", "svcgwctl")
    loader = importlib.machinery.SourceFileLoader("svcgwctl", path)
    spec = importlib.util.spec_from_loader("svcgwctl", loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


def vip_of(i):
    n = 10 + i // PER_VIP
    if n > 254:
        raise SystemExit("k8s-bench: too many services for 192.0.2.0/24 "
                         f"at {PER_VIP} per VIP")
    return f"192.0.2.{n}"


def endpoints_of(i, per, version=0):
    """per distinct pod addresses of service i; version shifts the last."""
    addrs = [f"203.0.113.{2 + (i + j * (250 // per)) % 250}"
             for j in range(per)]
    if version % 2:
        addrs[-1] = f"203.0.113.{2 + (i + 250 // per // 2) % 250}"
    return addrs


def fill(srv, n, per):
    t = time.monotonic()
    for i in range(n):
        name = f"svc-{i:05d}"
        srv.create(apiserver.service(
            name, [("http", "TCP", 1000 + i % PER_VIP, 8080)],
            namespace=NAMESPACE, allocateLoadBalancerNodePorts=False,
            status={"loadBalancer": {"ingress": [{"ip": vip_of(i)}]}}))
        srv.create(apiserver.endpoint_slice(
            f"{name}-a", name, endpoints_of(i, per), [("http", "TCP", 8080)],
            namespace=NAMESPACE))
    return time.monotonic() - t


def config(prefix, kubeconfig, n):
    services = max(4096, 1 << (n + 64).bit_length())
    return f"""# k8s-bench: svcgw on net_null ports, following the stand-in.
eal = [ "--file-prefix={prefix}", "--no-huge", "-m", "1024", "--no-pci",
        "-l", "0-1" ];
workers = [ 1 ];
ports = (
	{{ name = "ext"; device = "net_null0,no-rx=1"; role = "external";
	   address = "198.51.100.1/24"; }},
	{{ name = "int"; device = "net_null1,no-rx=1"; role = "internal";
	   address = "203.0.113.1/24"; }}
);
node_addresses = [ "192.0.2.1" ];
snat_addresses = [ "203.0.113.1" ];
tables = {{ services = {services}; service_keys = {2 * services}; }};
kubernetes = {{ source = "kubeconfig"; kubeconfig = "{kubeconfig}"; }};
"""


class Daemon:
    def __init__(self, exe, conf, log_path):
        self.log = open(log_path, "w", encoding="utf-8")
        self.p = subprocess.Popen([exe, "-c", conf], stdin=subprocess.DEVNULL,
                                  stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, text=True)
        self.lines = []
        self.t0 = time.monotonic()
        self.seen = {}		# first arrival of a line containing a mark
        self.ready = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.p.stderr:
            self.log.write(line)
            self.log.flush()
            self.lines.append(line.rstrip("\n"))
            for mark in ("k8s: synced", "k8s: the tables follow"):
                if mark in line and mark not in self.seen:
                    self.seen[mark] = time.monotonic() - self.t0
            if "svcgw: ready" in line:
                self.ready.set()
        self.ready.set()

    def rss(self):
        out = {}
        with open(f"/proc/{self.p.pid}/status", encoding="ascii") as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("VmRSS", "VmHWM"):
                    out[k] = int(v.split()[0]) / 1024.0
        return out

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(20)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.log.close()
        return self.p.returncode


def pct(v, q):
    s = sorted(v)
    return s[min(len(s) - 1, int(round(q / 100.0 * (len(s) - 1))))]


def run(args, tmp, ctl):
    prefix = f"k8sbench{os.getpid()}"
    srv = apiserver.ApiServer(history_seconds=600, workdir=os.path.join(
        tmp, "apiserver")).start()
    fill_s = fill(srv, args.services, args.endpoints_per_service)
    print(f"stand-in: {args.services} services, "
          f"{args.services * args.endpoints_per_service} endpoints in "
          f"{args.services} EndpointSlices, written in {fill_s:.1f} s")
    kc = srv.write_kubeconfig(os.path.join(tmp, "kubeconfig"))
    conf = os.path.join(tmp, "svcgw.conf")
    with open(conf, "w", encoding="utf-8") as f:
        f.write(config(prefix, kc, args.services))
    exe = os.path.join(args.build, "app", "svcgw", "svcgw")
    t0 = time.monotonic()
    d = Daemon(exe, conf, os.path.join(tmp, "svcgw.log"))
    tel = None
    try:
        if not d.ready.wait(60) or d.p.poll() is not None:
            raise SystemExit("k8s-bench: svcgw did not start:\n" +
                             "\n".join(d.lines[-20:]))
        t_ready = time.monotonic() - t0
        sock = ctl.socket_path(prefix)
        tel = ctl.Telemetry(sock)
        deadline = time.monotonic() + 120
        while True:
            st = tel.query("/svcgw/sync")
            if st["served"] >= args.services and st["first_sync_ms"]:
                break
            if time.monotonic() > deadline or d.p.poll() is not None:
                raise SystemExit(f"k8s-bench: no full sync: {st}")
            time.sleep(0.001)
        t_sync = time.monotonic() - t0
        total = tel.query("/svcgw/services,0")["total"]
        mem_sync = d.rss()
        print(f"svcgw: ready {t_ready:.2f} s after its start; every service "
              f"in the data plane {t_sync:.2f} s after its start "
              f"({st['first_sync_ms']} ms after the client started, "
              f"{total} service entries, {st['served']} served, "
              f"{st['refused'] + st['parked']} skipped)")
        listed = d.seen.get("k8s: synced")
        if listed is not None:
            print(f"  of which: lib/k8s had listed and modelled everything "
                  f"{listed:.2f} s after the start, the control thread had "
                  f"published it all {t_sync - listed:.2f} s later")

        rng = random.Random(args.seed)
        versions = {}
        lat = []
        key_of = {}
        for n in range(args.changes):
            i = rng.randrange(args.services)
            name = f"svc-{i:05d}"
            key_of[n] = f"{NAMESPACE}/{name}"
            versions[i] = versions.get(i, 0) + 1
            before = st["publications"]
            obj = apiserver.endpoint_slice(
                f"{name}-a", name,
                endpoints_of(i, args.endpoints_per_service, versions[i]),
                [("http", "TCP", 8080)], namespace=NAMESPACE)
            t_write = time.time_ns()
            srv.replace(obj)
            deadline = time.monotonic() + 10
            while True:
                st = tel.query("/svcgw/sync")
                if st["publications"] > before and \
                        st["last_publish"] == key_of[n]:
                    break
                if time.monotonic() > deadline:
                    raise SystemExit(f"k8s-bench: change {n} of {name} not "
                                     f"published: {st}")
                # The stand-in serves its watches from this process: leave
                # it the interpreter between two polls.
                time.sleep(0.0001)
            lat.append((st["last_publish_us"] * 1000 - t_write) / 1e6)
        mem_end = d.rss()
    finally:
        if tel is not None:
            tel.close()
        rc = d.stop()
        srv.close()
        shutil.rmtree(os.path.join("/var/run/dpdk", prefix),
                      ignore_errors=True)
    if rc != 0:
        print(f"k8s-bench: svcgw exited with {rc}", file=sys.stderr)

    p50, p90, p99 = pct(lat, 50), pct(lat, 90), pct(lat, 99)
    print(f"change latency, EndpointSlice write -> published, over "
          f"{len(lat)} changes: p50 {p50:.2f} ms, p90 {p90:.2f} ms, "
          f"p99 {p99:.2f} ms, max {max(lat):.2f} ms, "
          f"mean {statistics.mean(lat):.2f} ms")
    print(f"svcgw resident memory: {mem_sync['VmRSS']:.0f} MiB after the "
          f"sync, {mem_end['VmRSS']:.0f} MiB after the changes, peak "
          f"{mem_end['VmHWM']:.0f} MiB")
    print()
    rows = (("first full sync (spawn to all served)", f"{t_sync:.2f} s",
             f"< {TARGETS['sync_s']:.0f} s", t_sync < TARGETS["sync_s"]),
            ("change latency p99", f"{p99:.2f} ms",
             f"< {TARGETS['p99_ms']:.0f} ms", p99 < TARGETS["p99_ms"]),
            ("resident memory (peak)", f"{mem_end['VmHWM']:.0f} MiB",
             f"< {TARGETS['rss_mib']} MiB",
             mem_end["VmHWM"] < TARGETS["rss_mib"]))
    for what, got, target, ok in rows:
        print(f"  {what:<40} {got:>12}   target {target:<10} "
              f"{'met' if ok else 'MISSED'}")
    return 0 if rc == 0 else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default=os.path.join(TOP, "build"),
                    help="meson build directory (default: build)")
    ap.add_argument("--services", type=int, default=10000)
    ap.add_argument("--endpoints-per-service", type=int, default=10)
    ap.add_argument("--changes", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--quick", action="store_true",
                    help="500 services, 50 changes: a smoke run")
    args = ap.parse_args()
    if args.quick:
        args.services, args.changes = 500, 50
    if not 1 <= args.endpoints_per_service <= 125:
        ap.error("--endpoints-per-service: 1 to 125")
    if args.services < 1 or args.changes < 1:
        ap.error("--services and --changes: at least 1")
    if os.geteuid() != 0:
        ap.error("run as root: DPDK's telemetry socket is under /var/run")
    ctl = load_svcgwctl()
    tmp = tempfile.mkdtemp(prefix="k8s-bench-")
    try:
        return run(args, tmp, ctl)
    finally:
        if os.environ.get("K8S_BENCH_KEEP"):
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
