/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Packet parsing, checksums and header rewriting for the data path.
 *
 * Everything here works on one contiguous byte buffer (the daemon passes the
 * first mbuf segment's data and length) and never reads or writes past it.
 * No DPDK: the same code runs in the workers, in unit tests and in fuzzers.
 * Nothing here locks, allocates, logs or makes a system call.
 *
 * Byte order: addresses, ports and checksums handed in or out are in network
 * order, exactly as they sit in the packet; offsets, lengths, ethertype, VLAN
 * TCI and fragment fields are host-order integers.
 *
 * Not here: flow tracking (lib/flow), service lookup (lib/svc), ARP and NDP
 * replies (lib/neigh), mbuf handling (app/svcgw).
 */
#ifndef SG_PKT_H
#define SG_PKT_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "sg_common.h"

/*
 * Why a packet was refused. SG_PKT_OK is 0 and the others are small
 * consecutive integers, so the daemon counts drops in an array indexed by
 * reason. The "truncated" reasons and the two "beyond buffer" ones are what a
 * packet cut short produces; the others are headers that lie about
 * themselves. An unknown ethertype or L4 protocol is not a reason: it is
 * classified (sg_pkt_info.l3, .l4_proto) and accepted.
 */
enum sg_pkt_reason {
	SG_PKT_OK = 0,
	SG_PKT_ERR_ETH_TRUNC,		/* fewer than 14 bytes */
	SG_PKT_ERR_VLAN_TRUNC,		/* 802.1Q tag cut short */
	SG_PKT_ERR_ARP_TRUNC,		/* fewer than 28 bytes of ARP */
	SG_PKT_ERR_ARP_FORMAT,		/* ARP not Ethernet/IPv4 (RFC 826) */
	SG_PKT_ERR_IPV4_TRUNC,		/* buffer ends inside the IPv4 header */
	SG_PKT_ERR_IPV4_VERSION,	/* ethertype IPv4, version not 4 */
	SG_PKT_ERR_IPV4_IHL,		/* IHL below 5 */
	SG_PKT_ERR_IPV4_TOTLEN_SHORT,	/* total length below IHL x 4 */
	SG_PKT_ERR_IPV4_TOTLEN_LONG,	/* total length beyond the buffer */
	SG_PKT_ERR_IPV6_TRUNC,		/* buffer ends inside the IPv6 header */
	SG_PKT_ERR_IPV6_VERSION,	/* ethertype IPv6, version not 6 */
	SG_PKT_ERR_IPV6_PAYLOAD_LONG,	/* payload length beyond the buffer */
	SG_PKT_ERR_IPV6_EXT_TRUNC,	/* extension header past the datagram end */
	SG_PKT_ERR_IPV6_EXT_MANY,	/* more than SG_PKT_IPV6_MAX_EXT */
	SG_PKT_ERR_IPV6_HBH_POS,	/* hop-by-hop not first (RFC 8200 §4.3) */
	SG_PKT_ERR_FRAG_LEN,		/* MF set, length not a multiple of 8 */
	SG_PKT_ERR_FRAG_OVERSIZE,	/* offset + length beyond 65535 */
	SG_PKT_ERR_TCP_TRUNC,		/* fewer than 20 bytes of TCP */
	SG_PKT_ERR_TCP_DOFF_SHORT,	/* data offset below 5 */
	SG_PKT_ERR_TCP_DOFF_LONG,	/* data offset past the datagram end */
	SG_PKT_ERR_UDP_TRUNC,		/* fewer than 8 bytes of UDP */
	SG_PKT_ERR_UDP_LEN,		/* UDP length disagrees with IP */
	SG_PKT_ERR_UDP6_ZERO_CSUM,	/* IPv6 UDP checksum 0 (RFC 8200 §8.1) */
	SG_PKT_ERR_SCTP_TRUNC,		/* fewer than 12 bytes of SCTP */
	SG_PKT_ERR_ICMP_TRUNC,		/* fewer than 8 bytes of ICMP */
	SG_PKT_ERR_ICMPV6_TRUNC,	/* fewer than 8 bytes of ICMPv6 */
	/* sg_pkt_parse_icmp_error() only: the packet quoted in an ICMP error */
	SG_PKT_ERR_ICMP_NOT_ERROR,	/* the outer packet is no ICMP error */
	SG_PKT_ERR_INNER_IP_TRUNC,	/* quote ends inside the IP header */
	SG_PKT_ERR_INNER_VERSION,	/* quoted IP version != outer's */
	SG_PKT_ERR_INNER_IHL,		/* quoted IPv4 IHL below 5 */
	SG_PKT_ERR_INNER_TOTLEN,	/* quoted total length below header */
	SG_PKT_ERR_INNER_EXT_TRUNC,	/* quote ends inside an ext. header */
	SG_PKT_ERR_INNER_EXT_MANY,	/* more than SG_PKT_IPV6_MAX_EXT */
	SG_PKT_ERR_INNER_L4_TRUNC,	/* fewer than 8 bytes of L4 quoted */
	SG_PKT_REASON_COUNT
};

/* Stable snake_case name of a reason, for counters and metrics labels. */
const char *sg_pkt_reason_name(enum sg_pkt_reason reason);

/*
 * IPv6 extension headers walked before giving up. RFC 8200 §4.1 allows each
 * header once (destination options twice), so a legitimate chain has at most
 * six; a longer one is an attack on the parser, not traffic.
 */
#define SG_PKT_IPV6_MAX_EXT 8

/* What sits after the Ethernet header. */
enum sg_pkt_l3 {
	SG_PKT_L3_OTHER = 0,	/* ethertype not handled here: classified, not refused */
	SG_PKT_L3_ARP,
	SG_PKT_L3_IPV4,
	SG_PKT_L3_IPV6,
};

/* sg_pkt_info.flags and sg_pkt_icmp_inner.flags */
#define SG_PKT_F_VLAN		0x0001	/* one 802.1Q tag; vlan_tci valid */
#define SG_PKT_F_L4		0x0002	/* L4 header parsed at l4_off */
#define SG_PKT_F_FRAG		0x0004	/* a fragment: offset != 0 or MF */
#define SG_PKT_F_MF		0x0008	/* more fragments follow */
#define SG_PKT_F_DF		0x0010	/* IPv4 don't fragment */
#define SG_PKT_F_IP_OPTS	0x0020	/* IPv4 options or IPv6 ext. headers */
#define SG_PKT_F_IPV6_RH	0x0040	/* routing header with segments left */
#define SG_PKT_F_ICMP_ERROR	0x0080	/* ICMP(v6) error: a packet is quoted */
#define SG_PKT_F_ECHO_REQ	0x0100	/* ICMP(v6) echo request */
#define SG_PKT_F_ECHO_REPLY	0x0200	/* ICMP(v6) echo reply */
#define SG_PKT_F_L4_CSUM	0x0400	/* inner only: L4 checksum is quoted
					 * (SCTP: the whole packet is) */

/*
 * A parsed packet, as offsets from the start of the buffer.
 *
 * sport and dport are set for TCP, UDP and SCTP, and for ICMP(v6) echo,
 * whose identifier plays the port's role: it is the source port of a
 * request and the destination port of a reply (the other one is 0), so a
 * reply's (sport, dport) is its request's swapped, like a port pair.
 */
struct sg_pkt_info {
	uint32_t l3_off;	/* ARP or IP header */
	uint32_t l4_off;	/* past IPv4 options / IPv6 ext. headers */
	uint32_t ip_end;	/* end of the IP datagram by its own length (no
				 * Ethernet padding); ARP: end of ARP; else len */
	uint32_t frag_id;	/* IPv4 id or IPv6 fragment id, if SG_PKT_F_FRAG */
	uint16_t ethertype;	/* after the VLAN tag */
	uint16_t vlan_tci;
	uint16_t flags;		/* SG_PKT_F_* */
	uint16_t frag_off;	/* fragment offset in bytes */
	uint16_t sport;		/* network order */
	uint16_t dport;		/* network order */
	uint8_t l3;		/* enum sg_pkt_l3 */
	uint8_t l4_proto;	/* IPPROTO_*, after IPv6 extension headers */
	uint8_t icmp_type;	/* ICMP or ICMPv6 type, if L4 parsed */
};

/*
 * Parse Ethernet (one optional 802.1Q tag), then ARP, IPv4 or IPv6, then
 * TCP, UDP, SCTP, ICMP (in IPv4) or ICMPv6 (in IPv6). A non-first fragment
 * has no L4 header; other protocols are left unparsed (no SG_PKT_F_L4).
 * An IPv6 atomic fragment (offset 0, no MF) is parsed as a whole packet
 * (RFC 6946 §4). The first fragment must hold the whole header chain and L4
 * header (RFC 7112, RFC 1858 §3).
 * Returns SG_PKT_OK with *pi filled, or the reason the packet is refused
 * (*pi then only partly filled).
 */
enum sg_pkt_reason sg_pkt_parse(const uint8_t *buf, uint32_t len, struct sg_pkt_info *pi);

/* sg_pkt_parse_fast()'s result for a TCP or UDP header at l4_off, straight after the IP header. */
static inline void
sg_pkt_fast_fill(struct sg_pkt_info *pi, const uint8_t *buf, uint8_t l3, uint16_t ethertype,
		 uint32_t l4_off, uint32_t ip_end, uint8_t proto, uint16_t flags)
{
	memset(pi, 0, sizeof(*pi));
	pi->l3_off = 14;
	pi->l4_off = l4_off;
	pi->ip_end = ip_end;
	pi->ethertype = ethertype;
	pi->flags = SG_PKT_F_L4 | flags;
	memcpy(&pi->sport, buf + l4_off, 2);
	memcpy(&pi->dport, buf + l4_off + 2, 2);
	pi->l3 = l3;
	pi->l4_proto = proto;
}

/*
 * sg_pkt_parse() inline for the packets a gateway mostly sees: untagged
 * IPv4 without options or fragmentation, or IPv6 without extension
 * headers, carrying TCP or UDP. The function call and the general walk
 * cost more than the checks themselves; everything else, and every packet
 * the fast checks doubt, goes to sg_pkt_parse(), with the same result.
 */
static inline enum sg_pkt_reason
sg_pkt_parse_fast(const uint8_t *buf, uint32_t len, struct sg_pkt_info *pi)
{
	if (len >= 14 + 20 + 8 && buf[12] == 0x08 && buf[13] == 0x00 && buf[14] == 0x45) {
		const uint8_t *ip = buf + 14, *l4 = buf + 34;
		uint32_t tot = (uint32_t)ip[2] << 8 | ip[3], avail = tot - 20;
		uint16_t fo = (uint16_t)(ip[6] << 8 | ip[7]);
		uint8_t proto = ip[9];
		bool ok = false;

		if ((fo & 0x3fff) == 0 && tot >= 28 && tot <= len - 14) {
			if (proto == 6)	/* TCP: data offset 5 or more, within the datagram */
				ok = avail >= 20 && (l4[12] >> 4) >= 5 && (uint32_t)(l4[12] >> 4) * 4 <= avail;
			else if (proto == 17)	/* UDP: its length is the datagram's rest */
				ok = ((uint32_t)l4[4] << 8 | l4[5]) == avail;
		}
		if (sg_likely(ok)) {
			sg_pkt_fast_fill(pi, buf, SG_PKT_L3_IPV4, 0x0800, 34, 14 + tot, proto,
					 fo & 0x4000 ? SG_PKT_F_DF : 0);
			return SG_PKT_OK;
		}
	} else if (len >= 14 + 40 + 8 && buf[12] == 0x86 && buf[13] == 0xdd && (buf[14] >> 4) == 6) {
		const uint8_t *ip = buf + 14, *l4 = buf + 54;
		uint32_t plen = (uint32_t)ip[4] << 8 | ip[5];
		uint8_t proto = ip[6];
		bool ok = false;

		if (plen <= len - 54) {
			if (proto == 6)
				ok = plen >= 20 && (l4[12] >> 4) >= 5 && (uint32_t)(l4[12] >> 4) * 4 <= plen;
			else if (proto == 17)	/* and a checksum: never 0 over IPv6 (RFC 8200 §8.1) */
				ok = plen >= 8 && ((uint32_t)l4[4] << 8 | l4[5]) == plen &&
				     (l4[6] | l4[7]) != 0;
		}
		if (sg_likely(ok)) {
			sg_pkt_fast_fill(pi, buf, SG_PKT_L3_IPV6, 0x86dd, 54, 54 + plen, proto, 0);
			return SG_PKT_OK;
		}
	}
	return sg_pkt_parse(buf, len, pi);
}

/*
 * sg_pkt_parse() of n packets: reasons[i] is packet i's verdict. Returns
 * how many were SG_PKT_OK.
 */
uint32_t sg_pkt_parse_bulk(const uint8_t *const bufs[], const uint32_t lens[],
			   struct sg_pkt_info infos[], uint8_t reasons[], uint32_t n);

/*
 * The packet quoted in an ICMP or ICMPv6 error: the original datagram as its
 * sender sent it, cut short by design (RFC 792, RFC 1812 §4.3.2.3,
 * RFC 4443 §2.4 (c)). Offsets are from the start of the buffer.
 */
struct sg_pkt_icmp_inner {
	uint32_t l3_off;	/* quoted IP header */
	uint32_t l4_off;	/* quoted L4 header */
	uint32_t end;		/* end of the quoted datagram: no further than the
				 * outer datagram, its RFC 4884 length or its own
				 * length field */
	uint16_t flags;		/* SG_PKT_F_* as in sg_pkt_info */
	uint16_t sport;		/* network order, as in sg_pkt_info */
	uint16_t dport;
	uint8_t l3;		/* SG_PKT_L3_IPV4 or _IPV6, as the outer */
	uint8_t l4_proto;
};

/*
 * Parse the packet quoted in the ICMP error pi describes (pi from a
 * successful sg_pkt_parse() of buf with SG_PKT_F_ICMP_ERROR). At least the
 * quoted IP header (with its extension headers) and 8 bytes of L4 must be
 * there, except for a non-first fragment, which has no L4 header. The
 * quoted length fields are not compared with the quote, which is short by
 * design. Returns SG_PKT_OK, or SG_PKT_ERR_ICMP_NOT_ERROR or one of the
 * SG_PKT_ERR_INNER_* reasons.
 */
enum sg_pkt_reason sg_pkt_parse_icmp_error(const uint8_t *buf, const struct sg_pkt_info *pi,
					   struct sg_pkt_icmp_inner *in);

/*
 * One's-complement checksums (RFC 1071). Partial sums are 32-bit
 * accumulators of 16-bit words as they sit in memory (network order), which
 * makes them byte-order independent (RFC 1071 §2 (B)); 16-bit values are
 * field contents loaded with memcpy, i.e. network order.
 */

/* Fold a partial sum to 16 bits, without complementing it. */
static inline uint16_t
sg_csum_fold(uint32_t sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)sum;
}

