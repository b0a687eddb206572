/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * lib/dp internals shared by its files; nothing here is exported.
 *
 *   dp_worker.c    the poll loop, classification, flow lookups, dispatch
 *   dp_modes.c     new flows and translation per forwarding mode
 *   dp_affinity.c  sessionAffinity: which backend each client was sent to
 *   dp_egress.c    routes, the next-hop cache, transmit queues
 *   dp_frag.c      IPv4 reassembly, and fragmentation on the way out
 *   dp_reply.c     answers built in the received mbuf (echo, RST, ICMP errors)
 *   dp_neigh.c     ARP and NDP, owned addresses, next-hop MACs
 */
#ifndef SG_DP_PRIVATE_H
#define SG_DP_PRIVATE_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <rte_common.h>
#include <rte_ether.h>
#include <rte_ip_frag.h>
#include <rte_mbuf.h>

#include "sg_common.h"
#include "pkt.h"
#include "svc.h"
#include "dp.h"

/* Frames queued per port before a transmit burst is forced. */
#define DP_TXQ_LEN (2 * SG_MAX_BURST)
/*
 * The sweep for expired flows runs once per millisecond, not per poll turn:
 * at millions of packets a second a per-turn sweep costs more than the
 * flows it finds. Its budget covers the flows in the table twice within
 * the shortest timeout, and never less than DP_SWEEP_MIN entries.
 */
#define DP_SWEEP_MIN 64
/*
 * How many new flows of a burst ahead of the one being created have their
 * reverse key's index bucket fetched (DP_NEW_AHEAD), and have that bucket
 * checked for a taken SNAT port (DP_NEW_PROBE, after the fetch has had
 * time to land): a flow's creation takes long enough to cover a DRAM
 * access.
 */
#define DP_NEW_AHEAD 2
#define DP_NEW_PROBE 1
/* SNAT ports tried for one new flow before giving up. */
#define DP_SNAT_TRIES 16
/*
 * SNAT cursors of a worker (a power of two). Each pod, by a hash of its
 * address and port, takes the (SNAT address, port) pairs in turn from a
 * cursor of its own, so a pair comes back to a pod only after all of them
 * did: with one cursor for every pod, a pod with many flows met its own
 * live reply tuples long before it had used the pairs up. Pods that share
 * a cursor only take turns on it.
 */
#define DP_SNAT_CURSORS 256

/* A SNAT address (an index into this burst's list) and port, host order. */
struct dp_snat_cursor {
	uint16_t port;
	uint16_t addr;
};
/*
 * RSTs and ICMP errors a worker sends, per second and at once: RFC 1812
 * §4.3.2.8 and RFC 4443 §2.4 (f) ask for a limit, so that refusing a flood
 * does not become one.
 */
#define DP_REPLY_RATE 1000
#define DP_REPLY_BURST 100
/* TTL / hop limit of the outer header of DSR encapsulation. */
#define DP_ENCAP_TTL 64

/*
 * The worker's memory of where a destination goes: its egress port and the
 * next hop's MAC, valid while lib/neigh's generation stays what it was when
 * the entry was made. Routes never change while svcgw runs; neighbours do,
 * and each change moves the generation on. Saves the route and the
 * neighbour hash lookup for nearly every packet, and for DSR the outer
 * header's preparation (dp_encap_prepare()).
 */
#define DP_NH_CACHE 256	/* entries, a power of two */

struct dp_nh_entry {
	uint64_t gen;
	/*
	 * DSR's outer header from the port's address to the destination. Its
	 * family and dst are the entry's key as well: kept once, so that an
	 * entry fits a cache line.
	 */
	struct sg_pkt_encap_hdr encap;
	uint8_t prefer;	/* the role asked for: part of the key */
	uint8_t port;
	bool encap_ok;	/* encap is prepared: the port has an address of the family */
	struct rte_ether_addr mac;
} __rte_cache_aligned;

