#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""The pods' tunnel end for dsr-ipip and dsr-gue, in user space.

A DSR pod receives the client's packet inside an outer header addressed to
the pod and hands the inner packet to its own stack, where the VIP sits on
a loopback; the pod then answers the client directly. On Linux that is an
ipip / ip6tnl device, plus `ip fou add port N gue` for GUE. The kernels the
tests run on may be built without them (CONFIG_NET_IPIP, CONFIG_IPV6_TUNNEL
and CONFIG_NET_FOU unset, as on the CI's VM), so this process stands in for
them, doing what they do on receive and nothing more:

  IP-in-IP      raw sockets for protocols 4 (IPv4 inside) and 41 (IPv6
                inside), over IPv4 and over IPv6 (RFC 2003, RFC 2473);
  GUE           a UDP socket on --gue-port per family; the payload must be
                GUE variant 1, the inner IP header right after the UDP
                header (its first two bits 01: draft-ietf-intarea-gue §4,
                what Linux fou in gue mode accepts); anything else is
                refused and logged "bad";

and writes each inner packet, unchanged, to a TUN device (--tun), from
which the kernel receives it as it would from a tunnel device. With no
tunnel module loaded the kernel ignores protocols 4 and 41 once a raw
socket took them, so nothing answers them twice.

One log line per packet, flushed at once:
  "ipip|gue OUTER_SRC OUTER_DST INNER_SRC INNER_DST INNER_LEN"
  "bad KIND OUTER_SRC OUTER_DST WHY"
Prints "ready" once every socket is bound and the TUN device is up.
"""
import argparse
import fcntl
import ipaddress
import os
import selectors
import signal
import socket
import struct
import subprocess
import sys

TUNSETIFF = 0x400454ca
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
IPV6_RECVPKTINFO = getattr(socket, "IPV6_RECVPKTINFO", 49)
IPV6_PKTINFO = getattr(socket, "IPV6_PKTINFO", 50)
IP_PKTINFO = getattr(socket, "IP_PKTINFO", 8)


def inner_addrs(pkt):
    """(src, dst) of an inner IP packet, or None if it is not one."""
    if len(pkt) >= 20 and pkt[0] >> 4 == 4:
        return (str(ipaddress.IPv4Address(pkt[12:16])),
                str(ipaddress.IPv4Address(pkt[16:20])))
    if len(pkt) >= 40 and pkt[0] >> 4 == 6:
        return (str(ipaddress.IPv6Address(pkt[8:24])),
                str(ipaddress.IPv6Address(pkt[24:40])))
    return None


class Decap:
    def __init__(self, tun, log):
        self.tun = tun
        self.log = log

    def deliver(self, kind, osrc, odst, inner):
        addrs = inner_addrs(inner)
        if addrs is None:
            self.log.write(f"bad {kind} {osrc} {odst} no IP packet inside\n")
            return
        if kind == "gue" and inner[0] >> 6 != 1:
            self.log.write(f"bad {kind} {osrc} {odst} not GUE variant 1\n")
            return
        self.log.write(f"{kind} {osrc} {odst} {addrs[0]} {addrs[1]} "
                       f"{len(inner)}\n")
        os.write(self.tun, inner)

    def ipip4(self, sock):
        """Raw IPv4 sockets hand over the outer header too."""
        data, (src, _) = sock.recvfrom(65535)
        ihl = (data[0] & 0x0f) * 4
        dst = str(ipaddress.IPv4Address(data[16:20]))
        self.deliver("ipip", src, dst, data[ihl:])

    def ipip6(self, sock):
        """Raw IPv6 sockets hand over the payload only; the outer
        destination comes as IPV6_PKTINFO."""
        data, anc, _, peer = sock.recvmsg(65535, 256)
        self.deliver("ipip", peer[0], pktinfo_dst(anc), data)

    def gue(self, sock):
        if sock.family == socket.AF_INET6:
            data, anc, _, peer = sock.recvmsg(65535, 256)
            dst = pktinfo_dst(anc)
        else:
            data, anc, _, peer = sock.recvmsg(65535, 256)
            dst = pktinfo4_dst(anc)
        self.deliver("gue", peer[0], dst, data)


def pktinfo_dst(anc):
    for level, kind, data in anc:
        if level == socket.IPPROTO_IPV6 and kind == IPV6_PKTINFO:
            return str(ipaddress.IPv6Address(data[:16]))
    return "?"


def pktinfo4_dst(anc):
    for level, kind, data in anc:
        if level == socket.IPPROTO_IP and kind == IP_PKTINFO:
            # struct in_pktinfo: ifindex, spec_dst, addr (the header's dst)
            return str(ipaddress.IPv4Address(data[8:12]))
    return "?"


def open_tun(name):
    fd = os.open("/dev/net/tun", os.O_RDWR)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(),
                                           IFF_TUN | IFF_NO_PI))
    return fd


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tun", default="sgdecap")
    ap.add_argument("--gue-port", type=int, required=True)
    ap.add_argument("--log", required=True)
    args = ap.parse_args()

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    log = open(args.log, "a", encoding="ascii", buffering=1)
    tun = open_tun(args.tun)
    subprocess.run(["ip", "link", "set", args.tun, "up"], check=True)
    d = Decap(tun, log)
    sel = selectors.DefaultSelector()
    for proto in (4, 41):
        s4 = socket.socket(socket.AF_INET, socket.SOCK_RAW, proto)
        sel.register(s4, selectors.EVENT_READ, d.ipip4)
        s6 = socket.socket(socket.AF_INET6, socket.SOCK_RAW, proto)
        s6.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVPKTINFO, 1)
        sel.register(s6, selectors.EVENT_READ, d.ipip6)
    u4 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u4.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
    u4.bind(("0.0.0.0", args.gue_port))
    sel.register(u4, selectors.EVENT_READ, d.gue)
    u6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    u6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    u6.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVPKTINFO, 1)
    u6.bind(("::", args.gue_port))
    sel.register(u6, selectors.EVENT_READ, d.gue)
    print("ready", flush=True)
    while True:
        for key, _ in sel.select():
            key.data(key.fileobj)


if __name__ == "__main__":
    main()
