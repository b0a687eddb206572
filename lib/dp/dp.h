/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The worker's packet pipeline: what a worker lcore does with every packet,
 * from rx burst to tx burst. The daemon (app/svcgw) and the benchmark
 * (svcgw-bench) both run this code, so what is measured is what forwards.
 *
 * One sg_dp_worker per worker lcore owns its rx/tx queues (queue index =
 * worker index on every port), its flow table and its counters. Everything
 * shared is in sg_dp_ctx: set up by the control thread before the workers
 * start and read-only afterwards, except the contents of the service,
 * address and neighbour tables, which change under RCU.
 *
 * Every packet of a flow must reach the one worker that owns the flow (no
 * shared flow table, no lock). A flow belongs to the worker its client's
 * address and port hash to (sg_dp_flow_owner()): client packets carry them
 * as their source, replies in dnat mode as their destination. NAT replies carry the
 * SNAT address instead, so each worker takes SNAT source ports p with
 * p % n_workers == its index and the owner of a reply is its destination
 * port modulo n_workers. A packet that reaches another worker is handed to
 * its owner's ring, one burst per owner.
 *
 * Not here: EAL, port and lcore setup, the control thread (app/svcgw);
 * header parsing and rewriting (lib/pkt); the tables (lib/svc, lib/flow,
 * lib/neigh).
 */
#ifndef SG_DP_H
#define SG_DP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <rte_common.h>
#include <rte_ether.h>

#include "sg_common.h"
#include "flow.h"
#include "neigh.h"
#include "dp_stats.h"

struct rte_mbuf;
struct rte_ring;
struct rte_rcu_qsbr;
struct sg_svc_table;
struct sg_svc_cache_stats;

#define SG_DP_MAX_PORTS 8
#define SG_DP_MAX_WORKERS 64
#define SG_DP_MAX_SNAT 8

/* Port roles. */
#define SG_DP_ROLE_EXTERNAL 0x01 /* clients are behind it */
#define SG_DP_ROLE_INTERNAL 0x02 /* pods are behind it */

/* A port as the workers see it. Addresses in network order. */
struct sg_dp_port {
	uint16_t port_id;	/* DPDK port */
	uint8_t roles;		/* SG_DP_ROLE_* */
	uint8_t has6;		/* addr6 and mask6 are set */
	struct rte_ether_addr mac;
	rte_be32_t addr4;	/* the port's own IPv4 address */
	rte_be32_t mask4;	/* its prefix as a mask */
	rte_be32_t gw4;		/* default router, 0 if none */
	uint16_t mtu;		/* of IP datagrams */
	uint8_t addr6[16];	/* the port's own IPv6 address */
	uint8_t mask6[16];	/* its prefix as a mask */
	uint8_t gw6[16];	/* IPv6 default router, all zero if none */
};

/* SNAT source addresses; immutable once published in sg_dp_ctx.snat. */
struct sg_dp_snat {
	uint8_t n4;
	uint8_t n6;
	rte_be32_t addr4[SG_DP_MAX_SNAT];
	uint8_t addr6[SG_DP_MAX_SNAT][16];
};

/* Shared by all workers; read-only once they run. */
struct sg_dp_ctx {
	struct sg_dp_port ports[SG_DP_MAX_PORTS];
	uint8_t n_ports;
	/* DPDK port id -> index in ports[], or UINT8_MAX */
	uint8_t port_index[RTE_MAX_ETHPORTS];
	uint16_t n_workers;
	struct sg_svc_table *svc;
	struct sg_neigh_table *neigh;
	struct rte_rcu_qsbr *qsbr;
	/* SNAT source addresses: a reload may change them, so they are
	 * swapped whole under RCU like the tables (see struct sg_dp_snat). */
	const struct sg_dp_snat *_Atomic snat;
	/* The SNAT source port range the workers share. */
	uint16_t snat_port_min;
	uint16_t snat_port_max;
	/* UDP destination port of dsr-gue encapsulation, network order. */
	rte_be16_t gue_port;
	/* ClientIP affinity's memory, shared by the workers; NULL: Maglev
	 * on the client's address alone, without a timeout. */
	struct sg_dp_affinity *affinity;
	/* Per worker: packets other workers hand over (MP/SC). */
	struct rte_ring *handoff[SG_DP_MAX_WORKERS];
	/* Per worker: frames the control thread wants sent (SP/SC). */
	struct rte_ring *ctl_tx[SG_DP_MAX_WORKERS];
	/* To the control thread (MP/SC rings of elements): packets waiting
	 * for a neighbour (struct sg_neigh_miss) and what ARP and NDP taught
	 * (struct sg_neigh_learn). */
	struct rte_ring *neigh_miss;
	struct rte_ring *neigh_learn;
};

struct sg_dp_worker_conf {
	uint16_t index;		/* 0 .. n_workers - 1: the queue it owns on every port */
	unsigned int qsbr_id;	/* its thread id on ctx->qsbr */
	int socket_id;
	struct sg_flow_conf flows;
	/*
	 * IPv4 datagrams being reassembled at once, at most; 0 drops every
	 * fragment. Each holds up to RTE_LIBRTE_IP_FRAG_MAX_FRAG receive
	 * mbufs until it is complete or frag_timeout_ms have passed.
	 */
	uint32_t frag_max;
	uint32_t frag_timeout_ms;
};