/*
 * Add len bytes at buf to a partial sum. buf must start at an even offset
 * of the checksummed data; an odd len is padded with a zero byte.
 */
uint32_t sg_csum_partial(const void *buf, uint32_t len, uint32_t sum);

/*
 * Add the change of n bytes (n even) from old to new to a partial "delta"
 * sum: the ~m + m' terms of RFC 1624 eqn. 3, for several fields at once.
 */
static inline uint32_t
sg_csum_delta(uint32_t delta, const void *old, const void *new, uint32_t n)
{
	const uint8_t *o = old, *w = new;
	uint16_t a, b;

	for (uint32_t i = 0; i < n; i += 2) {
		memcpy(&a, o + i, 2);
		memcpy(&b, w + i, 2);
		delta += (uint16_t)~a + (uint32_t)b;
	}
	return delta;
}

/* Apply a delta sum to a checksum field: HC' = ~(~HC + delta), RFC 1624 eqn. 3. */
static inline uint16_t
sg_csum_apply(uint16_t csum, uint32_t delta)
{
	return (uint16_t)~sg_csum_fold((uint32_t)(uint16_t)~csum + sg_csum_fold(delta));
}

/* RFC 1624 eqn. 3 for one 16-bit field changing from old to new. */
static inline uint16_t
sg_csum_update16(uint16_t csum, uint16_t old, uint16_t new)
{
	return sg_csum_apply(csum, (uint32_t)(uint16_t)~old + new);
}

