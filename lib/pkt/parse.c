/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Header parsing: the received packet (Ethernet to L4) and the packet quoted
 * in an ICMP error, into offsets, and the names of the reasons a packet is
 * refused. Every read is checked against the buffer length first, and every
 * L4 read against the IP datagram's own end; nothing here writes to a packet.
 */
#include <netinet/in.h>

#include "sg_common.h"

#include "pkt_private.h"

static const char *const reason_names[SG_PKT_REASON_COUNT] = {
	[SG_PKT_OK] = "ok",
	[SG_PKT_ERR_ETH_TRUNC] = "eth_truncated",
	[SG_PKT_ERR_VLAN_TRUNC] = "vlan_truncated",
	[SG_PKT_ERR_ARP_TRUNC] = "arp_truncated",
	[SG_PKT_ERR_ARP_FORMAT] = "arp_not_ether_ipv4",
	[SG_PKT_ERR_IPV4_TRUNC] = "ipv4_truncated",
	[SG_PKT_ERR_IPV4_VERSION] = "ipv4_bad_version",
	[SG_PKT_ERR_IPV4_IHL] = "ipv4_bad_ihl",
	[SG_PKT_ERR_IPV4_TOTLEN_SHORT] = "ipv4_total_length_below_header",
	[SG_PKT_ERR_IPV4_TOTLEN_LONG] = "ipv4_total_length_beyond_buffer",
	[SG_PKT_ERR_IPV6_TRUNC] = "ipv6_truncated",
	[SG_PKT_ERR_IPV6_VERSION] = "ipv6_bad_version",
	[SG_PKT_ERR_IPV6_PAYLOAD_LONG] = "ipv6_payload_length_beyond_buffer",
	[SG_PKT_ERR_IPV6_EXT_TRUNC] = "ipv6_ext_header_past_end",
	[SG_PKT_ERR_IPV6_EXT_MANY] = "ipv6_too_many_ext_headers",
	[SG_PKT_ERR_IPV6_HBH_POS] = "ipv6_hop_by_hop_not_first",
	[SG_PKT_ERR_FRAG_LEN] = "fragment_length_not_multiple_of_8",
	[SG_PKT_ERR_FRAG_OVERSIZE] = "fragment_beyond_65535",
	[SG_PKT_ERR_TCP_TRUNC] = "tcp_truncated",
	[SG_PKT_ERR_TCP_DOFF_SHORT] = "tcp_data_offset_below_5",
	[SG_PKT_ERR_TCP_DOFF_LONG] = "tcp_data_offset_past_end",
	[SG_PKT_ERR_UDP_TRUNC] = "udp_truncated",
	[SG_PKT_ERR_UDP_LEN] = "udp_length_mismatch",
	[SG_PKT_ERR_UDP6_ZERO_CSUM] = "udp6_zero_checksum",
	[SG_PKT_ERR_SCTP_TRUNC] = "sctp_truncated",
	[SG_PKT_ERR_ICMP_TRUNC] = "icmp_truncated",
	[SG_PKT_ERR_ICMPV6_TRUNC] = "icmpv6_truncated",
	[SG_PKT_ERR_ICMP_NOT_ERROR] = "icmp_not_an_error",
	[SG_PKT_ERR_INNER_IP_TRUNC] = "icmp_inner_ip_truncated",
	[SG_PKT_ERR_INNER_VERSION] = "icmp_inner_bad_version",
	[SG_PKT_ERR_INNER_IHL] = "icmp_inner_bad_ihl",
	[SG_PKT_ERR_INNER_TOTLEN] = "icmp_inner_total_length_below_header",
	[SG_PKT_ERR_INNER_EXT_TRUNC] = "icmp_inner_ext_header_past_end",
	[SG_PKT_ERR_INNER_EXT_MANY] = "icmp_inner_too_many_ext_headers",
	[SG_PKT_ERR_INNER_L4_TRUNC] = "icmp_inner_l4_truncated",
};

