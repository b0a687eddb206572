/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * lib/dp: packet-flow table tests of the worker pipeline, "this packet in,
 * this backend or verdict out, this packet back" (issue 5).
 *
 * A gateway with two ring-backed ethdevs (net_ring: an external port the
 * clients are behind, an internal one the pods are behind), a service
 * table holding the services of `services` below, and a neighbour table
 * that already knows every client, router and pod, so nothing waits for
 * the control thread. Frames go in through the public API
 * (sg_dp_worker_process(), or sg_dp_worker_poll() from the ports' receive
 * rings with two workers) and what the worker transmitted is taken off the
 * ports' transmit rings and compared byte for byte with a frame the test
 * builds itself, every checksum computed from scratch here (RFC 1071) and
 * never with lib/pkt's, so an incremental update that drifts shows.
 *
 * First the invalid arguments and malformed frames; then `rows`, one
 * cmocka test per row: one frame in, one verdict out (translated tuple,
 * encapsulation, local answer or drop) and the counter that must say so;
 * then the cases a single frame cannot show: replies translated back,
 * affinity, UDP flows leaving a backend that stopped serving, ICMP errors
 * both ways, IPv4 reassembly, the limits (incomplete datagrams, the reply
 * rate, SNAT ports), and two workers handing packets to the owner of their
 * flow. Every test ends with every ring empty and every mbuf back in the
 * pool.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_log.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_rcu_qsbr.h>
#include <rte_ring.h>
#include <rte_tcp.h>

#include "dp.h"
#include "dp_private.h"	/* DP_REPLY_BURST, DP_REPLY_RATE */
#include "flow.h"
#include "flow_private.h"	/* flow_table_index_info() */
#include "neigh.h"
#include "pkt.h"
#include "sg_common.h"
#include "sg_test_eal.h"
#include "svc.h"

/* ---- the gateway -------------------------------------------------------- */

#define P_EXT 0		/* clients, routers */
#define P_INT 1		/* pods */
#define NQ 2		/* queues per port: the most workers a test runs */
#define FRAME_MAX 2048
#define POOL_SIZE 2047
#define RING_SIZE 1024
#define MTU 1500
#define SNAT_MIN 20000
#define SNAT_MAX 20999
#define GUE_PORT 6080
#define NOW0 1000

static const uint8_t EXT_MAC[6] = { 0x02, 0, 0, 0, 0x0e, 0x01 };
static const uint8_t INT_MAC[6] = { 0x02, 0, 0, 0, 0x01, 0x01 };

#define EXT4 "198.51.100.1"
#define EXT6 "2001:db8:c::1"
#define INT4 "203.0.113.1"
#define INT6 "2001:db8:cb::1"
#define C4 "198.51.100.10"
#define C4B "198.51.100.11"
#define C4FAR "198.51.100.200"	/* outside the source ranges */
#define ROUTER4 "198.51.100.254"
#define C6 "2001:db8:c::10"
#define C6FAR "2001:db8:c::200"
#define C6OFF "2001:db8:d::10"	/* beyond ROUTER6 */
#define ROUTER6 "2001:db8:c::fe"
#define NODE4 "192.0.2.1"
#define NODE6 "2001:db8:2::1"
#define SNAT4 "203.0.113.2"
#define SNAT6 "2001:db8:cb::2"

/* Neighbours the table knows from the start, and the port they are on. */
static const char *const ext_neighbours[] = {
	C4, C4B, C4FAR, ROUTER4, C6, C6FAR, ROUTER6,
};
static const char *const int_neighbours[] = {
	"203.0.113.11", "203.0.113.12", "203.0.113.13", "203.0.113.14", "203.0.113.15",
	"203.0.113.16", "203.0.113.17", "203.0.113.18", "203.0.113.21", "203.0.113.22",
	"203.0.113.23", "203.0.113.24", "203.0.113.25", "203.0.113.31", "203.0.113.32",
	"203.0.113.33", "203.0.113.34", "203.0.113.41", "203.0.113.42",
	"2001:db8:cb::11", "2001:db8:cb::12", "2001:db8:cb::13", "2001:db8:cb::14",
	"2001:db8:cb::15", "2001:db8:cb::16", "2001:db8:cb::18", "2001:db8:cb::21",
	"2001:db8:cb::22", "2001:db8:cb::23", "2001:db8:cb::31", "2001:db8:cb::32",
	"2001:db8:cb::33", "2001:db8:cb::34", "2001:db8:cb::41", "2001:db8:cb::42",
};

/* ---- the services ------------------------------------------------------- */

enum {
	S_NAT4_TCP = 1, S_NAT4_UDP, S_NAT6_TCP, S_NAT6_UDP,
	S_DNAT4_TCP, S_DNAT4_UDP, S_DNAT6_TCP, S_DNAT6_UDP,
	S_IPIP4, S_IPIP6, S_IPIP_6TO4, S_IPIP_4TO6,
	S_GUE4, S_GUE6, S_GUE_6TO4, S_L2_4, S_L2_6,
	S_LOCAL, S_LB4, S_NP4, S_LB6, S_NP6,
	S_READY, S_TERM, S_NONE4, S_NONE6, S_EMPTY, S_SAME_TCP, S_SAME_UDP,
	S_MAGLEV, S_AFF4, S_AFF6, S_EVICT4_UDP, S_EVICT4_TCP, S_EVICT6_UDP, S_EVICT6_TCP,
	S_NONEIGH,
};

#define TCP IPPROTO_TCP
#define UDP IPPROTO_UDP
#define ICMP4 IPPROTO_ICMP
#define ICMP6 IPPROTO_ICMPV6
#define PROTO_ARP 253	/* not IP: an ARP request */
#define PROTO_NS 254	/* an ICMPv6 neighbour solicitation */

/* Backend states (EndpointSlice conditions). */
#define READY (SG_SVC_BE_READY | SG_SVC_BE_SERVING)
#define SERVING_TERM (SG_SVC_BE_SERVING | SG_SVC_BE_TERMINATING)
#define TERM_ONLY SG_SVC_BE_TERMINATING
#define DOWN 0

struct key_spec {
	const char *addr;	/* "0.0.0.0" or "::": the NodePort "any" key */
	uint16_t port;
	uint8_t proto;
};

struct be_spec {
	const char *addr;
	uint16_t port;
	uint8_t state;
};

struct svc_spec {
	uint32_t id;
	const char *name;
	enum sg_svc_mode mode;
	uint32_t flags;
	struct key_spec keys[4];
	struct be_spec be[4];
	const char *ranges[2];
};

#define NAT SG_SVC_MODE_NAT
#define DNAT SG_SVC_MODE_DNAT
#define DSR_IPIP SG_SVC_MODE_DSR_IPIP
#define DSR_GUE SG_SVC_MODE_DSR_GUE
#define DSR_L2 SG_SVC_MODE_DSR_L2

static const struct svc_spec services[] = {
	{ S_NAT4_TCP, "nat4/tcp", NAT, 0, { { "192.0.2.10", 80, TCP } },
	  { { "203.0.113.11", 8080, READY } }, { NULL } },
	{ S_NAT4_UDP, "nat4/udp", NAT, 0, { { "192.0.2.10", 53, UDP } },
	  { { "203.0.113.12", 5353, READY } }, { NULL } },
	{ S_NAT6_TCP, "nat6/tcp", NAT, 0, { { "2001:db8:2::10", 80, TCP } },
	  { { "2001:db8:cb::11", 8080, READY } }, { NULL } },
	{ S_NAT6_UDP, "nat6/udp", NAT, 0, { { "2001:db8:2::10", 53, UDP } },
	  { { "2001:db8:cb::12", 5353, READY } }, { NULL } },
	{ S_DNAT4_TCP, "dnat4/tcp", DNAT, 0, { { "192.0.2.11", 80, TCP } },
	  { { "203.0.113.13", 8080, READY } }, { NULL } },
	{ S_DNAT4_UDP, "dnat4/udp", DNAT, 0, { { "192.0.2.11", 53, UDP } },
	  { { "203.0.113.13", 5353, READY } }, { NULL } },
	{ S_DNAT6_TCP, "dnat6/tcp", DNAT, 0, { { "2001:db8:2::11", 80, TCP } },
	  { { "2001:db8:cb::13", 8080, READY } }, { NULL } },
	{ S_DNAT6_UDP, "dnat6/udp", DNAT, 0, { { "2001:db8:2::11", 53, UDP } },
	  { { "2001:db8:cb::13", 5353, READY } }, { NULL } },
	{ S_IPIP4, "ipip4", DSR_IPIP, 0,
	  { { "192.0.2.12", 80, TCP }, { "192.0.2.12", 53, UDP } },
	  { { "203.0.113.14", 80, READY } }, { NULL } },
	{ S_IPIP6, "ipip6", DSR_IPIP, 0,
	  { { "2001:db8:2::12", 80, TCP }, { "2001:db8:2::12", 53, UDP } },
	  { { "2001:db8:cb::14", 80, READY } }, { NULL } },
	{ S_IPIP_6TO4, "ipip-6to4", DSR_IPIP, 0, { { "2001:db8:2::13", 80, TCP } },
	  { { "203.0.113.15", 80, READY } }, { NULL } },
	{ S_IPIP_4TO6, "ipip-4to6", DSR_IPIP, 0, { { "192.0.2.13", 80, TCP } },
	  { { "2001:db8:cb::15", 80, READY } }, { NULL } },
	{ S_GUE4, "gue4", DSR_GUE, 0,
	  { { "192.0.2.14", 80, TCP }, { "192.0.2.14", 53, UDP } },
	  { { "203.0.113.16", 80, READY } }, { NULL } },
	{ S_GUE6, "gue6", DSR_GUE, 0,
	  { { "2001:db8:2::14", 80, TCP }, { "2001:db8:2::14", 53, UDP } },
	  { { "2001:db8:cb::16", 80, READY } }, { NULL } },
	{ S_GUE_6TO4, "gue-6to4", DSR_GUE, 0, { { "2001:db8:2::15", 80, TCP } },
	  { { "203.0.113.17", 80, READY } }, { NULL } },
	{ S_L2_4, "l2-4", DSR_L2, 0, { { "192.0.2.16", 80, TCP } },
	  { { "203.0.113.18", 80, READY } }, { NULL } },
	{ S_L2_6, "l2-6", DSR_L2, 0, { { "2001:db8:2::16", 80, TCP } },
	  { { "2001:db8:cb::18", 80, READY } }, { NULL } },
	/* externalTrafficPolicy: Local with nat as the default: compiled to dnat. */
	{ S_LOCAL, "local", DNAT, SG_SVC_F_LOCAL, { { "192.0.2.17", 80, TCP } },
	  { { "203.0.113.13", 8080, READY } }, { NULL } },
	/*
	 * loadBalancerSourceRanges: app/svcgw/services.c compiles the LB VIP
	 * and the NodePort of one service port into two entries, the ranges on
	 * the VIP's only (kube-proxy filters the LB, never the NodePort).
	 */
	{ S_LB4, "lb4", NAT, 0, { { "192.0.2.18", 80, TCP } },
	  { { "203.0.113.11", 8080, READY } }, { "198.51.100.0/28", "2001:db8:c::/120" } },
	{ S_NP4, "lb4/nodeport", NAT, 0, { { "0.0.0.0", 30080, TCP } },
	  { { "203.0.113.11", 8080, READY } }, { NULL } },
	{ S_LB6, "lb6", NAT, 0, { { "2001:db8:2::18", 80, TCP } },
	  { { "2001:db8:cb::11", 8080, READY } }, { "198.51.100.0/28", "2001:db8:c::/120" } },
	{ S_NP6, "lb6/nodeport", NAT, 0, { { "::", 30080, TCP } },
	  { { "2001:db8:cb::11", 8080, READY } }, { NULL } },
	/* Endpoint conditions: ready first, else serving and terminating. */
	{ S_READY, "ready", NAT, 0, { { "192.0.2.19", 80, TCP } },
	  { { "203.0.113.21", 8080, DOWN }, { "203.0.113.22", 8080, READY },
	    { "203.0.113.23", 8080, SERVING_TERM } }, { NULL } },
	{ S_TERM, "terminating", NAT, 0, { { "192.0.2.19", 81, TCP } },
	  { { "203.0.113.21", 8080, DOWN }, { "203.0.113.22", 8080, TERM_ONLY },
	    { "203.0.113.23", 8080, SERVING_TERM } }, { NULL } },
	{ S_NONE4, "none4", NAT, 0, { { "192.0.2.19", 82, TCP }, { "192.0.2.19", 82, UDP } },
	  { { "203.0.113.21", 8080, DOWN }, { "203.0.113.22", 8080, TERM_ONLY } }, { NULL } },
	{ S_NONE6, "none6", NAT, 0,
	  { { "2001:db8:2::19", 82, TCP }, { "2001:db8:2::19", 82, UDP } },
	  { { "2001:db8:cb::21", 8080, DOWN }, { "2001:db8:cb::22", 8080, TERM_ONLY } },
	  { NULL } },
	{ S_EMPTY, "empty", NAT, 0, { { "192.0.2.19", 83, TCP } }, { { NULL, 0, 0 } }, { NULL } },
	/* One VIP, port 53 of both protocols, two services of their own. */
	{ S_SAME_TCP, "same/tcp", NAT, 0, { { "192.0.2.20", 53, TCP } },
	  { { "203.0.113.24", 53, READY } }, { NULL } },
	{ S_SAME_UDP, "same/udp", DNAT, 0, { { "192.0.2.20", 53, UDP } },
	  { { "203.0.113.25", 53, READY } }, { NULL } },
	/* Maglev over four pods; the same with sessionAffinity: ClientIP. */
	{ S_MAGLEV, "maglev", NAT, 0, { { "192.0.2.21", 80, TCP } },
	  { { "203.0.113.31", 8080, READY }, { "203.0.113.32", 8080, READY },
	    { "203.0.113.33", 8080, READY }, { "203.0.113.34", 8080, READY } }, { NULL } },
	{ S_AFF4, "affinity4", NAT, SG_SVC_F_AFFINITY, { { "192.0.2.21", 81, TCP } },
	  { { "203.0.113.31", 8080, READY }, { "203.0.113.32", 8080, READY },
	    { "203.0.113.33", 8080, READY }, { "203.0.113.34", 8080, READY } }, { NULL } },
	{ S_AFF6, "affinity6", NAT, SG_SVC_F_AFFINITY, { { "2001:db8:2::21", 81, TCP } },
	  { { "2001:db8:cb::31", 8080, READY }, { "2001:db8:cb::32", 8080, READY },
	    { "2001:db8:cb::33", 8080, READY }, { "2001:db8:cb::34", 8080, READY } },
	  { NULL } },
	/* Republished by the eviction tests with a backend no longer serving. */
	{ S_EVICT4_UDP, "evict4/udp", NAT, 0, { { "192.0.2.22", 53, UDP } },
	  { { "203.0.113.41", 53, READY }, { "203.0.113.42", 53, READY } }, { NULL } },
	{ S_EVICT4_TCP, "evict4/tcp", NAT, 0, { { "192.0.2.22", 53, TCP } },
	  { { "203.0.113.41", 53, READY }, { "203.0.113.42", 53, READY } }, { NULL } },
	{ S_EVICT6_UDP, "evict6/udp", DNAT, 0, { { "2001:db8:2::22", 53, UDP } },
	  { { "2001:db8:cb::41", 53, READY }, { "2001:db8:cb::42", 53, READY } }, { NULL } },
	{ S_EVICT6_TCP, "evict6/tcp", DNAT, 0, { { "2001:db8:2::22", 53, TCP } },
	  { { "2001:db8:cb::41", 53, READY }, { "2001:db8:cb::42", 53, READY } }, { NULL } },
	/* A pod whose MAC nobody knows yet. */
	{ S_NONEIGH, "noneigh", DNAT, 0, { { "192.0.2.23", 80, TCP } },
	  { { "203.0.113.99", 8080, READY } }, { NULL } },
};

/* Owned on the external port: VIPs, and the node addresses NodePorts answer on. */
static const char *const vips[] = {
	"192.0.2.10", "192.0.2.11", "192.0.2.12", "192.0.2.13", "192.0.2.14", "192.0.2.16",
	"192.0.2.17", "192.0.2.18", "192.0.2.19", "192.0.2.20", "192.0.2.21", "192.0.2.22",
	"192.0.2.23", "2001:db8:2::10", "2001:db8:2::11", "2001:db8:2::12", "2001:db8:2::13",
	"2001:db8:2::14", "2001:db8:2::15", "2001:db8:2::16", "2001:db8:2::18",
	"2001:db8:2::19", "2001:db8:2::21", "2001:db8:2::22",
};

/* ---- the environment ---------------------------------------------------- */

static struct {
	struct rte_mempool *pool;
	uint16_t pid[2];
	struct rte_ring *rx[2][NQ], *tx[2][NQ];
	struct rte_rcu_qsbr *qsbr;
	struct sg_svc_table *svc;
	struct sg_neigh_table *neigh;
	struct sg_dp_snat snat;
	struct sg_dp_ctx ctx;
	struct sg_dp_worker *w[NQ];
	unsigned int nw;
	uint64_t now;
} E;

/* The case running, for failure messages. */
static const char *cur = "";

/* ---- bytes -------------------------------------------------------------- */

static void
wr16(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void
wr32(uint8_t *p, uint32_t v)
{
	wr16(p, v >> 16);
	wr16(p + 2, v);
}

static uint16_t
rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t
rd32(const uint8_t *p)
{
	return (uint32_t)rd16(p) << 16 | rd16(p + 2);
}

struct addr {
	uint8_t a[16] __rte_aligned(4);	/* hashed as 32-bit words (rte_hash_crc) */
	uint8_t family;
};

static struct addr
A(const char *s)
{
	struct addr r;

	memset(&r, 0, sizeof(r));
	if (inet_pton(AF_INET, s, r.a) == 1)
		r.family = 4;
	else if (inet_pton(AF_INET6, s, r.a) == 1)
		r.family = 6;
	else
		fail_msg("bad address %s", s);
	return r;
}

static uint32_t
alen(uint8_t family)
{
	return family == 6 ? 16 : 4;
}

static bool
addr_eq(const struct addr *x, const uint8_t *bytes)
{
	return memcmp(x->a, bytes, alen(x->family)) == 0;
}

/* The side of the gateway an address is on: pods have their own prefixes. */
static uint8_t
side_of(const struct addr *x)
{
	static const uint8_t pods6[8] = { 0x20, 0x01, 0x0d, 0xb8, 0, 0xcb, 0, 0 };

	if (x->family == 4)
		return x->a[0] == 203 && x->a[1] == 0 && x->a[2] == 113 ? P_INT : P_EXT;
	return memcmp(x->a, pods6, 8) == 0 ? P_INT : P_EXT;
}

/* Every host's MAC: 02:c1 (clients, routers) or 02:b0 (pods), then its last 4 bytes. */
static void
mac_of(const struct addr *x, uint8_t mac[6])
{
	static const uint8_t ext6[8] = { 0x20, 0x01, 0x0d, 0xb8, 0, 0x0c, 0, 0 };
	uint32_t l = alen(x->family);

	/* Off the external port's links: behind the router, whose MAC frames carry. */
	if (x->family == 6 && side_of(x) == P_EXT && memcmp(x->a, ext6, 8) != 0 &&
	    x->a[0] != 0xff) {
		struct addr r = A(ROUTER6);

		mac_of(&r, mac);
		return;
	}
	mac[0] = 0x02;
	mac[1] = side_of(x) == P_EXT ? 0xc1 : 0xb0;
	memcpy(mac + 2, x->a + l - 4, 4);
}

static const uint8_t *
port_mac(uint8_t port)
{
	return port == P_EXT ? EXT_MAC : INT_MAC;
}

/* ---- checksums, from scratch (RFC 1071) -------------------------------- */

static uint32_t
sum16(const uint8_t *b, uint32_t n, uint32_t s)
{
	for (uint32_t i = 0; i + 1 < n; i += 2)
		s += (uint32_t)b[i] << 8 | b[i + 1];
	if (n & 1)
		s += (uint32_t)b[n - 1] << 8;
	return s;
}

static uint16_t
fin16(uint32_t s)
{
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)~s;
}

