/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Frame building for both modes of svcgw-bench (frame.h). Nothing else:
 * which flow a frame belongs to is the caller's business.
 */
#include <errno.h>
#include <netinet/in.h>
#include <string.h>

#include "pkt.h"
#include "frame.h"

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

uint32_t
bench_frame_hdr_len(uint8_t family, uint8_t proto)
{
	return BENCH_ETH_LEN + (family == 6 ? BENCH_IP6_LEN : BENCH_IP4_LEN) +
	       (proto == IPPROTO_TCP ? BENCH_TCP_LEN : BENCH_UDP_LEN);
}

int
bench_frame_write(uint8_t *buf, uint32_t cap, const struct bench_frame *f)
{
	uint32_t ip_len = f->family == 6 ? BENCH_IP6_LEN : BENCH_IP4_LEN;
	uint32_t hdr, body, len, l4_len, sum;
	uint8_t *ip = buf + BENCH_ETH_LEN, *l4 = ip + ip_len;
	uint16_t csum;

	if ((f->family != 4 && f->family != 6) ||
	    (f->proto != IPPROTO_TCP && f->proto != IPPROTO_UDP))
		return -EINVAL;
	hdr = bench_frame_hdr_len(f->family, f->proto);
	if (f->payload_len > 65535 - hdr)
		return -EINVAL;
	body = hdr + f->payload_len;
	if (f->len != 0 && (f->len < body || f->len < BENCH_FRAME_MIN || f->len > 65535))
		return -EINVAL;
	len = f->len ? f->len : body < BENCH_FRAME_MIN ? BENCH_FRAME_MIN : body;
	if (len > cap)
		return -ENOSPC;
	/* Padding asked for belongs to the datagram; the minimum's to Ethernet. */
	if (f->len != 0)
		body = len;
	l4_len = body - BENCH_ETH_LEN - ip_len;

	memset(buf, 0, len);
	sg_pkt_eth_write(buf, f->dst_mac, f->src_mac, f->family == 6 ? 0x86dd : 0x0800);
	if (f->family == 4) {
		ip[0] = 0x45;
		put16(ip + 2, (uint16_t)(ip_len + l4_len));
		put16(ip + 6, 0x4000); /* DF */
		ip[8] = 64;
		ip[9] = f->proto;
		memcpy(ip + 12, f->src, 4);
		memcpy(ip + 16, f->dst, 4);
		csum = sg_pkt_ipv4_cksum(ip);
		memcpy(ip + 10, &csum, 2);
	} else {
		ip[0] = 0x60;
		put16(ip + 4, (uint16_t)l4_len);
		ip[6] = f->proto;
		ip[7] = 64;
		memcpy(ip + 8, f->src, 16);
		memcpy(ip + 24, f->dst, 16);
	}
	memcpy(l4, &f->sport, 2);
	memcpy(l4 + 2, &f->dport, 2);
	if (f->proto == IPPROTO_TCP) {
		put32(l4 + 4, f->tcp_seq);
		put32(l4 + 8, f->tcp_ack);
		l4[12] = (BENCH_TCP_LEN / 4) << 4;
		l4[13] = f->tcp_flags;
		put16(l4 + 14, 65535);
	} else {
		put16(l4 + 4, (uint16_t)l4_len);
	}
	if (f->payload != NULL)
		memcpy(l4 + (f->proto == IPPROTO_TCP ? BENCH_TCP_LEN : BENCH_UDP_LEN), f->payload,
		       f->payload_len);

	/* RFC 768, RFC 793 §3.1, RFC 8200 §8.1: the pseudo-header, then the datagram. */
	sum = sg_csum_partial(ip + (f->family == 4 ? 12 : 8), f->family == 4 ? 8 : 32, 0);
	{
		uint8_t ph[4] = { 0, f->proto, (uint8_t)(l4_len >> 8), (uint8_t)l4_len };

		sum = sg_csum_partial(ph, 4, sum);
	}
	sum = sg_csum_partial(l4, l4_len, sum);
	csum = (uint16_t)~sg_csum_fold(sum);
	if (csum == 0 && f->proto == IPPROTO_UDP)
		csum = 0xffff; /* RFC 768: 0 means "no checksum" */
	memcpy(l4 + (f->proto == IPPROTO_TCP ? 16 : 6), &csum, 2);
	return (int)len;
}
