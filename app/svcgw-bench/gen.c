/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The traffic generator: 64-byte TCP frames (60 bytes and the FCS the wire
 * would add) with valid IPv4 and TCP checksums, written into fresh mbufs
 * and enqueued on the rings a ring-based port receives from. Each flow goes
 * to the queue of the worker that owns it, as RSS or the workers' own
 * steering would put it, so that what is measured is forwarding and not
 * hand-over. Runs on the main lcore.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include <rte_byteorder.h>
#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_malloc.h>
#include <rte_memcpy.h>
#include <rte_mbuf.h>
#include <rte_ring.h>
#include <rte_tcp.h>

#include "flow.h"
#include "bench.h"

#define FRAME_LEN 60	/* Ethernet + IPv4 + TCP, padded to the 60-byte minimum */
#define CLIENT_PORTS 64000u

/* One flow's frame, as the generator copies it: a cache line. */
struct gen_frame {
	uint8_t b[64];
} __rte_cache_aligned;

struct gen_queue {
	uint32_t *order;	/* established flows this queue's worker owns, shuffled */
	uint32_t n;
	uint32_t cursor;	/* next to send an ACK for */
	uint32_t opened;	/* order[0 .. opened) got their SYN */
};

struct bench_gen {
	struct bench_gen_conf conf;
	struct gen_queue q[SG_DP_MAX_WORKERS];
	uint32_t established;
	/* Each established flow's ACK, built once: the window copies 64 bytes a packet. */
	struct gen_frame *acks;
	uint32_t next_new;	/* the next new flow's index */
	uint32_t packets;	/* counts packets, for new_every */
	uint64_t rng;
	struct rte_ether_addr src_mac;
};

void
bench_flow_of(uint32_t i, uint32_t services, struct bench_flow *f)
{
	uint32_t s = i % services;

	/* Clients 198.51.100.1-253, source ports 1024-65023. */
	f->client = rte_cpu_to_be_32(0xc6336400u | (1 + i / CLIENT_PORTS));
	f->sport = rte_cpu_to_be_16((uint16_t)(1024 + i % CLIENT_PORTS));
	/* Service s: VIP 192.0.2.1-250, port 1024-1423. */
	f->vip = rte_cpu_to_be_32(0xc0000200u | (1 + s / 400));
	f->dport = rte_cpu_to_be_16((uint16_t)(1024 + s % 400));
}

void
bench_backend_of(uint32_t b, uint8_t addr[4], uint16_t *port)
{
	addr[0] = 203;
	addr[1] = 0;
	addr[2] = 113;
	addr[3] = (uint8_t)(10 + b % 240);
	*port = (uint16_t)(8000 + b / 240);
}

static uint64_t
rng_next(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static uint16_t
owner_of(const struct bench_gen *g, uint32_t i)
{
	struct bench_flow f;
	struct sg_flow_key k;

	if (g->conf.queues == 1)
		return 0;
	bench_flow_of(i, g->conf.services, &f);
	sg_flow_key_init(&k, SG_FLOW_V4, IPPROTO_TCP, &f.client, &f.vip, f.sport, f.dport);
	return sg_dp_flow_owner(g->conf.ctx, &k);
}

struct bench_gen *
bench_gen_create(const struct bench_gen_conf *conf)
{
	struct bench_gen *g;

	if (conf == NULL || conf->queues == 0 || conf->queues > SG_DP_MAX_WORKERS ||
	    conf->services == 0) {
		errno = EINVAL;
		return NULL;
	}
	g = rte_zmalloc("bench_gen", sizeof(*g), RTE_CACHE_LINE_SIZE);
	if (g == NULL) {
		errno = ENOMEM;
		return NULL;
	}
	g->conf = *conf;
	g->rng = 0x5eedbe4c4ull;
	/* A locally administered unicast MAC for the clients' router. */
	g->src_mac = (struct rte_ether_addr){ { 0x02, 0x00, 0x5e, 0x00, 0x53, 0x01 } };
	return g;
}

void
bench_gen_free(struct bench_gen *g)
{
	if (g == NULL)
		return;
	for (unsigned int q = 0; q < SG_DP_MAX_WORKERS; q++)
		free(g->q[q].order);
	rte_free(g->acks);
	rte_free(g);
}

/* Flow i's frame with tcp_flags, FRAME_LEN bytes at p. */
static void
frame_write(const struct bench_gen *g, uint8_t *p, uint32_t i, uint8_t tcp_flags)
{
	struct rte_ether_hdr *eth = (struct rte_ether_hdr *)p;
	struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)(eth + 1);
	struct rte_tcp_hdr *tcp = (struct rte_tcp_hdr *)(ip + 1);
	struct bench_flow f;

	bench_flow_of(i, g->conf.services, &f);
	eth->dst_addr = g->conf.dst_mac;
	eth->src_addr = g->src_mac;
	eth->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
	*ip = (struct rte_ipv4_hdr){
		.version_ihl = RTE_IPV4_VHL_DEF,
		.total_length = rte_cpu_to_be_16(sizeof(*ip) + sizeof(*tcp)),
		.fragment_offset = rte_cpu_to_be_16(RTE_IPV4_HDR_DF_FLAG),
		.time_to_live = 64,
		.next_proto_id = IPPROTO_TCP,
		.src_addr = f.client,
		.dst_addr = f.vip,
	};
	ip->hdr_checksum = rte_ipv4_cksum(ip);
	*tcp = (struct rte_tcp_hdr){
		.src_port = f.sport,
		.dst_port = f.dport,
		.sent_seq = rte_cpu_to_be_32(1),
		.recv_ack = rte_cpu_to_be_32(tcp_flags & RTE_TCP_ACK_FLAG ? 1 : 0),
		.data_off = (sizeof(*tcp) / 4) << 4,
		.tcp_flags = tcp_flags,
		.rx_win = rte_cpu_to_be_16(65535),
	};
	tcp->cksum = rte_ipv4_udptcp_cksum(ip, tcp);
	memset(tcp + 1, 0, FRAME_LEN - (sizeof(*eth) + sizeof(*ip) + sizeof(*tcp)));
}

