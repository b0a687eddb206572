/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * ARP and NDP frames without DPDK: the in-place answers to an ARP request
 * and to a neighbour solicitation, the frames the control thread sends
 * (requests, solicitations, announcements), the RFC 4861 §7.1 checks of
 * received NS and NA, and the IPv6 address helpers NDP needs. Everything
 * works on one byte buffer and never reads or writes past it.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>

#include "sg_common.h"

#include "neigh.h"
#include "neigh_private.h"

static const uint8_t zero_mac[6];
static const uint8_t all_nodes[16] = { 0xff, 0x02, [15] = 0x01 };

static const char *const nd_reason_names[SG_NEIGH_ND_REASON_COUNT] = {
	[SG_NEIGH_ND_OK] = "ok",
	[SG_NEIGH_ND_NOT_ND] = "not_nd",
	[SG_NEIGH_ND_HOP_LIMIT] = "hop_limit",
	[SG_NEIGH_ND_CODE] = "code",
	[SG_NEIGH_ND_SHORT] = "short",
	[SG_NEIGH_ND_CSUM] = "checksum",
	[SG_NEIGH_ND_TARGET] = "target_multicast",
	[SG_NEIGH_ND_OPTION] = "bad_option",
	[SG_NEIGH_ND_SOURCE] = "source_multicast",
	[SG_NEIGH_ND_DAD_DST] = "dad_destination",
	[SG_NEIGH_ND_DAD_SLLA] = "dad_source_lla",
	[SG_NEIGH_ND_SOLICITED_MCAST] = "solicited_to_multicast",
};

const char *
sg_neigh_nd_reason_name(unsigned int reason)
{
	return reason < SG_NEIGH_ND_REASON_COUNT ? nd_reason_names[reason] : "?";
}

static void
wr16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static uint16_t
rd16(const uint8_t *p)
{
	return (uint16_t)((uint16_t)p[0] << 8 | p[1]);
}

void
sg_neigh_solicited_node(const uint8_t addr[16], uint8_t out[16])
{
	static const uint8_t prefix[13] = { 0xff, 0x02, [11] = 0x01, [12] = 0xff };

	memcpy(out, prefix, sizeof(prefix));
	memcpy(out + 13, addr + 13, 3);
}

void
sg_neigh_mcast_mac(const uint8_t addr[16], uint8_t mac[6])
{
	mac[0] = 0x33;
	mac[1] = 0x33;
	memcpy(mac + 2, addr + 12, 4);
}

void
sg_neigh_link_local(const uint8_t mac[6], uint8_t out[16])
{
	memset(out, 0, 16);
	out[0] = 0xfe;
	out[1] = 0x80;
	out[8] = mac[0] ^ 0x02;
	out[9] = mac[1];
	out[10] = mac[2];
	out[11] = 0xff;
	out[12] = 0xfe;
	out[13] = mac[3];
	out[14] = mac[4];
	out[15] = mac[5];
}

int
neigh_is_solicited_node(const uint8_t dst[16], const uint8_t target[16])
{
	uint8_t sn[16];

	sg_neigh_solicited_node(target, sn);
	return memcmp(sn, dst, 16) == 0;
}

/*
 * ICMPv6 checksum of the message at l4 (len bytes) in the IPv6 packet at
 * ip, as the field must hold it, the field itself taken as 0 (RFC 4443
 * §2.3, pseudo-header of RFC 8200 §8.1).
 */
static uint16_t
icmp6_cksum(const uint8_t *ip, const uint8_t *l4, uint32_t len)
{
	uint8_t tail[8] = { 0 };
	uint32_t sum;

	tail[0] = (uint8_t)(len >> 24);
	tail[1] = (uint8_t)(len >> 16);
	tail[2] = (uint8_t)(len >> 8);
	tail[3] = (uint8_t)len;
	tail[7] = IPPROTO_ICMPV6;
	sum = sg_csum_partial(ip + 8, 32, 0);
	sum = sg_csum_partial(tail, sizeof(tail), sum);
	sum = sg_csum_partial(l4, 2, sum);
	sum = sg_csum_partial(l4 + 4, len - 4, sum);
	return (uint16_t)~sg_csum_fold(sum);
}

/*
 * Walk the options (RFC 4861 §4.6): each has a non-zero length in units of
 * 8 bytes and must end inside the message. The link-layer address option
 * of type want is 8 bytes on Ethernet (RFC 4861 §4.6.1, RFC 2464 §6).
 */
static enum sg_neigh_nd_reason
nd_options(const uint8_t *opt, uint32_t len, uint8_t want, struct sg_neigh_nd *nd)
{
	uint32_t off = 0;

	while (off < len) {
		uint32_t olen;

		if (len - off < 2 || opt[off + 1] == 0)
			return SG_NEIGH_ND_OPTION;
		olen = (uint32_t)opt[off + 1] * 8;
		if (olen > len - off)
			return SG_NEIGH_ND_OPTION;
		if (opt[off] == want) {
			if (olen != 8)
				return SG_NEIGH_ND_OPTION;
			memcpy(nd->lla, opt + off + 2, 6);
			nd->has_lla = 1;
		}
		off += olen;
	}
	return SG_NEIGH_ND_OK;
}

