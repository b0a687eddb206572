# SPDX-License-Identifier: BSD-3-Clause
"""The integration harness: namespaces, pods, clients, the gateway, TAP.

Shared by every tests/integration/test_*.py and by tools/demo.py. What lives
here: the topology of DESIGN.md's test addresses built from network
namespaces and veth pairs, the stand-in pods (pod.py), the real clients
(curl, socat, iperf3, tcpdump) run inside the client namespace, svcgw run
inside the gateway namespace, libconfig rendering of its config, and a TAP
writer. Everything a run creates is registered with its Harness and torn
down, by PID and by name, when the run ends however it ends.

The topology (one run; NS = the run's prefix, unique per process):

  NS-client                 NS-gw (svcgw)                   NS-pods
  eth0 198.51.100.2/24 ---- gw-ext | gw-int ---------------- eth0 203.0.113.11/24
  192.0.2.0/24 via .1       (no kernel addresses)                 203.0.113.12/24
                                                                  203.0.113.13/24

The veth ends are created directly inside their namespaces, so the names
seen by svcgw (gw-ext, gw-int) are fixed and config/demo.conf needs no
templating; only the namespaces carry the unique prefix. The pods have no
route off their link: in nat mode every reply goes to the SNAT address
(203.0.113.1, the gateway's internal port address), so a gateway that
forgot to translate a source would show up as a failed connection.

Options of Topology.create() for the tests of the other modes and of IPv6
(the IPv4-only topology above is what they add to):

  ipv6=True     IPv6 too, quietly (no DAD, no router solicitations):
                client eth0 2001:db8:e::2/64 (the external link) and the
                client's own address 2001:db8:c::2/64, which the gateway
                reaches through its gateway6 2001:db8:e::2, so IPv6 replies
                take the routed path; gw-ext 2001:db8:e::1, gw-int
                2001:db8:f::1; pods 2001:db8:f::11, ::12, ::13; VIPs and
                node address in 2001:db8:a::/64.
  return_routes=True  the pods route the clients' prefixes back through
                the gateway's internal address (dnat and Local keep the
                client's address, so replies go to the client).
  direct=True   a veth "direct" from the pods straight to the client, for
                the DSR modes: the pods answer from a VIP (held on their
                loopback) over it, never through the gateway (policy
                routing on the source: from the VIP prefixes, table 100;
                IPv6 next hop 2001:db8:d::2, the client's end).
"""
import atexit
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import types

HERE = os.path.dirname(os.path.abspath(__file__))
SRC_ROOT = os.path.dirname(os.path.dirname(HERE))

CLIENT_ADDR = "198.51.100.2"
EXT_ADDR = "198.51.100.1"
INT_ADDR = "203.0.113.1"
NODE_ADDR = "192.0.2.1"
VIP = "192.0.2.100"
VIP_BULK = "192.0.2.101"
VIP_EMPTY = "192.0.2.102"
SNAT_ADDR = INT_ADDR
PODS = (("pod-a", "203.0.113.11"), ("pod-b", "203.0.113.12"),
        ("pod-c", "203.0.113.13"))
HTTP_PORT = 8080
UDP_PORT = 5353
IPERF_PORT = 5201
NODE_PORT = 30080

# IPv6 (Topology.create(ipv6=True)): the client sits behind a router (the
# client namespace itself, 2001:db8:e::2) as seen from the gateway.
CLIENT6 = "2001:db8:c::2"
CLIENT_LINK6 = "2001:db8:e::2"
EXT6 = "2001:db8:e::1"
INT6 = "2001:db8:f::1"
NODE6 = "2001:db8:a::1"
SNAT6 = INT6
PODS6 = (("pod-a", "2001:db8:f::11"), ("pod-b", "2001:db8:f::12"),
         ("pod-c", "2001:db8:f::13"))
# The pods' table for answers from a VIP (DSR): out of the direct link.
DSR_TABLE = "100"
DIRECT_CLIENT6 = "2001:db8:d::2"
DIRECT_PODS6 = "2001:db8:d::1"

DPDK_RUN_DIR = "/var/run/dpdk"


def svcgw_path():
    return os.environ.get("SVCGW") or os.path.join(
        SRC_ROOT, "build", "app", "svcgw", "svcgw")


def svcgwctl_path():
    return os.environ.get("SVCGWCTL") or os.path.join(
        SRC_ROOT, "tools", "svcgwctl")


def ns_argv(ns, argv):
    """argv run inside network namespace ns (None: here)."""
    return (["ip", "netns", "exec", ns] + list(argv)) if ns else list(argv)


def run(argv, ns=None, timeout=30, check=True, input=None):
    """Run a command to completion; text output captured."""
    p = subprocess.run(ns_argv(ns, argv), input=input, capture_output=True,
                       text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} (in {ns or 'root ns'}): "
                           f"exit {p.returncode}: {p.stderr.strip()}")
    return p