static inline void
mbuf_done(const struct bench_gen *g, struct rte_mbuf *m)
{
	m->data_len = FRAME_LEN;
	m->pkt_len = FRAME_LEN;
	/* What a NIC's driver sets: the ring PMD leaves it to us. */
	m->port = g->conf.port_id;
}

static void
frame(const struct bench_gen *g, struct rte_mbuf *m, uint32_t i, uint8_t tcp_flags)
{
	frame_write(g, rte_pktmbuf_mtod(m, uint8_t *), i, tcp_flags);
	mbuf_done(g, m);
}

static inline void
frame_ack(const struct bench_gen *g, struct rte_mbuf *m, uint32_t i)
{
	rte_memcpy(rte_pktmbuf_mtod(m, uint8_t *), &g->acks[i], sizeof(g->acks[i]));
	mbuf_done(g, m);
}

int
bench_gen_flows(struct bench_gen *g, uint32_t n)
{
	uint32_t count[SG_DP_MAX_WORKERS] = { 0 };
	uint16_t *owner;

	if (n > BENCH_MAX_FLOWS)
		return -EINVAL;
	owner = malloc(sizeof(*owner) * (n ? n : 1));
	if (owner == NULL)
		return -ENOMEM;
	for (uint32_t i = 0; i < n; i++)
		count[owner[i] = owner_of(g, i)]++;
	for (unsigned int q = 0; q < g->conf.queues; q++) {
		g->q[q].order = malloc(sizeof(uint32_t) * (count[q] ? count[q] : 1));
		if (g->q[q].order == NULL) {
			free(owner);
			return -ENOMEM;
		}
	}
	for (uint32_t i = 0; i < n; i++)
		g->q[owner[i]].order[g->q[owner[i]].n++] = i;
	free(owner);
	/* Random order: a million flows must not be visited in memory order. */
	for (unsigned int q = 0; q < g->conf.queues; q++) {
		struct gen_queue *gq = &g->q[q];

		for (uint32_t i = gq->n; i > 1; i--) {
			uint32_t j = (uint32_t)(rng_next(&g->rng) % i), t = gq->order[i - 1];

			gq->order[i - 1] = gq->order[j];
			gq->order[j] = t;
		}
	}
	g->acks = rte_malloc("bench_acks", sizeof(*g->acks) * (n ? n : 1), RTE_CACHE_LINE_SIZE);
	if (g->acks == NULL)
		return -ENOMEM;
	for (uint32_t i = 0; i < n; i++)
		frame_write(g, g->acks[i].b, i, RTE_TCP_ACK_FLAG);
	g->established = n;
	g->next_new = n;
	return 0;
}

uint32_t
bench_gen_opened(const struct bench_gen *g)
{
	uint32_t n = 0;

	for (unsigned int q = 0; q < g->conf.queues; q++)
		n += g->q[q].opened;
	return n;
}

/* A new flow this queue's worker owns. */
static uint32_t
new_flow(struct bench_gen *g, unsigned int q)
{
	for (;;) {
		uint32_t i = g->next_new++;

		if (g->next_new >= BENCH_MAX_FLOWS)
			g->next_new = g->established;
		if (owner_of(g, i) == q)
			return i;
	}
}

unsigned int
bench_gen_send(struct bench_gen *g, unsigned int new_every)
{
	struct rte_mbuf *m[SG_MAX_BURST];
	unsigned int sent = 0;

	for (unsigned int q = 0; q < g->conf.queues; q++) {
		struct gen_queue *gq = &g->q[q];
		unsigned int n;

		if (rte_ring_free_count(g->conf.rx[q]) < SG_MAX_BURST ||
		    rte_pktmbuf_alloc_bulk(g->conf.pool, m, SG_MAX_BURST) != 0)
			continue;
		for (unsigned int k = 0; k < SG_MAX_BURST; k++) {
			if (gq->opened < gq->n)
				frame(g, m[k], gq->order[gq->opened++], RTE_TCP_SYN_FLAG);
			else if (new_every != 0 && ++g->packets == new_every) {
				g->packets = 0;
				frame(g, m[k], new_flow(g, q), RTE_TCP_SYN_FLAG);
			}
			else if (gq->n > 0) {
				frame_ack(g, m[k], gq->order[gq->cursor]);
				if (++gq->cursor == gq->n)
					gq->cursor = 0;
			} else
				frame(g, m[k], new_flow(g, q), RTE_TCP_SYN_FLAG);
		}
		n = rte_ring_sp_enqueue_burst(g->conf.rx[q], (void **)m, SG_MAX_BURST, NULL);
		if (n < SG_MAX_BURST)
			rte_pktmbuf_free_bulk(&m[n], SG_MAX_BURST - n);
		sent += n;
	}
	return sent;
}
