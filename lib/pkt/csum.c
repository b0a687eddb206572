/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Full checksum computations: the one's-complement sum (RFC 1071), the IPv4
 * header and L4 checksums with their pseudo-headers, and CRC32c for SCTP.
 * The incremental updates (RFC 1624) are inline in pkt.h; the rewrites that
 * use them live in nat.c and encap.c.
 */
#include <netinet/in.h>

#include "sg_common.h"

#include "pkt_private.h"

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

uint32_t
sg_csum_partial(const void *buf, uint32_t len, uint32_t sum)
{
	const uint8_t *p = buf;
	uint64_t s = sum;
	uint32_t w[4];
	uint16_t h = 0;

	/*
	 * Sum 32-bit words into 64 bits: 2^32 == 1 mod 0xffff, so the fold
	 * at the end gives the sum of the 16-bit words (RFC 1071 §2 (C)).
	 */
	while (len >= 16) {
		memcpy(w, p, 16);
		s += (uint64_t)w[0] + w[1] + w[2] + w[3];
		p += 16;
		len -= 16;
	}
	while (len >= 4) {
		memcpy(w, p, 4);
		s += w[0];
		p += 4;
		len -= 4;
	}
	if (len >= 2) {
		memcpy(&h, p, 2);
		s += h;
		p += 2;
		len -= 2;
	}
	if (len) {
		/* The odd byte is the high-order byte of a zero-padded word. */
		h = 0;
		memcpy(&h, p, 1);
		s += h;
	}
	s = (s & 0xffffffff) + (s >> 32);
	s = (s & 0xffffffff) + (s >> 32);
	return (uint32_t)s;
}

uint16_t
sg_pkt_ipv4_cksum(const uint8_t *ip)
{
	uint32_t hlen = (uint32_t)(ip[0] & 0xf) * 4;
	uint32_t sum;

	if (hlen == 20) {
		/*
		 * No options, as nearly every header (and every outer header we
		 * write): its words but the checksum's, straight-line, in 32-bit
		 * words as sg_csum_partial() adds them (RFC 1071 §2 (C)).
		 */
		uint32_t w[5];
		uint16_t ttl_proto;
		uint64_t s;

		memcpy(w, ip, 20);
		memcpy(&ttl_proto, ip + 8, 2);
		s = (uint64_t)w[0] + w[1] + ttl_proto + w[3] + w[4];
		s = (s & 0xffffffff) + (s >> 32);
		s = (s & 0xffffffff) + (s >> 32);
		return (uint16_t)~sg_csum_fold((uint32_t)s);
	}
	sum = sg_csum_partial(ip, 10, 0);
	sum = sg_csum_partial(ip + 12, hlen - 12, sum);
	return (uint16_t)~sg_csum_fold(sum);
}

uint16_t
sg_pkt_l4_cksum(const uint8_t *buf, const struct sg_pkt_info *pi)
{
	const uint8_t *l4 = buf + pi->l4_off;
	uint32_t len = pi->ip_end - pi->l4_off;
	int v6 = pi->l3 == SG_PKT_L3_IPV6;
	uint32_t off, sum = 0;
	uint16_t c;

	if (!(pi->flags & SG_PKT_F_L4))
		return 0;
	switch (pi->l4_proto) {
	case IPPROTO_TCP:
		off = TCP_CSUM_OFF;
		break;
	case IPPROTO_UDP:
		off = UDP_CSUM_OFF;
		break;
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6:
		off = ICMP_CSUM_OFF;
		break;
	default:
		return 0;
	}
	/* ICMPv4 alone has no pseudo-header (RFC 792). */
	if (pi->l4_proto != IPPROTO_ICMP)
		sum = pseudo_sum(buf + pi->l3_off, v6, pi->l4_proto, len);
	sum = sg_csum_partial(l4, off, sum);
	sum = sg_csum_partial(l4 + off + 2, len - off - 2, sum);
	c = (uint16_t)~sg_csum_fold(sum);
	if (pi->l4_proto == IPPROTO_UDP && c == 0)
		c = 0xffff;
	return c;
}

/*
 * CRC32c, reflected polynomial 0x82f63b78 (Castagnoli; RFC 3309). The
 * software version reads 8 bytes per step with eight tables (slicing by
 * 8), built once at load time so that no data path call ever builds them.
 */
#define CRC32C_POLY 0x82f63b78u

static uint32_t crc_table[8][256];

__attribute__((constructor)) static void
crc32c_init_tables(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (CRC32C_POLY & (0u - (c & 1)));
		crc_table[0][i] = c;
	}
	for (uint32_t i = 0; i < 256; i++)
		for (int k = 1; k < 8; k++)
			crc_table[k][i] = (crc_table[k - 1][i] >> 8) ^
					  crc_table[0][crc_table[k - 1][i] & 0xff];
}

uint32_t
sg_crc32c_sw(uint32_t crc, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	crc = ~crc;
	while (len >= 8) {
		uint32_t lo = crc ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 |
				     (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);
		uint32_t hi = (uint32_t)p[4] | (uint32_t)p[5] << 8 | (uint32_t)p[6] << 16 |
			      (uint32_t)p[7] << 24;

		crc = crc_table[7][lo & 0xff] ^ crc_table[6][(lo >> 8) & 0xff] ^
		      crc_table[5][(lo >> 16) & 0xff] ^ crc_table[4][lo >> 24] ^
		      crc_table[3][hi & 0xff] ^ crc_table[2][(hi >> 8) & 0xff] ^
		      crc_table[1][(hi >> 16) & 0xff] ^ crc_table[0][hi >> 24];
		p += 8;
		len -= 8;
	}
	while (len--)
		crc = crc_table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return ~crc;
}

#if defined(__x86_64__)
/*
 * The SSE4.2 crc32 instruction computes exactly this CRC. lib/pkt is built
 * without DPDK's -march flags, so besides the __SSE4_2__ build the
 * instruction is also reached by a run-time check of the CPU.
 */
__attribute__((target("sse4.2"))) static uint32_t
crc32c_sse42(uint32_t crc, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	uint64_t c = ~crc;
	uint64_t v;

	while (len >= 8) {
		memcpy(&v, p, 8);
		c = _mm_crc32_u64(c, v);
		p += 8;
		len -= 8;
	}
	while (len--)
		c = _mm_crc32_u8((uint32_t)c, *p++);
	return ~(uint32_t)c;
}
#endif

uint32_t
sg_crc32c(uint32_t crc, const void *buf, size_t len)
{
#if defined(__x86_64__) && defined(__SSE4_2__)
	return crc32c_sse42(crc, buf, len);
#elif defined(__x86_64__)
	if (sg_likely(__builtin_cpu_supports("sse4.2")))
		return crc32c_sse42(crc, buf, len);
	return sg_crc32c_sw(crc, buf, len);
#else
	return sg_crc32c_sw(crc, buf, len);
#endif
}

uint32_t
sg_pkt_sctp_crc(const uint8_t *sctp, uint32_t len)
{
	static const uint8_t zero[4];
	uint32_t crc;

	crc = sg_crc32c(0, sctp, SCTP_CSUM_OFF);
	crc = sg_crc32c(crc, zero, sizeof(zero));
	return sg_crc32c(crc, sctp + SCTP_HLEN, len - SCTP_HLEN);
}
