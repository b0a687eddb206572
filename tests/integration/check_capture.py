#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""Check two captures of one NATed exchange: the client's and the pods'.

The client talks to VIP:port; the pod must see the same packets coming from
the SNAT address to POD:target_port, and the client must see the replies
come back from VIP:port. Checked:
  - the client capture holds only client:cport <-> vip:vport;
  - the pods capture holds only snat:S <-> pod:tport, one S and one pod;
  - each direction carries the same packets on both sides: the same TCP
    header bytes apart from ports and checksum (sequence and ack numbers,
    flags, window, options) and the same payload; UDP the same payload;
  - every IPv4 header checksum, and every TCP and UDP checksum, is valid.
    They are recomputed here from the raw bytes (RFC 791 §3.1, RFC 793
    §3.1, RFC 768), not by scapy, so a checksum the gateway got wrong
    cannot be "fixed" by the checker's own rebuild of the packet.

Either family: IPv6 extension headers are walked to the upper layer, and
the IPv4 header check becomes "well-formed" (IPv6 has no header checksum).

checksums() checks every checksum of every packet of any captures: IPv4
headers, TCP, UDP, ICMP and ICMPv6, and those of packets inside IP-in-IP
(protocols 4 and 41) or GUE variant 1 (UDP to a given port, the inner IP
header right after the UDP header), whose outer UDP checksum over IPv4 may
be zero (RFC 8086 §3.1); the DSR tests use it.

scapy only reads the pcap files. Usable as a module (check(), checksums())
by the tests, or by hand:
  check_capture.py CLIENT.pcap PODS.pcap tcp CLIENT:PORT VIP:PORT SNAT \\
      POD[,POD...] TARGET_PORT