struct sg_dp_affinity;

/*
 * The table of sessionAffinity: ClientIP (ctx->affinity): which backend
 * each client of an affinity service was last sent to, for the service's
 * timeout. slots: a power of two, 8 bytes each; a client shares a slot
 * with others once there are about as many clients as slots. Control
 * thread. Returns NULL with errno EINVAL or ENOMEM.
 */
struct sg_dp_affinity *sg_dp_affinity_create(uint32_t slots, int socket_id);
/* After the workers stopped; NULL is harmless. */
void sg_dp_affinity_free(struct sg_dp_affinity *a);

struct sg_dp_worker;

/*
 * Create worker state, its flow table included. Control thread, before the
 * worker runs. Returns NULL with errno: EINVAL (bad argument), ENOMEM, or
 * what sg_flow_table_create() set.
 */
struct sg_dp_worker *sg_dp_worker_create(const struct sg_dp_ctx *ctx,
					 const struct sg_dp_worker_conf *conf);

/* Free worker state, frames still buffered included; NULL is harmless. */
void sg_dp_worker_free(struct sg_dp_worker *w);

/*
 * One turn of the worker loop: receive a burst on every port and from the
 * handoff and control rings, process, transmit, sweep some expired flows,
 * report a quiescent state. now_ms is the worker's clock for this turn.
 * Returns the number of packets received.
 */
unsigned int sg_dp_worker_poll(struct sg_dp_worker *w, uint64_t now_ms);

/*
 * Process n (<= SG_MAX_BURST) received packets as the poll loop does (each
 * mbuf's `port` says where it came in) and queue what leaves for
 * transmission; the next sg_dp_worker_flush() sends it. The benchmark feeds
 * its bursts through here.
 */
void sg_dp_worker_process(struct sg_dp_worker *w, struct rte_mbuf **pkts, unsigned int n,
			  uint64_t now_ms);

/* Transmit what is queued; what the port refuses is freed and counted. */
void sg_dp_worker_flush(struct sg_dp_worker *w);

/* Counters of a worker, live, plain fields (see dp_stats.h). */
const struct sg_dp_stats *sg_dp_worker_stats(const struct sg_dp_worker *w);

/* What its ARP and NDP handling counted (lib/neigh's counters). */
const struct sg_neigh_rx_stats *sg_dp_worker_neigh_stats(const struct sg_dp_worker *w);

/* What its cache of new flows' service lookups counted (lib/svc). */
const struct sg_svc_cache_stats *sg_dp_worker_svc_cache_stats(const struct sg_dp_worker *w);

/* Its flow table, for counts and for samples taken on the worker (below). */
const struct sg_flow_table *sg_dp_worker_flows(const struct sg_dp_worker *w);

/*
 * A bounded sample of a worker's flows for telemetry. The table belongs to
 * the worker, so the control side asks (sg_dp_sample_request) and the
 * worker fills the sample between two bursts; the asker polls
 * sg_dp_sample_ready, reads it, and may ask again.
 */
#define SG_DP_SAMPLE_MAX 64

struct sg_dp_flow_sample {
	struct sg_flow_key fwd;	  /* the client's tuple */
	struct sg_flow_key rev;	  /* the backend's reply tuple (NAT, DNAT) */
	uint32_t service_id;
	uint32_t age_ms;
	uint8_t state;
	uint8_t has_rev;
};

struct sg_dp_sample {
	atomic_uint state;	  /* 0 idle, 1 asked, 2 ready */
	uint32_t want;
	uint32_t n;
	struct sg_dp_flow_sample flows[SG_DP_SAMPLE_MAX];
};

/* Ask for a sample of up to want flows; false while an earlier one is pending. */
bool sg_dp_sample_request(struct sg_dp_worker *w, uint32_t want);
/* The sample once the worker filled it, else NULL. */
const struct sg_dp_sample *sg_dp_sample_ready(struct sg_dp_worker *w);
void sg_dp_sample_release(struct sg_dp_worker *w);

/*
 * The worker that owns the flow of a client's address and port: CRC32c of
 * the address (family 4 or 6, 4 or 16 bytes) seeded with the port (network
 * order), modulo the number of workers.
 */
uint16_t sg_dp_flow_owner(const struct sg_dp_ctx *ctx, uint8_t family, const void *client,
			  rte_be16_t port);

/*
 * The port index and next hop for a destination of family 4 or 6: on-link
 * if inside a port's prefix (ports with `prefer` roles first), else a
 * port's default router of that family. Returns the port index, or -1 when
 * no port reaches it.
 */
int sg_dp_route(const struct sg_dp_ctx *ctx, uint8_t family, const void *dst, uint8_t prefer,
		union sg_pkt_addr *next_hop);

#endif /* SG_DP_H */