const char *
sg_pkt_reason_name(enum sg_pkt_reason reason)
{
	if ((unsigned int)reason >= SG_PKT_REASON_COUNT)
		return "unknown";
	return reason_names[reason];
}

/*
 * ICMP(v6) type to flags. Errors are the types that quote a packet and that
 * a NAT has to translate (RFC 5508 §4 for ICMPv4; every RFC 4443 error);
 * redirects and source quench are not forwarded through a translation.
 */
static uint16_t
icmp_flags(uint8_t type, int v6)
{
	if (v6) {
		if (type >= ICMP6_DEST_UNREACH && type <= ICMP6_PARAM_PROBLEM)
			return SG_PKT_F_ICMP_ERROR;
		if (type == ICMP6_ECHO_REQUEST)
			return SG_PKT_F_ECHO_REQ;
		if (type == ICMP6_ECHO_REPLY)
			return SG_PKT_F_ECHO_REPLY;
		return 0;
	}
	switch (type) {
	case ICMP_DEST_UNREACH:
	case ICMP_TIME_EXCEEDED:
	case ICMP_PARAM_PROBLEM:
		return SG_PKT_F_ICMP_ERROR;
	case ICMP_ECHO_REQUEST:
		return SG_PKT_F_ECHO_REQ;
	case ICMP_ECHO_REPLY:
		return SG_PKT_F_ECHO_REPLY;
	default:
		return 0;
	}
}

/* Ports, or the echo identifier in the port it plays. */
static void
l4_ports(const uint8_t *l4, uint8_t proto, uint16_t flags, uint16_t *sport, uint16_t *dport)
{
	switch (proto) {
	case IPPROTO_TCP:
	case IPPROTO_UDP:
	case IPPROTO_SCTP:
		*sport = ld16(l4);
		*dport = ld16(l4 + 2);
		break;
	default:
		if (flags & SG_PKT_F_ECHO_REQ)
			*sport = ld16(l4 + 4);
		else if (flags & SG_PKT_F_ECHO_REPLY)
			*dport = ld16(l4 + 4);
		break;
	}
}

/*
 * L4 header at pi->l4_off, within the datagram's end. For a first fragment
 * the header must fit in this fragment (RFC 1858 §3) and the UDP length
 * covers the whole datagram, so it must exceed what is here.
 */
static enum sg_pkt_reason
parse_l4(const uint8_t *buf, struct sg_pkt_info *pi, int v6)
{
	const uint8_t *l4 = buf + pi->l4_off;
	uint32_t avail = pi->ip_end - pi->l4_off;
	uint32_t n;

	switch (pi->l4_proto) {
	case IPPROTO_TCP:
		if (sg_unlikely(avail < TCP_HLEN))
			return SG_PKT_ERR_TCP_TRUNC;
		n = (uint32_t)(l4[12] >> 4) * 4;
		if (sg_unlikely(n < TCP_HLEN))
			return SG_PKT_ERR_TCP_DOFF_SHORT;
		if (sg_unlikely(n > avail))
			return SG_PKT_ERR_TCP_DOFF_LONG;
		break;
	case IPPROTO_UDP:
		if (sg_unlikely(avail < UDP_HLEN))
			return SG_PKT_ERR_UDP_TRUNC;
		n = rd16(l4 + 4);
		if (pi->flags & SG_PKT_F_FRAG) {
			if (sg_unlikely(n <= avail))
				return SG_PKT_ERR_UDP_LEN;
		} else if (sg_unlikely(n != avail)) {
			return SG_PKT_ERR_UDP_LEN;
		}
		if (v6 && sg_unlikely(ld16(l4 + UDP_CSUM_OFF) == 0))
			return SG_PKT_ERR_UDP6_ZERO_CSUM;
		break;
	case IPPROTO_SCTP:
		if (sg_unlikely(avail < SCTP_HLEN))
			return SG_PKT_ERR_SCTP_TRUNC;
		break;
	case IPPROTO_ICMP:
		if (v6)
			return SG_PKT_OK;
		if (sg_unlikely(avail < ICMP_HLEN))
			return SG_PKT_ERR_ICMP_TRUNC;
		pi->icmp_type = l4[0];
		pi->flags |= icmp_flags(l4[0], 0);
		break;
	case IPPROTO_ICMPV6:
		if (!v6)
			return SG_PKT_OK;
		if (sg_unlikely(avail < ICMP_HLEN))
			return SG_PKT_ERR_ICMPV6_TRUNC;
		pi->icmp_type = l4[0];
		pi->flags |= icmp_flags(l4[0], 1);
		break;
	default:
		return SG_PKT_OK;
	}
	pi->flags |= SG_PKT_F_L4;
	l4_ports(l4, pi->l4_proto, pi->flags, &pi->sport, &pi->dport);
	return SG_PKT_OK;
}