"""
import ipaddress
import struct
import sys

from scapy.utils import RawPcapReader

ETH_P_IP = 0x0800
ETH_P_IPV6 = 0x86dd
ETH_P_8021Q = 0x8100
PROTO = {"tcp": 6, "udp": 17}


def ones_sum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return s


IPPROTO_HOPOPTS, IPPROTO_ROUTING, IPPROTO_FRAGMENT, IPPROTO_DSTOPTS = \
    0, 43, 44, 60
IPPROTO_IPIP, IPPROTO_IPV6, IPPROTO_ICMP, IPPROTO_ICMPV6 = 4, 41, 1, 58


class Packet:
    """The fields of one IPv4 or IPv6 frame the checks need; a packet
    inside IP-in-IP, or inside UDP to one of gue_ports (GUE variant 1: the
    inner IP header right after the UDP header), is parsed too, as inner.
    """

    def __init__(self, frame, index, gue_ports=()):
        self.index = index
        self.error = None
        self.ipv4 = self.ipv6 = False
        off = 14
        etype = struct.unpack("!H", frame[12:14])[0]
        while etype == ETH_P_8021Q:
            etype = struct.unpack("!H", frame[off + 2:off + 4])[0]
            off += 4
        self.eth_dst = frame[0:6]
        if etype in (ETH_P_IP, ETH_P_IPV6):
            self._ip(frame[off:], gue_ports)

    @classmethod
    def inner_of(cls, data, index, gue_ports):
        p = cls.__new__(cls)
        p.index, p.error, p.ipv4, p.ipv6 = index, None, False, False
        p.eth_dst = None
        p._ip(data, gue_ports)
        return p

    @property
    def ip(self):
        return self.ipv4 or self.ipv6

    def _ip(self, data, gue_ports):
        self.inner = None
        self.ext = []
        if data and data[0] >> 4 == 4:
            self._ipv4(data)
        elif data and data[0] >> 4 == 6:
            self._ipv6(data)
        else:
            return
        if self.error:
            return
        self._l4(gue_ports)

    def _ipv4(self, data):
        self.ipv4 = True
        ihl = (data[0] & 0x0f) * 4
        total = struct.unpack("!H", data[2:4])[0]
        # Ethernet pads short frames: the IP total length says where the
        # datagram ends.
        ip = data[:total]
        if ihl < 20 or len(ip) < total or total < ihl:
            self.error = "truncated or malformed IPv4 header"
            return
        self.ttl = ip[8]
        self.proto = ip[9]
        self.src = str(ipaddress.IPv4Address(ip[12:16]))
        self.dst = str(ipaddress.IPv4Address(ip[16:20]))
        self.ip_csum_ok = ones_sum(ip[:ihl]) == 0xffff
        self.l4 = ip[ihl:]
        self.frag = struct.unpack("!H", ip[6:8])[0] & 0x3fff
        self.df = bool(ip[6] & 0x40)
        self.pseudo = ip[12:20]
        self.pseudo_v6 = False

    def _ipv6(self, data):
        self.ipv6 = True
        if len(data) < 40:
            self.error = "truncated IPv6 header"
            return
        plen = struct.unpack("!H", data[4:6])[0]
        ip = data[:40 + plen]
        if len(ip) < 40 + plen:
            self.error = "truncated IPv6 packet"
            return
        self.ttl = ip[7]
        self.src = str(ipaddress.IPv6Address(ip[8:24]))
        self.dst = str(ipaddress.IPv6Address(ip[24:40]))
        self.ip_csum_ok = True  # IPv6 has no header checksum
        self.frag = 0
        self.df = True
        nh, off = ip[6], 40
        # RFC 8200 §4: the extension headers before the upper layer.
        while nh in (IPPROTO_HOPOPTS, IPPROTO_ROUTING, IPPROTO_DSTOPTS,
                     IPPROTO_FRAGMENT):
            if len(ip) < off + 8:
                self.error = "truncated IPv6 extension header"
                return
            self.ext.append(nh)
            if nh == IPPROTO_FRAGMENT:
                self.frag = struct.unpack("!H", ip[off + 2:off + 4])[0] | 1
                nxt, hl = ip[off], 8
            else:
                nxt, hl = ip[off], (ip[off + 1] + 1) * 8
            nh, off = nxt, off + hl
        self.proto = nh
        self.l4 = ip[off:]
        self.pseudo = ip[8:40]
        self.pseudo_v6 = True

    def _pseudo_sum_ok(self, data):
        """RFC 793 §3.1, RFC 768, RFC 8200 §8.1: the checksum over the
        pseudo-header and data."""
        if self.pseudo_v6:
            ph = self.pseudo + struct.pack("!IxxxB", len(data), self.proto)
        else:
            ph = self.pseudo + struct.pack("!BBH", 0, self.proto, len(data))
        return ones_sum(ph + data) == 0xffff

    def _l4(self, gue_ports):
        l4 = self.l4
        self.l4_csum_ok = None
        self.flags = None
        if self.frag:
            return
        if self.proto in (IPPROTO_IPIP, IPPROTO_IPV6):
            self.inner = Packet.inner_of(l4, self.index, gue_ports)
            return
        if self.proto in (IPPROTO_ICMP, IPPROTO_ICMPV6):
            if len(l4) < 8:
                self.error = "truncated ICMP header"
                return
            self.icmp_type, self.icmp_code = l4[0], l4[1]
            self.l4_csum_ok = ones_sum(l4) == 0xffff \
                if self.proto == IPPROTO_ICMP else self._pseudo_sum_ok(l4)
            return
        if self.proto not in (6, 17):
            return
        if len(l4) < (20 if self.proto == 6 else 8):
            self.error = "truncated L4 header"
            return
        self.sport, self.dport = struct.unpack("!HH", l4[:4])
        csum = struct.unpack("!H", l4[16:18] if self.proto == 6
                             else l4[6:8])[0]
        gue = self.proto == 17 and self.dport in gue_ports
        if self.proto == 17 and csum == 0 and self.ipv4 and gue:
            # RFC 768 "no checksum": what a tunnel's outer UDP header over
            # IPv4 may carry (RFC 8086 §3.1), as svcgw's GUE does.
            self.l4_csum_ok = True
        elif self.proto == 17 and csum == 0:
            # RFC 768: "no checksum". Legal over IPv4, but every sender
            # here (Linux) fills it in, so a zero means the gateway
            # cleared it; over IPv6 it is never legal (RFC 8200 §8.1).
            self.l4_csum_ok = False
            self.error = "UDP checksum zero (none)"
        else:
            self.l4_csum_ok = self._pseudo_sum_ok(l4)
        if self.proto == 6:
            # Everything a NAT must leave alone: seq, ack, offset, flags,
            # window, urgent pointer, options, payload.
            self.body = l4[4:16] + l4[18:]
            self.flags = l4[13]
        else:
            self.body = l4[8:]
            if gue:
                self.inner = Packet.inner_of(self.body, self.index,
                                             gue_ports)

    def endpoints(self):
        return (self.src, self.sport, self.dst, self.dport)

    def layers(self):
        """This packet and those inside it, outermost first."""
        p = self
        while p is not None:
            yield p
            p = getattr(p, "inner", None)

    def describe(self):
        if not self.ip:
            return f"#{self.index} not IP"
        if self.error and not hasattr(self, "sport"):
            return f"#{self.index} {self.error}"
        ports = (f":{self.sport}", f":{self.dport}") \
            if hasattr(self, "sport") else ("", "")
        inner = f" [{self.inner.describe()}]" if self.inner else ""
        return (f"#{self.index} {self.src}{ports[0]} > "
                f"{self.dst}{ports[1]} proto {self.proto} "
                f"len {len(self.l4)} ttl {self.ttl}{inner}")


def read(path, gue_ports=()):
    out = []
    for i, (frame, _meta) in enumerate(RawPcapReader(path)):
        out.append(Packet(bytes(frame), i, gue_ports))
    return out


def checksums(paths, gue_ports=()):
    """Every checksum in the captures, of every layer (an encapsulated
    packet's too): [(name, ok, detail lines)] for the IPv4 header
    checksums and for the TCP, UDP, ICMP and ICMPv6 ones."""
    every = []
    for path in paths:
        every += [q for p in read(path, gue_ports) if p.ip
                  for q in p.layers() if q.ip]
    v4 = [p for p in every if p.ipv4]
    bad_ip = [p.describe() for p in v4 if p.error or not p.ip_csum_ok]
    l4 = [p for p in every if not p.error and p.l4_csum_ok is not None]
    bad_l4 = [p.describe() + (f" ({p.error})" if p.error else "")
              for p in every if p.l4_csum_ok is False or p.error]
    return [
        ("every IPv4 header checksum valid", not bad_ip,
         [f"{len(v4)} IPv4 headers"] + bad_ip[:10]),
        ("every TCP/UDP/ICMP checksum valid, encapsulated ones too",
         bool(l4) and not bad_l4,
         [f"{len(l4)} checksums of {len(every)} IP headers"] + bad_l4[:10]),
    ]


def check(client_pcap, pods_pcap, proto, client, vip, snat, pods, tport):
    """([(name, ok, detail lines)], info lines) for one exchange.

    client, vip: (ip, port); snat: ip; pods: set of pod ips; tport: the
    target port. proto: "tcp" or "udp".
    """
    results = []
    cpk = read(client_pcap)
    ppk = read(pods_pcap)
    pnum = PROTO[proto]

    def ours(p):
        return p.ip and not p.error and getattr(p, "proto", None) == pnum

    # Client side: only the client <-> VIP conversation.
    cl = [p for p in cpk if ours(p)]
    fwd_key = (client[0], client[1], vip[0], vip[1])
    rev_key = (vip[0], vip[1], client[0], client[1])
    stray = [p.describe() for p in cl
             if p.endpoints() not in (fwd_key, rev_key)]
    c_fwd = [p for p in cl if p.endpoints() == fwd_key]
    c_rev = [p for p in cl if p.endpoints() == rev_key]
    results.append((
        f"client capture: {proto} {client[0]}:{client[1]} <-> "
        f"{vip[0]}:{vip[1]} only, both directions",
        bool(c_fwd) and bool(c_rev) and not stray,
        [f"{len(c_fwd)} to the VIP, {len(c_rev)} from it"] + stray[:10]))

    # Pods side: one SNAT source port, one pod, the target port.
    pl = [p for p in ppk if ours(p)]
    p_fwd = [p for p in pl if p.src == snat and p.dst in pods
             and p.dport == tport]
    conv = {(p.sport, p.dst) for p in p_fwd}
    ok_conv = len(conv) == 1
    sport, pod = next(iter(conv)) if ok_conv else (None, None)
    p_rev = [p for p in pl if p.dst == snat and p.src == pod
             and p.sport == tport and p.dport == sport]
    stray = [p.describe() for p in pl if p not in p_fwd and p not in p_rev]
    results.append((
        f"pods capture: {proto} {snat}:S <-> POD:{tport}, one S and one pod,"
        " never the client's address",
        ok_conv and bool(p_rev) and not stray,
        [f"conversations {sorted(conv)}",
         f"{len(p_fwd)} to the pod, {len(p_rev)} from it"] + stray[:10]))

    def bodies(pkts):
        return [(p.flags, p.body) for p in pkts]

    same_fwd = bodies(c_fwd) == bodies(p_fwd)
    same_rev = bodies(c_rev) == bodies(p_rev)
    what = ("TCP header apart from ports and checksum, and payload"
            if proto == "tcp" else "payload")
    results.append((
        f"the same packets on both sides in each direction ({what})",
        same_fwd and same_rev and bool(c_fwd),
        [f"to pod: {len(c_fwd)} sent, {len(p_fwd)} arrived, "
         f"{'same' if same_fwd else 'DIFFERENT'}",
         f"to client: {len(p_rev)} sent, {len(c_rev)} arrived, "
         f"{'same' if same_rev else 'DIFFERENT'}"]))

    every = [p for p in cpk + ppk if p.ip]
    bad_ip = [p.describe() for p in every if p.error or not p.ip_csum_ok]
    results.append((
        "every IPv4 header checksum valid (both captures)"
        if ":" not in vip[0] else "every IPv6 header well-formed (both "
        "captures)",
        bool(every) and not bad_ip,
        [f"{len(every)} IP packets"] + bad_ip[:10]))
    l4 = [p for p in every if not p.error and p.l4_csum_ok is not None]
    bad_l4 = [p.describe() + (f" ({p.error})" if p.error else "")
              for p in every if p.l4_csum_ok is False or
              (p.error and hasattr(p, "sport"))]
    results.append((
        "every TCP/UDP checksum valid (both captures)",
        bool(l4) and not bad_l4,
        [f"{len(l4)} TCP/UDP packets"] + bad_l4[:10]))
    ttl = sorted({(p.src, p.ttl) for p in every})
    return results, [f"TTLs seen (source, ttl): {ttl}"]


def hostport(s):
    ip, _, port = s.rpartition(":")
    return ip, int(port)


def main(argv):
    if len(argv) != 8:
        print(__doc__, file=sys.stderr)
        return 2
    cpcap, ppcap, proto, cl, vip, snat, pods, tport = argv
    res, info = check(cpcap, ppcap, proto, hostport(cl), hostport(vip), snat,
                set(pods.split(",")), int(tport))
    failed = 0
    for name, ok, detail in res:
        print(f"{'ok' if ok else 'FAIL'}: {name}")
        for d in detail:
            print(f"    {d}")
        failed += not ok
    print("\n".join(info))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