_Static_assert(sizeof(struct dp_nh_entry) == RTE_CACHE_LINE_SIZE,
	       "a next-hop cache entry is one cache line");

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
	struct sg_svc_cache *svc_cache;	/* this worker's new flows' service lookups */
	uint16_t index;
	uint16_t n_workers;
	unsigned int qsbr_id;
	/* The next SNAT address and port for pods, by a hash of the pod (dp_modes.c). */
	struct dp_snat_cursor snat_cur[DP_SNAT_CURSORS];
	uint32_t sweep_shortest_ms; /* the table's shortest timeout, which paces the sweep */
	uint64_t sweep_last_ms;
	const struct sg_dp_snat *snat; /* this burst's SNAT addresses */
	uint64_t nh_gen;	/* lib/neigh's generation at the start of this burst */
	uint16_t svc_epoch;	/* sg_svc_serving_epoch() then, as flows keep it */
	/* The smallest MTU toward the pods ([SG_FLOW_DIR_FWD]) and the clients. */
	uint16_t mtu_out[2];
	/* Local replies' token bucket: tokens and when it was last filled. */
	uint32_t reply_tokens;
	uint64_t reply_last_ms;
	struct dp_txq txq[SG_DP_MAX_PORTS];
	struct dp_nh_entry nh_cache[DP_NH_CACHE];
	struct dp_handoff handoff[SG_DP_MAX_WORKERS];
	/* dp_frag.c: reassembly (frag_tbl NULL when off) and its pools. */
	struct rte_ip_frag_tbl *frag_tbl;
	struct rte_mempool *frag_linear_pool;
	struct rte_mempool *frag_out_pool;
	struct rte_ip_frag_death_row frag_dr;
	struct sg_dp_stats stats;
	struct sg_neigh_rx_stats neigh_rx;
	struct sg_dp_sample sample;
} __rte_cache_aligned;

#define DP_COUNT(w, name) ((w)->stats.c[SG_DP_C_##name]++)

static inline uint8_t *
dp_frame(struct rte_mbuf *m)
{
	return rte_pktmbuf_mtod(m, uint8_t *);
}

static inline void
dp_drop(struct sg_dp_worker *w, struct rte_mbuf *m, enum sg_dp_counter c)
{
	w->stats.c[c]++;
	rte_pktmbuf_free(m);
}

/* The port a packet came in on (mbuf->port is the DPDK port id). */
static inline uint8_t
dp_in_port(const struct sg_dp_worker *w, const struct rte_mbuf *m)
{
	return w->ctx->port_index[m->port];
}

/* Address bytes of a family: 4 or 16. */
static inline uint32_t
dp_addr_len(uint8_t family)
{
	return family == 6 ? 16 : 4;
}

/* Source and destination addresses of the IP header pi describes. */
static inline const uint8_t *
dp_ip_src(struct rte_mbuf *m, const struct sg_pkt_info *pi)
{
	return dp_frame(m) + pi->l3_off + (pi->l3 == SG_PKT_L3_IPV4 ? 12 : 8);
}

static inline const uint8_t *
dp_ip_dst(struct rte_mbuf *m, const struct sg_pkt_info *pi)
{
	return dp_frame(m) + pi->l3_off + (pi->l3 == SG_PKT_L3_IPV4 ? 16 : 24);
}

static inline uint8_t
dp_family(const struct sg_pkt_info *pi)
{
	return pi->l3 == SG_PKT_L3_IPV4 ? 4 : 6;
}

/* dp_worker.c: the flow hash Maglev places new flows with. */
uint32_t dp_flow_hash(const struct sg_flow_key *k);

/* dp_modes.c: per-worker state of the modes (the SNAT cursors). */
void dp_modes_init(struct sg_dp_worker *w);
/* dp_modes.c: a new flow of service e for the packet (misses only), or stateless. */
void dp_flow_new(struct sg_dp_worker *w, struct rte_mbuf *m, const struct sg_pkt_info *pi,
		 const struct sg_flow_key *key, const struct sg_svc_entry *e, bool via_any,
		 uint64_t now);

/*
 * A new flow of the burst as worked out ahead of its creation, in stages,
 * so that what the creation reads (the Maglev entry, the reverse key's
 * index bucket) is fetched while earlier flows are created.
 */
struct dp_new_plan {
	const struct sg_flow_key *key;
	const struct sg_svc_entry *e;
	const struct sg_svc_backend *be;	/* a NAT flow's pod, once rev is ready */
	struct sg_flow_key rev;	/* the reverse key the insert takes, once ready */
	uint32_t hash;		/* placement hash */
	bool nat;		/* will take a SNAT port */
	bool known;		/* the backend is Maglev's, known ahead */
	bool rev_ready;		/* rev worked out (a NAT flow's SNAT port taken), fetched */
	bool refused;		/* beyond the burst's room: refused before any work */
	enum sg_dp_counter refusal;	/* if refused, its drop counter in nat and dnat */
};

