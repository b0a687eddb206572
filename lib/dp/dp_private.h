/* SPDX-License-Identifier: BSD-3-Clause */
/* lib/dp internals shared by its files; nothing here is exported. */
#ifndef SG_DP_PRIVATE_H
#define SG_DP_PRIVATE_H

#include <stdbool.h>
#include <stdint.h>

#include <rte_common.h>
#include <rte_ether.h>

#include "sg_common.h"
#include "pkt.h"
#include "dp.h"

/* Frames queued per port before a transmit burst is forced. */
#define DP_TXQ_LEN (2 * SG_MAX_BURST)
/*
 * The sweep for expired flows runs once per millisecond, not per poll turn:
 * at millions of packets a second a per-turn sweep costs more than the
 * flows it finds. Its budget covers the whole table twice within the
 * shortest timeout, and never less than DP_SWEEP_MIN entries.
 */
#define DP_SWEEP_MIN 64
/* SNAT ports tried for one new flow before giving up. */
#define DP_SNAT_TRIES 16
/*
 * RSTs and ICMP errors a worker sends, per second and at once: RFC 1812
 * §4.3.2.8 and RFC 4443 §2.4 (f) ask for a limit, so that refusing a flood
 * does not become one.
 */
#define DP_REPLY_RATE 1000
#define DP_REPLY_BURST 100

/*
 * The worker's memory of where a destination goes: its egress port and the
 * next hop's MAC, valid while lib/neigh's generation stays what it was when
 * the entry was made. Routes never change while svcgw runs; neighbours do,
 * and each change moves the generation on. Saves the route and the
 * neighbour hash lookup for nearly every packet.
 */
#define DP_NH_CACHE 256	/* entries, a power of two */

struct dp_nh_entry {
	uint64_t gen;
	rte_be32_t dst;
	uint8_t prefer;	/* the role asked for: part of the key */
	uint8_t port;
	struct rte_ether_addr mac;
};

struct dp_txq {
	uint16_t n;
	struct rte_mbuf *pkts[DP_TXQ_LEN];
};

/* Packets of one burst for another worker, enqueued together at its end. */
struct dp_handoff {
	uint16_t n;
	struct rte_mbuf *pkts[SG_MAX_BURST];
};

struct sg_dp_worker {
	const struct sg_dp_ctx *ctx;
	struct sg_flow_table *flows;
	uint16_t index;
	uint16_t n_workers;
	unsigned int qsbr_id;
	uint32_t snat_next;	/* next SNAT port to try; ≡ index mod n_workers */
	uint32_t sweep_budget;	/* flows visited per sweep */
	uint64_t sweep_last_ms;
	const struct sg_dp_snat *snat; /* this burst's SNAT addresses */
	uint64_t nh_gen;	/* lib/neigh's generation at the start of this burst */
	/* Local replies' token bucket: tokens and when it was last filled. */
	uint32_t reply_tokens;
	uint64_t reply_last_ms;
	struct dp_txq txq[SG_DP_MAX_PORTS];
	struct dp_nh_entry nh_cache[DP_NH_CACHE];
	struct dp_handoff handoff[SG_DP_MAX_WORKERS];
	struct sg_dp_stats stats;
	struct sg_neigh_rx_stats neigh_rx;
	struct sg_dp_sample sample;
} __rte_cache_aligned;

#define DP_COUNT(w, name) ((w)->stats.c[SG_DP_C_##name]++)

/*
 * dp_reply.c: local answers built in the received mbuf, to the MAC the
 * packet came from, from port_mac.
 */
int sg_dp_reply_echo(struct rte_mbuf *m, const struct sg_pkt_info *pi,
		     const struct rte_ether_addr *port_mac);
int sg_dp_reply_tcp_rst(struct rte_mbuf *m, const struct sg_pkt_info *pi,
			const struct rte_ether_addr *port_mac);
int sg_dp_reply_port_unreach(struct rte_mbuf *m, const struct sg_pkt_info *pi,
			     const struct rte_ether_addr *port_mac);

/*
 * dp_neigh.c: the address tables as the worker needs them. ARP and NDP
 * frames are answered or passed to the control thread there; IPv6 has no
 * forwarding path yet, only neighbour discovery and echo.
 */
void dp_neigh_input(struct sg_dp_worker *w, struct rte_mbuf *m, const struct sg_pkt_info *pi,
		    uint8_t in_port);
void dp_ip6_input(struct sg_dp_worker *w, struct rte_mbuf *m, const struct sg_pkt_info *pi,
		  uint8_t in_port);
/* Whether addr is ours on port in_port (port, node, VIP or SNAT address). */
bool dp_is_owned4(const struct sg_dp_worker *w, uint8_t in_port, rte_be32_t addr);
/* Whether addr, received on in_port, is a node address NodePorts are served on. */
bool dp_is_node_addr4(const struct sg_dp_worker *w, uint8_t in_port, rte_be32_t addr);
/*
 * The MAC of next hop nh on port index `port`: 0, -ENOENT when not known
 * yet (the control thread resolves it), -EHOSTUNREACH when resolution
 * failed lately.
 */
int dp_neigh_mac4(const struct sg_dp_worker *w, uint8_t port, rte_be32_t nh,
		  struct rte_ether_addr *mac);

/* dp_worker.c: queue a finished frame on port index `port`. */
void dp_tx(struct sg_dp_worker *w, uint8_t port, struct rte_mbuf *m);

#endif /* SG_DP_PRIVATE_H */
