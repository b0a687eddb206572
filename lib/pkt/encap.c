/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Encapsulation for the DSR modes: an outer IPv4 or IPv6 header, and for
 * GUE an outer UDP header, written in front of the unchanged inner packet.
 * The caller reserves the room (rte_pktmbuf_prepend) and adds the Ethernet
 * header; decapsulation happens on the backend's node, not here.
 */
#include <errno.h>
#include <netinet/in.h>

#include "sg_common.h"

#include "pkt_private.h"

static void
write_ipv4(uint8_t *ip, const struct sg_pkt_encap *e, uint32_t tot, uint8_t tos, uint8_t proto,
	   int df, uint16_t id)
{
	ip[0] = 0x45;
	ip[1] = tos;
	wr16(ip + 2, (uint16_t)tot);
	st16(ip + 4, id);
	ip[6] = df ? IPV4_DF >> 8 : 0;
	ip[7] = 0;
	ip[8] = e->ttl;
	ip[9] = proto;
	st16(ip + 10, 0);
	memcpy(ip + 12, e->src.a8, 4);
	memcpy(ip + 16, e->dst.a8, 4);
	st16(ip + 10, sg_pkt_ipv4_cksum(ip));
}

static void
write_ipv6(uint8_t *ip, const struct sg_pkt_encap *e, uint32_t plen, uint8_t tc, uint8_t proto,
	   uint32_t flow_hash)
{
	uint32_t fl = (flow_hash ^ (flow_hash >> 20)) & 0xfffff;

	ip[0] = (uint8_t)(0x60 | tc >> 4);
	ip[1] = (uint8_t)(tc << 4 | fl >> 16);
	ip[2] = (uint8_t)(fl >> 8);
	ip[3] = (uint8_t)fl;
	wr16(ip + 4, (uint16_t)plen);
	ip[6] = proto;
	ip[7] = e->ttl;
	memcpy(ip + 8, e->src.a8, 16);
	memcpy(ip + 24, e->dst.a8, 16);
}

int
sg_pkt_encap(uint8_t *outer, uint32_t inner_len, const struct sg_pkt_encap *e, uint32_t flow_hash)
{
	uint32_t hlen = sg_pkt_encap_len(e);
	uint32_t iphl = e->family == 4 ? IPV4_HLEN : IPV6_HLEN;
	const uint8_t *in = outer + hlen;
	uint8_t tos, proto;
	uint16_t id = 0;
	int df = 1;

	if (sg_unlikely(hlen == 0 || inner_len < IPV4_HLEN))
		return -EINVAL;
	switch (in[0] >> 4) {
	case 4:
		tos = in[1];
		proto = IPPROTO_IPIP;
		if (!(e->flags & SG_PKT_ENCAP_DF_SET) && !(in[6] & (IPV4_DF >> 8))) {
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
			inner_len + hlen - (e->family == 6 ? IPV6_HLEN : 0) > 65535))
		return -EMSGSIZE;

	if (e->type == SG_PKT_ENCAP_GUE) {
		uint8_t *u = outer + iphl;
		uint32_t ulen = UDP_HLEN + inner_len;
		uint32_t h = flow_hash ^ (flow_hash >> 16);
		uint32_t sum;
		uint16_t c;

		wr16(u, (uint16_t)(0xc000 | (h & 0x3fff)));
		st16(u + 2, e->gue_port);
		wr16(u + 4, (uint16_t)ulen);
		st16(u + 6, 0);
		if (e->family == 4)
			write_ipv4(outer, e, IPV4_HLEN + ulen, tos, IPPROTO_UDP, df, id);
		else
			write_ipv6(outer, e, ulen, tos, IPPROTO_UDP, flow_hash);
		if (e->family == 6 || (e->flags & SG_PKT_ENCAP_UDP4_CSUM)) {
			sum = pseudo_sum(outer, e->family == 6, IPPROTO_UDP, ulen);
			sum = sg_csum_partial(u, UDP_HLEN, sum);
			sum = sg_csum_partial(in, inner_len, sum);
			c = (uint16_t)~sg_csum_fold(sum);
			st16(u + 6, c == 0 ? 0xffff : c);
		}
	} else if (e->family == 4) {
		write_ipv4(outer, e, IPV4_HLEN + inner_len, tos, proto, df, id);
	} else {
		write_ipv6(outer, e, inner_len, tos, proto, flow_hash);
	}
	return (int)hlen;
}
