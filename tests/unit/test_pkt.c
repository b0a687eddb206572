/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * lib/pkt: the parser (outer and ICMP-quoted packets) against a table of
 * valid packets, every truncation of them, a table of malformed packets and
 * random bytes; checksums and CRC32c against reference computations written
 * here independently of the library (byte-wise RFC 1071 sum, bit-wise CRC);
 * NAT and ICMP error translation as "this packet in, this packet out", the
 * expected packet being built from scratch with full checksums; DSR
 * encapsulation and the L2 rewrite.
 *
 * Packets are built by tb_build() from a small description. Buffers handed
 * to the parser are allocated at their exact length, so that ASan reports
 * any read past the end.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sg_common.h"

#include "pkt.h"

/* ------------------------------------------------------------------------ */
/* Deterministic generator: failures reproduce, no libc rand(). */

static uint64_t rng_state;

static void
rng_seed(uint64_t seed)
{
	rng_state = seed ? seed : 1;
}

static uint32_t
rng32(void)
{
	/* xorshift64* */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return (uint32_t)((rng_state * 0x2545f4914f6cdd1dull) >> 32);
}

/* Uniform in [0, n), n > 0 (the tiny bias is irrelevant here). */
static uint32_t
rng_below(uint32_t n)
{
	return rng32() % n;
}

static bool
rng_chance(uint32_t percent)
{
	return rng_below(100) < percent;
}

static void
rng_bytes(uint8_t *p, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		p[i] = (uint8_t)rng32();
}

/* ------------------------------------------------------------------------ */
/* Reference computations, deliberately naive and independent of lib/pkt. */

/* RFC 1071 sum of big-endian 16-bit words, an odd tail padded with zero. */
static uint64_t
ref_sum(uint64_t sum, const uint8_t *p, uint32_t n)
{
	for (uint32_t i = 0; i + 1 < n; i += 2)
		sum += (uint32_t)p[i] << 8 | p[i + 1];
	if (n & 1)
		sum += (uint32_t)p[n - 1] << 8;
	return sum;
}

static uint16_t
ref_fold(uint64_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)sum;
}

/* Checksum (host order) of n bytes whose 16-bit field at csum_off is taken as 0. */
static uint16_t
ref_csum_except(uint64_t sum, const uint8_t *p, uint32_t n, uint32_t csum_off)
{
	sum = ref_sum(sum, p, csum_off);
	sum = ref_sum(sum, p + csum_off + 2, n - csum_off - 2);
	return (uint16_t)~ref_fold(sum);
}

static uint16_t
ref_ipv4_hdr_csum(const uint8_t *ip)
{
	return ref_csum_except(0, ip, (uint32_t)(ip[0] & 0xf) * 4, 10);
}

/* Pseudo-header sum (RFC 793 §3.1, RFC 8200 §8.1). */
static uint64_t
ref_pseudo(int family, const uint8_t *src, const uint8_t *dst, uint8_t proto, uint32_t len)
{
	uint32_t alen = family == 6 ? 16 : 4;
	uint64_t sum = 0;

	sum = ref_sum(sum, src, alen);
	sum = ref_sum(sum, dst, alen);
	return sum + proto + (len >> 16) + (len & 0xffff);
}

/* Big-endian loads and stores for the test's own use. */
static uint16_t
get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static void
put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void
put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)(v >> 16));
	put16(p + 2, (uint16_t)v);
}