/* RFC 1624 eqn. 3 for a 32-bit field (an IPv4 address): 4 bytes each. */
static inline uint16_t
sg_csum_update32(uint16_t csum, const void *old, const void *new)
{
	return sg_csum_apply(csum, sg_csum_delta(0, old, new, 4));
}

/* RFC 1624 eqn. 3 for a 128-bit field (an IPv6 address): 16 bytes each. */
static inline uint16_t
sg_csum_update128(uint16_t csum, const void *old, const void *new)
{
	return sg_csum_apply(csum, sg_csum_delta(0, old, new, 16));
}

/*
 * Full computations, for tests and for building packets. Each returns the
 * value the checksum field must hold (network order), computed as if the
 * field were 0.
 */

/* IPv4 header checksum of the header at ip (IHL from the header, >= 5). */
uint16_t sg_pkt_ipv4_cksum(const uint8_t *ip);

/*
 * TCP, UDP, ICMP or ICMPv6 checksum of the unfragmented datagram pi
 * describes, over [l4_off, ip_end) and, but for ICMP, the IPv4 or IPv6
 * pseudo-header (RFC 793 §3.1, RFC 768, RFC 8200 §8.1, RFC 4443 §2.3).
 * A UDP result of 0 is returned as 0xffff (RFC 768). Returns 0 for any
 * other protocol.
 */