static enum sg_pkt_reason
parse_ipv4(const uint8_t *buf, uint32_t len, struct sg_pkt_info *pi)
{
	const uint8_t *ip = buf + pi->l3_off;
	uint32_t avail = len - pi->l3_off;
	uint32_t hlen, tot;
	uint16_t fo;

	if (sg_unlikely(avail < IPV4_HLEN))
		return SG_PKT_ERR_IPV4_TRUNC;
	if (sg_unlikely((ip[0] >> 4) != 4))
		return SG_PKT_ERR_IPV4_VERSION;
	hlen = (uint32_t)(ip[0] & 0xf) * 4;
	if (sg_unlikely(hlen < IPV4_HLEN))
		return SG_PKT_ERR_IPV4_IHL;
	if (sg_unlikely(avail < hlen))
		return SG_PKT_ERR_IPV4_TRUNC;
	tot = rd16(ip + 2);
	if (sg_unlikely(tot < hlen))
		return SG_PKT_ERR_IPV4_TOTLEN_SHORT;
	if (sg_unlikely(tot > avail))
		return SG_PKT_ERR_IPV4_TOTLEN_LONG;

	pi->l3 = SG_PKT_L3_IPV4;
	pi->l4_off = pi->l3_off + hlen;
	pi->ip_end = pi->l3_off + tot;
	pi->l4_proto = ip[9];
	if (hlen > IPV4_HLEN)
		pi->flags |= SG_PKT_F_IP_OPTS;
	fo = rd16(ip + 6);
	if (fo & IPV4_DF)
		pi->flags |= SG_PKT_F_DF;
	if (sg_unlikely(fo & (IPV4_MF | IPV4_OFFMASK))) {
		pi->flags |= SG_PKT_F_FRAG;
		if (fo & IPV4_MF)
			pi->flags |= SG_PKT_F_MF;
		pi->frag_off = (uint16_t)((fo & IPV4_OFFMASK) << 3);
		pi->frag_id = rd16(ip + 4);
		/* All but the last fragment carry a multiple of 8 bytes. */
		if (sg_unlikely((fo & IPV4_MF) && ((tot - hlen) & 7)))
			return SG_PKT_ERR_FRAG_LEN;
		/* 65535 bytes of reassembled datagram, header included (RFC 791). */
		if (sg_unlikely(pi->frag_off + tot > 65535))
			return SG_PKT_ERR_FRAG_OVERSIZE;
		if (pi->frag_off != 0)
			return SG_PKT_OK;
	}
	return parse_l4(buf, pi, 0);
}

/*
 * Walk the IPv6 extension headers from off up to end, which is the
 * datagram's end (strict: the received packet) or the end of an ICMP quote.
 * Sets l4_proto, l4_off and the fragment fields; a non-first fragment ends
 * the walk, as what follows its fragment header belongs to the fragmentable
 * part. Returns SG_PKT_OK, or trunc / many for a chain that runs past end or
 * is too long; strict also checks the hop-by-hop position and the fragment.
 */
static enum sg_pkt_reason
walk_ipv6_ext(const uint8_t *buf, uint32_t off, uint32_t end, uint8_t nh, struct sg_pkt_info *pi,
	      enum sg_pkt_reason trunc, enum sg_pkt_reason many, int strict)
{
	uint32_t hl;
	uint16_t fo;

