#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""Clients the integration tests need and curl or socat cannot be: plain
sockets with options set, and packets made by hand with scapy, run inside
a test's namespace (sgnet.client_tool()). Each sends a bounded number of
packets and exits.

  client.py df-udp HOST PORT SIZE
      One UDP datagram of SIZE payload bytes with "don't fragment"
      (IP_PMTUDISC_DO / IPV6_PMTUDISC_DO), then, half a second later, the
      path MTU the kernel now knows for HOST (IP_MTU / IPV6_MTU on the
      connected socket): prints "mtu N". An ICMP "fragmentation needed" /
      "packet too big" that reached the kernel shows as a lower N.

  client.py ext-http HOST PORT PATH
  client.py ext-udp HOST PORT
      IPv6 with extension headers before the upper layer: every packet the
      socket sends carries a hop-by-hop options header and a destination
      options header (RFC 8200 §4.3, §4.6; sticky IPV6_HOPOPTS and
      IPV6_DSTOPTS, PadN options only). ext-http sends an HTTP/1.0 GET and
      prints the body; ext-udp sends one datagram and prints the reply.

  client.py ndp-ns IFACE SOURCE TARGET
      One neighbour solicitation for TARGET (RFC 4861 §4.3: to its
      solicited-node multicast address, hop limit 255, with our MAC in a
      source link-layer address option) from SOURCE out of IFACE; prints
      "na TARGET MAC FLAGS" for the advertisement that answers it within a
      second (MAC from its target link-layer address option, FLAGS of
      R, S, O), or "none".

  client.py udp HOST PORT SPORT SIZE
      One UDP datagram of SIZE payload bytes (pod.stream_pattern(), so its
      digest is known) from a socket bound to SPORT: above the link MTU the
      kernel sends it in fragments. Prints the answer that comes within 3 s.

  client.py udp-loop HOST PORT INTERVAL_MS COUNT
      COUNT datagrams, one every INTERVAL_MS, each from a new source port
      (a new flow: a fresh Maglev pick on whichever gateway gets it), each
      waiting at most INTERVAL_MS for its answer. Prints one line per
      answer, "T NAME" (T: CLOCK_MONOTONIC seconds when it came), so a
      test sees how long the service was unreachable.

  client.py frags HOST PORT SPORT SIZE ORDER
      The same datagram made by hand as IPv4 fragments of at most 1000
      bytes, sent in ORDER ("forward" or "reverse"); prints the answer.

  client.py frag-flood HOST PORT COUNT
      COUNT first fragments (MF set, never completed) of COUNT different
      datagrams to HOST:PORT, from source ports 40000 up. Prints nothing.

  client.py syn-flood HOST PORT SPORT COUNT
      COUNT TCP SYNs to HOST:PORT (IPv4), from source ports SPORT up, one
      each, sent as fast as scapy can; their answers are left to the
      kernel. Prints nothing.

  client.py too-big SRC DST MTU QSRC QSPORT QDST QDPORT
      ICMP "fragmentation needed" (type 3 code 4, next-hop MTU), or for
      IPv6 addresses ICMPv6 "packet too big", from SRC to DST quoting a UDP
      packet QSRC:QSPORT -> QDST:QDPORT, as a router between the two would
      send it. Prints nothing.

