/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * lib/neigh: invalid arguments first; then the DPDK-free frames (ARP reply
 * and NA built in place, requests and announcements) checked byte by byte
 * against frames written out here by hand, with every ICMPv6 checksum also
 * recomputed in full; the RFC 4861 §7.1 checks of NS and NA; what a worker
 * answers and what it reports; RFC 826 learning; held packets, retries,
 * failure, refresh and expiry on a fake clock with a fake transmit callback
 * capturing frames; announcements; ports; telemetry; and a reader thread
 * doing lock-free lookups while the control thread churns both tables.
 * Every test ends with every mbuf back in the pool.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_log.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_pause.h>
#include <rte_rcu_qsbr.h>

#include "neigh.h"
#include "pkt.h"
#include "sg_common.h"
#include "sg_test_eal.h"

/* ---- addresses ----------------------------------------------------------- */

static const uint8_t OUR_MAC[6] = { 0x02, 0, 0, 0, 0, 0x01 };
static const uint8_t PEER_MAC[6] = { 0x02, 0, 0, 0, 0, 0x02 };
static const uint8_t OTHER_MAC[6] = { 0x02, 0, 0, 0, 0, 0x03 };
static const uint8_t NH_MAC[6] = { 0x02, 0, 0, 0, 0, 0x05 };
static const uint8_t NH_MAC2[6] = { 0x02, 0, 0, 0, 0, 0x06 };
static const uint8_t BCAST[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
static const uint8_t ZERO_MAC[6];

static const uint8_t OUR4[4] = { 192, 0, 2, 1 };
static const uint8_t PEER4[4] = { 192, 0, 2, 2 };
static const uint8_t VIP4[4] = { 192, 0, 2, 10 };
static const uint8_t NH4[4] = { 192, 0, 2, 50 };
static const uint8_t NH4B[4] = { 192, 0, 2, 51 };
static const uint8_t NOT_OURS4[4] = { 192, 0, 2, 99 };
static const uint8_t ZERO4[4];

static const uint8_t OUR6[16] = { 0x20, 0x01, 0x0d, 0xb8, [15] = 0x01 };
static const uint8_t PEER6[16] = { 0x20, 0x01, 0x0d, 0xb8, [15] = 0x02 };
static const uint8_t VIP6[16] = { 0x20, 0x01, 0x0d, 0xb8, [15] = 0x10 };
static const uint8_t NH6[16] = { 0x20, 0x01, 0x0d, 0xb8, [15] = 0x50 };
static const uint8_t NOT_OURS6[16] = { 0x20, 0x01, 0x0d, 0xb8, [15] = 0x99 };
/* fe80::ff:fe00:1, the EUI-64 link-local of OUR_MAC */
static const uint8_t OUR_LL[16] = { 0xfe, 0x80, [11] = 0xff, [12] = 0xfe, [15] = 0x01 };
static const uint8_t SN_OUR6[16] = { 0xff, 0x02, [11] = 0x01, [12] = 0xff, [15] = 0x01 };
static const uint8_t ALL_NODES[16] = { 0xff, 0x02, [15] = 0x01 };
static const uint8_t UNSPEC[16];
static const uint8_t SN_MAC_OUR6[6] = { 0x33, 0x33, 0xff, 0, 0, 0x01 };

/* ---- hand-written frames ------------------------------------------------- */

/* PEER asks who has 192.0.2.1; the padding is not zero on purpose. */
static const uint8_t arp_req[60] = {
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 0, 0, 0, 0x02, 0x08, 0x06,
	0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x01,
	0x02, 0, 0, 0, 0, 0x02, 192, 0, 2, 2,
	0, 0, 0, 0, 0, 0, 192, 0, 2, 1,
	0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa,
	0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa,
};

/* RFC 826: our answer, to PEER's hardware address; padding zeroed. */
static const uint8_t arp_rep[60] = {
	0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01, 0x08, 0x06,
	0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x02,
	0x02, 0, 0, 0, 0, 0x01, 192, 0, 2, 1,
	0x02, 0, 0, 0, 0, 0x02, 192, 0, 2, 2,
};

/* The same two with an 802.1Q tag (VLAN 100). */
static const uint8_t arp_req_vlan[64] = {
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 0, 0, 0, 0x02, 0x81, 0x00, 0x00, 0x64,
	0x08, 0x06,
	0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x01,
	0x02, 0, 0, 0, 0, 0x02, 192, 0, 2, 2,
	0, 0, 0, 0, 0, 0, 192, 0, 2, 1,
};

static const uint8_t arp_rep_vlan[64] = {
	0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01, 0x81, 0x00, 0x00, 0x64,
	0x08, 0x06,
	0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x02,
	0x02, 0, 0, 0, 0, 0x01, 192, 0, 2, 1,
	0x02, 0, 0, 0, 0, 0x02, 192, 0, 2, 2,
};

/* PEER (2001:db8::2) solicits 2001:db8::1 at its solicited-node address. */
static const uint8_t ns_frame[86] = {
	0x33, 0x33, 0xff, 0x00, 0x00, 0x01, 0x02, 0, 0, 0, 0, 0x02, 0x86, 0xdd,
	0x60, 0, 0, 0, 0x00, 0x20, 58, 255,
	0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02,
	0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0xff, 0, 0, 0x01,
	135, 0, 0x1c, 0x27, 0, 0, 0, 0,
	0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01,
	1, 1, 0x02, 0, 0, 0, 0, 0x02,
};

/* RFC 4861 §7.2.4: solicited + override, target LLA option, checksum 0x8a73. */
static const uint8_t na_frame[86] = {
	0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01, 0x86, 0xdd,
	0x60, 0, 0, 0, 0x00, 0x20, 58, 255,
	0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01,
	0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02,
	136, 0, 0x8a, 0x73, 0x60, 0, 0, 0,
	0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01,
	2, 1, 0x02, 0, 0, 0, 0, 0x01,
};

/* Duplicate address detection for 2001:db8::1: unspecified source, no option. */
static const uint8_t dad_ns_frame[78] = {
	0x33, 0x33, 0xff, 0x00, 0x00, 0x01, 0x02, 0, 0, 0, 0, 0x03, 0x86, 0xdd,
	0x60, 0, 0, 0, 0x00, 0x18, 58, 255,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0xff, 0, 0, 0x01,
	135, 0, 0x4c, 0xed, 0, 0, 0, 0,
	0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01,
};

/* ... defended to all-nodes, override only (RFC 4861 §7.2.4). */
static const uint8_t dad_na_frame[86] = {
	0x33, 0x33, 0, 0, 0, 0x01, 0x02, 0, 0, 0, 0, 0x01, 0x86, 0xdd,
	0x60, 0, 0, 0, 0x00, 0x20, 58, 255,
	0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01,
	0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01,
	136, 0, 0xf9, 0x2a, 0x20, 0, 0, 0,
	0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01,
	2, 1, 0x02, 0, 0, 0, 0, 0x01,
};

/* Our broadcast request for 192.0.2.50 (RFC 826), padded to 60 bytes. */
static const uint8_t arp_req_nh[60] = {
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 0, 0, 0, 0x01, 0x08, 0x06,
	0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x01,
	0x02, 0, 0, 0, 0, 0x01, 192, 0, 2, 1,
	0, 0, 0, 0, 0, 0, 192, 0, 2, 50,
};

/* The unicast refresh of 192.0.2.50 at NH_MAC. */
static const uint8_t arp_probe_nh[60] = {
	0x02, 0, 0, 0, 0, 0x05, 0x02, 0, 0, 0, 0, 0x01, 0x08, 0x06,
	0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x01,
	0x02, 0, 0, 0, 0, 0x01, 192, 0, 2, 1,
	0, 0, 0, 0, 0, 0, 192, 0, 2, 50,
};

/* Our multicast NS for 2001:db8::50, from our link-local (RFC 4861 §7.2.2). */
static const uint8_t ns_nh[86] = {
	0x33, 0x33, 0xff, 0x00, 0x00, 0x50, 0x02, 0, 0, 0, 0, 0x01, 0x86, 0xdd,
	0x60, 0, 0, 0, 0x00, 0x20, 58, 255,
	0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xfe, 0, 0, 0x01,
	0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0xff, 0, 0, 0x50,
	135, 0, 0x4b, 0xc3, 0, 0, 0, 0,
	0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x50,
	1, 1, 0x02, 0, 0, 0, 0, 0x01,
};

/* ... and its unicast refresh at NH_MAC. */
static const uint8_t ns_probe_nh[86] = {
	0x02, 0, 0, 0, 0, 0x05, 0x02, 0, 0, 0, 0, 0x01, 0x86, 0xdd,
	0x60, 0, 0, 0, 0x00, 0x20, 58, 255,
	0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xfe, 0, 0, 0x01,
	0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x50,
	135, 0, 0x1c, 0x0f, 0, 0, 0, 0,
	0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x50,
	1, 1, 0x02, 0, 0, 0, 0, 0x01,
};

/* RFC 5227 §3 announcement of 192.0.2.10. */
static const uint8_t garp_vip[60] = {
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 0, 0, 0, 0x01, 0x08, 0x06,
	0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x01,
	0x02, 0, 0, 0, 0, 0x01, 192, 0, 2, 10,
	0, 0, 0, 0, 0, 0, 192, 0, 2, 10,
};

/* RFC 4861 §7.2.6 unsolicited NA for 2001:db8::10. */
static const uint8_t una_vip[86] = {
	0x33, 0x33, 0, 0, 0, 0x01, 0x02, 0, 0, 0, 0, 0x01, 0x86, 0xdd,
	0x60, 0, 0, 0, 0x00, 0x20, 58, 255,
	0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
	0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01,
	136, 0, 0xf9, 0x0c, 0x20, 0, 0, 0,
	0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
	2, 1, 0x02, 0, 0, 0, 0, 0x01,
};

/* ---- checksums, computed here independently ------------------------------ */

/* One's-complement sum of big-endian 16-bit words (RFC 1071), folded. */
static uint32_t
be_sum(const uint8_t *p, uint32_t n, uint32_t s)
{
	for (uint32_t i = 0; i + 1 < n; i += 2)
		s += (uint32_t)p[i] << 8 | p[i + 1];
	if (n & 1)
		s += (uint32_t)p[n - 1] << 8;
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return s;
}

/* Sum of the pseudo-header and the ICMPv6 message of the IPv6 packet at ip. */
static uint32_t
icmp6_sum(const uint8_t *ip)
{
	uint32_t plen = (uint32_t)ip[4] << 8 | ip[5];
	uint32_t s = be_sum(ip + 8, 32, 0);

	s = be_sum(ip + 40, plen, s + plen + 58);
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return s;
}

/* Full recomputation: a correct checksum makes the whole sum 0xffff. */
static int
icmp6_csum_ok(const uint8_t *frame, uint32_t l3_off)
{
	return icmp6_sum(frame + l3_off) == 0xffff;
}

static void
icmp6_csum_fix(uint8_t *frame, uint32_t l3_off)
{
	uint8_t *l4 = frame + l3_off + 40;
	uint16_t c;

	l4[2] = 0;
	l4[3] = 0;
	c = (uint16_t)~icmp6_sum(frame + l3_off);
	l4[2] = (uint8_t)(c >> 8);
	l4[3] = (uint8_t)c;
}

/* ---- input frames built here --------------------------------------------- */

static uint32_t
arp_in(uint8_t *b, uint16_t op, const uint8_t eth_src[6], const uint8_t eth_dst[6],
       const uint8_t sha[6], const uint8_t spa[4], const uint8_t tha[6], const uint8_t tpa[4])
{
	memset(b, 0, 60);
	memcpy(b, eth_dst, 6);
	memcpy(b + 6, eth_src, 6);
	b[12] = 0x08;
	b[13] = 0x06;
	b[15] = 1;
	b[16] = 0x08;
	b[18] = 6;
	b[19] = 4;
	b[20] = (uint8_t)(op >> 8);
	b[21] = (uint8_t)op;
	memcpy(b + 22, sha, 6);
	memcpy(b + 28, spa, 4);
	memcpy(b + 32, tha, 6);
	memcpy(b + 38, tpa, 4);
	return 60;
}

struct nd_spec {
	uint8_t type, code, hop, flags;
	const uint8_t *eth_src, *eth_dst;
	const uint8_t *src, *dst, *target;
	uint8_t opts[32];
	uint8_t optlen;
};

static uint32_t
nd_in(uint8_t *b, const struct nd_spec *s)
{
	uint32_t plen = 24u + s->optlen;
	uint8_t *ip = b + 14, *l4 = ip + 40;

	memset(b, 0, 14 + 40 + plen);
	memcpy(b, s->eth_dst, 6);
	memcpy(b + 6, s->eth_src, 6);
	b[12] = 0x86;
	b[13] = 0xdd;
	ip[0] = 0x60;
	ip[4] = (uint8_t)(plen >> 8);
	ip[5] = (uint8_t)plen;
	ip[6] = 58;
	ip[7] = s->hop;
	memcpy(ip + 8, s->src, 16);
	memcpy(ip + 24, s->dst, 16);
	l4[0] = s->type;
	l4[1] = s->code;
	l4[4] = s->flags;
	memcpy(l4 + 8, s->target, 16);
	memcpy(l4 + 24, s->opts, s->optlen);
	icmp6_csum_fix(b, 14);
	return 14 + 40 + plen;
}

/* A valid NS from PEER for target, with PEER's source LLA option. */
static struct nd_spec
ns_spec(const uint8_t target[16])
{
	struct nd_spec s = {
		.type = 135, .hop = 255, .eth_src = PEER_MAC, .eth_dst = SN_MAC_OUR6,
		.src = PEER6, .dst = SN_OUR6, .target = target,
		.opts = { 1, 1, 0x02, 0, 0, 0, 0, 0x02 }, .optlen = 8,
	};
	return s;
}

/* An NA from mac for target to dst, with a target LLA option when mac is set. */
static struct nd_spec
na_spec(const uint8_t target[16], const uint8_t dst[16], uint8_t flags, const uint8_t *mac)
{
	struct nd_spec s = {
		.type = 136, .hop = 255, .flags = flags, .eth_src = mac ? mac : NH_MAC,
		.eth_dst = OUR_MAC, .src = target, .dst = dst, .target = target,
	};
	if (mac != NULL) {
		s.opts[0] = 2;
		s.opts[1] = 1;
		memcpy(s.opts + 2, mac, 6);
		s.optlen = 8;
	}
	return s;
}

/* ---- the fake transmit path ---------------------------------------------- */

#define CAP_MAX 64

struct capture {
	uint16_t port;
	uint32_t len;
	uint8_t data[256];
};

static struct capture caps[CAP_MAX];
static unsigned int n_caps;
static int tx_fail;
static struct rte_mempool *pool;

static int
fake_tx(void *arg, uint16_t port, struct rte_mbuf *m)
{
	(void)arg;
	if (tx_fail)
		return -EIO;
	if (n_caps < CAP_MAX) {
		struct capture *c = &caps[n_caps];
		uint32_t len = rte_pktmbuf_data_len(m);

		c->port = port;
		c->len = len;
		memcpy(c->data, rte_pktmbuf_mtod(m, const uint8_t *), len < 256 ? len : 256);
	}
	n_caps++;
	rte_pktmbuf_free(m);
	return 0;
}

static void
caps_reset(void)
{
	n_caps = 0;
	tx_fail = 0;
	memset(caps, 0, sizeof(caps));
}

static void
assert_cap(unsigned int i, const uint8_t *want, uint32_t len)
{
	assert_true(i < n_caps);
	assert_int_equal(caps[i].port, 0);
	assert_int_equal(caps[i].len, len);
	assert_memory_equal(caps[i].data, want, len);
}

/* An IPv4 packet ready but for its destination MAC; byte 14 marks it. */
static struct rte_mbuf *
pkt_new(uint8_t marker)
{
	struct rte_mbuf *m = rte_pktmbuf_alloc(pool);
	uint8_t *b;

	assert_non_null(m);
	b = (uint8_t *)rte_pktmbuf_append(m, 64);
	assert_non_null(b);
	memset(b, 0, 64);
	memcpy(b + 6, OUR_MAC, 6);
	b[12] = 0x08;
	b[14] = marker;
	return m;
}

/* ---- fixture ------------------------------------------------------------- */

struct fx {
	struct rte_rcu_qsbr *v;
	struct sg_neigh_table *t;
	struct sg_neigh_rx_stats rx;
	struct sg_neigh_learn learn;
	uint8_t buf[256];
	uint32_t len;
	int learn_rc;
};

static struct rte_rcu_qsbr *
qsbr_new(uint32_t n)
{
	size_t sz = rte_rcu_qsbr_get_memsize(n);
	struct rte_rcu_qsbr *v = rte_zmalloc(NULL, sz, RTE_CACHE_LINE_SIZE);

	assert_non_null(v);
	assert_int_equal(rte_rcu_qsbr_init(v, n), 0);
	return v;
}

static struct sg_neigh_conf
conf_base(struct rte_rcu_qsbr *v)
{
	struct sg_neigh_conf c = {
		.qsbr = v, .pool = pool, .tx = fake_tx, .max_neighbours = 64, .max_addrs = 64,
		.reachable_ms = 4000, .retry_ms = 1000, .failed_ms = 5000, .max_tries = 3,
		.hold_per_neigh = 4, .hold_total = 16, .socket_id = SOCKET_ID_ANY,
	};
	return c;
}

static struct sg_neigh_port_conf
port0(void)
{
	struct sg_neigh_port_conf pc = {
		.port = 0, .flags = SG_NEIGH_PORT_IPV4 | SG_NEIGH_PORT_IPV6, .ip4_prefix = 24,
		.ip6_prefix = 64,
	};
	memcpy(pc.mac, OUR_MAC, 6);
	memcpy(pc.ip4, OUR4, 4);
	memcpy(pc.ip6, OUR6, 16);
	return pc;
}

static void
fx_init(struct fx *f, const struct sg_neigh_conf *c)
{
	struct sg_neigh_port_conf pc = port0();
	struct sg_neigh_conf cc;

	memset(f, 0, sizeof(*f));
	caps_reset();
	f->v = qsbr_new(1);
	cc = c != NULL ? *c : conf_base(f->v);
	cc.qsbr = f->v;
	f->t = sg_neigh_create(&cc);
	assert_non_null(f->t);
	assert_int_equal(sg_neigh_port_set(f->t, &pc), 0);
}

static void
fx_fini(struct fx *f)
{
	sg_neigh_free(f->t);
	rte_free(f->v);
	assert_int_equal(rte_mempool_in_use_count(pool), 0);
}

/* What a worker does with a frame received on port. */
static unsigned int
rx_port(struct fx *f, uint16_t port, const uint8_t *frame, uint32_t len)
{
	struct sg_pkt_info pi;

	memset(f->buf, 0xee, sizeof(f->buf));
	memcpy(f->buf, frame, len);
	f->len = len;
	assert_int_equal(sg_pkt_parse(f->buf, len, &pi), SG_PKT_OK);
	memset(&f->learn, 0x5a, sizeof(f->learn));
	return sg_neigh_input(f->t, port, f->buf, &f->len, sizeof(f->buf), &pi, &f->learn, &f->rx);
}

static unsigned int
rx(struct fx *f, const uint8_t *frame, uint32_t len)
{
	return rx_port(f, 0, frame, len);
}

/* The worker, then the control thread with what the worker learned. */
static unsigned int
deliver(struct fx *f, const uint8_t *frame, uint32_t len, uint64_t now)
{
	unsigned int r = rx(f, frame, len);

	f->learn_rc = 1;
	if (r & SG_NEIGH_RX_LEARN)
		f->learn_rc = sg_neigh_learn(f->t, &f->learn, now);
	return r;
}

static struct sg_neigh_stats
stats(const struct fx *f)
{
	struct sg_neigh_stats st;

	assert_int_equal(sg_neigh_stats_get(f->t, &st), 0);
	return st;
}

static struct sg_neigh_key
k4(const uint8_t a[4])
{
	struct sg_neigh_key k;

	sg_neigh_key4(&k, 0, a);
	return k;
}

static struct sg_neigh_key
k6(const uint8_t a[16])
{
	struct sg_neigh_key k;

	sg_neigh_key6(&k, 0, a);
	return k;
}

static uint64_t
word_of(const uint8_t mac[6])
{
	return SG_NEIGH_W_VALID | sg_neigh_mac_word(mac);
}

/* ARP reply from NH (NH_MAC, 192.0.2.50) to us. */
static uint32_t
arp_reply_nh(uint8_t *b, const uint8_t *mac)
{
	return arp_in(b, 2, mac, OUR_MAC, mac, NH4, OUR_MAC, OUR4);
}

/* ---- invalid arguments --------------------------------------------------- */

static void
test_create_invalid(void **state)
{
	struct rte_rcu_qsbr *v = qsbr_new(1);
	struct sg_neigh_conf ok = conf_base(v);

	(void)state;
	errno = 0;
	assert_null(sg_neigh_create(NULL));
	assert_int_equal(errno, EINVAL);
	for (int i = 0; i < 12; i++) {
		struct sg_neigh_conf c = ok;

		switch (i) {
		case 0: c.qsbr = NULL; break;
		case 1: c.pool = NULL; break;
		case 2: c.tx = NULL; break;
		case 3: c.max_neighbours = 0; break;
		case 4: c.max_neighbours = SG_NEIGH_MAX_ENTRIES_LIMIT + 1; break;
		case 5: c.max_addrs = 0; break;
		case 6: c.max_addrs = SG_NEIGH_MAX_ADDRS_LIMIT + 1; break;
		case 7: c.max_tries = SG_NEIGH_MAX_TRIES_LIMIT + 1; break;
		case 8: c.hold_per_neigh = SG_NEIGH_HOLD_MAX + 1; break;
		case 9: c.hold_per_neigh = 8; c.hold_total = 4; break;
		case 10: c.hold_per_neigh = 0; c.hold_total = 2; break; /* default 4 > 2 */
		default: c = ok; c.max_neighbours = 1; break;
		}
		errno = 0;
		if (i == 11) {
			struct sg_neigh_table *t = sg_neigh_create(&c);

			assert_non_null(t);
			sg_neigh_free(t);
			continue;
		}
		assert_null(sg_neigh_create(&c));
		assert_int_equal(errno, EINVAL);
	}
	sg_neigh_free(NULL);
	rte_free(v);
}

static void
test_null_arguments(void **state)
{
	struct fx f;
	struct sg_neigh_key k = k4(VIP4), bad;
	struct sg_neigh_port_conf pc;
	struct sg_neigh_stats st;
	struct sg_neigh_learn l;
	uint8_t flags[2];
	uint64_t words[2];

	(void)state;
	fx_init(&f, NULL);
	assert_int_equal(sg_neigh_port_set(NULL, &pc), -EINVAL);
	assert_int_equal(sg_neigh_port_set(f.t, NULL), -EINVAL);
	assert_int_equal(sg_neigh_port_remove(NULL, 0), -EINVAL);
	assert_int_equal(sg_neigh_port_remove(f.t, SG_NEIGH_MAX_PORTS), -EINVAL);
	assert_int_equal(sg_neigh_port_remove(f.t, 1), -ENOENT);
	assert_int_equal(sg_neigh_port_get(NULL, 0, &pc), -EINVAL);
	assert_int_equal(sg_neigh_port_get(f.t, 0, NULL), -EINVAL);
	assert_int_equal(sg_neigh_port_get(f.t, 1, &pc), -ENOENT);
	assert_int_equal(sg_neigh_addr_add(NULL, &k, SG_NEIGH_ADDR_VIP), -EINVAL);
	assert_int_equal(sg_neigh_addr_add(f.t, NULL, SG_NEIGH_ADDR_VIP), -EINVAL);
	assert_int_equal(sg_neigh_addr_remove(NULL, &k, SG_NEIGH_ADDR_VIP), -EINVAL);
	assert_int_equal(sg_neigh_addr_remove(f.t, NULL, SG_NEIGH_ADDR_VIP), -EINVAL);
	assert_int_equal(sg_neigh_addr_foreach(NULL, NULL, NULL), -EINVAL);
	assert_int_equal(sg_neigh_addr_foreach(f.t, NULL, NULL), -EINVAL);
	memset(&l, 0, sizeof(l));
	assert_int_equal(sg_neigh_learn(NULL, &l, 0), -EINVAL);
	assert_int_equal(sg_neigh_learn(f.t, NULL, 0), -EINVAL);
	assert_int_equal(sg_neigh_hold(NULL, &k, NULL, 0), -EINVAL);
	assert_int_equal(sg_neigh_hold(f.t, NULL, pkt_new(1), 0), -EINVAL);
	assert_int_equal(sg_neigh_announce(NULL, &k, 1, 0, 0), -EINVAL);
	assert_int_equal(sg_neigh_announce(f.t, NULL, 1, 0, 0), -EINVAL);
	assert_int_equal(sg_neigh_tick(NULL, 0), -EINVAL);
	assert_int_equal(sg_neigh_set_reachable(NULL, 1), -EINVAL);
	assert_int_equal(sg_neigh_set_reachable(f.t, 0), -EINVAL);
	assert_int_equal(sg_neigh_stats_get(NULL, &st), -EINVAL);
	assert_int_equal(sg_neigh_stats_get(f.t, NULL), -EINVAL);
	assert_int_equal(sg_neigh_foreach(NULL, 0, NULL, NULL), -EINVAL);
	assert_int_equal(sg_neigh_foreach(f.t, 0, NULL, NULL), -EINVAL);

	/* Bulk lookups out of range find nothing and say so. */
	words[0] = words[1] = 7;
	flags[0] = flags[1] = 7;
	assert_int_equal(sg_neigh_lookup_bulk(f.t, &k, 0, words), 0);
	assert_int_equal(sg_neigh_owned_bulk(f.t, &k, 0, flags), 0);
	assert_int_equal(words[0], 7);

	/* Keys the tables must never see. */
	for (int i = 0; i < 6; i++) {
		bad = k4(VIP4);
		switch (i) {
		case 0: bad.family = 5; break;
		case 1: bad.zero = 1; break;
		case 2: bad.addr[4] = 1; break;
		case 3: bad.port = SG_NEIGH_MAX_PORTS; break;
		case 4: bad.addr[0] = 224; break;			/* multicast */
		default: memset(bad.addr, 0, 4); break;		/* unspecified */
		}
		assert_int_equal(sg_neigh_addr_add(f.t, &bad, SG_NEIGH_ADDR_VIP), -EINVAL);
		assert_int_equal(sg_neigh_hold(f.t, &bad, pkt_new(2), 0), -EINVAL);
		l.key = bad;
		l.flags = SG_NEIGH_L_MAC | SG_NEIGH_L_TO_US;
		memcpy(l.mac, PEER_MAC, 6);
		assert_int_equal(sg_neigh_learn(f.t, &l, 0), -EINVAL);
	}
	bad = k6(VIP6);
	bad.addr[0] = 0xff;
	assert_int_equal(sg_neigh_addr_add(f.t, &bad, SG_NEIGH_ADDR_VIP), -EINVAL);
	assert_int_equal(sg_neigh_addr_add(f.t, &k, 0), -EINVAL);
	assert_int_equal(sg_neigh_addr_add(f.t, &k, 0x80), -EINVAL);
	assert_int_equal(sg_neigh_addr_remove(f.t, &k, SG_NEIGH_ADDR_VIP), -ENOENT);
	bad = k;
	bad.port = 1;
	assert_int_equal(sg_neigh_addr_add(f.t, &bad, SG_NEIGH_ADDR_VIP), -ENOENT);
	assert_int_equal(sg_neigh_hold(f.t, &bad, pkt_new(3), 0), -EADDRNOTAVAIL);

	/* Learn records that do not make sense. */
	l.key = k4(PEER4);
	memcpy(l.mac, PEER_MAC, 6);
	l.flags = 0x80;
	assert_int_equal(sg_neigh_learn(f.t, &l, 0), -EINVAL);
	l.flags = SG_NEIGH_L_MAC | SG_NEIGH_L_TO_US;
	memcpy(l.mac, BCAST, 6);
	assert_int_equal(sg_neigh_learn(f.t, &l, 0), -EINVAL);
	l.key.port = 1;
	memcpy(l.mac, PEER_MAC, 6);
	assert_int_equal(sg_neigh_learn(f.t, &l, 0), -EINVAL);

	/* Announcements: a repeat needs an interval; only owned addresses. */
	assert_int_equal(sg_neigh_announce(f.t, &k, 2, 0, 0), -EINVAL);
	assert_int_equal(sg_neigh_announce(f.t, &k, 1, 0, 0), -EADDRNOTAVAIL);
	assert_int_equal(sg_neigh_announce(f.t, &k, 0, 0, 0), -ENOENT);

	/* Nothing was held or sent; every mbuf went back (checked in fini). */
	assert_int_equal(n_caps, 0);
	st = stats(&f);
	assert_int_equal(st.neighbours, 0);
	assert_int_equal(st.held, 0);
	assert_true(st.invalid >= 8);
	fx_fini(&f);
}

static void
test_port_invalid(void **state)
{
	struct fx f;

	(void)state;
	fx_init(&f, NULL);
	for (int i = 0; i < 13; i++) {
		struct sg_neigh_port_conf pc = port0();

		pc.port = 2;
		switch (i) {
		case 0: pc.port = SG_NEIGH_MAX_PORTS; break;
		case 1: pc.flags |= 0x80; break;
		case 2: pc.mac[0] = 0x01; break;		/* multicast */
		case 3: memset(pc.mac, 0, 6); break;
		case 4: memset(pc.ip4, 0, 4); break;
		case 5: pc.ip4[0] = 239; break;
		case 6: memset(pc.ip4, 0xff, 4); break;
		case 7: pc.ip4_prefix = 0; break;
		case 8: pc.ip4_prefix = 33; break;
		case 9: pc.ip6[0] = 0xff; break;
		case 10: memcpy(pc.ip6, OUR_LL, 16); break;	/* derived, not given */
		case 11: pc.ip6_prefix = 0; break;
		default: pc.ip6_prefix = 129; break;
		}
		assert_int_equal(sg_neigh_port_set(f.t, &pc), -EINVAL);
	}
	assert_int_equal(stats(&f).addrs, 3);
	fx_fini(&f);
}

/* ---- DPDK-free helpers and builders -------------------------------------- */

static void
test_addr_helpers(void **state)
{
	/* RFC 4291 §2.7.1 and RFC 2464 §7 examples of our own. */
	const uint8_t a[16] = { 0x20, 0x01, 0x0d, 0xb8, [12] = 0x12, [13] = 0x34, [14] = 0x56,
				[15] = 0x78 };
	const uint8_t sn[16] = { 0xff, 0x02, [11] = 0x01, [12] = 0xff, [13] = 0x34, [14] = 0x56,
				 [15] = 0x78 };
	const uint8_t sn_mac[6] = { 0x33, 0x33, 0xff, 0x34, 0x56, 0x78 };
	/* 52:54:00:12:34:56 -> fe80::5054:ff:fe12:3456 (RFC 4291 appendix A) */
	const uint8_t mac[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };
	const uint8_t ll[16] = { 0xfe, 0x80, [8] = 0x50, [9] = 0x54, [10] = 0x00, [11] = 0xff,
				 [12] = 0xfe, [13] = 0x12, [14] = 0x34, [15] = 0x56 };
	uint8_t out[16], m[6];

	(void)state;
	sg_neigh_solicited_node(a, out);
	assert_memory_equal(out, sn, 16);
	sg_neigh_mcast_mac(sn, m);
	assert_memory_equal(m, sn_mac, 6);
	sg_neigh_link_local(mac, out);
	assert_memory_equal(out, ll, 16);
	sg_neigh_link_local(OUR_MAC, out);
	assert_memory_equal(out, OUR_LL, 16);

	assert_int_equal(sg_neigh_mac_word(NH_MAC), 0x020000000005ull);
	sg_neigh_word_mac(word_of(NH_MAC), m);
	assert_memory_equal(m, NH_MAC, 6);
	assert_true(sg_neigh_word_usable(word_of(NH_MAC)));
	assert_false(sg_neigh_word_usable(0));
	assert_true(sg_neigh_word_failed(SG_NEIGH_W_FAILED));

	assert_string_equal(sg_neigh_state_name(SG_NEIGH_REACHABLE), "reachable");
	assert_string_equal(sg_neigh_state_name(SG_NEIGH_FREE), "?");
	assert_string_equal(sg_neigh_state_name(99), "?");
	assert_string_equal(sg_neigh_nd_reason_name(SG_NEIGH_ND_HOP_LIMIT), "hop_limit");
	assert_string_equal(sg_neigh_nd_reason_name(SG_NEIGH_ND_REASON_COUNT), "?");
	for (unsigned int r = 0; r < SG_NEIGH_ND_REASON_COUNT; r++)
		assert_non_null(sg_neigh_nd_reason_name(r));
}

static void
test_arp_answer_bytes(void **state)
{
	uint8_t b[128];
	struct sg_pkt_info pi;

	(void)state;
	memcpy(b, arp_req, 60);
	assert_int_equal(sg_pkt_parse(b, 60, &pi), SG_PKT_OK);
	assert_int_equal(sg_neigh_arp_answer(b, 60, &pi, OUR_MAC), 60);
	assert_memory_equal(b, arp_rep, 60);

	/* A reply is no request: refused, untouched. */
	assert_int_equal(sg_pkt_parse(b, 60, &pi), SG_PKT_OK);
	assert_int_equal(sg_neigh_arp_answer(b, 60, &pi, OUR_MAC), -EINVAL);
	assert_memory_equal(b, arp_rep, 60);

	/* The tag stays where it is. */
	memcpy(b, arp_req_vlan, 64);
	assert_int_equal(sg_pkt_parse(b, 64, &pi), SG_PKT_OK);
	assert_int_equal(sg_neigh_arp_answer(b, 64, &pi, OUR_MAC), 64);
	assert_memory_equal(b, arp_rep_vlan, 64);

	/* Not ARP at all. */
	memcpy(b, ns_frame, sizeof(ns_frame));
	assert_int_equal(sg_pkt_parse(b, sizeof(ns_frame), &pi), SG_PKT_OK);
	assert_int_equal(sg_neigh_arp_answer(b, sizeof(ns_frame), &pi, OUR_MAC), -EINVAL);
}

static void
test_na_answer_bytes(void **state)
{
	uint8_t b[128];
	struct sg_pkt_info pi;
	struct sg_neigh_nd nd;

	(void)state;
	memset(b, 0xee, sizeof(b));
	memcpy(b, ns_frame, sizeof(ns_frame));
	assert_true(icmp6_csum_ok(b, 14));
	assert_int_equal(sg_pkt_parse(b, sizeof(ns_frame), &pi), SG_PKT_OK);
	assert_int_equal(sg_neigh_nd_parse(b, &pi, &nd), SG_NEIGH_ND_OK);
	assert_int_equal(nd.type, 135);
	assert_memory_equal(nd.target, OUR6, 16);
	assert_int_equal(nd.has_lla, 1);
	assert_memory_equal(nd.lla, PEER_MAC, 6);

	/* Too little room: refused before anything is written. */
	assert_int_equal(sg_neigh_na_answer(b, 85, &pi, &nd, OUR_MAC), -ENOSPC);
	assert_memory_equal(b, ns_frame, sizeof(ns_frame));

	assert_int_equal(sg_neigh_na_answer(b, sizeof(b), &pi, &nd, OUR_MAC), 86);
	assert_memory_equal(b, na_frame, sizeof(na_frame));
	assert_true(icmp6_csum_ok(b, 14));
	assert_int_equal(b[86], 0xee);

	/* An NA is no NS. */
	assert_int_equal(sg_pkt_parse(b, 86, &pi), SG_PKT_OK);
	assert_int_equal(sg_neigh_na_answer(b, sizeof(b), &pi, &nd, OUR_MAC), -EINVAL);

	/* DAD: 78 bytes in, 86 out, to all-nodes without the solicited flag. */
	memset(b, 0xee, sizeof(b));
	memcpy(b, dad_ns_frame, sizeof(dad_ns_frame));
	assert_true(icmp6_csum_ok(b, 14));
	assert_int_equal(sg_pkt_parse(b, sizeof(dad_ns_frame), &pi), SG_PKT_OK);
	assert_int_equal(sg_neigh_nd_parse(b, &pi, &nd), SG_NEIGH_ND_OK);
	assert_int_equal(nd.has_lla, 0);
	assert_int_equal(sg_neigh_na_answer(b, sizeof(b), &pi, &nd, OUR_MAC), 86);
	assert_memory_equal(b, dad_na_frame, sizeof(dad_na_frame));
	assert_true(icmp6_csum_ok(b, 14));
}

/* An NS with a hop-by-hop header before ICMPv6: answered without it. */
static void
test_na_answer_ext_header(void **state)
{
	uint8_t b[128];
	struct sg_pkt_info pi;
	struct sg_neigh_nd nd;
	uint32_t len;

	(void)state;
	/* Ethernet and IPv6 header of ns_frame, then 8 bytes of hop-by-hop. */
	memset(b, 0, sizeof(b));
	memcpy(b, ns_frame, 54);
	b[19] = 0x28;	/* payload 40 */
	b[20] = 0;	/* next header: hop-by-hop */
	b[54] = 58;	/* then ICMPv6 */
	b[55] = 0;	/* 8 bytes, PadN */
	b[56] = 1;
	b[57] = 4;
	memcpy(b + 62, ns_frame + 54, 32);
	len = 94;
	assert_int_equal(sg_pkt_parse(b, len, &pi), SG_PKT_OK);
	assert_int_equal(pi.l4_off, 62);
	assert_int_equal(sg_neigh_nd_parse(b, &pi, &nd), SG_NEIGH_ND_OK);
	assert_int_equal(sg_neigh_na_answer(b, sizeof(b), &pi, &nd, OUR_MAC), 86);
	assert_memory_equal(b, na_frame, sizeof(na_frame));
}

static void
test_builders_bytes(void **state)
{
	uint8_t b[128], dst[16], dmac[6];

	(void)state;
	assert_int_equal(sg_neigh_arp_build(b, 59, 1, BCAST, OUR_MAC, OUR4, NULL, NH4), -ENOSPC);
	assert_int_equal(sg_neigh_arp_build(b, 60, 3, BCAST, OUR_MAC, OUR4, NULL, NH4), -EINVAL);
	memset(b, 0xee, sizeof(b));
	assert_int_equal(sg_neigh_arp_build(b, sizeof(b), 1, BCAST, OUR_MAC, OUR4, NULL, NH4), 60);
	assert_memory_equal(b, arp_req_nh, 60);
	assert_int_equal(b[60], 0xee);
	assert_int_equal(sg_neigh_arp_build(b, sizeof(b), 1, BCAST, OUR_MAC, VIP4, ZERO_MAC, VIP4),
			 60);
	assert_memory_equal(b, garp_vip, 60);
	assert_int_equal(sg_neigh_arp_build(b, sizeof(b), 2, PEER_MAC, OUR_MAC, OUR4, PEER_MAC,
					    PEER4), 60);
	assert_memory_equal(b, arp_rep, 60);

	sg_neigh_solicited_node(NH6, dst);
	sg_neigh_mcast_mac(dst, dmac);
	assert_int_equal(sg_neigh_ns_build(b, 85, OUR_MAC, dmac, OUR_LL, dst, NH6), -ENOSPC);
	assert_int_equal(sg_neigh_ns_build(b, sizeof(b), OUR_MAC, dmac, OUR_LL, dst, NH6), 86);
	assert_memory_equal(b, ns_nh, 86);
	assert_true(icmp6_csum_ok(b, 14));
	assert_int_equal(sg_neigh_ns_build(b, sizeof(b), OUR_MAC, NH_MAC, OUR_LL, NH6, NH6), 86);
	assert_memory_equal(b, ns_probe_nh, 86);
	assert_true(icmp6_csum_ok(b, 14));
	/* From the unspecified address: no option (RFC 4861 §4.3), 78 bytes. */
	assert_int_equal(sg_neigh_ns_build(b, sizeof(b), OTHER_MAC, SN_MAC_OUR6, UNSPEC, SN_OUR6,
					   OUR6), 78);
	assert_memory_equal(b, dad_ns_frame, 78);

	assert_int_equal(sg_neigh_na_build(b, 85, OUR_MAC, dmac, VIP6, ALL_NODES, VIP6, 0x20),
			 -ENOSPC);
	assert_int_equal(sg_neigh_na_build(b, sizeof(b), OUR_MAC, dmac, VIP6, ALL_NODES, VIP6, 0x01),
			 -EINVAL);
	sg_neigh_mcast_mac(ALL_NODES, dmac);
	assert_int_equal(sg_neigh_na_build(b, sizeof(b), OUR_MAC, dmac, VIP6, ALL_NODES, VIP6,
					   SG_NEIGH_NA_OVERRIDE), 86);
	assert_memory_equal(b, una_vip, 86);
	assert_true(icmp6_csum_ok(b, 14));
}

/* ---- RFC 4861 §7.1 checks ------------------------------------------------- */

struct nd_case {
	const char *name;
	enum sg_neigh_nd_reason want;
	int kind;
};

static void
nd_mutate(struct nd_spec *s, int kind, int *post)
{
	*post = 0;
	switch (kind) {
	case 0: break;
	case 1: s->hop = 254; break;
	case 2: s->code = 1; break;
	case 3: *post = 1; break;				/* 16 bytes of ICMPv6 */
	case 4: *post = 2; break;				/* checksum off by one */
	case 5: s->target = ALL_NODES; break;
	case 6: s->opts[1] = 0; break;				/* option length 0 */
	case 7: s->opts[1] = 2; break;				/* runs past the end */
	case 8:							/* 16-byte SLLA */
		s->opts[1] = 2;
		s->optlen = 16;
		break;
	case 9: s->src = ALL_NODES; break;
	case 10: s->src = UNSPEC; s->dst = OUR6; s->optlen = 0; break;
	case 11: s->src = UNSPEC; break;			/* DAD with SLLA */
	case 12:						/* unknown option skipped */
		s->opts[8] = 14;				/* nonce, RFC 3971 */
		s->opts[9] = 1;
		s->optlen = 16;
		break;
	case 13: s->type = 128; break;				/* echo request */
	default: break;
	}
}

static void
test_nd_validation(void **state)
{
	static const struct nd_case cases[] = {
		{ "valid NS", SG_NEIGH_ND_OK, 0 },
		{ "hop limit 254", SG_NEIGH_ND_HOP_LIMIT, 1 },
		{ "code 1", SG_NEIGH_ND_CODE, 2 },
		{ "16 bytes", SG_NEIGH_ND_SHORT, 3 },
		{ "bad checksum", SG_NEIGH_ND_CSUM, 4 },
		{ "multicast target", SG_NEIGH_ND_TARGET, 5 },
		{ "option length 0", SG_NEIGH_ND_OPTION, 6 },
		{ "option past the end", SG_NEIGH_ND_OPTION, 7 },
		{ "16-byte SLLA", SG_NEIGH_ND_OPTION, 8 },
		{ "multicast source", SG_NEIGH_ND_SOURCE, 9 },
		{ "DAD to a unicast address", SG_NEIGH_ND_DAD_DST, 10 },
		{ "DAD with SLLA", SG_NEIGH_ND_DAD_SLLA, 11 },
		{ "unknown option", SG_NEIGH_ND_OK, 12 },
		{ "echo request", SG_NEIGH_ND_NOT_ND, 13 },
	};
	struct fx f;

	(void)state;
	fx_init(&f, NULL);
	for (unsigned int i = 0; i < SG_ARRAY_SIZE(cases); i++) {
		struct nd_spec s = ns_spec(OUR6);
		struct sg_neigh_rx_stats before = f.rx;
		struct sg_pkt_info pi;
		struct sg_neigh_nd nd;
		uint8_t b[128], copy[128];
		uint32_t len;
		unsigned int r;
		int post;

		nd_mutate(&s, cases[i].kind, &post);
		len = nd_in(b, &s);
		if (post == 1) {
			b[19] = 16;
			len = 14 + 40 + 16;
			icmp6_csum_fix(b, 14);
		} else if (post == 2) {
			b[14 + 40 + 3] ^= 1;
		}
		assert_int_equal(sg_pkt_parse(b, len, &pi), SG_PKT_OK);
		if (sg_neigh_nd_parse(b, &pi, &nd) != cases[i].want)
			fail_msg("%s: got %s", cases[i].name,
				 sg_neigh_nd_reason_name(sg_neigh_nd_parse(b, &pi, &nd)));

		/* Through a worker: counted by reason, never answered. */
		memcpy(copy, b, len);
		r = rx(&f, b, len);
		if (cases[i].want == SG_NEIGH_ND_OK) {
			assert_true(r & SG_NEIGH_RX_REPLY);
			continue;
		}
		assert_int_equal(r, 0);
		assert_memory_equal(f.buf, copy, len);
		assert_int_equal(f.rx.nd_invalid[cases[i].want],
				 before.nd_invalid[cases[i].want] + 1);
	}
	/* The same checks for an NA: S set towards a multicast address. */
	{
		struct nd_spec s = na_spec(NH6, ALL_NODES, SG_NEIGH_NA_SOLICITED, NH_MAC);
		struct sg_pkt_info pi;
		struct sg_neigh_nd nd;
		uint8_t b[128];
		uint32_t len = nd_in(b, &s);

		assert_int_equal(sg_pkt_parse(b, len, &pi), SG_PKT_OK);
		assert_int_equal(sg_neigh_nd_parse(b, &pi, &nd), SG_NEIGH_ND_SOLICITED_MCAST);
		s = na_spec(NH6, ALL_NODES, SG_NEIGH_NA_OVERRIDE, NH_MAC);
		len = nd_in(b, &s);
		assert_int_equal(sg_pkt_parse(b, len, &pi), SG_PKT_OK);
		assert_int_equal(sg_neigh_nd_parse(b, &pi, &nd), SG_NEIGH_ND_OK);
		assert_int_equal(nd.flags, SG_NEIGH_NA_OVERRIDE);
		assert_memory_equal(nd.lla, NH_MAC, 6);
		s.hop = 64;
		len = nd_in(b, &s);
		assert_int_equal(sg_pkt_parse(b, len, &pi), SG_PKT_OK);
		assert_int_equal(sg_neigh_nd_parse(b, &pi, &nd), SG_NEIGH_ND_HOP_LIMIT);
	}
	assert_int_equal(n_caps, 0);
	fx_fini(&f);
}

/* ---- what a worker answers ----------------------------------------------- */

static void
test_input_arp(void **state)
{
	struct sg_neigh_key vip = k4(VIP4);
	struct fx f;
	uint8_t b[64];
	uint32_t len;

	(void)state;
	fx_init(&f, NULL);

	/* For the port address: answered in place, and PEER reported. */
	assert_int_equal(rx(&f, arp_req, 60), SG_NEIGH_RX_REPLY | SG_NEIGH_RX_LEARN);
	assert_int_equal(f.len, 60);
	assert_memory_equal(f.buf, arp_rep, 60);
	assert_int_equal(f.rx.arp_answered, 1);
	assert_int_equal(f.learn.key.family, 4);
	assert_memory_equal(f.learn.key.addr, PEER4, 4);
	assert_memory_equal(f.learn.mac, PEER_MAC, 6);
	assert_int_equal(f.learn.flags, SG_NEIGH_L_MAC | SG_NEIGH_L_TO_US);
	assert_int_equal(f.learn.pad, 0);

	/* Tagged: answered with the tag. */
	assert_int_equal(rx(&f, arp_req_vlan, 64), SG_NEIGH_RX_REPLY | SG_NEIGH_RX_LEARN);
	assert_memory_equal(f.buf, arp_rep_vlan, 64);

	/* Not ours: counted, untouched, and PEER (unknown, not to us) not reported. */
	len = arp_in(b, 1, PEER_MAC, BCAST, PEER_MAC, PEER4, ZERO_MAC, NOT_OURS4);
	assert_int_equal(rx(&f, b, len), 0);
	assert_memory_equal(f.buf, b, len);
	assert_int_equal(f.rx.arp_not_ours, 1);

	/* A VIP is answered once owned, and no longer once removed. */
	len = arp_in(b, 1, PEER_MAC, BCAST, PEER_MAC, PEER4, ZERO_MAC, VIP4);
	assert_int_equal(rx(&f, b, len) & SG_NEIGH_RX_REPLY, 0);
	assert_int_equal(sg_neigh_addr_add(f.t, &vip, SG_NEIGH_ADDR_VIP), 0);
	assert_int_equal(rx(&f, b, len) & SG_NEIGH_RX_REPLY, SG_NEIGH_RX_REPLY);
	assert_memory_equal(f.buf + 22, OUR_MAC, 6);
	assert_memory_equal(f.buf + 28, VIP4, 4);
	assert_int_equal(sg_neigh_addr_remove(f.t, &vip, SG_NEIGH_ADDR_VIP), 0);
	assert_int_equal(rx(&f, b, len) & SG_NEIGH_RX_REPLY, 0);

	/* An ARP probe (RFC 5227: sender 0.0.0.0) for our address is defended, unlearned. */
	len = arp_in(b, 1, OTHER_MAC, BCAST, OTHER_MAC, ZERO4, ZERO_MAC, OUR4);
	assert_int_equal(rx(&f, b, len), SG_NEIGH_RX_REPLY);
	assert_memory_equal(f.buf, OTHER_MAC, 6);
	assert_memory_equal(f.buf + 38, ZERO4, 4);

	/* Someone else sending as 192.0.2.1: a conflict, never answered. */
	len = arp_in(b, 1, OTHER_MAC, BCAST, OTHER_MAC, OUR4, ZERO_MAC, OUR4);
	assert_int_equal(rx(&f, b, len), SG_NEIGH_RX_LEARN);
	assert_int_equal(f.learn.flags, SG_NEIGH_L_CONFLICT | SG_NEIGH_L_MAC);
	assert_memory_equal(f.learn.mac, OTHER_MAC, 6);
	assert_int_equal(f.rx.conflicts, 1);
	assert_int_equal(sg_neigh_learn(f.t, &f.learn, 0), 0);
	assert_int_equal(sg_neigh_learn(f.t, &f.learn, 1), 0);
	assert_int_equal(stats(&f).conflicts, 2);

	/* Our own request coming back; bad opcode; multicast sender; bad sender IP. */
	len = arp_in(b, 1, OUR_MAC, BCAST, OUR_MAC, OUR4, ZERO_MAC, PEER4);
	assert_int_equal(rx(&f, b, len), 0);
	assert_int_equal(f.rx.own, 1);
	len = arp_in(b, 3, PEER_MAC, BCAST, PEER_MAC, PEER4, ZERO_MAC, OUR4);
	assert_int_equal(rx(&f, b, len), 0);
	len = arp_in(b, 1, PEER_MAC, BCAST, BCAST, PEER4, ZERO_MAC, OUR4);
	assert_int_equal(rx(&f, b, len), 0);
	len = arp_in(b, 1, PEER_MAC, BCAST, PEER_MAC, (const uint8_t[4]){ 224, 0, 0, 1 },
		     ZERO_MAC, OUR4);
	assert_int_equal(rx(&f, b, len), 0);
	assert_int_equal(f.rx.arp_invalid, 3);

	/* A port we do not know. */
	assert_int_equal(rx_port(&f, 1, arp_req, 60), 0);
	assert_int_equal(rx_port(&f, SG_NEIGH_MAX_PORTS, arp_req, 60), 0);
	assert_int_equal(f.rx.unknown_port, 2);
	assert_int_equal(f.rx.arp_answered, 4);
	fx_fini(&f);
}

static void
test_input_ns(void **state)
{
	struct fx f;
	struct nd_spec s;
	uint8_t b[128];
	uint32_t len;
	struct sg_pkt_info pi;

	(void)state;
	fx_init(&f, NULL);
	assert_int_equal(rx(&f, ns_frame, sizeof(ns_frame)), SG_NEIGH_RX_REPLY | SG_NEIGH_RX_LEARN);
	assert_int_equal(f.len, 86);
	assert_memory_equal(f.buf, na_frame, 86);
	assert_int_equal(f.learn.key.family, 6);
	assert_memory_equal(f.learn.key.addr, PEER6, 16);
	assert_memory_equal(f.learn.mac, PEER_MAC, 6);
	assert_int_equal(f.learn.flags, SG_NEIGH_L_MAC | SG_NEIGH_L_TO_US);
	assert_int_equal(f.rx.ns_answered, 1);

	/* The link-local, which our own solicitations come from, is answered. */
	s = ns_spec(OUR_LL);
	s.dst = OUR_LL;
	s.eth_dst = OUR_MAC;
	len = nd_in(b, &s);
	assert_int_equal(rx(&f, b, len) & SG_NEIGH_RX_REPLY, SG_NEIGH_RX_REPLY);
	assert_memory_equal(f.buf + 14 + 8, OUR_LL, 16);
	assert_memory_equal(f.buf + 14 + 40 + 8, OUR_LL, 16);
	assert_true(icmp6_csum_ok(f.buf, 14));

	/* A unicast NS without the option: answered to the frame's source. */
	s = ns_spec(OUR6);
	s.dst = OUR6;
	s.eth_dst = OUR_MAC;
	s.eth_src = OTHER_MAC;
	s.optlen = 0;
	len = nd_in(b, &s);
	assert_int_equal(rx(&f, b, len), SG_NEIGH_RX_REPLY);
	assert_memory_equal(f.buf, OTHER_MAC, 6);

	/* Not ours. */
	s = ns_spec(NOT_OURS6);
	len = nd_in(b, &s);
	assert_int_equal(rx(&f, b, len) & SG_NEIGH_RX_REPLY, 0);
	assert_int_equal(f.rx.ns_not_ours, 1);

	/* DAD for our address: defended to all-nodes, nothing learned. */
	assert_int_equal(rx(&f, dad_ns_frame, sizeof(dad_ns_frame)), SG_NEIGH_RX_REPLY);
	assert_memory_equal(f.buf, dad_na_frame, 86);

	/* Someone else soliciting from our address: a conflict. */
	s = ns_spec(PEER6);
	s.src = OUR6;
	s.eth_src = OTHER_MAC;
	s.opts[7] = 0x03;
	len = nd_in(b, &s);
	assert_int_equal(rx(&f, b, len), SG_NEIGH_RX_LEARN);
	assert_int_equal(f.learn.flags, SG_NEIGH_L_CONFLICT | SG_NEIGH_L_MAC);
	assert_memory_equal(f.learn.mac, OTHER_MAC, 6);

	/* No room for the answer in the buffer: counted, not sent. */
	memcpy(b, dad_ns_frame, sizeof(dad_ns_frame));
	assert_int_equal(sg_pkt_parse(b, sizeof(dad_ns_frame), &pi), SG_PKT_OK);
	len = sizeof(dad_ns_frame);
	assert_int_equal(sg_neigh_input(f.t, 0, b, &len, 80, &pi, &f.learn, &f.rx), 0);
	assert_int_equal(f.rx.no_room, 1);
	assert_memory_equal(b, dad_ns_frame, sizeof(dad_ns_frame));

	/* An NS on a port without IPv6 owns nothing there. */
	{
		struct sg_neigh_port_conf pc = port0();

		pc.flags = SG_NEIGH_PORT_IPV4;
		assert_int_equal(sg_neigh_port_set(f.t, &pc), 0);
		assert_int_equal(rx(&f, ns_frame, sizeof(ns_frame)) & SG_NEIGH_RX_REPLY, 0);
	}
	assert_int_equal(n_caps, 0);
	fx_fini(&f);
}

/* The generation moves with every change of a word and every removal, and only then. */
static void
test_generation(void **state)
{
	struct sg_neigh_key kp = k4(PEER4);
	struct sg_neigh_learn l = { .key = kp, .flags = SG_NEIGH_L_MAC | SG_NEIGH_L_TO_US };
	struct fx f;
	uint64_t g;

	(void)state;
	fx_init(&f, NULL);
	g = sg_neigh_generation(f.t);
	memcpy(l.mac, PEER_MAC, 6);
	assert_int_equal(sg_neigh_learn(f.t, &l, 10), 0);		/* created */
	assert_true(sg_neigh_generation(f.t) > g);
	g = sg_neigh_generation(f.t);
	assert_int_equal(sg_neigh_learn(f.t, &l, 20), 0);		/* confirmed, same word */
	assert_true(sg_neigh_generation(f.t) == g);
	memcpy(l.mac, OTHER_MAC, 6);
	assert_int_equal(sg_neigh_learn(f.t, &l, 30), 0);		/* a new MAC */
	assert_true(sg_neigh_generation(f.t) > g);
	g = sg_neigh_generation(f.t);
	/* A learned entry ages out after reachable_ms: a removal moves it too. */
	for (uint64_t now = 40; sg_neigh_lookup(f.t, &kp) != 0 && now < 10000000; now += 10000)
		sg_neigh_tick(f.t, now);
	assert_int_equal(sg_neigh_lookup(f.t, &kp), 0);
	assert_true(sg_neigh_generation(f.t) > g);
	fx_fini(&f);
}

/* ---- learning (RFC 826 merge, RFC 4861 §7.2.3 and §7.2.5) ---------------- */

static void
test_learn_merge(void **state)
{
	struct sg_neigh_key kp = k4(PEER4), k6p = k6(PEER6), knh = k6(NH6);
	struct sg_neigh_stats st;
	struct nd_spec s;
	struct fx f;
	uint8_t b[128];
	uint32_t len;

	(void)state;
	fx_init(&f, NULL);

	/* Not addressed to us, unknown sender: the worker does not bother. */
	len = arp_in(b, 1, PEER_MAC, BCAST, PEER_MAC, PEER4, ZERO_MAC, NOT_OURS4);
	assert_int_equal(deliver(&f, b, len, 0), 0);
	/* And the control thread would not create from such a record either. */
	{
		struct sg_neigh_learn l = { .key = kp, .flags = SG_NEIGH_L_MAC };

		memcpy(l.mac, PEER_MAC, 6);
		assert_int_equal(sg_neigh_learn(f.t, &l, 0), -ENOENT);
	}
	assert_int_equal(sg_neigh_lookup(f.t, &kp), 0);

	/* Addressed to us: created (RFC 826 "Am I the target?"), usable, STALE. */
	assert_int_equal(deliver(&f, arp_req, 60, 10) & SG_NEIGH_RX_LEARN, SG_NEIGH_RX_LEARN);
	assert_int_equal(f.learn_rc, 0);
	assert_int_equal(sg_neigh_lookup(f.t, &kp), word_of(PEER_MAC));
	st = stats(&f);
	assert_int_equal(st.learn_created, 1);
	assert_int_equal(st.by_state[SG_NEIGH_STALE], 1);

	/* The same sender, same MAC, asking someone else: no news, no record. */
	len = arp_in(b, 1, PEER_MAC, BCAST, PEER_MAC, PEER4, ZERO_MAC, NOT_OURS4);
	assert_int_equal(deliver(&f, b, len, 20), 0);

	/* ... with a new MAC: the merge updates the existing entry. */
	len = arp_in(b, 1, OTHER_MAC, BCAST, OTHER_MAC, PEER4, ZERO_MAC, NOT_OURS4);
	assert_int_equal(deliver(&f, b, len, 30), SG_NEIGH_RX_LEARN);
	assert_int_equal(f.learn_rc, 0);
	assert_int_equal(sg_neigh_lookup(f.t, &kp), word_of(OTHER_MAC));
	st = stats(&f);
	assert_int_equal(st.mac_changes, 1);
	assert_int_equal(st.learn_updated, 1);

	/* A gratuitous ARP (RFC 5227 announcement) updates too. */
	len = arp_in(b, 1, PEER_MAC, BCAST, PEER_MAC, PEER4, ZERO_MAC, PEER4);
	assert_int_equal(deliver(&f, b, len, 40), SG_NEIGH_RX_LEARN);
	assert_int_equal(sg_neigh_lookup(f.t, &kp), word_of(PEER_MAC));

	/* An ARP reply to us from an unknown host creates; one not to us does not. */
	len = arp_in(b, 2, NH_MAC, OUR_MAC, NH_MAC, NH4, OUR_MAC, OUR4);
	assert_int_equal(deliver(&f, b, len, 50), SG_NEIGH_RX_LEARN);
	assert_int_equal(f.learn.flags, SG_NEIGH_L_MAC | SG_NEIGH_L_TO_US | SG_NEIGH_L_REPLY);
	assert_int_equal(f.learn_rc, 0);
	len = arp_in(b, 2, NH_MAC2, PEER_MAC, NH_MAC2, NH4B, PEER_MAC, PEER4);
	assert_int_equal(deliver(&f, b, len, 50), 0);
	assert_int_equal(f.rx.arp_replies, 2);

	/* NS from PEER6 to us: created; the NA it gets is checked elsewhere. */
	assert_int_equal(deliver(&f, ns_frame, sizeof(ns_frame), 60) & SG_NEIGH_RX_LEARN,
			 SG_NEIGH_RX_LEARN);
	assert_int_equal(sg_neigh_lookup(f.t, &k6p), word_of(PEER_MAC));
	/* An NS without SLLA teaches nothing (RFC 4861 §7.2.3). */
	s = ns_spec(OUR6);
	s.dst = OUR6;
	s.eth_src = OTHER_MAC;
	s.optlen = 0;
	len = nd_in(b, &s);
	assert_int_equal(deliver(&f, b, len, 61), SG_NEIGH_RX_REPLY);

	/* An NA never creates (RFC 4861 §7.2.5): the worker drops it. */
	s = na_spec(NH6, OUR_LL, SG_NEIGH_NA_SOLICITED | SG_NEIGH_NA_OVERRIDE, NH_MAC);
	len = nd_in(b, &s);
	assert_int_equal(deliver(&f, b, len, 70), 0);
	assert_int_equal(f.rx.na_received, 1);
	{
		struct sg_neigh_learn l = { .key = knh,
					    .flags = SG_NEIGH_L_MAC | SG_NEIGH_L_TO_US |
						     SG_NEIGH_L_REPLY };

		memcpy(l.mac, NH_MAC, 6);
		assert_int_equal(sg_neigh_learn(f.t, &l, 70), -ENOENT);
	}

	/* With an entry: an NA without override keeps a known MAC ... */
	s = na_spec(PEER6, OUR_LL, SG_NEIGH_NA_SOLICITED, OTHER_MAC);
	len = nd_in(b, &s);
	assert_int_equal(deliver(&f, b, len, 80), SG_NEIGH_RX_LEARN);
	assert_int_equal(f.learn_rc, -ENOENT);
	assert_int_equal(sg_neigh_lookup(f.t, &k6p), word_of(PEER_MAC));
	/* ... with override it changes it ... */
	s = na_spec(PEER6, ALL_NODES, SG_NEIGH_NA_OVERRIDE, OTHER_MAC);
	len = nd_in(b, &s);
	assert_int_equal(deliver(&f, b, len, 90), SG_NEIGH_RX_LEARN);
	assert_int_equal(f.learn_rc, 0);
	assert_int_equal(sg_neigh_lookup(f.t, &k6p), word_of(OTHER_MAC));
	/* ... an unsolicited one repeating what we know is no news ... */
	assert_int_equal(deliver(&f, b, len, 95), 0);
	/* ... and one without the option, solicited, to us, only confirms. */
	s = na_spec(PEER6, OUR_LL, SG_NEIGH_NA_SOLICITED, NULL);
	s.eth_src = OTHER_MAC;
	len = nd_in(b, &s);
	assert_int_equal(deliver(&f, b, len, 100), SG_NEIGH_RX_LEARN);
	assert_int_equal(f.learn.flags,
			 SG_NEIGH_L_TO_US | SG_NEIGH_L_REPLY | SG_NEIGH_L_SOLICITED);
	assert_int_equal(f.learn_rc, 0);
	assert_int_equal(sg_neigh_lookup(f.t, &k6p), word_of(OTHER_MAC));

	/* An NA claiming our own address: a conflict. */
	s = na_spec(OUR6, ALL_NODES, SG_NEIGH_NA_OVERRIDE, OTHER_MAC);
	len = nd_in(b, &s);
	assert_int_equal(deliver(&f, b, len, 110), SG_NEIGH_RX_LEARN);
	assert_int_equal(f.learn.flags, SG_NEIGH_L_CONFLICT | SG_NEIGH_L_MAC);
	st = stats(&f);
	assert_int_equal(st.conflicts, 1);
	assert_int_equal(st.neighbours, 3);
	assert_int_equal(st.learn_created, 3);
	assert_int_equal(n_caps, 0);
	fx_fini(&f);
}

/* ---- resolution ---------------------------------------------------------- */

static void
test_hold_release_ipv4(void **state)
{
	struct sg_neigh_key k = k4(NH4);
	struct sg_neigh_stats st;
	struct fx f;
	uint8_t b[64];
	uint32_t len;

	(void)state;
	fx_init(&f, NULL);
	assert_int_equal(sg_neigh_hold(f.t, &k, pkt_new(1), 0), 0);
	/* The first request goes out at once, broadcast (RFC 826). */
	assert_int_equal(n_caps, 1);
	assert_cap(0, arp_req_nh, 60);
	assert_int_equal(sg_neigh_hold(f.t, &k, pkt_new(2), 1), 0);
	assert_int_equal(sg_neigh_hold(f.t, &k, pkt_new(3), 2), 0);
	assert_int_equal(n_caps, 1);
	assert_int_equal(sg_neigh_lookup(f.t, &k), 0);
	st = stats(&f);
	assert_int_equal(st.held, 3);
	assert_int_equal(st.by_state[SG_NEIGH_INCOMPLETE], 1);
	assert_int_equal(st.requests, 1);

	/* The reply: the three leave in order with its MAC. */
	len = arp_reply_nh(b, NH_MAC);
	assert_int_equal(deliver(&f, b, len, 5), SG_NEIGH_RX_LEARN);
	assert_int_equal(f.learn_rc, 0);
	assert_int_equal(n_caps, 4);
	for (unsigned int i = 1; i < 4; i++) {
		assert_int_equal(caps[i].len, 64);
		assert_memory_equal(caps[i].data, NH_MAC, 6);
		assert_memory_equal(caps[i].data + 6, OUR_MAC, 6);
		assert_int_equal(caps[i].data[14], i);
	}
	assert_int_equal(sg_neigh_lookup(f.t, &k), word_of(NH_MAC));
	st = stats(&f);
	assert_int_equal(st.held, 0);
	assert_int_equal(st.held_sent, 3);
	assert_int_equal(st.resolved, 1);
	assert_int_equal(st.by_state[SG_NEIGH_REACHABLE], 1);

	/* A late hand-over for a resolved neighbour leaves at once. */
	assert_int_equal(sg_neigh_hold(f.t, &k, pkt_new(9), 6), 0);
	assert_int_equal(n_caps, 5);
	assert_memory_equal(caps[4].data, NH_MAC, 6);
	/* Resolving without a packet: nothing to do for a known neighbour. */
	assert_int_equal(sg_neigh_hold(f.t, &k, NULL, 7), 0);
	assert_int_equal(n_caps, 5);
	fx_fini(&f);
}

static void
test_hold_release_ipv6(void **state)
{
	struct sg_neigh_key k = k6(NH6);
	struct nd_spec s;
	struct fx f;
	uint8_t b[128];
	uint32_t len;

	(void)state;
	fx_init(&f, NULL);
	assert_int_equal(sg_neigh_hold(f.t, &k, pkt_new(1), 0), 0);
	assert_int_equal(sg_neigh_hold(f.t, &k, pkt_new(2), 0), 0);
	assert_int_equal(n_caps, 1);
	assert_cap(0, ns_nh, 86);
	assert_true(icmp6_csum_ok(caps[0].data, 14));

	/* The NA to our link-local, solicited, with its MAC. */
	s = na_spec(NH6, OUR_LL, SG_NEIGH_NA_SOLICITED | SG_NEIGH_NA_OVERRIDE, NH_MAC);
	len = nd_in(b, &s);
	assert_int_equal(deliver(&f, b, len, 3), SG_NEIGH_RX_LEARN);
	assert_int_equal(f.learn_rc, 0);
	assert_int_equal(n_caps, 3);
	assert_memory_equal(caps[1].data, NH_MAC, 6);
	assert_int_equal(caps[1].data[14], 1);
	assert_memory_equal(caps[2].data, NH_MAC, 6);
	assert_int_equal(caps[2].data[14], 2);
	assert_int_equal(sg_neigh_lookup(f.t, &k), word_of(NH_MAC));

	/* Resolution of IPv6 needs NDP on the port. */
	{
		struct sg_neigh_port_conf pc = port0();
		struct sg_neigh_key k2 = k6(NOT_OURS6);

		pc.flags = SG_NEIGH_PORT_IPV4;
		assert_int_equal(sg_neigh_port_set(f.t, &pc), 0);
		assert_int_equal(sg_neigh_lookup(f.t, &k), 0);
		assert_int_equal(sg_neigh_hold(f.t, &k2, pkt_new(3), 4), -EADDRNOTAVAIL);
	}
	fx_fini(&f);
}

static void
test_hold_limits(void **state)
{
	struct sg_neigh_key a = k4(NH4), c = k4(NH4B), d = k4(PEER4);
	struct sg_neigh_conf conf;
	struct sg_neigh_stats st;
	struct fx f;
	uint8_t b[64];
	uint32_t len;

	(void)state;
	conf = conf_base(NULL);
	conf.hold_total = 6;
	fx_init(&f, &conf);

	/* Six for one neighbour that holds four: the two oldest go. */
	for (uint8_t i = 1; i <= 6; i++)
		assert_int_equal(sg_neigh_hold(f.t, &a, pkt_new(i), 0), 0);
	st = stats(&f);
	assert_int_equal(st.held, 4);
	assert_int_equal(st.held_dropped_oldest, 2);

	/* Two more for a second neighbour reach hold_total. */
	assert_int_equal(sg_neigh_hold(f.t, &c, pkt_new(21), 0), 0);
	assert_int_equal(sg_neigh_hold(f.t, &c, pkt_new(22), 0), 0);
	assert_int_equal(sg_neigh_hold(f.t, &c, pkt_new(23), 0), -ENOBUFS);
	/* A third neighbour is still resolved, its packet not held. */
	assert_int_equal(sg_neigh_hold(f.t, &d, pkt_new(31), 0), -ENOBUFS);
	st = stats(&f);
	assert_int_equal(st.held, 6);
	assert_int_equal(st.held_dropped_limit, 2);
	assert_int_equal(st.requests, 3);
	/* At the per-neighbour limit the oldest still gives way, within the total. */
	assert_int_equal(sg_neigh_hold(f.t, &a, pkt_new(7), 0), 0);
	assert_int_equal(stats(&f).held_dropped_oldest, 3);

	/* Resolved: the four newest leave, oldest first. */
	caps_reset();
	len = arp_reply_nh(b, NH_MAC);
	assert_int_equal(deliver(&f, b, len, 1), SG_NEIGH_RX_LEARN);
	assert_int_equal(n_caps, 4);
	for (unsigned int i = 0; i < 4; i++)
		assert_int_equal(caps[i].data[14], 4 + i);
	assert_int_equal(stats(&f).held, 2);
	/* The two still held for c are freed with the table. */
	fx_fini(&f);
}

static void
test_retry_then_fail(void **state)
{
	struct sg_neigh_key k = k4(NH4);
	struct sg_neigh_stats st;
	struct fx f;

	(void)state;
	fx_init(&f, NULL);
	assert_int_equal(sg_neigh_hold(f.t, &k, pkt_new(1), 0), 0);
	assert_int_equal(sg_neigh_hold(f.t, &k, pkt_new(2), 0), 0);
	assert_int_equal(n_caps, 1);
	assert_int_equal(sg_neigh_tick(f.t, 999), 0);
	assert_int_equal(n_caps, 1);
	/* Retries at 1 s intervals, each the same broadcast request. */
	assert_int_equal(sg_neigh_tick(f.t, 1000), 1);
	assert_int_equal(sg_neigh_tick(f.t, 1500), 0);
	assert_int_equal(sg_neigh_tick(f.t, 2000), 1);
	assert_int_equal(n_caps, 3);
	for (unsigned int i = 0; i < 3; i++)
		assert_cap(i, arp_req_nh, 60);
	/* Three unanswered: failed, held packets freed, workers told to drop. */
	assert_int_equal(sg_neigh_tick(f.t, 3000), 1);
	assert_int_equal(n_caps, 3);
	assert_true(sg_neigh_word_failed(sg_neigh_lookup(f.t, &k)));
	assert_false(sg_neigh_word_usable(sg_neigh_lookup(f.t, &k)));
	st = stats(&f);
	assert_int_equal(st.failed, 1);
	assert_int_equal(st.held, 0);
	assert_int_equal(st.held_dropped_failed, 2);
	assert_int_equal(st.by_state[SG_NEIGH_FAILED], 1);
	assert_int_equal(rte_mempool_in_use_count(pool), 0);

	/* A flood to the dead neighbour: dropped, no more requests. */
	for (uint8_t i = 0; i < 10; i++)
		assert_int_equal(sg_neigh_hold(f.t, &k, pkt_new(i), 3000 + i), -EHOSTUNREACH);
	assert_int_equal(sg_neigh_hold(f.t, &k, NULL, 3100), -EHOSTUNREACH);
	assert_int_equal(sg_neigh_tick(f.t, 7999), 0);
	assert_int_equal(n_caps, 3);
	st = stats(&f);
	assert_int_equal(st.dropped_failed, 10);
	assert_int_equal(st.requests, 3);

	/* After failed_ms the entry goes; the next packet starts over. */
	assert_int_equal(sg_neigh_tick(f.t, 8000), 1);
	assert_int_equal(sg_neigh_lookup(f.t, &k), 0);
	assert_int_equal(stats(&f).neighbours, 0);
	assert_int_equal(sg_neigh_hold(f.t, &k, pkt_new(1), 8001), 0);
	assert_int_equal(n_caps, 4);
	/* A late answer to a failed neighbour still resolves it. */
	assert_int_equal(sg_neigh_tick(f.t, 9001), 1);
	assert_int_equal(sg_neigh_tick(f.t, 10001), 1);
	assert_int_equal(sg_neigh_tick(f.t, 11001), 1);
	assert_true(sg_neigh_word_failed(sg_neigh_lookup(f.t, &k)));
	{
		uint8_t b[64];
		uint32_t len = arp_reply_nh(b, NH_MAC);

		assert_int_equal(deliver(&f, b, len, 11002), SG_NEIGH_RX_LEARN);
		assert_int_equal(f.learn_rc, 0);
		assert_int_equal(sg_neigh_lookup(f.t, &k), word_of(NH_MAC));
		assert_int_equal(stats(&f).resolved, 1);
	}
	fx_fini(&f);
}

static void
test_refresh_and_expiry(void **state)
{
	struct sg_neigh_key k = k4(NH4), k6n = k6(NH6), kp = k4(PEER4);
	struct sg_neigh_stats st;
	struct nd_spec s;
	struct fx f;
	uint8_t b[128];
	uint32_t len;

	(void)state;
	fx_init(&f, NULL);	/* reachable 4000: probes at 3000 after confirmation */
	assert_int_equal(sg_neigh_hold(f.t, &k, NULL, 0), 0);
	assert_int_equal(sg_neigh_hold(f.t, &k6n, NULL, 0), 0);
	len = arp_reply_nh(b, NH_MAC);
	assert_int_equal(deliver(&f, b, len, 100), SG_NEIGH_RX_LEARN);
	s = na_spec(NH6, OUR_LL, SG_NEIGH_NA_SOLICITED | SG_NEIGH_NA_OVERRIDE, NH_MAC);
	len = nd_in(b, &s);
	assert_int_equal(deliver(&f, b, len, 100), SG_NEIGH_RX_LEARN);
	/* A learned-only entry, never refreshed. */
	assert_int_equal(deliver(&f, arp_req, 60, 100) & SG_NEIGH_RX_LEARN, SG_NEIGH_RX_LEARN);
	caps_reset();

	assert_int_equal(sg_neigh_tick(f.t, 3099), 0);
	/* 3/4 of the life: unicast requests to the known MACs, still usable. */
	assert_int_equal(sg_neigh_tick(f.t, 3100), 2);
	assert_int_equal(n_caps, 2);
	assert_cap(0, arp_probe_nh, 60);
	assert_cap(1, ns_probe_nh, 86);
	assert_true(icmp6_csum_ok(caps[1].data, 14));
	assert_int_equal(sg_neigh_lookup(f.t, &k), word_of(NH_MAC));
	st = stats(&f);
	assert_int_equal(st.by_state[SG_NEIGH_PROBE], 2);
	assert_int_equal(st.probes, 2);

	/* They answer: reachable again, next probe 3000 ms later. */
	len = arp_reply_nh(b, NH_MAC);
	assert_int_equal(deliver(&f, b, len, 3200), SG_NEIGH_RX_LEARN);
	assert_int_equal(f.learn_rc, 0);
	s = na_spec(NH6, OUR_LL, SG_NEIGH_NA_SOLICITED, NULL);	/* Linux omits the option */
	len = nd_in(b, &s);
	assert_int_equal(deliver(&f, b, len, 3200), SG_NEIGH_RX_LEARN);
	assert_int_equal(f.learn_rc, 0);
	st = stats(&f);
	assert_int_equal(st.by_state[SG_NEIGH_REACHABLE], 2);

	/* The learned entry ages out at 100 + 4000 without a probe. */
	assert_int_equal(sg_neigh_tick(f.t, 4100), 1);
	assert_int_equal(sg_neigh_lookup(f.t, &kp), 0);
	assert_int_equal(stats(&f).stale_expired, 1);
	assert_int_equal(n_caps, 2);

	/* Then silence: three probes a second apart, then removal. */
	assert_int_equal(sg_neigh_tick(f.t, 6199), 0);
	assert_int_equal(sg_neigh_tick(f.t, 6200), 2);
	assert_int_equal(sg_neigh_tick(f.t, 7200), 2);
	assert_int_equal(sg_neigh_tick(f.t, 8200), 2);
	assert_int_equal(n_caps, 8);
	for (unsigned int i = 2; i < 8; i += 2) {
		assert_cap(i, arp_probe_nh, 60);
		assert_cap(i + 1, ns_probe_nh, 86);
	}
	assert_int_equal(sg_neigh_lookup(f.t, &k), word_of(NH_MAC));
	assert_int_equal(sg_neigh_tick(f.t, 9199), 0);
	assert_int_equal(sg_neigh_tick(f.t, 9200), 2);
	assert_int_equal(sg_neigh_lookup(f.t, &k), 0);
	assert_int_equal(sg_neigh_lookup(f.t, &k6n), 0);
	st = stats(&f);
	assert_int_equal(st.expired, 2);
	assert_int_equal(st.neighbours, 0);

	/* A learned entry that gets used is refreshed from then on. */
	assert_int_equal(deliver(&f, arp_req, 60, 10000) & SG_NEIGH_RX_LEARN, SG_NEIGH_RX_LEARN);
	assert_int_equal(sg_neigh_hold(f.t, &kp, pkt_new(5), 10001), 0);
	assert_int_equal(n_caps, 9);
	assert_memory_equal(caps[8].data, PEER_MAC, 6);
	assert_int_equal(stats(&f).by_state[SG_NEIGH_REACHABLE], 1);
	assert_int_equal(sg_neigh_tick(f.t, 13001), 1);
	assert_int_equal(stats(&f).by_state[SG_NEIGH_PROBE], 1);

	/* A shorter timeout applies from the next confirmation. */
	assert_int_equal(sg_neigh_set_reachable(f.t, 400), 0);
	len = arp_in(b, 2, PEER_MAC, OUR_MAC, PEER_MAC, PEER4, OUR_MAC, OUR4);
	assert_int_equal(deliver(&f, b, len, 13100), SG_NEIGH_RX_LEARN);
	assert_int_equal(sg_neigh_tick(f.t, 13399), 0);
	assert_int_equal(sg_neigh_tick(f.t, 13400), 1);
	fx_fini(&f);
}

static void
test_table_full(void **state)
{
	struct sg_neigh_conf conf;
	struct sg_neigh_stats st;
	struct fx f;
	uint8_t b[64];
	uint32_t len;

	(void)state;
	conf = conf_base(NULL);
	conf.max_neighbours = 4;
	fx_init(&f, &conf);
	/* Four learned entries fill the table. */
	for (uint8_t i = 0; i < 4; i++) {
		const uint8_t ip[4] = { 192, 0, 2, (uint8_t)(100 + i) };
		const uint8_t mac[6] = { 0x02, 0, 0, 0, 1, i };

		len = arp_in(b, 1, mac, BCAST, mac, ip, ZERO_MAC, OUR4);
		assert_int_equal(deliver(&f, b, len, i) & SG_NEIGH_RX_LEARN, SG_NEIGH_RX_LEARN);
		assert_int_equal(f.learn_rc, 0);
	}
	/* A fifth learned one does not fit; learning never evicts. */
	assert_int_equal(deliver(&f, arp_req, 60, 10) & SG_NEIGH_RX_LEARN, SG_NEIGH_RX_LEARN);
	assert_int_equal(f.learn_rc, -ENOSPC);
	/* A next hop does: the oldest learned entry makes room. */
	for (uint8_t i = 0; i < 4; i++) {
		const uint8_t ip[4] = { 192, 0, 2, (uint8_t)(200 + i) };
		struct sg_neigh_key k = k4(ip);

		assert_int_equal(sg_neigh_hold(f.t, &k, pkt_new(i), 20), 0);
	}
	{
		const uint8_t first[4] = { 192, 0, 2, 100 };
		struct sg_neigh_key k = k4(first);

		assert_int_equal(sg_neigh_lookup(f.t, &k), 0);
	}
	st = stats(&f);
	assert_int_equal(st.evicted, 4);
	assert_int_equal(st.by_state[SG_NEIGH_INCOMPLETE], 4);
	/* Full of next hops being resolved: nothing more. */
	{
		struct sg_neigh_key k = k4(NH4);

		assert_int_equal(sg_neigh_hold(f.t, &k, pkt_new(9), 21), -ENOSPC);
	}
	st = stats(&f);
	assert_int_equal(st.table_full, 2);
	assert_int_equal(st.neighbours, 4);
	fx_fini(&f);
}

/* ---- announcements ------------------------------------------------------- */

static void
test_announce(void **state)
{
	struct sg_neigh_key v4 = k4(VIP4), v6 = k6(VIP6), port4 = k4(OUR4);
	struct sg_neigh_conf conf;
	struct fx f;

	(void)state;
	conf = conf_base(NULL);
	conf.max_announce = 2;
	fx_init(&f, &conf);
	assert_int_equal(sg_neigh_addr_add(f.t, &v4, SG_NEIGH_ADDR_VIP), 0);
	assert_int_equal(sg_neigh_addr_add(f.t, &v6, SG_NEIGH_ADDR_VIP), 0);
	assert_int_equal(sg_neigh_announce(f.t, &v4, 3, 500, 0), 0);
	assert_int_equal(sg_neigh_announce(f.t, &v6, 2, 1000, 0), 0);
	assert_int_equal(sg_neigh_announce(f.t, &port4, 1, 0, 0), -ENOSPC);
	assert_int_equal(stats(&f).announcements, 2);
	assert_int_equal(n_caps, 0);

	assert_int_equal(sg_neigh_tick(f.t, 0), 2);
	assert_int_equal(n_caps, 2);
	assert_cap(0, garp_vip, 60);
	assert_cap(1, una_vip, 86);
	assert_true(icmp6_csum_ok(caps[1].data, 14));
	assert_int_equal(sg_neigh_tick(f.t, 499), 0);
	assert_int_equal(sg_neigh_tick(f.t, 500), 1);
	assert_int_equal(sg_neigh_tick(f.t, 1000), 2);
	assert_int_equal(n_caps, 5);
	assert_cap(2, garp_vip, 60);
	assert_cap(3, garp_vip, 60);
	assert_cap(4, una_vip, 86);
	/* Both done. */
	assert_int_equal(sg_neigh_tick(f.t, 5000), 0);
	assert_int_equal(stats(&f).announcements, 0);
	assert_int_equal(stats(&f).announces, 5);

	/* For ever, until cancelled; replacing restarts it. */
	assert_int_equal(sg_neigh_announce(f.t, &v4, SG_NEIGH_ANNOUNCE_FOREVER, 100, 6000), 0);
	for (uint64_t t = 6000; t < 7000; t += 100)
		assert_int_equal(sg_neigh_tick(f.t, t), 1);
	assert_int_equal(sg_neigh_announce(f.t, &v4, 1, 0, 7000), 0);
	assert_int_equal(stats(&f).announcements, 1);
	assert_int_equal(sg_neigh_announce(f.t, &v4, 0, 0, 7000), 0);
	assert_int_equal(sg_neigh_announce(f.t, &v4, 0, 0, 7000), -ENOENT);
	assert_int_equal(sg_neigh_tick(f.t, 8000), 0);

	/* An address that goes takes its announcements with it. */
	assert_int_equal(sg_neigh_announce(f.t, &v6, SG_NEIGH_ANNOUNCE_FOREVER, 100, 9000), 0);
	assert_int_equal(sg_neigh_addr_remove(f.t, &v6, SG_NEIGH_ADDR_VIP), 0);
	assert_int_equal(stats(&f).announcements, 0);
	assert_int_equal(sg_neigh_announce(f.t, &v6, 1, 0, 9000), -EADDRNOTAVAIL);
	assert_int_equal(sg_neigh_tick(f.t, 9000), 0);

	/* A bounded tick: with a budget of 2, four due announcements take two ticks. */
	fx_fini(&f);
	conf = conf_base(NULL);
	conf.tick_budget = 2;
	fx_init(&f, &conf);
	for (uint8_t i = 0; i < 4; i++) {
		const uint8_t ip[4] = { 192, 0, 2, (uint8_t)(10 + i) };
		struct sg_neigh_key k = k4(ip);

		assert_int_equal(sg_neigh_addr_add(f.t, &k, SG_NEIGH_ADDR_NODE), 0);
		assert_int_equal(sg_neigh_announce(f.t, &k, 1, 0, 0), 0);
	}
	assert_int_equal(sg_neigh_tick(f.t, 0), 2);
	assert_int_equal(sg_neigh_tick(f.t, 0), 2);
	assert_int_equal(sg_neigh_tick(f.t, 0), 0);
	assert_int_equal(n_caps, 4);
	fx_fini(&f);
}

/* ---- ports, telemetry, errors --------------------------------------------- */


/*
 * A quiet VIP (another gateway owns it on the link): ARP and NS for it go
 * unanswered, its owner's gratuitous ARP and unsolicited NA are no
 * conflict, it cannot be announced and going quiet cancels what was
 * queued; one flag store brings it back.
 */
static void
test_quiet_vip(void **state)
{
	struct sg_neigh_key v4 = k4(VIP4), v6 = k6(VIP6), port4 = k4(OUR4);
	struct nd_spec s;
	struct fx f;
	uint8_t b[128];
	uint32_t len;

	(void)state;
	fx_init(&f, NULL);
	assert_false(sg_neigh_flags_answered(0));
	assert_true(sg_neigh_flags_answered(SG_NEIGH_ADDR_VIP));
	assert_false(sg_neigh_flags_answered(SG_NEIGH_ADDR_VIP | SG_NEIGH_ADDR_QUIET));
	assert_true(sg_neigh_flags_answered(SG_NEIGH_ADDR_NODE | SG_NEIGH_ADDR_QUIET));

	assert_int_equal(sg_neigh_addr_add(f.t, &v4, SG_NEIGH_ADDR_VIP), 0);
	assert_int_equal(sg_neigh_addr_add(f.t, &v6, SG_NEIGH_ADDR_VIP), 0);
	assert_int_equal(sg_neigh_announce(f.t, &v4, 3, 100, 0), 0);
	assert_int_equal(sg_neigh_announce(f.t, &v6, 3, 100, 0), 0);
	assert_int_equal(stats(&f).announcements, 2);

	/* Quiet: still owned (forwarded), announcements gone, requests unanswered. */
	assert_int_equal(sg_neigh_addr_add(f.t, &v4, SG_NEIGH_ADDR_VIP | SG_NEIGH_ADDR_QUIET), 0);
	assert_int_equal(sg_neigh_addr_add(f.t, &v6, SG_NEIGH_ADDR_QUIET), 0);
	assert_int_equal(sg_neigh_owned(f.t, &v4), SG_NEIGH_ADDR_VIP | SG_NEIGH_ADDR_QUIET);
	assert_int_equal(stats(&f).announcements, 0);
	assert_int_equal(sg_neigh_announce(f.t, &v4, 1, 0, 0), -EADDRNOTAVAIL);
	len = arp_in(b, 1, PEER_MAC, BCAST, PEER_MAC, PEER4, ZERO_MAC, VIP4);
	assert_int_equal(rx(&f, b, len) & SG_NEIGH_RX_REPLY, 0);
	assert_int_equal(f.rx.arp_not_ours, 1);
	s = ns_spec(VIP6);
	len = nd_in(b, &s);
	assert_int_equal(rx(&f, b, len) & SG_NEIGH_RX_REPLY, 0);
	assert_int_equal(f.rx.ns_not_ours, 1);

	/* The owner's announcements: neither conflicts nor learned. */
	len = arp_in(b, 1, OTHER_MAC, BCAST, OTHER_MAC, VIP4, ZERO_MAC, VIP4);
	assert_int_equal(rx(&f, b, len), 0);
	s = na_spec(VIP6, ALL_NODES, SG_NEIGH_NA_OVERRIDE, OTHER_MAC);
	s.eth_dst = BCAST;
	len = nd_in(b, &s);
	assert_int_equal(rx(&f, b, len), 0);
	assert_int_equal(f.rx.conflicts, 0);
	assert_int_equal(f.rx.quiet_seen, 2);

	/* A port address is answered whatever flags it gains. */
	assert_int_equal(sg_neigh_addr_add(f.t, &port4, SG_NEIGH_ADDR_QUIET), 0);
	assert_int_equal(rx(&f, arp_req, 60) & SG_NEIGH_RX_REPLY, SG_NEIGH_RX_REPLY);
	assert_int_equal(sg_neigh_addr_remove(f.t, &port4, SG_NEIGH_ADDR_QUIET), 0);

	/* Taken over: the flag goes, the address is answered and announced again. */
	assert_int_equal(sg_neigh_addr_remove(f.t, &v4, SG_NEIGH_ADDR_QUIET), 0);
	assert_int_equal(sg_neigh_owned(f.t, &v4), SG_NEIGH_ADDR_VIP);
	len = arp_in(b, 1, PEER_MAC, BCAST, PEER_MAC, PEER4, ZERO_MAC, VIP4);
	assert_int_equal(rx(&f, b, len) & SG_NEIGH_RX_REPLY, SG_NEIGH_RX_REPLY);
	assert_int_equal(sg_neigh_announce(f.t, &v4, 1, 0, 0), 0);
	fx_fini(&f);
}

/* A burst, then one announcement every refresh_ms, until cancelled. */
static void
test_announce_refresh(void **state)
{
	struct sg_neigh_key v4 = k4(VIP4);
	struct fx f;

	(void)state;
	fx_init(&f, NULL);
	caps_reset();
	assert_int_equal(sg_neigh_addr_add(f.t, &v4, SG_NEIGH_ADDR_VIP), 0);
	assert_int_equal(sg_neigh_announce_refresh(f.t, &v4, 3, 100, 10000, 1000), 0);
	assert_int_equal(sg_neigh_tick(f.t, 1000), 1);
	assert_int_equal(sg_neigh_tick(f.t, 1100), 1);
	assert_int_equal(sg_neigh_tick(f.t, 1200), 1);
	/* The burst is over: the next one 10 s after its last frame. */
	assert_int_equal(sg_neigh_tick(f.t, 1300), 0);
	assert_int_equal(sg_neigh_tick(f.t, 11199), 0);
	assert_int_equal(sg_neigh_tick(f.t, 11200), 1);
	assert_int_equal(sg_neigh_tick(f.t, 21199), 0);
	assert_int_equal(sg_neigh_tick(f.t, 21200), 1);
	assert_int_equal(n_caps, 5);
	for (unsigned int i = 0; i < 5; i++)
		assert_cap(i, garp_vip, 60);
	assert_int_equal(stats(&f).announcements, 1);
	/* Cancelled with count 0, as any announcement. */
	assert_int_equal(sg_neigh_announce(f.t, &v4, 0, 0, 21300), 0);
	assert_int_equal(sg_neigh_tick(f.t, 40000), 0);
	fx_fini(&f);
}


static int
count_addr(const struct sg_neigh_key *key, uint8_t flags, void *arg)
{
	unsigned int *n = arg;

	(void)key;
	(void)flags;
	(*n)++;
	return *n == 100 ? 7 : 0;
}

static void
test_ports(void **state)
{
	struct sg_neigh_key ll = k6(OUR_LL), p4 = k4(OUR4), p6 = k6(OUR6), vip = k4(VIP4);
	struct sg_neigh_key nh = k4(NH4), nh6 = k6(NH6);
	struct sg_neigh_port_conf pc = port0(), got;
	const uint8_t new_mac[6] = { 0x02, 0, 0, 0, 0, 0x42 };
	const uint8_t new4[4] = { 192, 0, 2, 7 };
	uint8_t new_ll[16], flags[4];
	struct sg_neigh_key keys[4];
	unsigned int n = 0;
	struct fx f;

	(void)state;
	fx_init(&f, NULL);
	assert_int_equal(sg_neigh_port_get(f.t, 0, &got), 0);
	assert_memory_equal(&got, &pc, sizeof(pc));
	assert_int_equal(sg_neigh_owned(f.t, &p4), SG_NEIGH_ADDR_PORT);
	assert_int_equal(sg_neigh_owned(f.t, &p6), SG_NEIGH_ADDR_PORT);
	assert_int_equal(sg_neigh_owned(f.t, &ll), SG_NEIGH_ADDR_PORT | SG_NEIGH_ADDR_LINK_LOCAL);
	/* The port address may also be a node address, from another owner. */
	assert_int_equal(sg_neigh_addr_add(f.t, &p4, SG_NEIGH_ADDR_NODE), 0);
	assert_int_equal(sg_neigh_addr_add(f.t, &vip, SG_NEIGH_ADDR_VIP | SG_NEIGH_ADDR_SNAT), 0);
	keys[0] = p4;
	keys[1] = vip;
	keys[2] = k4(NOT_OURS4);
	keys[3] = ll;
	assert_int_equal(sg_neigh_owned_bulk(f.t, keys, 4, flags), 3);
	assert_int_equal(flags[0], SG_NEIGH_ADDR_PORT | SG_NEIGH_ADDR_NODE);
	assert_int_equal(flags[1], SG_NEIGH_ADDR_VIP | SG_NEIGH_ADDR_SNAT);
	assert_int_equal(flags[2], 0);
	assert_int_equal(flags[3], SG_NEIGH_ADDR_PORT | SG_NEIGH_ADDR_LINK_LOCAL);
	assert_int_equal(sg_neigh_addr_foreach(f.t, count_addr, &n), 0);
	assert_int_equal(n, 4);

	/* New MAC and IPv4 address: the old ones lose what the port gave them. */
	memcpy(pc.mac, new_mac, 6);
	memcpy(pc.ip4, new4, 4);
	assert_int_equal(sg_neigh_port_set(f.t, &pc), 0);
	sg_neigh_link_local(new_mac, new_ll);
	assert_int_equal(sg_neigh_owned(f.t, &p4), SG_NEIGH_ADDR_NODE);
	assert_int_equal(sg_neigh_owned(f.t, &ll), 0);
	{
		struct sg_neigh_key k = k6(new_ll), k2 = k4(new4);

		assert_int_equal(sg_neigh_owned(f.t, &k), SG_NEIGH_ADDR_PORT | SG_NEIGH_ADDR_LINK_LOCAL);
		assert_int_equal(sg_neigh_owned(f.t, &k2), SG_NEIGH_ADDR_PORT);
	}
	/* .1 is still a node address: answered, now from the new MAC. */
	assert_int_equal(rx(&f, arp_req, 60) & SG_NEIGH_RX_REPLY, SG_NEIGH_RX_REPLY);
	assert_memory_equal(f.buf + 6, new_mac, 6);

	/* max_addrs counts: a port change that does not fit changes nothing. */
	{
		struct sg_neigh_conf conf = conf_base(NULL);
		struct fx g;

		conf.max_addrs = 4;
		fx_init(&g, &conf);
		assert_int_equal(sg_neigh_addr_add(g.t, &vip, SG_NEIGH_ADDR_VIP), 0);
		assert_int_equal(sg_neigh_addr_add(g.t, &nh, SG_NEIGH_ADDR_VIP), -ENOSPC);
		pc = port0();
		memcpy(pc.ip4, new4, 4);
		assert_int_equal(sg_neigh_port_set(g.t, &pc), -ENOSPC);
		assert_int_equal(sg_neigh_owned(g.t, &p4), SG_NEIGH_ADDR_PORT);
		fx_fini(&g);
	}

	/* Removal: neighbours, held packets, announcements and addresses go. */
	assert_int_equal(sg_neigh_hold(f.t, &nh, pkt_new(1), 0), 0);
	assert_int_equal(sg_neigh_hold(f.t, &nh6, pkt_new(2), 0), 0);
	assert_int_equal(sg_neigh_announce(f.t, &vip, SG_NEIGH_ANNOUNCE_FOREVER, 10, 0), 0);
	assert_int_equal(sg_neigh_port_remove(f.t, 0), 0);
	{
		struct sg_neigh_stats st = stats(&f);

		assert_int_equal(st.neighbours, 0);
		assert_int_equal(st.held, 0);
		assert_int_equal(st.held_dropped_other, 2);
		assert_int_equal(st.announcements, 0);
		assert_int_equal(st.addrs, 0);
	}
	assert_int_equal(rte_mempool_in_use_count(pool), 0);
	assert_int_equal(sg_neigh_owned(f.t, &vip), 0);
	assert_int_equal(sg_neigh_lookup(f.t, &nh), 0);
	assert_int_equal(rx(&f, arp_req, 60), 0);
	assert_int_equal(f.rx.unknown_port, 1);
	assert_int_equal(sg_neigh_port_get(f.t, 0, &got), -ENOENT);
	assert_int_equal(sg_neigh_port_remove(f.t, 0), -ENOENT);
	fx_fini(&f);
}

struct walk {
	unsigned int n;
	unsigned int stop_at;
	struct sg_neigh_info seen[8];
};

static int
walk_fn(const struct sg_neigh_info *info, void *arg)
{
	struct walk *w = arg;

	if (w->n < 8)
		w->seen[w->n] = *info;
	w->n++;
	return w->n == w->stop_at ? 42 : 0;
}

static void
test_foreach_and_stats(void **state)
{
	struct sg_neigh_key nh = k4(NH4), nh6 = k6(NH6);
	struct walk w;
	struct fx f;
	uint8_t b[64];
	uint32_t len;

	(void)state;
	fx_init(&f, NULL);
	assert_int_equal(sg_neigh_hold(f.t, &nh6, pkt_new(1), 100), 0);
	assert_int_equal(sg_neigh_hold(f.t, &nh, NULL, 100), 0);
	len = arp_reply_nh(b, NH_MAC);
	assert_int_equal(deliver(&f, b, len, 300), SG_NEIGH_RX_LEARN);

	memset(&w, 0, sizeof(w));
	assert_int_equal(sg_neigh_foreach(f.t, 1000, walk_fn, &w), 0);
	assert_int_equal(w.n, 2);
	for (unsigned int i = 0; i < 2; i++) {
		const struct sg_neigh_info *in = &w.seen[i];

		if (in->key.family == 4) {
			assert_int_equal(in->state, SG_NEIGH_REACHABLE);
			assert_memory_equal(in->mac, NH_MAC, 6);
			assert_int_equal(in->age_ms, 700);
			assert_int_equal(in->held, 0);
		} else {
			assert_int_equal(in->state, SG_NEIGH_INCOMPLETE);
			assert_memory_equal(in->mac, ZERO_MAC, 6);
			assert_int_equal(in->age_ms, 900);
			assert_int_equal(in->held, 1);
			assert_int_equal(in->tries, 1);
			assert_memory_equal(in->key.addr, NH6, 16);
		}
	}
	memset(&w, 0, sizeof(w));
	w.stop_at = 1;
	assert_int_equal(sg_neigh_foreach(f.t, 1000, walk_fn, &w), 42);
	assert_int_equal(w.n, 1);
	{
		unsigned int n = 0;

		assert_int_equal(sg_neigh_addr_foreach(f.t, count_addr, &n), 0);
		assert_int_equal(n, 3);
	}
	{
		struct sg_neigh_stats st = stats(&f);

		assert_int_equal(st.neighbours, 2);
		assert_int_equal(st.by_state[SG_NEIGH_INCOMPLETE], 1);
		assert_int_equal(st.by_state[SG_NEIGH_REACHABLE], 1);
		assert_int_equal(st.addrs, 3);
		assert_int_equal(st.held, 1);
		assert_int_equal(st.requests, 2);
		assert_int_equal(st.resolved, 1);
	}
	fx_fini(&f);
}

static void
test_tx_and_alloc_errors(void **state)
{
	struct sg_neigh_key nh = k4(NH4), vip = k4(VIP4);
	struct rte_mempool *small;
	struct rte_mbuf *hog[2];
	struct sg_neigh_conf conf;
	struct fx f;
	uint8_t b[64];
	uint32_t len;

	(void)state;
	fx_init(&f, NULL);
	tx_fail = 1;
	assert_int_equal(sg_neigh_hold(f.t, &nh, pkt_new(1), 0), 0);
	len = arp_reply_nh(b, NH_MAC);
	assert_int_equal(deliver(&f, b, len, 1), SG_NEIGH_RX_LEARN);
	assert_int_equal(sg_neigh_addr_add(f.t, &vip, SG_NEIGH_ADDR_VIP), 0);
	assert_int_equal(sg_neigh_announce(f.t, &vip, 1, 0, 2), 0);
	assert_int_equal(sg_neigh_tick(f.t, 2), 1);
	{
		struct sg_neigh_stats st = stats(&f);

		/* The request, the released packet and the announcement. */
		assert_int_equal(st.tx_errors, 3);
		assert_int_equal(st.held_sent, 0);
	}
	assert_int_equal(rte_mempool_in_use_count(pool), 0);
	fx_fini(&f);

	/* An empty pool: requests cannot be built, the entry still waits. */
	small = rte_pktmbuf_pool_create("neigh_small", 2, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
					SOCKET_ID_ANY);
	assert_non_null(small);
	conf = conf_base(NULL);
	conf.pool = small;
	fx_init(&f, &conf);
	hog[0] = rte_pktmbuf_alloc(small);
	hog[1] = rte_pktmbuf_alloc(small);
	assert_non_null(hog[1]);
	assert_int_equal(sg_neigh_hold(f.t, &nh, NULL, 0), 0);
	assert_int_equal(stats(&f).alloc_errors, 1);
	rte_pktmbuf_free(hog[0]);
	rte_pktmbuf_free(hog[1]);
	assert_int_equal(sg_neigh_tick(f.t, 1000), 1);
	assert_int_equal(n_caps, 1);
	assert_cap(0, arp_req_nh, 60);
	fx_fini(&f);
	rte_mempool_free(small);

	/* mbufs too small for a frame. */
	small = rte_pktmbuf_pool_create("neigh_tiny", 4, 0, 0, RTE_PKTMBUF_HEADROOM + 32,
					SOCKET_ID_ANY);
	assert_non_null(small);
	conf = conf_base(NULL);
	conf.pool = small;
	fx_init(&f, &conf);
	assert_int_equal(sg_neigh_hold(f.t, &nh, NULL, 0), 0);
	assert_int_equal(stats(&f).alloc_errors, 1);
	assert_int_equal(n_caps, 0);
	assert_int_equal(rte_mempool_in_use_count(small), 0);
	fx_fini(&f);
	rte_mempool_free(small);
}

/* ---- lock-free readers against a busy control thread ---------------------- */

#define CC_KEYS 32
#define CC_VIPS 8
#define CC_ITERATIONS 40000

struct cc_reader {
	struct rte_rcu_qsbr *v;
	const struct sg_neigh_table *t;
	int *stop;
	uint64_t rounds;	/* atomic: lets the writer wait for a start */
	uint64_t lookups;
	uint64_t hits;
	uint64_t bad;		/* words or flags no writer ever stored */
	uint64_t port_misses;	/* the port address not owned: must stay 0 */
};

static struct sg_neigh_key cc_nb[CC_KEYS], cc_vip[CC_VIPS];

static void *
cc_reader_main(void *arg)
{
	struct cc_reader *r = arg;
	struct sg_neigh_key port_key = k4(OUR4);
	uint64_t words[CC_KEYS];
	uint8_t flags[CC_VIPS];
	uint64_t round = 0;

	rte_rcu_qsbr_thread_online(r->v, 0);
	while (!__atomic_load_n(r->stop, __ATOMIC_ACQUIRE)) {
		unsigned int n = 1 + (unsigned int)(round % CC_KEYS);

		if (round % 4 == 0) {
			for (unsigned int i = 0; i < n; i++)
				words[i] = sg_neigh_lookup(r->t, &cc_nb[i]);
		} else {
			sg_neigh_lookup_bulk(r->t, cc_nb, n, words);
		}
		for (unsigned int i = 0; i < n; i++) {
			uint8_t mac[6];

			r->lookups++;
			if (words[i] == 0 || words[i] == SG_NEIGH_W_FAILED)
				continue;
			r->hits++;
			sg_neigh_word_mac(words[i], mac);
			/* Every MAC stored for key i is 02:i:... */
			if (!sg_neigh_word_usable(words[i]) || mac[0] != 0x02 || mac[1] != i ||
			    (words[i] & ~(SG_NEIGH_W_VALID | SG_NEIGH_W_MAC_MASK)))
				r->bad++;
		}
		sg_neigh_owned_bulk(r->t, cc_vip, CC_VIPS, flags);
		for (unsigned int i = 0; i < CC_VIPS; i++)
			if (flags[i] != 0 && flags[i] != SG_NEIGH_ADDR_VIP &&
			    flags[i] != (SG_NEIGH_ADDR_VIP | SG_NEIGH_ADDR_SNAT))
				r->bad++;
		if (sg_neigh_owned(r->t, &port_key) != SG_NEIGH_ADDR_PORT)
			r->port_misses++;
		round++;
		__atomic_store_n(&r->rounds, round, __ATOMIC_RELEASE);
		rte_rcu_qsbr_quiescent(r->v, 0);
	}
	rte_rcu_qsbr_thread_offline(r->v, 0);
	return NULL;
}

static void
test_concurrent_readers(void **state)
{
	struct sg_neigh_conf conf;
	struct cc_reader r;
	struct fx f;
	pthread_t th;
	uint64_t now = 0, expiries = 0;
	int stop = 0;

	(void)state;
	conf = conf_base(NULL);
	conf.max_neighbours = CC_KEYS;
	conf.hold_total = 256;
	conf.max_addrs = CC_VIPS + 4;
	fx_init(&f, &conf);
	for (unsigned int i = 0; i < CC_KEYS; i++) {
		const uint8_t ip[4] = { 192, 0, 2, (uint8_t)(100 + i) };

		cc_nb[i] = k4(ip);
	}
	for (unsigned int i = 0; i < CC_VIPS; i++) {
		const uint8_t ip[4] = { 192, 0, 2, (uint8_t)(20 + i) };

		cc_vip[i] = k4(ip);
	}
	memset(&r, 0, sizeof(r));
	r.v = f.v;
	r.t = f.t;
	r.stop = &stop;
	assert_int_equal(rte_rcu_qsbr_thread_register(f.v, 0), 0);
	assert_int_equal(pthread_create(&th, NULL, cc_reader_main, &r), 0);
	while (__atomic_load_n(&r.rounds, __ATOMIC_ACQUIRE) == 0)
		rte_pause();

	for (uint32_t it = 0; it < CC_ITERATIONS; it++) {
		unsigned int i = it % CC_KEYS;
		struct sg_neigh_learn l = { .key = cc_nb[i],
					    .flags = SG_NEIGH_L_MAC | SG_NEIGH_L_TO_US };
		uint32_t gen = it / CC_KEYS;

		l.mac[0] = 0x02;
		l.mac[1] = (uint8_t)i;
		l.mac[2] = (uint8_t)(gen >> 24);
		l.mac[3] = (uint8_t)(gen >> 16);
		l.mac[4] = (uint8_t)(gen >> 8);
		l.mac[5] = (uint8_t)gen;
		/* Half the keys go through resolution first, half are learned. */
		if (i % 2 == 0 && sg_neigh_lookup(f.t, &cc_nb[i]) == 0)
			assert_int_equal(sg_neigh_hold(f.t, &cc_nb[i], NULL, now), 0);
		assert_int_equal(sg_neigh_learn(f.t, &l, now), 0);
		if (it % 7 == 0) {
			struct sg_neigh_key *v = &cc_vip[(it / 7) % CC_VIPS];

			if (sg_neigh_owned(f.t, v) == 0)
				assert_int_equal(sg_neigh_addr_add(f.t, v, SG_NEIGH_ADDR_VIP), 0);
			else if (it % 3 == 0)
				assert_int_equal(sg_neigh_addr_add(f.t, v, SG_NEIGH_ADDR_SNAT), 0);
			else
				assert_int_equal(sg_neigh_addr_remove(f.t, v, SG_NEIGH_ADDR_ALL), 0);
		}
		/* Every so often everything expires: keys deleted under the reader. */
		if (it % 500 == 499) {
			/* Probes, unanswered, take a few rounds before removal. */
			for (int round = 0; round < 5; round++) {
				now += 100000;
				while (sg_neigh_tick(f.t, now) > 0)
					;
			}
			assert_int_equal(stats(&f).neighbours, 0);
			expiries++;
			caps_reset();
		}
		now++;
	}
	__atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(rte_rcu_qsbr_thread_unregister(f.v, 0), 0);
	print_message("# %d updates, %" PRIu64 " expiries, %" PRIu64 " lookups (%" PRIu64
		      " hits) by the reader, %" PRIu64 " grace-period waits\n", CC_ITERATIONS,
		      expiries, r.lookups, r.hits, stats(&f).sync_waits);
	assert_int_equal(r.bad, 0);
	assert_int_equal(r.port_misses, 0);
	assert_true(r.hits > 0);
	assert_true(r.lookups > r.hits);
	fx_fini(&f);
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_create_invalid),
		cmocka_unit_test(test_null_arguments),
		cmocka_unit_test(test_port_invalid),
		cmocka_unit_test(test_nd_validation),
		cmocka_unit_test(test_addr_helpers),
		cmocka_unit_test(test_arp_answer_bytes),
		cmocka_unit_test(test_na_answer_bytes),
		cmocka_unit_test(test_na_answer_ext_header),
		cmocka_unit_test(test_builders_bytes),
		cmocka_unit_test(test_input_arp),
		cmocka_unit_test(test_input_ns),
		cmocka_unit_test(test_learn_merge),
		cmocka_unit_test(test_generation),
		cmocka_unit_test(test_hold_release_ipv4),
		cmocka_unit_test(test_hold_release_ipv6),
		cmocka_unit_test(test_hold_limits),
		cmocka_unit_test(test_retry_then_fail),
		cmocka_unit_test(test_refresh_and_expiry),
		cmocka_unit_test(test_table_full),
		cmocka_unit_test(test_announce),
		cmocka_unit_test(test_quiet_vip),
		cmocka_unit_test(test_announce_refresh),
		cmocka_unit_test(test_ports),
		cmocka_unit_test(test_foreach_and_stats),
		cmocka_unit_test(test_tx_and_alloc_errors),
		cmocka_unit_test(test_concurrent_readers),
	};
	int rc;

	(void)argc;
	sg_test_eal_init(argv[0], "256");
	/* Conflict warnings are expected here; keep them out of the TAP stream. */
	rte_openlog_stream(stderr);
	pool = rte_pktmbuf_pool_create("neigh_test", 511, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
				       SOCKET_ID_ANY);
	if (pool == NULL) {
		fprintf(stderr, "mbuf pool: %s\n", rte_strerror(rte_errno));
		return 1;
	}
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	rte_mempool_free(pool);
	rte_eal_cleanup();
	return rc;
}
