/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Address and port translation of a parsed packet (the nat and dnat modes)
 * and of ICMP errors about translated flows, with every checksum updated
 * incrementally (RFC 1624 eqn. 3) but SCTP's CRC32c. Encapsulation is in
 * encap.c, L2 rewrites inline in pkt.h.
 *
 * Each step returns the one's-complement delta of the bytes it changed, so
 * that a checksum covering them (the ICMP checksum over a quoted packet)
 * can follow with one more update instead of a new sum.
 */
#include <errno.h>
#include <netinet/in.h>

#include "sg_common.h"

#include "pkt_private.h"

/* Overwrite n (even) bytes at p with v; returns delta plus their change. */
static inline uint32_t
put(uint8_t *p, const void *v, uint32_t n, uint32_t delta)
{
	delta = sg_csum_delta(delta, p, v, n);
	memcpy(p, v, n);
	return delta;
}

/*
 * Apply a delta to the checksum field at p and return the field's own
 * change. A delta that folds to zero (either one's-complement zero) means
 * the covered data did not change: the field is left alone, which keeps a
 * checksum exactly as a full computation would write it (eqn. 3 would
 * otherwise turn 0xffff into 0x0000). udp: a result of 0 is sent as
 * 0xffff, since 0 means "no checksum" (RFC 768, RFC 8200 §8.1).
 */
static inline uint32_t
fix_csum(uint8_t *p, uint32_t delta, int udp)
{
	uint16_t d = sg_csum_fold(delta);
	uint16_t old, new;

	if (d == 0 || d == 0xffff)
		return 0;
	old = ld16(p);
	new = sg_csum_apply(old, d);
	if (udp && new == 0)
		new = 0xffff;
	st16(p, new);
	return (uint32_t)(uint16_t)~old + new;
}

/*
 * Addresses of the IP header at ip, and the IPv4 header checksum. *d_addr
 * gets the addresses' delta, which L4 pseudo-headers share; returns the
 * delta of everything changed in the header.
 */
static uint32_t
nat_ip(uint8_t *ip, int v6, const struct sg_pkt_nat *nat, uint32_t *d_addr)
{
	uint32_t n = v6 ? 16 : 4;
	uint8_t *src = ip + (v6 ? 8 : 12);
	uint32_t d = 0;

	if (nat->flags & SG_PKT_NAT_SRC)
		d = put(src, nat->src.a8, n, d);
	if (nat->flags & SG_PKT_NAT_DST)
		d = put(src + n, nat->dst.a8, n, d);
	*d_addr = d;
	if (!v6)
		d += fix_csum(ip + 10, d, 0);
	return d;
}

/*
 * Ports or echo identifier of the len-byte L4 packet at l4, and its
 * checksum if SG_PKT_F_L4_CSUM is in flags (the field is there and, for
 * SCTP, so is the whole packet). Returns the delta of the bytes changed.
 */
static uint32_t
nat_l4(uint8_t *l4, uint32_t len, uint8_t proto, uint16_t flags, int v6, uint32_t d_addr,
       const struct sg_pkt_nat *nat)
{
	uint8_t old[4];
	uint32_t d = 0;
	uint32_t off;

	switch (proto) {
	case IPPROTO_TCP:
	case IPPROTO_UDP:
	case IPPROTO_SCTP:
		if (nat->flags & SG_PKT_NAT_SRC)
			d = put(l4, &nat->sport, 2, d);
		if (nat->flags & SG_PKT_NAT_DST)
			d = put(l4 + 2, &nat->dport, 2, d);
		break;
	default:
		if ((flags & SG_PKT_F_ECHO_REQ) && (nat->flags & SG_PKT_NAT_SRC))
			d = put(l4 + 4, &nat->sport, 2, d);
		else if ((flags & SG_PKT_F_ECHO_REPLY) && (nat->flags & SG_PKT_NAT_DST))
			d = put(l4 + 4, &nat->dport, 2, d);
		break;
	}
	if (!(flags & SG_PKT_F_L4_CSUM))
		return d;

	switch (proto) {
	case IPPROTO_TCP:
		off = TCP_CSUM_OFF;
		break;
	case IPPROTO_UDP:
		if (!v6 && ld16(l4 + UDP_CSUM_OFF) == 0)
			return d;	/* sent without a checksum: stays so */
		off = UDP_CSUM_OFF;
		break;
	case IPPROTO_ICMP:
		/* No pseudo-header in ICMPv4: the addresses are not covered. */
		return d + fix_csum(l4 + ICMP_CSUM_OFF, d, 0);
	case IPPROTO_ICMPV6:
		off = ICMP_CSUM_OFF;
		break;
	case IPPROTO_SCTP:
		/* No pseudo-header either, but a CRC: recompute it (RFC 4960 §6.8). */
		memcpy(old, l4 + SCTP_CSUM_OFF, 4);
		sg_pkt_sctp_store(l4, sg_pkt_sctp_crc(l4, len));
		return sg_csum_delta(d, old, l4 + SCTP_CSUM_OFF, 4);
	default:
		return d;
	}
	return d + fix_csum(l4 + off, d + d_addr, proto == IPPROTO_UDP);
}