	for (unsigned int n = 0;; n++) {
		const uint8_t *h = buf + off;

		if (nh != IPPROTO_HOPOPTS && nh != IPPROTO_ROUTING && nh != IPPROTO_DSTOPTS &&
		    nh != IPPROTO_FRAGMENT)
			break;
		if (sg_unlikely(n >= SG_PKT_IPV6_MAX_EXT))
			return many;
		if (strict && sg_unlikely(nh == IPPROTO_HOPOPTS && n != 0))
			return SG_PKT_ERR_IPV6_HBH_POS;
		/* Every extension header is at least 8 bytes (RFC 8200 §4). */
		if (sg_unlikely(end - off < 8))
			return trunc;
		pi->flags |= SG_PKT_F_IP_OPTS;
		if (nh == IPPROTO_FRAGMENT) {
			fo = rd16(h + 2);
			nh = h[0];
			off += 8;
			if ((fo & 0xfff9) == 0)
				continue;	/* atomic fragment, RFC 6946 §4 */
			pi->flags |= SG_PKT_F_FRAG;
			if (fo & 1)
				pi->flags |= SG_PKT_F_MF;
			pi->frag_off = fo & 0xfff8;
			pi->frag_id = rd32(h + 4);
			if (strict) {
				/*
				 * RFC 8200 §4.5: a multiple of 8 bytes unless
				 * last, and the reassembled payload length (the
				 * unfragmentable headers but this one, offset
				 * and this fragment) within 65535.
				 */
				if (sg_unlikely((fo & 1) && ((end - off) & 7)))
					return SG_PKT_ERR_FRAG_LEN;
				if (sg_unlikely(end - pi->l3_off - IPV6_HLEN - 8 + pi->frag_off >
						65535))
					return SG_PKT_ERR_FRAG_OVERSIZE;
			}
			if (pi->frag_off != 0) {
				pi->l4_proto = nh;
				pi->l4_off = off;
				return SG_PKT_OK;
			}
			continue;
		}
		hl = ((uint32_t)h[1] + 1) * 8;
		if (sg_unlikely(end - off < hl))
			return trunc;
		if (nh == IPPROTO_ROUTING && h[3] != 0)
			pi->flags |= SG_PKT_F_IPV6_RH;
		nh = h[0];
		off += hl;
	}
	pi->l4_proto = nh;
	pi->l4_off = off;
	return SG_PKT_OK;
}

static enum sg_pkt_reason
parse_ipv6(const uint8_t *buf, uint32_t len, struct sg_pkt_info *pi)
{
	const uint8_t *ip = buf + pi->l3_off;
	uint32_t avail = len - pi->l3_off;
	uint32_t plen;
	enum sg_pkt_reason r;

	if (sg_unlikely(avail < IPV6_HLEN))
		return SG_PKT_ERR_IPV6_TRUNC;
	if (sg_unlikely((ip[0] >> 4) != 6))
		return SG_PKT_ERR_IPV6_VERSION;
	plen = rd16(ip + 4);
	if (sg_unlikely(plen > avail - IPV6_HLEN))
		return SG_PKT_ERR_IPV6_PAYLOAD_LONG;

	pi->l3 = SG_PKT_L3_IPV6;
	pi->ip_end = pi->l3_off + IPV6_HLEN + plen;
	if (sg_likely(ip[6] == IPPROTO_TCP || ip[6] == IPPROTO_UDP)) {
		pi->l4_proto = ip[6];
		pi->l4_off = pi->l3_off + IPV6_HLEN;
		return parse_l4(buf, pi, 1);
	}
	r = walk_ipv6_ext(buf, pi->l3_off + IPV6_HLEN, pi->ip_end, ip[6], pi,
			  SG_PKT_ERR_IPV6_EXT_TRUNC, SG_PKT_ERR_IPV6_EXT_MANY, 1);
	if (r != SG_PKT_OK || pi->frag_off != 0)
		return r;
	return parse_l4(buf, pi, 1);
}