class Lines:
    """The lines a child writes to a pipe, gathered by a thread, so a
    reader can wait for the next one with a timeout (select() on the pipe
    would miss lines already in Python's buffer)."""

    def __init__(self, stream):
        self.q = queue.Queue()
        threading.Thread(target=self._pump, args=(stream,),
                         daemon=True).start()

    def _pump(self, stream):
        try:
            for line in stream:
                self.q.put(line)
        except (OSError, ValueError):
            pass  # the pipe was closed under us: the end either way
        self.q.put(None)

    def next(self, timeout):
        """The next line, or None at EOF or after timeout seconds."""
        try:
            return self.q.get(timeout=timeout)
        except queue.Empty:
            return None

    def wait_for(self, text, timeout):
        """True once a line containing text arrives, False at EOF or after
        timeout seconds."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            line = self.next(left)
            if line is None:
                return False
            if text in line:
                return True


class Tap:
    """TAP producer: plan first, then one line per case.

    finish() reports every planned case that never ran as "not ok", so a
    test that dies half-way can never look like a pass.
    """

    def __init__(self, plan):
        self.plan = plan
        self.n = 0
        self.failed = 0
        print(f"1..{plan}", flush=True)

    def diag(self, *lines):
        for text in lines:
            for line in str(text).splitlines():
                print(f"# {line}", flush=True)

    def ok(self, cond, name, *diag):
        self.n += 1
        if not cond:
            self.failed += 1
        print(f"{'ok' if cond else 'not ok'} {self.n} - {name}", flush=True)
        if not cond or os.environ.get("SVCGW_TAP_VERBOSE"):
            self.diag(*diag)
        return cond

    def case(self, name, fn, *args):
        """Run fn(*args) -> (cond, diag lines...); an exception fails it."""
        try:
            res = fn(*args)
        except Exception as e:  # the case failed; report why, go on
            return self.ok(False, name, f"{type(e).__name__}: {e}")
        if isinstance(res, tuple):
            return self.ok(bool(res[0]), name, *res[1:])
        return self.ok(bool(res), name)

    def finish(self, why="not reached"):
        while self.n < self.plan:
            self.ok(False, why)
        return 1 if self.failed else 0


def run_test(tag, plan, run):
    """An integration test's whole life: as root, a TAP plan of `plan`
    cases and a Harness tagged `tag`, run(tap, h), everything it started
    torn down whatever happened; an exception is reported and fails the
    cases it left unreached. Returns the exit status."""
    require_root()
    tap = Tap(plan)
    h = Harness(tag)
    try:
        run(tap, h)
    except Exception as e:  # reported; the unreached cases fail below
        tap.diag(f"aborted: {type(e).__name__}: {e}")
    finally:
        h.close()
    return tap.finish()


class Harness:
    """Owns what one run creates; close() (also at exit and on SIGTERM,
    SIGINT, SIGHUP) stops its processes by PID, then deletes its
    namespaces, DPDK runtime directories and temporary files."""

    def __init__(self, tag):
        if not re.fullmatch(r"[a-z0-9]{1,8}", tag):
            raise ValueError("tag: 1-8 of [a-z0-9]")
        self.prefix = f"sg{tag}{os.getpid()}"
        self.tmp = tempfile.mkdtemp(prefix=f"svcgw-{tag}-")
        self.procs = []
        self.namespaces = []
        self.dpdk_prefixes = []
        self.cleanups = []
        self.closed = False
        atexit.register(self.close)
        for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(s, self._on_signal)

    def _on_signal(self, signum, _frame):
        # Leave through sys.exit so finally blocks and atexit run.
        sys.exit(128 + signum)

    def path(self, name):
        return os.path.join(self.tmp, name)

    def spawn(self, argv, ns=None, **kw):
        """Start a process (inside ns) and own it; `ip netns exec` execs the
        command, so the PID is the command's own."""
        p = subprocess.Popen(ns_argv(ns, argv), **kw)
        self.procs.append(p)
        return p

    def stop(self, p, sig=signal.SIGTERM, timeout=5):
        """Stop one of our processes; its exit code (None if it was killed
        because it ignored sig)."""
        if p.poll() is None:
            try:
                p.send_signal(sig)
                return p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
                return None
        return p.returncode

    # Tests bind clients to fixed ports below 48000 (curl --local-port):
    # an ephemeral port the kernel gave earlier in the namespace, still in
    # TIME_WAIT, would make such a bind fail with EADDRINUSE. Ephemeral
    # ports come from above them.
    EPHEMERAL_PORTS = "50000 60999"

    def add_namespace(self, name):
        run(["ip", "netns", "add", name])
        self.namespaces.append(name)
        run(["sysctl", "-qw", f"net.ipv4.ip_local_port_range={self.EPHEMERAL_PORTS}"],
            ns=name)

    def on_close(self, fn):
        """Run fn at close, after our processes stopped (last added, first run)."""
        self.cleanups.append(fn)

    def close(self):
        if self.closed:
            return
        self.closed = True
        for p in reversed(self.procs):
            try:
                self.stop(p)
            except OSError:
                pass
        for fn in reversed(self.cleanups):
            try:
                fn()
            except (OSError, RuntimeError) as e:
                print(f"# cleanup: {e}", flush=True)
        for ns in reversed(self.namespaces):
            run(["ip", "netns", "del", ns], check=False)
        for prefix in self.dpdk_prefixes:
            shutil.rmtree(os.path.join(DPDK_RUN_DIR, prefix),
                          ignore_errors=True)
        if os.environ.get("SVCGW_KEEP_TMP"):
            print(f"# kept {self.tmp}", flush=True)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)


HUGEPAGES_2M = "/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages"


def hugepages(h, megabytes):
    """Reserve megabytes of 2 MiB hugepages on top of what the machine has
    and mount a hugetlbfs of our own for them; both undone at h.close().
    Returns the mount point, for EAL's --huge-dir."""
    with open(HUGEPAGES_2M, encoding="ascii") as f:
        before = int(f.read())
    want = before + megabytes // 2

    def restore():
        with open(HUGEPAGES_2M, "w", encoding="ascii") as f:
            f.write(str(before))

    with open(HUGEPAGES_2M, "w", encoding="ascii") as f:
        f.write(str(want))
    h.on_close(restore)
    with open(HUGEPAGES_2M, encoding="ascii") as f:
        got = int(f.read())
    if got < want:
        raise RuntimeError(f"hugepages: asked for {want} of 2 MiB, the kernel "
                           f"gave {got} (memory too fragmented or too small)")
    mnt = h.path("huge")
    os.mkdir(mnt)
    run(["mount", "-t", "hugetlbfs", "-o", "pagesize=2M", "nodev", mnt])
    h.on_close(lambda: run(["umount", mnt]))
    return mnt


class Topology:
    """client -- gw -- pods, as drawn in this file's header."""

    def __init__(self, h):
        self.h = h
        self.client = f"{h.prefix}-client"
        self.gw = f"{h.prefix}-gw"
        self.pods = f"{h.prefix}-pods"

    def create(self, workers=1, ipv6=False, return_routes=False,
               direct=False):
        h = self.h
        for ns in (self.client, self.gw, self.pods):
            h.add_namespace(ns)
            # Without ipv6 (and always on the gateway, whose veths belong
            # to DPDK): IPv6 off, so no DAD, router solicitations or MLD
            # reports reach the wire to confuse captures and counters.
            # With it: no DAD (addresses usable at once, no NS probes) and
            # no router solicitations. Set before the veths exist so they
            # inherit it.
            v6 = ipv6 and ns != self.gw
            keys = (("accept_dad", 0), ("router_solicitations", 0)) \
                if v6 else (("disable_ipv6", 1),)
            sysctls = [f"net.ipv6.conf.{conf}.{k}={v}"
                       for conf in ("all", "default") for k, v in keys]
            if direct:
                # DSR answers reach the client on the direct link from a
                # VIP it routes through the gateway, and the pods' stack
                # from the decapsulator's TUN device: no reverse-path
                # filter may drop them.
                sysctls += [f"net.ipv4.conf.{conf}.rp_filter=0"
                            for conf in ("all", "default")]
            if direct and ns == self.pods:
                # The VIPs the pods hold on lo for DSR are not theirs to
                # answer ARP for, or to announce, on the gateway's link.
                sysctls += [f"net.ipv4.conf.{conf}.{k}"
                            for conf in ("all", "default")
                            for k in ("arp_ignore=1", "arp_announce=2")]
            run(["sysctl", "-qw"] + sysctls, ns=ns)
            run(["ip", "-n", ns, "link", "set", "lo", "up"])
        # As many queue pairs as the gateway has workers: a veth spreads
        # what it receives over its rx queues, and the gateway must poll
        # every one of them.
        q = ["numtxqueues", str(workers), "numrxqueues", str(workers)]
        run(["ip", "-n", self.client, "link", "add", "eth0", *q, "type", "veth",
             "peer", "name", "gw-ext", *q, "netns", self.gw])
        run(["ip", "-n", self.pods, "link", "add", "eth0", *q, "type", "veth",
             "peer", "name", "gw-int", *q, "netns", self.gw])

        # A kernel sending on a veth leaves TCP/UDP checksums partial
        # (CHECKSUM_PARTIAL) for the peer to finish; an AF_PACKET reader on
        # the peer, as DPDK's af_packet PMD is, gets the unfinished sum and
        # would forward it as is. `ip link` cannot change offloads; ethtool
        # can: with tx checksumming off the kernel checksums in software,
        # and TSO goes off with it, so no 64 KB super-packets reach the
        # gateway either.
        for ns in (self.client, self.pods):
            run(["ethtool", "-K", "eth0", "tx", "off"], ns=ns)
        for dev in ("gw-ext", "gw-int"):
            # GRO on the gateway side would merge segments into frames
            # bigger than the MTU before the PMD sees them.
            run(["ethtool", "-K", dev, "tx", "off", "gro", "off"], ns=self.gw)
            run(["ip", "-n", self.gw, "link", "set", dev, "up"])

        run(["ip", "-n", self.client, "addr", "add", f"{CLIENT_ADDR}/24",
             "dev", "eth0"])
        run(["ip", "-n", self.client, "link", "set", "eth0", "up"])
        run(["ip", "-n", self.client, "route", "add", "192.0.2.0/24",
             "via", EXT_ADDR])
        for _, addr in PODS:
            run(["ip", "-n", self.pods, "addr", "add", f"{addr}/24",
                 "dev", "eth0"])
        if ipv6:
            run(["ip", "-n", self.client, "addr", "add",
                 f"{CLIENT_LINK6}/64", "dev", "eth0"])
            run(["ip", "-n", self.client, "addr", "add", f"{CLIENT6}/64",
                 "dev", "eth0"])
            wait_v6_addresses(self.client)
            run(["ip", "-n", self.client, "route", "add", "2001:db8:a::/64",
                 "via", EXT6, "src", CLIENT6])
            for _, addr in PODS6:
                run(["ip", "-n", self.pods, "addr", "add", f"{addr}/64",
                     "dev", "eth0"])
        run(["ip", "-n", self.pods, "link", "set", "eth0", "up"])
        if return_routes:
            run(["ip", "-n", self.pods, "route", "add", "198.51.100.0/24",
                 "via", INT_ADDR])
            if ipv6:
                run(["ip", "-n", self.pods, "route", "add",
                     "2001:db8:c::/64", "via", INT6])
        if direct:
            self._direct(ipv6)
        if ipv6:
            for ns in (self.client, self.pods):
                wait_v6_addresses(ns)
        return self

    def _direct(self, ipv6):
        """The DSR return path: pods -> client, bypassing the gateway."""
        run(["ip", "-n", self.pods, "link", "add", "direct", "type", "veth",
             "peer", "name", "direct", "netns", self.client])
        for ns in (self.client, self.pods):
            run(["ethtool", "-K", "direct", "tx", "off"], ns=ns)
            run(["ip", "-n", ns, "link", "set", "direct", "up"])
        ip = ["ip", "-n", self.pods]
        run(ip + ["rule", "add", "from", "192.0.2.0/24", "table", DSR_TABLE,
                  "pref", "100"])
        run(ip + ["route", "add", "default", "dev", "direct", "table",
                  DSR_TABLE])
        if ipv6:
            # IPv6 answers NS only for addresses on the asked interface:
            # the pods reach the client through an address of the link.
            run(["ip", "-n", self.client, "addr", "add",
                 f"{DIRECT_CLIENT6}/64", "dev", "direct"])
            run(ip + ["addr", "add", f"{DIRECT_PODS6}/64", "dev", "direct"])
            run(ip + ["-6", "rule", "add", "from", "2001:db8:a::/64",
                      "table", DSR_TABLE, "pref", "100"])
            run(ip + ["-6", "route", "add", "default", "via",
                      DIRECT_CLIENT6, "dev", "direct", "table", DSR_TABLE])

    def hold_vips(self, vips):
        """The pods hold these VIPs on lo, as DSR backends do."""
        for v in vips:
            plen = 128 if ":" in v else 32
            run(["ip", "-n", self.pods, "addr", "add", f"{v}/{plen}",
                 "dev", "lo"])