/* The new flows of a burst, in the order they are created. */
struct dp_new_burst {
	struct dp_new_plan plan[SG_MAX_BURST];
	unsigned int n;		/* planned */
	unsigned int inserts;	/* of which would be inserted, refused ones included */
	uint32_t room;		/* new flows the table takes: free entries, rate limit */
	enum sg_dp_counter refusal;	/* the drop counter of refused nat and dnat flows */
	unsigned int ahead;	/* of which with their reverse key fetched */
	unsigned int probed;	/* of which with their bucket checked */
	unsigned int next;	/* the next to create */
};

static inline void
dp_new_init(struct dp_new_burst *nb)
{
	nb->n = nb->inserts = nb->ahead = nb->probed = nb->next = 0;
}

/*
 * dp_modes.c: plan a new flow of service e for the packet, after those
 * planned before it; every new flow of the burst is planned before the
 * first is created.
 */
void dp_new_add(struct sg_dp_worker *w, struct dp_new_burst *nb, struct rte_mbuf *m,
		const struct sg_pkt_info *pi, const struct sg_flow_key *key,
		const struct sg_svc_entry *e, uint64_t now);
/*
 * dp_modes.c: dp_flow_new() of the next planned flow (key is that plan's;
 * any other packet is taken unplanned), working ahead on the ones after it.
 */
void dp_new_create(struct sg_dp_worker *w, struct dp_new_burst *nb, struct rte_mbuf *m,
		   const struct sg_pkt_info *pi, const struct sg_flow_key *key,
		   const struct sg_svc_entry *e, bool via_any, uint64_t now);
/* dp_modes.c: a packet of a known flow, in direction dir, on its way. */
void dp_forward(struct sg_dp_worker *w, struct rte_mbuf *m, const struct sg_pkt_info *pi,
		struct sg_flow *f, unsigned int dir, uint64_t now);
/*
 * dp_modes.c: a client's packet of a flow made under another serving epoch
 * (sg_svc_serving_epoch()): a UDP flow whose backend stopped serving is
 * replaced by a new one, any other goes on as dp_forward().
 */
void dp_forward_recheck(struct sg_dp_worker *w, struct rte_mbuf *m, const struct sg_pkt_info *pi,
			const struct sg_flow_key *key, struct sg_flow *f, uint64_t now);
/*
 * dp_modes.c: an ICMP error quoting a packet of flow f, which it follows in
 * direction dir: translated like the flow's packets (outer and quoted
 * headers) or, for DSR, sent to the backend unchanged.
 */
void dp_icmp_error_forward(struct sg_dp_worker *w, struct rte_mbuf *m,
			   const struct sg_pkt_info *pi, struct sg_flow *f, unsigned int dir,
			   uint64_t now);
/*
 * dp_modes.c: an ICMP error about no known flow, key its flow's, e the
 * service its destination names (or NULL): a DSR service's goes to the
 * backend Maglev gives the flow, anything else is dropped.
 */
void dp_icmp_error_stateless(struct sg_dp_worker *w, struct rte_mbuf *m,
			     const struct sg_pkt_info *pi, const struct sg_flow_key *key,
			     const struct sg_svc_entry *e, uint64_t now);
/*
 * dp_affinity.c: the backend for a new flow of affinity service e from
 * client, Maglev having placed it on backend `placed` (usable): the one
 * the client was last sent to if it is still usable and the client's
 * last new flow is within the timeout. Remembers the answer.
 */
uint16_t dp_affinity_pick(struct sg_dp_affinity *a, const struct sg_svc_entry *e,
			  uint8_t family, const void *client, uint16_t placed, uint64_t now_ms);
/* dp_modes.c: SNAT addresses of this burst. */
bool dp_is_snat(const struct sg_dp_snat *sn, uint8_t family, const void *addr);

/* dp_frag.c: reassembly table and pools of the worker (sg_dp_worker_create()). */
int dp_frag_init(struct sg_dp_worker *w, const struct sg_dp_worker_conf *conf);
void dp_frag_free(struct sg_dp_worker *w);
/* dp_frag.c: drop datagrams left incomplete too long (once a millisecond). */
void dp_frag_expire(struct sg_dp_worker *w);
/* dp_frag.c: free what the reassembly refused or replaced (once a burst). */
void dp_frag_flush(struct sg_dp_worker *w);
/*
 * dp_frag.c: take an IPv4 fragment pi describes. Returns the whole
 * datagram, one linear packet with *pi its parse, once its last fragment
 * is in; else NULL (the fragment is kept, or dropped and counted).
 */
struct rte_mbuf *dp_frag_reassemble(struct sg_dp_worker *w, struct rte_mbuf *m,
				    struct sg_pkt_info *pi);