enum sg_neigh_nd_reason
sg_neigh_nd_parse(const uint8_t *buf, const struct sg_pkt_info *pi, struct sg_neigh_nd *nd)
{
	const uint8_t *ip, *l4;
	uint32_t len;
	uint16_t c, stored;
	enum sg_neigh_nd_reason r;

	memset(nd, 0, sizeof(*nd));
	if (pi->l3 != SG_PKT_L3_IPV6 || pi->l4_proto != IPPROTO_ICMPV6 ||
	    !(pi->flags & SG_PKT_F_L4) || (pi->flags & SG_PKT_F_FRAG) ||
	    (pi->icmp_type != ND_TYPE_NS && pi->icmp_type != ND_TYPE_NA) ||
	    pi->ip_end < pi->l4_off)
		return SG_NEIGH_ND_NOT_ND;
	ip = buf + pi->l3_off;
	l4 = buf + pi->l4_off;
	len = pi->ip_end - pi->l4_off;
	nd->type = pi->icmp_type;

	/* RFC 4861 §7.1.1 and §7.1.2, in their order. */
	if (ip[7] != 255)
		return SG_NEIGH_ND_HOP_LIMIT;
	if (len < ND_HLEN)
		return SG_NEIGH_ND_SHORT;
	c = icmp6_cksum(ip, l4, len);
	memcpy(&stored, l4 + 2, 2);
	/* 0 and 0xffff are the same one's-complement zero (RFC 1071 §1). */
	if (stored != c && !(c == 0 && stored == 0xffff))
		return SG_NEIGH_ND_CSUM;
	if (l4[1] != 0)
		return SG_NEIGH_ND_CODE;
	if (l4[8] == 0xff)
		return SG_NEIGH_ND_TARGET;
	r = nd_options(l4 + ND_HLEN, len - ND_HLEN,
		       nd->type == ND_TYPE_NS ? ND_OPT_SLLA : ND_OPT_TLLA, nd);
	if (r != SG_NEIGH_ND_OK)
		return r;
	memcpy(nd->target, l4 + 8, 16);
	if (ip[8] == 0xff)
		return SG_NEIGH_ND_SOURCE;
	if (nd->type == ND_TYPE_NS) {
		if (neigh_addr_unspecified(ip + 8)) {
			if (!neigh_is_solicited_node(ip + 24, nd->target))
				return SG_NEIGH_ND_DAD_DST;
			if (nd->has_lla)
				return SG_NEIGH_ND_DAD_SLLA;
		}
	} else {
		nd->flags = l4[4] & (SG_NEIGH_NA_ROUTER | SG_NEIGH_NA_SOLICITED |
				     SG_NEIGH_NA_OVERRIDE);
		if (ip[24] == 0xff && (nd->flags & SG_NEIGH_NA_SOLICITED))
			return SG_NEIGH_ND_SOLICITED_MCAST;
	}
	return SG_NEIGH_ND_OK;
}

int
sg_neigh_arp_answer(uint8_t *buf, uint32_t len, const struct sg_pkt_info *pi,
		    const uint8_t mac[6])
{
	uint8_t *a;
	uint8_t sha[6], spa[4], tpa[4];

	if (pi->l3 != SG_PKT_L3_ARP || pi->ip_end > len || pi->l3_off + ARP_LEN != pi->ip_end)
		return -EINVAL;
	a = buf + pi->l3_off;
	if (rd16(a + ARP_OP) != ARP_OP_REQUEST)
		return -EINVAL;
	memcpy(sha, a + ARP_SHA, 6);
	memcpy(spa, a + ARP_SPA, 4);
	memcpy(tpa, a + ARP_TPA, 4);

	/* RFC 826: swap the fields, put in ours, set the opcode to reply. */
	wr16(a + ARP_OP, ARP_OP_REPLY);
	memcpy(a + ARP_THA, sha, 6);
	memcpy(a + ARP_TPA, spa, 4);
	memcpy(a + ARP_SHA, mac, 6);
	memcpy(a + ARP_SPA, tpa, 4);
	sg_pkt_eth_set_macs(buf, sha, mac);
	memset(buf + pi->ip_end, 0, len - pi->ip_end);
	return (int)len;
}

/* IPv6 header and ICMPv6 NS/NA with one LLA option at ip; checksum last. */
static void
nd_write(uint8_t *ip, const uint8_t src[16], const uint8_t dst[16], uint8_t type,
	 uint8_t flags, const uint8_t target[16], uint8_t opt_type, const uint8_t lla[6])
{
	uint8_t *l4 = ip + IPV6_HLEN;
	uint32_t len = opt_type != 0 ? ND_HLEN + 8 : ND_HLEN;
	uint16_t c;

	memset(ip, 0, IPV6_HLEN + len);
	ip[0] = 0x60;
	wr16(ip + 4, (uint16_t)len);
	ip[6] = IPPROTO_ICMPV6;
	ip[7] = 255;
	memcpy(ip + 8, src, 16);
	memcpy(ip + 24, dst, 16);
	l4[0] = type;
	l4[4] = flags;
	memcpy(l4 + 8, target, 16);
	if (opt_type != 0) {
		l4[ND_HLEN] = opt_type;
		l4[ND_HLEN + 1] = 1;
		memcpy(l4 + ND_HLEN + 2, lla, 6);
	}
	c = icmp6_cksum(ip, l4, len);
	memcpy(l4 + 2, &c, 2);
}