/* Pseudo-header of the IP header at ip (RFC 793 §3.1, RFC 8200 §8.1). */
static uint32_t
pseudo(const uint8_t *ip, uint8_t proto, uint32_t len)
{
	if ((ip[0] >> 4) == 6)
		return sum16(ip + 8, 32, 0) + (len >> 16) + (len & 0xffff) + proto;
	return sum16(ip + 12, 8, 0) + proto + len;
}

/* ---- frames -------------------------------------------------------------- */

#define EXT_HBH 0x01	/* IPv6 hop-by-hop options header */
#define EXT_DST 0x02	/* IPv6 destination options header */
#define EXT_FRAG 0x04	/* IPv6 fragment header: a non-first fragment */

/* A frame to build: Ethernet, IPv4 or IPv6 (extension headers), L4, payload. */
struct pkt {
	uint8_t dmac[6], smac[6];
	uint16_t vlan;		/* TCI; 0: untagged */
	struct addr src, dst;
	uint8_t tos;		/* IPv4 TOS, IPv6 traffic class */
	uint16_t ip_id;
	uint8_t df;
	uint8_t ttl;
	uint32_t flow_label;
	uint8_t ext;		/* EXT_* */
	uint8_t proto;
	uint16_t sport, dport;	/* TCP, UDP */
	uint32_t seq, ack;
	uint8_t tcp_flags;
	uint16_t win;
	uint8_t icmp_type, icmp_code;
	uint32_t icmp_rest;	/* ICMP bytes 4-7: echo id and sequence, MTU */
	const uint8_t *payload;	/* NULL: a pattern drawn from seed */
	uint32_t payload_len;
	uint8_t seed;
	uint8_t raw;		/* payload is the whole L4 part (a non-first fragment) */
	uint8_t nocsum;		/* IPv4 UDP without a checksum (0, RFC 768) */
	uint32_t pad_to;	/* frame padded to this length with 0xee, as short frames are */
};

static uint32_t
l4_hlen(uint8_t proto)
{
	return proto == TCP ? 20 : 8;
}

static uint32_t
ext_len(const struct pkt *p)
{
	return 8u * (uint32_t)(!!(p->ext & EXT_HBH) + !!(p->ext & EXT_DST) + !!(p->ext & EXT_FRAG));
}

static uint32_t
l3_off(const struct pkt *p)
{
	return p->vlan ? 18 : 14;
}

static uint32_t
l4_off(const struct pkt *p)
{
	return l3_off(p) + (p->src.family == 6 ? 40 + ext_len(p) : 20);
}

static uint32_t
build(uint8_t *b, const struct pkt *p)
{
	bool v6 = p->src.family == 6;
	uint32_t l3 = l3_off(p), l4 = l4_off(p);
	uint32_t hl = p->raw ? 0 : l4_hlen(p->proto), l4len = hl + p->payload_len, len;
	uint8_t *ip = b + l3, *t = b + l4;

	assert_true(l4 + l4len <= FRAME_MAX);
	memcpy(b, p->dmac, 6);
	memcpy(b + 6, p->smac, 6);
	if (p->vlan) {
		wr16(b + 12, 0x8100);
		wr16(b + 14, p->vlan);
	}
	wr16(b + l3 - 2, v6 ? 0x86dd : 0x0800);

	memset(t, 0, hl);
	if (!p->raw && p->proto == TCP) {
		wr16(t, p->sport);
		wr16(t + 2, p->dport);
		wr32(t + 4, p->seq);
		wr32(t + 8, p->ack);
		t[12] = 5 << 4;
		t[13] = p->tcp_flags;
		wr16(t + 14, p->win);
	} else if (!p->raw && p->proto == UDP) {
		wr16(t, p->sport);
		wr16(t + 2, p->dport);
		wr16(t + 4, l4len);
	} else if (!p->raw) {
		t[0] = p->icmp_type;
		t[1] = p->icmp_code;
		wr32(t + 4, p->icmp_rest);
	}
	for (uint32_t i = 0; i < p->payload_len; i++)
		t[hl + i] = p->payload != NULL ? p->payload[i] : (uint8_t)(p->seed + i * 7);

	if (!v6) {
		ip[0] = 0x45;
		ip[1] = p->tos;
		wr16(ip + 2, 20 + l4len);
		wr16(ip + 4, p->ip_id);
		wr16(ip + 6, p->df ? 0x4000 : 0);
		ip[8] = p->ttl;
		ip[9] = p->proto;
		wr16(ip + 10, 0);
		memcpy(ip + 12, p->src.a, 4);
		memcpy(ip + 16, p->dst.a, 4);
		wr16(ip + 10, fin16(sum16(ip, 20, 0)));
	} else {
		uint8_t *x = ip + 40, *nh = ip + 6;

		wr32(ip, 6u << 28 | (uint32_t)p->tos << 20 | (p->flow_label & 0xfffff));
		wr16(ip + 4, ext_len(p) + l4len);
		ip[7] = p->ttl;
		memcpy(ip + 8, p->src.a, 16);
		memcpy(ip + 24, p->dst.a, 16);
		/* Options headers of 8 bytes: one PadN option (RFC 8200 §4.2). */
		if (p->ext & EXT_HBH) {
			*nh = 0;
			nh = x;
			memcpy(x + 1, (uint8_t[]){ 0, 1, 4, 0, 0, 0, 0 }, 7);
			x += 8;
		}
		if (p->ext & EXT_DST) {
			*nh = 60;
			nh = x;
			memcpy(x + 1, (uint8_t[]){ 0, 1, 4, 0, 0, 0, 0 }, 7);
			x += 8;
		}
		if (p->ext & EXT_FRAG) {	/* offset 8, last fragment (RFC 8200 §4.5) */
			*nh = 44;
			nh = x;
			x[1] = 0;
			wr16(x + 2, 8);
			wr32(x + 4, 0x5eed);
			x += 8;
		}
		*nh = p->proto;
	}

	if (!p->raw) {
		uint32_t off = p->proto == TCP ? 16 : p->proto == UDP ? 6 : 2;
		uint32_t s = p->proto == ICMP4 ? 0 : pseudo(ip, p->proto, l4len);
		uint16_t c = fin16(sum16(t, l4len, s));

		if (p->proto == UDP && c == 0)
			c = 0xffff;	/* RFC 768 */
		if (!(p->nocsum && p->proto == UDP && !v6))
			wr16(t + off, c);
	}
	len = l4 + l4len;
	if (len < p->pad_to) {
		memset(b + len, 0xee, p->pad_to - len);
		len = p->pad_to;
	}
	return len;
}

/* Length of the IP datagram of frame b (untagged), by its header. */
static uint32_t
ip_len(const uint8_t *b)
{
	return (b[14] >> 4) == 4 ? rd16(b + 16) : 40u + rd16(b + 18);
}

/*
 * Every checksum of an IP datagram the gateway sent, recomputed: IPv4
 * header, TCP/UDP/ICMP(v6) unless it is a fragment, the quoted IPv4
 * header of an ICMP error, and the inner packet of IPIP and GUE.
 */
static void
verify_ip(const uint8_t *ip, uint32_t avail)
{
	uint32_t l4len, hl;
	const uint8_t *l4;
	uint8_t proto;

	if ((ip[0] >> 4) == 4) {
		hl = (ip[0] & 0xfu) * 4;
		assert_true(hl >= 20 && rd16(ip + 2) <= avail);
		if (fin16(sum16(ip, hl, 0)) != 0)
			fail_msg("%s: IPv4 header checksum", cur);
		if (rd16(ip + 6) & 0x3fff)
			return;	/* a fragment: its L4 sum covers the others too */
		proto = ip[9];
		l4 = ip + hl;
		l4len = rd16(ip + 2) - hl;
	} else {
		assert_int_equal(ip[0] >> 4, 6);
		assert_true(40u + rd16(ip + 4) <= avail);
		proto = ip[6];
		l4 = ip + 40;
		l4len = rd16(ip + 4);
		while (proto == 0 || proto == 60 || proto == 43 || proto == 44) {
			uint32_t n = proto == 44 ? 8 : 8u * (l4[1] + 1u);

			if (proto == 44)
				return;
			proto = l4[0];
			l4 += n;
			l4len -= n;
		}
	}
	switch (proto) {
	case TCP:
	case UDP:
	case ICMP6:
		if (proto == UDP && (ip[0] >> 4) == 4 && rd16(l4 + 6) == 0)
			break;	/* IPv4 UDP without a checksum */
		if (fin16(sum16(l4, l4len, pseudo(ip, proto, l4len))) != 0)
			fail_msg("%s: %s checksum", cur,
				 proto == TCP ? "TCP" : proto == UDP ? "UDP" : "ICMPv6");
		if (proto == UDP && rd16(l4 + 2) == GUE_PORT)
			verify_ip(l4 + 8, l4len - 8);
		break;
	case ICMP4:
		if (fin16(sum16(l4, l4len, 0)) != 0)
			fail_msg("%s: ICMP checksum", cur);
		if ((l4[0] == 3 || l4[0] == 11) && l4len >= 28 &&
		    fin16(sum16(l4 + 8, (l4[8] & 0xfu) * 4, 0)) != 0)
			fail_msg("%s: quoted IPv4 header checksum", cur);
		break;
	case IPPROTO_IPIP:
	case IPPROTO_IPV6:
		verify_ip(l4, l4len);
		break;
	default:
		break;
	}
}

/* ---- what leaves ---------------------------------------------------------- */

struct out {
	uint8_t b[FRAME_MAX];
	uint32_t len;
	uint8_t port;	/* P_EXT or P_INT */
	uint8_t queue;	/* = the worker that sent it */
};

#define OUT_MAX 64
static struct out outs[OUT_MAX];

static void
hexdump(const char *what, const uint8_t *b, uint32_t n)
{
	fprintf(stderr, "%s (%u bytes):", what, n);
	for (uint32_t i = 0; i < n; i++)
		fprintf(stderr, "%s%02x", i % 16 ? " " : "\n  ", b[i]);
	fprintf(stderr, "\n");
}

/* Take every frame off the ports' transmit rings, checksums verified. */
static unsigned int
collect(void)
{
	unsigned int n = 0;

	for (uint8_t p = 0; p < 2; p++) {
		for (uint8_t q = 0; q < NQ; q++) {
			struct rte_mbuf *m;

			while (rte_ring_dequeue(E.tx[p][q], (void **)&m) == 0) {
				struct out *o = &outs[n];

				assert_true(n < OUT_MAX);
				/* Ports are set up without multi-segment transmit. */
				assert_int_equal(m->nb_segs, 1);
				assert_true(rte_pktmbuf_pkt_len(m) <= FRAME_MAX);
				o->len = rte_pktmbuf_pkt_len(m);
				memcpy(o->b, rte_pktmbuf_mtod(m, uint8_t *), o->len);
				o->port = p;
				o->queue = q;
				rte_pktmbuf_free(m);
				if (rd16(o->b + 12) == 0x0800 || rd16(o->b + 12) == 0x86dd)
					verify_ip(o->b + 14, o->len - 14);
				n++;
			}
		}
	}
	return n;
}

/*
 * The frame sent is exp, byte for byte; after it only what Ethernet
 * padding to 60 bytes may add.
 */
static void
frame_eq(const struct out *o, uint8_t port, const uint8_t *exp, uint32_t exp_len)
{
	uint32_t i = 0;

	if (o->port != port)
		fail_msg("%s: sent on port %u, expected %u", cur, o->port, port);
	if (o->len >= exp_len && o->len <= RTE_MAX(exp_len, 60u))
		while (i < exp_len && o->b[i] == exp[i])
			i++;
	if (i == exp_len)
		return;
	hexdump("sent", o->b, o->len);
	hexdump("expected", exp, exp_len);
	if (o->len < exp_len || o->len > RTE_MAX(exp_len, 60u))
		fail_msg("%s: frame of %u bytes, expected %u", cur, o->len, exp_len);
	fail_msg("%s: byte %u is %02x, expected %02x", cur, i, o->b[i], exp[i]);
}

/* ---- feeding the workers ------------------------------------------------- */

static struct rte_mbuf *
mbuf_of(const uint8_t *b, uint32_t len, uint8_t port)
{
	struct rte_mbuf *m = rte_pktmbuf_alloc(E.pool);
	uint8_t *d;

	assert_non_null(m);
	d = (uint8_t *)rte_pktmbuf_append(m, (uint16_t)len);
	assert_non_null(d);
	memcpy(d, b, len);
	m->port = E.pid[port];
	return m;
}

/* One burst into worker w, as if received on port, then its transmit. */
static void
inject_burst(unsigned int w, uint8_t (*b)[FRAME_MAX], const uint32_t *len,
	     const uint8_t *port, unsigned int n)
{
	struct rte_mbuf *m[SG_MAX_BURST];

	for (unsigned int i = 0; i < n; i++)
		m[i] = mbuf_of(b[i], len[i], port[i]);
	sg_dp_worker_process(E.w[w], m, n, E.now);
	sg_dp_worker_flush(E.w[w]);
}

static void
inject(const uint8_t *b, uint32_t len, uint8_t port)
{
	struct rte_mbuf *m = mbuf_of(b, len, port);

	sg_dp_worker_process(E.w[0], &m, 1, E.now);
	sg_dp_worker_flush(E.w[0]);
}

/* Build p, send it in on port to worker 0; returns how many frames left. */
static unsigned int
send_pkt(const struct pkt *p, uint8_t port)
{
	uint8_t b[FRAME_MAX];
	uint32_t len = build(b, p);

	inject(b, len, port);
	return collect();
}

/* With several workers: onto the receive ring of queue q, for a poll to find. */
static void
rx_put(const struct pkt *p, uint8_t port, uint16_t q)
{
	uint8_t b[FRAME_MAX];
	uint32_t len = build(b, p);

	assert_int_equal(rte_ring_enqueue(E.rx[port][q], mbuf_of(b, len, port)), 0);
}

/* Poll every worker until what they handed each other went through. */
static void
poll_all(void)
{
	for (int round = 0; round < 4; round++)
		for (unsigned int i = 0; i < E.nw; i++)
			sg_dp_worker_poll(E.w[i], E.now);
}

static struct sg_dp_stats
stats(unsigned int w)
{
	return *sg_dp_worker_stats(E.w[w]);
}

#define CNT(name) SG_DP_C_##name
#define DELTA(a, b, name) ((b).c[CNT(name)] - (a).c[CNT(name)])

static uint64_t
drops(const struct sg_dp_stats *s)
{
	uint64_t n = 0;

	for (unsigned int c = CNT(drop_mac); c < SG_DP_C_COUNT; c++)
		n += s->c[c];
	return n;
}

/* A frame from host `src` to `dst` through the gateway's port `port`. */
static struct pkt
pkt_new(uint8_t proto, const char *src, uint16_t sport, const char *dst, uint16_t dport)
{
	struct pkt p;

	memset(&p, 0, sizeof(p));
	p.src = A(src);
	p.dst = A(dst);
	assert_int_equal(p.src.family, p.dst.family);
	memcpy(p.dmac, port_mac(side_of(&p.src)), 6);
	mac_of(&p.src, p.smac);
	p.tos = 0x28;	/* AF11: carried through, and copied to outer headers */
	p.ip_id = (uint16_t)(0x1234 ^ sport);
	p.ttl = 61;	/* not the 64 of what the gateway originates */
	p.flow_label = p.src.family == 6 ? 0x12345 : 0;
	p.proto = proto;
	p.sport = sport;
	p.dport = dport;
	p.seq = 1000;
	p.tcp_flags = RTE_TCP_SYN_FLAG;
	p.win = 1024;
	p.seed = (uint8_t)sport;
	p.pad_to = 60;
	if (proto == ICMP4 || proto == ICMP6) {
		p.icmp_type = proto == ICMP4 ? 8 : 128;	/* echo request */
		p.icmp_rest = (uint32_t)sport << 16 | 1;
		p.payload_len = 32;
	}
	return p;
}

/*
 * What p becomes once forwarded as a router: toward `dst`:dport from
 * `src`:sport (NULL / 0 keep them), one hop less, between the MACs of the
 * egress port and of the destination.
 */
static struct pkt
forwarded(const struct pkt *p, const char *src, uint16_t sport, const char *dst, uint16_t dport)
{
	struct pkt x = *p;

	if (src != NULL)
		x.src = A(src);
	if (sport != 0)
		x.sport = sport;
	if (dst != NULL)
		x.dst = A(dst);
	if (dport != 0)
		x.dport = dport;
	x.ttl = (uint8_t)(p->ttl - 1);
	memcpy(x.smac, port_mac(side_of(&x.dst)), 6);
	mac_of(&x.dst, x.dmac);
	x.pad_to = 0;
	return x;
}

/*
 * Compare o with what p becomes once forwarded() from src:sport to
 * dst:dport; sport ANY_PORT takes the port that was sent (a SNAT port the
 * gateway chose), 0 keeps p's. Returns the L4 source port sent.
 */
#define ANY_PORT (-1)

static uint16_t
expect_fwd(const struct out *o, const struct pkt *p, const char *src, int sport, const char *dst,
	   uint16_t dport)
{
	struct pkt x = forwarded(p, src, 0, dst, dport);
	uint8_t b[FRAME_MAX];

	if (sport == ANY_PORT)
		x.sport = o->len >= l4_off(&x) + 2 ? rd16(o->b + l4_off(&x)) : 0;
	else if (sport != 0)
		x.sport = (uint16_t)sport;
	frame_eq(o, side_of(&x.dst), b, build(b, &x));
	return x.sport;
}

/* A SNAT port: from the shared range, one the sending worker owns. */
static void
check_snat_port(uint16_t port, unsigned int worker)
{
	if (port < SNAT_MIN || port > SNAT_MAX || port % E.nw != worker)
		fail_msg("%s: SNAT port %u, worker %u of %u", cur, port, worker, E.nw);
}

/* ---- one frame in, one verdict out ------------------------------------- */

enum out_kind {
	OUT_NONE,	/* dropped: nothing leaves, c counts it */
	OUT_FWD,	/* translated toward to:to_port, the source SNATed or kept */
	OUT_IPIP,	/* unchanged, inside an outer IP header to the pod `to` */
	OUT_GUE,	/* unchanged, inside outer IP and UDP headers to `to` */
	OUT_L2,		/* unchanged, to the MAC of `to` */
	OUT_RST,	/* a TCP RST back to the client (RFC 793 §3.4) */
	OUT_UNREACH,	/* ICMP / ICMPv6 port unreachable back to the client */
	OUT_TOO_BIG,	/* fragmentation needed / packet too big, announcing mtu */
	OUT_ECHO,	/* echo reply */
	OUT_ARP,	/* ARP reply from the port's MAC */
	OUT_NA,		/* neighbour advertisement from the port's MAC */
	OUT_FRAGS,	/* as OUT_FWD, in fragments that fit the internal port's MTU */
	OUT_IPIP_FRAGS,	/* cut to fit, each fragment inside IPIP to `to` */
	OUT_WAIT,	/* as OUT_FWD (dnat), waiting at the control thread for a MAC */
};

/* Ways to spoil a frame. */
#define BAD_MAC 1	/* unicast to another MAC */
#define BAD_VLAN 2	/* 802.1Q tagged */
#define BAD_RUNT 3	/* 10 bytes */
#define BAD_TOTLEN 4	/* IPv4 total length past the end of the frame */

/* The frame in; it arrives on the port its source is behind. */
struct in_spec {
	uint8_t proto;	/* TCP, UDP, ICMP4, ICMP6 (echo), PROTO_ARP, PROTO_NS */
	const char *src, *dst;
	uint16_t sport, dport;	/* echo: sport is the identifier */
	uint8_t tcp;	/* TCP flags; 0: SYN */
	uint8_t ttl;	/* 0: 61 */
	uint16_t len;	/* payload bytes */
	uint8_t df;
	uint8_t ext;	/* EXT_* */
	uint8_t bad;	/* BAD_* */
	uint8_t nocsum;	/* IPv4 UDP without a checksum */
	uint16_t mtu;	/* the internal port's MTU for this row; 0: 1500 */
};

struct expect {
	enum out_kind kind;
	const char *to;
	uint16_t to_port;
	uint8_t snat;
	uint16_t mtu;
	enum sg_dp_counter c;	/* incremented by one */
	enum sg_dp_counter c2;	/* also incremented by one; 0 (rx): none */
};

