/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Encapsulation for the DSR modes: an outer IPv4 or IPv6 header, and for
 * GUE an outer UDP header, written in front of the unchanged inner packet.
 * The caller reserves the room (rte_pktmbuf_prepend) and adds the Ethernet
 * header; decapsulation happens on the backend's node, not here. What is
 * the same for every packet to one destination can be prepared once
 * (sg_pkt_encap_prepare()), which sg_pkt_encap() does for each packet.
 */
#include <errno.h>
#include <netinet/in.h>

#include "sg_common.h"

#include "pkt_private.h"

/*
 * The IPv4 header checksum is finished from h's sum of the constant fields
 * and the ones that change per packet, as sg_csum_partial() would add
 * them: the same result as summing the header (RFC 1071 §2 (A), (B)),
 * without reading it back.
 */
static void
write_ipv4(uint8_t *ip, const struct sg_pkt_encap_hdr *h, uint32_t tot, uint8_t tos,
	   uint8_t proto, int df, uint16_t id)
{
	uint16_t frag = df ? net16(IPV4_DF) : 0;
	uint32_t sum = (uint32_t)h->ip4_sum + net16(tos) + net16((uint16_t)tot) + id + frag +
		       net16(proto);

	ip[0] = 0x45;
	ip[1] = tos;
	wr16(ip + 2, (uint16_t)tot);
	st16(ip + 4, id);
	st16(ip + 6, frag);
	ip[8] = h->ttl;
	ip[9] = proto;
	st16(ip + 10, (uint16_t)~sg_csum_fold(sum));
	memcpy(ip + 12, h->src.a8, 4);
	memcpy(ip + 16, h->dst.a8, 4);
}

static void
write_ipv6(uint8_t *ip, const struct sg_pkt_encap_hdr *h, uint32_t plen, uint8_t tc,
	   uint8_t proto, uint32_t flow_hash)
{
	uint32_t fl = (flow_hash ^ (flow_hash >> 20)) & 0xfffff;

	ip[0] = (uint8_t)(0x60 | tc >> 4);
	ip[1] = (uint8_t)(tc << 4 | fl >> 16);
	ip[2] = (uint8_t)(fl >> 8);
	ip[3] = (uint8_t)fl;
	wr16(ip + 4, (uint16_t)plen);
	ip[6] = proto;
	ip[7] = h->ttl;
	memcpy(ip + 8, h->src.a8, 16);
	memcpy(ip + 24, h->dst.a8, 16);
}

/*
 * GUE's UDP header at u, for ulen bytes of UDP, with its checksum when
 * one is due; from h alone, as the outer IP header is written after it.
 */
static void
write_udp(uint8_t *u, const struct sg_pkt_encap_hdr *h, uint32_t ulen, uint32_t flow_hash)
{
	uint32_t x = flow_hash ^ (flow_hash >> 16);
	uint16_t sport = (uint16_t)(0xc000 | (x & 0x3fff));
	uint32_t sum;
	uint16_t c;

	wr16(u, sport);
	st16(u + 2, h->gue_port);
	wr16(u + 4, (uint16_t)ulen);
	st16(u + 6, 0);
	if (h->family == 4 && !(h->flags & SG_PKT_ENCAP_UDP4_CSUM))
		return;
	/* The pseudo-header (RFC 768, RFC 8200 §8.1), the UDP header, the inner packet. */
	sum = (uint32_t)h->addr_sum + net16(IPPROTO_UDP) + net16((uint16_t)ulen);
	sum += (uint32_t)net16(sport) + h->gue_port + net16((uint16_t)ulen);
	sum = sg_csum_partial(u + UDP_HLEN, ulen - UDP_HLEN, sum);
	c = (uint16_t)~sg_csum_fold(sum);
	st16(u + 6, c == 0 ? 0xffff : c);
}

int
sg_pkt_encap_prepare(const struct sg_pkt_encap *e, struct sg_pkt_encap_hdr *h)
{
	uint32_t alen = e->family == 4 ? 4 : 16;
	struct sg_pkt_encap_hdr p = {
		.gue_port = e->gue_port, .family = e->family, .ttl = e->ttl, .flags = e->flags,
	};

	if (sg_pkt_encap_check(e) != 0)
		return -EINVAL;
	memcpy(p.src.a8, e->src.a8, alen);
	memcpy(p.dst.a8, e->dst.a8, alen);
	p.addr_sum = sg_csum_fold(sg_csum_partial(p.dst.a8, alen,
						  sg_csum_partial(p.src.a8, alen, 0)));
	p.ip4_sum = sg_csum_fold((uint32_t)p.addr_sum + net16(0x4500) +
				 net16((uint16_t)(e->ttl << 8)));
	*h = p;
	return 0;
}

int
sg_pkt_encap_prepared(uint8_t *outer, uint32_t inner_len, const struct sg_pkt_encap_hdr *h,
		      uint8_t type, uint32_t flow_hash)
{
	uint32_t hlen = sg_pkt_encap_size(h->family, type);
	uint32_t iphl = h->family == 4 ? IPV4_HLEN : IPV6_HLEN;
	const uint8_t *in = outer + hlen;
	uint8_t tos, proto;
	uint16_t id = 0;
	int df = 1;

	if (sg_unlikely((type == SG_PKT_ENCAP_GUE && h->gue_port == 0) || inner_len < IPV4_HLEN))
		return -EINVAL;
	switch (in[0] >> 4) {
	case 4:
		tos = in[1];
		proto = IPPROTO_IPIP;
		if (!(h->flags & SG_PKT_ENCAP_DF_SET) && !(in[6] & (IPV4_DF >> 8))) {
			df = 0;
			id = ld16(in + 4);
		}
		break;
	case 6:
		if (sg_unlikely(inner_len < IPV6_HLEN))
			return -EINVAL;
		tos = (uint8_t)((in[0] & 0xf) << 4 | in[1] >> 4);
		proto = IPPROTO_IPV6;
		break;
	default:
		return -EINVAL;
	}
	/*
	 * IPv4 counts its header in the total length, IPv6 does not. inner_len
	 * alone is checked first so that the sum cannot wrap around.
	 */
	if (sg_unlikely(inner_len > 65535 ||
			inner_len + hlen - (h->family == 6 ? IPV6_HLEN : 0) > 65535))
		return -EMSGSIZE;

	if (type == SG_PKT_ENCAP_GUE) {
		uint32_t ulen = UDP_HLEN + inner_len;

		write_udp(outer + iphl, h, ulen, flow_hash);
		proto = IPPROTO_UDP;
	}
	if (h->family == 4)
		write_ipv4(outer, h, hlen + inner_len, tos, proto, df, id);
	else
		write_ipv6(outer, h, hlen - IPV6_HLEN + inner_len, tos, proto, flow_hash);
	return (int)hlen;
}

int
sg_pkt_encap(uint8_t *outer, uint32_t inner_len, const struct sg_pkt_encap *e, uint32_t flow_hash)
{
	struct sg_pkt_encap_hdr h;

	if (sg_unlikely(sg_pkt_encap_prepare(e, &h) != 0))
		return -EINVAL;
	return sg_pkt_encap_prepared(outer, inner_len, &h, e->type, flow_hash);
}