uint16_t sg_pkt_l4_cksum(const uint8_t *buf, const struct sg_pkt_info *pi);

/*
 * CRC32c (Castagnoli) as SCTP (RFC 4960 appendix B, RFC 3309) and iSCSI
 * use it. crc is a previous result to continue from, 0 to start:
 * sg_crc32c(sg_crc32c(0, a, n), b, m) is the CRC of a followed by b.
 * Uses the SSE4.2 crc32 instruction where the CPU has it; sg_crc32c_sw() is
 * the table-driven version, always available and giving the same results.
 */
uint32_t sg_crc32c(uint32_t crc, const void *buf, size_t len);
uint32_t sg_crc32c_sw(uint32_t crc, const void *buf, size_t len);

/*
 * SCTP checksum of the len-byte SCTP packet at sctp (len >= 12, the common
 * header), its checksum field taken as 0. Stored in the packet least significant byte first, as
 * RFC 4960 appendix B transmits it: sg_pkt_sctp_store().
 */
uint32_t sg_pkt_sctp_crc(const uint8_t *sctp, uint32_t len);

static inline void
sg_pkt_sctp_store(uint8_t *sctp, uint32_t crc)
{
	sctp[8] = (uint8_t)crc;
	sctp[9] = (uint8_t)(crc >> 8);
	sctp[10] = (uint8_t)(crc >> 16);
	sctp[11] = (uint8_t)(crc >> 24);
}