/* Ethernet/IPv4 ARP only (RFC 826): the one kind lib/neigh answers. */
static enum sg_pkt_reason
parse_arp(const uint8_t *buf, uint32_t len, struct sg_pkt_info *pi)
{
	const uint8_t *a = buf + pi->l3_off;

	if (sg_unlikely(len - pi->l3_off < 28))
		return SG_PKT_ERR_ARP_TRUNC;
	if (rd16(a) != 1 || rd16(a + 2) != ETHERTYPE_IPV4 || a[4] != 6 || a[5] != 4)
		return SG_PKT_ERR_ARP_FORMAT;
	pi->l3 = SG_PKT_L3_ARP;
	pi->l4_off = pi->l3_off + 28;
	pi->ip_end = pi->l4_off;
	return SG_PKT_OK;
}

enum sg_pkt_reason
sg_pkt_parse(const uint8_t *buf, uint32_t len, struct sg_pkt_info *pi)
{
	uint16_t type;

	memset(pi, 0, sizeof(*pi));
	if (sg_unlikely(len < ETH_HLEN))
		return SG_PKT_ERR_ETH_TRUNC;
	type = rd16(buf + 12);
	pi->l3_off = ETH_HLEN;
	if (type == ETHERTYPE_VLAN) {
		if (sg_unlikely(len < ETH_HLEN + VLAN_HLEN))
			return SG_PKT_ERR_VLAN_TRUNC;
		pi->flags |= SG_PKT_F_VLAN;
		pi->vlan_tci = rd16(buf + 14);
		type = rd16(buf + 16);
		pi->l3_off = ETH_HLEN + VLAN_HLEN;
	}
	pi->ethertype = type;
	switch (type) {
	case ETHERTYPE_IPV4:
		return parse_ipv4(buf, len, pi);
	case ETHERTYPE_IPV6:
		return parse_ipv6(buf, len, pi);
	case ETHERTYPE_ARP:
		return parse_arp(buf, len, pi);
	default:
		/* Not ours (LLDP, a second VLAN tag, ...): the caller decides. */
		pi->l3 = SG_PKT_L3_OTHER;
		pi->l4_off = pi->l3_off;
		pi->ip_end = len;
		return SG_PKT_OK;
	}
}

uint32_t
sg_pkt_parse_bulk(const uint8_t *const bufs[], const uint32_t lens[], struct sg_pkt_info infos[],
		  uint8_t reasons[], uint32_t n)
{
	uint32_t ok = 0;

	for (uint32_t i = 0; i < n; i++) {
		reasons[i] = (uint8_t)sg_pkt_parse(bufs[i], lens[i], &infos[i]);
		ok += reasons[i] == SG_PKT_OK;
	}
	return ok;
}

/*
 * RFC 4884 length of the quoted datagram, in bytes, or 0 when the message
 * has none: ICMPv4 destination unreachable, time exceeded and parameter
 * problem carry it in byte 5 in 32-bit words, ICMPv6 destination
 * unreachable and time exceeded in byte 4 in 64-bit words.
 */
static uint32_t
rfc4884_len(const uint8_t *icmp, int v6)
{
	if (v6)
		return icmp[0] == ICMP6_DEST_UNREACH || icmp[0] == ICMP6_TIME_EXCEEDED ?
			       (uint32_t)icmp[4] * 8 : 0;
	return (uint32_t)icmp[5] * 4;
}

enum sg_pkt_reason
sg_pkt_parse_icmp_error(const uint8_t *buf, const struct sg_pkt_info *pi,
			struct sg_pkt_icmp_inner *in)
{
	struct sg_pkt_info q;
	int v6 = pi->l3 == SG_PKT_L3_IPV6;
	uint32_t start = pi->l4_off + ICMP_HLEN;
	uint32_t end = pi->ip_end;
	uint32_t claimed, hlen, n;
	const uint8_t *ip;
	enum sg_pkt_reason r;