def wait_v6_addresses(ns, timeout=5):
    """Until no IPv6 address of ns is tentative. Even without DAD a new
    address is tentative until the kernel's DAD work runs, a moment later:
    no route may use it as its source, no socket bind it, before then."""
    deadline = time.monotonic() + timeout
    while run(["ip", "-n", ns, "-6", "addr", "show", "tentative"]).stdout:
        if time.monotonic() > deadline:
            raise RuntimeError(f"IPv6 addresses of {ns} still tentative")
        time.sleep(0.02)


class Pods:
    """The three stand-in pods (pod.py), each logging who it served.

    ipv6: each pod also serves on its PODS6 address (dual-stack pods).
    http_ports: the ports each pod's HTTP server listens on.
    add(): one more stand-in, e.g. a DSR "pod" listening on VIPs.
    """

    def __init__(self, h, topo, pods=PODS, ipv6=False,
                 http_ports=(HTTP_PORT,)):
        self.h = h
        self.topo = topo
        self.pods = pods
        self.procs = {}
        six = dict(PODS6) if ipv6 else {}
        self.spec = [(name, [addr] + ([six[name]] if name in six else []),
                      list(http_ports), UDP_PORT) for name, addr in pods]

    def add(self, name, addrs, http_ports, udp_port):
        self.spec.append((name, list(addrs), list(http_ports), udp_port))
        return self

    def log_path(self, name):
        return self.h.path(f"{name}.log")

    def start(self, timeout=10):
        for name, addrs, ports, udp_port in self.spec:
            argv = ["/usr/bin/python3", os.path.join(HERE, "pod.py"),
                    "--name", name, "--udp-port", str(udp_port),
                    "--log", self.log_path(name)]
            for a in addrs:
                argv += ["--addr", a]
            for p in ports:
                argv += ["--http-port", str(p)]
            p = self.h.spawn(argv, ns=self.topo.pods, stdout=subprocess.PIPE,
                             text=True)
            self.procs[name] = p
        for name, p in self.procs.items():
            if not Lines(p.stdout).wait_for("ready", timeout):
                raise RuntimeError(f"pod {name} did not start")
        return self

    def log(self, name):
        """[(kind, ip, port, path)] of what pod `name` served so far."""
        out = []
        try:
            with open(self.log_path(name), encoding="ascii") as f:
                for line in f:
                    parts = line.split()
                    if len(parts) >= 3:
                        out.append((parts[0], parts[1], int(parts[2]),
                                    parts[3] if len(parts) > 3 else ""))
        except FileNotFoundError:
            pass
        return out

    def address(self, name):
        return dict(self.pods)[name]


def start_decap(h, topo, gue_port, timeout=10):
    """decap.py in the pods' namespace: their IPIP and GUE tunnel end.
    Returns the path of its log."""
    log = h.path("decap.log")
    p = h.spawn(["/usr/bin/python3", os.path.join(HERE, "decap.py"),
                 "--gue-port", str(gue_port), "--log", log],
                ns=topo.pods, stdout=subprocess.PIPE, text=True)
    if not Lines(p.stdout).wait_for("ready", timeout):
        raise RuntimeError("decap.py did not start")
    return log


def read_decap(path):
    """[(kind, outer_src, outer_dst, inner_src, inner_dst)] and the "bad"
    lines decap.py logged."""
    good, bad = [], []
    try:
        with open(path, encoding="ascii") as f:
            for line in f:
                parts = line.split()
                if parts and parts[0] == "bad":
                    bad.append(line.strip())
                elif len(parts) >= 5:
                    good.append(tuple(parts[:5]))
    except FileNotFoundError:
        pass
    return good, bad


def start_iperf_server(h, ns, addr, port=IPERF_PORT, timeout=10):
    """One-off iperf3 server (-1: exits after one test) writing JSON."""
    p = h.spawn(["iperf3", "-s", "-1", "-J", "-B", addr, "-p", str(port)],
                ns=ns, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                text=True)
    wait_listening(ns, port, timeout)
    return p