/*
 * Rewrites. Each updates every checksum it affects incrementally (RFC 1624
 * eqn. 3), except SCTP's CRC32c, which has to be recomputed.
 */

/* An IPv4 or IPv6 address, network order; IPv4 uses a8[0..3]. */
union sg_pkt_addr {
	uint8_t a8[16];
	uint16_t a16[8];
	uint32_t a32[4];
};

#define SG_PKT_NAT_SRC 0x01	/* rewrite source address and port */
#define SG_PKT_NAT_DST 0x02	/* rewrite destination address and port */

/*
 * A translation. SNAT+DNAT sets both flags, DNAT alone SG_PKT_NAT_DST. The
 * address family is the packet's. Ports are network order; for ICMP echo
 * the identifier is written from sport in a request and from dport in a
 * reply (see sg_pkt_info), and the other port is ignored.
 */
struct sg_pkt_nat {
	union sg_pkt_addr src;
	union sg_pkt_addr dst;
	uint16_t sport;
	uint16_t dport;
	uint8_t flags;		/* SG_PKT_NAT_* */
};

/*
 * Translate the IPv4 or IPv6 packet pi describes (pi from sg_pkt_parse() of
 * buf): addresses, then ports (TCP, UDP, SCTP) or echo identifier, with the
 * IPv4 header checksum and the L4 checksum updated. An IPv4 UDP checksum of
 * 0 means none and stays 0; a UDP result of 0 is sent as 0xffff (RFC 768,
 * RFC 8200 §8.1). A non-first fragment gets its addresses only; the first
 * fragment's L4 checksum update covers the whole datagram.
 * Returns 0, or (with the packet untouched):
 *  -EINVAL   pi is not IPv4 or IPv6, or nat->flags has unknown bits;
 *  -ENOTSUP  an SCTP fragment (its CRC32c covers data not in this
 *            buffer), or an IPv6 routing header with segments left (the
 *            L4 pseudo-header holds the final destination, RFC 8200 §8.1).
 */
int sg_pkt_nat(uint8_t *buf, const struct sg_pkt_info *pi, const struct sg_pkt_nat *nat);

/*
 * Whether sg_pkt_nat4_fast() may translate the packet pi describes: IPv4,
 * TCP or UDP, not a fragment.
 */
static inline bool
sg_pkt_nat4_fast_ok(const struct sg_pkt_info *pi)
{
	return pi->l3 == SG_PKT_L3_IPV4 && !(pi->flags & SG_PKT_F_FRAG) &&
	       (pi->l4_proto == 6 || pi->l4_proto == 17);
}

/*
 * What rewriting a packet's addresses and ports does to its checksums, the
 * same for every packet of a translated flow, so worked out once per flow:
 * RFC 1624 eqn. 3's ~m + m' terms of the addresses (for the IPv4 header
 * checksum) and of the addresses and ports (for the TCP or UDP checksum,
 * whose pseudo-header holds the addresses), folded to 16 bits.
 */
struct sg_pkt_nat_csum {
	uint16_t l3;
	uint16_t l4;
};

/*
 * The checksum change of rewriting (old_src, old_dst, old_sport, old_dport)
 * to (src, dst, sport, dport); addresses of alen bytes (4 or 16), ports in
 * network order.
 */