/* CRC32c one bit at a time, reflected polynomial 0x82f63b78 (RFC 3309). */
static uint32_t
ref_crc32c(const uint8_t *p, size_t n)
{
	uint32_t c = 0xffffffff;

	for (size_t i = 0; i < n; i++) {
		c ^= p[i];
		for (int k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ 0x82f63b78 : c >> 1;
	}
	return ~c;
}

/* SCTP CRC32c of n bytes with the checksum field as 0 (RFC 4960 appendix B). */
static uint32_t
ref_sctp_crc(const uint8_t *sctp, uint32_t n)
{
	static uint8_t tmp[70000];

	memcpy(tmp, sctp, n);
	memset(tmp + 8, 0, 4);
	return ref_crc32c(tmp, n);
}

/* ------------------------------------------------------------------------ */
/* Packet builder. */

#define TB_MAX 70000
#define TB_ARP 1
#define TB_OTHER 2

/* A packet to build; every checksum is computed in full. */
struct tb_pkt {
	uint8_t family;		/* 4, 6, TB_ARP or TB_OTHER */
	bool no_eth;		/* the IP datagram alone (ICMP quotes, encap) */
	bool vlan;
	uint16_t tci;
	uint16_t ethertype;	/* TB_OTHER only */
	uint8_t tos;		/* IPv4 TOS or IPv6 traffic class */
	uint8_t ttl;
	uint16_t ipid;
	bool df;
	uint8_t v4_opt;		/* bytes of IPv4 options, multiple of 4 */
	uint8_t n_ext;		/* IPv6 extension headers, in order */
	uint8_t ext[12];	/* IPPROTO_HOPOPTS, _ROUTING, _DSTOPTS, _FRAGMENT */
	uint8_t ext_len[12];	/* their Hdr Ext Len field */
	uint8_t rh_left;	/* segments left of every routing header */
	bool frag;		/* a real fragment (else an IPv6 frag header is atomic) */
	uint16_t frag_off;	/* bytes, multiple of 8 */
	bool mf;
	uint32_t frag_len;	/* fragmentable bytes carried; 0: all from frag_off */
	uint32_t frag_id;
	uint8_t proto;
	union sg_pkt_addr src, dst;
	uint16_t sport, dport;	/* host order */
	uint8_t icmp_type, icmp_code;
	uint16_t icmp_id, icmp_seq;	/* ICMP bytes 4-5 and 6-7 */
	uint8_t tcp_opt;	/* bytes of TCP options, multiple of 4 */
	bool udp_zero;		/* IPv4 UDP sent without checksum */
	const uint8_t *payload;	/* NULL: a pattern */
	uint32_t payload_len;
	uint32_t pad;		/* Ethernet padding after the datagram */
};

/* Where things landed. */
struct tb_out {
	uint32_t len;		/* whole buffer, padding included */
	uint32_t l3_off;
	uint32_t l4_off;	/* what sg_pkt_parse() must report */
	uint32_t ip_end;
	uint32_t seg_len;	/* the whole (unfragmented) L4 segment */
	bool l4_here;		/* the L4 header is in this packet */
};

static uint8_t tb_seg[TB_MAX];
static uint8_t tb_fp[TB_MAX];

static uint32_t
tb_ext_bytes(const struct tb_pkt *s, unsigned int i)
{
	return s->ext[i] == IPPROTO_FRAGMENT ? 8 : ((uint32_t)s->ext_len[i] + 1) * 8;
}

/* Write extension header i of s at p; nh is its Next Header. */
static void
tb_write_ext(const struct tb_pkt *s, unsigned int i, uint8_t nh, uint8_t *p)
{
	uint32_t n = tb_ext_bytes(s, i);

	memset(p, 0, n);
	p[0] = nh;
	switch (s->ext[i]) {
	case IPPROTO_FRAGMENT:
		if (s->frag)
			put16(p + 2, (uint16_t)(s->frag_off | (s->mf ? 1 : 0)));
		put32(p + 4, s->frag_id);
		break;
	case IPPROTO_ROUTING:
		p[1] = s->ext_len[i];
		p[2] = 253;	/* RFC 4727 experimental type: no semantics */
		p[3] = s->rh_left;
		break;
	default:
		/* Hop-by-hop and destination options: one PadN option. */
		p[1] = s->ext_len[i];
		p[2] = 1;
		p[3] = (uint8_t)(n - 4);
		break;
	}
}

/* The L4 segment; returns its length. */
static uint32_t
tb_build_seg(const struct tb_pkt *s, uint8_t *seg)
{
	uint32_t h, n, off = UINT32_MAX;
	uint16_t c;
	uint64_t sum;
	bool v6 = s->family == 6;

	switch (s->proto) {
	case IPPROTO_TCP:
		h = 20u + s->tcp_opt;
		memset(seg, 0, h);
		put16(seg, s->sport);
		put16(seg + 2, s->dport);
		put32(seg + 4, 0x01020304);
		put32(seg + 8, 0x0a0b0c0d);
		seg[12] = (uint8_t)((h / 4) << 4);
		seg[13] = 0x18;
		put16(seg + 14, 0xfaf0);
		memset(seg + 20, 1, s->tcp_opt);	/* NOPs */
		off = 16;
		break;
	case IPPROTO_UDP:
		h = 8;
		put16(seg, s->sport);
		put16(seg + 2, s->dport);
		put16(seg + 4, (uint16_t)(8 + s->payload_len));
		off = 6;
		break;
	case IPPROTO_SCTP:
		h = 12;
		put16(seg, s->sport);
		put16(seg + 2, s->dport);
		put32(seg + 4, 0xdeadbeef);
		break;
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6:
		h = 8;
		seg[0] = s->icmp_type;
		seg[1] = s->icmp_code;
		put16(seg + 4, s->icmp_id);
		put16(seg + 6, s->icmp_seq);
		off = 2;
		break;
	default:
		h = 0;
		break;
	}
	if (s->payload != NULL)
		memcpy(seg + h, s->payload, s->payload_len);
	else
		for (uint32_t i = 0; i < s->payload_len; i++)
			seg[h + i] = (uint8_t)(i * 7 + 3);
	n = h + s->payload_len;

	if (s->proto == IPPROTO_SCTP) {
		uint32_t crc = ref_sctp_crc(seg, n);

		/* Least significant byte first (RFC 4960 appendix B). */
		seg[8] = (uint8_t)crc;
		seg[9] = (uint8_t)(crc >> 8);
		seg[10] = (uint8_t)(crc >> 16);
		seg[11] = (uint8_t)(crc >> 24);
	} else if (off != UINT32_MAX) {
		sum = 0;
		if (!(s->proto == IPPROTO_ICMP && !v6))
			sum = ref_pseudo(s->family, s->src.a8, s->dst.a8, s->proto, n);
		c = ref_csum_except(sum, seg, n, off);
		if (s->proto == IPPROTO_UDP && c == 0)
			c = 0xffff;	/* RFC 768 */
		if (s->proto == IPPROTO_UDP && !v6 && s->udp_zero)
			c = 0;
		put16(seg + off, c);
	}
	return n;
}

/* Build s into out (TB_MAX bytes); returns the length. */
static uint32_t
tb_build(const struct tb_pkt *s, uint8_t *out, struct tb_out *o)
{
	uint32_t p = 0, seg_len, fp_len = 0, unfrag = 0, post = 0, emit_off, emit_len;
	int fi = -1;

	memset(o, 0, sizeof(*o));
	if (!s->no_eth) {
		static const uint8_t mac_d[6] = { 0x02, 0, 0, 0, 0, 0x01 };
		static const uint8_t mac_s[6] = { 0x02, 0, 0, 0, 0, 0x02 };
		uint16_t et = s->family == 4 ? 0x0800 : s->family == 6 ? 0x86dd :
			      s->family == TB_ARP ? 0x0806 : s->ethertype;

		memcpy(out, mac_d, 6);
		memcpy(out + 6, mac_s, 6);
		p = 12;
		if (s->vlan) {
			put16(out + p, 0x8100);
			put16(out + p + 2, s->tci);
			p += 4;
		}
		put16(out + p, et);
		p += 2;
	}
	o->l3_off = p;

	if (s->family == TB_ARP) {
		memset(out + p, 0, 28);
		put16(out + p, 1);
		put16(out + p + 2, 0x0800);
		out[p + 4] = 6;
		out[p + 5] = 4;
		put16(out + p + 6, s->icmp_id ? s->icmp_id : 1);
		memcpy(out + p + 14, s->src.a8, 4);
		memcpy(out + p + 24, s->dst.a8, 4);
		o->ip_end = o->l4_off = p + 28;
		memset(out + o->ip_end, 0, s->pad);
		o->len = o->ip_end + s->pad;
		return o->len;
	}
	if (s->family == TB_OTHER) {
		seg_len = tb_build_seg(s, out + p);
		o->ip_end = o->l4_off = p + seg_len;
		o->len = o->ip_end;
		return o->len;
	}

	seg_len = o->seg_len = tb_build_seg(s, tb_seg);

	/* The fragmentable part: extension headers after a fragment header, then L4. */
	if (s->family == 6) {
		for (unsigned int i = 0; i < s->n_ext; i++)
			if (s->ext[i] == IPPROTO_FRAGMENT && fi < 0)
				fi = (int)i;
		for (unsigned int i = 0; i < s->n_ext; i++) {
			if (fi >= 0 && (int)i > fi)
				post += tb_ext_bytes(s, i);
			else
				unfrag += tb_ext_bytes(s, i);
		}
		for (unsigned int i = (unsigned int)(fi + 1); fi >= 0 && i < s->n_ext; i++) {
			uint8_t nh = i + 1 < s->n_ext ? s->ext[i + 1] : s->proto;

			tb_write_ext(s, i, nh, tb_fp + fp_len);
			fp_len += tb_ext_bytes(s, i);
		}
	}
	memcpy(tb_fp + fp_len, tb_seg, seg_len);
	fp_len += seg_len;
	emit_off = s->frag ? s->frag_off : 0;
	emit_len = s->frag && s->frag_len ? s->frag_len : fp_len - emit_off;

	if (s->family == 4) {
		uint32_t hl = 20u + s->v4_opt;
		uint16_t fo = (uint16_t)(emit_off >> 3);

		out[p] = (uint8_t)(0x40 | hl / 4);
		out[p + 1] = s->tos;
		put16(out + p + 2, (uint16_t)(hl + emit_len));
		put16(out + p + 4, s->ipid);
		if (s->df)
			fo |= 0x4000;
		if (s->frag && s->mf)
			fo |= 0x2000;
		put16(out + p + 6, fo);
		out[p + 8] = s->ttl ? s->ttl : 64;
		out[p + 9] = s->proto;
		put16(out + p + 10, 0);
		memcpy(out + p + 12, s->src.a8, 4);
		memcpy(out + p + 16, s->dst.a8, 4);
		memset(out + p + 20, 1, s->v4_opt);	/* NOPs ... */
		if (s->v4_opt >= 4) {
			/* ... after a router alert (RFC 2113) */
			out[p + 20] = 0x94;
			out[p + 21] = 4;
			out[p + 22] = 0;
			out[p + 23] = 0;
		}
		put16(out + p + 10, ref_ipv4_hdr_csum(out + p));
		p += hl;
	} else {
		out[p] = (uint8_t)(0x60 | s->tos >> 4);
		out[p + 1] = (uint8_t)(s->tos << 4 | 0x1);
		put16(out + p + 2, 0x2345);
		put16(out + p + 4, (uint16_t)(unfrag + emit_len));
		out[p + 6] = s->n_ext ? s->ext[0] : s->proto;
		out[p + 7] = s->ttl ? s->ttl : 64;
		memcpy(out + p + 8, s->src.a8, 16);
		memcpy(out + p + 24, s->dst.a8, 16);
		p += 40;
		for (unsigned int i = 0; i < s->n_ext && (fi < 0 || (int)i <= fi); i++) {
			uint8_t nh = i + 1 < s->n_ext ? s->ext[i + 1] : s->proto;

			tb_write_ext(s, i, nh, out + p);
			p += tb_ext_bytes(s, i);
		}
	}
	memcpy(out + p, tb_fp + emit_off, emit_len);
	o->l4_here = emit_off == 0;
	o->l4_off = p + (o->l4_here ? post : 0);
	o->ip_end = p + emit_len;
	memset(out + o->ip_end, 0, s->pad);
	o->len = o->ip_end + s->pad;
	return o->len;
}

/* A heap copy of exactly n bytes, so that ASan sees any overrun. */
static uint8_t *
dup_exact(const uint8_t *p, uint32_t n)
{
	uint8_t *q = malloc(n ? n : 1);

	assert_non_null(q);
	memcpy(q, p, n);
	return q;
}

static void
addr_rand(union sg_pkt_addr *a, int family)
{
	memset(a, 0, sizeof(*a));
	if (family == 4) {
		/* 192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24 */
		static const uint8_t nets[3][3] = { { 192, 0, 2 }, { 198, 51, 100 },
						     { 203, 0, 113 } };
		const uint8_t *n = nets[rng_below(3)];

		a->a8[0] = n[0];
		a->a8[1] = n[1];
		a->a8[2] = n[2];
		a->a8[3] = (uint8_t)rng32();
	} else {
		a->a8[0] = 0x20;
		a->a8[1] = 0x01;
		a->a8[2] = 0x0d;
		a->a8[3] = 0xb8;
		rng_bytes(a->a8 + 4, 12);
	}
}

static void
addr_set4(union sg_pkt_addr *a, uint8_t b0, uint8_t b1, uint8_t b2, uint8_t b3)
{
	memset(a, 0, sizeof(*a));
	a->a8[0] = b0;
	a->a8[1] = b1;
	a->a8[2] = b2;
	a->a8[3] = b3;
}

/* 2001:db8::x */
static void
addr_set6(union sg_pkt_addr *a, uint16_t x)
{
	memset(a, 0, sizeof(*a));
	a->a8[0] = 0x20;
	a->a8[1] = 0x01;
	a->a8[2] = 0x0d;
	a->a8[3] = 0xb8;
	put16(a->a8 + 14, x);
}

/* Print where two packets differ, then fail. */
static void
expect_same_bytes(const uint8_t *got, const uint8_t *want, uint32_t n, const char *what,
		  uint32_t iter)
{
	if (memcmp(got, want, n) == 0)
		return;
	for (uint32_t i = 0; i < n; i++)
		if (got[i] != want[i])
			print_message("%s (iteration %u): byte %u is 0x%02x, want 0x%02x\n", what,
				      iter, i, got[i], want[i]);
	fail_msg("%s (iteration %u): packets differ", what, iter);
}

/* ------------------------------------------------------------------------ */
/* What the parser must report for a packet tb_build() made. */

static bool
tb_l4_parsable(const struct tb_pkt *s, uint8_t proto)
{
	switch (proto) {
	case IPPROTO_TCP:
	case IPPROTO_UDP:
	case IPPROTO_SCTP:
		return true;
	case IPPROTO_ICMP:
		return s->family == 4;
	case IPPROTO_ICMPV6:
		return s->family == 6;
	default:
		return false;
	}
}

static bool
tb_is_frag(const struct tb_pkt *s)
{
	bool hdr = s->family == 4;

	for (unsigned int i = 0; s->family == 6 && i < s->n_ext; i++)
		hdr |= s->ext[i] == IPPROTO_FRAGMENT;
	return hdr && s->frag && (s->frag_off != 0 || s->mf);
}

/* The protocol sg_pkt_parse() reports: what follows the fragment header of a non-first fragment. */
static uint8_t
tb_l4_proto(const struct tb_pkt *s)
{
	if (s->family == 6 && s->frag && s->frag_off != 0)
		for (unsigned int i = 0; i < s->n_ext; i++)
			if (s->ext[i] == IPPROTO_FRAGMENT)
				return i + 1 < s->n_ext ? s->ext[i + 1] : s->proto;
	return s->proto;
}

static uint16_t
tb_icmp_flags(const struct tb_pkt *s)
{
	uint8_t t = s->icmp_type;

	if (s->family == 6)
		return t >= 1 && t <= 4 ? SG_PKT_F_ICMP_ERROR :
		       t == 128	 ? SG_PKT_F_ECHO_REQ :
		       t == 129	 ? SG_PKT_F_ECHO_REPLY :
					   0;
	return t == 3 || t == 11 || t == 12 ? SG_PKT_F_ICMP_ERROR :
	       t == 8			     ? SG_PKT_F_ECHO_REQ :
	       t == 0			     ? SG_PKT_F_ECHO_REPLY :
						       0;
}

/* Flags and fields common to the outer and quoted parse of s. */
static void
tb_expect_l3l4(const struct tb_pkt *s, const struct tb_out *o, uint16_t *flags, uint16_t *sport,
	       uint16_t *dport, uint8_t *l4_proto)
{
	*l4_proto = tb_l4_proto(s);
	if (s->family == 4 && s->df)
		*flags |= SG_PKT_F_DF;
	if ((s->family == 4 && s->v4_opt) || (s->family == 6 && s->n_ext))
		*flags |= SG_PKT_F_IP_OPTS;
	for (unsigned int i = 0; s->family == 6 && i < s->n_ext; i++) {
		if (s->ext[i] == IPPROTO_FRAGMENT && s->frag && s->frag_off)
			break;	/* the rest is not in this fragment */
		if (s->ext[i] == IPPROTO_ROUTING && s->rh_left)
			*flags |= SG_PKT_F_IPV6_RH;
	}
	if (tb_is_frag(s)) {
		*flags |= SG_PKT_F_FRAG;
		if (s->mf)
			*flags |= SG_PKT_F_MF;
	}
	if (!o->l4_here || !tb_l4_parsable(s, s->proto))
		return;
	*flags |= SG_PKT_F_L4;
	switch (s->proto) {
	case IPPROTO_TCP:
	case IPPROTO_UDP:
	case IPPROTO_SCTP:
		*sport = htons(s->sport);
		*dport = htons(s->dport);
		break;
	default:
		*flags |= tb_icmp_flags(s);
		if (tb_icmp_flags(s) & SG_PKT_F_ECHO_REQ)
			*sport = htons(s->icmp_id);
		if (tb_icmp_flags(s) & SG_PKT_F_ECHO_REPLY)
			*dport = htons(s->icmp_id);
		break;
	}
}

static void
tb_expect(const struct tb_pkt *s, const struct tb_out *o, struct sg_pkt_info *pi)
{
	memset(pi, 0, sizeof(*pi));
	pi->l3_off = o->l3_off;
	pi->l4_off = o->l4_off;
	pi->ip_end = o->ip_end;
	if (s->vlan) {
		pi->flags |= SG_PKT_F_VLAN;
		pi->vlan_tci = s->tci;
	}
	switch (s->family) {
	case TB_ARP:
		pi->l3 = SG_PKT_L3_ARP;
		pi->ethertype = 0x0806;
		return;
	case TB_OTHER:
		pi->l3 = SG_PKT_L3_OTHER;
		pi->ethertype = s->ethertype;
		pi->l4_off = o->l3_off;
		pi->ip_end = o->len;
		return;
	case 4:
		pi->l3 = SG_PKT_L3_IPV4;
		pi->ethertype = 0x0800;
		break;
	default:
		pi->l3 = SG_PKT_L3_IPV6;
		pi->ethertype = 0x86dd;
		break;
	}
	tb_expect_l3l4(s, o, &pi->flags, &pi->sport, &pi->dport, &pi->l4_proto);
	if (pi->flags & SG_PKT_F_FRAG) {
		pi->frag_off = s->frag_off;
		pi->frag_id = s->family == 4 ? s->ipid : s->frag_id;
	}
	if ((pi->flags & SG_PKT_F_L4) && (s->proto == IPPROTO_ICMP || s->proto == IPPROTO_ICMPV6))
		pi->icmp_type = s->icmp_type;
}

static void
pi_print(const char *label, const struct sg_pkt_info *p)
{
	print_message("%s: l3_off %u l4_off %u ip_end %u frag_id %u ethertype 0x%04x tci %u "
		      "flags 0x%04x frag_off %u sport %u dport %u l3 %u l4_proto %u icmp_type %u\n",
		      label, p->l3_off, p->l4_off, p->ip_end, p->frag_id, p->ethertype, p->vlan_tci,
		      p->flags, p->frag_off, ntohs(p->sport), ntohs(p->dport), p->l3, p->l4_proto,
		      p->icmp_type);
}

static bool
pi_equal(const struct sg_pkt_info *a, const struct sg_pkt_info *b)
{
	return a->l3_off == b->l3_off && a->l4_off == b->l4_off && a->ip_end == b->ip_end &&
	       a->frag_id == b->frag_id && a->ethertype == b->ethertype &&
	       a->vlan_tci == b->vlan_tci && a->flags == b->flags && a->frag_off == b->frag_off &&
	       a->sport == b->sport && a->dport == b->dport && a->l3 == b->l3 &&
	       a->l4_proto == b->l4_proto && a->icmp_type == b->icmp_type;
}

static void
pi_check(const struct sg_pkt_info *got, const struct sg_pkt_info *want, const char *what,
	 uint32_t n)
{
	if (pi_equal(got, want))
		return;
	pi_print("got ", got);
	pi_print("want", want);
	fail_msg("%s (%u): parsed info differs", what, n);
}

static void
reason_check(enum sg_pkt_reason got, enum sg_pkt_reason want, const char *what, uint32_t n)
{
	if (got != want)
		fail_msg("%s (%u): reason %s, want %s", what, n, sg_pkt_reason_name(got),
			 sg_pkt_reason_name(want));
}

/* ------------------------------------------------------------------------ */
/* The set of valid packets. */

static struct tb_pkt
mk4(uint8_t proto, uint32_t payload_len)
{
	struct tb_pkt s = {
		.family = 4, .proto = proto, .payload_len = payload_len, .ttl = 64,
		.ipid = 0x1234, .df = true, .tos = 0x2e, .sport = 40000, .dport = 80,
		.icmp_type = 8, .icmp_id = 0x4242, .icmp_seq = 1,
	};

	addr_set4(&s.src, 198, 51, 100, 7);
	addr_set4(&s.dst, 192, 0, 2, 10);
	return s;
}

static struct tb_pkt
mk6(uint8_t proto, uint32_t payload_len)
{
	struct tb_pkt s = {
		.family = 6, .proto = proto, .payload_len = payload_len, .ttl = 64,
		.tos = 0xb8, .sport = 40000, .dport = 443, .icmp_type = 128, .icmp_id = 0x4243,
		.icmp_seq = 2, .frag_id = 0xabcdef01,
	};

	addr_set6(&s.src, 7);
	addr_set6(&s.dst, 0x10);
	return s;
}

static void
mk_ext(struct tb_pkt *s, uint8_t type, uint8_t len)
{
	s->ext[s->n_ext] = type;
	s->ext_len[s->n_ext] = len;
	s->n_ext++;
}

#define QUOTE_MAX 2048
static uint8_t quote_store[24][QUOTE_MAX];
static unsigned int quote_next;

/*
 * An ICMP(v6) error from a router about inner (an IP datagram as its
 * sender sent it), quoting its first cut bytes (0: all of it).
 */
static struct tb_pkt
mk_icmp_err(const struct tb_pkt *inner, uint8_t type, uint8_t code, uint32_t cut)
{
	struct tb_pkt in = *inner, s;
	uint8_t *q = quote_store[quote_next++ % 24];
	struct tb_out o;
	uint32_t n;

	in.no_eth = true;
	n = tb_build(&in, q, &o);
	assert_true(n <= QUOTE_MAX);
	if (in.family == 4) {
		s = mk4(IPPROTO_ICMP, 0);
		addr_set4(&s.src, 192, 0, 2, 254);
	} else {
		s = mk6(IPPROTO_ICMPV6, 0);
		addr_set6(&s.src, 0xfe);
	}
	s.dst = in.src;
	s.df = false;
	s.icmp_type = type;
	s.icmp_code = code;
	s.icmp_id = 0;
	s.icmp_seq = 0;
	s.payload = q;
	s.payload_len = cut != 0 && cut < n ? cut : n;
	return s;
}

#define MAX_VALID 64

/* Valid packets of every kind the parser knows; returns how many. */
static unsigned int
valid_set(struct tb_pkt *v)
{
	unsigned int n = 0;
	struct tb_pkt s;

	v[n++] = mk4(IPPROTO_TCP, 0);
	s = mk4(IPPROTO_TCP, 37);
	s.v4_opt = 8;
	s.tcp_opt = 12;
	v[n++] = s;
	s = mk4(IPPROTO_TCP, 5);
	s.v4_opt = 40;	/* IHL 15 */
	s.tcp_opt = 40;	/* data offset 15 */
	v[n++] = s;
	v[n++] = mk4(IPPROTO_UDP, 33);
	s = mk4(IPPROTO_UDP, 0);
	s.udp_zero = true;
	v[n++] = s;
	v[n++] = mk4(IPPROTO_SCTP, 28);
	v[n++] = mk4(IPPROTO_ICMP, 56);	/* echo request */
	s = mk4(IPPROTO_ICMP, 0);
	s.icmp_type = 0;	/* echo reply */
	v[n++] = s;
	s = mk4(IPPROTO_ICMP, 4);
	s.icmp_type = 13;	/* timestamp: ICMP, neither echo nor error */
	v[n++] = s;
	s = mk4(IPPROTO_TCP, 10);
	s.vlan = true;
	s.tci = 0x2064;
	v[n++] = s;
	s = mk4(IPPROTO_TCP, 0);
	s.pad = 6;	/* a 60-byte frame */
	v[n++] = s;
	s = mk4(IPPROTO_UDP, 100);
	s.frag = true;	/* first fragment */
	s.mf = true;
	s.frag_len = 48;
	s.df = false;
	v[n++] = s;
	s = mk4(IPPROTO_UDP, 100);
	s.frag = true;	/* middle fragment */
	s.mf = true;
	s.frag_off = 48;
	s.frag_len = 40;
	s.df = false;
	v[n++] = s;
	s = mk4(IPPROTO_TCP, 100);
	s.frag = true;	/* last fragment, odd length */
	s.frag_off = 104;
	s.df = false;
	s.vlan = true;
	v[n++] = s;
	v[n++] = mk4(47, 24);	/* GRE: classified, not parsed */
	v[n++] = mk4(IPPROTO_ICMPV6, 8);	/* ICMPv6 over IPv4: not parsed */

	v[n++] = mk6(IPPROTO_TCP, 0);
	s = mk6(IPPROTO_TCP, 21);
	s.tcp_opt = 20;
	s.vlan = true;
	s.tci = 7;
	v[n++] = s;
	v[n++] = mk6(IPPROTO_UDP, 19);
	v[n++] = mk6(IPPROTO_SCTP, 52);
	v[n++] = mk6(IPPROTO_ICMPV6, 16);
	s = mk6(IPPROTO_ICMPV6, 0);
	s.icmp_type = 129;
	v[n++] = s;
	s = mk6(IPPROTO_ICMPV6, 24);
	s.icmp_type = 135;	/* neighbour solicitation */
	v[n++] = s;
	s = mk6(IPPROTO_TCP, 9);
	mk_ext(&s, IPPROTO_HOPOPTS, 0);
	mk_ext(&s, IPPROTO_DSTOPTS, 1);
	mk_ext(&s, IPPROTO_ROUTING, 2);
	mk_ext(&s, IPPROTO_DSTOPTS, 0);
	v[n++] = s;
	s = mk6(IPPROTO_UDP, 9);
	mk_ext(&s, IPPROTO_ROUTING, 4);
	s.rh_left = 2;
	v[n++] = s;
	s = mk6(IPPROTO_UDP, 200);
	mk_ext(&s, IPPROTO_FRAGMENT, 0);
	s.frag = true;	/* first fragment */
	s.mf = true;
	s.frag_len = 64;
	v[n++] = s;
	s = mk6(IPPROTO_UDP, 200);
	mk_ext(&s, IPPROTO_HOPOPTS, 0);
	mk_ext(&s, IPPROTO_FRAGMENT, 0);
	s.frag = true;	/* middle fragment */
	s.mf = true;
	s.frag_off = 64;
	s.frag_len = 80;
	v[n++] = s;
	s = mk6(IPPROTO_TCP, 200);
	mk_ext(&s, IPPROTO_FRAGMENT, 0);
	s.frag = true;	/* last fragment */
	s.frag_off = 200;
	v[n++] = s;
	s = mk6(IPPROTO_TCP, 30);
	mk_ext(&s, IPPROTO_FRAGMENT, 0);	/* atomic fragment: a whole packet */
	v[n++] = s;
	s = mk6(IPPROTO_UDP, 100);
	mk_ext(&s, IPPROTO_HOPOPTS, 1);
	mk_ext(&s, IPPROTO_FRAGMENT, 0);
	mk_ext(&s, IPPROTO_DSTOPTS, 0);	/* in the fragmentable part */
	s.frag = true;
	s.mf = true;
	s.frag_len = 64;
	v[n++] = s;
	s = mk6(IPPROTO_UDP, 100);
	mk_ext(&s, IPPROTO_HOPOPTS, 1);
	mk_ext(&s, IPPROTO_FRAGMENT, 0);
	mk_ext(&s, IPPROTO_DSTOPTS, 0);
	s.frag = true;	/* non-first: the destination options are not here */
	s.frag_off = 64;
	v[n++] = s;
	s = mk6(IPPROTO_TCP, 3);
	for (int i = 0; i < SG_PKT_IPV6_MAX_EXT; i++)
		mk_ext(&s, i == 0 ? IPPROTO_HOPOPTS : IPPROTO_DSTOPTS, 0);
	v[n++] = s;	/* the longest chain accepted */
	s = mk6(59, 0);	/* no next header */
	mk_ext(&s, IPPROTO_DSTOPTS, 0);
	v[n++] = s;
	v[n++] = mk6(IPPROTO_ICMP, 8);	/* ICMPv4 over IPv6: not parsed */
	s = mk6(IPPROTO_UDP, 0);
	s.pad = 2;
	v[n++] = s;

	/* ICMP errors, their quotes whole or cut. */
	s = mk4(IPPROTO_TCP, 40);
	v[n++] = mk_icmp_err(&s, 3, 3, 0);
	v[n++] = mk_icmp_err(&s, 3, 4, 28);
	s = mk4(IPPROTO_ICMP, 32);
	v[n++] = mk_icmp_err(&s, 11, 0, 0);
	s = mk4(IPPROTO_UDP, 12);
	s.v4_opt = 4;
	v[n++] = mk_icmp_err(&s, 12, 0, 0);
	s = mk6(IPPROTO_UDP, 30);
	v[n++] = mk_icmp_err(&s, 1, 4, 0);
	s = mk6(IPPROTO_TCP, 1200);
	v[n++] = mk_icmp_err(&s, 2, 0, 1232);
	s = mk6(IPPROTO_SCTP, 10);
	mk_ext(&s, IPPROTO_DSTOPTS, 0);
	v[n++] = mk_icmp_err(&s, 3, 0, 0);
	s = mk6(IPPROTO_ICMPV6, 10);
	v[n++] = mk_icmp_err(&s, 4, 1, 0);

	s = (struct tb_pkt){ .family = TB_ARP };
	addr_set4(&s.src, 192, 0, 2, 1);
	addr_set4(&s.dst, 192, 0, 2, 2);
	v[n++] = s;
	s.pad = 18;	/* a 60-byte frame */
	s.vlan = true;
	s.tci = 100;
	v[n++] = s;
	v[n++] = (struct tb_pkt){ .family = TB_OTHER, .ethertype = 0x88cc, .payload_len = 30 };
	v[n++] = (struct tb_pkt){ .family = TB_OTHER, .ethertype = 0x88a8, .payload_len = 50 };
	v[n++] = (struct tb_pkt){ .family = TB_OTHER, .ethertype = 0x8100, .payload_len = 50,
				  .vlan = true };	/* a second tag: not ours */
	assert_true(n <= MAX_VALID);
	return n;
}

/* ------------------------------------------------------------------------ */
/* Reason names. */

static void
test_reason_names(void **state)
{
	(void)state;
	assert_string_equal(sg_pkt_reason_name(SG_PKT_OK), "ok");
	assert_string_equal(sg_pkt_reason_name(SG_PKT_REASON_COUNT), "unknown");
	assert_string_equal(sg_pkt_reason_name((enum sg_pkt_reason)-1), "unknown");
	assert_string_equal(sg_pkt_reason_name((enum sg_pkt_reason)1000), "unknown");
	for (int r = 0; r < SG_PKT_REASON_COUNT; r++) {
		const char *a = sg_pkt_reason_name((enum sg_pkt_reason)r);

		/* A metrics label: non-empty snake_case, and each its own. */
		assert_non_null(a);
		assert_true(a[0] != '\0');
		assert_string_not_equal(a, "unknown");
		for (const char *c = a; *c; c++)
			assert_true((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') ||
				    *c == '_');
		for (int q = 0; q < r; q++)
			assert_string_not_equal(a, sg_pkt_reason_name((enum sg_pkt_reason)q));
	}
}

/* ------------------------------------------------------------------------ */
/* Valid packets: this packet in, this info out. */

static uint8_t pktbuf[TB_MAX];
static uint8_t pktbuf2[TB_MAX];

static void
test_parse_valid(void **state)
{
	struct tb_pkt v[MAX_VALID];
	unsigned int n = valid_set(v);

	(void)state;
	for (unsigned int i = 0; i < n; i++) {
		struct sg_pkt_info pi, want;
		struct tb_out o;
		uint32_t len = tb_build(&v[i], pktbuf, &o);
		uint8_t *b = dup_exact(pktbuf, len);

		tb_expect(&v[i], &o, &want);
		reason_check(sg_pkt_parse(b, len, &pi), SG_PKT_OK, "valid packet", i);
		pi_check(&pi, &want, "valid packet", i);
		/* The full computations agree with the reference ones. */
		if (pi.l3 == SG_PKT_L3_IPV4)
			assert_int_equal(ntohs(sg_pkt_ipv4_cksum(b + pi.l3_off)),
					 ref_ipv4_hdr_csum(b + pi.l3_off));
		if ((pi.flags & SG_PKT_F_L4) && !(pi.flags & SG_PKT_F_FRAG)) {
			uint32_t c = 0;

			switch (pi.l4_proto) {
			case IPPROTO_TCP:
				c = get16(b + pi.l4_off + 16);
				break;
			case IPPROTO_UDP:
				c = get16(b + pi.l4_off + 6);
				break;
			case IPPROTO_ICMP:
			case IPPROTO_ICMPV6:
				c = get16(b + pi.l4_off + 2);
				break;
			default:
				break;
			}
			/* Sent without a checksum; computed, it is never 0. */
			if (pi.l4_proto == IPPROTO_UDP && v[i].udp_zero)
				assert_int_not_equal(ntohs(sg_pkt_l4_cksum(b, &pi)), 0);
			else
				assert_int_equal(ntohs(sg_pkt_l4_cksum(b, &pi)), c);
		}
		if (pi.l4_proto == IPPROTO_SCTP && (pi.flags & SG_PKT_F_L4) &&
		    !(pi.flags & SG_PKT_F_FRAG)) {
			uint32_t crc = sg_pkt_sctp_crc(b + pi.l4_off, pi.ip_end - pi.l4_off);

			assert_int_equal(crc, ref_sctp_crc(b + pi.l4_off, pi.ip_end - pi.l4_off));
			assert_int_equal(b[pi.l4_off + 8], (uint8_t)crc);
			assert_int_equal(b[pi.l4_off + 11], (uint8_t)(crc >> 24));
		}
		free(b);
	}
}

static void
test_parse_bulk(void **state)
{
	static struct tb_pkt v[MAX_VALID];
	static uint8_t store[SG_MAX_BURST][2048];
	const uint8_t *bufs[SG_MAX_BURST];
	uint32_t lens[SG_MAX_BURST];
	struct sg_pkt_info infos[SG_MAX_BURST], one;
	uint8_t reasons[SG_MAX_BURST];
	unsigned int n = valid_set(v);
	uint32_t ok = 0;

	(void)state;
	for (unsigned int i = 0; i < SG_MAX_BURST; i++) {
		struct tb_out o;

		lens[i] = tb_build(&v[(i * 7) % n], pktbuf, &o);
		assert_true(lens[i] <= sizeof(store[i]));
		memcpy(store[i], pktbuf, lens[i]);
		if (i % 5 == 3)
			lens[i] = 13;	/* refused: too short */
		bufs[i] = store[i];
	}
	assert_int_equal(sg_pkt_parse_bulk(bufs, lens, infos, reasons, 0), 0);
	for (unsigned int i = 0; i < SG_MAX_BURST; i++) {
		ok += sg_pkt_parse(bufs[i], lens[i], &one) == SG_PKT_OK;
	}
	assert_int_equal(sg_pkt_parse_bulk(bufs, lens, infos, reasons, SG_MAX_BURST), ok);
	assert_int_equal(ok, SG_MAX_BURST - 6);
	for (unsigned int i = 0; i < SG_MAX_BURST; i++) {
		enum sg_pkt_reason r = sg_pkt_parse(bufs[i], lens[i], &one);

		assert_int_equal(reasons[i], r);
		if (r == SG_PKT_OK)
			pi_check(&infos[i], &one, "bulk", i);
	}
}

/* ------------------------------------------------------------------------ */
/* Every truncation of every valid packet. */

/* The reason a valid packet cut to k bytes must get. */
static enum sg_pkt_reason
trunc_reason(const struct tb_pkt *s, const struct tb_out *o, uint32_t k)
{
	uint32_t l3 = o->l3_off;

	if (k < 14)
		return SG_PKT_ERR_ETH_TRUNC;
	if (s->vlan && k < 18)
		return SG_PKT_ERR_VLAN_TRUNC;
	if (k >= o->ip_end || s->family == TB_OTHER)
		return SG_PKT_OK;	/* only Ethernet padding is gone */
	switch (s->family) {
	case TB_ARP:
		return SG_PKT_ERR_ARP_TRUNC;
	case 4:
		return k - l3 < 20u + s->v4_opt ? SG_PKT_ERR_IPV4_TRUNC :
						   SG_PKT_ERR_IPV4_TOTLEN_LONG;
	default:
		return k - l3 < 40 ? SG_PKT_ERR_IPV6_TRUNC : SG_PKT_ERR_IPV6_PAYLOAD_LONG;
	}
}

static void
test_parse_truncations(void **state)
{
	struct tb_pkt v[MAX_VALID];
	unsigned int n = valid_set(v);
	uint32_t cuts = 0;

	(void)state;
	for (unsigned int i = 0; i < n; i++) {
		struct sg_pkt_info pi, want;
		struct tb_out o;
		uint32_t len = tb_build(&v[i], pktbuf, &o);

		tb_expect(&v[i], &o, &want);
		for (uint32_t k = 0; k < len; k++) {
			uint8_t *b = dup_exact(pktbuf, k);
			enum sg_pkt_reason want_r = trunc_reason(&v[i], &o, k);

			reason_check(sg_pkt_parse(b, k, &pi), want_r, "truncation", i * 10000 + k);
			if (want_r == SG_PKT_OK) {
				if (v[i].family == TB_OTHER)
					want.ip_end = k;
				pi_check(&pi, &want, "truncated padding", i * 10000 + k);
			}
			free(b);
			cuts++;
		}
	}
	assert_true(cuts > 5000);
}

/* ------------------------------------------------------------------------ */
/* Malformed packets, each with its reason. */

enum { AT_NONE = 0, AT_ETH, AT_L3, AT_L4, AT_EXT0, AT_Q3, AT_Q4, AT_ICMP };

/* Overwrite (or add to) a 1- or 2-byte big-endian field after building. */
struct poke {
	uint8_t at;
	uint8_t size;
	bool add;
	int16_t off;
	int32_t val;
};

struct bad_case {
	const char *name;
	uint8_t family;		/* 4, 6 or TB_ARP */
	uint8_t proto;
	uint16_t payload_len;
	uint8_t v4_opt;
	const char *ext;	/* IPv6 extension headers: h, d, r, f */
	bool vlan;
	bool frag, mf;
	uint16_t frag_off, frag_len;
	uint16_t pad;
	struct poke poke[3];
	uint8_t cut_at;		/* the buffer ends at cut_at + cut_off */
	int16_t cut_off;
	enum sg_pkt_reason want;
};

static const struct bad_case bad_cases[] = {
	{ "empty buffer", 4, IPPROTO_TCP, .cut_at = AT_ETH, .cut_off = 0,
	  .want = SG_PKT_ERR_ETH_TRUNC },
	{ "13 bytes of Ethernet", 4, IPPROTO_TCP, .cut_at = AT_ETH, .cut_off = 13,
	  .want = SG_PKT_ERR_ETH_TRUNC },
	{ "VLAN tag cut", 4, IPPROTO_TCP, .vlan = true, .cut_at = AT_ETH, .cut_off = 17,
	  .want = SG_PKT_ERR_VLAN_TRUNC },
	{ "ARP hardware type 6", TB_ARP, .poke = { { AT_L3, 2, false, 0, 6 } },
	  .want = SG_PKT_ERR_ARP_FORMAT },
	{ "ARP protocol IPv6", TB_ARP, .poke = { { AT_L3, 2, false, 2, 0x86dd } },
	  .want = SG_PKT_ERR_ARP_FORMAT },
	{ "ARP protocol address length 16", TB_ARP, .poke = { { AT_L3, 1, false, 5, 16 } },
	  .want = SG_PKT_ERR_ARP_FORMAT },
	{ "ARP hardware address length 8", TB_ARP, .poke = { { AT_L3, 1, false, 4, 8 } },
	  .want = SG_PKT_ERR_ARP_FORMAT },
	{ "ARP of 27 bytes", TB_ARP, .cut_at = AT_L3, .cut_off = 27,
	  .want = SG_PKT_ERR_ARP_TRUNC },
	{ "IPv4 header of 19 bytes", 4, IPPROTO_TCP, .cut_at = AT_L3, .cut_off = 19,
	  .want = SG_PKT_ERR_IPV4_TRUNC },
	{ "IPv4 ethertype, version 6", 4, IPPROTO_TCP,
	  .poke = { { AT_L3, 1, false, 0, 0x65 } }, .want = SG_PKT_ERR_IPV4_VERSION },
	{ "IHL 4", 4, IPPROTO_TCP, .poke = { { AT_L3, 1, false, 0, 0x44 } },
	  .want = SG_PKT_ERR_IPV4_IHL },
	{ "IHL 0", 4, IPPROTO_UDP, .poke = { { AT_L3, 1, false, 0, 0x40 } },
	  .want = SG_PKT_ERR_IPV4_IHL },
	{ "IHL 15 past the buffer", 4, IPPROTO_TCP, .poke = { { AT_L3, 1, false, 0, 0x4f } },
	  .want = SG_PKT_ERR_IPV4_TRUNC },
	{ "IHL 15 past the total length", 4, IPPROTO_UDP, .pad = 40,
	  .poke = { { AT_L3, 1, false, 0, 0x4f } }, .want = SG_PKT_ERR_IPV4_TOTLEN_SHORT },
	{ "total length 19", 4, IPPROTO_TCP, .poke = { { AT_L3, 2, false, 2, 19 } },
	  .want = SG_PKT_ERR_IPV4_TOTLEN_SHORT },
	{ "total length 0", 4, IPPROTO_TCP, .poke = { { AT_L3, 2, false, 2, 0 } },
	  .want = SG_PKT_ERR_IPV4_TOTLEN_SHORT },
	{ "total length below IHL x 4", 4, IPPROTO_TCP, .v4_opt = 8,
	  .poke = { { AT_L3, 2, false, 2, 27 } }, .want = SG_PKT_ERR_IPV4_TOTLEN_SHORT },
	{ "total length 1 past the buffer", 4, IPPROTO_TCP, .payload_len = 10,
	  .poke = { { AT_L3, 2, true, 2, 1 } }, .want = SG_PKT_ERR_IPV4_TOTLEN_LONG },
	{ "total length 65535", 4, IPPROTO_UDP, .poke = { { AT_L3, 2, false, 2, 65535 } },
	  .want = SG_PKT_ERR_IPV4_TOTLEN_LONG },
	{ "IPv4 payload cut", 4, IPPROTO_UDP, .payload_len = 30, .cut_at = AT_L4,
	  .cut_off = 20, .want = SG_PKT_ERR_IPV4_TOTLEN_LONG },
	{ "IPv4 MF with 9 bytes", 4, IPPROTO_UDP, .payload_len = 100, .frag = true,
	  .mf = true, .frag_len = 9, .want = SG_PKT_ERR_FRAG_LEN },
	{ "IPv4 fragment past 65535", 4, IPPROTO_UDP, .payload_len = 100, .frag = true,
	  .frag_off = 48, .poke = { { AT_L3, 2, false, 6, 0x1fff } },
	  .want = SG_PKT_ERR_FRAG_OVERSIZE },
	{ "IPv4 fragment ending at 65535", 4, IPPROTO_UDP, .payload_len = 100, .frag = true,
	  .frag_off = 48, .frag_len = 3, .poke = { { AT_L3, 2, false, 6, 0x1ffd } },
	  .want = SG_PKT_OK },
	{ "first fragment with the whole UDP length", 4, IPPROTO_UDP, .payload_len = 16,
	  .poke = { { AT_L3, 2, false, 6, 0x2000 } }, .want = SG_PKT_ERR_UDP_LEN },
	{ "first fragment with 16 bytes of TCP", 4, IPPROTO_TCP, .payload_len = 100,
	  .frag = true, .mf = true, .frag_len = 16, .want = SG_PKT_ERR_TCP_TRUNC },
	{ "IPv6 header of 39 bytes", 6, IPPROTO_TCP, .cut_at = AT_L3, .cut_off = 39,
	  .want = SG_PKT_ERR_IPV6_TRUNC },
	{ "IPv6 ethertype, version 4", 6, IPPROTO_TCP,
	  .poke = { { AT_L3, 1, false, 0, 0x46 } }, .want = SG_PKT_ERR_IPV6_VERSION },
	{ "IPv6 payload length 1 past the buffer", 6, IPPROTO_UDP, .payload_len = 7,
	  .poke = { { AT_L3, 2, true, 4, 1 } }, .want = SG_PKT_ERR_IPV6_PAYLOAD_LONG },
	{ "IPv6 payload cut", 6, IPPROTO_TCP, .payload_len = 7, .ext = "d", .cut_at = AT_L3,
	  .cut_off = 50, .want = SG_PKT_ERR_IPV6_PAYLOAD_LONG },
	{ "extension header longer than the packet", 6, IPPROTO_UDP, .payload_len = 10,
	  .ext = "d", .poke = { { AT_EXT0, 1, false, 1, 10 } },
	  .want = SG_PKT_ERR_IPV6_EXT_TRUNC },
	{ "extension header past the payload length", 6, IPPROTO_TCP, .ext = "hd",
	  .pad = 20, .poke = { { AT_L3, 2, false, 4, 12 } },
	  .want = SG_PKT_ERR_IPV6_EXT_TRUNC },
	{ "extension header chain running into UDP", 6, IPPROTO_UDP, .ext = "d",
	  .poke = { { AT_EXT0, 1, false, 0, IPPROTO_DSTOPTS } },
	  .want = SG_PKT_ERR_IPV6_EXT_TRUNC },
	{ "routing header of 4 bytes", 6, 59, .ext = "r", .poke = { { AT_L3, 2, false, 4, 4 } },
	  .want = SG_PKT_ERR_IPV6_EXT_TRUNC },
	{ "nine extension headers", 6, IPPROTO_TCP, .ext = "hdddddddd",
	  .want = SG_PKT_ERR_IPV6_EXT_MANY },
	{ "nine routing headers", 6, IPPROTO_UDP, .ext = "rrrrrrrrr",
	  .want = SG_PKT_ERR_IPV6_EXT_MANY },
	{ "hop-by-hop second", 6, IPPROTO_TCP, .ext = "dh", .want = SG_PKT_ERR_IPV6_HBH_POS },
	{ "IPv6 MF with 12 bytes", 6, IPPROTO_UDP, .payload_len = 100, .ext = "f",
	  .frag = true, .mf = true, .frag_len = 12, .want = SG_PKT_ERR_FRAG_LEN },
	{ "IPv6 fragment past 65535", 6, IPPROTO_UDP, .payload_len = 100, .ext = "f",
	  .frag = true, .frag_off = 64, .frag_len = 16,
	  .poke = { { AT_EXT0, 2, false, 2, 0xfff8 } }, .want = SG_PKT_ERR_FRAG_OVERSIZE },
	{ "IPv6 first fragment with 16 bytes of TCP", 6, IPPROTO_TCP, .payload_len = 100,
	  .ext = "f", .frag = true, .mf = true, .frag_len = 16, .want = SG_PKT_ERR_TCP_TRUNC },
	{ "TCP data offset 4", 4, IPPROTO_TCP, .poke = { { AT_L4, 1, false, 12, 0x40 } },
	  .want = SG_PKT_ERR_TCP_DOFF_SHORT },
	{ "TCP data offset 0", 4, IPPROTO_TCP, .payload_len = 30,
	  .poke = { { AT_L4, 1, false, 12, 0x00 } }, .want = SG_PKT_ERR_TCP_DOFF_SHORT },
	{ "TCP data offset past the end", 4, IPPROTO_TCP, .payload_len = 10,
	  .poke = { { AT_L4, 1, false, 12, 0xf0 } }, .want = SG_PKT_ERR_TCP_DOFF_LONG },
	{ "TCP data offset past the total length", 4, IPPROTO_TCP, .payload_len = 12,
	  .pad = 40, .poke = { { AT_L4, 1, false, 12, 0x90 } },
	  .want = SG_PKT_ERR_TCP_DOFF_LONG },
	{ "TCP cut by the total length", 4, IPPROTO_TCP, .pad = 10,
	  .poke = { { AT_L3, 2, true, 2, -1 } }, .want = SG_PKT_ERR_TCP_TRUNC },
	{ "IPv6 TCP data offset 3 behind extension headers", 6, IPPROTO_TCP, .ext = "hd",
	  .poke = { { AT_L4, 1, false, 12, 0x30 } }, .want = SG_PKT_ERR_TCP_DOFF_SHORT },
	{ "IPv6 TCP of 19 bytes", 6, IPPROTO_TCP, .pad = 10,
	  .poke = { { AT_L3, 2, true, 4, -1 } }, .want = SG_PKT_ERR_TCP_TRUNC },
	{ "UDP length 1 more than IP says", 4, IPPROTO_UDP, .payload_len = 10,
	  .poke = { { AT_L4, 2, true, 4, 1 } }, .want = SG_PKT_ERR_UDP_LEN },
	{ "UDP length 1 less than IP says", 4, IPPROTO_UDP, .payload_len = 10,
	  .poke = { { AT_L4, 2, true, 4, -1 } }, .want = SG_PKT_ERR_UDP_LEN },
	{ "UDP length 0", 4, IPPROTO_UDP, .payload_len = 10,
	  .poke = { { AT_L4, 2, false, 4, 0 } }, .want = SG_PKT_ERR_UDP_LEN },
	{ "IPv6 UDP length lies behind an extension header", 6, IPPROTO_UDP,
	  .payload_len = 10, .ext = "d", .poke = { { AT_L4, 2, true, 4, 2 } },
	  .want = SG_PKT_ERR_UDP_LEN },
	{ "UDP cut by the total length", 4, IPPROTO_UDP, .pad = 10,
	  .poke = { { AT_L3, 2, true, 2, -1 } }, .want = SG_PKT_ERR_UDP_TRUNC },
	{ "IPv6 UDP checksum 0", 6, IPPROTO_UDP, .payload_len = 4,
	  .poke = { { AT_L4, 2, false, 6, 0 } }, .want = SG_PKT_ERR_UDP6_ZERO_CSUM },
	{ "SCTP of 11 bytes", 4, IPPROTO_SCTP, .pad = 10,
	  .poke = { { AT_L3, 2, true, 2, -1 } }, .want = SG_PKT_ERR_SCTP_TRUNC },
	{ "IPv6 SCTP of 8 bytes", 6, IPPROTO_SCTP, .pad = 10,
	  .poke = { { AT_L3, 2, true, 4, -4 } }, .want = SG_PKT_ERR_SCTP_TRUNC },
	{ "ICMP of 7 bytes", 4, IPPROTO_ICMP, .pad = 10,
	  .poke = { { AT_L3, 2, true, 2, -1 } }, .want = SG_PKT_ERR_ICMP_TRUNC },
	{ "ICMPv6 of 7 bytes", 6, IPPROTO_ICMPV6, .pad = 10,
	  .poke = { { AT_L3, 2, true, 4, -1 } }, .want = SG_PKT_ERR_ICMPV6_TRUNC },
	/* Not errors: classified and accepted. */
	{ "IPv4 protocol 253", 4, 253, .payload_len = 3, .want = SG_PKT_OK },
	{ "IPv6 next header 253 behind options", 6, 253, .ext = "hd", .want = SG_PKT_OK },
	{ "a TCP first fragment holding its header", 4, IPPROTO_TCP, .payload_len = 100,
	  .frag = true, .mf = true, .frag_len = 24, .want = SG_PKT_OK },
};

static uint32_t
poke_base(uint8_t at, const struct tb_out *o)
{
	switch (at) {
	case AT_L3:
		return o->l3_off;
	case AT_L4:
		return o->l4_off;
	case AT_EXT0:
		return o->l3_off + 40;
	default:
		return 0;
	}
}

static void
apply_poke(uint8_t *b, uint32_t base, const struct poke *p)
{
	uint8_t *q = b + base + p->off;

	if (p->size == 1)
		*q = (uint8_t)(p->add ? *q + p->val : p->val);
	else
		put16(q, (uint16_t)(p->add ? get16(q) + p->val : p->val));
}

static struct tb_pkt
bad_spec(uint8_t family, uint8_t proto, uint16_t payload_len, const char *ext)
{
	struct tb_pkt s;

	if (family == TB_ARP) {
		s = (struct tb_pkt){ .family = TB_ARP };
		return s;
	}
	s = family == 4 ? mk4(proto, payload_len) : mk6(proto, payload_len);
	for (const char *e = ext; e != NULL && *e; e++)
		mk_ext(&s, *e == 'h' ? IPPROTO_HOPOPTS : *e == 'd' ? IPPROTO_DSTOPTS :
			   *e == 'r' ? IPPROTO_ROUTING : IPPROTO_FRAGMENT, 0);
	return s;
}

static void
test_parse_malformed(void **state)
{
	(void)state;
	for (unsigned int i = 0; i < SG_ARRAY_SIZE(bad_cases); i++) {
		const struct bad_case *c = &bad_cases[i];
		struct tb_pkt s = bad_spec(c->family, c->proto, c->payload_len, c->ext);
		struct sg_pkt_info pi;
		struct tb_out o;
		enum sg_pkt_reason r;
		uint32_t len;
		uint8_t *b;

		s.v4_opt = c->v4_opt;
		s.vlan = c->vlan;
		s.frag = c->frag;
		s.mf = c->mf;
		s.frag_off = c->frag_off;
		s.frag_len = c->frag_len;
		s.pad = c->pad;
		len = tb_build(&s, pktbuf, &o);
		for (unsigned int k = 0; k < SG_ARRAY_SIZE(c->poke) && c->poke[k].size; k++)
			apply_poke(pktbuf, poke_base(c->poke[k].at, &o), &c->poke[k]);
		if (c->cut_at != AT_NONE)
			len = poke_base(c->cut_at, &o) + (uint32_t)c->cut_off;
		b = dup_exact(pktbuf, len);
		r = sg_pkt_parse(b, len, &pi);
		if (r != c->want)
			fail_msg("\"%s\": reason %s, want %s", c->name, sg_pkt_reason_name(r),
				 sg_pkt_reason_name(c->want));
		/* The inline fast path refuses each for the same reason. */
		r = sg_pkt_parse_fast(b, len, &pi);
		if (r != c->want)
			fail_msg("\"%s\": fast parse: reason %s, want %s", c->name,
				 sg_pkt_reason_name(r), sg_pkt_reason_name(c->want));
		free(b);
	}
}

/* Facts about particular valid packets that the table above cannot show. */
static void
test_parse_details(void **state)
{
	struct sg_pkt_info pi;
	struct tb_out o;
	struct tb_pkt s;
	uint32_t len;

	(void)state;
	/* The datagram ends where IP says, not where the frame does. */
	s = mk4(IPPROTO_UDP, 3);
	s.pad = 15;
	len = tb_build(&s, pktbuf, &o);
	assert_int_equal(sg_pkt_parse(pktbuf, len, &pi), SG_PKT_OK);
	assert_int_equal(pi.ip_end, 14 + 20 + 8 + 3);
	assert_int_equal(len, pi.ip_end + 15);

	/* IPv4 fragment fields: offset in bytes, id, MF, DF. */
	s = mk4(IPPROTO_UDP, 200);
	s.frag = true;
	s.mf = true;
	s.frag_off = 8 * 3;
	s.frag_len = 64;
	s.ipid = 0xbeef;
	len = tb_build(&s, pktbuf, &o);
	assert_int_equal(sg_pkt_parse(pktbuf, len, &pi), SG_PKT_OK);
	assert_int_equal(pi.frag_off, 24);
	assert_int_equal(pi.frag_id, 0xbeef);
	assert_int_equal(pi.flags & (SG_PKT_F_FRAG | SG_PKT_F_MF | SG_PKT_F_DF | SG_PKT_F_L4),
			 SG_PKT_F_FRAG | SG_PKT_F_MF | SG_PKT_F_DF);
	assert_int_equal(pi.l4_proto, IPPROTO_UDP);
	assert_int_equal(pi.sport, 0);

	/* An IPv4 packet with DF and no fragmentation is no fragment. */
	s = mk4(IPPROTO_TCP, 0);
	len = tb_build(&s, pktbuf, &o);
	assert_int_equal(sg_pkt_parse(pktbuf, len, &pi), SG_PKT_OK);
	assert_int_equal(pi.flags, SG_PKT_F_DF | SG_PKT_F_L4);
	assert_int_equal(ntohs(pi.sport), 40000);
	assert_int_equal(ntohs(pi.dport), 80);

	/* IPv6 fragment id is 32 bits, and the L4 protocol is the fragment header's next. */
	s = mk6(IPPROTO_TCP, 300);
	mk_ext(&s, IPPROTO_HOPOPTS, 0);
	mk_ext(&s, IPPROTO_FRAGMENT, 0);
	s.frag = true;
	s.frag_off = 128;
	s.frag_id = 0xfedcba98;
	len = tb_build(&s, pktbuf, &o);
	assert_int_equal(sg_pkt_parse(pktbuf, len, &pi), SG_PKT_OK);
	assert_int_equal(pi.frag_id, 0xfedcba98);
	assert_int_equal(pi.frag_off, 128);
	assert_int_equal(pi.l4_proto, IPPROTO_TCP);
	assert_int_equal(pi.l4_off, 14 + 40 + 8 + 8);
	assert_false(pi.flags & SG_PKT_F_L4);

	/* Echo: the identifier is the request's source port and the reply's destination. */
	s = mk6(IPPROTO_ICMPV6, 4);
	s.icmp_id = 0x1234;
	len = tb_build(&s, pktbuf, &o);
	assert_int_equal(sg_pkt_parse(pktbuf, len, &pi), SG_PKT_OK);
	assert_int_equal(ntohs(pi.sport), 0x1234);
	assert_int_equal(pi.dport, 0);
	assert_int_equal(pi.icmp_type, 128);
	s.icmp_type = 129;
	len = tb_build(&s, pktbuf, &o);
	assert_int_equal(sg_pkt_parse(pktbuf, len, &pi), SG_PKT_OK);
	assert_int_equal(pi.sport, 0);
	assert_int_equal(ntohs(pi.dport), 0x1234);
	assert_true(pi.flags & SG_PKT_F_ECHO_REPLY);
}

/* ------------------------------------------------------------------------ */
/* The packet quoted in an ICMP error. */

/* The reason the first k bytes of s (an IP datagram) quoted in an ICMP error get. */
static enum sg_pkt_reason
inner_trunc_reason(const struct tb_pkt *s, uint32_t k)
{
	uint32_t off;

	if (s->family == 4) {
		off = 20u + s->v4_opt;
		if (k < off)
			return SG_PKT_ERR_INNER_IP_TRUNC;
		if (s->frag && s->frag_off)
			return SG_PKT_OK;
	} else {
		if (k < 40)
			return SG_PKT_ERR_INNER_IP_TRUNC;
		off = 40;
		for (unsigned int i = 0; i < s->n_ext; i++) {
			if (k - off < tb_ext_bytes(s, i))
				return SG_PKT_ERR_INNER_EXT_TRUNC;
			off += tb_ext_bytes(s, i);
			if (s->ext[i] == IPPROTO_FRAGMENT && s->frag && s->frag_off)
				return SG_PKT_OK;
		}
	}
	if (tb_l4_parsable(s, s->proto) && k - off < 8)
		return SG_PKT_ERR_INNER_L4_TRUNC;
	return SG_PKT_OK;
}

static void
inner_expect(const struct tb_pkt *s, const struct tb_out *o, uint32_t qstart, uint32_t k,
	     struct sg_pkt_icmp_inner *in)
{
	memset(in, 0, sizeof(*in));
	in->l3_off = qstart;
	in->l4_off = qstart + o->l4_off;
	in->end = qstart + k;
	in->l3 = s->family == 4 ? SG_PKT_L3_IPV4 : SG_PKT_L3_IPV6;
	tb_expect_l3l4(s, o, &in->flags, &in->sport, &in->dport, &in->l4_proto);
	if (!(in->flags & SG_PKT_F_L4))
		return;
	switch (s->proto) {
	case IPPROTO_TCP:
		if (k - o->l4_off >= 18)
			in->flags |= SG_PKT_F_L4_CSUM;
		break;
	case IPPROTO_SCTP:
		/* Only a whole packet's CRC32c can be recomputed. */
		if (k == o->len && !(in->flags & SG_PKT_F_FRAG) && k - o->l4_off >= 12)
			in->flags |= SG_PKT_F_L4_CSUM;
		break;
	default:
		in->flags |= SG_PKT_F_L4_CSUM;
		break;
	}
}

static void
in_check(const struct sg_pkt_icmp_inner *got, const struct sg_pkt_icmp_inner *want,
	 const char *what, uint32_t n)
{
	if (got->l3_off == want->l3_off && got->l4_off == want->l4_off &&
	    got->end == want->end && got->flags == want->flags && got->sport == want->sport &&
	    got->dport == want->dport && got->l3 == want->l3 && got->l4_proto == want->l4_proto)
		return;
	print_message("got : l3_off %u l4_off %u end %u flags 0x%04x sport %u dport %u l3 %u "
		      "l4_proto %u\n", got->l3_off, got->l4_off, got->end, got->flags,
		      ntohs(got->sport), ntohs(got->dport), got->l3, got->l4_proto);
	print_message("want: l3_off %u l4_off %u end %u flags 0x%04x sport %u dport %u l3 %u "
		      "l4_proto %u\n", want->l3_off, want->l4_off, want->end, want->flags,
		      ntohs(want->sport), ntohs(want->dport), want->l3, want->l4_proto);
	fail_msg("%s (%u): quoted packet info differs", what, n);
}

#define MAX_INNER 40

/* Datagrams to quote: every protocol, options, extension headers, fragments. */
static unsigned int
inner_set(struct tb_pkt *v)
{
	unsigned int n = 0;
	struct tb_pkt s;

	v[n++] = mk4(IPPROTO_TCP, 30);
	s = mk4(IPPROTO_TCP, 10);
	s.v4_opt = 12;
	s.tcp_opt = 8;
	v[n++] = s;
	v[n++] = mk4(IPPROTO_UDP, 20);
	s = mk4(IPPROTO_UDP, 20);
	s.udp_zero = true;
	v[n++] = s;
	v[n++] = mk4(IPPROTO_SCTP, 16);
	v[n++] = mk4(IPPROTO_ICMP, 20);
	s = mk4(IPPROTO_ICMP, 20);
	s.icmp_type = 0;
	v[n++] = s;
	v[n++] = mk4(47, 12);
	v[n++] = mk4(IPPROTO_ICMPV6, 12);
	s = mk4(IPPROTO_UDP, 100);
	s.frag = true;
	s.mf = true;
	s.frag_len = 48;
	v[n++] = s;
	s = mk4(IPPROTO_SCTP, 100);
	s.frag = true;
	s.mf = true;
	s.frag_len = 48;
	v[n++] = s;
	s = mk4(IPPROTO_TCP, 100);
	s.frag = true;
	s.frag_off = 56;
	v[n++] = s;

	v[n++] = mk6(IPPROTO_TCP, 30);
	v[n++] = mk6(IPPROTO_UDP, 17);
	v[n++] = mk6(IPPROTO_SCTP, 16);
	v[n++] = mk6(IPPROTO_ICMPV6, 12);
	s = mk6(IPPROTO_ICMPV6, 12);
	s.icmp_type = 129;
	v[n++] = s;
	v[n++] = mk6(IPPROTO_ICMP, 12);
	s = mk6(IPPROTO_TCP, 10);
	mk_ext(&s, IPPROTO_HOPOPTS, 0);
	mk_ext(&s, IPPROTO_ROUTING, 1);
	mk_ext(&s, IPPROTO_DSTOPTS, 2);
	v[n++] = s;
	s = mk6(IPPROTO_UDP, 10);
	mk_ext(&s, IPPROTO_ROUTING, 0);
	s.rh_left = 1;
	v[n++] = s;
	s = mk6(IPPROTO_UDP, 100);
	mk_ext(&s, IPPROTO_FRAGMENT, 0);
	s.frag = true;
	s.mf = true;
	s.frag_len = 56;
	v[n++] = s;
	s = mk6(IPPROTO_SCTP, 100);
	mk_ext(&s, IPPROTO_DSTOPTS, 0);
	mk_ext(&s, IPPROTO_FRAGMENT, 0);
	s.frag = true;
	s.mf = true;
	s.frag_len = 56;
	v[n++] = s;
	s = mk6(IPPROTO_TCP, 100);
	mk_ext(&s, IPPROTO_FRAGMENT, 0);
	mk_ext(&s, IPPROTO_DSTOPTS, 0);
	s.frag = true;
	s.frag_off = 64;
	v[n++] = s;
	s = mk6(IPPROTO_TCP, 4);
	mk_ext(&s, IPPROTO_FRAGMENT, 0);	/* atomic */
	v[n++] = s;
	s = mk6(59, 0);
	mk_ext(&s, IPPROTO_DSTOPTS, 1);
	v[n++] = s;
	assert_true(n <= MAX_INNER);
	return n;
}

/* Build the ICMP error about s quoting k bytes into an exact buffer; *pi from its parse. */
static uint8_t *
quote_build(const struct tb_pkt *s, unsigned int variant, uint32_t k, struct sg_pkt_info *pi,
	    uint32_t *len)
{
	static const uint8_t types4[] = { 3, 11, 12 };
	static const uint8_t types6[] = { 1, 2, 3, 4 };
	uint8_t type = s->family == 4 ? types4[variant % 3] : types6[variant % 4];
	struct tb_pkt e = mk_icmp_err(s, type, 0, 0);
	struct tb_out o;
	uint8_t *b;

	assert_true(k <= e.payload_len);
	e.payload_len = k;
	e.vlan = variant & 1;
	*len = tb_build(&e, pktbuf, &o);
	b = dup_exact(pktbuf, *len);
	reason_check(sg_pkt_parse(b, *len, pi), SG_PKT_OK, "ICMP error", k);
	assert_true(pi->flags & SG_PKT_F_ICMP_ERROR);
	return b;
}

static void
test_icmp_inner_truncations(void **state)
{
	struct tb_pkt v[MAX_INNER];
	unsigned int n = inner_set(v);
	uint32_t oks = 0, cuts = 0;

	(void)state;
	for (unsigned int i = 0; i < n; i++) {
		struct tb_pkt s = v[i];
		struct tb_out o;
		uint32_t full;

		s.no_eth = true;
		full = tb_build(&s, pktbuf2, &o);
		for (uint32_t k = 0; k <= full; k++) {
			struct sg_pkt_icmp_inner in, want;
			struct sg_pkt_info pi;
			enum sg_pkt_reason r = inner_trunc_reason(&s, k);
			uint32_t len;
			uint8_t *b = quote_build(&s, i + k, k, &pi, &len);

			reason_check(sg_pkt_parse_icmp_error(b, &pi, &in), r, "quote",
				     i * 10000 + k);
			if (r == SG_PKT_OK) {
				inner_expect(&s, &o, pi.l4_off + 8, k, &want);
				in_check(&in, &want, "quote", i * 10000 + k);
				oks++;
			}
			free(b);
			cuts++;
		}
	}
	print_message("quotes: %u cuts, %u accepted\n", cuts, oks);
	assert_true(oks > 500);
	assert_true(cuts - oks > 800);
}

/* Quotes that lie, and facts about particular quotes. */
struct bad_quote {
	const char *name;
	uint8_t family;
	uint8_t proto;
	uint16_t payload_len;
	const char *ext;
	uint8_t type, code;	/* of the ICMP message; 0 with family 4: an echo reply */
	uint16_t cut;		/* quote this much, 0: all */
	bool frag;
	uint16_t frag_off;
	struct poke poke[2];	/* AT_Q3, AT_Q4 or AT_ICMP */
	enum sg_pkt_reason want;
	uint16_t must_have, must_not;	/* flags, when SG_PKT_OK */
	uint16_t want_end;	/* quoted bytes kept, when not 0 */
};

static const struct bad_quote bad_quotes[] = {
	{ "echo reply is no error", 4, IPPROTO_TCP, .type = 0,
	  .want = SG_PKT_ERR_ICMP_NOT_ERROR },
	{ "redirect is not translated", 4, IPPROTO_TCP, .type = 5,
	  .want = SG_PKT_ERR_ICMP_NOT_ERROR },
	{ "ICMPv6 echo request is no error", 6, IPPROTO_TCP, .type = 128,
	  .want = SG_PKT_ERR_ICMP_NOT_ERROR },
	{ "19 bytes of IPv4 quoted", 4, IPPROTO_TCP, .type = 3, .cut = 19,
	  .want = SG_PKT_ERR_INNER_IP_TRUNC },
	{ "39 bytes of IPv6 quoted", 6, IPPROTO_TCP, .type = 1, .cut = 39,
	  .want = SG_PKT_ERR_INNER_IP_TRUNC },
	{ "IPv6 quoted in ICMPv4", 4, IPPROTO_TCP, .type = 11,
	  .poke = { { AT_Q3, 1, false, 0, 0x60 } }, .want = SG_PKT_ERR_INNER_VERSION },
	{ "IPv4 quoted in ICMPv6", 6, IPPROTO_TCP, .type = 3,
	  .poke = { { AT_Q3, 1, false, 0, 0x45 } }, .want = SG_PKT_ERR_INNER_VERSION },
	{ "quoted IHL 4", 4, IPPROTO_UDP, .type = 3,
	  .poke = { { AT_Q3, 1, false, 0, 0x44 } }, .want = SG_PKT_ERR_INNER_IHL },
	{ "quoted IHL 6, 22 bytes quoted", 4, IPPROTO_UDP, .type = 3, .cut = 22,
	  .poke = { { AT_Q3, 1, false, 0, 0x46 } }, .want = SG_PKT_ERR_INNER_IP_TRUNC },
	{ "quoted total length below the header", 4, IPPROTO_UDP, .type = 3,
	  .poke = { { AT_Q3, 2, false, 2, 10 } }, .want = SG_PKT_ERR_INNER_TOTLEN },
	{ "quoted total length leaving 4 bytes of TCP", 4, IPPROTO_TCP, .type = 3,
	  .poke = { { AT_Q3, 2, false, 2, 24 } }, .want = SG_PKT_ERR_INNER_L4_TRUNC },
	{ "7 bytes of TCP quoted", 4, IPPROTO_TCP, .type = 11, .cut = 27,
	  .want = SG_PKT_ERR_INNER_L4_TRUNC },
	{ "7 bytes of UDP quoted", 6, IPPROTO_UDP, .type = 1, .cut = 47,
	  .want = SG_PKT_ERR_INNER_L4_TRUNC },
	{ "7 bytes of echo quoted", 6, IPPROTO_ICMPV6, .type = 3, .cut = 47,
	  .want = SG_PKT_ERR_INNER_L4_TRUNC },
	{ "quoted extension header longer than the quote", 6, IPPROTO_TCP, .ext = "d",
	  .type = 1, .poke = { { AT_Q3, 1, false, 41, 20 } },
	  .want = SG_PKT_ERR_INNER_EXT_TRUNC },
	{ "quoted extension header cut", 6, IPPROTO_TCP, .ext = "hd", .type = 1, .cut = 52,
	  .want = SG_PKT_ERR_INNER_EXT_TRUNC },
	{ "quoted payload length cutting an extension header", 6, IPPROTO_TCP, .ext = "hd",
	  .type = 2, .poke = { { AT_Q3, 2, false, 4, 12 } },
	  .want = SG_PKT_ERR_INNER_EXT_TRUNC },
	{ "nine quoted extension headers", 6, IPPROTO_TCP, .ext = "hdddddddd", .type = 4,
	  .want = SG_PKT_ERR_INNER_EXT_MANY },
	{ "RFC 4884 length shorter than the IPv4 header", 4, IPPROTO_TCP, .type = 3,
	  .payload_len = 100, .poke = { { AT_ICMP, 1, false, 5, 4 } },
	  .want = SG_PKT_ERR_INNER_IP_TRUNC },
	{ "RFC 4884 length cutting TCP", 4, IPPROTO_TCP, .type = 11, .payload_len = 100,
	  .poke = { { AT_ICMP, 1, false, 5, 6 } }, .want = SG_PKT_ERR_INNER_L4_TRUNC },
	{ "ICMPv6 RFC 4884 length cutting UDP", 6, IPPROTO_UDP, .type = 1,
	  .payload_len = 100, .poke = { { AT_ICMP, 1, false, 4, 5 } },
	  .want = SG_PKT_ERR_INNER_L4_TRUNC },
	/* Accepted. */
	{ "RFC 4884 length before an extension structure", 4, IPPROTO_UDP, .type = 3,
	  .payload_len = 100, .poke = { { AT_ICMP, 1, false, 5, 8 } }, .want = SG_PKT_OK,
	  .must_have = SG_PKT_F_L4 | SG_PKT_F_L4_CSUM, .want_end = 32 },
	{ "ICMPv6 RFC 4884 length", 6, IPPROTO_TCP, .type = 3, .payload_len = 100,
	  .poke = { { AT_ICMP, 1, false, 4, 8 } }, .want = SG_PKT_OK,
	  .must_have = SG_PKT_F_L4 | SG_PKT_F_L4_CSUM, .want_end = 64 },
	{ "packet too big: the MTU is no RFC 4884 length", 6, IPPROTO_TCP, .type = 2,
	  .payload_len = 100, .poke = { { AT_ICMP, 1, false, 4, 1 } }, .want = SG_PKT_OK,
	  .must_have = SG_PKT_F_L4 | SG_PKT_F_L4_CSUM, .want_end = 160 },
	{ "fragmentation needed: the MTU is no RFC 4884 length", 4, IPPROTO_TCP, .type = 3,
	  .code = 4, .payload_len = 100, .poke = { { AT_ICMP, 2, false, 6, 1500 } },
	  .want = SG_PKT_OK, .must_have = SG_PKT_F_L4 | SG_PKT_F_L4_CSUM, .want_end = 140 },
	{ "8 bytes of TCP: ports, no checksum", 4, IPPROTO_TCP, .type = 3, .cut = 28,
	  .want = SG_PKT_OK, .must_have = SG_PKT_F_L4, .must_not = SG_PKT_F_L4_CSUM },
	{ "quoted non-first fragment", 4, IPPROTO_UDP, .payload_len = 100, .type = 11,
	  .frag = true, .frag_off = 48, .cut = 20, .want = SG_PKT_OK,
	  .must_have = SG_PKT_F_FRAG, .must_not = SG_PKT_F_L4 },
	{ "quoted GRE", 4, 47, .payload_len = 20, .type = 3, .cut = 20, .want = SG_PKT_OK,
	  .must_not = SG_PKT_F_L4 },
	{ "quoted SCTP cut: no CRC to recompute", 4, IPPROTO_SCTP, .payload_len = 20,
	  .type = 3, .cut = 40, .want = SG_PKT_OK, .must_have = SG_PKT_F_L4,
	  .must_not = SG_PKT_F_L4_CSUM },
	{ "quoted SCTP whole", 6, IPPROTO_SCTP, .payload_len = 20, .type = 1,
	  .want = SG_PKT_OK, .must_have = SG_PKT_F_L4 | SG_PKT_F_L4_CSUM },
	{ "quoted SCTP whose length leaves 8 bytes", 4, IPPROTO_SCTP, .payload_len = 20,
	  .type = 3, .poke = { { AT_Q3, 2, false, 2, 28 } }, .want = SG_PKT_OK,
	  .must_have = SG_PKT_F_L4, .must_not = SG_PKT_F_L4_CSUM, .want_end = 28 },
	{ "quoted IPv6 SCTP whose length leaves 8 bytes", 6, IPPROTO_SCTP, .payload_len = 20,
	  .type = 1, .poke = { { AT_Q3, 2, false, 4, 8 } }, .want = SG_PKT_OK,
	  .must_have = SG_PKT_F_L4, .must_not = SG_PKT_F_L4_CSUM, .want_end = 48 },
};

static void
test_icmp_inner_malformed(void **state)
{
	(void)state;
	for (unsigned int i = 0; i < SG_ARRAY_SIZE(bad_quotes); i++) {
		const struct bad_quote *c = &bad_quotes[i];
		struct tb_pkt s = bad_spec(c->family, c->proto, c->payload_len, c->ext), e;
		static uint8_t q[QUOTE_MAX];
		struct sg_pkt_icmp_inner in;
		struct sg_pkt_info pi;
		struct tb_out o, oq;
		enum sg_pkt_reason r;
		uint32_t len, qlen;
		uint8_t *b;

		s.no_eth = true;
		s.frag = c->frag;
		s.frag_off = c->frag_off;
		qlen = tb_build(&s, q, &oq);
		for (unsigned int k = 0; k < SG_ARRAY_SIZE(c->poke) && c->poke[k].size; k++)
			if (c->poke[k].at != AT_ICMP)
				apply_poke(q, c->poke[k].at == AT_Q4 ? oq.l4_off : 0, &c->poke[k]);
		e = mk_icmp_err(&s, c->type, c->code, 0);
		e.payload = q;
		e.payload_len = c->cut ? c->cut : qlen;
		len = tb_build(&e, pktbuf, &o);
		for (unsigned int k = 0; k < SG_ARRAY_SIZE(c->poke) && c->poke[k].size; k++)
			if (c->poke[k].at == AT_ICMP)
				apply_poke(pktbuf, o.l4_off, &c->poke[k]);
		b = dup_exact(pktbuf, len);
		assert_int_equal(sg_pkt_parse(b, len, &pi), SG_PKT_OK);
		r = sg_pkt_parse_icmp_error(b, &pi, &in);
		if (r != c->want)
			fail_msg("\"%s\": reason %s, want %s", c->name, sg_pkt_reason_name(r),
				 sg_pkt_reason_name(c->want));
		if (r == SG_PKT_OK) {
			if ((in.flags & c->must_have) != c->must_have || (in.flags & c->must_not))
				fail_msg("\"%s\": flags 0x%04x", c->name, in.flags);
			if (c->want_end && in.end - in.l3_off != c->want_end)
				fail_msg("\"%s\": %u bytes quoted, want %u", c->name,
					 in.end - in.l3_off, c->want_end);
			assert_int_equal(in.l3_off, pi.l4_off + 8);
		}
		free(b);
	}
}

/* ------------------------------------------------------------------------ */
/* Random packets and translations. */

static uint8_t rand_payload[4][1600];

/* Size of the L4 header tb_build() writes for s. */
static uint32_t
tb_l4_hdr(const struct tb_pkt *s)
{
	switch (s->proto) {
	case IPPROTO_TCP:
		return 20u + s->tcp_opt;
	case IPPROTO_SCTP:
		return 12;
	default:
		return 8;
	}
}

/* Make s a random first or non-first fragment, if its L4 segment allows. */
static void
rand_frag(struct tb_pkt *s)
{
	uint32_t hdr = tb_l4_hdr(s), seg = hdr + s->payload_len;
	uint32_t lo = (hdr + 7) / 8, hi = (seg - 1) / 8;	/* in 8-byte units */

	if (lo == 0)
		lo = 1;
	if (lo > hi)
		return;	/* too short to fragment with the header in the first piece */
	if (s->family == 6)
		mk_ext(s, IPPROTO_FRAGMENT, 0);
	s->frag = true;
	s->frag_id = rng32();
	if (rng_chance(50)) {
		s->mf = true;
		s->frag_len = 8 * (lo + rng_below(hi - lo + 1));
	} else {
		uint32_t off = lo + rng_below(hi - lo + 1), rest = seg - 8 * off;

		s->frag_off = (uint16_t)(8 * off);
		if (rest >= 16 && rng_chance(50)) {
			s->mf = true;
			s->frag_len = 8 * (1 + rng_below(rest / 8 - 1));
		}
	}
}

/*
 * A random TCP, UDP, SCTP or echo packet of family 4 or 6, with random
 * options, extension headers, VLAN tag, padding and (if frags) fragments.
 */
static struct tb_pkt
rand_spec(int family, bool frags, uint8_t *payload)
{
	static const uint8_t l4[3] = { IPPROTO_TCP, IPPROTO_UDP, IPPROTO_SCTP };
	unsigned int pick = rng_below(5);
	uint8_t proto = pick < 3 ? l4[pick] : family == 4 ? IPPROTO_ICMP : IPPROTO_ICMPV6;
	uint32_t plen = rng_chance(25) ? rng_below(8) : rng_below(700);
	struct tb_pkt s = family == 4 ? mk4(proto, plen) : mk6(proto, plen);

	rng_bytes(payload, plen);
	s.payload = payload;
	if (pick == 4)
		s.icmp_type = family == 4 ? 0 : 129;
	s.icmp_id = (uint16_t)rng32();
	s.icmp_seq = (uint16_t)rng32();
	s.sport = (uint16_t)rng32();
	s.dport = (uint16_t)rng32();
	addr_rand(&s.src, family);
	addr_rand(&s.dst, family);
	s.ttl = (uint8_t)(1 + rng_below(255));
	s.ipid = (uint16_t)rng32();
	s.df = rng_chance(50);
	s.tos = (uint8_t)rng32();
	s.vlan = rng_chance(30);
	s.tci = (uint16_t)rng32();
	s.pad = rng_chance(20) ? rng_below(30) : 0;
	if (proto == IPPROTO_TCP)
		s.tcp_opt = (uint8_t)(4 * rng_below(11));
	if (family == 4 && rng_chance(25))
		s.v4_opt = (uint8_t)(4 * (1 + rng_below(10)));
	if (proto == IPPROTO_UDP && family == 4 && rng_chance(25))
		s.udp_zero = true;
	if (family == 6 && rng_chance(35)) {
		if (rng_chance(50))
			mk_ext(&s, IPPROTO_HOPOPTS, (uint8_t)rng_below(3));
		for (uint32_t n = rng_below(4); n > 0; n--)
			mk_ext(&s, rng_chance(50) ? IPPROTO_DSTOPTS : IPPROTO_ROUTING,
			       (uint8_t)rng_below(3));
		if (rng_chance(10))
			s.rh_left = (uint8_t)(1 + rng_below(3));
	}
	if (frags && rng_chance(20))
		rand_frag(&s);
	return s;
}

/* s as a translation by n leaves it; l4: the L4 header is in the packet. */
static void
tb_apply_nat(struct tb_pkt *s, const struct sg_pkt_nat *n, bool l4)
{
	uint16_t f;

	if (n->flags & SG_PKT_NAT_SRC)
		s->src = n->src;
	if (n->flags & SG_PKT_NAT_DST)
		s->dst = n->dst;
	if (!l4 || !tb_l4_parsable(s, s->proto))
		return;
	switch (s->proto) {
	case IPPROTO_TCP:
	case IPPROTO_UDP:
	case IPPROTO_SCTP:
		if (n->flags & SG_PKT_NAT_SRC)
			s->sport = ntohs(n->sport);
		if (n->flags & SG_PKT_NAT_DST)
			s->dport = ntohs(n->dport);
		break;
	default:
		f = tb_icmp_flags(s);
		if ((f & SG_PKT_F_ECHO_REQ) && (n->flags & SG_PKT_NAT_SRC))
			s->icmp_id = ntohs(n->sport);
		else if ((f & SG_PKT_F_ECHO_REPLY) && (n->flags & SG_PKT_NAT_DST))
			s->icmp_id = ntohs(n->dport);
		break;
	}
}

/* A random translation for s; now and then one that changes nothing. */
static void
nat_rand(struct sg_pkt_nat *n, const struct tb_pkt *s)
{
	memset(n, 0, sizeof(*n));
	n->flags = (uint8_t)(1 + rng_below(3));
	if (rng_chance(5)) {
		n->src = s->src;
		n->dst = s->dst;
		n->sport = htons(s->proto == IPPROTO_TCP || s->proto == IPPROTO_UDP ||
				 s->proto == IPPROTO_SCTP ? s->sport : s->icmp_id);
		n->dport = htons(s->proto == IPPROTO_TCP || s->proto == IPPROTO_UDP ||
				 s->proto == IPPROTO_SCTP ? s->dport : s->icmp_id);
		return;
	}
	addr_rand(&n->src, s->family);
	addr_rand(&n->dst, s->family);
	n->sport = htons((uint16_t)rng32());
	n->dport = htons((uint16_t)rng32());
	if (rng_chance(10))
		n->sport = s->family == 4 ? 0 : 0xffff;	/* extreme values */
}

/* A 16-bit field as it sits in memory (network order), as the NAT calls take ports. */
static uint16_t
get16n(const uint8_t *p)
{
	uint16_t v;

	memcpy(&v, p, 2);
	return v;
}

/* The TTL decremented with the header checksum updated on its own (RFC 1624 eqn. 3). */
static void
ttl_down(uint8_t *ip)
{
	uint16_t old = get16n(ip + 8), c = get16n(ip + 10);

	ip[8]--;
	c = sg_csum_update16(c, old, get16n(ip + 8));
	memcpy(ip + 10, &c, 2);
}

/*
 * The inline fast paths against the general code: sg_pkt_parse_fast() must
 * give sg_pkt_parse()'s verdict and info for any bytes, and
 * sg_pkt_nat4_fast() and sg_pkt_nat6_fast() with the checksum change from
 * sg_pkt_nat_csum() the bytes sg_pkt_nat() writes with the TTL or hop
 * limit then decremented on its own, on random packets of every kind,
 * mutated ones and cut ones.
 */
static void
test_fast_paths(void **state)
{
	uint32_t fast_parsed = 0, fast_nat = 0, fast_nat6 = 0;

	(void)state;
	rng_seed(0x5eed000f);
	for (uint32_t i = 0; i < 40000; i++) {
		struct tb_pkt s = rand_spec(i % 4 ? 4 : 6, true, rand_payload[0]);
		struct sg_pkt_info full, fast;
		struct tb_out o;
		uint32_t len = tb_build(&s, pktbuf, &o);
		enum sg_pkt_reason rf, rq;
		uint8_t *b;

		if (i % 3 == 0) {	/* mutate a header byte, or cut */
			uint32_t at = rng_below(len < 64 ? len : 64);

			pktbuf[at] = (uint8_t)rng32();
			if (rng_chance(20))
				len = rng_below(len + 1);
		}
		b = dup_exact(pktbuf, len);
		memset(&full, 0xa5, sizeof(full));
		memset(&fast, 0x5a, sizeof(fast));
		rf = sg_pkt_parse(b, len, &full);
		rq = sg_pkt_parse_fast(b, len, &fast);
		assert_int_equal(rq, rf);
		if (rf == SG_PKT_OK) {
			pi_check(&fast, &full, "fast parse", i);
			fast_parsed += sg_pkt_nat4_fast_ok(&full) || sg_pkt_nat6_fast_ok(&full);
		}
		if (rf == SG_PKT_OK && (sg_pkt_nat4_fast_ok(&full) || sg_pkt_nat6_fast_ok(&full))) {
			bool v6 = full.l3 == SG_PKT_L3_IPV6;
			uint32_t alen = v6 ? 16 : 4, a_off = v6 ? 8 : 12, ttl_off = v6 ? 7 : 8;
			struct sg_pkt_nat nat;
			uint8_t *c, *ttl = &b[full.l3_off + ttl_off];
			const uint8_t *ip, *l4;
			struct sg_pkt_nat_csum csum;

			/* The fast paths forward: the caller leaves them no TTL of 0 or 1. */
			if (*ttl <= 1)
				*ttl = 64;
			c = dup_exact(b, len);
			ip = c + full.l3_off;
			l4 = c + full.l4_off;
			nat_rand(&nat, &s);
			nat.flags = SG_PKT_NAT_SRC | SG_PKT_NAT_DST;
			csum = sg_pkt_nat_csum(alen, ip + a_off, ip + a_off + alen, get16n(l4),
					       get16n(l4 + 2), nat.src.a8, nat.dst.a8, nat.sport,
					       nat.dport);
			assert_int_equal(sg_pkt_nat(b, &full, &nat), 0);
			if (v6) {
				(*ttl)--;	/* no header checksum */
				sg_pkt_nat6_fast(c, &full, nat.src.a8, nat.sport, nat.dst.a8,
						 nat.dport, csum);
			} else {
				ttl_down(b + full.l3_off);
				sg_pkt_nat4_fast(c, &full, nat.src.a8, nat.sport, nat.dst.a8,
						 nat.dport, csum);
			}
			expect_same_bytes(c, b, len, "fast translation and hop", i);
			free(c);
			fast_nat++;
			fast_nat6 += v6;
		}
		free(b);
	}
	print_message("fast paths: %u packets parsed and translated both ways, %u of them IPv6\n",
		      fast_nat, fast_nat6);
	assert_true(fast_parsed > 5000 && fast_nat == fast_parsed && fast_nat6 > 1000);
}

/* ------------------------------------------------------------------------ */
/* Random and mutated bytes: nothing may read or write out of bounds. */

static void
check_invariants(const uint8_t *b, uint32_t len, const struct sg_pkt_info *pi)
{
	uint32_t l3 = pi->l3_off, l4 = pi->l4_off, avail = pi->ip_end - pi->l4_off;

	assert_true(l3 == 14 || l3 == 18);
	assert_true(l3 <= l4 && l4 <= pi->ip_end && pi->ip_end <= len);
	switch (pi->l3) {
	case SG_PKT_L3_IPV4:
		assert_int_equal(pi->ip_end - l3, get16(b + l3 + 2));
		assert_int_equal(l4 - l3, (b[l3] & 0xf) * 4);
		break;
	case SG_PKT_L3_IPV6:
		assert_int_equal(pi->ip_end - l3, 40 + get16(b + l3 + 4));
		assert_true(l4 - l3 >= 40);
		break;
	case SG_PKT_L3_ARP:
		assert_int_equal(pi->ip_end - l3, 28);
		break;
	default:
		assert_int_equal(pi->l3, SG_PKT_L3_OTHER);
		assert_false(pi->flags & SG_PKT_F_L4);
		break;
	}
	if ((pi->flags & SG_PKT_F_FRAG) && pi->frag_off != 0)
		assert_false(pi->flags & SG_PKT_F_L4);
	if (!(pi->flags & SG_PKT_F_L4))
		return;
	switch (pi->l4_proto) {
	case IPPROTO_TCP:
		assert_true(avail >= 20);
		assert_true((b[l4 + 12] >> 4) * 4u >= 20 && (b[l4 + 12] >> 4) * 4u <= avail);
		break;
	case IPPROTO_UDP:
		assert_true(avail >= 8);
		if (pi->flags & SG_PKT_F_FRAG)
			assert_true(get16(b + l4 + 4) > avail);
		else
			assert_int_equal(get16(b + l4 + 4), avail);
		if (pi->l3 == SG_PKT_L3_IPV6)
			assert_int_not_equal(get16(b + l4 + 6), 0);
		break;
	case IPPROTO_SCTP:
		assert_true(avail >= 12);
		break;
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6:
		assert_true(avail >= 8);
		assert_int_equal(pi->icmp_type, b[l4]);
		break;
	default:
		fail_msg("L4 flag on protocol %u", pi->l4_proto);
	}
}

static void
check_inner_invariants(const struct sg_pkt_info *pi, const struct sg_pkt_icmp_inner *in)
{
	uint32_t avail = in->end - in->l4_off;

	assert_int_equal(in->l3, pi->l3);
	assert_int_equal(in->l3_off, pi->l4_off + 8);
	assert_true(in->l3_off + (in->l3 == SG_PKT_L3_IPV4 ? 20 : 40) <= in->l4_off);
	assert_true(in->l4_off <= in->end && in->end <= pi->ip_end);
	if (in->flags & SG_PKT_F_L4)
		assert_true(avail >= 8);
	if (!(in->flags & SG_PKT_F_L4_CSUM))
		return;
	assert_true(in->flags & SG_PKT_F_L4);
	assert_true(avail >= (in->l4_proto == IPPROTO_TCP ? 18u :
			      in->l4_proto == IPPROTO_SCTP ? 12u : 8u));
}

static bool
same_shape(const struct sg_pkt_info *a, const struct sg_pkt_info *b)
{
	return a->l3_off == b->l3_off && a->l4_off == b->l4_off && a->ip_end == b->ip_end &&
	       a->flags == b->flags && a->l3 == b->l3 && a->l4_proto == b->l4_proto &&
	       a->frag_off == b->frag_off && a->icmp_type == b->icmp_type;
}

/*
 * What a worker would do with bytes: parse, and if accepted, compute the
 * checksum, translate, parse again, and likewise for a quoted packet; all on
 * an exact-size copy. Returns the parse verdict.
 */
static enum sg_pkt_reason
exercise(const uint8_t *src, uint32_t len, enum sg_pkt_reason *inner)
{
	uint8_t *b = dup_exact(src, len);
	struct sg_pkt_info pi, pi2;
	struct sg_pkt_icmp_inner in;
	struct sg_pkt_nat nat, onat;
	enum sg_pkt_reason r = sg_pkt_parse(b, len, &pi), ri;
	int ret;

	*inner = SG_PKT_REASON_COUNT;	/* no quote parsed */
	assert_true((unsigned int)r < SG_PKT_REASON_COUNT);
	if (r != SG_PKT_OK)
		goto out;
	check_invariants(b, len, &pi);
	(void)sg_pkt_l4_cksum(b, &pi);
	memset(&nat, 0, sizeof(nat));
	nat.flags = (uint8_t)(1 + rng_below(3));
	rng_bytes(nat.src.a8, 16);
	rng_bytes(nat.dst.a8, 16);
	nat.sport = (uint16_t)rng32();
	nat.dport = (uint16_t)rng32();
	ret = sg_pkt_nat(b, &pi, &nat);
	if (pi.l3 != SG_PKT_L3_IPV4 && pi.l3 != SG_PKT_L3_IPV6) {
		assert_int_equal(ret, -EINVAL);
		goto out;
	}
	assert_true(ret == 0 || ret == -ENOTSUP);
	assert_int_equal(sg_pkt_parse(b, len, &pi2), SG_PKT_OK);
	assert_true(same_shape(&pi, &pi2));
	if (!(pi.flags & SG_PKT_F_ICMP_ERROR))
		goto out;
	ri = sg_pkt_parse_icmp_error(b, &pi, &in);
	*inner = ri;
	assert_true((unsigned int)ri < SG_PKT_REASON_COUNT);
	if (ri != SG_PKT_OK)
		goto out;
	check_inner_invariants(&pi, &in);
	onat = nat;
	onat.flags = (uint8_t)rng_below(4);
	ret = sg_pkt_icmp_error_nat(b, &pi, &in, rng_chance(80) ? &onat : NULL,
				    rng_chance(80) ? &nat : NULL);
	assert_true(ret == 0 || ret == -ENOTSUP);
	assert_int_equal(sg_pkt_parse(b, len, &pi2), SG_PKT_OK);
	assert_true(same_shape(&pi, &pi2));
out:
	free(b);
	return r;
}

/* Random bytes behind a plausible Ethernet, IP and L4 start. */
static uint32_t
gen_structured(uint8_t *b)
{
	static const uint16_t ets[] = { 0x0800, 0x0800, 0x86dd, 0x86dd, 0x0806, 0x88cc };
	static const uint8_t nhs[] = { IPPROTO_TCP,	IPPROTO_UDP,	 IPPROTO_SCTP,
				       IPPROTO_ICMP,	IPPROTO_ICMPV6,	 IPPROTO_HOPOPTS,
				       IPPROTO_ROUTING, IPPROTO_DSTOPTS, IPPROTO_FRAGMENT,
				       59 };
	uint32_t len = 14 + rng_below(180), p = 12, hl, tot, l4;
	uint16_t et = ets[rng_below(SG_ARRAY_SIZE(ets))];
	uint8_t nh;

	rng_bytes(b, len);
	if (rng_chance(25)) {
		put16(b + 12, 0x8100);
		p = 16;
		if (len < 18)
			return len;
	}
	put16(b + p, et);
	p += 2;
	if (et == 0x0806 && len >= p + 28) {
		put16(b + p, 1);
		put16(b + p + 2, 0x0800);
		b[p + 4] = 6;
		b[p + 5] = 4;
		return len;
	}
	nh = nhs[rng_below(SG_ARRAY_SIZE(nhs))];
	if (et == 0x0800 && len >= p + 20) {
		hl = rng_chance(80) ? 20 : 4 * rng_below(16);
		b[p] = (uint8_t)(0x40 | hl / 4);
		tot = len - p - (rng_chance(70) ? 0 : rng_below(8));
		put16(b + p + 2, (uint16_t)(rng_chance(90) ? tot : rng32()));
		if (rng_chance(70))
			put16(b + p + 6, rng_chance(50) ? 0x4000 : 0);
		b[p + 9] = nh;
		l4 = p + (hl >= 20 ? hl : 20);
	} else if (et == 0x86dd && len >= p + 40) {
		b[p] = (uint8_t)(0x60 | (b[p] & 0xf));
		tot = len - p - 40 - (rng_chance(70) ? 0 : rng_below(8));
		put16(b + p + 4, (uint16_t)(rng_chance(90) ? tot : rng32()));
		b[p + 6] = nh;
		l4 = p + 40;
		/* A chain of small extension headers. */
		while (nh != IPPROTO_TCP && nh != IPPROTO_UDP && nh != IPPROTO_SCTP &&
		       nh != IPPROTO_ICMPV6 && nh != 59 && nh != IPPROTO_ICMP &&
		       l4 + 8 <= len) {
			nh = nhs[rng_below(SG_ARRAY_SIZE(nhs))];
			b[l4] = nh;
			b[l4 + 1] = (uint8_t)(rng_chance(80) ? 0 : rng_below(4));
			if (rng_chance(50))
				put16(b + l4 + 2, (uint16_t)(rng_below(8) << 3));
			l4 += 8 * (1u + b[l4 + 1]);
		}
	} else {
		return len;
	}
	if (l4 + 20 > len)
		return len;
	b[l4 + 12] = (uint8_t)(rng_below(16) << 4);	/* TCP data offset */
	if (rng_chance(50))
		put16(b + l4 + 4, (uint16_t)(len - l4));	/* UDP length */
	if (rng_chance(50)) {
		/* ICMP(v6) error quoting something that looks like IP */
		static const uint8_t types[] = { 3, 11, 12, 1, 2, 3, 4, 0, 8, 128, 129 };

		b[l4] = types[rng_below(SG_ARRAY_SIZE(types))];
		b[l4 + 8] = et == 0x0800 ? (uint8_t)(0x40 | (5 + rng_below(3))) : 0x60;
		if (rng_chance(50))
			b[l4 + 4] = b[l4 + 5] = 0;
		if (l4 + 8 + 40 <= len) {
			put16(b + l4 + 8 + (et == 0x0800 ? 2 : 4),
			      (uint16_t)rng_below(et == 0x0800 ? 64 : 32));
			b[l4 + 8 + (et == 0x0800 ? 9 : 6)] = nhs[rng_below(SG_ARRAY_SIZE(nhs))];
		}
	}
	return len;
}

static void
test_parse_random_bytes(void **state)
{
	uint32_t ok = 0, n = 0, quotes = 0;
	enum sg_pkt_reason ri;

	(void)state;
	rng_seed(0x5eed0001);
	/* Uniform noise: almost all refused, nothing read out of bounds. */
	for (int i = 0; i < 50000; i++, n++) {
		uint32_t len = rng_below(160);

		rng_bytes(pktbuf, len);
		if (rng_chance(50))
			put16(pktbuf + 12, rng_chance(50) ? 0x0800 : 0x86dd);
		ok += exercise(pktbuf, len, &ri) == SG_PKT_OK;
	}
	/* Noise behind plausible headers: reaches every layer. */
	for (int i = 0; i < 150000; i++, n++) {
		ok += exercise(pktbuf, gen_structured(pktbuf), &ri) == SG_PKT_OK;
		quotes += ri == SG_PKT_OK;
	}
	print_message("random bytes: %u of %u accepted, %u quotes\n", ok, n, quotes);
	assert_true(ok > 1000);
	assert_true(quotes > 100);
}

/* Valid packets with a few bytes changed, maybe cut: lies of every kind. */
static void
test_parse_mutations(void **state)
{
	struct tb_pkt v[MAX_VALID];
	unsigned int nv = valid_set(v);
	uint32_t ok = 0, n = 0;
	enum sg_pkt_reason ri;

	(void)state;
	rng_seed(0x5eed0002);
	for (int i = 0; i < 150000; i++, n++) {
		struct tb_pkt s;
		struct tb_out o;
		uint32_t len, m = 1 + rng_below(4);

		if (rng_chance(50))
			s = v[rng_below(nv)];
		else
			s = rand_spec(rng_chance(50) ? 4 : 6, true, rand_payload[0]);
		len = tb_build(&s, pktbuf, &o);
		for (uint32_t k = 0; k < m; k++) {
			uint32_t at = rng_chance(70) && len > 80 ? rng_below(80) : rng_below(len);

			if (rng_chance(50))
				pktbuf[at] = (uint8_t)rng32();
			else
				pktbuf[at] = (uint8_t)(pktbuf[at] + (rng_chance(50) ? 1 : -1));
		}
		if (rng_chance(20))
			len = rng_below(len + 1);
		ok += exercise(pktbuf, len, &ri) == SG_PKT_OK;
	}
	print_message("mutations: %u of %u accepted\n", ok, n);
	assert_true(ok > 5000);
}

/* ICMP errors whose quote has a few bytes changed or is cut anywhere. */
static void
test_icmp_inner_mutations(void **state)
{
	struct tb_pkt v[MAX_INNER];
	unsigned int nv = inner_set(v);
	static uint8_t q[QUOTE_MAX];
	uint32_t ok = 0, bad = 0;
	enum sg_pkt_reason ri;

	(void)state;
	rng_seed(0x5eed0003);
	for (int i = 0; i < 150000; i++) {
		struct tb_pkt s, e;
		struct tb_out o;
		uint32_t qlen, len, m = rng_below(4);
		static const uint8_t types4[] = { 3, 11, 12 };
		static const uint8_t types6[] = { 1, 2, 3, 4 };

		if (rng_chance(50))
			s = v[rng_below(nv)];
		else
			s = rand_spec(rng_chance(50) ? 4 : 6, true, rand_payload[1]);
		s.no_eth = true;
		s.vlan = false;
		s.pad = 0;
		qlen = tb_build(&s, q, &o);
		if (qlen > 600)
			qlen = 600;
		for (uint32_t k = 0; k < m; k++) {
			/* Mostly the length, protocol and header-length fields. */
			static const uint8_t hot[] = { 0, 2, 3, 4, 5, 6, 9, 40, 41, 48, 49 };
			uint32_t at = rng_chance(60) ? hot[rng_below(SG_ARRAY_SIZE(hot))] :
						       rng_below(64);

			if (at < qlen)
				q[at] = rng_chance(50) ? (uint8_t)rng32() :
							 (uint8_t)(q[at] + rng_below(3) - 1);
		}
		e = mk_icmp_err(&s, s.family == 4 ? types4[rng_below(3)] : types6[rng_below(4)],
				0, 0);
		e.payload = q;
		e.payload_len = rng_chance(50) ? qlen : rng_below(qlen + 1);
		len = tb_build(&e, pktbuf, &o);
		if (rng_chance(20))
			pktbuf[o.l4_off + (s.family == 4 ? 5 : 4)] = (uint8_t)rng_below(20);
		assert_int_equal(exercise(pktbuf, len, &ri), SG_PKT_OK);
		ok += ri == SG_PKT_OK;
		bad += ri != SG_PKT_OK;
	}
	print_message("quote mutations: %u accepted, %u refused\n", ok, bad);
	assert_true(ok > 5000);
	assert_true(bad > 5000);
}

/* ------------------------------------------------------------------------ */
/* NAT: this packet in, this packet out. */

/* Parse an exact copy of the packet s builds; the copy is the caller's to free. */
static uint8_t *
build_parsed(const struct tb_pkt *s, struct sg_pkt_info *pi, uint32_t *len)
{
	struct tb_out o;
	uint8_t *b;

	*len = tb_build(s, pktbuf, &o);
	b = dup_exact(pktbuf, *len);
	assert_int_equal(sg_pkt_parse(b, *len, pi), SG_PKT_OK);
	return b;
}

/* nat on s must fail with err and leave the packet as it was. */
static void
nat_refused(const struct tb_pkt *s, const struct sg_pkt_nat *nat, int err)
{
	struct sg_pkt_info pi;
	uint32_t len;
	uint8_t *b = build_parsed(s, &pi, &len);

	assert_int_equal(sg_pkt_nat(b, &pi, nat), err);
	expect_same_bytes(b, pktbuf, len, "refused translation", 0);
	free(b);
}

/* nat on s must give the packet want builds. */
static void
nat_gives(const struct tb_pkt *s, const struct sg_pkt_nat *nat, const struct tb_pkt *want,
	  const char *what)
{
	struct sg_pkt_info pi;
	struct tb_out o;
	uint32_t len;
	uint8_t *b = build_parsed(s, &pi, &len);

	assert_int_equal(sg_pkt_nat(b, &pi, nat), 0);
	assert_int_equal(tb_build(want, pktbuf2, &o), len);
	expect_same_bytes(b, pktbuf2, len, what, 0);
	free(b);
}

static void
test_nat_invalid(void **state)
{
	struct sg_pkt_nat nat = { .flags = SG_PKT_NAT_DST, .dport = htons(8080) };
	struct tb_pkt s, e;

	(void)state;
	addr_set4(&nat.dst, 203, 0, 113, 9);
	s = (struct tb_pkt){ .family = TB_ARP };
	nat_refused(&s, &nat, -EINVAL);
	s = (struct tb_pkt){ .family = TB_OTHER, .ethertype = 0x88cc, .payload_len = 40 };
	nat_refused(&s, &nat, -EINVAL);
	s = mk4(IPPROTO_TCP, 10);
	nat.flags = 0x04;
	nat_refused(&s, &nat, -EINVAL);
	nat.flags = 0xff;
	nat_refused(&s, &nat, -EINVAL);

	/* The L4 pseudo-header holds the routing header's final destination. */
	nat.flags = SG_PKT_NAT_DST;
	addr_set6(&nat.dst, 0x99);
	s = mk6(IPPROTO_UDP, 10);
	mk_ext(&s, IPPROTO_ROUTING, 2);
	s.rh_left = 1;
	nat_refused(&s, &nat, -ENOTSUP);
	s.rh_left = 0;	/* segments left 0: an ordinary packet */
	e = s;
	tb_apply_nat(&e, &nat, true);
	nat_gives(&s, &nat, &e, "routing header, no segment left");

	/* An SCTP first fragment: the CRC32c covers bytes not in this buffer. */
	s = mk4(IPPROTO_SCTP, 100);
	s.frag = true;
	s.mf = true;
	s.frag_len = 56;
	addr_set4(&nat.dst, 203, 0, 113, 9);
	nat_refused(&s, &nat, -ENOTSUP);
	s = mk6(IPPROTO_SCTP, 100);
	mk_ext(&s, IPPROTO_FRAGMENT, 0);
	s.frag = true;
	s.mf = true;
	s.frag_len = 56;
	addr_set6(&nat.dst, 0x99);
	nat_refused(&s, &nat, -ENOTSUP);
	/* Its other fragments carry no header: their addresses alone change. */
	s.frag_off = 56;
	s.frag_len = 0;
	s.mf = false;
	e = s;
	tb_apply_nat(&e, &nat, false);
	nat_gives(&s, &nat, &e, "SCTP last fragment");

	/* An IPv6 atomic fragment is a whole packet (RFC 6946 §4): all of it is translated. */
	nat.flags = SG_PKT_NAT_SRC | SG_PKT_NAT_DST;
	nat.sport = htons(1024);
	addr_set6(&nat.src, 0x98);
	s = mk6(IPPROTO_TCP, 33);
	mk_ext(&s, IPPROTO_DSTOPTS, 1);
	mk_ext(&s, IPPROTO_FRAGMENT, 0);
	e = s;
	tb_apply_nat(&e, &nat, true);
	nat_gives(&s, &nat, &e, "atomic fragment");

	/* No flags: nothing to do, nothing done. */
	nat.flags = 0;
	s = mk4(IPPROTO_UDP, 10);
	nat_gives(&s, &nat, &s, "no flags");
}

static void
test_nat_random(void **state)
{
	uint32_t done = 0, refused = 0, frags = 0, zero = 0;
	uint32_t by_proto[256] = { 0 };

	(void)state;
	rng_seed(0x5eed0004);
	for (uint32_t i = 0; i < 20000; i++) {
		int family = i & 1 ? 6 : 4;
		struct tb_pkt s = rand_spec(family, true, rand_payload[0]), e;
		struct sg_pkt_info pi, want;
		struct sg_pkt_nat nat;
		struct tb_out o, eo;
		uint32_t len = tb_build(&s, pktbuf, &o), elen;
		uint8_t *b = dup_exact(pktbuf, len);
		int ret;

		reason_check(sg_pkt_parse(b, len, &pi), SG_PKT_OK, "random packet", i);
		tb_expect(&s, &o, &want);
		pi_check(&pi, &want, "random packet", i);
		nat_rand(&nat, &s);
		ret = sg_pkt_nat(b, &pi, &nat);
		if ((pi.flags & SG_PKT_F_IPV6_RH) ||
		    (s.proto == IPPROTO_SCTP && (pi.flags & SG_PKT_F_FRAG) && o.l4_here)) {
			assert_int_equal(ret, -ENOTSUP);
			expect_same_bytes(b, pktbuf, len, "refused translation", i);
			refused++;
			free(b);
			continue;
		}
		assert_int_equal(ret, 0);
		e = s;
		tb_apply_nat(&e, &nat, o.l4_here);
		elen = tb_build(&e, pktbuf2, &eo);
		assert_int_equal(elen, len);
		expect_same_bytes(b, pktbuf2, len, "translation", i);
		/* And the library's own full computations agree. */
		if (pi.l3 == SG_PKT_L3_IPV4)
			assert_int_equal(ntohs(sg_pkt_ipv4_cksum(b + pi.l3_off)),
					 get16(b + pi.l3_off + 10));
		if ((pi.flags & SG_PKT_F_L4) && !(pi.flags & SG_PKT_F_FRAG) &&
		    s.proto == IPPROTO_TCP)
			assert_int_equal(ntohs(sg_pkt_l4_cksum(b, &pi)), get16(b + pi.l4_off + 16));
		if ((pi.flags & SG_PKT_F_L4) && !(pi.flags & SG_PKT_F_FRAG) &&
		    s.proto == IPPROTO_SCTP)
			assert_int_equal(sg_pkt_sctp_crc(b + pi.l4_off, pi.ip_end - pi.l4_off),
					 ref_sctp_crc(b + pi.l4_off, pi.ip_end - pi.l4_off));
		done++;
		frags += (pi.flags & SG_PKT_F_FRAG) != 0;
		zero += s.udp_zero;
		by_proto[s.proto]++;
		free(b);
	}
	print_message("translated %u (%u fragments, %u UDP without checksum), refused %u\n",
		      done, frags, zero, refused);
	assert_true(done > 18000 && frags > 1000 && zero > 400 && refused > 100);
	assert_true(by_proto[IPPROTO_TCP] > 3000 && by_proto[IPPROTO_UDP] > 3000 &&
		    by_proto[IPPROTO_SCTP] > 3000 && by_proto[IPPROTO_ICMP] > 1000 &&
		    by_proto[IPPROTO_ICMPV6] > 1000);
}

/*
 * UDP whose checksum computes to 0 is sent as 0xffff (RFC 768, RFC 8200
 * §8.1): a translation into that case, and out of it; and an IPv4 UDP
 * checksum of 0 (none) stays 0.
 */
static void
test_nat_udp_zero_checksum(void **state)
{
	uint8_t payload[64];

	(void)state;
	rng_seed(0x5eed0005);
	for (uint32_t i = 0; i < 400; i++) {
		int family = i & 1 ? 6 : 4;
		struct tb_pkt s = family == 4 ? mk4(IPPROTO_UDP, 2 + rng_below(60)) :
						mk6(IPPROTO_UDP, 2 + rng_below(60));
		struct sg_pkt_nat nat, back;
		struct tb_pkt e;
		struct tb_out o;
		uint16_t c0;

		rng_bytes(payload, sizeof(payload));
		s.payload = payload;
		s.vlan = rng_chance(50);
		s.sport = (uint16_t)rng32();
		s.dport = (uint16_t)rng32();
		addr_rand(&s.src, family);
		addr_rand(&s.dst, family);
		nat_rand(&nat, &s);
		e = s;
		tb_apply_nat(&e, &nat, true);
		/*
		 * The sum is linear in the first payload word: with it 0 the
		 * checksum is c0, so with it c0 the sum is 0xffff and the
		 * checksum 0.
		 */
		payload[0] = payload[1] = 0;
		tb_build(&e, pktbuf, &o);
		c0 = get16(pktbuf + o.l4_off + 6);
		put16(payload, c0);
		tb_build(&e, pktbuf, &o);
		assert_int_equal(get16(pktbuf + o.l4_off + 6), 0xffff);
		nat_gives(&s, &nat, &e, "UDP checksum computed 0");
		/* Back from 0xffff to an ordinary value. */
		back = nat;
		back.src = s.src;
		back.dst = s.dst;
		back.sport = htons(s.sport);
		back.dport = htons(s.dport);
		nat_gives(&e, &back, &s, "UDP checksum from 0xffff");
		if (family == 4) {
			s.udp_zero = e.udp_zero = true;
			nat_gives(&s, &nat, &e, "IPv4 UDP without checksum");
		}
	}
}

/* ------------------------------------------------------------------------ */
/* ICMP error translation. */

/* Check the ICMP error at b: every checksum against a full recomputation. */
static void
icmp_error_checksums(const uint8_t *b, const struct sg_pkt_info *pi,
		     const struct sg_pkt_icmp_inner *in)
{
	const uint8_t *ip = b + pi->l3_off, *q = b + in->l3_off;
	uint32_t ilen = pi->ip_end - pi->l4_off;
	uint64_t sum = 0;

	if (pi->l3 == SG_PKT_L3_IPV4) {
		assert_int_equal(get16(ip + 10), ref_ipv4_hdr_csum(ip));
		assert_int_equal(get16(q + 10), ref_ipv4_hdr_csum(q));
	} else {
		sum = ref_pseudo(6, ip + 8, ip + 24, IPPROTO_ICMPV6, ilen);
	}
	assert_int_equal(get16(b + pi->l4_off + 2), ref_csum_except(sum, b + pi->l4_off, ilen, 2));
}

/* A router's "fragmentation needed" about a translated flow, field by field. */
static void
test_icmp_error_scenario4(void **state)
{
	union sg_pkt_addr client, vip, snat, pod, router;
	struct sg_pkt_nat outer = { .flags = SG_PKT_NAT_DST };
	struct sg_pkt_nat inner = { .flags = SG_PKT_NAT_SRC | SG_PKT_NAT_DST };
	struct sg_pkt_icmp_inner in;
	struct sg_pkt_info pi;
	struct tb_pkt fwd, err;
	struct tb_out o;
	uint32_t len, q;
	uint8_t *b;

	(void)state;
	addr_set4(&client, 198, 51, 100, 7);
	addr_set4(&vip, 192, 0, 2, 10);
	addr_set4(&snat, 192, 0, 2, 20);
	addr_set4(&pod, 203, 0, 113, 5);
	addr_set4(&router, 203, 0, 113, 1);
	/* The gateway sent snat:61000 -> pod:8080 for client:40000 -> vip:80. */
	fwd = mk4(IPPROTO_TCP, 1400);
	fwd.src = snat;
	fwd.dst = pod;
	fwd.sport = 61000;
	fwd.dport = 8080;
	err = mk_icmp_err(&fwd, 3, 4, 576 - 28);
	err.src = router;
	err.dst = snat;
	err.icmp_seq = 1400;	/* next-hop MTU */
	len = tb_build(&err, pktbuf, &o);
	b = dup_exact(pktbuf, len);
	assert_int_equal(sg_pkt_parse(b, len, &pi), SG_PKT_OK);
	assert_int_equal(sg_pkt_parse_icmp_error(b, &pi, &in), SG_PKT_OK);
	assert_int_equal(in.flags, SG_PKT_F_DF | SG_PKT_F_L4 | SG_PKT_F_L4_CSUM);
	assert_int_equal(ntohs(in.sport), 61000);
	assert_int_equal(ntohs(in.dport), 8080);

	outer.dst = client;
	inner.src = client;
	inner.sport = htons(40000);
	inner.dst = vip;
	inner.dport = htons(80);
	assert_int_equal(sg_pkt_icmp_error_nat(b, &pi, &in, &outer, &inner), 0);

	/* Outer: to the client, still from the router. */
	assert_memory_equal(b + 14 + 12, router.a8, 4);
	assert_memory_equal(b + 14 + 16, client.a8, 4);
	assert_memory_equal(b, pktbuf, 14 + 10);	/* Ethernet, IP up to the checksum */
	/* ICMP type, code, MTU unchanged. */
	assert_int_equal(b[34], 3);
	assert_int_equal(b[35], 4);
	assert_int_equal(get16(b + 40), 1400);
	/* Quote: the client's packet to the VIP, as the client sent it. */
	q = 14 + 20 + 8;
	assert_memory_equal(b + q + 12, client.a8, 4);
	assert_memory_equal(b + q + 16, vip.a8, 4);
	assert_int_equal(get16(b + q + 20), 40000);
	assert_int_equal(get16(b + q + 22), 80);
	assert_memory_equal(b + q, pktbuf + q, 10);	/* TTL, id, flags ... */
	assert_memory_equal(b + q + 24, pktbuf + q + 24, 12);	/* seq, ack, flags */
	assert_memory_equal(b + q + 40, pktbuf + q + 40, len - q - 40);	/* data */
	icmp_error_checksums(b, &pi, &in);
	/* The quoted TCP checksum, over the whole original segment, now with client and VIP. */
	fwd.src = client;
	fwd.dst = vip;
	fwd.sport = 40000;
	fwd.dport = 80;
	fwd.no_eth = true;
	tb_build(&fwd, pktbuf2, &o);
	assert_int_equal(get16(b + q + 20 + 16), get16(pktbuf2 + 20 + 16));
	free(b);
}

/* A "packet too big" from a pod's node about a UDP flow, ICMPv6, field by field. */
static void
test_icmp_error_scenario6(void **state)
{
	struct sg_pkt_nat outer = { .flags = SG_PKT_NAT_SRC | SG_PKT_NAT_DST };
	struct sg_pkt_nat inner = { .flags = SG_PKT_NAT_SRC | SG_PKT_NAT_DST };
	union sg_pkt_addr client, vip, snat, pod;
	struct sg_pkt_icmp_inner in;
	struct sg_pkt_info pi;
	struct tb_pkt fwd, err;
	struct tb_out o;
	uint32_t len, q;
	uint8_t *b;

	(void)state;
	addr_set6(&client, 0x7);
	addr_set6(&vip, 0x10);
	addr_set6(&snat, 0x20);
	addr_set6(&pod, 0x5);
	fwd = mk6(IPPROTO_UDP, 1452);
	fwd.src = snat;
	fwd.dst = pod;
	fwd.sport = 61000;
	fwd.dport = 5353;
	err = mk_icmp_err(&fwd, 2, 0, 1280 - 48);
	err.src = pod;	/* the pod's node answers itself */
	err.dst = snat;
	err.icmp_seq = 1280;
	len = tb_build(&err, pktbuf, &o);
	b = dup_exact(pktbuf, len);
	assert_int_equal(sg_pkt_parse(b, len, &pi), SG_PKT_OK);
	assert_int_equal(sg_pkt_parse_icmp_error(b, &pi, &in), SG_PKT_OK);
	assert_int_equal(in.flags, SG_PKT_F_L4 | SG_PKT_F_L4_CSUM);
	assert_int_equal(in.end, len);

	/* The client must see the error as coming from the VIP it talked to. */
	outer.src = vip;
	outer.dst = client;
	inner.src = client;
	inner.sport = htons(40000);
	inner.dst = vip;
	inner.dport = htons(53);
	assert_int_equal(sg_pkt_icmp_error_nat(b, &pi, &in, &outer, &inner), 0);
	assert_memory_equal(b + 14 + 8, vip.a8, 16);
	assert_memory_equal(b + 14 + 24, client.a8, 16);
	assert_memory_equal(b, pktbuf, 14 + 8);
	assert_int_equal(b[54], 2);
	assert_int_equal(get16(b + 60), 1280);	/* the MTU's low half */
	q = 14 + 40 + 8;
	assert_memory_equal(b + q + 8, client.a8, 16);
	assert_memory_equal(b + q + 24, vip.a8, 16);
	assert_int_equal(get16(b + q + 40), 40000);
	assert_int_equal(get16(b + q + 42), 53);
	assert_int_equal(get16(b + q + 44), 8 + 1452);
	assert_memory_equal(b + q, pktbuf + q, 8);
	assert_memory_equal(b + q + 48, pktbuf + q + 48, len - q - 48);
	icmp_error_checksums(b, &pi, &in);
	fwd.src = client;
	fwd.dst = vip;
	fwd.sport = 40000;
	fwd.dport = 53;
	fwd.no_eth = true;
	tb_build(&fwd, pktbuf2, &o);
	assert_int_equal(get16(b + q + 46), get16(pktbuf2 + 46));
	free(b);
}

static void
test_icmp_error_nat_invalid(void **state)
{
	struct sg_pkt_nat ok = { .flags = SG_PKT_NAT_DST }, bad = { .flags = 0x10 };
	struct sg_pkt_icmp_inner in, in2;
	struct sg_pkt_info pi, udp;
	struct tb_pkt s = mk4(IPPROTO_UDP, 20), e;
	uint32_t len, elen;
	uint8_t *b, *eb;

	(void)state;
	e = mk_icmp_err(&s, 3, 3, 0);
	b = build_parsed(&e, &pi, &len);
	assert_int_equal(sg_pkt_parse_icmp_error(b, &pi, &in), SG_PKT_OK);
	eb = build_parsed(&s, &udp, &elen);
	memcpy(pktbuf2, b, len);

	assert_int_equal(sg_pkt_icmp_error_nat(eb, &udp, &in, &ok, &ok), -EINVAL);
	assert_int_equal(sg_pkt_parse_icmp_error(eb, &udp, &in2), SG_PKT_ERR_ICMP_NOT_ERROR);
	assert_int_equal(sg_pkt_icmp_error_nat(b, &pi, &in, &bad, &ok), -EINVAL);
	assert_int_equal(sg_pkt_icmp_error_nat(b, &pi, &in, &ok, &bad), -EINVAL);
	in2 = in;
	in2.l3 = SG_PKT_L3_IPV6;
	assert_int_equal(sg_pkt_icmp_error_nat(b, &pi, &in2, &ok, &ok), -EINVAL);
	in2 = in;
	in2.l3_off += 4;
	assert_int_equal(sg_pkt_icmp_error_nat(b, &pi, &in2, &ok, &ok), -EINVAL);
	in2 = in;
	in2.end = pi.ip_end + 1;
	assert_int_equal(sg_pkt_icmp_error_nat(b, &pi, &in2, &ok, &ok), -EINVAL);
	in2 = in;
	in2.l4_off = in.end + 1;
	assert_int_equal(sg_pkt_icmp_error_nat(b, &pi, &in2, &ok, &ok), -EINVAL);
	expect_same_bytes(b, pktbuf2, len, "refused ICMP translation", 0);
	/* Neither translation: nothing to do. */
	assert_int_equal(sg_pkt_icmp_error_nat(b, &pi, &in, NULL, NULL), 0);
	expect_same_bytes(b, pktbuf2, len, "empty ICMP translation", 0);
	free(b);
	free(eb);

	/* A quoted routing header with segments left. */
	s = mk6(IPPROTO_TCP, 20);
	mk_ext(&s, IPPROTO_ROUTING, 2);
	s.rh_left = 1;
	e = mk_icmp_err(&s, 1, 0, 0);
	b = build_parsed(&e, &pi, &len);
	assert_int_equal(sg_pkt_parse_icmp_error(b, &pi, &in), SG_PKT_OK);
	assert_true(in.flags & SG_PKT_F_IPV6_RH);
	assert_int_equal(sg_pkt_icmp_error_nat(b, &pi, &in, &ok, &ok), -ENOTSUP);
	expect_same_bytes(b, pktbuf, len, "refused ICMP translation", 1);
	free(b);
}

/* Random quoted packets, quote lengths and translations against rebuilt packets. */
static void
test_icmp_error_random(void **state)
{
	static const uint8_t types4[] = { 3, 11, 12 };
	static const uint8_t types6[] = { 1, 2, 3, 4 };
	static uint8_t q[QUOTE_MAX], q2[QUOTE_MAX];
	uint32_t done = 0, refused = 0, partial = 0, with_csum = 0;

	(void)state;
	rng_seed(0x5eed0006);
	for (uint32_t i = 0; i < 12000; i++) {
		int family = i & 1 ? 6 : 4;
		struct tb_pkt s = rand_spec(family, true, rand_payload[1]), s2, e, e2;
		struct sg_pkt_nat ni, no;
		struct sg_pkt_icmp_inner in, want;
		struct sg_pkt_info pi;
		struct tb_out qo, qo2, o;
		uint32_t qfull, k, len;
		bool use_in = rng_chance(90), use_out = rng_chance(90);
		uint8_t *b;
		int ret;

		s.no_eth = true;
		s.vlan = false;
		s.pad = 0;
		qfull = tb_build(&s, q, &qo);
		k = rng_chance(40) ? qfull : rng_below(qfull + 1);
		if (inner_trunc_reason(&s, k) != SG_PKT_OK)
			k = qfull;
		e = mk_icmp_err(&s, family == 4 ? types4[rng_below(3)] : types6[rng_below(4)],
				(uint8_t)rng_below(5), 0);
		e.payload = q;
		e.payload_len = k;
		e.vlan = rng_chance(30);
		addr_rand(&e.src, family);
		addr_rand(&e.dst, family);
		len = tb_build(&e, pktbuf, &o);
		b = dup_exact(pktbuf, len);
		reason_check(sg_pkt_parse(b, len, &pi), SG_PKT_OK, "ICMP error", i);
		reason_check(sg_pkt_parse_icmp_error(b, &pi, &in), SG_PKT_OK, "quote", i);
		inner_expect(&s, &qo, pi.l4_off + 8, k, &want);
		in_check(&in, &want, "quote", i);

		nat_rand(&ni, &s);
		nat_rand(&no, &e);
		ret = sg_pkt_icmp_error_nat(b, &pi, &in, use_out ? &no : NULL,
					    use_in ? &ni : NULL);
		if (in.flags & SG_PKT_F_IPV6_RH) {
			assert_int_equal(ret, -ENOTSUP);
			expect_same_bytes(b, pktbuf, len, "refused ICMP translation", i);
			refused++;
			free(b);
			continue;
		}
		assert_int_equal(ret, 0);

		/* The quote as the translated flow would have sent it ... */
		s2 = s;
		if (use_in)
			tb_apply_nat(&s2, &ni, qo.l4_here);
		tb_build(&s2, q2, &qo2);
		/* ... but for a checksum not wholly quoted, which stays as it was. */
		if ((in.flags & SG_PKT_F_L4) && !(in.flags & SG_PKT_F_L4_CSUM)) {
			uint32_t at = qo.l4_off + (s.proto == IPPROTO_TCP ? 16 : 8);
			uint32_t n = s.proto == IPPROTO_TCP ? 2 : s.proto == IPPROTO_SCTP ? 4 : 0;

			for (uint32_t j = at; j < at + n && j < k; j++)
				q2[j] = q[j];
			partial++;
		}
		with_csum += (in.flags & SG_PKT_F_L4_CSUM) != 0;
		e2 = e;
		if (use_out && (no.flags & SG_PKT_NAT_SRC))
			e2.src = no.src;
		if (use_out && (no.flags & SG_PKT_NAT_DST))
			e2.dst = no.dst;
		e2.payload = q2;
		assert_int_equal(tb_build(&e2, pktbuf2, &o), len);
		expect_same_bytes(b, pktbuf2, len, "ICMP translation", i);
		icmp_error_checksums(b, &pi, &in);
		done++;
		free(b);
	}
	print_message("translated %u (%u checksum quoted, %u not), refused %u\n", done,
		      with_csum, partial, refused);
	assert_true(done > 11000 && with_csum > 5000 && partial > 600 && refused > 60);
}

/* ------------------------------------------------------------------------ */
/* Checksum helpers against the reference. */

/* A memory-order 16-bit value (as the library takes and returns them) read big-endian. */
static uint16_t
be_of(uint16_t mem)
{
	uint8_t b[2];

	memcpy(b, &mem, 2);
	return get16(b);
}

static uint16_t
mem_of(uint16_t be)
{
	uint8_t b[2];
	uint16_t v;

	put16(b, be);
	memcpy(&v, b, 2);
	return v;
}

static void
test_csum_partial(void **state)
{
	static uint8_t buf[70000];

	(void)state;
	rng_seed(0x5eed0007);
	for (uint32_t off = 0; off < 8; off++) {
		for (uint32_t n = 0; n <= 260; n++) {
			uint16_t start = rng_chance(50) ? 0 : (uint16_t)rng32();
			uint32_t lib;

			rng_bytes(buf, 300);
			if (n % 3 == 0)
				memset(buf + off, 0xff, n);	/* every add carries */
			lib = sg_csum_partial(buf + off, n, mem_of(start));
			assert_int_equal(be_of(sg_csum_fold(lib)),
					 ref_fold(ref_sum(start, buf + off, n)));
		}
	}
	/* The longest datagram, all ones: no overflow on the way. */
	memset(buf, 0xff, sizeof(buf));
	assert_int_equal(be_of(sg_csum_fold(sg_csum_partial(buf, 65535, 0))),
			 ref_fold(ref_sum(0, buf, 65535)));
	/* Sums continue: a then b equals a followed by b (a of even length). */
	rng_bytes(buf, 2000);
	for (uint32_t split = 0; split <= 1000; split += 2)
		assert_int_equal(sg_csum_fold(sg_csum_partial(buf + split, 1001 - split,
							     sg_csum_partial(buf, split, 0))),
				 sg_csum_fold(sg_csum_partial(buf, 1001, 0)));
	assert_int_equal(sg_csum_fold(0), 0);
	assert_int_equal(sg_csum_fold(0xffff), 0xffff);
	assert_int_equal(sg_csum_fold(0x10000), 1);
	assert_int_equal(sg_csum_fold(0xffffffff), 0xffff);
	assert_int_equal(sg_csum_fold(0x1fffe), 0xffff);
}

/* A random value, often an extreme one. */
static void
rand_field(uint8_t *p, uint32_t n)
{
	switch (rng_below(5)) {
	case 0:
		memset(p, 0, n);
		break;
	case 1:
		memset(p, 0xff, n);
		break;
	default:
		rng_bytes(p, n);
		break;
	}
}

/* RFC 1624 eqn. 3 for 16-, 32- and 128-bit fields against recomputation. */
static void
test_csum_incremental(void **state)
{
	uint8_t blk[64], nw[16];

	(void)state;
	rng_seed(0x5eed0008);
	for (uint32_t i = 0; i < 30000; i++) {
		static const uint32_t widths[3] = { 2, 4, 16 };
		uint32_t w = widths[i % 3], off;
		uint16_t c, res = 0;

		/* Words of 0 and 0xffff are where one's complement goes wrong. */
		for (uint32_t k = 0; k < 48; k += 2)
			rand_field(blk + k, 2);
		memset(blk + 48, 0, 16);
		blk[60] = 1;	/* the sum never is 0 */
		put16(blk + 16, ref_csum_except(0, blk, 64, 16));
		do {
			off = 2 * rng_below((48 - w) / 2 + 1);
		} while (off < 18 && off + w > 16);	/* not over the checksum */
		if (rng_chance(10))
			memcpy(nw, blk + off, w);	/* no change */
		else
			rand_field(nw, w);
		memcpy(&c, blk + 16, 2);
		switch (w) {
		case 2: {
			uint16_t o16, n16;

			memcpy(&o16, blk + off, 2);
			memcpy(&n16, nw, 2);
			res = sg_csum_update16(c, o16, n16);
			break;
		}
		case 4:
			res = sg_csum_update32(c, blk + off, nw);
			break;
		default:
			res = sg_csum_update128(c, blk + off, nw);
			break;
		}
		memcpy(blk + off, nw, w);
		if (be_of(res) != ref_csum_except(0, blk, 64, 16))
			fail_msg("iteration %u: %u-bit update at %u gives 0x%04x, want 0x%04x", i,
				 w * 8, off, be_of(res), ref_csum_except(0, blk, 64, 16));
	}
}

/* The full computations the library offers, on random headers. */
static void
test_csum_full(void **state)
{
	uint8_t ip[60];

	(void)state;
	rng_seed(0x5eed0009);
	for (uint32_t i = 0; i < 5000; i++) {
		uint32_t ihl = 5 + rng_below(11);

		rng_bytes(ip, sizeof(ip));
		ip[0] = (uint8_t)(0x40 | ihl);
		assert_int_equal(be_of(sg_pkt_ipv4_cksum(ip)), ref_ipv4_hdr_csum(ip));
	}
	/* L4 checksums of random packets (the valid set covers the other cases). */
	for (uint32_t i = 0; i < 2000; i++) {
		struct tb_pkt s = rand_spec(i & 1 ? 6 : 4, false, rand_payload[2]);
		struct sg_pkt_info pi;
		uint32_t len;
		uint8_t *b = build_parsed(&s, &pi, &len);
		uint16_t got = be_of(sg_pkt_l4_cksum(b, &pi));

		switch (s.proto) {
		case IPPROTO_TCP:
			assert_int_equal(got, get16(b + pi.l4_off + 16));
			break;
		case IPPROTO_UDP:
			if (!s.udp_zero)
				assert_int_equal(got, get16(b + pi.l4_off + 6));
			assert_int_not_equal(got, 0);
			break;
		case IPPROTO_SCTP:
			assert_int_equal(got, 0);	/* not a one's-complement sum */
			break;
		default:
			assert_int_equal(got, get16(b + pi.l4_off + 2));
			break;
		}
		free(b);
	}
}

/* ------------------------------------------------------------------------ */
/* CRC32c and SCTP. */

static void
test_crc32c_vectors(void **state)
{
	/* RFC 3720 B.4 (the CRC as transmitted, least significant byte first). */
	static const uint8_t iscsi_read[48] = {
		0x01, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00,
		0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x18, 0x28, 0x00, 0x00, 0x00,
		0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	};
	struct {
		uint8_t data[48];
		size_t len;
		uint8_t wire[4];
	} v[6];
	uint8_t sctp[12];

	(void)state;
	memset(v, 0, sizeof(v));
	v[0].len = 32;	/* zeros */
	memcpy(v[0].wire, "\xaa\x36\x91\x8a", 4);
	v[1].len = 32;
	memset(v[1].data, 0xff, 32);
	memcpy(v[1].wire, "\x43\xab\xa8\x62", 4);
	v[2].len = 32;
	for (int i = 0; i < 32; i++)
		v[2].data[i] = (uint8_t)i;
	memcpy(v[2].wire, "\x4e\x79\xdd\x46", 4);
	v[3].len = 32;
	for (int i = 0; i < 32; i++)
		v[3].data[i] = (uint8_t)(31 - i);
	memcpy(v[3].wire, "\x5c\xdb\x3f\x11", 4);
	v[4].len = 48;
	memcpy(v[4].data, iscsi_read, 48);
	memcpy(v[4].wire, "\x56\x3a\x96\xd9", 4);
	v[5].len = 9;	/* the CRC catalogue's check value, 0xe3069283 */
	memcpy(v[5].data, "123456789", 9);
	memcpy(v[5].wire, "\x83\x92\x06\xe3", 4);
	for (int i = 0; i < 6; i++) {
		uint32_t want = (uint32_t)v[i].wire[0] | (uint32_t)v[i].wire[1] << 8 |
				(uint32_t)v[i].wire[2] << 16 | (uint32_t)v[i].wire[3] << 24;

		assert_int_equal(ref_crc32c(v[i].data, v[i].len), want);
		assert_int_equal(sg_crc32c(0, v[i].data, v[i].len), want);
		assert_int_equal(sg_crc32c_sw(0, v[i].data, v[i].len), want);
		/* Stored as RFC 4960 appendix B transmits it: the RFC's bytes. */
		memset(sctp, 0, sizeof(sctp));
		sg_pkt_sctp_store(sctp, want);
		assert_memory_equal(sctp + 8, v[i].wire, 4);
	}
	assert_int_equal(sg_crc32c(0, "", 0), 0);
	assert_int_equal(sg_crc32c_sw(0, "", 0), 0);
}

static void
test_crc32c_random(void **state)
{
	static uint8_t buf[2100];

	(void)state;
	rng_seed(0x5eed000a);
	rng_bytes(buf, sizeof(buf));
	/* Every length to 600 at every alignment to 16: hardware, tables, bits agree. */
	for (uint32_t off = 0; off < 16; off++)
		for (uint32_t n = 0; n <= 600; n++) {
			uint32_t want = ref_crc32c(buf + off, n);

			assert_int_equal(sg_crc32c(0, buf + off, n), want);
			assert_int_equal(sg_crc32c_sw(0, buf + off, n), want);
		}
	/* Continuing from a previous result. */
	for (uint32_t split = 0; split <= 2048; split += 1 + split / 7) {
		uint32_t want = ref_crc32c(buf, 2048);

		assert_int_equal(sg_crc32c(sg_crc32c(0, buf, split), buf + split, 2048 - split),
				 want);
		assert_int_equal(sg_crc32c_sw(sg_crc32c_sw(0, buf, split), buf + split,
					      2048 - split),
				 want);
		assert_int_equal(sg_crc32c_sw(sg_crc32c(0, buf, split), buf + split, 2048 - split),
				 want);
	}
}

/* SCTP: the checksum field counts as 0, and a rewrite gives the full CRC. */
static void
test_sctp(void **state)
{
	static const uint32_t lens[] = { 0, 1, 3, 4, 7, 16, 61, 1000 };

	(void)state;
	rng_seed(0x5eed000b);
	for (unsigned int i = 0; i < 2 * SG_ARRAY_SIZE(lens); i++) {
		int family = i & 1 ? 6 : 4;
		struct tb_pkt s = family == 4 ? mk4(IPPROTO_SCTP, lens[i / 2]) :
						mk6(IPPROTO_SCTP, lens[i / 2]);
		struct sg_pkt_nat nat = { .flags = SG_PKT_NAT_SRC | SG_PKT_NAT_DST,
					  .sport = htons(1234), .dport = htons(38412) };
		struct sg_pkt_info pi;
		uint32_t len, crc, n;
		uint8_t *b, *l4;

		rng_bytes(rand_payload[2], lens[i / 2]);
		s.payload = rand_payload[2];
		addr_rand(&nat.src, family);
		addr_rand(&nat.dst, family);
		b = build_parsed(&s, &pi, &len);
		l4 = b + pi.l4_off;
		n = pi.ip_end - pi.l4_off;
		/* Whatever the field holds, the CRC is computed as if it were 0. */
		crc = sg_pkt_sctp_crc(l4, n);
		l4[9] ^= 0x5a;
		assert_int_equal(sg_pkt_sctp_crc(l4, n), crc);
		l4[9] ^= 0x5a;
		assert_int_equal(crc, ref_sctp_crc(l4, n));

		assert_int_equal(sg_pkt_nat(b, &pi, &nat), 0);
		assert_int_equal(get16(l4), 1234);
		assert_int_equal(get16(l4 + 2), 38412);
		/* A receiver zeroes the field and compares with what was sent (RFC 4960 §6.8). */
		crc = ref_sctp_crc(l4, n);
		assert_int_equal(l4[8] | l4[9] << 8 | l4[10] << 16 | (uint32_t)l4[11] << 24, crc);
		free(b);
	}
}

/* ------------------------------------------------------------------------ */
/* Encapsulation. */

static uint8_t encbuf[70000], encbuf2[70000];

static struct sg_pkt_encap
encap_make(uint8_t type, uint8_t family, uint8_t flags)
{
	struct sg_pkt_encap e = { .type = type, .family = family, .ttl = 17, .flags = flags,
				  .gue_port = htons(6080) };

	if (family == 4) {
		addr_set4(&e.src, 192, 0, 2, 1);
		addr_set4(&e.dst, 203, 0, 113, 50);
	} else {
		addr_set6(&e.src, 0x1);
		addr_set6(&e.dst, 0x50);
	}
	return e;
}

/*
 * sg_pkt_encap() of e at encbuf + off, and sg_pkt_encap_prepared() of e
 * prepared on a copy of encbuf in encbuf2: the same result, the same
 * bytes. Returns the result.
 */
static int
encap_both(const struct sg_pkt_encap *e, uint32_t off, uint32_t inner_len, uint32_t hash)
{
	uint64_t end = (uint64_t)off + sg_pkt_encap_size(e->family, e->type) + inner_len;
	uint32_t n = (uint32_t)(end < sizeof(encbuf) ? end : sizeof(encbuf));
	struct sg_pkt_encap_hdr h;
	int r;

	memcpy(encbuf2, encbuf, n);
	r = sg_pkt_encap(encbuf + off, inner_len, e, hash);
	if (sg_pkt_encap_prepare(e, &h) != 0) {
		assert_int_equal(r, -EINVAL);
		return r;
	}
	assert_int_equal(sg_pkt_encap_prepared(encbuf2 + off, inner_len, &h, e->type, hash), r);
	assert_memory_equal(encbuf2, encbuf, n);
	return r;
}

/*
 * Encapsulate the inner_len-byte datagram inner with e, prepared or not,
 * and check every outer byte; returns the GUE source port or the IPv6
 * flow label.
 */
static uint32_t
encap_check_one(const struct sg_pkt_encap *e, const uint8_t *inner, uint32_t inner_len,
		uint32_t hash)
{
	uint32_t h = sg_pkt_encap_len(e), iphl = e->family == 4 ? 20 : 40, ret = 0;
	uint8_t ver = inner[0] >> 4, proto, tos;
	struct sg_pkt_info pi;
	uint8_t *b;
	bool df;

	assert_int_equal(h, iphl + (e->type == SG_PKT_ENCAP_GUE ? 8 : 0));
	memset(encbuf, 0xa5, h);	/* the reserved room holds garbage */
	memcpy(encbuf + h, inner, inner_len);
	assert_int_equal(encap_both(e, 0, inner_len, hash), (int)h);
	assert_memory_equal(encbuf + h, inner, inner_len);	/* inner unchanged */

	proto = e->type == SG_PKT_ENCAP_GUE ? IPPROTO_UDP : ver == 4 ? 4 : 41;
	tos = ver == 4 ? inner[1] : (uint8_t)((inner[0] & 0xf) << 4 | inner[1] >> 4);
	if (e->family == 4) {
		df = (e->flags & SG_PKT_ENCAP_DF_SET) || ver == 6 || (inner[6] & 0x40);
		assert_int_equal(encbuf[0], 0x45);
		assert_int_equal(encbuf[1], tos);	/* DSCP and ECN (RFC 6040) */
		assert_int_equal(get16(encbuf + 2), h + inner_len);
		assert_int_equal(get16(encbuf + 6), df ? 0x4000 : 0);
		assert_int_equal(get16(encbuf + 4), df ? 0 : get16(inner + 4));
		assert_int_equal(encbuf[8], e->ttl);
		assert_int_equal(encbuf[9], proto);
		assert_int_equal(get16(encbuf + 10), ref_ipv4_hdr_csum(encbuf));
		assert_memory_equal(encbuf + 12, e->src.a8, 4);
		assert_memory_equal(encbuf + 16, e->dst.a8, 4);
		ret = 0;
	} else {
		assert_int_equal(encbuf[0] >> 4, 6);
		assert_int_equal((encbuf[0] & 0xf) << 4 | encbuf[1] >> 4, tos);
		assert_int_equal(get16(encbuf + 4), h - 40 + inner_len);
		assert_int_equal(encbuf[6], proto);
		assert_int_equal(encbuf[7], e->ttl);
		assert_memory_equal(encbuf + 8, e->src.a8, 16);
		assert_memory_equal(encbuf + 24, e->dst.a8, 16);
		ret = (uint32_t)(encbuf[1] & 0xf) << 16 | get16(encbuf + 2);
		assert_int_equal(ret, (hash ^ hash >> 20) & 0xfffff);
	}
	if (e->type == SG_PKT_ENCAP_GUE) {
		uint8_t *u = encbuf + iphl;
		uint32_t ulen = 8 + inner_len;

		assert_int_equal(get16(u), 0xc000 | ((hash ^ hash >> 16) & 0x3fff));
		assert_memory_equal(u + 2, &e->gue_port, 2);
		assert_int_equal(get16(u + 4), ulen);
		if (e->family == 6 || (e->flags & SG_PKT_ENCAP_UDP4_CSUM)) {
			uint64_t sum = ref_pseudo(e->family, e->src.a8, e->dst.a8, IPPROTO_UDP,
						  ulen);
			uint16_t c = ref_csum_except(sum, u, ulen, 6);

			assert_int_equal(get16(u + 6), c ? c : 0xffff);
		} else {
			assert_int_equal(get16(u + 6), 0);	/* none, RFC 768 */
		}
		ret = get16(u);
	}

	/* With an Ethernet header, the result parses as what it is. */
	b = malloc(14 + h + inner_len);
	assert_non_null(b);
	sg_pkt_eth_write(b, (const uint8_t *)"\x02\0\0\0\0\x01",
			 (const uint8_t *)"\x02\0\0\0\0\x02", e->family == 4 ? 0x0800 : 0x86dd);
	memcpy(b + 14, encbuf, h + inner_len);
	assert_int_equal(sg_pkt_parse(b, 14 + h + inner_len, &pi), SG_PKT_OK);
	assert_int_equal(pi.l4_proto, proto);
	assert_int_equal(pi.ip_end, 14 + h + inner_len);
	if (e->type == SG_PKT_ENCAP_GUE) {
		assert_true(pi.flags & SG_PKT_F_L4);
		assert_int_equal(pi.dport, e->gue_port);
		if (get16(b + 14 + iphl + 6) != 0)
			assert_int_equal(be_of(sg_pkt_l4_cksum(b, &pi)), get16(b + 14 + iphl + 6));
	} else {
		assert_false(pi.flags & SG_PKT_F_L4);
	}
	free(b);
	return ret;
}

static void
test_encap_invalid(void **state)
{
	struct sg_pkt_encap good = encap_make(SG_PKT_ENCAP_IPIP, 4, 0), e;
	struct tb_pkt s = mk4(IPPROTO_TCP, 0), s6 = mk6(IPPROTO_TCP, 0);
	struct tb_out o;
	uint32_t n;

	(void)state;
	s.no_eth = s6.no_eth = true;
	n = tb_build(&s, encbuf + 48, &o);
	assert_int_equal(sg_pkt_encap_check(&good), 0);
	e = good;
	e.family = 5;
	assert_int_equal(sg_pkt_encap_check(&e), -EINVAL);
	assert_int_equal(sg_pkt_encap_len(&e), 0);
	assert_int_equal(encap_both(&e, 28, n, 1), -EINVAL);
	e.family = 0;
	assert_int_equal(sg_pkt_encap_check(&e), -EINVAL);
	e = good;
	e.type = 0;
	assert_int_equal(sg_pkt_encap_check(&e), -EINVAL);
	assert_int_equal(encap_both(&e, 28, n, 1), -EINVAL);
	e.type = 3;
	assert_int_equal(sg_pkt_encap_check(&e), -EINVAL);
	e = good;
	e.ttl = 0;
	assert_int_equal(sg_pkt_encap_check(&e), -EINVAL);
	assert_int_equal(encap_both(&e, 28, n, 1), -EINVAL);
	e = good;
	e.flags = 0x04;
	assert_int_equal(sg_pkt_encap_check(&e), -EINVAL);
	e = encap_make(SG_PKT_ENCAP_GUE, 6, 0);
	assert_int_equal(sg_pkt_encap_check(&e), 0);
	e.gue_port = 0;
	assert_int_equal(sg_pkt_encap_check(&e), -EINVAL);
	assert_int_equal(sg_pkt_encap_len(&e), 0);

	/* The inner packet: IPv4 or IPv6, and at least its header. */
	assert_int_equal(encap_both(&good, 28, 19, 1), -EINVAL);
	assert_int_equal(encap_both(&good, 28, 0, 1), -EINVAL);
	encbuf[48] = 0x55;
	assert_int_equal(encap_both(&good, 28, n, 1), -EINVAL);
	encbuf[48] = 0x05;
	assert_int_equal(encap_both(&good, 28, n, 1), -EINVAL);
	tb_build(&s6, encbuf + 20, &o);
	assert_int_equal(encap_both(&good, 0, 39, 1), -EINVAL);
	assert_int_equal(encap_both(&good, 0, 40, 1), 20);
}

static void
test_encap_sizes(void **state)
{
	static const struct {
		uint8_t type, family;
		uint32_t overhead, max_inner;
	} c[] = {
		{ SG_PKT_ENCAP_IPIP, 4, 20, 65515 },
		{ SG_PKT_ENCAP_GUE, 4, 28, 65507 },
		{ SG_PKT_ENCAP_IPIP, 6, 40, 65535 },
		{ SG_PKT_ENCAP_GUE, 6, 48, 65527 },
	};

	(void)state;
	for (unsigned int i = 0; i < SG_ARRAY_SIZE(c); i++) {
		struct sg_pkt_encap e = encap_make(c[i].type, c[i].family, SG_PKT_ENCAP_UDP4_CSUM);
		uint32_t h = c[i].overhead;

		assert_int_equal(sg_pkt_encap_len(&e), h);
		/* MTU: inner + overhead against the egress MTU. */
		assert_false(sg_pkt_encap_exceeds_mtu(h, 1500 - h, 1500));
		assert_true(sg_pkt_encap_exceeds_mtu(h, 1500 - h + 1, 1500));
		assert_false(sg_pkt_encap_exceeds_mtu(h, 9000 - h, 9000));
		assert_true(sg_pkt_encap_exceeds_mtu(h, UINT32_MAX, 9000));
		assert_int_equal(sg_pkt_encap_inner_mtu(h, 1500), 1500 - h);
		assert_int_equal(sg_pkt_encap_inner_mtu(h, h), 0);
		assert_int_equal(sg_pkt_encap_inner_mtu(h, 0), 0);

		/* The largest datagram IP can carry, and one byte more. */
		memset(encbuf, 0, sizeof(encbuf));
		encbuf[h] = 0x45;
		assert_int_equal(encap_both(&e, 0, c[i].max_inner, 7), (int)h);
		/* IPv4 total length or IPv6 payload length */
		assert_int_equal(get16(encbuf + (c[i].family == 4 ? 2 : 4)), 65535);
		encbuf[h] = 0x45;
		assert_int_equal(encap_both(&e, 0, c[i].max_inner + 1, 7), -EMSGSIZE);
		/* Lengths that would wrap around 32 bits are too big too. */
		assert_int_equal(encap_both(&e, 0, UINT32_MAX - 8, 7), -EMSGSIZE);
		assert_int_equal(encap_both(&e, 0, UINT32_MAX, 7), -EMSGSIZE);
	}
}

static void
test_encap_random(void **state)
{
	static uint8_t inner[2048];
	uint32_t n = 0;

	(void)state;
	rng_seed(0x5eed000c);
	for (uint8_t type = SG_PKT_ENCAP_IPIP; type <= SG_PKT_ENCAP_GUE; type++)
		for (uint8_t family = 4; family <= 6; family += 2)
			for (uint8_t flags = 0; flags < 4; flags++)
				for (int i = 0; i < 60; i++) {
					struct sg_pkt_encap e = encap_make(type, family, flags);
					struct tb_pkt s = rand_spec(rng_chance(50) ? 4 : 6, true,
								    rand_payload[3]);
					struct tb_out o;
					uint32_t len;

					s.no_eth = true;
					s.vlan = false;
					s.pad = 0;
					s.df = rng_chance(50);
					addr_rand(&e.src, family);
					addr_rand(&e.dst, family);
					e.ttl = (uint8_t)(1 + rng_below(255));
					e.gue_port = htons((uint16_t)(1 + rng_below(65535)));
					len = tb_build(&s, inner, &o);
					encap_check_one(&e, inner, len, rng32());
					n++;
				}
	assert_int_equal(n, 2 * 2 * 4 * 60);
}

/* encap_check_one() of the datagram s over family outer, every type, flag and hash. */
static void
encap_check_kinds(const struct tb_pkt *s, uint8_t outer)
{
	static const uint8_t types[] = { SG_PKT_ENCAP_IPIP, SG_PKT_ENCAP_GUE };
	static const uint8_t flags[] = { 0, SG_PKT_ENCAP_DF_SET, SG_PKT_ENCAP_UDP4_CSUM,
					 SG_PKT_ENCAP_DF_SET | SG_PKT_ENCAP_UDP4_CSUM };
	static const uint32_t hashes[] = { 0, 0xffffffff, 0x9e3779b9 };
	static uint8_t inner[2048];
	struct tb_out o;
	uint32_t len = tb_build(s, inner, &o);

	for (size_t t = 0; t < SG_ARRAY_SIZE(types); t++)
		for (size_t f = 0; f < SG_ARRAY_SIZE(flags); f++)
			for (size_t k = 0; k < SG_ARRAY_SIZE(hashes); k++) {
				struct sg_pkt_encap e = encap_make(types[t], outer, flags[f]);

				encap_check_one(&e, inner, len, hashes[k]);
			}
}

/*
 * The prepared form over a table of cases: every outer and inner family,
 * type and flag, inner DF set and clear, lengths and hashes, each checked
 * byte for byte against sg_pkt_encap() and field by field (encap_check_one()).
 * Then what prepare keeps: nothing from invalid input, and no type.
 */
static void
test_encap_prepared(void **state)
{
	static const uint32_t lens[] = { 0, 1, 333, 1400 };
	static uint8_t inner[256];
	struct sg_pkt_encap e, g;
	struct sg_pkt_encap_hdr h, h0;
	struct tb_pkt s;
	struct tb_out o;
	uint32_t len;

	(void)state;
	for (uint8_t outer = 4; outer <= 6; outer += 2)
		for (uint8_t in = 4; in <= 6; in += 2)
			for (int df = 0; df <= 1; df++)
				for (size_t l = 0; l < SG_ARRAY_SIZE(lens); l++) {
					s = in == 4 ? mk4(IPPROTO_UDP, lens[l])
						    : mk6(IPPROTO_UDP, lens[l]);
					s.no_eth = true;
					s.df = df;
					s.ipid = (uint16_t)(0x8001 + l);
					encap_check_kinds(&s, outer);
				}

	/* Invalid: -EINVAL, h untouched. */
	memset(&h0, 0x5a, sizeof(h0));
	e = encap_make(SG_PKT_ENCAP_GUE, 4, 0);
	e.gue_port = 0;
	h = h0;
	assert_int_equal(sg_pkt_encap_prepare(&e, &h), -EINVAL);
	assert_memory_equal(&h, &h0, sizeof(h));
	e = encap_make(SG_PKT_ENCAP_IPIP, 6, 0);
	e.ttl = 0;
	assert_int_equal(sg_pkt_encap_prepare(&e, &h), -EINVAL);
	assert_memory_equal(&h, &h0, sizeof(h));

	/*
	 * One prepared header serves both types, as lib/dp's next-hop cache
	 * uses it; GUE needs the port, which an IPIP e need not have.
	 */
	s = mk4(IPPROTO_TCP, 50);
	s.no_eth = true;
	len = tb_build(&s, inner, &o);
	for (uint8_t family = 4; family <= 6; family += 2) {
		uint32_t iphl = family == 4 ? 20 : 40;

		e = encap_make(SG_PKT_ENCAP_IPIP, family, SG_PKT_ENCAP_UDP4_CSUM);
		g = e;
		g.type = SG_PKT_ENCAP_GUE;
		assert_int_equal(sg_pkt_encap_prepare(&e, &h), 0);
		memcpy(encbuf + iphl + 8, inner, len);
		assert_int_equal(sg_pkt_encap(encbuf, len, &g, 0x1234), (int)iphl + 8);
		memcpy(encbuf2 + iphl + 8, inner, len);
		assert_int_equal(sg_pkt_encap_prepared(encbuf2, len, &h, SG_PKT_ENCAP_GUE, 0x1234),
				 (int)iphl + 8);
		assert_memory_equal(encbuf2, encbuf, iphl + 8 + len);
		memcpy(encbuf2 + iphl, inner, len);
		assert_int_equal(sg_pkt_encap_prepared(encbuf2, len, &h, SG_PKT_ENCAP_IPIP, 0x1234),
				 (int)iphl);
		e.gue_port = 0;
		assert_int_equal(sg_pkt_encap_prepare(&e, &h), 0);
		assert_int_equal(sg_pkt_encap_prepared(encbuf2, len, &h, SG_PKT_ENCAP_GUE, 0x1234),
				 -EINVAL);
	}
}

/* ECMP entropy: the GUE source port and IPv6 flow label follow the flow hash. */
static void
test_encap_entropy(void **state)
{
	static uint8_t inner[256];
	static uint8_t seen_port[65536], seen_label[1 << 20];
	struct tb_pkt s = mk4(IPPROTO_TCP, 20);
	struct tb_out o;
	uint32_t len, ports = 0, labels = 0;

	(void)state;
	s.no_eth = true;
	len = tb_build(&s, inner, &o);
	for (int family = 4; family <= 6; family += 2) {
		struct sg_pkt_encap e = encap_make(SG_PKT_ENCAP_GUE, (uint8_t)family, 0);
		uint32_t p1 = encap_check_one(&e, inner, len, 0x12345678);

		/* The same flow always gets the same port. */
		assert_int_equal(encap_check_one(&e, inner, len, 0x12345678), p1);
		memset(seen_port, 0, sizeof(seen_port));
		ports = 0;
		for (uint32_t i = 0; i < 1024; i++) {
			uint32_t p = encap_check_one(&e, inner, len, i * 0x9e3779b9u);

			ports += !seen_port[p];
			seen_port[p] = 1;
		}
		print_message("GUE over IPv%d: %u source ports for 1024 flows\n", family, ports);
		assert_true(ports > 950);
	}
	{
		struct sg_pkt_encap e = encap_make(SG_PKT_ENCAP_IPIP, 6, 0);

		for (uint32_t i = 0; i < 1024; i++) {
			uint32_t l = encap_check_one(&e, inner, len, i * 0x9e3779b9u);

			labels += !seen_label[l];
			seen_label[l] = 1;
		}
		assert_true(labels > 1000);
	}
}

/* ------------------------------------------------------------------------ */
/* L2. */

static void
test_eth_macs(void **state)
{
	static const uint8_t a[6] = { 0x02, 0x11, 0x22, 0x33, 0x44, 0x55 };
	static const uint8_t z[6] = { 0x02, 0x66, 0x77, 0x88, 0x99, 0xaa };
	struct tb_pkt s = mk4(IPPROTO_UDP, 10);
	struct sg_pkt_info pi;
	struct tb_out o;
	uint32_t len;

	(void)state;
	len = tb_build(&s, pktbuf, &o);
	memcpy(pktbuf2, pktbuf, len);
	sg_pkt_eth_set_macs(pktbuf, NULL, NULL);
	assert_memory_equal(pktbuf, pktbuf2, len);
	sg_pkt_eth_set_macs(pktbuf, a, NULL);	/* dsr-l2 */
	assert_memory_equal(pktbuf, a, 6);
	assert_memory_equal(pktbuf + 6, pktbuf2 + 6, len - 6);
	sg_pkt_eth_set_macs(pktbuf, NULL, z);
	assert_memory_equal(pktbuf, a, 6);
	assert_memory_equal(pktbuf + 6, z, 6);
	assert_memory_equal(pktbuf + 12, pktbuf2 + 12, len - 12);
	sg_pkt_eth_set_macs(pktbuf, z, a);
	assert_memory_equal(pktbuf, z, 6);
	assert_memory_equal(pktbuf + 6, a, 6);
	assert_int_equal(sg_pkt_parse(pktbuf, len, &pi), SG_PKT_OK);

	sg_pkt_eth_write(pktbuf2, a, z, 0x86dd);
	assert_memory_equal(pktbuf2, a, 6);
	assert_memory_equal(pktbuf2 + 6, z, 6);
	assert_int_equal(get16(pktbuf2 + 12), 0x86dd);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		/* invalid arguments and malformed input first */
		cmocka_unit_test(test_reason_names),
		cmocka_unit_test(test_parse_malformed),
		cmocka_unit_test(test_icmp_inner_malformed),
		cmocka_unit_test(test_nat_invalid),
		cmocka_unit_test(test_icmp_error_nat_invalid),
		cmocka_unit_test(test_encap_invalid),
		cmocka_unit_test(test_parse_truncations),
		cmocka_unit_test(test_icmp_inner_truncations),
		cmocka_unit_test(test_parse_random_bytes),
		cmocka_unit_test(test_parse_mutations),
		cmocka_unit_test(test_icmp_inner_mutations),
		/* parsing */
		cmocka_unit_test(test_parse_valid),
		cmocka_unit_test(test_parse_details),
		cmocka_unit_test(test_parse_bulk),
		/* checksums */
		cmocka_unit_test(test_csum_partial),
		cmocka_unit_test(test_csum_incremental),
		cmocka_unit_test(test_csum_full),
		cmocka_unit_test(test_crc32c_vectors),
		cmocka_unit_test(test_crc32c_random),
		cmocka_unit_test(test_sctp),
		/* rewrites */
		cmocka_unit_test(test_nat_random),
		cmocka_unit_test(test_nat_udp_zero_checksum),
		cmocka_unit_test(test_fast_paths),
		cmocka_unit_test(test_icmp_error_scenario4),
		cmocka_unit_test(test_icmp_error_scenario6),
		cmocka_unit_test(test_icmp_error_random),
		cmocka_unit_test(test_encap_sizes),
		cmocka_unit_test(test_encap_random),
		cmocka_unit_test(test_encap_prepared),
		cmocka_unit_test(test_encap_entropy),
		cmocka_unit_test(test_eth_macs),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