struct row {
	const char *name;
	uint32_t svc;	/* the service the frame's destination names, 0: none */
	struct in_spec in;
	struct expect out;
};

#define IN(pr, s, d, sp, dp) .proto = (pr), .src = (s), .dst = (d), .sport = (sp), .dport = (dp)
#define SNAT_TO(a, p) .kind = OUT_FWD, .to = (a), .to_port = (p), .snat = 1, .c = CNT(fwd), \
		      .c2 = CNT(flow_new)
#define DNAT_TO(a, p) .kind = OUT_FWD, .to = (a), .to_port = (p), .c = CNT(fwd), \
		      .c2 = CNT(flow_new)
#define IPIP_TO(a) .kind = OUT_IPIP, .to = (a), .c = CNT(encap), .c2 = CNT(flow_new)
#define IPIP_STATELESS(a) .kind = OUT_IPIP, .to = (a), .c = CNT(encap), .c2 = CNT(stateless)
#define GUE_TO(a) .kind = OUT_GUE, .to = (a), .c = CNT(encap), .c2 = CNT(flow_new)
#define GUE_STATELESS(a) .kind = OUT_GUE, .to = (a), .c = CNT(encap), .c2 = CNT(stateless)
#define L2_TO(a) .kind = OUT_L2, .to = (a), .c = CNT(l2_fwd), .c2 = CNT(flow_new)
#define DROP(name) .kind = OUT_NONE, .c = CNT(name)
#define RST .kind = OUT_RST, .c = CNT(rst_sent)
#define UNREACH .kind = OUT_UNREACH, .c = CNT(unreach_sent)
#define TOO_BIG(m) .kind = OUT_TOO_BIG, .mtu = (m), .c = CNT(too_big_sent), .c2 = CNT(flow_new)
#define TOO_BIG_STATELESS(m) .kind = OUT_TOO_BIG, .mtu = (m), .c = CNT(too_big_sent), \
			     .c2 = CNT(stateless)
#define ECHO .kind = OUT_ECHO, .c = CNT(echo_reply)
#define ARP_REPLY .kind = OUT_ARP, .c = CNT(arp_reply)
#define NA_REPLY .kind = OUT_NA, .c = CNT(nd_reply)
#define FRAGS_SNAT(a, p) .kind = OUT_FRAGS, .to = (a), .to_port = (p), .snat = 1, \
			 .c = CNT(fwd), .c2 = CNT(flow_new)
#define FRAGS_DNAT(a, p) .kind = OUT_FRAGS, .to = (a), .to_port = (p), .c = CNT(fwd), \
			 .c2 = CNT(flow_new)
#define IPIP_FRAGS(a) .kind = OUT_IPIP_FRAGS, .to = (a), .c = CNT(fwd), .c2 = CNT(flow_new)
#define WAIT(a, p) .kind = OUT_WAIT, .to = (a), .to_port = (p), .c = CNT(neigh_wait), \
		   .c2 = CNT(flow_new)

#define ACK RTE_TCP_ACK_FLAG
#define SYN_ACK (RTE_TCP_SYN_FLAG | RTE_TCP_ACK_FLAG)
#define PSH_ACK (RTE_TCP_PSH_FLAG | RTE_TCP_ACK_FLAG)

static const struct row rows[] = {
	/* Malformed and misaddressed frames. */
	{ "runt frame", 0, { IN(TCP, C4, "192.0.2.10", 40000, 80), .bad = BAD_RUNT },
	  { DROP(drop_parse) } },
	{ "ipv4 total length past the frame", 0,
	  { IN(TCP, C4, "192.0.2.10", 40000, 80), .bad = BAD_TOTLEN }, { DROP(drop_parse) } },
	{ "unicast to another mac", S_NAT4_TCP,
	  { IN(TCP, C4, "192.0.2.10", 40000, 80), .bad = BAD_MAC }, { DROP(drop_mac) } },
	{ "802.1q tagged", S_NAT4_TCP, { IN(TCP, C4, "192.0.2.10", 40000, 80), .bad = BAD_VLAN },
	  { DROP(drop_vlan) } },
	{ "no service on that port of a vip", 0, { IN(TCP, C4, "192.0.2.10", 40000, 81) },
	  { DROP(drop_not_ours) } },
	{ "new flow from the pods' side", S_NAT4_TCP,
	  { IN(TCP, "203.0.113.11", "192.0.2.10", 40000, 80) }, { DROP(drop_wrong_side) } },

	/* nat: SNAT + DNAT, a TCP flow only from a SYN. */
	{ "nat v4 tcp syn", S_NAT4_TCP, { IN(TCP, C4, "192.0.2.10", 40001, 80) },
	  { SNAT_TO("203.0.113.11", 8080) } },
	{ "nat v4 udp", S_NAT4_UDP, { IN(UDP, C4, "192.0.2.10", 40002, 53), .len = 40 },
	  { SNAT_TO("203.0.113.12", 5353) } },
	{ "nat v6 tcp syn", S_NAT6_TCP, { IN(TCP, C6, "2001:db8:2::10", 40003, 80) },
	  { SNAT_TO("2001:db8:cb::11", 8080) } },
	{ "nat v6 udp", S_NAT6_UDP, { IN(UDP, C6, "2001:db8:2::10", 40004, 53), .len = 40 },
	  { SNAT_TO("2001:db8:cb::12", 5353) } },
	{ "nat v4 udp without a checksum keeps none", S_NAT4_UDP,
	  { IN(UDP, C4, "192.0.2.10", 40008, 53), .len = 11, .nocsum = 1 },
	  { SNAT_TO("203.0.113.12", 5353) } },
	{ "nat v4 tcp midstream ack dropped", S_NAT4_TCP,
	  { IN(TCP, C4, "192.0.2.10", 40005, 80), .tcp = PSH_ACK, .len = 10 },
	  { DROP(drop_tcp_midstream) } },
	{ "nat v4 tcp syn-ack from a client dropped", S_NAT4_TCP,
	  { IN(TCP, C4, "192.0.2.10", 40006, 80), .tcp = SYN_ACK }, { DROP(drop_tcp_midstream) } },
	{ "nat v6 tcp midstream ack dropped", S_NAT6_TCP,
	  { IN(TCP, C6, "2001:db8:2::10", 40007, 80), .tcp = ACK }, { DROP(drop_tcp_midstream) } },

	/* dnat: the client's address kept; any segment may start a flow. */
	{ "dnat v4 tcp syn", S_DNAT4_TCP, { IN(TCP, C4, "192.0.2.11", 40010, 80) },
	  { DNAT_TO("203.0.113.13", 8080) } },
	{ "dnat v4 tcp midstream picked up", S_DNAT4_TCP,
	  { IN(TCP, C4, "192.0.2.11", 40011, 80), .tcp = PSH_ACK, .len = 100 },
	  { DNAT_TO("203.0.113.13", 8080) } },
	{ "dnat v4 udp", S_DNAT4_UDP, { IN(UDP, C4, "192.0.2.11", 40012, 53), .len = 3 },
	  { DNAT_TO("203.0.113.13", 5353) } },
	{ "dnat v6 tcp syn", S_DNAT6_TCP, { IN(TCP, C6, "2001:db8:2::11", 40013, 80) },
	  { DNAT_TO("2001:db8:cb::13", 8080) } },
	{ "dnat v6 tcp midstream picked up", S_DNAT6_TCP,
	  { IN(TCP, C6, "2001:db8:2::11", 40016, 80), .tcp = ACK },
	  { DNAT_TO("2001:db8:cb::13", 8080) } },
	{ "dnat v6 udp", S_DNAT6_UDP, { IN(UDP, C6, "2001:db8:2::11", 40014, 53), .len = 61 },
	  { DNAT_TO("2001:db8:cb::13", 5353) } },
	{ "etp local (dnat) keeps the client address", S_LOCAL,
	  { IN(TCP, C4, "192.0.2.17", 40015, 80) }, { DNAT_TO("203.0.113.13", 8080) } },

	/* dsr-ipip, dsr-gue: the packet unchanged inside; IPv6 VIPs to IPv4 pods. */
	{ "dsr-ipip v4 tcp", S_IPIP4, { IN(TCP, C4, "192.0.2.12", 40020, 80) },
	  { IPIP_TO("203.0.113.14") } },
	{ "dsr-ipip v4 udp", S_IPIP4, { IN(UDP, C4, "192.0.2.12", 40021, 53), .len = 20 },
	  { IPIP_TO("203.0.113.14") } },
	{ "dsr-ipip v4 tcp midstream", S_IPIP4,
	  { IN(TCP, C4, "192.0.2.12", 40022, 80), .tcp = PSH_ACK, .len = 30 },
	  { IPIP_TO("203.0.113.14") } },
	{ "dsr-ipip v6 tcp", S_IPIP6, { IN(TCP, C6, "2001:db8:2::12", 40023, 80) },
	  { IPIP_TO("2001:db8:cb::14") } },
	{ "dsr-ipip v6 udp", S_IPIP6, { IN(UDP, C6, "2001:db8:2::12", 40024, 53), .len = 20 },
	  { IPIP_TO("2001:db8:cb::14") } },
	{ "dsr-ipip v6 vip to v4 pod", S_IPIP_6TO4, { IN(TCP, C6, "2001:db8:2::13", 40025, 80) },
	  { IPIP_STATELESS("203.0.113.15") } },
	{ "dsr-ipip v4 vip to v6 pod", S_IPIP_4TO6,
	  { IN(TCP, C4, "192.0.2.13", 40026, 80), .df = 1 },
	  { IPIP_STATELESS("2001:db8:cb::15") } },
	{ "dsr-gue v4 tcp", S_GUE4, { IN(TCP, C4, "192.0.2.14", 40027, 80), .df = 1 },
	  { GUE_TO("203.0.113.16") } },
	{ "dsr-gue v4 udp", S_GUE4, { IN(UDP, C4, "192.0.2.14", 40028, 53), .len = 9 },
	  { GUE_TO("203.0.113.16") } },
	{ "dsr-gue v6 udp", S_GUE6, { IN(UDP, C6, "2001:db8:2::14", 40029, 53), .len = 9 },
	  { GUE_TO("2001:db8:cb::16") } },
	{ "dsr-gue v6 vip to v4 pod", S_GUE_6TO4, { IN(TCP, C6, "2001:db8:2::15", 40030, 80) },
	  { GUE_STATELESS("203.0.113.17") } },

	/* dsr-l2: the destination MAC only. */
	{ "dsr-l2 v4 tcp", S_L2_4, { IN(TCP, C4, "192.0.2.16", 40040, 80) },
	  { L2_TO("203.0.113.18") } },
	{ "dsr-l2 v6 tcp", S_L2_6, { IN(TCP, C6, "2001:db8:2::16", 40041, 80) },
	  { L2_TO("2001:db8:cb::18") } },
	/* A connection picked up mid-stream after its gateway died: the same pod. */
	{ "dsr-l2 v4 tcp midstream", S_L2_4,
	  { IN(TCP, C4, "192.0.2.16", 40042, 80), .tcp = PSH_ACK, .len = 40 },
	  { L2_TO("203.0.113.18") } },
	{ "dsr-l2 v6 tcp midstream", S_L2_6,
	  { IN(TCP, C6, "2001:db8:2::16", 40043, 80), .tcp = ACK },
	  { L2_TO("2001:db8:cb::18") } },
	{ "dsr-l2 full-size frame fits", S_L2_4,
	  { IN(TCP, C4, "192.0.2.16", 40042, 80), .df = 1, .len = 1460 },
	  { L2_TO("203.0.113.18") } },

	/* loadBalancerSourceRanges: the LB VIP filtered, the NodePort not. */
	{ "lb v4 source in range", S_LB4, { IN(TCP, C4, "192.0.2.18", 40050, 80) },
	  { SNAT_TO("203.0.113.11", 8080) } },
	{ "lb v4 source out of range", S_LB4, { IN(TCP, C4FAR, "192.0.2.18", 40051, 80) },
	  { DROP(drop_src_range) } },
	{ "nodeport v4 source out of lb range", S_NP4,
	  { IN(TCP, C4FAR, NODE4, 40052, 30080) }, { SNAT_TO("203.0.113.11", 8080) } },
	{ "lb v6 source in range", S_LB6, { IN(TCP, C6, "2001:db8:2::18", 40053, 80) },
	  { SNAT_TO("2001:db8:cb::11", 8080) } },
	{ "lb v6 source out of range", S_LB6, { IN(TCP, C6FAR, "2001:db8:2::18", 40054, 80) },
	  { DROP(drop_src_range) } },
	{ "nodeport v6 source out of lb range", S_NP6,
	  { IN(TCP, C6FAR, NODE6, 40055, 30080) }, { SNAT_TO("2001:db8:cb::11", 8080) } },
	{ "nodeport on a vip is no nodeport", S_NP4, { IN(TCP, C4, "192.0.2.10", 40056, 30080) },
	  { DROP(drop_nodeport_addr) } },
	{ "nodeport on the port's own address", S_NP4, { IN(TCP, C4, EXT4, 40057, 30080) },
	  { DROP(drop_nodeport_addr) } },

	/* Endpoint conditions. */
	{ "ready endpoint preferred", S_READY, { IN(TCP, C4, "192.0.2.19", 40060, 80) },
	  { SNAT_TO("203.0.113.22", 8080) } },
	{ "none ready: serving+terminating one", S_TERM, { IN(TCP, C4, "192.0.2.19", 40061, 81) },
	  { SNAT_TO("203.0.113.23", 8080) } },
	{ "none usable, tcp syn v4: rst", S_NONE4, { IN(TCP, C4, "192.0.2.19", 40062, 82) },
	  { RST } },
	{ "none usable, tcp ack v4: rst from its ack", S_NONE4,
	  { IN(TCP, C4, "192.0.2.19", 40063, 82), .tcp = PSH_ACK, .len = 5 }, { RST } },
	{ "none usable, udp v4: port unreachable", S_NONE4,
	  { IN(UDP, C4, "192.0.2.19", 40064, 82), .len = 600 }, { UNREACH } },
	{ "none usable, tcp syn v6: rst", S_NONE6,
	  { IN(TCP, C6, "2001:db8:2::19", 40065, 82), .len = 4 }, { RST } },
	{ "none usable, udp v6: port unreachable", S_NONE6,
	  { IN(UDP, C6, "2001:db8:2::19", 40066, 82), .len = 1300 }, { UNREACH } },
	{ "no endpoints at all: rst", S_EMPTY, { IN(TCP, C4, "192.0.2.19", 40067, 83) }, { RST } },
	{ "none usable, a rst in: nothing back", S_NONE4,
	  { IN(TCP, C4, "192.0.2.19", 40068, 82), .tcp = RTE_TCP_RST_FLAG },
	  { DROP(drop_reply_limited) } },
	{ "none usable, loopback source: nothing back", S_NONE4,
	  { IN(TCP, "127.0.0.1", "192.0.2.19", 40069, 82) }, { DROP(drop_reply_limited) } },
	{ "none usable, multicast source: nothing back", S_NONE6,
	  { IN(UDP, "ff02::1", "2001:db8:2::19", 40069, 82) }, { DROP(drop_reply_limited) } },

	/* Port 53 of both protocols on one VIP: two services. */
	{ "tcp 53 on a shared vip", S_SAME_TCP, { IN(TCP, C4, "192.0.2.20", 40070, 53) },
	  { SNAT_TO("203.0.113.24", 53) } },
	{ "udp 53 on a shared vip", S_SAME_UDP,
	  { IN(UDP, C4, "192.0.2.20", 40070, 53), .len = 12 }, { DNAT_TO("203.0.113.25", 53) } },

	/* TTL and hop limit. */
	{ "nat v4 ttl 1 expires", S_NAT4_TCP, { IN(TCP, C4, "192.0.2.10", 40080, 80), .ttl = 1 },
	  { DROP(drop_ttl) } },
	{ "nat v6 hop limit 1 expires", S_NAT6_TCP,
	  { IN(TCP, C6, "2001:db8:2::10", 40081, 80), .ttl = 1 }, { DROP(drop_ttl) } },
	{ "dnat v4 ttl 2 leaves with 1", S_DNAT4_TCP,
	  { IN(TCP, C4, "192.0.2.11", 40082, 80), .ttl = 2 }, { DNAT_TO("203.0.113.13", 8080) } },
	{ "dnat v6 hop limit 2 leaves with 1", S_DNAT6_UDP,
	  { IN(UDP, C6, "2001:db8:2::11", 40083, 53), .ttl = 2 },
	  { DNAT_TO("2001:db8:cb::13", 5353) } },
	{ "dsr-ipip leaves the inner ttl alone", S_IPIP4,
	  { IN(TCP, C4, "192.0.2.12", 40084, 80), .ttl = 1 }, { IPIP_TO("203.0.113.14") } },

	/* IPv6 extension headers before TCP / UDP. */
	{ "nat v6 tcp after hop-by-hop and dst options", S_NAT6_TCP,
	  { IN(TCP, C6, "2001:db8:2::10", 40090, 80), .ext = EXT_HBH | EXT_DST },
	  { SNAT_TO("2001:db8:cb::11", 8080) } },
	{ "dnat v6 udp after hop-by-hop", S_DNAT6_UDP,
	  { IN(UDP, C6, "2001:db8:2::11", 40091, 53), .ext = EXT_HBH, .len = 7 },
	  { DNAT_TO("2001:db8:cb::13", 5353) } },
	{ "dsr-ipip v6 udp after dst options", S_IPIP6,
	  { IN(UDP, C6, "2001:db8:2::12", 40092, 53), .ext = EXT_DST, .len = 7 },
	  { IPIP_TO("2001:db8:cb::14") } },
	{ "ipv6 fragment dropped", 0, { IN(UDP, C6, "2001:db8:2::10", 0, 0), .ext = EXT_FRAG,
	  .len = 16 }, { DROP(drop_frag) } },

	/* Encapsulation over the MTU: an ICMP error with the MTU that fits. */
	{ "dsr-ipip v4 df 1480 fits", S_IPIP4,
	  { IN(TCP, C4, "192.0.2.12", 40100, 80), .df = 1, .len = 1440 },
	  { IPIP_TO("203.0.113.14") } },
	{ "dsr-ipip v4 df 1500: frag needed 1480", S_IPIP4,
	  { IN(TCP, C4, "192.0.2.12", 40101, 80), .df = 1, .len = 1460 }, { TOO_BIG(1480) } },
	{ "dsr-gue v4 df 1500: frag needed 1472", S_GUE4,
	  { IN(TCP, C4, "192.0.2.14", 40102, 80), .df = 1, .len = 1460 }, { TOO_BIG(1472) } },
	{ "dsr-ipip v6 1500: packet too big 1460", S_IPIP6,
	  { IN(TCP, C6, "2001:db8:2::12", 40103, 80), .len = 1440 }, { TOO_BIG(1460) } },
	{ "dsr-gue v6 1500: packet too big 1452", S_GUE6,
	  { IN(UDP, C6, "2001:db8:2::14", 40104, 53), .len = 1452 }, { TOO_BIG(1452) } },
	{ "dsr-ipip v6 vip to v4 pod 1500: packet too big 1480", S_IPIP_6TO4,
	  { IN(TCP, C6, "2001:db8:2::13", 40105, 80), .len = 1440 },
	  { TOO_BIG_STATELESS(1480) } },
	{ "dsr-ipip v4 udp 1500 without df: inner fragments", S_IPIP4,
	  { IN(UDP, C4, "192.0.2.12", 40106, 53), .len = 1472 }, { IPIP_FRAGS("203.0.113.14") } },

	/* Egress MTU below the datagram: cut as a router does, or with DF refused. */
	{ "dnat v4 udp over a 576 mtu: fragments", S_DNAT4_UDP,
	  { IN(UDP, C4, "192.0.2.11", 40110, 53), .len = 1000, .mtu = 576 },
	  { FRAGS_DNAT("203.0.113.13", 5353) } },
	{ "nat v4 tcp over a 576 mtu: fragments", S_NAT4_TCP,
	  { IN(TCP, C4, "192.0.2.10", 40111, 80), .len = 1200, .mtu = 576 },
	  { FRAGS_SNAT("203.0.113.11", 8080) } },
	{ "dnat v4 udp df over a 576 mtu: frag needed 576", S_DNAT4_UDP,
	  { IN(UDP, C4, "192.0.2.11", 40112, 53), .len = 1000, .df = 1, .mtu = 576 },
	  { TOO_BIG(576) } },
	{ "nat v6 tcp over a 1280 mtu: packet too big 1280", S_NAT6_TCP,
	  { IN(TCP, C6, "2001:db8:2::10", 40113, 80), .len = 1300, .mtu = 1280 },
	  { TOO_BIG(1280) } },

	/* Answers for owned addresses. */
	{ "arp for a vip", 0, { IN(PROTO_ARP, C4, "192.0.2.10", 0, 0) }, { ARP_REPLY } },
	{ "arp for a node address", 0, { IN(PROTO_ARP, C4, NODE4, 0, 0) }, { ARP_REPLY } },
	{ "arp for the snat address, internal port", 0,
	  { IN(PROTO_ARP, "203.0.113.11", SNAT4, 0, 0) }, { ARP_REPLY } },
	{ "arp for an address not ours", 0, { IN(PROTO_ARP, C4, "198.51.100.99", 0, 0) },
	  { DROP(drop_neigh_ignored) } },
	{ "ns for a v6 vip", 0, { IN(PROTO_NS, C6, "2001:db8:2::10", 0, 0) }, { NA_REPLY } },
	{ "ns for the v6 snat address, internal port", 0,
	  { IN(PROTO_NS, "2001:db8:cb::11", SNAT6, 0, 0) }, { NA_REPLY } },
	{ "ns for an address not ours", 0, { IN(PROTO_NS, C6, "2001:db8:c::99", 0, 0) },
	  { DROP(drop_neigh_ignored) } },
	{ "echo to a vip", 0, { IN(ICMP4, C4, "192.0.2.10", 77, 0) }, { ECHO } },
	{ "echo to a node address", 0, { IN(ICMP4, C4, NODE4, 78, 0), .df = 1 }, { ECHO } },
	{ "echo to the port's address", 0, { IN(ICMP4, C4, EXT4, 79, 0) }, { ECHO } },
	{ "echo to a v6 vip", 0, { IN(ICMP6, C6, "2001:db8:2::10", 80, 0) }, { ECHO } },
	{ "echo to the snat address from a pod", 0,
	  { IN(ICMP4, "203.0.113.11", SNAT4, 82, 0) }, { ECHO } },
	{ "echo to a vip from the pods' side", 0,
	  { IN(ICMP4, "203.0.113.11", "192.0.2.10", 83, 0) }, { DROP(drop_not_ours) } },
	{ "echo to an address not ours", 0, { IN(ICMP4, C4, "192.0.2.99", 81, 0) },
	  { DROP(drop_not_ours) } },

	/* A pod nobody resolved yet: the packet waits for its MAC. */
	{ "pod mac unknown: waits at the control thread", S_NONEIGH,
	  { IN(TCP, C4, "192.0.2.23", 40120, 80) }, { WAIT("203.0.113.99", 8080) } },
};

