/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The frames svcgw-bench sends, in both of its modes: Ethernet, IPv4 or
 * IPv6, TCP or UDP, a payload, zero padding, and every checksum right.
 * The in-process generator (gen.c) and the line-rate mode (linerate.c)
 * build theirs here, so both send the same thing for the same flow.
 *
 * No DPDK: frames are byte buffers (lib/pkt's checksums), so the unit
 * tests check them without EAL.
 */
#ifndef SG_BENCH_FRAME_H
#define SG_BENCH_FRAME_H

#include <stdint.h>

#define BENCH_ETH_LEN 14u
#define BENCH_IP4_LEN 20u
#define BENCH_IP6_LEN 40u
#define BENCH_TCP_LEN 20u
#define BENCH_UDP_LEN 8u
/* The shortest frame Ethernet carries, without the 4-byte FCS (ETH_ZLEN). */
#define BENCH_FRAME_MIN 60u
/* The FCS a frame size counts and our buffers do not hold. */
#define BENCH_FCS_LEN 4u

/* One frame. Addresses and ports in network order, as in the packet. */
struct bench_frame {
	uint8_t family;		/* 4 or 6 */
	uint8_t proto;		/* IPPROTO_TCP or IPPROTO_UDP */
	uint8_t tcp_flags;	/* TCP only */
	uint8_t dst_mac[6];
	uint8_t src_mac[6];
	const uint8_t *src;	/* 4 or 16 bytes */
	const uint8_t *dst;
	uint16_t sport;
	uint16_t dport;
	uint32_t tcp_seq;	/* host order, TCP only */
	uint32_t tcp_ack;
	const void *payload;	/* payload_len bytes, or NULL for zeroes */
	uint32_t payload_len;
	/*
	 * The frame's length without FCS: at least the headers and payload
	 * (and at least BENCH_FRAME_MIN); what is left after the payload is
	 * zero padding inside the datagram, so the IP and L4 lengths cover
	 * it. 0: as short as allowed, the padding then outside the datagram
	 * as Ethernet's.
	 */
	uint32_t len;
};

/* Header bytes before the payload: Ethernet, IP, L4. */
uint32_t bench_frame_hdr_len(uint8_t family, uint8_t proto);

/*
 * Write f at buf (cap bytes of room). Returns the frame's length, or
 * -EINVAL (family, protocol or len not possible), -ENOSPC (cap too small).
 */
int bench_frame_write(uint8_t *buf, uint32_t cap, const struct bench_frame *f);

#endif /* SG_BENCH_FRAME_H */
