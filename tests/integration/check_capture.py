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

scapy only reads the pcap files. Usable as a module (check()) by
test_capture.py, or by hand:
  check_capture.py CLIENT.pcap PODS.pcap tcp CLIENT:PORT VIP:PORT SNAT \\
      POD[,POD...] TARGET_PORT
"""
import ipaddress
import struct
import sys

from scapy.utils import RawPcapReader

ETH_P_IP = 0x0800
ETH_P_8021Q = 0x8100
PROTO = {"tcp": 6, "udp": 17}


def ones_sum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return s


class Packet:
    """The fields of one IPv4 TCP/UDP frame the checks need."""

    def __init__(self, frame, index):
        self.index = index
        self.error = None
        off = 14
        etype = struct.unpack("!H", frame[12:14])[0]
        while etype == ETH_P_8021Q:
            etype = struct.unpack("!H", frame[off + 2:off + 4])[0]
            off += 4
        self.ipv4 = etype == ETH_P_IP
        if not self.ipv4:
            return
        ihl = (frame[off] & 0x0f) * 4
        total = struct.unpack("!H", frame[off + 2:off + 4])[0]
        # Ethernet pads short frames: the IP total length says where the
        # datagram ends.
        ip = frame[off:off + total]
        if ihl < 20 or len(ip) < total or total < ihl:
            self.error = "truncated or malformed IPv4 header"
            return
        self.ttl = ip[8]
        self.proto = ip[9]
        self.src = str(ipaddress.IPv4Address(ip[12:16]))
        self.dst = str(ipaddress.IPv4Address(ip[16:20]))
        self.ip_csum_ok = ones_sum(ip[:ihl]) == 0xffff
        l4 = ip[ihl:]
        self.l4 = l4
        self.frag = struct.unpack("!H", ip[6:8])[0] & 0x3fff
        if self.proto not in (6, 17) or self.frag:
            self.l4_csum_ok = None
            return
        if len(l4) < (20 if self.proto == 6 else 8):
            self.error = "truncated L4 header"
            return
        self.sport, self.dport = struct.unpack("!HH", l4[:4])
        pseudo = ip[12:20] + struct.pack("!BBH", 0, self.proto, len(l4))
        csum = struct.unpack("!H", l4[16:18] if self.proto == 6
                             else l4[6:8])[0]
        if self.proto == 17 and csum == 0:
            # RFC 768: "no checksum". Legal, but every sender here (Linux)
            # fills it in, so a zero means the gateway cleared it.
            self.l4_csum_ok = False
            self.error = "UDP checksum zero (none)"
        else:
            self.l4_csum_ok = ones_sum(pseudo + l4) == 0xffff
        if self.proto == 6:
            # Everything a NAT must leave alone: seq, ack, offset, flags,
            # window, urgent pointer, options, payload.
            self.body = l4[4:16] + l4[18:]
            self.flags = l4[13]
        else:
            self.body = l4[8:]
            self.flags = None

    def endpoints(self):
        return (self.src, self.sport, self.dst, self.dport)

    def describe(self):
        if not self.ipv4:
            return f"#{self.index} not IPv4"
        if self.error and not hasattr(self, "sport"):
            return f"#{self.index} {self.error}"
        return (f"#{self.index} {self.src}:{self.sport} > "
                f"{self.dst}:{self.dport} proto {self.proto} "
                f"len {len(self.l4)} ttl {self.ttl}")


def read(path):
    out = []
    for i, (frame, _meta) in enumerate(RawPcapReader(path)):
        out.append(Packet(bytes(frame), i))
    return out


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
        return p.ipv4 and not p.error and getattr(p, "proto", None) == pnum

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

    every = [p for p in cpk + ppk if p.ipv4]
    bad_ip = [p.describe() for p in every if p.error or not p.ip_csum_ok]
    results.append((
        "every IPv4 header checksum valid (both captures)",
        bool(every) and not bad_ip,
        [f"{len(every)} IPv4 packets"] + bad_ip[:10]))
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