/* The frame of a row (and in *p what it was built from). */
static uint32_t
row_frame(const struct in_spec *in, struct pkt *p, uint8_t *b)
{
	uint32_t len;

	if (in->proto == PROTO_ARP || in->proto == PROTO_NS) {
		static const uint8_t bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
		uint8_t sn[16], mmac[6];
		int rc;

		memset(p, 0, sizeof(*p));
		p->src = A(in->src);
		p->dst = A(in->dst);
		mac_of(&p->src, p->smac);
		if (in->proto == PROTO_ARP) {
			rc = sg_neigh_arp_build(b, FRAME_MAX, 1, bcast, p->smac, p->src.a, NULL,
						p->dst.a);
		} else {
			sg_neigh_solicited_node(p->dst.a, sn);
			sg_neigh_mcast_mac(sn, mmac);
			rc = sg_neigh_ns_build(b, FRAME_MAX, p->smac, mmac, p->src.a, sn, p->dst.a);
		}
		assert_true(rc > 0);
		return (uint32_t)rc;
	}
	*p = pkt_new(in->proto, in->src, in->sport, in->dst, in->dport);
	if (in->tcp != 0)
		p->tcp_flags = in->tcp;
	if (p->tcp_flags & RTE_TCP_ACK_FLAG)
		p->ack = 5000;
	if (in->ttl != 0)
		p->ttl = in->ttl;
	if (in->len != 0)
		p->payload_len = in->len;
	p->df = in->df;
	p->ext = in->ext;
	p->raw = (in->ext & EXT_FRAG) != 0;
	p->nocsum = in->nocsum;
	if (in->bad == BAD_MAC)
		p->dmac[5] ^= 0x55;
	if (in->bad == BAD_VLAN)
		p->vlan = 100;
	len = build(b, p);
	if (in->bad == BAD_RUNT)
		len = 10;
	if (in->bad == BAD_TOTLEN) {
		wr16(b + 16, rd16(b + 16) + 100);
		wr16(b + 24, 0);
		wr16(b + 24, fin16(sum16(b + 14, 20, 0)));
	}
	return len;
}

/* The row names the service it means. */
static void
row_service(const struct row *r)
{
	const struct sg_svc_entry *e;
	struct addr d = A(r->in.dst);
	struct sg_svc_key k;
	int any = 0;

	if (d.family == 4) {
		rte_be32_t a;

		memcpy(&a, d.a, 4);
		sg_svc_key4(&k, a, rte_cpu_to_be_16(r->in.dport), r->in.proto);
	} else {
		sg_svc_key6(&k, d.a, rte_cpu_to_be_16(r->in.dport), r->in.proto);
	}
	e = sg_svc_lookup(E.svc, &k, &any);
	if (e == NULL || e->id != r->svc)
		fail_msg("%s: the frame finds service %u, not %u", cur, e ? e->id : 0, r->svc);
}

/*
 * The pod's copy of the inner packet, between the MACs of the internal
 * port and the pod: outer IPv4 (DSCP/ECN copied, the inner DF and id when
 * IPv4 inner without DF, else DF and id 0) or IPv6 (the flow label as
 * sent, not predicted), then for GUE a UDP header to GUE_PORT from a port
 * in 49152-65535, checksummed over IPv6.
 */
static void
expect_encap(const struct out *o, const uint8_t *inner, uint32_t ilen, const char *to, bool gue)
{
	struct addr be = A(to), src = A(be.family == 4 ? INT4 : INT6);
	bool in4 = (inner[0] >> 4) == 4;
	uint8_t tos = in4 ? inner[1] : (uint8_t)((inner[0] & 0xf) << 4 | inner[1] >> 4);
	uint32_t ol = be.family == 4 ? 20 : 40, ul = gue ? 8 : 0;
	uint8_t proto = gue ? UDP : in4 ? IPPROTO_IPIP : IPPROTO_IPV6;
	uint8_t x[FRAME_MAX], *ip = x + 14, *u = ip + ol;

	assert_true(14 + ol + ul + ilen <= FRAME_MAX);
	mac_of(&be, x);
	memcpy(x + 6, INT_MAC, 6);
	wr16(x + 12, be.family == 4 ? 0x0800 : 0x86dd);
	if (be.family == 4) {
		bool df = !in4 || (inner[6] & 0x40);

		ip[0] = 0x45;
		ip[1] = tos;
		wr16(ip + 2, ol + ul + ilen);
		wr16(ip + 4, df ? 0 : rd16(inner + 4));
		wr16(ip + 6, df ? 0x4000 : 0);
		ip[8] = 64;
		ip[9] = proto;
		wr16(ip + 10, 0);
		memcpy(ip + 12, src.a, 4);
		memcpy(ip + 16, be.a, 4);
		wr16(ip + 10, fin16(sum16(ip, 20, 0)));
	} else {
		uint32_t fl = o->len >= 18 ? rd32(o->b + 14) & 0xfffff : 0;

		wr32(ip, 6u << 28 | (uint32_t)tos << 20 | fl);
		wr16(ip + 4, ul + ilen);
		ip[6] = proto;
		ip[7] = 64;
		memcpy(ip + 8, src.a, 16);
		memcpy(ip + 24, be.a, 16);
	}
	memcpy(u + ul, inner, ilen);
	if (gue) {
		uint16_t sport = o->len >= 14 + ol + 8 ? rd16(o->b + 14 + ol) : 0;

		if (sport < 49152)
			fail_msg("%s: GUE source port %u", cur, sport);
		wr16(u, sport);
		wr16(u + 2, GUE_PORT);
		wr16(u + 4, 8 + ilen);
		wr16(u + 6, 0);
		if (be.family == 6) {
			uint16_t c = fin16(sum16(u, 8 + ilen, pseudo(ip, UDP, 8 + ilen)));

			wr16(u + 6, c == 0 ? 0xffff : c);
		}
	}
	frame_eq(o, P_INT, x, 14 + ol + ul + ilen);
}

/* A local answer: from the address asked, back to the frame's sender, on its port. */
static struct pkt
answer(const struct pkt *p, uint8_t port)
{
	struct pkt x;

	memset(&x, 0, sizeof(x));
	x.src = p->dst;
	x.dst = p->src;
	memcpy(x.dmac, p->smac, 6);
	memcpy(x.smac, port_mac(port), 6);
	x.ttl = 64;
	return x;
}

/* RFC 793 §3.4 "Reset Generation": a bare RST, DF, TTL 64. */
static void
expect_rst(const struct out *o, const struct pkt *p, uint8_t port)
{
	struct pkt x = answer(p, port);
	uint8_t b[FRAME_MAX];

	x.df = 1;
	x.proto = TCP;
	x.sport = p->dport;
	x.dport = p->sport;
	if (p->tcp_flags & RTE_TCP_ACK_FLAG) {
		x.seq = p->ack;
		x.tcp_flags = RTE_TCP_RST_FLAG;
	} else {
		x.ack = p->seq + p->payload_len + !!(p->tcp_flags & RTE_TCP_SYN_FLAG) +
			!!(p->tcp_flags & RTE_TCP_FIN_FLAG);
		x.tcp_flags = RTE_TCP_RST_FLAG | RTE_TCP_ACK_FLAG;
	}
	frame_eq(o, port, b, build(b, &x));
}

/*
 * An ICMP error from the gateway quoting the datagram of frame inb: port
 * unreachable (RFC 792, RFC 4443 §3.1) or too big with the MTU (RFC 1191
 * §4, RFC 4443 §3.2), at most 576 / 1280 bytes in all.
 */
static void
expect_icmp_error(const struct out *o, const struct pkt *p, const uint8_t *inb, uint8_t port,
		  bool too_big, uint32_t mtu)
{
	struct pkt x = answer(p, port);
	bool v4 = p->src.family == 4;
	uint8_t b[FRAME_MAX];

	x.proto = v4 ? ICMP4 : ICMP6;
	if (v4) {
		x.icmp_type = 3;
		x.icmp_code = too_big ? 4 : 3;
		x.icmp_rest = too_big ? mtu : 0;
	} else {
		x.icmp_type = too_big ? 2 : 1;
		x.icmp_code = too_big ? 0 : 4;
		x.icmp_rest = too_big ? mtu : 0;
	}
	x.payload = inb + 14;
	x.payload_len = RTE_MIN(ip_len(inb), v4 ? 576u - 28 : 1280u - 48);
	frame_eq(o, port, b, build(b, &x));
}

static void
expect_echo(const struct out *o, const struct pkt *p, uint8_t port)
{
	struct pkt x = *p;
	uint8_t b[FRAME_MAX];

	x.src = p->dst;
	x.dst = p->src;
	memcpy(x.dmac, p->smac, 6);
	memcpy(x.smac, port_mac(port), 6);
	x.ttl = 64;
	x.icmp_type = p->proto == ICMP4 ? 0 : 129;
	x.pad_to = 0;
	frame_eq(o, port, b, build(b, &x));
}

/* RFC 826: to the asker's hardware address, from the port's; padding zeroed. */
static void
expect_arp(const struct out *o, const struct pkt *p, uint8_t port)
{
	uint8_t x[60];

	memset(x, 0, sizeof(x));
	memcpy(x, p->smac, 6);
	memcpy(x + 6, port_mac(port), 6);
	wr16(x + 12, 0x0806);
	wr16(x + 14, 1);
	wr16(x + 16, 0x0800);
	x[18] = 6;
	x[19] = 4;
	wr16(x + 20, 2);
	memcpy(x + 22, port_mac(port), 6);
	memcpy(x + 28, p->dst.a, 4);
	memcpy(x + 32, p->smac, 6);
	memcpy(x + 38, p->src.a, 4);
	frame_eq(o, port, x, sizeof(x));
}

/* RFC 4861 §7.2.4: solicited and override, target LLA option, hop limit 255. */
static void
expect_na(const struct out *o, const struct pkt *p, uint8_t port)
{
	struct pkt x = answer(p, port);
	uint8_t body[24], b[FRAME_MAX];

	memcpy(body, p->dst.a, 16);
	body[16] = 2;
	body[17] = 1;
	memcpy(body + 18, port_mac(port), 6);
	x.ttl = 255;
	x.proto = ICMP6;
	x.icmp_type = 136;
	x.icmp_rest = 0x60000000;
	x.payload = body;
	x.payload_len = sizeof(body);
	frame_eq(o, port, b, build(b, &x));
}

/*
 * The IPv4 datagram of frame w (untagged, no padding), cut as
 * rte_ipv4_fragment_copy_nonseg_packet() cuts to fit mtu: payloads of
 * (mtu - 20) rounded down to 8 bytes, in order. Fragment i into f.
 */
static uint32_t
cut(const uint8_t *w, uint32_t mtu, unsigned int i, unsigned int *n, uint8_t *f)
{
	uint32_t pl = ip_len(w) - 20, per = (mtu - 20) & ~7u, off = i * per;
	uint32_t flen = RTE_MIN(per, pl - off);

	*n = (pl + per - 1) / per;
	memcpy(f, w, 34);
	memcpy(f + 34, w + 34 + off, flen);
	wr16(f + 16, 20 + flen);
	wr16(f + 20, (rd16(w + 20) & 0x4000) | (i + 1 < *n ? 0x2000 : 0) | off / 8);
	wr16(f + 24, 0);
	wr16(f + 24, fin16(sum16(f + 14, 20, 0)));
	return 34 + flen;
}

/* n frames out of port: the datagram x describes, cut to mtu. */
static void
expect_fragments(unsigned int n, struct pkt *x, uint32_t mtu, bool snat, uint8_t port)
{
	uint8_t w[FRAME_MAX], f[FRAME_MAX];
	unsigned int want = 0;

	if (snat) {
		x->sport = rd16(outs[0].b + 34);
		check_snat_port(x->sport, 0);
	}
	build(w, x);
	cut(w, mtu, 0, &want, f);
	if (n != want)
		fail_msg("%s: %u fragments, expected %u", cur, n, want);
	for (unsigned int i = 0; i < n; i++)
		frame_eq(&outs[i], port, f, cut(w, mtu, i, &want, f));
}

/* n frames out: the IPv4 datagram of frame b cut to what fits IPIP, each inside it. */
static void
expect_ipip_fragments(unsigned int n, const uint8_t *b, const char *to)
{
	uint8_t w[FRAME_MAX], f[FRAME_MAX];
	unsigned int want = 0;

	memcpy(w, b, 14 + ip_len(b));
	cut(w, MTU - 20, 0, &want, f);
	if (n != want)
		fail_msg("%s: %u fragments, expected %u", cur, n, want);
	for (unsigned int i = 0; i < n; i++) {
		uint32_t fl = cut(w, MTU - 20, i, &want, f);

		expect_encap(&outs[i], f + 14, fl - 14, to, false);
	}
}

static void
run_row(void **state)
{
	const struct row *r = *state;
	const struct expect *ex = &r->out;
	struct sg_dp_stats s0, s1;
	uint8_t b[FRAME_MAX];
	struct pkt p;
	unsigned int n;
	uint32_t len;
	uint8_t port;

	cur = r->name;
	if (r->svc != 0)
		row_service(r);
	len = row_frame(&r->in, &p, b);
	port = side_of(&p.src);
	if (r->in.mtu != 0)
		E.ctx.ports[P_INT].mtu = r->in.mtu;
	s0 = stats(0);
	inject(b, len, port);
	s1 = stats(0);
	E.ctx.ports[P_INT].mtu = MTU;
	n = collect();
	if (n != (ex->kind == OUT_NONE || ex->kind == OUT_WAIT ? 0u :
		  ex->kind == OUT_FRAGS || ex->kind == OUT_IPIP_FRAGS ? n : 1u))
		fail_msg("%s: %u frames sent", cur, n);

	switch (ex->kind) {
	case OUT_NONE:
		break;
	case OUT_FWD: {
		struct addr t = A(ex->to);
		uint16_t sport = expect_fwd(&outs[0], &p,
					    ex->snat ? (t.family == 4 ? SNAT4 : SNAT6) : NULL,
					    ex->snat ? ANY_PORT : 0, ex->to, ex->to_port);

		if (ex->snat)
			check_snat_port(sport, 0);
		break;
	}
	case OUT_IPIP:
	case OUT_GUE:
		expect_encap(&outs[0], b + 14, ip_len(b), ex->to, ex->kind == OUT_GUE);
		break;
	case OUT_L2: {
		struct addr t = A(ex->to);
		uint8_t x[FRAME_MAX];

		memcpy(x, b, len);
		mac_of(&t, x);
		memcpy(x + 6, INT_MAC, 6);
		frame_eq(&outs[0], P_INT, x, 14 + ip_len(b));
		break;
	}
	case OUT_RST:
		expect_rst(&outs[0], &p, port);
		break;
	case OUT_UNREACH:
	case OUT_TOO_BIG:
		expect_icmp_error(&outs[0], &p, b, port, ex->kind == OUT_TOO_BIG, ex->mtu);
		break;
	case OUT_ECHO:
		expect_echo(&outs[0], &p, port);
		break;
	case OUT_ARP:
		expect_arp(&outs[0], &p, port);
		break;
	case OUT_NA:
		expect_na(&outs[0], &p, port);
		break;
	case OUT_FRAGS: {
		struct pkt x = forwarded(&p, ex->snat ? SNAT4 : NULL, 0, ex->to, ex->to_port);

		expect_fragments(n, &x, r->in.mtu, ex->snat, P_INT);
		assert_int_equal(DELTA(s0, s1, frag_out), n);
		break;
	}
	case OUT_IPIP_FRAGS:
		expect_ipip_fragments(n, b, ex->to);
		assert_int_equal(DELTA(s0, s1, frag_out), n);
		assert_int_equal(DELTA(s0, s1, encap), n);
		break;
	case OUT_WAIT: {
		struct pkt x = forwarded(&p, NULL, 0, ex->to, ex->to_port);
		struct addr t = A(ex->to);
		struct sg_neigh_miss miss;
		struct sg_neigh_key k;
		uint8_t w[FRAME_MAX];
		struct out o;

		assert_int_equal(rte_ring_dequeue_elem(E.ctx.neigh_miss, &miss, sizeof(miss)), 0);
		sg_neigh_key4(&k, E.pid[P_INT], t.a);
		assert_memory_equal(&miss.key, &k, sizeof(k));
		/* Complete but for the destination MAC, which the control thread writes. */
		o.len = rte_pktmbuf_pkt_len(miss.m);
		o.port = P_INT;
		assert_true(o.len <= FRAME_MAX);
		memcpy(o.b, rte_pktmbuf_mtod(miss.m, uint8_t *), o.len);
		rte_pktmbuf_free(miss.m);
		len = build(w, &x);
		memcpy(o.b, w, 6);
		frame_eq(&o, P_INT, w, len);
		break;
	}
	}

	assert_int_equal(s1.c[ex->c] - s0.c[ex->c], ex->kind == OUT_IPIP_FRAGS &&
			 ex->c == CNT(encap) ? n : 1);
	if (ex->c2 != 0)
		assert_int_equal(s1.c[ex->c2] - s0.c[ex->c2], 1);
	/* Nothing else dropped. */
	assert_int_equal(drops(&s1) - drops(&s0), ex->kind == OUT_NONE ? 1 : 0);
}