def iperf3_reverse(h, topo, server_addr, target, nbytes, timeout=60):
    """iperf3 -R -n nbytes from the client to target (an address the
    gateway forwards to an iperf3 server on server_addr in the pods).

    Reverse mode makes the client the receiver, and the receiver ends a
    -n test only once it holds all nbytes; iperf3's two counts still need
    not be equal: the sender counts what it wrote into its socket before
    the end-of-test message reached it (esnet/iperf issues 306 and 382).
    So the check is received >= nbytes and received <= sent.
    Returns {"sent", "received", "bps", "error"} (counts None on failure).
    """
    import json
    srv = start_iperf_server(h, topo.pods, server_addr)
    cl = timed(["iperf3", "-c", target, "-R", "-n", str(nbytes), "-J",
                "--connect-timeout", "3000"], topo.client, timeout)
    out = {"sent": None, "received": None, "bps": None, "error": None}
    try:
        sout, _ = srv.communicate(timeout=10)
        cj, sj = json.loads(cl.out), json.loads(sout)
        out["received"] = cj["end"]["sum_received"]["bytes"]
        out["bps"] = cj["end"]["sum_received"]["bits_per_second"]
        out["sent"] = sj["end"]["sum_sent"]["bytes"]
    except Exception as e:  # the caller reports the counts it lacks
        out["error"] = f"{type(e).__name__}: {e}; client: " \
            f"{cl.err.strip()[-300:]} {cl.out.strip()[-300:]}"
    return out