static inline struct sg_pkt_nat_csum
sg_pkt_nat_csum(uint32_t alen, const void *old_src, const void *old_dst, uint16_t old_sport,
		uint16_t old_dport, const void *src, const void *dst, uint16_t sport,
		uint16_t dport)
{
	uint32_t d = sg_csum_delta(sg_csum_delta(0, old_src, src, alen), old_dst, dst, alen);
	struct sg_pkt_nat_csum c = { .l3 = sg_csum_fold(d) };

	d += (uint16_t)~old_sport + (uint32_t)sport + (uint16_t)~old_dport + (uint32_t)dport;
	c.l4 = sg_csum_fold(d);
	return c;
}

/*
 * The TCP or UDP part of a fast translation: the checksum updated by
 * l4_csum (a UDP checksum of 0 stays 0 where it means "none", IPv4, and a
 * result of 0 is sent as 0xffff, RFC 768), then the ports rewritten.
 */
static inline void
sg_pkt_nat_fast_l4(uint8_t *l4, uint8_t proto, uint16_t l4_csum, bool udp_csum_optional,
		   uint16_t sport, uint16_t dport)
{
	uint8_t *field = l4 + (proto == 6 ? 16 : 6);
	uint16_t c;

	memcpy(&c, field, 2);
	if (proto == 6 || !udp_csum_optional || c != 0) {
		c = sg_csum_apply(c, l4_csum);
		if (proto == 17 && c == 0)
			c = 0xffff;
		memcpy(field, &c, 2);
	}
	memcpy(l4, &sport, 2);
	memcpy(l4 + 2, &dport, 2);
}

/*
 * sg_pkt_nat() with both SG_PKT_NAT_SRC and SG_PKT_NAT_DST, inline, for a
 * packet sg_pkt_nat4_fast_ok() accepts, with the checksum change csum of
 * sg_pkt_nat_csum() from the packet's addresses and ports to these: both
 * addresses and both ports rewritten, the IPv4 header and the TCP or UDP
 * checksum updated (an IPv4 UDP checksum of 0 stays 0, a result of 0 is
 * sent as 0xffff, RFC 768), and the TTL decremented as a router does
 * (RFC 1812 §5.3.1), in the same header checksum update: the caller made
 * sure it is above 1. Addresses and ports in network order.
 */
static inline void
sg_pkt_nat4_fast(uint8_t *buf, const struct sg_pkt_info *pi, const void *src, uint16_t sport,
		 const void *dst, uint16_t dport, struct sg_pkt_nat_csum csum)
{
	/* The TTL/protocol word's change when the TTL drops by one: -0x0100 in network order. */
	static const uint8_t ttl_one[2] = { 1, 0 };
	uint8_t *ip = buf + pi->l3_off;
	uint16_t c, one;

	memcpy(&one, ttl_one, 2);
	ip[8]--;
	memcpy(&c, ip + 10, 2);
	c = sg_csum_apply(c, (uint32_t)csum.l3 + (uint16_t)~one);
	memcpy(ip + 10, &c, 2);
	memcpy(ip + 12, src, 4);
	memcpy(ip + 16, dst, 4);
	sg_pkt_nat_fast_l4(buf + pi->l4_off, pi->l4_proto, csum.l4, true, sport, dport);
}

/*
 * Whether sg_pkt_nat6_fast() may translate the packet pi describes: IPv6
 * with TCP or UDP straight after its header. Extension headers go the
 * general way (a routing header puts another address in the pseudo-header).
 */
static inline bool
sg_pkt_nat6_fast_ok(const struct sg_pkt_info *pi)
{
	return pi->l3 == SG_PKT_L3_IPV6 && pi->l4_off == pi->l3_off + 40 &&
	       (pi->l4_proto == 6 || pi->l4_proto == 17);
}

/*
 * sg_pkt_nat4_fast() for IPv6 (sg_pkt_nat6_fast_ok()): no header checksum;
 * the hop limit decremented (the caller made sure it is above 1).
 */
static inline void
sg_pkt_nat6_fast(uint8_t *buf, const struct sg_pkt_info *pi, const void *src, uint16_t sport,
		 const void *dst, uint16_t dport, struct sg_pkt_nat_csum csum)
{
	uint8_t *ip = buf + pi->l3_off;

	ip[7]--;
	memcpy(ip + 8, src, 16);
	memcpy(ip + 24, dst, 16);
	sg_pkt_nat_fast_l4(buf + pi->l4_off, pi->l4_proto, csum.l4, false, sport, dport);
}