Exit 0 when an answer came (or, for what expects none, when sent), 1
otherwise (the reason on stderr).
"""
import ipaddress
import socket
import struct
import sys
import time

IP_MTU_DISCOVER, IP_PMTUDISC_DO, IP_MTU = 10, 2, 14
IPV6_MTU_DISCOVER, IPV6_PMTUDISC_DO, IPV6_MTU = 23, 2, 24
IPV6_HOPOPTS, IPV6_DSTOPTS = 54, 59
# An 8-byte options header: next header and length (the kernel fills the
# next header; length 0 means 8 bytes), then PadN (type 1) of 4 bytes.
PADN_8 = bytes([0, 0, 1, 4, 0, 0, 0, 0])


def family(host):
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def df_udp(host, port, size):
    s = socket.socket(family(host), socket.SOCK_DGRAM)
    if s.family == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, IPV6_MTU_DISCOVER, IPV6_PMTUDISC_DO)
    else:
        s.setsockopt(socket.IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DO)
    s.connect((host, port))
    s.send(bytes(size))
    time.sleep(0.5)
    if s.family == socket.AF_INET6:
        mtu = s.getsockopt(socket.IPPROTO_IPV6, IPV6_MTU)
    else:
        mtu = s.getsockopt(socket.IPPROTO_IP, IP_MTU)
    print(f"mtu {mtu}")
    return 0


def ext_socket(host, kind):
    s = socket.socket(socket.AF_INET6, kind)
    s.setsockopt(socket.IPPROTO_IPV6, IPV6_HOPOPTS, PADN_8)
    s.setsockopt(socket.IPPROTO_IPV6, IPV6_DSTOPTS, PADN_8)
    s.settimeout(5)
    return s


def ext_http(host, port, path):
    s = ext_socket(host, socket.SOCK_STREAM)
    s.connect((host, port))
    s.sendall(f"GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status = head.split(b"\r\n")[0]
    if not status.startswith(b"HTTP/1.") or b" 200 " not in status:
        print(f"bad answer: {head[:100]!r}", file=sys.stderr)
        return 1
    sys.stdout.write(body.decode(errors="replace"))
    return 0


def ext_udp(host, port):
    s = ext_socket(host, socket.SOCK_DGRAM)
    s.connect((host, port))
    s.send(b"hello\n")
    sys.stdout.write(s.recv(2048).decode(errors="replace"))
    return 0


def ndp_ns(iface, source, target):
    ifindex = socket.if_nametoindex(iface)
    with open(f"/sys/class/net/{iface}/address", encoding="ascii") as f:
        mac = bytes.fromhex(f.read().strip().replace(":", ""))
    tgt = ipaddress.IPv6Address(target).packed
    snm = str(ipaddress.IPv6Address(
        bytes.fromhex("ff02" + "00" * 9 + "01ff") + tgt[13:]))
    s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, 255)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, ifindex)
    s.bind((source, 0, 0, 0))
    # The kernel computes the checksum of raw ICMPv6 (RFC 3542 §3.1).
    s.sendto(struct.pack("!BBHI", 135, 0, 0, 0) + tgt + bytes([1, 1]) + mac,
             (snm, 0, 0, ifindex))
    deadline = time.monotonic() + 1
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            print("none")
            return 1
        s.settimeout(left)
        try:
            data = s.recv(2048)
        except socket.timeout:
            continue
        if len(data) < 24 or data[0] != 136 or data[8:24] != tgt:
            continue
        flags = "".join(f for f, bit in (("R", 0x80), ("S", 0x40),
                                         ("O", 0x20)) if data[4] & bit)
        lladdr, off = "-", 24
        while off + 8 <= len(data) and data[off + 1]:
            if data[off] == 2:
                lladdr = data[off + 2:off + 8].hex(":")
            off += data[off + 1] * 8
        print(f"na {target} {lladdr} {flags or '-'}")
        return 0


def bound_udp(sport):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("", sport))
    s.settimeout(3)
    return s


def print_answer(s):
    try:
        sys.stdout.write(s.recv(2048).decode(errors="replace"))
        return 0
    except socket.timeout:
        print("no answer within 3 s", file=sys.stderr)
        return 1


def udp(host, port, sport, size):
    import pod
    s = bound_udp(sport)
    s.sendto(pod.stream_pattern(0, size), (host, port))
    return print_answer(s)


def udp_loop(host, port, interval_ms, count):
    import time
    for i in range(count):
        t0 = time.monotonic()
        with socket.socket(family(host), socket.SOCK_DGRAM) as s:
            s.settimeout(interval_ms / 1000)
            try:
                s.sendto(f"loop {i}\n".encode(), (host, port))
                data = s.recv(2048)
                print(f"{time.monotonic():.4f} {data.decode().strip()}",
                      flush=True)
            except OSError:
                pass
        left = interval_ms / 1000 - (time.monotonic() - t0)
        if left > 0:
            time.sleep(left)
    return 0


def scapy():
    """scapy, sending through the kernel's routes and neighbours (a raw
    socket), not through its own ARP."""
    import scapy.all as sc
    sc.conf.verb = 0
    sc.conf.L3socket = sc.L3RawSocket
    return sc


def frags(host, port, sport, size, order):
    import pod
    sc = scapy()
    s = bound_udp(sport)
    pkt = sc.IP(dst=host, id=sport) / sc.UDP(sport=sport, dport=port) / \
        pod.stream_pattern(0, size)
    # Checksums computed over the whole datagram before it is cut.
    pieces = sc.fragment(sc.IP(sc.raw(pkt)), fragsize=1000)
    if order == "reverse":
        pieces.reverse()
    sc.send(pieces)
    return print_answer(s)


def frag_flood(host, port, count):
    sc = scapy()
    sc.send([sc.IP(dst=host, id=i, flags="MF") /
             sc.UDP(sport=40000 + i, dport=port) / (b"x" * 64)
             for i in range(count)])
    return 0


def syn_flood(host, port, sport, count):
    sc = scapy()
    sc.send([sc.IP(dst=host) / sc.TCP(sport=sport + i, dport=port, flags="S",
                                      seq=1000 + i)
             for i in range(count)])
    return 0


def too_big(src, dst, mtu, qsrc, qsport, qdst, qdport):
    sc = scapy()
    udp = sc.UDP(sport=qsport, dport=qdport) / (b"q" * 32)
    if family(dst) == socket.AF_INET:
        sc.send(sc.IP(src=src, dst=dst) /
                sc.ICMP(type=3, code=4, nexthopmtu=mtu) /
                sc.raw(sc.IP(src=qsrc, dst=qdst) / udp))
        return 0
    pkt = sc.IPv6(src=src, dst=dst) / sc.ICMPv6PacketTooBig(mtu=mtu) / \
        sc.raw(sc.IPv6(src=qsrc, dst=qdst) / udp)
    # A raw IPPROTO_RAW socket: the header as built, routed by the kernel.
    s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_RAW)
    s.sendto(sc.raw(pkt), (dst, 0))
    return 0


def main(argv):
    try:
        if argv[:1] == ["udp"] and len(argv) == 5:
            return udp(argv[1], int(argv[2]), int(argv[3]), int(argv[4]))
        if argv[:1] == ["frags"] and len(argv) == 6:
            return frags(argv[1], int(argv[2]), int(argv[3]), int(argv[4]),
                         argv[5])
        if argv[:1] == ["frag-flood"] and len(argv) == 4:
            return frag_flood(argv[1], int(argv[2]), int(argv[3]))
        if argv[:1] == ["syn-flood"] and len(argv) == 5:
            return syn_flood(argv[1], int(argv[2]), int(argv[3]),
                             int(argv[4]))
        if argv[:1] == ["too-big"] and len(argv) == 8:
            return too_big(argv[1], argv[2], int(argv[3]), argv[4],
                           int(argv[5]), argv[6], int(argv[7]))
        if argv[:1] == ["udp-loop"] and len(argv) == 5:
            return udp_loop(argv[1], int(argv[2]), int(argv[3]),
                            int(argv[4]))
        if argv[:1] == ["df-udp"] and len(argv) == 4:
            return df_udp(argv[1], int(argv[2]), int(argv[3]))
        if argv[:1] == ["ext-http"] and len(argv) == 4:
            return ext_http(argv[1], int(argv[2]), argv[3])
        if argv[:1] == ["ext-udp"] and len(argv) == 3:
            return ext_udp(argv[1], int(argv[2]))
        if argv[:1] == ["ndp-ns"] and len(argv) == 4:
            return ndp_ns(argv[1], argv[2], argv[3])
    except OSError as e:
        print(f"{type(e).__name__}: {e}", file=sys.stderr)
        return 1
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
