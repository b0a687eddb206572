#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
#
# Installs the Debian 12 packages that svcgw's build, tests and demo need.
# Idempotent and silent when everything is already there; run as root.
# The last two lines are for the integration tests and the demo: network
# namespaces and veths (iproute2), veth offloads (ethtool), real clients
# and servers, captures and their checker (Debian's python3-scapy);
# openssl makes the Kubernetes API stand-in's certificates.
set -eu

packages="
	gcc libc6-dev meson ninja-build pkg-config
	libdpdk-dev dpdk-dev
	libcurl4-openssl-dev libcjson-dev libconfig-dev
	libcmocka-dev
	python3 openssl
	iproute2 ethtool procps iputils-ping
	curl socat iperf3 tcpdump python3-scapy
"

missing=
for p in $packages; do
	status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
	[ "$status" = installed ] || missing="$missing $p"
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps: missing:$missing; run as root to install them" >&2
	exit 1
fi
echo "install-deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086 # word splitting of the list is intended
apt-get install -y -qq --no-install-recommends $missing >/dev/null