/* ---- services: publication ---------------------------------------------- */

static bool services_dirty;

static const struct svc_spec *
spec(uint32_t id)
{
	for (size_t i = 0; i < RTE_DIM(services); i++)
		if (services[i].id == id)
			return &services[i];
	fail_msg("no service %u", id);
	return NULL;
}

static void
prefix_of(const char *s, struct sg_svc_prefix *pr)
{
	char buf[64];
	char *slash;
	struct addr a;

	snprintf(buf, sizeof(buf), "%s", s);
	slash = strchr(buf, '/');
	assert_non_null(slash);
	*slash = '\0';
	a = A(buf);
	pr->family = a.family;
	pr->len = (uint8_t)atoi(slash + 1);
	memcpy(pr->addr, a.a, 16);
}

/* Publish s; its backend `which` (unless AS_IS) in state `state` instead. */
#define AS_IS (-1)

static int
publish(const struct svc_spec *s, int which, uint8_t state)
{
	struct sg_svc_key keys[4];
	struct sg_svc_backend be[4];
	struct sg_svc_prefix pr[2];
	struct sg_svc_conf c = {
		.id = s->id, .name = s->name, .mode = s->mode, .flags = s->flags,
		.affinity_timeout = (s->flags & SG_SVC_F_AFFINITY) ? 10800 : 0,
		.keys = keys, .backends = be, .src_ranges = pr,
	};

	memset(be, 0, sizeof(be));
	for (unsigned int i = 0; i < 4 && s->keys[i].addr != NULL; i++) {
		struct addr a = A(s->keys[i].addr);
		rte_be16_t port = rte_cpu_to_be_16(s->keys[i].port);

		if (a.family == 4) {
			rte_be32_t a4;

			memcpy(&a4, a.a, 4);
			sg_svc_key4(&keys[i], a4, port, s->keys[i].proto);
		} else {
			sg_svc_key6(&keys[i], a.a, port, s->keys[i].proto);
		}
		c.n_keys++;
	}
	for (unsigned int i = 0; i < 4 && s->be[i].addr != NULL; i++) {
		struct addr a = A(s->be[i].addr);

		memcpy(be[i].addr, a.a, 16);
		be[i].family = a.family;
		be[i].port = rte_cpu_to_be_16(s->be[i].port);
		be[i].state = (int)i == which ? state : s->be[i].state;
		be[i].weight = 1;
		c.n_backends++;
	}
	for (unsigned int i = 0; i < 2 && s->ranges[i] != NULL; i++)
		prefix_of(s->ranges[i], &pr[c.n_src_ranges++]);
	return sg_svc_publish(E.svc, &c);
}

/* Which of s's backends frame o went to. */
static int
backend_index(const struct svc_spec *s, const struct out *o)
{
	bool v4 = rd16(o->b + 12) == 0x0800;
	const uint8_t *dst = o->b + 14 + (v4 ? 16 : 24);

	for (int i = 0; i < 4 && s->be[i].addr != NULL; i++) {
		struct addr a = A(s->be[i].addr);

		if ((a.family == 4) == v4 && addr_eq(&a, dst))
			return i;
	}
	fail_msg("%s: sent to no backend of %s", cur, s->name);
	return -1;
}

/* ---- replies and the rest of a flow ------------------------------------- */

/*
 * A client opens a flow; the pod answers the address and port it saw; the
 * answer reaches the client from the VIP; the client's next packet takes
 * the flow's translation again (the same SNAT port), no new flow.
 */
static void
reply_case(uint8_t proto, const char *client, const char *vip, uint16_t vport, const char *pod,
	   uint16_t pport, bool snat)
{
	const char *sn = snat ? (A(client).family == 4 ? SNAT4 : SNAT6) : NULL;
	struct pkt p = pkt_new(proto, client, 41000, vip, vport), r, next;
	struct sg_dp_stats s0, s1;
	uint16_t sp;

	s0 = stats(0);
	p.payload_len = proto == UDP ? 30 : 0;
	assert_int_equal(send_pkt(&p, P_EXT), 1);
	sp = expect_fwd(&outs[0], &p, sn, snat ? ANY_PORT : 0, pod, pport);
	if (snat)
		check_snat_port(sp, 0);

	r = pkt_new(proto, pod, pport, snat ? sn : client, sp);
	r.tcp_flags = SYN_ACK;
	r.seq = 7000;
	r.ack = 1001;
	r.payload_len = proto == UDP ? 50 : 0;
	assert_int_equal(send_pkt(&r, P_INT), 1);
	expect_fwd(&outs[0], &r, vip, vport, client, 41000);

	next = p;
	next.tcp_flags = PSH_ACK;
	next.seq = 1001;
	next.ack = 7001;
	next.payload_len = 20;
	next.seed = 99;
	assert_int_equal(send_pkt(&next, P_EXT), 1);
	expect_fwd(&outs[0], &next, sn, snat ? sp : 0, pod, pport);

	s1 = stats(0);
	assert_int_equal(DELTA(s0, s1, flow_new), 1);
	assert_int_equal(DELTA(s0, s1, fwd), 2);
	assert_int_equal(DELTA(s0, s1, rev), 1);
	assert_int_equal(drops(&s1), drops(&s0));
}

static void
test_replies(void **state)
{
	struct sg_dp_stats s0, s1;
	struct pkt stray;

	(void)state;
	cur = "nat v4 tcp reply";
	reply_case(TCP, C4, "192.0.2.10", 80, "203.0.113.11", 8080, true);
	cur = "nat v4 udp reply";
	reply_case(UDP, C4, "192.0.2.10", 53, "203.0.113.12", 5353, true);
	cur = "nat v6 tcp reply";
	reply_case(TCP, C6, "2001:db8:2::10", 80, "2001:db8:cb::11", 8080, true);
	cur = "nat v6 udp reply";
	reply_case(UDP, C6, "2001:db8:2::10", 53, "2001:db8:cb::12", 5353, true);
	cur = "dnat v4 tcp reply";
	reply_case(TCP, C4, "192.0.2.11", 80, "203.0.113.13", 8080, false);
	cur = "dnat v6 udp reply";
	reply_case(UDP, C6, "2001:db8:2::11", 53, "2001:db8:cb::13", 5353, false);
	cur = "etp local reply";
	reply_case(TCP, C4B, "192.0.2.17", 80, "203.0.113.13", 8080, false);
	cur = "nat v6 reply to a client beyond the router";
	reply_case(TCP, C6OFF, "2001:db8:2::10", 80, "2001:db8:cb::11", 8080, true);

	cur = "a flow's reply coming in from the clients' side";
	{
		struct pkt p = pkt_new(UDP, C4, 41001, "192.0.2.11", 53), r;

		assert_int_equal(send_pkt(&p, P_EXT), 1);
		r = pkt_new(UDP, "203.0.113.13", 5353, C4, 41001);
		memcpy(r.dmac, EXT_MAC, 6);
		s0 = stats(0);
		assert_int_equal(send_pkt(&r, P_EXT), 0);
		s1 = stats(0);
		assert_int_equal(DELTA(s0, s1, drop_wrong_side), 1);
	}

	cur = "one burst, three datagrams of a new flow";
	{
		uint8_t fb[3][FRAME_MAX], fport[3];
		uint32_t flen[3];
		struct pkt p = pkt_new(UDP, C4, 41002, "192.0.2.10", 53);
		uint16_t sp;

		s0 = stats(0);
		for (unsigned int i = 0; i < 3; i++) {
			p.seed = (uint8_t)(10 + i);
			flen[i] = build(fb[i], &p);
			fport[i] = P_EXT;
		}
		inject_burst(0, fb, flen, fport, 3);
		assert_int_equal(collect(), 3);
		p.seed = 10;
		sp = expect_fwd(&outs[0], &p, SNAT4, ANY_PORT, "203.0.113.12", 5353);
		for (unsigned int i = 1; i < 3; i++) {
			p.seed = (uint8_t)(10 + i);
			expect_fwd(&outs[i], &p, SNAT4, sp, "203.0.113.12", 5353);
		}
		s1 = stats(0);
		assert_int_equal(DELTA(s0, s1, flow_new), 1);
	}

	cur = "reply to a snat port no flow holds";
	stray = pkt_new(UDP, "203.0.113.12", 5353, SNAT4, SNAT_MAX);
	s0 = stats(0);
	assert_int_equal(send_pkt(&stray, P_INT), 0);
	s1 = stats(0);
	assert_int_equal(DELTA(s0, s1, drop_not_ours), 1);
}

/* ---- affinity and Maglev ------------------------------------------------ */

/* Open a flow to the service of four pods (x.x.x.31-34, x::31-34); returns the pod's last byte. */
static uint8_t
pod_of(const char *client, uint16_t sport, const char *vip, uint16_t vport)
{
	struct pkt p = pkt_new(TCP, client, sport, vip, vport);
	struct addr c = A(client);
	char pod[INET6_ADDRSTRLEN];
	const uint8_t *dst;
	uint8_t last;

	assert_int_equal(send_pkt(&p, P_EXT), 1);
	assert_int_equal(outs[0].port, P_INT);
	dst = outs[0].b + 14 + (c.family == 4 ? 16 : 24);
	last = dst[alen(c.family) - 1];
	if (last < (c.family == 4 ? 31 : 0x31) || last > (c.family == 4 ? 34 : 0x34))
		fail_msg("%s: to no pod of the service (last byte %#x)", cur, last);
	assert_non_null(inet_ntop(c.family == 4 ? AF_INET : AF_INET6, dst, pod, sizeof(pod)));
	expect_fwd(&outs[0], &p, c.family == 4 ? SNAT4 : SNAT6, ANY_PORT, pod, 8080);
	return last;
}

static struct sg_dp_worker_conf worker_conf(uint16_t index, char *name, uint32_t seed);
static struct sg_dp_worker *worker_new(uint16_t index, uint32_t seed);

static void
test_affinity(void **state)
{
	uint8_t aff4[12], aff4b[12], aff6[12], mag[12];
	unsigned int distinct = 0, seen = 0;

	(void)state;
	cur = "affinity: one client, one pod, whatever its port";
	for (unsigned int i = 0; i < RTE_DIM(aff4); i++) {
		aff4[i] = pod_of(C4, (uint16_t)(42000 + i * 7), "192.0.2.21", 81);
		aff4b[i] = pod_of(C4B, (uint16_t)(42000 + i * 7), "192.0.2.21", 81);
		aff6[i] = pod_of(C6, (uint16_t)(42000 + i * 7), "2001:db8:2::21", 81);
		assert_int_equal(aff4[i], aff4[0]);
		assert_int_equal(aff4b[i], aff4b[0]);
		assert_int_equal(aff6[i], aff6[0]);
	}
	cur = "no affinity: one client's flows spread";
	for (unsigned int i = 0; i < RTE_DIM(mag); i++) {
		mag[i] = pod_of(C4, (uint16_t)(43000 + i * 7), "192.0.2.21", 80);
		if (!(seen & (1u << (mag[i] & 7))))
			distinct++;
		seen |= 1u << (mag[i] & 7);
	}
	assert_true(distinct >= 2);

	/* Affinity turned on at run time: new flows of a client stick; older ones stay put. */
	cur = "affinity toggled on";
	{
		struct svc_spec on = *spec(S_MAGLEV);
		uint8_t first;

		on.flags = SG_SVC_F_AFFINITY;
		services_dirty = true;
		assert_int_equal(publish(&on, AS_IS, 0), 0);
		first = pod_of(C4, 44500, "192.0.2.21", 80);
		for (uint16_t i = 1; i < 12; i++)
			assert_int_equal(pod_of(C4, 44500 + i, "192.0.2.21", 80), first);
		cur = "affinity toggled off";
		assert_int_equal(publish(spec(S_MAGLEV), AS_IS, 0), 0);
		/* The flows made with affinity keep their pod; new ones spread again. */
		assert_int_equal(pod_of(C4, 44500, "192.0.2.21", 80), first);
		seen = 0;
		for (unsigned int i = 0; i < RTE_DIM(mag); i++)
			seen |= 1u << (pod_of(C4, (uint16_t)(45500 + i * 7), "192.0.2.21", 80) & 7);
		assert_true(__builtin_popcount(seen) >= 2);
	}

	/*
	 * Another gateway (here a new worker, another flow-table seed, no
	 * flows) places every flow where the first did: Maglev of the
	 * client's tuple, which is what keeps ECMP across gateways on one pod.
	 */
	cur = "another gateway places flows alike";
	sg_dp_worker_free(E.w[0]);
	E.w[0] = worker_new(0, 0xabcdef);
	for (unsigned int i = 0; i < RTE_DIM(mag); i++) {
		assert_int_equal(pod_of(C4, (uint16_t)(43000 + i * 7), "192.0.2.21", 80), mag[i]);
		assert_int_equal(pod_of(C4, (uint16_t)(52000 + i), "192.0.2.21", 81), aff4[0]);
	}
}

/*
 * ClientIP affinity is remembered: a client keeps its pod when a pod is
 * added (Maglev alone would move about a quarter of the clients), renews
 * the memory with each connection, and moves once it stayed away past the
 * timeout or when its pod stops taking new connections.
 */
#define AFF_CLIENTS 40

static void
clients_pods(const char *fmt, uint16_t sport, uint8_t *pods)
{
	char client[INET6_ADDRSTRLEN];

	for (unsigned int i = 0; i < AFF_CLIENTS; i++) {
		snprintf(client, sizeof(client), fmt, i + 20);
		pods[i] = pod_of(client, sport, fmt[0] == '1' ? "192.0.2.21" : "2001:db8:2::21", 81);
	}
}

static void
affinity_remembered_case(uint32_t id, const char *fmt, uint8_t added)
{
	const struct svc_spec *s = spec(id);
	const uint64_t timeout_ms = 10800u * 1000u;
	uint8_t first[AFF_CLIENTS], now[AFF_CLIENTS];
	unsigned int moved = 0, i;

	services_dirty = true;
	cur = "affinity: three pods";
	assert_int_equal(publish(s, 3, 0), 0);
	clients_pods(fmt, 30000, first);
	for (i = 0; i < AFF_CLIENTS; i++)
		assert_int_not_equal(first[i], added);

	cur = "affinity: a fourth pod, clients stay within the timeout";
	assert_int_equal(publish(s, AS_IS, 0), 0);
	E.now += timeout_ms - 1000;
	clients_pods(fmt, 30001, now);
	assert_memory_equal(now, first, sizeof(first));

	/* A new worker remembers too: the memory is the gateway's, not a worker's. */
	cur = "affinity: each connection renews it";
	sg_dp_worker_free(E.w[0]);
	E.w[0] = worker_new(0, 0x5eed);
	E.now += timeout_ms - 1000;
	clients_pods(fmt, 30002, now);
	assert_memory_equal(now, first, sizeof(first));

	cur = "affinity: its pod terminating, a client moves";
	assert_int_equal(publish(s, first[0] - (added - 3), SG_SVC_BE_SERVING |
							     SG_SVC_BE_TERMINATING), 0);
	clients_pods(fmt, 30003, now);
	for (i = 0; i < AFF_CLIENTS; i++)
		if (first[i] == first[0])
			assert_int_not_equal(now[i], first[0]);
		else
			assert_int_equal(now[i], first[i]);

	cur = "affinity: past the timeout, clients spread over all four";
	assert_int_equal(publish(s, AS_IS, 0), 0);
	E.now += timeout_ms + 1000;
	clients_pods(fmt, 30004, now);
	for (i = 0; i < AFF_CLIENTS; i++)
		moved += now[i] == added;
	assert_true(moved >= AFF_CLIENTS / 8);
	E.now = NOW0;
}

static void
test_affinity_remembered(void **state)
{
	(void)state;
	affinity_remembered_case(S_AFF4, "198.51.100.%u", 34);
	affinity_remembered_case(S_AFF6, "2001:db8:c::%u", 0x34);
}

/* ---- UDP flows follow serving backends; TCP flows finish -------------- */

static void
evict_case(uint32_t udp_id, uint32_t tcp_id, const char *client, const char *vip, bool snat)
{
	const struct svc_spec *su = spec(udp_id), *st = spec(tcp_id);
	const char *sn = snat ? (A(client).family == 4 ? SNAT4 : SNAT6) : NULL;
	struct pkt u = pkt_new(UDP, client, 44000, vip, 53);
	struct pkt t = pkt_new(TCP, client, 44001, vip, 53);
	uint8_t ub[3][FRAME_MAX], uport[3];
	uint32_t ulen[3];
	struct sg_dp_stats s0, s1;
	uint16_t spu, spt, spu2;
	int xu, xt, other;

	u.payload_len = 10;
	assert_int_equal(send_pkt(&u, P_EXT), 1);
	xu = backend_index(su, &outs[0]);
	spu = expect_fwd(&outs[0], &u, sn, snat ? ANY_PORT : 0, su->be[xu].addr, 53);
	assert_int_equal(send_pkt(&t, P_EXT), 1);
	xt = backend_index(st, &outs[0]);
	spt = expect_fwd(&outs[0], &t, sn, snat ? ANY_PORT : 0, st->be[xt].addr, 53);
	t.tcp_flags = PSH_ACK;
	t.ack = 1;
	t.seq = 1001;
	t.payload_len = 10;

	/*
	 * The TCP flow's pod stops serving, the UDP flow's goes terminating
	 * but still serves: every flow is checked again (the serving epoch
	 * moved), none moves.
	 */
	services_dirty = true;
	assert_int_equal(publish(st, xt, DOWN), 0);
	assert_int_equal(publish(su, xu, SERVING_TERM), 0);
	s0 = stats(0);
	u.seed++;
	assert_int_equal(send_pkt(&u, P_EXT), 1);
	expect_fwd(&outs[0], &u, sn, snat ? spu : 0, su->be[xu].addr, 53);
	assert_int_equal(send_pkt(&t, P_EXT), 1);
	expect_fwd(&outs[0], &t, sn, snat ? spt : 0, st->be[xt].addr, 53);
	s1 = stats(0);
	assert_int_equal(DELTA(s0, s1, flow_evicted), 0);
	assert_int_equal(DELTA(s0, s1, flow_new), 0);

	/*
	 * The UDP flow's pod stops serving: its next datagrams (three in one
	 * burst) go to the other pod, through one new flow.
	 */
	assert_int_equal(publish(su, xu, DOWN), 0);
	other = 1 - xu;
	s0 = stats(0);
	for (unsigned int i = 0; i < 3; i++) {
		u.seed++;
		ulen[i] = build(ub[i], &u);
		uport[i] = P_EXT;
	}
	inject_burst(0, ub, ulen, uport, 3);
	assert_int_equal(collect(), 3);
	u.seed = (uint8_t)(u.seed - 2);
	spu2 = expect_fwd(&outs[0], &u, sn, snat ? ANY_PORT : 0, su->be[other].addr, 53);
	if (snat)
		check_snat_port(spu2, 0);
	for (unsigned int i = 1; i < 3; i++) {
		u.seed++;
		expect_fwd(&outs[i], &u, sn, snat ? spu2 : 0, su->be[other].addr, 53);
	}
	s1 = stats(0);
	assert_int_equal(DELTA(s0, s1, flow_evicted), 1);
	assert_int_equal(DELTA(s0, s1, flow_new), 1);

	/* ... and stays there; the TCP flow still goes to its terminating pod. */
	s0 = stats(0);
	u.seed++;
	assert_int_equal(send_pkt(&u, P_EXT), 1);
	expect_fwd(&outs[0], &u, sn, snat ? spu2 : 0, su->be[other].addr, 53);
	t.seq += 10;
	assert_int_equal(send_pkt(&t, P_EXT), 1);
	expect_fwd(&outs[0], &t, sn, snat ? spt : 0, st->be[xt].addr, 53);
	s1 = stats(0);
	assert_int_equal(DELTA(s0, s1, flow_evicted), 0);
	assert_int_equal(DELTA(s0, s1, flow_new), 0);
	assert_int_equal(drops(&s1), drops(&s0));

	/* The UDP service goes away: its flow with it; the TCP flow still runs. */
	assert_int_equal(sg_svc_remove(E.svc, udp_id), 0);
	s0 = stats(0);
	u.seed++;
	assert_int_equal(send_pkt(&u, P_EXT), 0);
	t.seq += 10;
	assert_int_equal(send_pkt(&t, P_EXT), 1);
	expect_fwd(&outs[0], &t, sn, snat ? spt : 0, st->be[xt].addr, 53);
	s1 = stats(0);
	assert_int_equal(DELTA(s0, s1, flow_evicted), 1);
	assert_int_equal(DELTA(s0, s1, drop_not_ours), 1);
	assert_int_equal(drops(&s1) - drops(&s0), 1);
}