/*
 * Translate an ICMP or ICMPv6 error about a translated flow. inner rewrites
 * the quoted packet's addresses and ports (or echo identifier), with the
 * quoted IPv4 header checksum and the quoted L4 checksum when the quote
 * holds it whole (SCTP's CRC32c only when the whole packet is quoted: a
 * partial quote's CRC cannot be recomputed and nothing checks it); outer
 * rewrites the outer addresses (its ports are ignored). The outer IPv4
 * header checksum and the ICMP checksum, which covers the quote (and for
 * ICMPv6 the pseudo-header), are updated to match. Either may be NULL.
 * pi and in come from sg_pkt_parse() and sg_pkt_parse_icmp_error() of buf.
 * Returns 0, or (with the packet untouched):
 *  -EINVAL   pi is no ICMP(v6) error, in does not match it, or a flags
 *            field has unknown bits;
 *  -ENOTSUP  an IPv6 routing header with segments left, outer or quoted.
 */
int sg_pkt_icmp_error_nat(uint8_t *buf, const struct sg_pkt_info *pi,
			  const struct sg_pkt_icmp_inner *in,
			  const struct sg_pkt_nat *outer, const struct sg_pkt_nat *inner);

/*
 * Encapsulation for DSR. IPIP puts the inner packet straight after an
 * outer IPv4 or IPv6 header (protocol 4 for IPv4 inside, 41 for IPv6
 * inside: RFC 2003, RFC 2473, RFC 4213); GUE variant 1 puts an outer UDP
 * header in between and nothing else (draft-ietf-intarea-gue §4, as Linux
 * fou in gue mode and Katran decapsulate: the inner version nibble tells
 * IPv4 from IPv6).
 */
enum sg_pkt_encap_type {
	SG_PKT_ENCAP_IPIP = 1,
	SG_PKT_ENCAP_GUE,
};

/*
 * Always set DF on an IPv4 outer header. Without it DF is copied from an
 * IPv4 inner packet (an IPv6 inner packet always gets DF: routers never
 * fragment IPv6, RFC 8200 §5).
 */
#define SG_PKT_ENCAP_DF_SET	0x01
/* Compute the UDP checksum of GUE over IPv4 (without it: 0, RFC 768). */
#define SG_PKT_ENCAP_UDP4_CSUM	0x02

/* An encapsulation, built once on the control path. */
struct sg_pkt_encap {
	union sg_pkt_addr src;	/* outer source: this gateway */
	union sg_pkt_addr dst;	/* outer destination: the backend's node */
	uint16_t gue_port;	/* GUE: outer UDP destination port, network order */
	uint8_t type;		/* enum sg_pkt_encap_type */
	uint8_t family;		/* outer: 4 or 6 */
	uint8_t ttl;		/* outer TTL or hop limit, not 0 */
	uint8_t flags;		/* SG_PKT_ENCAP_* */
};

/*
 * Check an encapsulation. Returns 0 or -EINVAL. Inline, as the next ones:
 * for an e built with constants the compiler folds it away.
 */
static inline int
sg_pkt_encap_check(const struct sg_pkt_encap *e)
{
	if (e->family != 4 && e->family != 6)
		return -EINVAL;
	if (e->type != SG_PKT_ENCAP_IPIP && e->type != SG_PKT_ENCAP_GUE)
		return -EINVAL;
	if (e->ttl == 0 || (e->flags & ~(SG_PKT_ENCAP_DF_SET | SG_PKT_ENCAP_UDP4_CSUM)))
		return -EINVAL;
	if (e->type == SG_PKT_ENCAP_GUE && e->gue_port == 0)
		return -EINVAL;
	return 0;
}

/*
 * Bytes of outer headers an encapsulation of type over an outer IP header
 * of family adds (20 or 40, plus 8 for GUE), neither checked. Fast path.
 */
static inline uint32_t
sg_pkt_encap_size(uint8_t family, uint8_t type)
{
	return (family == 4 ? 20 : 40) + (type == SG_PKT_ENCAP_GUE ? 8 : 0);
}

/* Bytes of outer headers e adds; 0 if e is invalid. */
static inline uint32_t
sg_pkt_encap_len(const struct sg_pkt_encap *e)
{
	if (sg_unlikely(sg_pkt_encap_check(e) != 0))
		return 0;
	return sg_pkt_encap_size(e->family, e->type);
}

/*
 * Whether inner_len bytes of inner IP packet, under hlen bytes of outer
 * headers (sg_pkt_encap_len()), would exceed mtu (the egress L3 MTU). The
 * caller then drops the packet or answers with ICMP "fragmentation needed"
 * / "packet too big" quoting sg_pkt_encap_inner_mtu().
 */
static inline bool
sg_pkt_encap_exceeds_mtu(uint32_t hlen, uint32_t inner_len, uint32_t mtu)
{
	return (uint64_t)inner_len + hlen > mtu;
}

