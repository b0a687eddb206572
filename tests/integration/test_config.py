#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""svcgw on good and bad config files (TAP).

The shipped configs and a generated one pass `svcgw --check`. Each bad file
-- a few representative mistakes; lib/conf's unit tests cover the whole
table of errors -- must give exactly one line on stderr naming the file,
the line and the setting ("FILE:LINE: SETTING: message"), exit code 2, and
start nothing: no DPDK runtime directory appears for the file's
--file-prefix. Each is run both as `svcgw --check -c FILE` and as
`svcgw -c FILE`. Kubernetes credentials the file names are read before
EAL too, when svcgw starts (--check validates the file alone): a missing
kubeconfig, an unknown context, in-cluster credentials outside a pod or
without their token are one line naming the file, the kubernetes group's
line and what is wrong, and exit 2. Needs no namespaces and no traffic.
"""
import os
import subprocess
import sys

import sgnet


def svcgw(*args, env=None):
    return subprocess.run([sgnet.svcgw_path()] + list(args),
                          capture_output=True, text=True, timeout=30,
                          stdin=subprocess.DEVNULL, env=env)


def mutate(text, old, new, nth=0):
    """text with occurrence `nth` of `old` replaced; and the 1-based line
    where the replacement starts."""
    i = -1
    for _ in range(nth + 1):
        i = text.find(old, i + 1)
        if i < 0:
            raise ValueError(f"{old!r} occurs fewer than {nth + 1} times")
    return text[:i] + new + text[i + len(old):], text[:i].count("\n") + 1


def bad_configs(good):
    """(name, text, line, expected prefix after "FILE:LINE: ")."""
    out = []

    def add(name, old, new, setting, line_offset=0):
        text, line = mutate(good, old, new)
        out.append((name, text, line + line_offset, setting))

    add("a syntax error", "workers = [ 1 ];", "workers = = [ 1 ];",
        "syntax error")
    add("an unknown setting in a port", 'role = "external";',
        'role = "external";\n\t\trol = "internal";', "ports.[0].rol: ",
        line_offset=1)
    add("a port number out of range", "\tport = 5201;", "\tport = 70000;",
        "services.[2].ports.[0].port: ")
    add("an address that is not one", 'address = "198.51.100.1/24";',
        'address = "198.51.100.300/24";', "ports.[0].address: ")
    add("a boolean that is a string", 'address = "203.0.113.11";',
        'address = "203.0.113.11";\n\t\t\t\tready = "yes";',
        "services.[0].endpoints.[0].ready: ", line_offset=1)
    add("a list of workers that is a string", "workers = [ 1 ];",
        'workers = "1";', "workers: ")
    return out


def credential_configs(good, tmp):
    """(name, text, line, expected message after "FILE:LINE: kubernetes: ",
    environment): files whose credentials svcgw cannot use."""
    empty_sa = os.path.join(tmp, "empty-sa")
    os.makedirs(empty_sa, exist_ok=True)
    kc = os.path.join(tmp, "kubeconfig")
    with open(kc, "w", encoding="utf-8") as f:
        f.write("apiVersion: v1\nkind: Config\ncurrent-context: a\n"
                "clusters:\n- name: c\n  cluster:\n"
                "    server: https://127.0.0.1:6443\n"
                "contexts:\n- name: a\n  context:\n    cluster: c\n"
                "    user: u\nusers:\n- name: u\n  user:\n"
                "    token: t\n")
    line = good.count("\n") + 1
    pod_env = {"KUBERNETES_SERVICE_HOST": "127.0.0.1",
               "KUBERNETES_SERVICE_PORT": "6443"}
    no_env = {"KUBERNETES_SERVICE_HOST": None, "KUBERNETES_SERVICE_PORT": None}
    cases = (
        ("a kubeconfig that is not there",
         {"source": "kubeconfig", "kubeconfig": os.path.join(tmp, "nope")},
         f"kubeconfig {os.path.join(tmp, 'nope')}: ", {}),
        ("a context the kubeconfig lacks",
         {"source": "kubeconfig", "kubeconfig": kc, "context": "edge"},
         f"kubeconfig {kc}", {}),
        ("in-cluster outside a pod",
         {"source": "in-cluster", "service_account": empty_sa},
         "in-cluster: KUBERNETES_SERVICE_HOST is not set", no_env),
        ("in-cluster without a token",
         {"source": "in-cluster", "service_account": empty_sa},
         f"in-cluster: token {empty_sa}/token: ", pod_env),
    )
    return [(name, good + sgnet.render_conf({"kubernetes": group}), line,
             want, env) for name, group, want, env in cases]


def main():
    sgnet.require_root()
    h = sgnet.Harness("config")
    try:
        return run(h)
    finally:
        h.close()


def run(h):
    prefix = h.prefix
    good = sgnet.render_conf(sgnet.gateway_conf(
        prefix, sgnet.standard_services()))
    bads = bad_configs(good)
    shipped = ["config/demo.conf", "config/svcgw.conf"]
    creds = credential_configs(good, h.tmp)
    tap = sgnet.Tap(len(shipped) + 1 + 2 * len(bads) + 1 + 2 * len(creds))

    for rel in shipped:
        path = os.path.join(sgnet.SRC_ROOT, rel)
        p = svcgw("--check", "-c", path)
        tap.ok(p.returncode == 0, f"svcgw --check -c {rel}: valid",
               f"exit {p.returncode}", p.stderr[-800:])
    good_path = h.path("good.conf")
    with open(good_path, "w", encoding="utf-8") as f:
        f.write(good)
    p = svcgw("--check", "-c", good_path)
    tap.ok(p.returncode == 0, "svcgw --check: the tests' own config is valid",
           f"exit {p.returncode}", p.stderr[-800:], good)

    rundir = os.path.join(sgnet.DPDK_RUN_DIR, prefix)
    h.dpdk_prefixes.append(prefix)
    for i, (name, text, line, setting) in enumerate(bads):
        path = h.path(f"bad{i}.conf")
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        want = f"{path}:{line}: {setting}"
        for argv, how in ((["--check", "-c", path], "--check"),
                          (["-c", path], "run")):
            p = svcgw(*argv)
            lines = p.stderr.splitlines()
            tap.ok(p.returncode == 2 and len(lines) == 1
                   and lines[0].startswith(want)
                   and not os.path.exists(rundir),
                   f"{name} ({how}): one error line naming file, line and "
                   "setting; exit 2; nothing started",
                   f"exit {p.returncode}, want a line starting {want!r}",
                   *lines[:10],
                   f"runtime dir exists: {os.path.exists(rundir)}")

    for i, (name, text, line, msg, env) in enumerate(creds):
        path = h.path(f"cred{i}.conf")
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        want = f"{path}:{line}: kubernetes: {msg}"
        e = {k: v for k, v in os.environ.items() if not k.startswith("KUBE")}
        e.update({k: v for k, v in env.items() if v is not None})
        p = svcgw("-c", path, env=e)
        lines = p.stderr.splitlines()
        tap.ok(p.returncode == 2 and len(lines) == 1
               and lines[0].startswith(want) and not os.path.exists(rundir),
               f"{name}: one line naming file, line and the credentials; "
               "exit 2; nothing started",
               f"exit {p.returncode}, want a line starting {want!r}",
               *lines[:10], f"runtime dir exists: {os.path.exists(rundir)}")
        p = svcgw("--check", "-c", path, env=e)
        tap.ok(p.returncode == 0, f"{name}: --check validates the file alone",
               f"exit {p.returncode}", p.stderr[-400:])

    missing = h.path("no-such.conf")
    p = svcgw("-c", missing)
    lines = p.stderr.splitlines()
    tap.ok(p.returncode == 2 and len(lines) == 1
           and lines[0].startswith(f"{missing}: "),
           "a missing file: one line naming it, exit 2",
           f"exit {p.returncode}", *lines[:5])
    return tap.finish()


if __name__ == "__main__":
    sys.exit(main())