/*
 * A UDP flow whose pods all stopped serving, and in the same burst a new
 * flow of another service between two of its datagrams: the new flow may
 * take the evicted flow's entry, and the second datagram must not be
 * forwarded as a packet of that flow.
 */
static void
evict_burst_case(bool removed)
{
	const struct svc_spec *su = spec(S_EVICT4_UDP);
	struct pkt a = pkt_new(UDP, C4, 44100, "192.0.2.22", 53);
	struct pkt b = pkt_new(UDP, C4B, 44101, "192.0.2.10", 53);
	uint8_t f[3][FRAME_MAX], port[3] = { P_EXT, P_EXT, P_EXT };
	uint32_t len[3];
	struct sg_dp_stats s0, s1;
	unsigned int n, fwd = 0;

	a.payload_len = 10;
	assert_int_equal(send_pkt(&a, P_EXT), 1);
	services_dirty = true;
	if (removed) {
		assert_int_equal(sg_svc_remove(E.svc, S_EVICT4_UDP), 0);
	} else {
		struct svc_spec down = *su;

		down.be[0].state = DOWN;
		down.be[1].state = DOWN;
		assert_int_equal(publish(&down, AS_IS, 0), 0);
	}
	len[0] = build(f[0], &a);
	len[1] = build(f[1], &b);
	a.seed++;
	len[2] = build(f[2], &a);
	s0 = stats(0);
	inject_burst(0, f, len, port, 3);
	n = collect();
	s1 = stats(0);
	for (unsigned int i = 0, unreach = 0; i < n; i++) {
		struct pkt ai = a;

		if (outs[i].port == P_INT) {
			expect_fwd(&outs[i], &b, SNAT4, ANY_PORT, "203.0.113.12", 5353);
			fwd++;
			continue;
		}
		/* No pod left: each of a's datagrams gets its port unreachable. */
		ai.seed = (uint8_t)(a.seed - 1 + unreach);
		expect_icmp_error(&outs[i], &ai, f[unreach == 0 ? 0 : 2], P_EXT, false, 0);
		unreach++;
	}
	assert_int_equal(fwd, 1);
	assert_int_equal(DELTA(s0, s1, fwd), 1);
	assert_int_equal(DELTA(s0, s1, flow_evicted), 1);
	assert_int_equal(n, removed ? 1 : 3);
}

static void
test_udp_evict(void **state)
{
	(void)state;
	cur = "udp eviction, nat v4";
	evict_case(S_EVICT4_UDP, S_EVICT4_TCP, C4, "192.0.2.22", true);
	cur = "udp eviction, dnat v6";
	evict_case(S_EVICT6_UDP, S_EVICT6_TCP, C6, "2001:db8:2::22", false);
}

static void
test_udp_evict_burst(void **state)
{
	(void)state;
	cur = "udp eviction mid-burst, no pod left";
	evict_burst_case(false);
}

static void
test_udp_evict_burst_removed(void **state)
{
	(void)state;
	cur = "udp eviction mid-burst, service removed";
	evict_burst_case(true);
}

/* ---- ICMP errors about flows -------------------------------------------- */

/* The IP datagram of p as built, with ttl (the quote of an error about it). */
static uint32_t
datagram(const struct pkt *p, uint8_t ttl, uint8_t *b)
{
	struct pkt q = *p;

	q.ttl = ttl;
	q.pad_to = 0;
	return build(b, &q) - 14;
}

/* An ICMP error from `from` to `to` quoting qlen bytes at quote. */
static struct pkt
icmp_error(const char *from, const char *to, uint8_t type, uint8_t code, uint32_t rest,
	   const uint8_t *quote, uint32_t qlen)
{
	struct pkt e = pkt_new(A(from).family == 4 ? ICMP4 : ICMP6, from, 0, to, 0);

	e.icmp_type = type;
	e.icmp_code = code;
	e.icmp_rest = rest;
	e.payload = quote;
	e.payload_len = qlen;
	e.ip_id = 0x4444;
	return e;
}

/*
 * From the pod side about a NAT flow's forwarded packet: to the client,
 * outer and quoted headers translated back (the quote as the client sent
 * it, one hop less), the outer source now the VIP.
 */
static void
pod_error_case(uint8_t proto, const char *client, const char *vip, uint16_t vport,
	       const char *pod, uint16_t pport, bool snat, uint8_t type, uint8_t code,
	       uint32_t rest, uint32_t qmax)
{
	const char *sn = snat ? (A(client).family == 4 ? SNAT4 : SNAT6) : NULL;
	struct pkt p = pkt_new(proto, client, 45000, vip, vport), e, x;
	uint8_t fwd[FRAME_MAX], q[FRAME_MAX], b[FRAME_MAX];
	struct sg_dp_stats s0, s1;
	uint32_t flen, qlen;

	p.payload_len = 24;
	assert_int_equal(send_pkt(&p, P_EXT), 1);
	expect_fwd(&outs[0], &p, sn, snat ? ANY_PORT : 0, pod, pport);
	memcpy(fwd, outs[0].b, outs[0].len);
	flen = RTE_MIN(ip_len(fwd), qmax);

	e = icmp_error(pod, snat ? sn : client, type, code, rest, fwd + 14, flen);
	s0 = stats(0);
	assert_int_equal(send_pkt(&e, P_INT), 1);
	s1 = stats(0);
	qlen = RTE_MIN(datagram(&p, (uint8_t)(p.ttl - 1), q), qmax);
	assert_int_equal(qlen, flen);
	x = forwarded(&e, vip, 0, client, 0);
	x.payload = q + 14;
	x.payload_len = qlen;
	frame_eq(&outs[0], P_EXT, b, build(b, &x));
	assert_int_equal(DELTA(s0, s1, icmp_xlate), 1);
	assert_int_equal(drops(&s1), drops(&s0));
}

static void
test_icmp_from_pod(void **state)
{
	struct sg_dp_stats s0, s1;
	uint8_t q[FRAME_MAX];
	struct pkt lost, e;

	(void)state;
	cur = "port unreachable from a pod, nat v4 udp";
	pod_error_case(UDP, C4, "192.0.2.10", 53, "203.0.113.12", 5353, true, 3, 3, 0, 1500);
	cur = "frag needed from a pod, nat v4 tcp, 28 bytes quoted";
	pod_error_case(TCP, C4, "192.0.2.10", 80, "203.0.113.11", 8080, true, 3, 4, 1400, 28);
	cur = "packet too big from a pod, nat v6 udp";
	pod_error_case(UDP, C6, "2001:db8:2::10", 53, "2001:db8:cb::12", 5353, true, 2, 0, 1280,
		       1500);
	cur = "port unreachable from a pod, dnat v4 udp";
	pod_error_case(UDP, C4B, "192.0.2.11", 53, "203.0.113.13", 5353, false, 3, 3, 0, 1500);
	cur = "port unreachable from a pod, dnat v6 tcp";
	pod_error_case(TCP, C6, "2001:db8:2::11", 80, "2001:db8:cb::13", 8080, false, 1, 4, 0,
		       1500);

	cur = "error from a pod about no flow";
	lost = pkt_new(UDP, SNAT4, 20999, "203.0.113.12", 5353);
	e = icmp_error("203.0.113.12", SNAT4, 3, 3, 0, q + 14, datagram(&lost, 60, q));
	s0 = stats(0);
	assert_int_equal(send_pkt(&e, P_INT), 0);
	s1 = stats(0);
	assert_int_equal(DELTA(s0, s1, drop_icmp_unknown), 1);
}

/*
 * From outside (a router on the clients' side) about what the client was
 * sent: reaches the pod of the flow, translated back (nat: outer source
 * now the SNAT address, dnat: kept), quoting the pod's packet as the pod
 * sent it, one hop less.
 */
static void
outside_error_case(const char *client, const char *router, const char *vip, const char *pod,
		   bool snat)
{
	const char *sn = snat ? (A(client).family == 4 ? SNAT4 : SNAT6) : NULL;
	bool v4 = A(client).family == 4;
	struct pkt p = pkt_new(TCP, client, 46000, vip, 80), r, e, x;
	uint8_t rep[FRAME_MAX], q[FRAME_MAX], b[FRAME_MAX];
	struct sg_dp_stats s0, s1;
	uint16_t sp;

	assert_int_equal(send_pkt(&p, P_EXT), 1);
	sp = expect_fwd(&outs[0], &p, sn, snat ? ANY_PORT : 0, pod, 8080);
	r = pkt_new(TCP, pod, 8080, snat ? sn : client, sp);
	r.tcp_flags = SYN_ACK;
	r.ack = 1001;
	r.payload_len = 8;
	assert_int_equal(send_pkt(&r, P_INT), 1);
	memcpy(rep, outs[0].b, outs[0].len);

	e = icmp_error(router, vip, v4 ? 3 : 2, v4 ? 4 : 0, 1400, rep + 14, ip_len(rep));
	s0 = stats(0);
	assert_int_equal(send_pkt(&e, P_EXT), 1);
	s1 = stats(0);
	x = forwarded(&e, sn, 0, pod, 0);
	x.payload = q + 14;
	x.payload_len = datagram(&r, (uint8_t)(r.ttl - 1), q);
	frame_eq(&outs[0], P_INT, b, build(b, &x));
	assert_int_equal(DELTA(s0, s1, icmp_xlate), 1);
	assert_int_equal(drops(&s1), drops(&s0));
}

static void
test_icmp_from_outside(void **state)
{
	struct sg_dp_stats s0, s1;
	uint8_t q[FRAME_MAX], b[FRAME_MAX];
	struct pkt p, direct, e;
	uint32_t len;

	(void)state;
	cur = "frag needed from outside, nat v4";
	outside_error_case(C4, ROUTER4, "192.0.2.10", "203.0.113.11", true);
	cur = "packet too big from outside, nat v6";
	outside_error_case(C6, ROUTER6, "2001:db8:2::10", "2001:db8:cb::11", true);
	cur = "frag needed from outside, dnat v4";
	outside_error_case(C4B, ROUTER4, "192.0.2.11", "203.0.113.13", false);

	/* DSR: about the pod's own answer, which never crossed the gateway. */
	cur = "error from outside, dsr-ipip flow";
	p = pkt_new(TCP, C4, 46100, "192.0.2.12", 80);
	assert_int_equal(send_pkt(&p, P_EXT), 1);
	direct = pkt_new(TCP, "192.0.2.12", 80, C4, 46100);
	direct.tcp_flags = SYN_ACK;
	e = icmp_error(ROUTER4, "192.0.2.12", 3, 4, 1400, q + 14, datagram(&direct, 60, q));
	e.pad_to = 0;
	len = build(b, &e);
	s0 = stats(0);
	inject(b, len, P_EXT);
	assert_int_equal(collect(), 1);
	s1 = stats(0);
	expect_encap(&outs[0], b + 14, len - 14, "203.0.113.14", false);
	assert_int_equal(DELTA(s0, s1, encap), 1);
	assert_int_equal(DELTA(s0, s1, flow_new), 0);

	cur = "error from outside, dsr-gue, no flow";
	direct = pkt_new(TCP, "192.0.2.14", 80, C4B, 46101);
	e = icmp_error(ROUTER4, "192.0.2.14", 3, 4, 1400, q + 14, datagram(&direct, 60, q));
	e.pad_to = 0;
	len = build(b, &e);
	s0 = stats(0);
	inject(b, len, P_EXT);
	assert_int_equal(collect(), 1);
	s1 = stats(0);
	expect_encap(&outs[0], b + 14, len - 14, "203.0.113.16", true);
	assert_int_equal(DELTA(s0, s1, stateless), 1);

	/* No error about an error: one too big to encapsulate goes in fragments, or not at all. */
	cur = "big error from outside, dsr-ipip flow, no df: in fragments";
	direct = pkt_new(TCP, "192.0.2.12", 80, C4, 46100);
	direct.payload_len = 1420;
	e = icmp_error(ROUTER4, "192.0.2.12", 3, 4, 1400, q + 14, datagram(&direct, 60, q));
	e.pad_to = 0;
	len = build(b, &e);
	assert_int_equal(ip_len(b), 1488);
	inject(b, len, P_EXT);
	expect_ipip_fragments(collect(), b, "203.0.113.14");
	cur = "big error from outside, dsr-ipip flow, df: dropped";
	e.df = 1;
	len = build(b, &e);
	s0 = stats(0);
	inject(b, len, P_EXT);
	assert_int_equal(collect(), 0);
	s1 = stats(0);
	assert_int_equal(DELTA(s0, s1, drop_mtu), 1);
	assert_int_equal(DELTA(s0, s1, too_big_sent), 0);

	cur = "error from outside, nat, no flow";
	direct = pkt_new(TCP, "192.0.2.10", 80, C4B, 46102);
	e = icmp_error(ROUTER4, "192.0.2.10", 3, 3, 0, q + 14, datagram(&direct, 60, q));
	s0 = stats(0);
	assert_int_equal(send_pkt(&e, P_EXT), 0);
	s1 = stats(0);
	assert_int_equal(DELTA(s0, s1, drop_icmp_unknown), 1);
}

/* A DSR flow keeps its outer header: the same GUE source port and flow label. */
static void
test_dsr_flow(void **state)
{
	struct pkt p = pkt_new(UDP, C6, 46200, "2001:db8:2::14", 53);
	struct sg_dp_stats s0, s1;
	uint8_t first[FRAME_MAX];

	(void)state;
	cur = "dsr-gue v6 flow, two datagrams";
	s0 = stats(0);
	p.payload_len = 10;
	assert_int_equal(send_pkt(&p, P_EXT), 1);
	memcpy(first, outs[0].b, 14 + 40 + 8);
	p.seed = 7;
	p.payload_len = 100;
	assert_int_equal(send_pkt(&p, P_EXT), 1);
	assert_memory_equal(outs[0].b, first, 4 + 14);	/* MACs, type, flow label */
	/* Next header, hop limit, addresses; then the GUE ports. */
	assert_memory_equal(outs[0].b + 14 + 6, first + 14 + 6, 36);
	assert_memory_equal(outs[0].b + 54, first + 54, 4);
	s1 = stats(0);
	assert_int_equal(DELTA(s0, s1, flow_new), 1);
	assert_int_equal(DELTA(s0, s1, encap), 2);
}

/*
 * A backend's first packet has its outer header prepared on the spot, the
 * next ones take it from the next-hop cache: the same packet again comes
 * out the same, byte for byte, and another one of the flow (other lengths,
 * DSCP and ECN, IPv4 id without DF) as expect_encap() builds it.
 */
static void
dsr_cached_case(const char *name, const char *client, const char *vip, const char *pod, bool gue)
{
	struct pkt p = pkt_new(TCP, client, 46300, vip, 80);
	struct addr be = A(pod);
	uint8_t b[FRAME_MAX], first[FRAME_MAX];
	uint32_t len, first_len;

	cur = name;
	p.tcp_flags = PSH_ACK;
	p.payload_len = 30;
	len = build(b, &p);
	inject(b, len, P_EXT);
	assert_int_equal(collect(), 1);
	expect_encap(&outs[0], b + 14, ip_len(b), pod, gue);
	assert_true(dp_nh_hit(E.w[0], dp_nh_slot(E.w[0], be.family, be.a), be.family, be.a,
			      SG_DP_ROLE_INTERNAL));
	first_len = outs[0].len;
	memcpy(first, outs[0].b, first_len);

	inject(b, len, P_EXT);
	assert_int_equal(collect(), 1);
	frame_eq(&outs[0], P_INT, first, first_len);

	p.payload_len = 1111;
	p.seed = 5;
	p.tos = 0xb9;
	p.df = 0;
	p.ip_id = 0xfedc;
	len = build(b, &p);
	inject(b, len, P_EXT);
	assert_int_equal(collect(), 1);
	expect_encap(&outs[0], b + 14, ip_len(b), pod, gue);
}

static void
test_dsr_cached(void **state)
{
	struct sg_dp_stats s0, s1;

	(void)state;
	s0 = stats(0);
	dsr_cached_case("dsr-ipip v4, cached", C4, "192.0.2.12", "203.0.113.14", false);
	dsr_cached_case("dsr-ipip v6, cached", C6, "2001:db8:2::12", "2001:db8:cb::14", false);
	dsr_cached_case("dsr-ipip v6 to v4, cached", C6, "2001:db8:2::13", "203.0.113.15", false);
	dsr_cached_case("dsr-ipip v4 to v6, cached", C4, "192.0.2.13", "2001:db8:cb::15", false);
	dsr_cached_case("dsr-gue v4, cached", C4, "192.0.2.14", "203.0.113.16", true);
	dsr_cached_case("dsr-gue v6, cached", C6, "2001:db8:2::14", "2001:db8:cb::16", true);
	dsr_cached_case("dsr-gue v6 to v4, cached", C6, "2001:db8:2::15", "203.0.113.17", true);
	s1 = stats(0);
	assert_int_equal(DELTA(s0, s1, encap), 7 * 3);
	assert_int_equal(drops(&s1), drops(&s0));
}

/* ---- IPv4 fragments ------------------------------------------------------ */

/* The datagram of p in fragments that fit mtu, each padded to 60 bytes. */
static unsigned int
fragments(const struct pkt *p, uint32_t mtu, uint8_t (*f)[FRAME_MAX], uint32_t *flen,
	  uint8_t *port)
{
	uint8_t w[FRAME_MAX];
	struct pkt q = *p;
	unsigned int n = 0;

	q.pad_to = 0;
	build(w, &q);
	for (unsigned int i = 0; i == 0 || i < n; i++) {
		flen[i] = cut(w, mtu, i, &n, f[i]);
		if (flen[i] < 60) {
			memset(f[i] + flen[i], 0xee, 60 - flen[i]);
			flen[i] = 60;
		}
		port[i] = P_EXT;
	}
	return n;
}