	memset(in, 0, sizeof(*in));
	if (!(pi->flags & SG_PKT_F_ICMP_ERROR))
		return SG_PKT_ERR_ICMP_NOT_ERROR;
	n = rfc4884_len(buf + pi->l4_off, v6);
	if (n != 0 && n < end - start)
		end = start + n;
	if (end - start < (v6 ? IPV6_HLEN : IPV4_HLEN))
		return SG_PKT_ERR_INNER_IP_TRUNC;
	ip = buf + start;
	if ((ip[0] >> 4) != (v6 ? 6 : 4))
		return SG_PKT_ERR_INNER_VERSION;

	memset(&q, 0, sizeof(q));
	if (v6) {
		claimed = IPV6_HLEN + rd16(ip + 4);
		if (claimed < end - start)
			end = start + claimed;
		r = walk_ipv6_ext(buf, start + IPV6_HLEN, end, ip[6], &q,
				  SG_PKT_ERR_INNER_EXT_TRUNC, SG_PKT_ERR_INNER_EXT_MANY, 0);
		if (r != SG_PKT_OK)
			return r;
		in->l3 = SG_PKT_L3_IPV6;
	} else {
		hlen = (uint32_t)(ip[0] & 0xf) * 4;
		if (hlen < IPV4_HLEN)
			return SG_PKT_ERR_INNER_IHL;
		if (end - start < hlen)
			return SG_PKT_ERR_INNER_IP_TRUNC;
		claimed = rd16(ip + 2);
		if (claimed < hlen)
			return SG_PKT_ERR_INNER_TOTLEN;
		if (claimed < end - start)
			end = start + claimed;
		if (hlen > IPV4_HLEN)
			q.flags |= SG_PKT_F_IP_OPTS;
		n = rd16(ip + 6);
		if (n & IPV4_DF)
			q.flags |= SG_PKT_F_DF;
		if (n & (IPV4_MF | IPV4_OFFMASK)) {
			q.flags |= SG_PKT_F_FRAG;
			if (n & IPV4_MF)
				q.flags |= SG_PKT_F_MF;
			q.frag_off = (uint16_t)((n & IPV4_OFFMASK) << 3);
		}
		q.l4_proto = ip[9];
		q.l4_off = start + hlen;
		in->l3 = SG_PKT_L3_IPV4;
	}
	in->l3_off = start;
	in->l4_off = q.l4_off;
	in->l4_proto = q.l4_proto;
	in->end = end;
	in->flags = q.flags;
	if (q.frag_off != 0)
		return SG_PKT_OK;

	switch (q.l4_proto) {
	case IPPROTO_TCP:
	case IPPROTO_UDP:
	case IPPROTO_SCTP:
		break;
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6:
		if ((q.l4_proto == IPPROTO_ICMPV6) != v6)
			return SG_PKT_OK;
		break;
	default:
		return SG_PKT_OK;
	}
	/* RFC 792 and RFC 1812 §4.3.2.3: at least 8 bytes past the IP header. */
	if (end - in->l4_off < 8)
		return SG_PKT_ERR_INNER_L4_TRUNC;
	ip = buf + in->l4_off;
	if (q.l4_proto == IPPROTO_ICMP || q.l4_proto == IPPROTO_ICMPV6)
		in->flags |= icmp_flags(ip[0], v6) & (SG_PKT_F_ECHO_REQ | SG_PKT_F_ECHO_REPLY);
	in->flags |= SG_PKT_F_L4;
	l4_ports(ip, q.l4_proto, in->flags, &in->sport, &in->dport);

	switch (q.l4_proto) {
	case IPPROTO_TCP:
		n = TCP_CSUM_OFF + 2;
		break;
	case IPPROTO_SCTP:
		/*
		 * A CRC32c can only be recomputed over the whole packet, and
		 * a "whole" packet whose length leaves less than the common
		 * header has no checksum field to write.
		 */
		n = (in->flags & SG_PKT_F_FRAG) || end - start < claimed ? UINT32_MAX : SCTP_HLEN;
		break;
	default:
		n = 8;
		break;
	}
	if (n <= end - in->l4_off)
		in->flags |= SG_PKT_F_L4_CSUM;
	return SG_PKT_OK;
}