/*
 * dp_frag.c: cut the IPv4 packet in m (one segment, Ethernet header of
 * l3_off bytes) into fragments of at most mtu bytes of IP, each behind a
 * copy of the Ethernet header, in out[0..n_out). m is consumed. Returns
 * how many, or a negative errno with the packet dropped and counted.
 */
int dp_fragment4(struct sg_dp_worker *w, struct rte_mbuf *m, uint32_t l3_off, uint32_t mtu,
		 struct rte_mbuf **out, unsigned int n_out);
/* dp_frag.c: most fragments dp_fragment4() makes of one packet. */
#define DP_FRAG_OUT_MAX 128

/* dp_egress.c: w->mtu_out from the ports, once a burst. */
void dp_egress_mtus(struct sg_dp_worker *w);
/* dp_egress.c: send port's queued frames now. */
void dp_txq_flush(struct sg_dp_worker *w, uint8_t port);
/* dp_egress.c: dp_tx_fit() of a frame above the MTU. */
void dp_tx_too_big(struct sg_dp_worker *w, uint8_t port, struct rte_mbuf *m);

/* Queue a frame on a port; a full queue is sent at once. */
static inline void
dp_tx(struct sg_dp_worker *w, uint8_t port, struct rte_mbuf *m)
{
	struct dp_txq *q = &w->txq[port];

	q->pkts[q->n++] = m;
	if (sg_unlikely(q->n == DP_TXQ_LEN))
		dp_txq_flush(w, port);
}

/*
 * dp_tx() of a frame that may exceed the port's MTU: an IPv4 packet
 * without DF is fragmented, anything else too big dropped and counted.
 */
static inline void
dp_tx_fit(struct sg_dp_worker *w, uint8_t port, struct rte_mbuf *m)
{
	if (sg_likely(rte_pktmbuf_pkt_len(m) <= RTE_ETHER_HDR_LEN + (uint32_t)w->ctx->ports[port].mtu))
		dp_tx(w, port, m);
	else
		dp_tx_too_big(w, port, m);
}

/* The next-hop cache's slot for dst: Fibonacci hashing of the address' last word. */
static inline struct dp_nh_entry *
dp_nh_slot(struct sg_dp_worker *w, uint8_t family, const void *dst)
{
	uint32_t word;

	memcpy(&word, (const uint8_t *)dst + (family == 6 ? 12 : 0), 4);
	return &w->nh_cache[(rte_be_to_cpu_32(word) * 2654435761u) >>
			    (32 - __builtin_ctz(DP_NH_CACHE))];
}

static inline bool
dp_nh_hit(const struct sg_dp_worker *w, const struct dp_nh_entry *e, uint8_t family,
	  const void *dst, uint8_t prefer)
{
	if (e->gen != w->nh_gen || e->encap.family != family || e->prefer != prefer)
		return false;
	if (family == 4) {
		uint32_t a;

		memcpy(&a, dst, 4);
		return a == e->encap.dst.a32[0];
	}
	return memcmp(e->encap.dst.a8, dst, 16) == 0;
}

/* dp_egress() of a packet whose next hop e of the cache holds. */
static inline void
dp_egress_hit(struct sg_dp_worker *w, struct rte_mbuf *m, const struct dp_nh_entry *e)
{
	sg_pkt_eth_set_macs(dp_frame(m), e->mac.addr_bytes, w->ctx->ports[e->port].mac.addr_bytes);
	dp_tx_fit(w, e->port, m);
}

/*
 * dp_egress.c: DSR's outer header from port to dst of family into h, the
 * type left to each packet. Returns false, h untouched, if the port has no
 * address of the family to send it from.
 */
bool dp_encap_prepare(const struct sg_dp_ctx *ctx, uint8_t port, uint8_t family, const void *dst,
		      struct sg_pkt_encap_hdr *h);

/* dp_egress.c: dp_egress() of a packet whose next hop is not in slot e of the cache. */
void dp_egress_miss(struct sg_dp_worker *w, struct rte_mbuf *m, uint8_t family,
		    const void *dst, uint8_t prefer, struct dp_nh_entry *e);

/*
 * Send the IP packet in m (its Ethernet header in place) toward dst of
 * family: egress port and next hop by route and the next-hop cache, MACs
 * written. Without a MAC yet the packet waits at the control thread.
 */
static inline void
dp_egress(struct sg_dp_worker *w, struct rte_mbuf *m, uint8_t family, const void *dst,
	  uint8_t prefer)
{
	struct dp_nh_entry *e = dp_nh_slot(w, family, dst);

	if (sg_likely(dp_nh_hit(w, e, family, dst, prefer))) {
		dp_egress_hit(w, m, e);
		return;
	}
	dp_egress_miss(w, m, family, dst, prefer, e);
}