static void
test_reassembly(void **state)
{
	static const unsigned int orders[][4] = { { 0, 1, 2, 3 }, { 3, 0, 2, 1 }, { 1, 3, 2, 0 } };
	uint8_t f[8][FRAME_MAX], g[8][FRAME_MAX];
	uint32_t flen[8], glen[8];
	uint8_t port[8];
	struct sg_dp_stats s0, s1;

	(void)state;
	for (unsigned int k = 0; k < RTE_DIM(orders); k++) {
		bool nat = k == 2;
		const char *vip = nat ? "192.0.2.10" : "192.0.2.11";
		struct pkt p = pkt_new(UDP, C4, (uint16_t)(47000 + k), vip, 53);
		unsigned int n;

		static const char *const names[] = {
			"fragments in order, dnat",
			"fragments out of order, one burst",
			"fragments out of order, nat",
		};

		cur = names[k];
		p.payload_len = 200;
		p.ip_id = (uint16_t)(0xa00 + k);
		n = fragments(&p, 84, f, flen, port);
		assert_int_equal(n, 4);
		for (unsigned int i = 0; i < n; i++) {
			memcpy(g[i], f[orders[k][i]], flen[orders[k][i]]);
			glen[i] = flen[orders[k][i]];
		}
		s0 = stats(0);
		if (k == 1) {
			inject_burst(0, g, glen, port, n);
		} else {
			for (unsigned int i = 0; i + 1 < n; i++) {
				inject_burst(0, &g[i], &glen[i], port, 1);
				assert_int_equal(collect(), 0);
			}
			inject_burst(0, &g[n - 1], &glen[n - 1], port, 1);
		}
		assert_int_equal(collect(), 1);
		s1 = stats(0);
		expect_fwd(&outs[0], &p, nat ? SNAT4 : NULL, nat ? ANY_PORT : 0,
			   nat ? "203.0.113.12" : "203.0.113.13", 5353);
		assert_int_equal(DELTA(s0, s1, frag_in), n);
		assert_int_equal(DELTA(s0, s1, frag_reassembled), 1);
		assert_int_equal(DELTA(s0, s1, flow_new), 1);
		assert_int_equal(drops(&s1), drops(&s0));
	}

	/* A datagram bigger than the MTU: reassembled, translated, cut again to leave. */
	cur = "big datagram: reassembled, then cut for the egress mtu";
	{
		struct pkt p = pkt_new(UDP, C4, 47005, "192.0.2.11", 53), x;
		unsigned int n;

		p.payload_len = 1800;
		p.ip_id = 0xa10;
		n = fragments(&p, MTU, f, flen, port);
		assert_int_equal(n, 2);
		s0 = stats(0);
		inject_burst(0, f, flen, port, n);
		n = collect();
		s1 = stats(0);
		x = forwarded(&p, NULL, 0, "203.0.113.13", 5353);
		expect_fragments(n, &x, MTU, false, P_INT);
		assert_int_equal(DELTA(s0, s1, frag_reassembled), 1);
		assert_int_equal(DELTA(s0, s1, frag_out), 2);
	}
	cur = "fragmented echo request: the reply in fragments";
	{
		struct pkt p = pkt_new(ICMP4, C4, 47006, "192.0.2.10", 0), x;
		unsigned int n;

		p.payload_len = 2000;
		p.ip_id = 0xa11;
		n = fragments(&p, MTU, f, flen, port);
		assert_int_equal(n, 2);
		s0 = stats(0);
		inject_burst(0, f, flen, port, n);
		n = collect();
		s1 = stats(0);
		x = p;
		x.src = p.dst;
		x.dst = p.src;
		memcpy(x.dmac, p.smac, 6);
		memcpy(x.smac, EXT_MAC, 6);
		x.ttl = 64;
		x.icmp_type = 0;
		x.pad_to = 0;
		expect_fragments(n, &x, MTU, false, P_EXT);
		assert_int_equal(DELTA(s0, s1, echo_reply), 1);
		assert_int_equal(drops(&s1), drops(&s0));
	}

	/* One fragment missing: nothing leaves; the worker frees what it holds. */
	cur = "fragment missing";
	{
		struct pkt p = pkt_new(UDP, C4, 47010, "192.0.2.11", 53);

		p.payload_len = 200;
		p.ip_id = 0xb00;
		fragments(&p, 84, f, flen, port);
		inject_burst(0, f, flen, port, 3);
		assert_int_equal(collect(), 0);
	}
}

/*
 * Incomplete datagrams are bounded: a worker holds at most frag_max of
 * them (16 here); the fragments of any more are freed at once.
 */
static void
test_fragment_flood(void **state)
{
	uint8_t f[SG_MAX_BURST][FRAME_MAX], g[8][FRAME_MAX];
	uint32_t len[SG_MAX_BURST], glen[8];
	uint8_t port[SG_MAX_BURST];
	struct sg_dp_stats s0, s1;
	unsigned int held;

	(void)state;
	cur = "a flood of incomplete datagrams";
	s0 = stats(0);
	for (unsigned int burst = 0; burst < 4; burst++) {
		for (unsigned int i = 0; i < SG_MAX_BURST; i++) {
			struct pkt p = pkt_new(UDP, C4, (uint16_t)(53000 + burst * 32 + i),
					       "192.0.2.11", 53);

			p.payload_len = 200;
			p.ip_id = (uint16_t)(0x2000 + burst * 32 + i);
			fragments(&p, 84, g, glen, port);
			memcpy(f[i], g[0], glen[0]);	/* first fragments only */
			len[i] = glen[0];
			port[i] = P_EXT;
		}
		inject_burst(0, f, len, port, SG_MAX_BURST);
		assert_int_equal(collect(), 0);
	}
	s1 = stats(0);
	assert_int_equal(DELTA(s0, s1, frag_in), 4 * SG_MAX_BURST);
	held = POOL_SIZE - rte_mempool_avail_count(E.pool);
	if (held > 16)
		fail_msg("%s: %u mbufs held", cur, held);
}

/* ---- limits ---------------------------------------------------------------- */

/*
 * RSTs and unreachables are rate limited (RFC 1812 §4.3.2.8, RFC 4443 §2.4
 * (f)): DP_REPLY_BURST at once, DP_REPLY_RATE a second after that. A RST
 * is never answered (RFC 793 §3.4), so a flood of them must not spend
 * what answers the others.
 */
static void
test_reply_limit(void **state)
{
	uint8_t f[SG_MAX_BURST][FRAME_MAX];
	uint32_t len[SG_MAX_BURST];
	uint8_t port[SG_MAX_BURST];
	struct sg_dp_stats s0, s1;
	unsigned int sent = 0, n;
	uint16_t cport = 50000;

	(void)state;
	cur = "a flood of rsts to a service without endpoints";
	s0 = stats(0);
	for (unsigned int burst = 0; burst < 4; burst++) {
		for (unsigned int i = 0; i < SG_MAX_BURST; i++) {
			struct pkt p = pkt_new(TCP, C4, cport++, "192.0.2.19", 82);

			p.tcp_flags = RTE_TCP_RST_FLAG;
			len[i] = build(f[i], &p);
			port[i] = P_EXT;
		}
		inject_burst(0, f, len, port, SG_MAX_BURST);
		assert_int_equal(collect(), 0);
	}
	s1 = stats(0);
	assert_int_equal(DELTA(s0, s1, drop_reply_limited), 4 * SG_MAX_BURST);

	cur = "syns to a service without endpoints: a burst of rsts, then the rate";
	s0 = stats(0);
	while (sent < DP_REPLY_BURST + 5) {
		unsigned int k = RTE_MIN((unsigned int)SG_MAX_BURST, DP_REPLY_BURST + 5 - sent);

		for (unsigned int i = 0; i < k; i++) {
			struct pkt p = pkt_new(TCP, C4, cport++, "192.0.2.19", 82);

			len[i] = build(f[i], &p);
			port[i] = P_EXT;
		}
		inject_burst(0, f, len, port, k);
		n = collect();
		for (unsigned int i = 0; i < n; i++) {
			uint16_t cp = (uint16_t)(cport - k + i);
			struct pkt p = pkt_new(TCP, C4, cp, "192.0.2.19", 82);

			expect_rst(&outs[i], &p, P_EXT);
		}
		sent += k;
	}
	s1 = stats(0);
	assert_int_equal(DELTA(s0, s1, rst_sent), DP_REPLY_BURST);
	assert_int_equal(DELTA(s0, s1, drop_reply_limited), 5);
	/* 10 ms later, 10 ms' worth. */
	E.now += 10;
	s0 = stats(0);
	for (unsigned int i = 0; i < 12; i++) {
		struct pkt p = pkt_new(TCP, C4, cport++, "192.0.2.19", 82);

		len[i] = build(f[i], &p);
		port[i] = P_EXT;
	}
	inject_burst(0, f, len, port, 12);
	assert_int_equal(collect(), DP_REPLY_RATE / 100);
	s1 = stats(0);
	assert_int_equal(DELTA(s0, s1, rst_sent), DP_REPLY_RATE / 100);
}


/*
 * A new NAT flow's first packet, client:sport to vip:vport on the external
 * port: it leaves from snat to pod:tport; returns the SNAT port it took.
 */
static uint16_t
nat_first(uint8_t proto, const char *client, uint16_t sport, const char *vip, uint16_t vport,
	  const char *snat, const char *pod, uint16_t tport)
{
	struct pkt p = pkt_new(proto, client, sport, vip, vport);

	assert_int_equal(send_pkt(&p, P_EXT), 1);
	return expect_fwd(&outs[0], &p, snat, ANY_PORT, pod, tport);
}
/*
 * Two SNAT ports: two flows to one pod take both; a third to that pod
 * finds none (the reply tuple of each is taken) and is dropped; a flow to
 * another pod may use them again.
 */
static void
test_snat_exhaustion(void **state)
{
	struct sg_dp_stats s0, s1;
	struct pkt p;
	uint16_t a, b;

	(void)state;
	cur = "snat ports run out";
	sg_dp_worker_free(E.w[0]);
	E.ctx.snat_port_min = SNAT_MIN;
	E.ctx.snat_port_max = SNAT_MIN + 1;
	E.w[0] = worker_new(0, 1);

	a = nat_first(TCP, C4, 51000, "192.0.2.10", 80, SNAT4, "203.0.113.11", 8080);
	b = nat_first(TCP, C4, 51001, "192.0.2.10", 80, SNAT4, "203.0.113.11", 8080);
	assert_true(a != b && a >= SNAT_MIN && a <= SNAT_MIN + 1 && b >= SNAT_MIN &&
		    b <= SNAT_MIN + 1);

	p = pkt_new(TCP, C4B, 51002, "192.0.2.10", 80);
	s0 = stats(0);
	assert_int_equal(send_pkt(&p, P_EXT), 0);
	s1 = stats(0);
	assert_int_equal(DELTA(s0, s1, drop_snat_ports), 1);

	a = nat_first(UDP, C4B, 51003, "192.0.2.10", 53, SNAT4, "203.0.113.12", 5353);
	assert_true(a >= SNAT_MIN && a <= SNAT_MIN + 1);
}

/*
 * Two SNAT addresses: flows to one pod take them in turn on one port, then
 * the next port, so that a reply tuple comes back to a pod only after all
 * of them; a flow to another pod starts on its own cursor, from the first
 * port.
 */
static void
test_snat_pairs(void **state)
{
	static const char snat4b[] = "203.0.113.3";
	uint16_t a, b, c, d;

	(void)state;
	cur = "snat addresses in turn";
	E.snat.n4 = 2;
	memcpy(&E.snat.addr4[1], A(snat4b).a, 4);

	a = nat_first(TCP, C4, 51000, "192.0.2.10", 80, SNAT4, "203.0.113.11", 8080);
	b = nat_first(TCP, C4, 51001, "192.0.2.10", 80, snat4b, "203.0.113.11", 8080);
	c = nat_first(TCP, C4, 51002, "192.0.2.10", 80, SNAT4, "203.0.113.11", 8080);
	d = nat_first(UDP, C4, 51003, "192.0.2.10", 53, SNAT4, "203.0.113.12", 5353);
	check_snat_port(a, 0);
	check_snat_port(c, 0);
	assert_int_equal(a, SNAT_MIN);
	assert_int_equal(b, a);
	assert_int_equal(c, a + 1);
	assert_int_equal(d, SNAT_MIN);

	E.snat.n4 = 1;
}

/* Worker 0 anew, with wc. */
static void
worker0_recreate(const struct sg_dp_worker_conf *wc)
{
	sg_dp_worker_free(E.w[0]);
	E.w[0] = sg_dp_worker_create(&E.ctx, wc);
	assert_non_null(E.w[0]);
}

#define FLOOD_SYNS 8

/*
 * FLOOD_SYNS SYNs from C4 in one burst, source ports from sport, to the
 * nat VIP or to the dsr-ipip one. `made` of them make flows; the others
 * are refused and counted as refusal: in nat dropped (the first SYNs make
 * the flows, with SNAT ports in turn from the first), in DSR sent to
 * Maglev's pod all the same.
 */
static void
syn_flood(bool dsr, uint16_t sport, unsigned int made, unsigned int refusal)
{
	uint8_t f[FLOOD_SYNS][FRAME_MAX], port[FLOOD_SYNS];
	unsigned int out = dsr ? FLOOD_SYNS : made;
	struct pkt p[FLOOD_SYNS];
	uint32_t len[FLOOD_SYNS];
	struct sg_dp_stats s0, s1;

	for (unsigned int i = 0; i < FLOOD_SYNS; i++) {
		p[i] = pkt_new(TCP, C4, (uint16_t)(sport + i), dsr ? "192.0.2.12" : "192.0.2.10",
			       80);
		if (dsr)
			p[i].pad_to = 0;	/* the datagram alone goes inside */
		len[i] = build(f[i], &p[i]);
		port[i] = P_EXT;
	}
	s0 = stats(0);
	inject_burst(0, f, len, port, FLOOD_SYNS);
	assert_int_equal(collect(), out);
	s1 = stats(0);
	for (unsigned int i = 0; i < out; i++) {
		if (dsr)
			expect_encap(&outs[i], f[i] + 14, len[i] - 14, "203.0.113.14", false);
		else
			expect_fwd(&outs[i], &p[i], SNAT4, SNAT_MIN + (int)i, "203.0.113.11",
				   8080);
	}
	assert_int_equal(DELTA(s0, s1, flow_new), made);
	assert_int_equal(s1.c[refusal] - s0.c[refusal], FLOOD_SYNS - made);
}

/*
 * The new-flow rate limit under a flood (a burst of 4, no time passing):
 * of one burst of eight SYNs, four make flows and four are refused before
 * any work is done for them. A NAT flow refused so takes no SNAT port: the
 * next flow, a second (one token) later, takes the port after the fourth.
 * DSR's refused flows still go to Maglev's pod, by Maglev alone.
 */
static void
test_flow_rate(void **state)
{
	char name[SG_FLOW_NAMESIZE];
	struct sg_dp_worker_conf wc = worker_conf(0, name, 1);
	struct pkt p;

	(void)state;
	wc.flows.rate = 1;
	wc.flows.burst = 4;
	worker0_recreate(&wc);

	cur = "flow rate, nat: four of eight";
	syn_flood(false, 52000, 4, CNT(drop_flow_rate));

	cur = "flow rate, nat: a second later";
	E.now += 1000;
	p = pkt_new(TCP, C4, 52008, "192.0.2.10", 80);
	assert_int_equal(send_pkt(&p, P_EXT), 1);
	expect_fwd(&outs[0], &p, SNAT4, SNAT_MIN + 4, "203.0.113.11", 8080);

	cur = "flow rate, dsr: the rest by maglev alone";
	E.now += 4000;	/* the bucket full again */
	syn_flood(true, 52100, 4, CNT(stateless));
	E.now = NOW0;
}

/*
 * A full flow table under a flood (four entries): of a burst of eight
 * SYNs, four make flows and four are refused before any work is done for
 * them, counted as drop_flow_full. A NAT flow refused so takes no SNAT
 * port: once the sweep has removed the first flows, the next one takes the
 * port after the fourth. DSR's refused flows still go to Maglev's pod.
 */
static void
test_flow_full(void **state)
{
	char name[SG_FLOW_NAMESIZE];
	struct sg_dp_worker_conf wc = worker_conf(0, name, 1);
	struct pkt p;

	(void)state;
	wc.flows.max_flows = 4;
	worker0_recreate(&wc);

	cur = "full table, nat: four of eight";
	syn_flood(false, 53000, 4, CNT(drop_flow_full));
	assert_int_equal(stats(0).c[CNT(drop_flow_rate)], 0);

	cur = "full table, dsr: all by maglev alone";
	syn_flood(true, 53100, 0, CNT(stateless));

	cur = "full table, nat: after the sweep";
	E.now += sg_flow_default_timeout(SG_FLOW_TCP_SYN_SENT) + 1;
	sg_dp_worker_poll(E.w[0], E.now);
	p = pkt_new(TCP, C4, 53008, "192.0.2.10", 80);
	assert_int_equal(send_pkt(&p, P_EXT), 1);
	expect_fwd(&outs[0], &p, SNAT4, SNAT_MIN + 4, "203.0.113.11", 8080);
	E.now = NOW0;
}

static uint64_t
index_keys(void)
{
	struct flow_index_info info;

	flow_table_index_info(sg_dp_worker_flows(E.w[0]), &info);
	return info.keys;
}

/*
 * A DSR flow is indexed under its forward key alone: its backend tuple,
 * kept in the flow, is carried by no packet. A NAT flow takes two keys.
 */
static void
test_dsr_one_key(void **state)
{
	struct pkt p;
	uint64_t k0;

	(void)state;
	cur = "dsr: one index key";
	k0 = index_keys();
	p = pkt_new(TCP, C4, 54000, "192.0.2.12", 80);
	assert_int_equal(send_pkt(&p, P_EXT), 1);
	assert_int_equal(index_keys(), k0 + 1);

	cur = "nat: two index keys";
	p = pkt_new(TCP, C4, 54001, "192.0.2.10", 80);
	assert_int_equal(send_pkt(&p, P_EXT), 1);
	assert_int_equal(index_keys(), k0 + 3);
}

/* ---- two workers ---------------------------------------------------------- */

static uint16_t
owner(const char *client, uint16_t port)
{
	struct addr a = A(client);

	return sg_dp_flow_owner(&E.ctx, a.family, a.a, rte_cpu_to_be_16(port));
}

static uint64_t
sum(unsigned int c)
{
	uint64_t n = 0;

	for (unsigned int i = 0; i < E.nw; i++)
		n += sg_dp_worker_stats(E.w[i])->c[c];
	return n;
}

/*
 * Fragments spread over both queues: each datagram is reassembled by the
 * worker all its fragments map to, and forwarded by the worker its flow
 * belongs to, which is the one that transmits it.
 */
static void
test_two_workers_fragments(void **state)
{
	uint8_t f[8][FRAME_MAX];
	uint32_t flen[8];
	uint8_t port[8];
	bool seen[2][2] = { { false } };

	(void)state;
	cur = "two workers, fragments";
	for (unsigned int k = 0; k < 32 && !(seen[1][0] && seen[0][1]); k++) {
		struct pkt p = pkt_new(UDP, C4, (uint16_t)(48000 + k), "192.0.2.11", 53);
		uint64_t in0 = sum(CNT(handoff_in)), out0 = sum(CNT(handoff_out));
		uint64_t r0 = sg_dp_worker_stats(E.w[0])->c[CNT(frag_reassembled)];
		uint64_t r1 = sg_dp_worker_stats(E.w[1])->c[CNT(frag_reassembled)];
		uint16_t own = owner(C4, p.sport), by;
		unsigned int n;

		p.payload_len = 200;
		p.ip_id = (uint16_t)(0x100 + k);
		n = fragments(&p, 84, f, flen, port);
		for (unsigned int i = 0; i < n; i++)
			assert_int_equal(rte_ring_enqueue(E.rx[P_EXT][i % NQ],
							  mbuf_of(f[i], flen[i], P_EXT)), 0);
		poll_all();
		assert_int_equal(collect(), 1);
		assert_int_equal(outs[0].queue, own);
		expect_fwd(&outs[0], &p, NULL, 0, "203.0.113.13", 5353);
		r0 = sg_dp_worker_stats(E.w[0])->c[CNT(frag_reassembled)] - r0;
		r1 = sg_dp_worker_stats(E.w[1])->c[CNT(frag_reassembled)] - r1;
		assert_int_equal(r0 + r1, 1);
		by = r1 == 1;
		/* Fragments on the other queue went over, and so did the datagram if need be. */
		assert_int_equal(sum(CNT(handoff_out)) - out0, n / 2 + (by != own));
		assert_int_equal(sum(CNT(handoff_in)) - in0, n / 2 + (by != own));
		seen[by][own] = true;
	}
	assert_true(seen[1][0]);
	assert_true(seen[0][1]);
}

/*
 * Flows belong to the worker of their client's address and port,
 * whichever queue their packets come in on; that worker takes SNAT ports
 * of its own, so a reply, wherever it comes in, finds it by its port.
 */