def upload(h, ns, url, nbytes, max_time=60):
    """POST nbytes of pod.stream_pattern to url (pod.py's /sink) with curl;
    (ok, detail): ok when the pod read exactly those bytes."""
    import hashlib
    from pod import stream_pattern
    block = stream_pattern(0, 251)
    data = (block * (nbytes // 251 + 1))[:nbytes]
    path = h.path("upload.bin")
    with open(path, "wb") as f:
        f.write(data)
    want = f"{nbytes} {hashlib.sha256(data).hexdigest()}"
    r = curl(ns, url, max_time=max_time,
             extra=["--data-binary", f"@{path}", "-H",
                    "Content-Type: application/octet-stream"])
    return r.rc == 0 and r.out.strip() == want, \
        f"pod read: {r.out.strip()!r}, sent: {want!r}, {r!r}"


class Download:
    """A long paced download from pod.py's /stream with curl, in the
    background: which pod serves it (its X-Pod header) while it runs, and
    whether every byte arrived once it ends."""

    def __init__(self, h, ns, url, nbytes, seconds, tag, local_port=None):
        self.nbytes = nbytes
        self.body, self.hdr = h.path(f"{tag}.bin"), h.path(f"{tag}.hdr")
        argv = ["curl", "-sS", "--max-time", str(int(seconds) + 30),
                "-o", self.body, "-D", self.hdr]
        if local_port:
            argv += ["--local-port", str(local_port)]
        self.p = h.spawn(argv + [f"{url}?bytes={nbytes}&seconds={seconds}"],
                         ns=ns, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)
        self.seconds = seconds

    def pod(self, timeout=5):
        """The X-Pod header once it arrived, or None."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with open(self.hdr, encoding="latin-1") as f:
                    for line in f:
                        if line.lower().startswith("x-pod:"):
                            return line.split(":", 1)[1].strip()
            except FileNotFoundError:
                pass
            if self.p.poll() is not None:
                return None
            time.sleep(0.05)
        return None

    def finish(self):
        """(ok, detail): curl exited 0 with the whole pattern intact."""
        from pod import stream_pattern
        try:
            rc = self.p.wait(self.seconds + 30)
        except subprocess.TimeoutExpired:
            rc = None
        try:
            with open(self.body, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            data = b""
        block = stream_pattern(0, 251)
        intact = data == (block * (self.nbytes // 251 + 1))[:self.nbytes]
        err = self.p.stderr.read() if rc is not None else ""
        return rc == 0 and intact, \
            f"curl exit {rc}, {len(data)} bytes, intact {intact} {err}"


def wait_listening(ns, port, timeout=10, proto="t"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = run(["ss", f"-Hl{proto}n", f"sport = :{port}"], ns=ns).stdout
        if out.strip():
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port} in {ns}")


# -- clients ---------------------------------------------------------------

class Result:
    def __init__(self, rc, out, err, elapsed):
        self.rc, self.out, self.err, self.elapsed = rc, out, err, elapsed

    def __repr__(self):
        return (f"rc={self.rc} out={self.out.strip()!r} "
                f"err={self.err.strip()!r} {self.elapsed:.3f}s")


def timed(argv, ns, timeout):
    t = time.monotonic()
    try:
        p = subprocess.run(ns_argv(ns, argv), capture_output=True, text=True,
                           timeout=timeout)
        return Result(p.returncode, p.stdout, p.stderr, time.monotonic() - t)
    except subprocess.TimeoutExpired:
        return Result(None, "", "timed out", time.monotonic() - t)


def url(host, port, path="/"):
    """http://host:port/path, IPv6 literals bracketed."""
    return f"http://[{host}]:{port}{path}" if ":" in host \
        else f"http://{host}:{port}{path}"


def curl(ns, url, local_port=None, max_time=5, extra=(), local_addr=None):
    argv = ["curl", "-sS", "--max-time", str(max_time),
            "--connect-timeout", str(max_time)]
    if local_port:
        argv += ["--local-port", str(local_port)]
    if local_addr:
        argv += ["--interface", local_addr]
    return timed(argv + list(extra) + [url], ns, max_time + 5)


def udp_request(ns, host, port, local_port=None, msg="hello\n", wait=2,
                local_addr=None):
    """One datagram to host:port with socat, the first reply line back.

    socat stays up for its -t linger (0.5 s) after its input ends and a UDP
    peer never sends an end; so keep its input open, take the first line
    it prints, then stop it. A refusal (ICMP port unreachable on socat's
    connected socket) makes socat exit at once with "Connection refused".
    """
    src = f",sourceport={local_port}" if local_port else ""
    if local_addr:
        src += f",bind={local_addr}" if ":" not in local_addr \
            else f",bind=[{local_addr}]"
    peer = f"UDP6:[{host}]:{port}" if ":" in host else f"UDP4:{host}:{port}"
    argv = ns_argv(ns, ["socat", "-T", str(wait), "-", peer + src])
    t = time.monotonic()
    p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        out = Lines(p.stdout)
        p.stdin.write(msg)
        p.stdin.flush()
        line = out.next(wait)
        elapsed = time.monotonic() - t
        if line is not None:
            p.terminate()
            p.wait(5)
            return Result(0, line, "", elapsed)
        try:
            rc = p.wait(1)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            return Result(None, "", "timed out", elapsed)
        return Result(rc, "", p.stderr.read(), elapsed)
    finally:
        for f in (p.stdin, p.stdout, p.stderr):
            try:
                f.close()
            except OSError:
                pass


def client_tool(ns, *args, timeout=15):
    """tests/integration/client.py (sockets with options curl and socat
    do not set) inside ns."""
    return timed(["/usr/bin/python3", os.path.join(HERE, "client.py")]
                 + [str(a) for a in args], ns, timeout)


def parallel(fn, items, workers=8):
    """[fn(item)] computed by up to `workers` threads, in item order."""
    results = [None] * len(items)
    lock = threading.Lock()
    it = iter(range(len(items)))

    def worker():
        while True:
            with lock:
                i = next(it, None)
            if i is None:
                return
            results[i] = fn(items[i])

    threads = [threading.Thread(target=worker) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def service_of_entry(name):
    """The Service name in a service entry's telemetry name,
    "namespace/name:port/PROTO[/v6][/nodeport]"."""
    return name.split("/", 1)[1].split(":", 1)[0]


def spread(names):
    """{name: count} with every name present, sorted (None, a failure,
    among them)."""
    out = {}
    for n in names:
        out[n] = out.get(n, 0) + 1
    return dict(sorted(out.items(), key=lambda kv: str(kv[0])))


class Capture:
    """tcpdump writing a pcap inside a namespace."""

    def __init__(self, h, ns, iface, bpf, path):
        self.h, self.path = h, path
        # -Z root: tcpdump drops to its own user otherwise and could not
        # write into the run's private temp dir. --immediate-mode: libpcap
        # otherwise hands packets over a ring block at a time (or after
        # its 1 s timeout) and SIGINT loses the block not yet handed over;
        # -U then writes each packet as it comes.
        self.p = h.spawn(["tcpdump", "-i", iface, "-n", "--immediate-mode",
                          "-U", "-Z", "root", "-w", path, bpf], ns=ns, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)
        if not Lines(self.p.stderr).wait_for("listening on", 10):
            raise RuntimeError(f"tcpdump did not start in {ns}")

    def stop(self):
        self.h.stop(self.p, signal.SIGINT)
        return self.path


# -- the gateway -----------------------------------------------------------

def libconfig(value, indent=1):
    """libconfig text of a Python value (dict = group, list of dicts =
    list, list of scalars = array)."""
    pad = "\t" * indent
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, dict):
        body = "".join(f"{pad}{k} = {libconfig(v, indent + 1)};\n"
                       for k, v in value.items())
        return "{\n" + body + "\t" * (indent - 1) + "}"
    if isinstance(value, (list, tuple)):
        if not value or isinstance(value[0], dict):
            items = ",\n".join(pad + libconfig(v, indent + 1) for v in value)
            return "(\n" + items + "\n" + "\t" * (indent - 1) + ")" \
                if value else "( )"
        return "[ " + ", ".join(libconfig(v, indent) for v in value) + " ]"
    raise TypeError(f"no libconfig form for {type(value).__name__}")


def render_conf(settings):
    return "".join(f"{k} = {libconfig(v)};\n" for k, v in settings.items())


def endpoint(addr, **conditions):
    return {"address": addr, **conditions}


def service(name, ports, endpoints, vips=(), kind="LoadBalancer",
            namespace="test"):
    s = {"namespace": namespace, "name": name, "type": kind}
    if vips:
        s["vips"] = list(vips)
    s["ports"] = list(ports)
    s["endpoints"] = list(endpoints)
    return s


def port(protocol, number, target, node_port=None, name=None):
    p = {}
    if name:
        p["name"] = name
    p.update({"protocol": protocol, "port": number})
    if node_port:
        p["node_port"] = node_port
    p["target_port"] = target
    return p


def pod_endpoints(names=None):
    return [endpoint(a) for n, a in PODS if names is None or n in names]


def standard_services(web_pods=None):
    """The services every traffic test uses:
    web   VIP:80/TCP and node:30080 -> pods:8080 (all three pods)
    echo  VIP:53/UDP -> pods:5353
    bulk  VIP_BULK:5201/TCP -> pod-a:5201 only (iperf3's control and data
          connections must reach the same server)
    empty VIP_EMPTY:80/TCP, :53/UDP with no endpoints."""
    return [
        service("web", [port("TCP", 80, HTTP_PORT, node_port=NODE_PORT)],
                pod_endpoints(web_pods), vips=[VIP]),
        service("echo", [port("UDP", 53, UDP_PORT)], pod_endpoints(),
                vips=[VIP]),
        service("bulk", [port("TCP", IPERF_PORT, IPERF_PORT)],
                pod_endpoints(["pod-a"]), vips=[VIP_BULK]),
        service("empty", [port("TCP", 80, HTTP_PORT, name="http"),
                          port("UDP", 53, UDP_PORT, name="dns")],
                [], vips=[VIP_EMPTY]),
    ]


def eal_lcores(workers):
    """EAL arguments for the main lcore plus `workers` worker lcores.
    Lcore ids are 1..workers; with fewer CPUs than lcores they share CPUs
    (--lcores maps lcore to CPU) so the test runs on a two-core machine."""
    ncpu = len(os.sched_getaffinity(0))
    if workers + 1 <= ncpu:
        return ["-l", f"0-{workers}"]
    cpus = sorted(os.sched_getaffinity(0))
    mapping = ",".join(f"{i}@{cpus[i % len(cpus)]}"
                       for i in range(workers + 1))
    return ["--lcores", mapping]


def vdev(n, iface, workers):
    """The DPDK virtual device for a gateway veth: net_af_xdp, the fast
    one, for one worker; net_af_packet for more, because DPDK 22.11's
    af_xdp takes its queue count from the interface's "combined" channels,
    which a veth does not have (it has separate rx and tx channels)."""
    if workers == 1:
        return f"net_af_xdp{n},iface={iface}"
    return f"net_af_packet{n},iface={iface},qpairs={workers}"


def gateway_conf(file_prefix, services, workers=1, extra=None, ipv6=False):
    """The demo topology's settings (config/demo.conf) for one run; with
    ipv6, the IPv6 addresses of Topology.create(ipv6=True) too."""
    conf = {
        "eal": ["--file-prefix=" + file_prefix, "--no-huge", "-m", "512",
                "--no-pci"] + eal_lcores(workers),
        "workers": list(range(1, workers + 1)),
        "ports": [
            {"name": "ext", "device": vdev(0, "gw-ext", workers),
             "role": "external", "address": f"{EXT_ADDR}/24"},
            {"name": "int", "device": vdev(1, "gw-int", workers),
             "role": "internal", "address": f"{INT_ADDR}/24"},
        ],
        "node_addresses": [NODE_ADDR],
        "snat_addresses": [SNAT_ADDR],
        "services": services,
    }
    if ipv6:
        conf["ports"][0].update(address6=f"{EXT6}/64", gateway6=CLIENT_LINK6)
        conf["ports"][1].update(address6=f"{INT6}/64")
        conf["node_addresses"].append(NODE6)
        conf["snat_addresses"].append(SNAT6)
    conf.update(extra or {})
    return conf


class Svcgw:
    """svcgw running in the gateway namespace; its stderr kept line by
    line (and in svcgw.log in the run's temp dir)."""

    def __init__(self, h, topo, conf_path, file_prefix, extra_args=(),
                 env=None):
        self.h, self.topo = h, topo
        self.conf_path = conf_path
        self.file_prefix = file_prefix
        self.extra_args = list(extra_args)
        # Added to svcgw's environment (the in-cluster variables).
        self.env = dict(env or {})
        self.lines = []
        self.cond = threading.Condition()
        self.p = None
        h.dpdk_prefixes.append(file_prefix)

    def start(self, timeout=30):
        self.p = self.h.spawn([svcgw_path(), "-c", self.conf_path]
                              + self.extra_args, ns=self.topo.gw,
                              stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True,
                              env={**os.environ, **self.env})
        threading.Thread(target=self._reader, daemon=True).start()
        if self.wait_line("svcgw: ready", 0, timeout) is None:
            raise RuntimeError("svcgw not ready:\n" + self.tail())
        return self

    def _reader(self):
        with open(self.h.path("svcgw.log"), "a", encoding="utf-8") as log:
            for line in self.p.stderr:
                log.write(line)
                log.flush()
                with self.cond:
                    self.lines.append(line.rstrip("\n"))
                    self.cond.notify_all()
        with self.cond:
            self.cond.notify_all()

    def wait_line(self, text, start=0, timeout=10):
        """Index of the first line at or after `start` containing text, or
        None on timeout or when svcgw has exited."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for i in range(start, len(self.lines)):
                    if text in self.lines[i]:
                        return i
                left = deadline - time.monotonic()
                if left <= 0 or self.p.poll() is not None:
                    return None
                self.cond.wait(min(left, 0.2))

    def reload(self, timeout=10):
        """SIGHUP; "reloaded", "rejected" or None (no answer)."""
        with self.cond:
            start = len(self.lines)
        self.p.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.wait_line("svcgw: reloaded", start, 0.1) is not None:
                return "reloaded"
            if self.wait_line("svcgw: reload rejected", start, 0.1) \
                    is not None:
                return "rejected"
        return None

    def lines_since(self, start):
        with self.cond:
            return list(self.lines[start:])

    def running(self):
        return self.p is not None and self.p.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=15):
        return self.h.stop(self.p, sig, timeout)

    def tail(self, n=20):
        with self.cond:
            return "\n".join(self.lines[-n:])

    def stats(self):
        """The data-path counters (svcgwctl stats), a dict."""
        return self.ctl("stats")["/svcgw/stats"]

    def ctl(self, *args, json_out=True, timeout=10):
        """Run tools/svcgwctl against this gateway; parsed JSON (json_out)
        or the text it printed."""
        import json
        argv = [sys.executable, svcgwctl_path(), "-p", self.file_prefix]
        if json_out:
            argv.append("--json")
        p = run(argv + list(args), timeout=timeout)
        return json.loads(p.stdout) if json_out else p.stdout


class Setup:
    """The usual run: topology, pods, svcgw on the standard services.

    start() may raise; what it created is still owned by the Harness.
    ipv6, return_routes, direct: as Topology.create(); ipv6 makes the pods
    dual-stack and the gateway's config IPv6 too. http_ports: as Pods.
    start(before_gateway=fn): fn(setup) runs once the topology and pods
    are up, before svcgw starts (to add stand-ins, start captures)."""

    def __init__(self, h, services=None, workers=1, extra=None, ipv6=False,
                 return_routes=False, direct=False, http_ports=(HTTP_PORT,)):
        self.h = h
        self.file_prefix = h.prefix
        self.services = services if services is not None \
            else standard_services()
        self.workers = workers
        self.extra = extra
        self.ipv6 = ipv6
        self.return_routes = return_routes
        self.direct = direct
        self.http_ports = http_ports
        self.conf_path = h.path("svcgw.conf")
        self.topo = self.pods = self.gw = None

    def settings(self, services=None, extra=None):
        more = dict(self.extra or {})
        more.update(extra or {})
        return gateway_conf(self.file_prefix,
                            self.services if services is None else services,
                            self.workers, more, self.ipv6)

    def start(self, before_gateway=None):
        self.topo = Topology(self.h).create(
            self.workers, ipv6=self.ipv6, return_routes=self.return_routes,
            direct=self.direct)
        self.pods = Pods(self.h, self.topo, ipv6=self.ipv6,
                         http_ports=self.http_ports)
        if before_gateway is not None:
            before_gateway(self)
        self.pods.start()
        write_conf(self.conf_path, self.settings())
        self.gw = Svcgw(self.h, self.topo, self.conf_path, self.file_prefix)
        self.gw.start()
        return self

    def start_case(self, tap, what, *detail, before_gateway=None):
        """start() as the TAP case `what` (detail: said when it passes).
        If it fails: not ok with the error and svcgw's last lines, and the
        error raised again, so that run_test() fails the cases left."""
        try:
            self.start(before_gateway)
        except Exception as e:
            tap.ok(False, what, str(e), self.gw.tail() if self.gw else "")
            raise
        tap.ok(True, what, *detail)
        return self


def curl_spread(ns, url, ports, workers=8, max_time=5, local_addr=None):
    """curl url once from each local port; (pod names answered in port
    order (None: failed), [failure descriptions])."""
    res = parallel(lambda p: curl(ns, url, local_port=p, max_time=max_time,
                                  local_addr=local_addr),
                   list(ports), workers)
    names = [r.out.strip() if r.rc == 0 and r.out.strip() else None
             for r in res]
    bad = [f"port {p}: {r!r}" for p, r in zip(ports, res) if r.rc != 0]
    return names, bad


def udp_spread(ns, host, port, local_ports, workers=8, wait=2):
    res = parallel(lambda p: udp_request(ns, host, port, local_port=p,
                                         wait=wait),
                   list(local_ports), workers)
    names = [r.out.strip() or None for r in res]
    bad = [f"port {p}: {r!r}" for p, r in zip(local_ports, res)
           if not r.out.strip()]
    return names, bad


def shares_ok(names, pods, lo, hi):
    """Every pod in `pods` answered between lo and hi times, nobody else
    answered; (ok, diagnostic)."""
    counts = spread(n for n in names if n is not None)
    ok = set(counts) == set(pods) and \
        all(lo <= counts[p] <= hi for p in pods)
    return ok, f"answers per pod {counts} (bound {lo}..{hi} each)"


def write_conf(path, settings):
    """Write atomically: a SIGHUP never reads half a file."""
    tmp = path + ".new"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(render_conf(settings))
    os.replace(tmp, path)
    return path


def require_root():
    """Integration tests need root (namespaces, raw sockets): without it
    the file fails, loudly, rather than pass by testing nothing."""
    if os.geteuid() != 0:
        print("1..1")
        print("not ok 1 - needs root: network namespaces, veths, DPDK")
        sys.exit(1)


# -- Kubernetes ------------------------------------------------------------

def apiserver(h, topo, **kw):
    """The API server stand-in (tests/apiserver) listening on 127.0.0.1
    inside the gateway's namespace, where svcgw reaches it; closed with
    the run. Keyword arguments go to ApiServer."""
    sys.path.insert(0, os.path.join(SRC_ROOT, "tests", "apiserver"))
    import apiserver as api
    srv = api.ApiServer(host="127.0.0.1", netns=topo.gw,
                        workdir=h.path("apiserver"), **kw)
    os.makedirs(srv.workdir, exist_ok=True)
    h.on_close(srv.close)
    return srv.start()


def k8s_kubeconfig(path, **kw):
    """The kubernetes group for a kubeconfig file."""
    return {"source": "kubeconfig", "kubeconfig": path, **kw}


def k8s_in_cluster(sa_dir, **kw):
    """The kubernetes group for in-cluster credentials in sa_dir (svcgw
    also needs ApiServer.in_cluster_env() in its environment)."""
    return {"source": "in-cluster", "service_account": sa_dir, **kw}


def wait_until(pred, timeout=10, step=0.05):
    """pred()'s first true value, or its last value after timeout
    seconds; an exception counts as false until the end."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            v = pred()
        except Exception:  # the gateway between two states: try again
            v = None
            if time.monotonic() >= deadline:
                raise
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(step)


def sync_state(gw):
    return gw.ctl("sync")["/svcgw/sync"]


def service_table(gw, namespace_name):
    """{entry name: (keys, sorted backend addresses)} of the entries of
    one service ("namespace/name") in the gateway's tables."""
    svc = gw.ctl("services")["/svcgw/services"]
    out = {}
    for i, name, keys in zip(svc["id"], svc["name"], svc["keys"]):
        if name.split(":", 1)[0] != namespace_name:
            continue
        be = gw.ctl("backends", str(i))["/svcgw/backends"]
        out[name] = (keys, sorted(be["address"]))
    return out


# -- several gateways on one link (failover) -------------------------------

LAN_API = "198.51.100.249"          # the API stand-in, on the lan's br-api
LAN_API_GW = ("198.51.100.250", "198.51.100.251", "198.51.100.252")
LAN_EXT = ("198.51.100.1", "198.51.100.3", "198.51.100.4")
LAN_INT = ("203.0.113.1", "203.0.113.3", "203.0.113.4")
# With Lan.create(ipv6=True).
LAN_CLIENT6 = "2001:db8:e::2"
LAN_EXT6 = ("2001:db8:e::1", "2001:db8:e::3", "2001:db8:e::4")
LAN_INT6 = ("2001:db8:f::1", "2001:db8:f::3", "2001:db8:f::4")


class Lan:
    """Gateways side by side: one L2 segment for the clients and one for
    the pods, each a Linux bridge inside a namespace of the run (never
    bridged to a real interface), and a third bridge on which the gateways
    reach the API stand-in.

      NS-client eth0 198.51.100.2/24 --+                 +-- NS-pods eth0
        192.0.2.0/24 on-link (ARP      |  NS-lan         |   203.0.113.11-13
        for the VIPs themselves)    br-ext  br-int  br-api 198.51.100.249/29
                                       |       |        |
      NS-gw<i>: gw-ext (198.51.100.1, .3)  gw-int (203.0.113.1, .3)
                api 198.51.100.250+i/29 (kernel: the Lease traffic)

    The DSR return path (direct=True) is Topology's: a veth pods -> client.

    create(ipv6=True) keeps IPv6 on in the client's and the pods'
    namespaces (no DAD, no router solicitations, as Topology) and adds, all
    in 2001:db8::/32 (beside the kernel's own link-local ones): the client 2001:db8:e::2/64 with 2001:db8:a::/64
    (the IPv6 VIPs) on-link, so it solicits each VIP and whoever
    advertises it gets it; the pods PODS6 on their eth0; the gateways'
    ports LAN_EXT6 and LAN_INT6 (lan_gateway_conf(ipv6=True)); the direct
    link's IPv6 path (Topology._direct). The bridges stop snooping
    multicast, so every neighbour solicitation reaches every gateway
    whatever MLD reports the kernels sent. The gateways' namespaces and
    the lan's keep IPv6 off: their veths belong to DPDK or to a bridge.
    """

    def __init__(self, h, n_gateways=2):
        self.h = h
        self.lan = f"{h.prefix}-lan"
        self.client = f"{h.prefix}-client"
        self.pods = f"{h.prefix}-pods"
        self.gws = [f"{h.prefix}-gw{i}" for i in range(n_gateways)]

    def _port(self, ns, name, bridge, peer):
        run(["ip", "-n", self.lan, "link", "add", peer, "type", "veth",
             "peer", "name", name, "netns", ns])
        run(["ip", "-n", self.lan, "link", "set", peer, "master", bridge,
             "up"])
        # As Topology: software checksums, no GRO merging past the MTU.
        run(["ethtool", "-K", name, "tx", "off", "gro", "off"], ns=ns)
        run(["ip", "-n", ns, "link", "set", name, "up"])

    def create(self, direct=True, ipv6=False):
        h = self.h
        for ns in [self.lan, self.client, self.pods] + self.gws:
            h.add_namespace(ns)
            keys = (("accept_dad", 0), ("router_solicitations", 0)) \
                if ipv6 and ns in (self.client, self.pods) \
                else (("disable_ipv6", 1),)
            sysctls = [f"net.ipv6.conf.{c}.{k}={v}"
                       for c in ("all", "default") for k, v in keys]
            if direct:
                sysctls += [f"net.ipv4.conf.{c}.rp_filter=0"
                            for c in ("all", "default")]
            if ns == self.pods:
                sysctls += [f"net.ipv4.conf.{c}.{k}"
                            for c in ("all", "default")
                            for k in ("arp_ignore=1", "arp_announce=2")]
            run(["sysctl", "-qw"] + sysctls, ns=ns)
            run(["ip", "-n", ns, "link", "set", "lo", "up"])
        for br in ("br-ext", "br-int", "br-api"):
            # No STP and no forwarding delay: ports forward at once.
            run(["ip", "-n", self.lan, "link", "add", br, "type", "bridge",
                 "stp_state", "0", "forward_delay", "0"]
                + (["mcast_snooping", "0"] if ipv6 else []))
            run(["ip", "-n", self.lan, "link", "set", br, "up"])
        run(["ip", "-n", self.lan, "addr", "add", f"{LAN_API}/29", "dev",
             "br-api"])
        self._port(self.client, "eth0", "br-ext", "c-eth0")
        self._port(self.pods, "eth0", "br-int", "p-eth0")
        for i, gw in enumerate(self.gws):
            self._port(gw, "gw-ext", "br-ext", f"g{i}-ext")
            self._port(gw, "gw-int", "br-int", f"g{i}-int")
            self._port(gw, "api", "br-api", f"g{i}-api")
            run(["ip", "-n", gw, "addr", "add", f"{LAN_API_GW[i]}/29", "dev",
                 "api"])
        run(["ip", "-n", self.client, "addr", "add", f"{CLIENT_ADDR}/24",
             "dev", "eth0"])
        # On-link: the client ARPs for each VIP, and whoever answers gets it.
        run(["ip", "-n", self.client, "route", "add", "192.0.2.0/24", "dev",
             "eth0"])
        for _, addr in PODS:
            run(["ip", "-n", self.pods, "addr", "add", f"{addr}/24", "dev",
                 "eth0"])
        if ipv6:
            run(["ip", "-n", self.client, "addr", "add", f"{LAN_CLIENT6}/64",
                 "dev", "eth0"])
            run(["ip", "-n", self.client, "route", "add", "2001:db8:a::/64",
                 "dev", "eth0"])
            for _, addr in PODS6:
                run(["ip", "-n", self.pods, "addr", "add", f"{addr}/64",
                     "dev", "eth0"])
        if direct:
            Topology._direct(self, ipv6)
        if ipv6:
            for ns in (self.client, self.pods):
                wait_v6_addresses(ns)
        return self

    def gw_mac(self, i):
        out = run(["ip", "-n", self.gws[i], "-br", "link", "show",
                   "gw-ext"]).stdout.split()
        return out[2].lower()

    def hold_vips(self, vips):
        Topology.hold_vips(self, vips)


def lan_gateway_conf(file_prefix, i, name, kubeconfig, namespace,
                     services=(), extra=None, ipv6=False):
    """Gateway i of a Lan: its own port addresses and SNAT address, the
    Kubernetes group and the failover group; with ipv6 (a Lan created
    with ipv6=True), IPv6 port addresses too."""
    conf = gateway_conf(file_prefix, list(services))
    conf["ports"][0]["address"] = f"{LAN_EXT[i]}/24"
    conf["ports"][1]["address"] = f"{LAN_INT[i]}/24"
    if ipv6:
        conf["ports"][0]["address6"] = f"{LAN_EXT6[i]}/64"
        conf["ports"][1]["address6"] = f"{LAN_INT6[i]}/64"
    conf["node_addresses"] = [f"192.0.2.{1 + 10 * i}"]
    conf["snat_addresses"] = [LAN_INT[i]]
    conf["kubernetes"] = k8s_kubeconfig(kubeconfig)
    conf["failover"] = {"name": name, "namespace": namespace}
    conf["failover"].update(extra or {})
    return conf


class LanGateway:
    """Gateway i of a Lan, named `name`, with the Kubernetes and failover
    groups (lan_gateway_conf, `extra` groups added): its process once
    started, and what it says of the VIPs (/svcgw/failover)."""

    def __init__(self, h, lan, i, name, kubeconfig, namespace, ipv6=False,
                 extra=None):
        self.h, self.i, self.name = h, i, name
        self.prefix = f"{h.prefix}g{i}"
        conf = lan_gateway_conf(self.prefix, i, name, kubeconfig, namespace,
                                ipv6=ipv6)
        conf.update(extra or {})
        self.conf = write_conf(h.path(f"svcgw{i}.conf"), conf)
        self.topo = types.SimpleNamespace(gw=lan.gws[i])
        self.mac = lan.gw_mac(i)
        self.gw = None

    def start(self):
        self.gw = Svcgw(self.h, self.topo, self.conf, self.prefix)
        return self.gw.start()

    def failover(self):
        return self.gw.ctl("failover")["/svcgw/failover"]

    def answering(self):
        """The VIPs it answers ARP/NDP for."""
        f = self.failover()
        return {v for v, a in zip(f.get("vip", []), f.get("answered", []))
                if a}


def lan_failover(h, vip, names, namespace, api_objects, ipv6=False,
                 gw_extra=None, service_cidrs=None, pods=PODS):
    """The failover tests' stage: a Lan with the direct return path, the
    pods (Pods' servers for `pods`, and servers on vip, which they hold),
    the API stand-in on the lan with api_objects(srv) created, and a
    started LanGateway for each of names (with gw_extra's groups).
    Returns (lan, srv, gws)."""
    lan = Lan(h, n_gateways=len(names)).create(direct=True, ipv6=ipv6)
    lan.hold_vips([vip])
    pods = Pods(h, lan, pods=pods)
    pods.add("vip", [vip], [HTTP_PORT], UDP_PORT)
    pods.start()
    sys.path.insert(0, os.path.join(SRC_ROOT, "tests", "apiserver"))
    import apiserver
    kw = {"service_cidrs": service_cidrs} if service_cidrs else {}
    srv = apiserver.ApiServer(host=LAN_API, netns=lan.lan,
                              workdir=h.path("apiserver"), **kw)
    os.makedirs(srv.workdir, exist_ok=True)
    h.on_close(srv.close)
    srv.start()
    api_objects(srv)
    kc = srv.write_kubeconfig(h.path("kubeconfig"), auth="client-cert",
                              embed=False)
    gws = [LanGateway(h, lan, i, name, kc, namespace, ipv6=ipv6,
                      extra=gw_extra) for i, name in enumerate(names)]
    for g in gws:
        g.start()
    return lan, srv, gws


def hrw_split(gws, vip):
    """(the gateway of gws that should answer for vip, the others)."""
    owner = hrw_owner([g.name for g in gws], vip)
    return (next(g for g in gws if g.name == owner),
            [g for g in gws if g.name != owner])


def lan_all_live(gws, timeout=15):
    """Whether every gateway comes to see every one of them alive."""
    names = sorted(g.name for g in gws)
    return wait_until(lambda: all(sorted(g.failover().get("live", [])) ==
                                  names for g in gws), timeout=timeout)


def outage_across(h, ns, vip, port, interval_ms, kill):
    """A UDP request to vip:port from ns every interval_ms for 6 s, kill()
    called 1.5 s in: the longest silence that ends after the kill (answers
    to requests sent just before it may still arrive just after it, before
    the silence; the loop ends 4.5 s after the kill, which bounds it), inf
    if no answer came before or after. Returns a SimpleNamespace: outage,
    before and after (answer times), t_kill and t_end (monotonic), and
    wall_kill (CLOCK_REALTIME, as captures stamp packets)."""
    loop = h.spawn(ns_argv(ns, [
        sys.executable, os.path.join(HERE, "client.py"), "udp-loop",
        vip, str(port), str(interval_ms), str(6000 // interval_ms)]),
        stdout=subprocess.PIPE, text=True)
    time.sleep(1.5)
    t_kill, wall_kill = time.monotonic(), time.time()
    kill()
    out, _ = loop.communicate(timeout=60)
    t_end = time.monotonic()
    times = [float(line.split()[0]) for line in out.splitlines() if line]
    before = [t for t in times if t < t_kill]
    after = [t for t in times if t >= t_kill]
    gaps = [b - a for a, b in zip(times, times[1:]) if b >= t_kill]
    return types.SimpleNamespace(
        outage=max(gaps) if before and after else float("inf"),
        before=before, after=after, t_kill=t_kill, t_end=t_end,
        wall_kill=wall_kill)


def outage_case(tap, o, target_s, what):
    """The TAP case of an outage_across() result: answers again within
    target_s of the kill's silence, and on to the end of the loop."""
    return tap.ok(
        o.outage < target_s and o.t_end - o.after[-1] < 0.5,
        f"{what}: the VIP answers again {o.outage * 1000:.0f} ms after the "
        f"last answer before the silence that follows the kill "
        f"(< {target_s * 1000:.0f}), and to the end",
        f"{len(o.before)} answers before, {len(o.after)} after, the last "
        f"{o.t_end - o.after[-1] if o.after else 0:.3f} s before the end")


def _siphash24(key, data):
    """SipHash-2-4 (Aumasson and Bernstein): a second implementation of the
    rendezvous weight, independent of lib/maglev's."""
    import struct
    mask = (1 << 64) - 1

    def rotl(x, b):
        return ((x << b) | (x >> (64 - b))) & mask

    k0, k1 = struct.unpack("<QQ", key)
    v = [k0 ^ 0x736f6d6570736575, k1 ^ 0x646f72616e646f6d,
         k0 ^ 0x6c7967656e657261, k1 ^ 0x7465646279746573]

    def rnd():
        v[0] = (v[0] + v[1]) & mask
        v[1] = rotl(v[1], 13) ^ v[0]
        v[0] = rotl(v[0], 32)
        v[2] = (v[2] + v[3]) & mask
        v[3] = rotl(v[3], 16) ^ v[2]
        v[0] = (v[0] + v[3]) & mask
        v[3] = rotl(v[3], 21) ^ v[0]
        v[2] = (v[2] + v[1]) & mask
        v[1] = rotl(v[1], 17) ^ v[2]
        v[2] = rotl(v[2], 32)

    n = len(data)
    end = n - n % 8
    for i in range(0, end, 8):
        m = struct.unpack("<Q", data[i:i + 8])[0]
        v[3] ^= m
        rnd()
        rnd()
        v[0] ^= m
    b = (n & 0xff) << 56
    for i, c in enumerate(data[end:]):
        b |= c << (8 * i)
    v[3] ^= b
    rnd()
    rnd()
    v[0] ^= b
    v[2] ^= 0xff
    for _ in range(4):
        rnd()
    return v[0] ^ v[1] ^ v[2] ^ v[3]


def hrw_owner(names, vip):
    """The gateway answering for vip among names (lib/lease/lease.h):
    highest SipHash-2-4 under "svcgw-rendezvous" of name, 0, family,
    address; equal weights to the first name."""
    import ipaddress
    a = ipaddress.ip_address(vip)
    fam = bytes([4 if a.version == 4 else 6])
    return max(sorted(names), key=lambda n: (
        _siphash24(b"svcgw-rendezvous", n.encode() + b"\0" + fam + a.packed),
        [-c for c in n.encode()]))
