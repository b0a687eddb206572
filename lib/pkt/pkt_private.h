/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Helpers shared by the lib/pkt sources: unaligned loads and stores (packet
 * fields have no alignment guarantee, so always through memcpy or bytes),
 * protocol constants, and the IP pseudo-header sum.
 */
#ifndef PKT_PRIVATE_H
#define PKT_PRIVATE_H

#include <stdint.h>
#include <string.h>

#include "pkt.h"

#define ETH_HLEN	14
#define VLAN_HLEN	4
#define ETHERTYPE_IPV4	0x0800
#define ETHERTYPE_ARP	0x0806
#define ETHERTYPE_VLAN	0x8100
#define ETHERTYPE_IPV6	0x86dd

#define IPV4_HLEN	20
#define IPV6_HLEN	40
#define TCP_HLEN	20
#define UDP_HLEN	8
#define SCTP_HLEN	12
#define ICMP_HLEN	8

/* Checksum field offsets inside each L4 header. */
#define TCP_CSUM_OFF	16
#define UDP_CSUM_OFF	6
#define ICMP_CSUM_OFF	2
#define SCTP_CSUM_OFF	8

#define IPV4_DF		0x4000
#define IPV4_MF		0x2000
#define IPV4_OFFMASK	0x1fff

/* ICMP and ICMPv6 types this library cares about. */
#define ICMP_ECHO_REPLY		0
#define ICMP_DEST_UNREACH	3
#define ICMP_ECHO_REQUEST	8
#define ICMP_TIME_EXCEEDED	11
#define ICMP_PARAM_PROBLEM	12
#define ICMP6_DEST_UNREACH	1
#define ICMP6_PACKET_TOO_BIG	2
#define ICMP6_TIME_EXCEEDED	3
#define ICMP6_PARAM_PROBLEM	4
#define ICMP6_ECHO_REQUEST	128
#define ICMP6_ECHO_REPLY	129

/* Raw 16-bit field, network order as in memory. */
static inline uint16_t
ld16(const uint8_t *p)
{
	uint16_t v;

	memcpy(&v, p, 2);
	return v;
}

static inline void
st16(uint8_t *p, uint16_t v)
{
	memcpy(p, &v, 2);
}

/* 16- and 32-bit big-endian fields read as host-order integers. */
static inline uint16_t
rd16(const uint8_t *p)
{
	return (uint16_t)((uint16_t)p[0] << 8 | p[1]);
}

static inline uint32_t
rd32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline void
wr16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

/* Network-order constant from a host-order one, without <arpa/inet.h>. */
static inline uint16_t
net16(uint16_t v)
{
	uint8_t b[2] = { (uint8_t)(v >> 8), (uint8_t)v };

	return ld16(b);
}

/*
 * Sum of the IPv4 or IPv6 pseudo-header (RFC 793 §3.1, RFC 8200 §8.1) of
 * the IP header at ip, for an upper-layer packet of l4_len bytes.
 */
static inline uint32_t
pseudo_sum(const uint8_t *ip, int v6, uint8_t proto, uint32_t l4_len)
{
	uint8_t tail[8] = {
		(uint8_t)(l4_len >> 24), (uint8_t)(l4_len >> 16),
		(uint8_t)(l4_len >> 8), (uint8_t)l4_len, 0, 0, 0, proto,
	};
	uint32_t sum;

	if (v6)
		sum = sg_csum_partial(ip + 8, 32, 0);
	else
		sum = sg_csum_partial(ip + 12, 8, 0);
	return sg_csum_partial(tail, sizeof(tail), sum);
}

#endif /* PKT_PRIVATE_H */
