#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
#
# The README's first command: svcgw forwarding a LoadBalancer VIP and a
# NodePort to three pods, end to end, on this machine. As root on Debian 12:
# installs what is missing, builds svcgw (build/, output kept in
# build/demo-build.log), then tools/demo.py builds namespaces client, gw and
# pods, runs svcgw in gw with config/demo.conf, drives curl and socat from
# client, shows svcgwctl's tables and tears everything down. No prompts;
# exits non-zero if anything failed.
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

if [ "$(id -u)" -ne 0 ]; then
	echo "tools/demo.sh: run as root: it installs packages, creates network" \
		"namespaces and runs DPDK" >&2
	exit 1
fi

tools/install-deps.sh

echo "== building svcgw (meson, ninja: build/)"
log=build/demo-build.log
mkdir -p build
if ! { [ -f build/build.ninja ] || meson setup build; } >"$log" 2>&1 ||
	! meson compile -C build app/svcgw/svcgw >>"$log" 2>&1; then
	tail -n 30 "$log" >&2
	echo "tools/demo.sh: build failed; the whole log is $log" >&2
	exit 1
fi

exec /usr/bin/python3 tools/demo.py --svcgw build/app/svcgw/svcgw \
	--config config/demo.conf