int
sg_pkt_nat(uint8_t *buf, const struct sg_pkt_info *pi, const struct sg_pkt_nat *nat)
{
	int v6 = pi->l3 == SG_PKT_L3_IPV6;
	uint32_t d_addr;

	if (sg_unlikely(pi->l3 != SG_PKT_L3_IPV4 && !v6))
		return -EINVAL;
	if (sg_unlikely(nat->flags & ~(SG_PKT_NAT_SRC | SG_PKT_NAT_DST)))
		return -EINVAL;
	if (sg_unlikely(pi->flags & (SG_PKT_F_FRAG | SG_PKT_F_IPV6_RH))) {
		if (pi->flags & SG_PKT_F_IPV6_RH)
			return -ENOTSUP;
		if (pi->l4_proto == IPPROTO_SCTP && (pi->flags & SG_PKT_F_L4))
			return -ENOTSUP;
	}
	nat_ip(buf + pi->l3_off, v6, nat, &d_addr);
	if (pi->flags & SG_PKT_F_L4)
		nat_l4(buf + pi->l4_off, pi->ip_end - pi->l4_off, pi->l4_proto,
		       pi->flags | SG_PKT_F_L4_CSUM, v6, d_addr, nat);
	return 0;
}

int
sg_pkt_icmp_error_nat(uint8_t *buf, const struct sg_pkt_info *pi,
		      const struct sg_pkt_icmp_inner *in,
		      const struct sg_pkt_nat *outer, const struct sg_pkt_nat *inner)
{
	int v6 = pi->l3 == SG_PKT_L3_IPV6;
	uint32_t d_icmp = 0, d_addr = 0, d_outer = 0;
	const uint8_t known = SG_PKT_NAT_SRC | SG_PKT_NAT_DST;

	if (sg_unlikely(!(pi->flags & SG_PKT_F_ICMP_ERROR) || in->l3 != pi->l3 ||
			in->l3_off != pi->l4_off + ICMP_HLEN || in->end > pi->ip_end ||
			in->l4_off > in->end))
		return -EINVAL;
	if (sg_unlikely((outer != NULL && (outer->flags & ~known)) ||
			(inner != NULL && (inner->flags & ~known))))
		return -EINVAL;
	if (sg_unlikely((pi->flags | in->flags) & SG_PKT_F_IPV6_RH))
		return -ENOTSUP;

	if (inner != NULL) {
		d_icmp = nat_ip(buf + in->l3_off, v6, inner, &d_addr);
		if (in->flags & SG_PKT_F_L4)
			d_icmp += nat_l4(buf + in->l4_off, in->end - in->l4_off, in->l4_proto,
					 in->flags, v6, d_addr, inner);
	}
	if (outer != NULL)
		nat_ip(buf + pi->l3_off, v6, outer, &d_outer);
	/* The ICMPv6 checksum covers the outer addresses (RFC 4443 §2.3). */
	fix_csum(buf + pi->l4_off + ICMP_CSUM_OFF, d_icmp + (v6 ? d_outer : 0), 0);
	return 0;
}