/* The largest inner packet that fits mtu under hlen bytes of outer headers (0 if none). */
static inline uint32_t
sg_pkt_encap_inner_mtu(uint32_t hlen, uint32_t mtu)
{
	return mtu > hlen ? mtu - hlen : 0;
}

/*
 * Write the outer headers of e at outer, in sg_pkt_encap_len(e) bytes the
 * caller reserved right in front of an inner IP packet of inner_len bytes
 * (its datagram only: no Ethernet header, no padding). The outer header
 * gets: the inner packet's DSCP and ECN (RFC 6040 §4.1 normal mode); e's TTL
 * or hop limit; IPv4 id 0 with DF when DF is set (an atomic datagram,
 * RFC 6864 §4.1), else the inner IPv4 id, so that fragments of different
 * packets still differ; an IPv6 flow label from flow_hash (RFC 6438); for
 * GUE a UDP source port from flow_hash in 49152-65535 (ECMP entropy, as
 * RFC 8086 §3.2 does for GRE-in-UDP) and a UDP checksum, mandatory over
 * IPv6 (RFC 8200 §8.1) and optional over IPv4. The inner packet is not
 * changed. Returns the number of outer bytes written, or:
 *  -EINVAL    e is invalid, or the inner packet is not IPv4 or IPv6 or is
 *             shorter than its IP header;
 *  -EMSGSIZE  the result would exceed 65535 bytes of IP datagram.
 */
int sg_pkt_encap(uint8_t *outer, uint32_t inner_len, const struct sg_pkt_encap *e,
		 uint32_t flow_hash);

/*
 * What of an encapsulation is the same in every packet to one destination:
 * all of struct sg_pkt_encap but the type, and the partial sums the IPv4
 * header checksum and GUE's pseudo-header checksum start from. A caller
 * that sends many packets to few destinations prepares it once per
 * destination (lib/dp in its next-hop cache, which is keyed by destination
 * alone: hence no type, which goes with each packet).
 */
struct sg_pkt_encap_hdr {
	union sg_pkt_addr src;	/* the unused bytes of IPv4 addresses are 0 */
	union sg_pkt_addr dst;
	/* Folded partial sums, as sg_csum_partial() adds: */
	uint16_t addr_sum;	/* src and dst, the pseudo-header's part */
	uint16_t ip4_sum;	/* IPv4: those, version, IHL and TTL, the header's part */
	uint16_t gue_port;	/* network order; 0 when e had none, for IPIP only */
	uint8_t family;
	uint8_t ttl;
	uint8_t flags;
};

/*
 * Prepare h from e, whose type only decides what e must hold (a GUE port
 * for GUE). Control path. Returns 0, or -EINVAL with h untouched if e is
 * invalid (sg_pkt_encap_check()).
 */
int sg_pkt_encap_prepare(const struct sg_pkt_encap *e, struct sg_pkt_encap_hdr *h);

/*
 * What sg_pkt_encap() writes and returns for the e that h was prepared
 * from, but with type (SG_PKT_ENCAP_*, unchecked) in place of e's, in
 * sg_pkt_encap_size(h->family, type) bytes. Fast path: h is not checked
 * again. Returns the number of outer bytes written, or:
 *  -EINVAL    type is GUE and h has no GUE port, or the inner packet is
 *             not IPv4 or IPv6 or is shorter than its IP header;
 *  -EMSGSIZE  the result would exceed 65535 bytes of IP datagram.
 */
int sg_pkt_encap_prepared(uint8_t *outer, uint32_t inner_len, const struct sg_pkt_encap_hdr *h,
			  uint8_t type, uint32_t flow_hash);

/*
 * L2 rewrite for the Ethernet header at buf: destination and source MAC,
 * either left as it is when NULL (dsr-l2 rewrites the destination only).
 */
static inline void
sg_pkt_eth_set_macs(uint8_t *buf, const uint8_t *dst, const uint8_t *src)
{
	if (dst != NULL)
		memcpy(buf, dst, 6);
	if (src != NULL)
		memcpy(buf + 6, src, 6);
}

/* Write a whole untagged Ethernet header (14 bytes) at buf. */
static inline void
sg_pkt_eth_write(uint8_t *buf, const uint8_t dst[6], const uint8_t src[6], uint16_t ethertype)
{
	memcpy(buf, dst, 6);
	memcpy(buf + 6, src, 6);
	buf[12] = (uint8_t)(ethertype >> 8);
	buf[13] = (uint8_t)ethertype;
}

#endif /* SG_PKT_H */