/*
 * As dp_egress() for dsr-l2: the packet goes to dst's own MAC on the port
 * whose prefix holds dst, unchanged; dst off-link is dropped and counted.
 */
void dp_egress_l2(struct sg_dp_worker *w, struct rte_mbuf *m, uint8_t family, const void *dst);

/* Whether a router may forward the packet: its TTL or hop limit is above 1 (RFC 1812 §5.3.1). */
static inline bool
dp_hop_left(struct rte_mbuf *m, const struct sg_pkt_info *pi)
{
	return dp_frame(m)[pi->l3_off + (pi->l3 == SG_PKT_L3_IPV6 ? 7 : 8)] > 1;
}

/*
 * Cut a one-segment frame (classify() linearises the others) to its IP
 * datagram's end, dropping Ethernet padding: rte_pktmbuf_trim() would walk
 * the segments, reading a second line of the mbuf for nothing.
 */
static inline void
dp_trim_padding(struct rte_mbuf *m, const struct sg_pkt_info *pi)
{
	RTE_ASSERT(m->nb_segs == 1 && m->data_len >= pi->ip_end);
	m->data_len = (uint16_t)pi->ip_end;
	m->pkt_len = pi->ip_end;
}

/* Decrement the TTL or hop limit as a router (RFC 1812 §5.3.1); false: it ran out. */
static inline bool
dp_hop(struct rte_mbuf *m, const struct sg_pkt_info *pi)
{
	uint8_t *l3 = dp_frame(m) + pi->l3_off;
	uint16_t old, new, csum;

	if (sg_unlikely(!dp_hop_left(m, pi)))
		return false;
	if (pi->l3 == SG_PKT_L3_IPV6) {
		l3[7]--;
		return true;
	}
	memcpy(&old, l3 + 8, 2);	/* TTL and protocol: one 16-bit word */
	l3[8]--;
	memcpy(&new, l3 + 8, 2);
	memcpy(&csum, l3 + 10, 2);
	csum = sg_csum_update16(csum, old, new);	/* RFC 1624 eqn. 3 */
	memcpy(l3 + 10, &csum, 2);
	return true;
}

/* dp_reply.c: local answers built in the received mbuf, back out of its port. */
int sg_dp_reply_echo(struct rte_mbuf *m, const struct sg_pkt_info *pi,
		     const struct rte_ether_addr *port_mac);
int sg_dp_reply_tcp_rst(struct rte_mbuf *m, const struct sg_pkt_info *pi,
			const struct rte_ether_addr *port_mac);
/* ICMP(v6) errors the gateway itself sends about the packet in m. */
enum dp_icmp_error {
	DP_ICMP_PORT_UNREACH,	/* no usable endpoint (kube-proxy's REJECT) */
	DP_ICMP_TOO_BIG,	/* fragmentation needed / packet too big */
};
int sg_dp_reply_icmp_error(struct rte_mbuf *m, const struct sg_pkt_info *pi,
			   const struct rte_ether_addr *port_mac, enum dp_icmp_error kind,
			   uint32_t mtu);
/*
 * Answer the packet with a RST (TCP) or an ICMP error, if the source may be
 * answered and the rate limit allows; else drop it. Counted either way.
 */
void dp_refuse(struct sg_dp_worker *w, struct rte_mbuf *m, const struct sg_pkt_info *pi,
	       enum dp_icmp_error kind, uint32_t mtu, uint64_t now);

/*
 * dp_neigh.c: the address tables as the worker needs them. ARP and NDP
 * frames are answered or passed to the control thread there.
 */
void dp_neigh_input(struct sg_dp_worker *w, struct rte_mbuf *m, const struct sg_pkt_info *pi,
		    uint8_t in_port);
/* lib/neigh's flags (SG_NEIGH_ADDR_*) of addr on port in_port, 0 if not ours. */
uint8_t dp_owned(const struct sg_dp_worker *w, uint8_t in_port, uint8_t family, const void *addr);
/*
 * The MAC of next hop nh on port index `port`: 0, -ENOENT when not known
 * yet (the control thread resolves it), -EHOSTUNREACH when resolution
 * failed lately.
 */
int dp_neigh_mac(const struct sg_dp_worker *w, uint8_t port, uint8_t family, const void *nh,
		 struct rte_ether_addr *mac);

#endif /* SG_DP_PRIVATE_H */