int
sg_neigh_na_answer(uint8_t *buf, uint32_t cap, const struct sg_pkt_info *pi,
		   const struct sg_neigh_nd *ns, const uint8_t mac[6])
{
	uint8_t src[16], dst[16], eth_dst[6];
	uint8_t flags = SG_NEIGH_NA_OVERRIDE;
	uint32_t need = pi->l3_off + IPV6_HLEN + ND_HLEN + 8;

	if (pi->l3 != SG_PKT_L3_IPV6 || pi->icmp_type != ND_TYPE_NS || ns->type != ND_TYPE_NS ||
	    pi->ip_end < pi->l4_off || pi->ip_end - pi->l4_off < ND_HLEN)
		return -EINVAL;
	if (cap < need)
		return -ENOSPC;
	memcpy(src, buf + pi->l3_off + 8, 16);
	/* RFC 4861 §7.2.4: a DAD solicitation is answered to all-nodes. */
	if (neigh_addr_unspecified(src)) {
		memcpy(dst, all_nodes, 16);
		sg_neigh_mcast_mac(all_nodes, eth_dst);
	} else {
		memcpy(dst, src, 16);
		flags |= SG_NEIGH_NA_SOLICITED;
		memcpy(eth_dst, ns->has_lla ? ns->lla : buf + 6, 6);
	}
	nd_write(buf + pi->l3_off, ns->target, dst, ND_TYPE_NA, flags, ns->target, ND_OPT_TLLA,
		 mac);
	sg_pkt_eth_set_macs(buf, eth_dst, mac);
	return (int)need;
}

int
sg_neigh_arp_build(uint8_t *buf, uint32_t cap, uint16_t op, const uint8_t eth_dst[6],
		   const uint8_t sha[6], const uint8_t spa[4], const uint8_t tha[6],
		   const uint8_t tpa[4])
{
	static const uint8_t head[8] = { 0x00, 0x01, 0x08, 0x00, 6, 4 };
	uint8_t *a = buf + ETH_HLEN;

	if (op != ARP_OP_REQUEST && op != ARP_OP_REPLY)
		return -EINVAL;
	if (cap < SG_NEIGH_ARP_FRAME_LEN)
		return -ENOSPC;
	memset(buf, 0, SG_NEIGH_ARP_FRAME_LEN);
	sg_pkt_eth_write(buf, eth_dst, sha, ETHERTYPE_ARP);
	memcpy(a, head, sizeof(head));
	wr16(a + ARP_OP, op);
	memcpy(a + ARP_SHA, sha, 6);
	memcpy(a + ARP_SPA, spa, 4);
	memcpy(a + ARP_THA, tha != NULL ? tha : zero_mac, 6);
	memcpy(a + ARP_TPA, tpa, 4);
	return SG_NEIGH_ARP_FRAME_LEN;
}

int
sg_neigh_ns_build(uint8_t *buf, uint32_t cap, const uint8_t src_mac[6],
		  const uint8_t eth_dst[6], const uint8_t src[16], const uint8_t dst[16],
		  const uint8_t target[16])
{
	/* RFC 4861 §4.3: no source LLA option from the unspecified address. */
	int opt = !neigh_addr_unspecified(src);
	uint32_t len = ETH_HLEN + IPV6_HLEN + ND_HLEN + (opt ? 8 : 0);

	if (cap < len)
		return -ENOSPC;
	sg_pkt_eth_write(buf, eth_dst, src_mac, ETHERTYPE_IPV6);
	nd_write(buf + ETH_HLEN, src, dst, ND_TYPE_NS, 0, target, opt ? ND_OPT_SLLA : 0, src_mac);
	return (int)len;
}

int
sg_neigh_na_build(uint8_t *buf, uint32_t cap, const uint8_t src_mac[6],
		  const uint8_t eth_dst[6], const uint8_t src[16], const uint8_t dst[16],
		  const uint8_t target[16], uint8_t flags)
{
	if (flags & ~(SG_NEIGH_NA_ROUTER | SG_NEIGH_NA_SOLICITED | SG_NEIGH_NA_OVERRIDE))
		return -EINVAL;
	if (cap < SG_NEIGH_ND_FRAME_LEN)
		return -ENOSPC;
	sg_pkt_eth_write(buf, eth_dst, src_mac, ETHERTYPE_IPV6);
	nd_write(buf + ETH_HLEN, src, dst, ND_TYPE_NA, flags, target, ND_OPT_TLLA, src_mac);
	return SG_NEIGH_ND_FRAME_LEN;
}