static void
test_two_workers_flows(void **state)
{
	bool seen[2] = { false, false };

	(void)state;
	for (unsigned int k = 0; k < 12; k++) {
		bool v6 = k % 3 == 2, dnat = k % 3 == 1;
		const char *client = v6 ? C6 : C4, *vip = v6 ? "2001:db8:2::10" :
					  dnat ? "192.0.2.11" : "192.0.2.10";
		const char *pod = v6 ? "2001:db8:cb::11" : dnat ? "203.0.113.13" : "203.0.113.11";
		const char *sn = dnat ? NULL : v6 ? SNAT6 : SNAT4;
		uint16_t cport = (uint16_t)(49000 + k), own = owner(client, cport), sp;
		struct pkt p = pkt_new(TCP, client, cport, vip, 80), r, e, x;
		uint8_t fwd[FRAME_MAX], q[FRAME_MAX], b[FRAME_MAX];
		uint64_t out0 = sum(CNT(handoff_out)), xl;

		cur = v6 ? "two workers, nat v6" : dnat ? "two workers, dnat v4" :
			   "two workers, nat v4";
		rx_put(&p, P_EXT, 0);
		poll_all();
		assert_int_equal(collect(), 1);
		assert_int_equal(outs[0].queue, own);
		sp = expect_fwd(&outs[0], &p, sn, dnat ? 0 : ANY_PORT, pod, 8080);
		if (!dnat)
			check_snat_port(sp, own);
		assert_int_equal(sum(CNT(handoff_out)) - out0, own != 0);
		memcpy(fwd, outs[0].b, outs[0].len);

		/* The reply comes in on the other worker's queue. */
		r = pkt_new(TCP, pod, 8080, dnat ? client : sn, sp);
		r.tcp_flags = SYN_ACK;
		r.ack = 1001;
		out0 = sum(CNT(handoff_out));
		rx_put(&r, P_INT, (uint16_t)(own ^ 1));
		poll_all();
		assert_int_equal(collect(), 1);
		assert_int_equal(outs[0].queue, own);
		expect_fwd(&outs[0], &r, vip, 80, client, cport);
		assert_int_equal(sg_dp_worker_stats(E.w[own ^ 1])->c[CNT(handoff_out)] +
				 sg_dp_worker_stats(E.w[own])->c[CNT(handoff_out)] - out0, 1);
		/* An error from the pod about the flow, on the other queue too. */
		e = icmp_error(pod, dnat ? client : sn, v6 ? 1 : 3, v6 ? 4 : 3, 0, fwd + 14,
			       ip_len(fwd));
		xl = sum(CNT(icmp_xlate));
		rx_put(&e, P_INT, (uint16_t)(own ^ 1));
		poll_all();
		assert_int_equal(collect(), 1);
		assert_int_equal(outs[0].queue, own);
		x = forwarded(&e, vip, 0, client, 0);
		x.payload = q + 14;
		x.payload_len = datagram(&p, (uint8_t)(p.ttl - 1), q);
		frame_eq(&outs[0], P_EXT, b, build(b, &x));
		assert_int_equal(sum(CNT(icmp_xlate)) - xl, 1);
		seen[own] = true;
	}
	assert_true(seen[0] && seen[1]);
	assert_int_equal(sum(CNT(flow_new)), 12);
	assert_int_equal(sum(CNT(rev)), 12);
}

/* ---- invalid arguments ------------------------------------------------- */

static struct sg_dp_worker_conf
worker_conf(uint16_t index, char *name, uint32_t seed)
{
	struct sg_dp_worker_conf wc;

	snprintf(name, SG_FLOW_NAMESIZE, "dpt_flows%u", index);
	memset(&wc, 0, sizeof(wc));
	wc.index = index;
	wc.qsbr_id = index;
	wc.socket_id = SOCKET_ID_ANY;
	wc.flows.name = name;
	wc.flows.socket_id = SOCKET_ID_ANY;
	wc.flows.max_flows = 1024;
	wc.flows.hash_seed = seed;
	wc.frag_max = 16;
	wc.frag_timeout_ms = 2000;
	return wc;
}

static struct sg_dp_worker *
worker_new(uint16_t index, uint32_t seed)
{
	char name[SG_FLOW_NAMESIZE];
	struct sg_dp_worker_conf wc = worker_conf(index, name, seed);
	struct sg_dp_worker *w = sg_dp_worker_create(&E.ctx, &wc);

	assert_non_null(w);
	return w;
}

static void
test_invalid(void **state)
{
	char name[SG_FLOW_NAMESIZE];
	struct sg_dp_worker_conf wc = worker_conf(1, name, 1);
	struct sg_dp_ctx *c = calloc(1, sizeof(*c));
	struct svc_spec bad = *spec(S_LOCAL);

	(void)state;
	cur = "invalid";
	assert_non_null(c);
	*c = E.ctx;
	errno = 0;
	assert_null(sg_dp_worker_create(NULL, &wc));
	assert_int_equal(errno, EINVAL);
	errno = 0;
	assert_null(sg_dp_worker_create(&E.ctx, NULL));
	assert_int_equal(errno, EINVAL);
	errno = 0;
	assert_null(sg_dp_worker_create(&E.ctx, &wc));	/* index 1 of one worker */
	assert_int_equal(errno, EINVAL);
	c->n_workers = 0;
	wc.index = 0;
	errno = 0;
	assert_null(sg_dp_worker_create(c, &wc));
	assert_int_equal(errno, EINVAL);
	c->n_workers = SG_DP_MAX_WORKERS + 1;
	errno = 0;
	assert_null(sg_dp_worker_create(c, &wc));
	assert_int_equal(errno, EINVAL);
	free(c);
	sg_dp_worker_free(NULL);

	assert_string_equal(sg_dp_counter_name(CNT(flow_evicted)), "flow_evicted");
	assert_non_null(sg_dp_counter_help(CNT(drop_parse)));
	assert_null(sg_dp_counter_name(SG_DP_C_COUNT));
	assert_null(sg_dp_counter_help(SG_DP_C_COUNT));

	/* externalTrafficPolicy: Local keeps the client address, which nat replaces. */
	bad.mode = NAT;
	assert_int_equal(publish(&bad, AS_IS, 0), -EINVAL);
}

/* ---- environment ------------------------------------------------------- */

static int
neigh_tx(void *arg, uint16_t port, struct rte_mbuf *m)
{
	(void)arg;
	(void)port;
	rte_pktmbuf_free(m);
	return 0;
}

static void
mask6(unsigned int len, uint8_t *m)
{
	for (unsigned int i = 0; i < 16; i++)
		m[i] = len >= 8 * (i + 1) ? 0xff :
		       len <= 8 * i ? 0 : (uint8_t)(0xff << (8 - len % 8));
}

static void
own(uint8_t port, const char *addr, uint8_t flags)
{
	struct addr a = A(addr);
	struct sg_neigh_key k;

	if (a.family == 4)
		sg_neigh_key4(&k, E.pid[port], a.a);
	else
		sg_neigh_key6(&k, E.pid[port], a.a);
	assert_int_equal(sg_neigh_addr_add(E.neigh, &k, flags), 0);
}

static void
learn(uint8_t port, const char *addr)
{
	struct sg_neigh_learn l = { .flags = SG_NEIGH_L_MAC | SG_NEIGH_L_TO_US };
	struct addr a = A(addr);

	if (a.family == 4)
		sg_neigh_key4(&l.key, E.pid[port], a.a);
	else
		sg_neigh_key6(&l.key, E.pid[port], a.a);
	mac_of(&a, l.mac);
	assert_int_equal(sg_neigh_learn(E.neigh, &l, NOW0), 0);
}

static struct rte_ring *
ring(const char *what, unsigned int i, unsigned int j, unsigned int flags)
{
	char name[RTE_RING_NAMESIZE];
	struct rte_ring *r;

	snprintf(name, sizeof(name), "dpt_%s%u_%u", what, i, j);
	r = rte_ring_create(name, RING_SIZE, SOCKET_ID_ANY, flags);
	assert_non_null(r);
	return r;
}

static void
port_up(uint8_t p)
{
	static const char *const names[2] = { "dpt_ext", "dpt_int" };
	struct rte_eth_conf conf;
	int pid;

	for (unsigned int q = 0; q < NQ; q++) {
		E.rx[p][q] = ring("rx", p, q, RING_F_SP_ENQ | RING_F_SC_DEQ);
		E.tx[p][q] = ring("tx", p, q, RING_F_SP_ENQ | RING_F_SC_DEQ);
	}
	pid = rte_eth_from_rings(names[p], E.rx[p], NQ, E.tx[p], NQ, rte_socket_id());
	assert_true(pid >= 0);
	E.pid[p] = (uint16_t)pid;
	memset(&conf, 0, sizeof(conf));
	assert_int_equal(rte_eth_dev_configure(E.pid[p], NQ, NQ, &conf), 0);
	for (uint16_t q = 0; q < NQ; q++) {
		assert_int_equal(rte_eth_rx_queue_setup(E.pid[p], q, RING_SIZE, rte_socket_id(),
							NULL, E.pool), 0);
		assert_int_equal(rte_eth_tx_queue_setup(E.pid[p], q, RING_SIZE, rte_socket_id(),
							NULL), 0);
	}
	assert_int_equal(rte_eth_dev_start(E.pid[p]), 0);
}

static int
env_up(void **state)
{
	struct sg_svc_table_conf tc = { .max_services = 64, .max_keys = 128,
					.socket_id = SOCKET_ID_ANY };
	struct sg_neigh_conf nc = { .tx = neigh_tx, .max_neighbours = 128, .max_addrs = 128,
				    .socket_id = SOCKET_ID_ANY };
	size_t qsz = rte_rcu_qsbr_get_memsize(NQ);

	(void)state;
	E.pool = rte_pktmbuf_pool_create("dpt_pool", POOL_SIZE, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
					 SOCKET_ID_ANY);
	assert_non_null(E.pool);
	port_up(P_EXT);
	port_up(P_INT);

	/* Readers never register: one thread, and nothing is in flight between bursts. */
	E.qsbr = rte_zmalloc("dpt_qsbr", qsz, RTE_CACHE_LINE_SIZE);
	assert_non_null(E.qsbr);
	assert_int_equal(rte_rcu_qsbr_init(E.qsbr, NQ), 0);
	tc.qsbr = E.qsbr;
	E.svc = sg_svc_table_create(&tc);
	assert_non_null(E.svc);
	for (size_t i = 0; i < RTE_DIM(services); i++)
		if (publish(&services[i], AS_IS, 0) != 0)
			fail_msg("publishing %s", services[i].name);

	nc.qsbr = E.qsbr;
	nc.pool = E.pool;
	E.neigh = sg_neigh_create(&nc);
	assert_non_null(E.neigh);
	memset(E.ctx.port_index, UINT8_MAX, sizeof(E.ctx.port_index));
	for (uint8_t p = 0; p < 2; p++) {
		struct sg_dp_port *dp = &E.ctx.ports[p];
		struct addr a4 = A(p == P_EXT ? EXT4 : INT4), a6 = A(p == P_EXT ? EXT6 : INT6);
		struct sg_neigh_port_conf pc = {
			.port = E.pid[p],
			.flags = SG_NEIGH_PORT_IPV4 | SG_NEIGH_PORT_IPV6,
			.ip4_prefix = 24,
			.ip6_prefix = 64,
		};

		dp->port_id = E.pid[p];
		dp->roles = p == P_EXT ? SG_DP_ROLE_EXTERNAL : SG_DP_ROLE_INTERNAL;
		dp->has6 = 1;
		memcpy(dp->mac.addr_bytes, port_mac(p), 6);
		memcpy(&dp->addr4, a4.a, 4);
		dp->mask4 = rte_cpu_to_be_32(0xffffff00);
		dp->mtu = MTU;
		memcpy(dp->addr6, a6.a, 16);
		mask6(64, dp->mask6);
		if (p == P_EXT) {
			memcpy(&dp->gw4, A(ROUTER4).a, 4);
			memcpy(dp->gw6, A(ROUTER6).a, 16);
		}
		E.ctx.port_index[E.pid[p]] = p;
		memcpy(pc.mac, port_mac(p), 6);
		memcpy(pc.ip4, a4.a, 4);
		memcpy(pc.ip6, a6.a, 16);
		assert_int_equal(sg_neigh_port_set(E.neigh, &pc), 0);
	}
	E.ctx.n_ports = 2;
	for (size_t i = 0; i < RTE_DIM(vips); i++)
		own(P_EXT, vips[i], SG_NEIGH_ADDR_VIP);
	own(P_EXT, NODE4, SG_NEIGH_ADDR_NODE);
	own(P_EXT, NODE6, SG_NEIGH_ADDR_NODE);
	own(P_INT, SNAT4, SG_NEIGH_ADDR_SNAT);
	own(P_INT, SNAT6, SG_NEIGH_ADDR_SNAT);
	for (size_t i = 0; i < RTE_DIM(ext_neighbours); i++)
		learn(P_EXT, ext_neighbours[i]);
	for (size_t i = 0; i < RTE_DIM(int_neighbours); i++)
		learn(P_INT, int_neighbours[i]);

	E.ctx.svc = E.svc;
	E.ctx.affinity = sg_dp_affinity_create(1024, SOCKET_ID_ANY);
	assert_non_null(E.ctx.affinity);
	E.ctx.neigh = E.neigh;
	E.ctx.qsbr = E.qsbr;
	E.snat.n4 = 1;
	E.snat.n6 = 1;
	memcpy(&E.snat.addr4[0], A(SNAT4).a, 4);
	memcpy(E.snat.addr6[0], A(SNAT6).a, 16);
	atomic_store_explicit(&E.ctx.snat, &E.snat, memory_order_release);
	E.ctx.snat_port_min = SNAT_MIN;
	E.ctx.snat_port_max = SNAT_MAX;
	E.ctx.gue_port = rte_cpu_to_be_16(GUE_PORT);
	for (unsigned int q = 0; q < NQ; q++) {
		E.ctx.handoff[q] = ring("hand", q, 0, RING_F_SC_DEQ);
		E.ctx.ctl_tx[q] = ring("ctl", q, 0, RING_F_SP_ENQ | RING_F_SC_DEQ);
	}
	E.ctx.neigh_miss = rte_ring_create_elem("dpt_nmiss", sizeof(struct sg_neigh_miss), 256,
						SOCKET_ID_ANY, RING_F_SC_DEQ);
	E.ctx.neigh_learn = rte_ring_create_elem("dpt_nlearn", sizeof(struct sg_neigh_learn),
						 RING_SIZE, SOCKET_ID_ANY, RING_F_SC_DEQ);
	assert_non_null(E.ctx.neigh_miss);
	assert_non_null(E.ctx.neigh_learn);
	return 0;
}

/* Free what a ring holds; returns how many mbufs there were. */
static unsigned int
drain(struct rte_ring *r)
{
	unsigned int n = 0;
	void *m;

	while (rte_ring_dequeue(r, &m) == 0) {
		rte_pktmbuf_free(m);
		n++;
	}
	return n;
}

static int
env_down(void **state)
{
	(void)state;
	for (uint8_t p = 0; p < 2; p++) {
		rte_eth_dev_stop(E.pid[p]);
		rte_eth_dev_close(E.pid[p]);
		for (unsigned int q = 0; q < NQ; q++) {
			rte_ring_free(E.rx[p][q]);
			rte_ring_free(E.tx[p][q]);
		}
	}
	for (unsigned int q = 0; q < NQ; q++) {
		rte_ring_free(E.ctx.handoff[q]);
		rte_ring_free(E.ctx.ctl_tx[q]);
	}
	rte_ring_free(E.ctx.neigh_miss);
	rte_ring_free(E.ctx.neigh_learn);
	sg_neigh_free(E.neigh);
	sg_svc_table_free(E.svc);
	sg_dp_affinity_free(E.ctx.affinity);
	rte_free(E.qsbr);
	rte_mempool_free(E.pool);
	return 0;
}

static int
workers_up(unsigned int nw)
{
	E.nw = nw;
	E.ctx.n_workers = (uint16_t)nw;
	E.now = NOW0;
	for (uint16_t i = 0; i < nw; i++)
		E.w[i] = worker_new(i, 1);
	return 0;
}

static int
setup1(void **state)
{
	(void)state;
	return workers_up(1);
}

static int
setup2(void **state)
{
	(void)state;
	return workers_up(2);
}

/*
 * Everything a test sent was looked at: a frame left on a ring is a
 * failure, and so is an mbuf not back in the pool once the workers are
 * gone (they free what they hold: queued frames, fragments).
 */
static int
teardown(void **state)
{
	struct sg_neigh_learn l;
	struct sg_neigh_miss miss;
	unsigned int left = 0;
	int rc = 0;

	(void)state;
	for (uint8_t p = 0; p < 2; p++)
		for (unsigned int q = 0; q < NQ; q++)
			left += drain(E.tx[p][q]) + drain(E.rx[p][q]);
	for (unsigned int q = 0; q < NQ; q++)
		left += drain(E.ctx.handoff[q]) + drain(E.ctx.ctl_tx[q]);
	while (rte_ring_dequeue_elem(E.ctx.neigh_miss, &miss, sizeof(miss)) == 0) {
		rte_pktmbuf_free(miss.m);
		left++;
	}
	while (rte_ring_dequeue_elem(E.ctx.neigh_learn, &l, sizeof(l)) == 0)
		;
	for (unsigned int i = 0; i < NQ; i++) {
		sg_dp_worker_free(E.w[i]);
		E.w[i] = NULL;
	}
	E.ctx.snat_port_min = SNAT_MIN;
	E.ctx.snat_port_max = SNAT_MAX;
	if (left > 0) {
		fprintf(stderr, "%s: %u frames nobody looked at\n", cur, left);
		rc = -1;
	}
	if (rte_mempool_avail_count(E.pool) != POOL_SIZE) {
		fprintf(stderr, "%s: %u mbufs not returned\n", cur,
			POOL_SIZE - rte_mempool_avail_count(E.pool));
		rc = -1;
	}
	if (services_dirty) {
		for (size_t i = 0; i < RTE_DIM(services); i++)
			if (publish(&services[i], AS_IS, 0) != 0)
				rc = -1;
		services_dirty = false;
	}
	return rc;
}

int
main(int argc, char **argv)
{
	static const struct CMUnitTest head[] = {
		cmocka_unit_test_setup_teardown(test_invalid, setup1, teardown),
	};
	static const struct CMUnitTest tail[] = {
		cmocka_unit_test_setup_teardown(test_replies, setup1, teardown),
		cmocka_unit_test_setup_teardown(test_affinity, setup1, teardown),
		cmocka_unit_test_setup_teardown(test_affinity_remembered, setup1, teardown),
		cmocka_unit_test_setup_teardown(test_udp_evict, setup1, teardown),
		cmocka_unit_test_setup_teardown(test_udp_evict_burst, setup1, teardown),
		cmocka_unit_test_setup_teardown(test_udp_evict_burst_removed, setup1, teardown),
		cmocka_unit_test_setup_teardown(test_icmp_from_pod, setup1, teardown),
		cmocka_unit_test_setup_teardown(test_icmp_from_outside, setup1, teardown),
		cmocka_unit_test_setup_teardown(test_dsr_flow, setup1, teardown),
		cmocka_unit_test_setup_teardown(test_dsr_cached, setup1, teardown),
		cmocka_unit_test_setup_teardown(test_reassembly, setup1, teardown),
		cmocka_unit_test_setup_teardown(test_fragment_flood, setup1, teardown),
		cmocka_unit_test_setup_teardown(test_reply_limit, setup1, teardown),
		cmocka_unit_test_setup_teardown(test_snat_exhaustion, setup1, teardown),
		cmocka_unit_test_setup_teardown(test_snat_pairs, setup1, teardown),
		cmocka_unit_test_setup_teardown(test_flow_rate, setup1, teardown),
		cmocka_unit_test_setup_teardown(test_flow_full, setup1, teardown),
		cmocka_unit_test_setup_teardown(test_dsr_one_key, setup1, teardown),
		cmocka_unit_test_setup_teardown(test_two_workers_fragments, setup2, teardown),
		cmocka_unit_test_setup_teardown(test_two_workers_flows, setup2, teardown),
	};
	size_t n = 0, total = RTE_DIM(head) + RTE_DIM(rows) + RTE_DIM(tail);
	struct CMUnitTest *tests = calloc(total, sizeof(*tests));
	int rc;

	(void)argc;
	if (tests == NULL)
		return 1;
	sg_test_eal_init(argv[0], "256");
	/* rte_ip_frag logs every table it makes as USER1 INFO: one per worker here. */
	rte_log_set_level(RTE_LOGTYPE_USER1, RTE_LOG_WARNING);
	for (size_t i = 0; i < RTE_DIM(head); i++)
		tests[n++] = head[i];
	for (size_t i = 0; i < RTE_DIM(rows); i++)
		tests[n++] = (struct CMUnitTest){
			.name = rows[i].name,
			.test_func = run_row,
			.setup_func = setup1,
			.teardown_func = teardown,
			.initial_state = (void *)(uintptr_t)&rows[i],
		};
	for (size_t i = 0; i < RTE_DIM(tail); i++)
		tests[n++] = tail[i];
	rc = _cmocka_run_group_tests("dp", tests, n, env_up, env_down);
	free(tests);
	rte_eal_cleanup();
	return rc;
}
