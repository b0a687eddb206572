/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The traffic generator: 64-byte TCP frames (60 bytes and the FCS the wire
 * would add; IPv6 needs 78) with valid IP and TCP checksums (frame.c, as
 * the line-rate mode builds its own), written into
 * fresh mbufs and enqueued on the rings a ring-based port receives from.
 * Each flow goes to the queue of the worker that owns it, as RSS or the
 * workers' own steering would put it, so that what is measured is
 * forwarding and not hand-over. Runs on the main lcore.
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
#include "frame.h"

/* Ethernet + IPv4 + TCP, padded to the 60-byte minimum; Ethernet + IPv6 + TCP. */
#define FRAME_LEN_V4 BENCH_FRAME_MIN
#define FRAME_LEN_V6 (BENCH_ETH_LEN + BENCH_IP6_LEN + BENCH_TCP_LEN)
#define CLIENT_PORTS 64000u

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
	/*
	 * Each established flow's ACK, built once: the window copies one
	 * frame a packet. One cache line apart (IPv4), or two (IPv6).
	 */
	uint8_t *acks;
	uint32_t frame_len;
	uint32_t stride;
	uint32_t next_new;	/* the next new flow's index */
	uint32_t packets;	/* counts packets, for new_every */
	uint64_t rng;
	struct rte_ether_addr src_mac;
};

/* An address of a documentation network: v4 a.b.c.last, or 2001:db8:net6::last. */
static void
doc_addr(uint8_t family, uint8_t a[16], uint32_t net4, uint16_t net6, uint8_t last)
{
	memset(a, 0, 16);
	if (family == 4) {
		rte_be32_t v = rte_cpu_to_be_32(net4 | last);

		memcpy(a, &v, 4);
		return;
	}
	a[0] = 0x20;
	a[1] = 0x01;
	a[2] = 0x0d;
	a[3] = 0xb8;
	a[4] = (uint8_t)(net6 >> 8);
	a[5] = (uint8_t)net6;
	a[15] = last;
}

void
bench_flow_of(uint32_t i, uint32_t services, uint8_t family, struct bench_flow *f)
{
	uint32_t s = i % services;

	doc_addr(family, f->client, 0xc6336400u, 0xc, (uint8_t)(1 + i / CLIENT_PORTS));
	f->sport = rte_cpu_to_be_16((uint16_t)(1024 + i % CLIENT_PORTS));
	doc_addr(family, f->vip, 0xc0000200u, 0xa, (uint8_t)(1 + s / 400));
	f->dport = rte_cpu_to_be_16((uint16_t)(1024 + s % 400));
}

void
bench_backend_of(uint32_t b, uint8_t family, uint8_t addr[16], uint16_t *port)
{
	doc_addr(family, addr, 0xcb007100u, 0xf, (uint8_t)(10 + b % 240));
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

	if (g->conf.queues == 1)
		return 0;
	bench_flow_of(i, g->conf.services, g->conf.family, &f);
	return sg_dp_flow_owner(g->conf.ctx, g->conf.family, f.client, f.sport);
}

struct bench_gen *
bench_gen_create(const struct bench_gen_conf *conf)
{
	struct bench_gen *g;

	if (conf == NULL || conf->queues == 0 || conf->queues > SG_DP_MAX_WORKERS ||
	    conf->services == 0 || (conf->family != 4 && conf->family != 6)) {
		errno = EINVAL;
		return NULL;
	}
	g = rte_zmalloc("bench_gen", sizeof(*g), RTE_CACHE_LINE_SIZE);
	if (g == NULL) {
		errno = ENOMEM;
		return NULL;
	}
	g->conf = *conf;
	g->frame_len = conf->family == 4 ? FRAME_LEN_V4 : FRAME_LEN_V6;
	g->stride = RTE_ALIGN_CEIL(g->frame_len, RTE_CACHE_LINE_SIZE);
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

/* Flow i's frame with tcp_flags, g->frame_len bytes at p. */
static void
frame_write(const struct bench_gen *g, uint8_t *p, uint32_t i, uint8_t tcp_flags)
{
	struct bench_flow f;
	struct bench_frame fr = {
		.family = g->conf.family,
		.proto = IPPROTO_TCP,
		.tcp_flags = tcp_flags,
		.tcp_seq = 1,
		.tcp_ack = tcp_flags & RTE_TCP_ACK_FLAG ? 1 : 0,
	};

	bench_flow_of(i, g->conf.services, g->conf.family, &f);
	memcpy(fr.dst_mac, g->conf.dst_mac.addr_bytes, 6);
	memcpy(fr.src_mac, g->src_mac.addr_bytes, 6);
	fr.src = f.client;
	fr.dst = f.vip;
	fr.sport = f.sport;
	fr.dport = f.dport;
	/* Cannot fail: the sizes are fixed and the buffer is frame_len long. */
	(void)bench_frame_write(p, g->frame_len, &fr);
}

static inline void
mbuf_done(const struct bench_gen *g, struct rte_mbuf *m)
{
	m->data_len = (uint16_t)g->frame_len;
	m->pkt_len = g->frame_len;
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
	rte_memcpy(rte_pktmbuf_mtod(m, uint8_t *), g->acks + (size_t)i * g->stride, g->frame_len);
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
	g->acks = rte_malloc("bench_acks", (size_t)g->stride * (n ? n : 1), RTE_CACHE_LINE_SIZE);
	if (g->acks == NULL)
		return -ENOMEM;
	for (uint32_t i = 0; i < n; i++)
		frame_write(g, g->acks + (size_t)i * g->stride, i, RTE_TCP_ACK_FLAG);
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
