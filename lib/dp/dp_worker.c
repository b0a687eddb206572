/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The worker loop: receive, classify (parse, answer what is ours, hand a
 * packet to the worker owning its flow), find each packet's flow in bulk,
 * look the misses' services up in bulk, then forward (dp_modes.c) and
 * transmit (dp_egress.c). Also the worker's life: creation, counters,
 * samples for telemetry, the expiry sweep.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include <rte_byteorder.h>
#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_ether.h>
#include <rte_hash_crc.h>
#include <rte_ip.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_prefetch.h>
#include <rte_rcu_qsbr.h>
#include <rte_ring.h>

#include "flow.h"
#include "pkt.h"
#include "svc.h"
#include "dp_private.h"

#define ICMP6_NS 135
#define ICMP6_NA 136

/* What classify() did with a packet. */
enum verdict {
	V_DONE,		/* answered, handed over or dropped: nothing left to do */
	V_FLOW,		/* a TCP/UDP/SCTP packet for the flow table */
};

static const char *const counter_names[] = {
#define SG_DP_NAME(name, help) #name,
	SG_DP_COUNTERS(SG_DP_NAME)
#undef SG_DP_NAME
};

static const char *const counter_help[] = {
#define SG_DP_HELP(name, help) help,
	SG_DP_COUNTERS(SG_DP_HELP)
#undef SG_DP_HELP
};

const char *
sg_dp_counter_name(unsigned int c)
{
	return c < SG_DP_C_COUNT ? counter_names[c] : NULL;
}

const char *
sg_dp_counter_help(unsigned int c)
{
	return c < SG_DP_C_COUNT ? counter_help[c] : NULL;
}

/*
 * The flow's hash for Maglev: CRC32c of the client's tuple, seed 0. Not the
 * NIC's RSS hash: every gateway must compute the same value for a flow, so
 * that ECMP across gateways keeps it on one pod (DESIGN.md, Maglev).
 */
uint32_t
dp_flow_hash(const struct sg_flow_key *k)
{
	return rte_hash_crc(k, sizeof(*k), 0);
}

uint16_t
sg_dp_flow_owner(const struct sg_dp_ctx *ctx, uint8_t family, const void *client,
		 rte_be16_t port)
{
	return (uint16_t)(rte_hash_crc(client, dp_addr_len(family), port) % ctx->n_workers);
}

/* Keep a packet for worker `owner`; sent at the end of the burst (handoff_flush). */
static void
handoff(struct sg_dp_worker *w, struct rte_mbuf *m, uint16_t owner)
{
	struct dp_handoff *h = &w->handoff[owner];

	h->pkts[h->n++] = m;
}

/* One ring enqueue per owner and burst, not one per packet. */
static void
handoff_flush(struct sg_dp_worker *w)
{
	for (uint16_t o = 0; o < w->n_workers; o++) {
		struct dp_handoff *h = &w->handoff[o];
		unsigned int sent;

		if (h->n == 0)
			continue;
		sent = rte_ring_mp_enqueue_burst(w->ctx->handoff[o], (void **)h->pkts, h->n, NULL);
		w->stats.c[SG_DP_C_handoff_out] += sent;
		for (unsigned int i = sent; i < h->n; i++)
			dp_drop(w, h->pkts[i], SG_DP_C_drop_handoff_full);
		h->n = 0;
	}
}

/*
 * The worker owning the flow of key (as it would be looked up): a reply
 * to a SNAT address by its port; otherwise by the client's address and
 * port, which are the source of a client's packet and the destination of a
 * backend's reply. On a one-arm port, only the destination tells the two
 * apart: an address of ours is a client's target.
 */
static uint16_t
owner_of(const struct sg_dp_worker *w, const struct sg_flow_key *key, uint8_t in_port)
{
	uint8_t roles = w->ctx->ports[in_port].roles;
	bool reply;

	if (dp_is_snat(w->snat, key->family, key->dst))
		return rte_be_to_cpu_16(key->dport) % w->n_workers;
	if (roles == SG_DP_ROLE_INTERNAL)
		reply = true;
	else if (roles == SG_DP_ROLE_EXTERNAL)
		reply = false;
	else
		reply = dp_owned(w, in_port, key->family, key->dst) == 0;
	if (reply)
		return sg_dp_flow_owner(w->ctx, key->family, key->dst, key->dport);
	return sg_dp_flow_owner(w->ctx, key->family, key->src, key->sport);
}

/* Ours to look at: to the port's MAC, or broadcast or multicast (ARP, NDP). */
static inline bool
mac_for_us(const struct rte_mbuf *m, const struct sg_dp_port *port)
{
	const struct rte_ether_addr *dst = rte_pktmbuf_mtod(m, const struct rte_ether_addr *);

	return rte_is_multicast_ether_addr(dst) || rte_is_same_ether_addr(dst, &port->mac);
}

/* ICMP and ICMPv6 addressed to us: echo answered, neighbour discovery to lib/neigh. */
static void
icmp_input(struct sg_dp_worker *w, struct rte_mbuf *m, const struct sg_pkt_info *pi,
	   uint8_t in_port)
{
	if (pi->l3 == SG_PKT_L3_IPV6 && (pi->icmp_type == ICMP6_NS || pi->icmp_type == ICMP6_NA)) {
		dp_neigh_input(w, m, pi, in_port);
		return;
	}
	if ((pi->flags & SG_PKT_F_ECHO_REQ) &&
	    dp_owned(w, in_port, dp_family(pi), dp_ip_dst(m, pi)) != 0) {
		sg_dp_reply_echo(m, pi, &w->ctx->ports[in_port].mac);
		DP_COUNT(w, echo_reply);
		dp_tx_fit(w, in_port, m);	/* it may have come in fragments */
		return;
	}
	dp_drop(w, m, SG_DP_C_drop_not_ours);
}

/*
 * An ICMP error travels like a packet of the flow it quotes, in the other
 * direction: its key is the quoted tuple turned around. Errors quoting
 * anything but TCP, UDP or SCTP, or too little of it, are dropped.
 */
static bool
icmp_error_key(struct sg_dp_worker *w, struct rte_mbuf *m, const struct sg_pkt_info *pi,
	       struct sg_flow_key *key)
{
	const uint8_t *frame = dp_frame(m);
	struct sg_pkt_icmp_inner in;
	enum sg_pkt_reason r = sg_pkt_parse_icmp_error(frame, pi, &in);
	uint32_t a = in.l3 == SG_PKT_L3_IPV4 ? 12 : 8, len = dp_addr_len(dp_family(pi));

	if (sg_unlikely(r != SG_PKT_OK)) {
		w->stats.parse[r]++;
		dp_drop(w, m, SG_DP_C_drop_parse);
		return false;
	}
	/* A quoted non-first fragment has no ports to find a flow by. */
	if (!(in.flags & SG_PKT_F_L4)) {
		dp_drop(w, m, SG_DP_C_drop_icmp_unknown);
		return false;
	}
	switch (in.l4_proto) {
	case IPPROTO_TCP:
	case IPPROTO_UDP:
	case IPPROTO_SCTP:
		break;
	default:
		dp_drop(w, m, SG_DP_C_drop_icmp_unknown);
		return false;
	}
	sg_flow_key_init(key, dp_family(pi), in.l4_proto, frame + in.l3_off + a + len,
			 frame + in.l3_off + a, in.dport, in.sport);
	return true;
}

/*
 * The worker that reassembles a fragment: by what all fragments of its
 * datagram share (RFC 791: source, destination, protocol, identification),
 * which the datagram's own flow owner cannot be known from.
 */
static uint16_t
frag_owner(const struct sg_dp_worker *w, struct rte_mbuf *m, const struct sg_pkt_info *pi)
{
	uint64_t addrs;

	/* Copied out: rte_hash_crc() loads whole words, the header is only 2-byte aligned. */
	memcpy(&addrs, dp_frame(m) + pi->l3_off + 12, sizeof(addrs));
	return (uint16_t)(rte_hash_crc(&addrs, sizeof(addrs), pi->frag_id) % w->n_workers);
}

/*
 * A fragment: kept for reassembly (false), or the whole datagram in *mp
 * with *pi its parse (true), to be classified as any packet.
 */
static bool
fragment_input(struct sg_dp_worker *w, struct rte_mbuf **mp, struct sg_pkt_info *pi)
{
	if (w->n_workers > 1 && pi->l3 == SG_PKT_L3_IPV4) {
		uint16_t owner = frag_owner(w, *mp, pi);

		if (owner != w->index) {
			handoff(w, *mp, owner);
			return false;
		}
	}
	*mp = dp_frag_reassemble(w, *mp, pi);
	return *mp != NULL;
}

/*
 * Everything short of the flow table: parse, answer what is ours to answer,
 * reassemble fragments, hand packets to the worker owning their flow, drop
 * the rest. For a packet left for the flow table, *key is its flow's, and
 * *mp may have been replaced (a reassembled datagram).
 */
static enum verdict
classify(struct sg_dp_worker *w, struct rte_mbuf **mp, struct sg_pkt_info *pi,
	 struct sg_flow_key *key)
{
	const struct sg_dp_ctx *ctx = w->ctx;
	struct rte_mbuf *m = *mp;
	uint8_t in_port = dp_in_port(w, m);
	enum sg_pkt_reason r;

	if (sg_unlikely(rte_pktmbuf_data_len(m) < RTE_ETHER_HDR_LEN ||
			!mac_for_us(m, &ctx->ports[in_port]))) {
		dp_drop(w, m, rte_pktmbuf_data_len(m) < RTE_ETHER_HDR_LEN ? SG_DP_C_drop_parse :
									    SG_DP_C_drop_mac);
		return V_DONE;
	}
	if (sg_unlikely(m->nb_segs > 1) && rte_pktmbuf_linearize(m) != 0) {
		dp_drop(w, m, SG_DP_C_drop_multiseg);
		return V_DONE;
	}
	r = sg_pkt_parse_fast(dp_frame(m), rte_pktmbuf_data_len(m), pi);
	if (sg_unlikely(r != SG_PKT_OK)) {
		w->stats.parse[r]++;
		dp_drop(w, m, SG_DP_C_drop_parse);
		return V_DONE;
	}
	if (sg_unlikely(pi->flags & SG_PKT_F_VLAN)) {
		dp_drop(w, m, SG_DP_C_drop_vlan);
		return V_DONE;
	}
	switch (pi->l3) {
	case SG_PKT_L3_IPV4:
	case SG_PKT_L3_IPV6:
		break;
	case SG_PKT_L3_ARP:
		dp_neigh_input(w, m, pi, in_port);
		return V_DONE;
	default:
		dp_drop(w, m, SG_DP_C_drop_not_ip);
		return V_DONE;
	}

	if (sg_unlikely(pi->flags & SG_PKT_F_FRAG)) {
		if (!fragment_input(w, mp, pi))
			return V_DONE;
		m = *mp;
	}
	switch (pi->l4_proto) {
	case IPPROTO_TCP:
	case IPPROTO_UDP:
	case IPPROTO_SCTP:
		sg_flow_key_init(key, dp_family(pi), pi->l4_proto, dp_ip_src(m, pi),
				 dp_ip_dst(m, pi), pi->sport, pi->dport);
		break;
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6:
		if (!(pi->flags & SG_PKT_F_ICMP_ERROR)) {
			icmp_input(w, m, pi, in_port);
			return V_DONE;
		}
		if (!icmp_error_key(w, m, pi, key))
			return V_DONE;
		break;
	default:
		dp_drop(w, m, SG_DP_C_drop_not_ours);
		return V_DONE;
	}

	if (w->n_workers > 1) {
		uint16_t owner = owner_of(w, key, in_port);

		if (owner != w->index) {
			handoff(w, m, owner);
			return V_DONE;
		}
	}
	return V_FLOW;
}

/*
 * A packet whose flow was evicted earlier in its burst and not made again:
 * its service looked up alone, and the packet taken as a first one, as it
 * would be in the next burst.
 */
static void
late_miss(struct sg_dp_worker *w, struct rte_mbuf *m, const struct sg_pkt_info *pi,
	  const struct sg_flow_key *k, uint64_t now)
{
	const struct sg_svc_entry *e;
	struct sg_svc_key sk;
	int via_any = 0;

	if (k->family == 4) {
		rte_be32_t dst;

		memcpy(&dst, k->dst, 4);
		sg_svc_key4(&sk, dst, k->dport, k->proto);
	} else {
		sg_svc_key6(&sk, k->dst, k->dport, k->proto);
	}
	e = sg_svc_lookup(w->ctx->svc, &sk, &via_any);
	if (pi->flags & SG_PKT_F_ICMP_ERROR)
		dp_icmp_error_stateless(w, m, pi, k, e, now);
	else if (e != NULL)
		dp_flow_new(w, m, pi, k, e, via_any != 0, now);
	else
		dp_drop(w, m, SG_DP_C_drop_not_ours);
}

void
sg_dp_worker_process(struct sg_dp_worker *w, struct rte_mbuf **pkts, unsigned int n,
		     uint64_t now)
{
	static const struct sg_dp_snat no_snat;
	struct sg_pkt_info pi[SG_MAX_BURST];
	struct sg_flow_key keys[SG_MAX_BURST];
	const struct sg_flow_key *kp[SG_MAX_BURST];
	struct rte_mbuf *fm[SG_MAX_BURST];
	struct sg_flow *flows[SG_MAX_BURST];
	uint8_t dirs[SG_MAX_BURST];
	struct sg_svc_key skeys[SG_MAX_BURST];
	const struct sg_svc_entry *entries[SG_MAX_BURST];
	unsigned int nf = 0, nmiss = 0;
	struct dp_new_burst nb;
	uint64_t any_mask = 0, evicted;

	RTE_ASSERT(n <= SG_MAX_BURST);
	/* Valid until this worker's next quiescent state, like table entries. */
	w->snat = atomic_load_explicit(&w->ctx->snat, memory_order_acquire);
	if (sg_unlikely(w->snat == NULL))
		w->snat = &no_snat;
	w->nh_gen = sg_neigh_generation(w->ctx->neigh);
	dp_egress_mtus(w);
	/* Read before any lookup of this burst: see sg_svc_serving_epoch(). */
	w->svc_epoch = (uint16_t)sg_svc_serving_epoch(w->ctx->svc);
	/*
	 * Every header of the burst at once: they arrive cold (written by the
	 * NIC, or by another core), and classify() would wait for each in turn.
	 */
	for (unsigned int i = 0; i < n; i++)
		rte_prefetch0(rte_pktmbuf_mtod(pkts[i], void *));
	for (unsigned int i = 0; i < n; i++) {
		struct rte_mbuf *m = pkts[i];

		if (classify(w, &m, &pi[nf], &keys[nf]) != V_FLOW)
			continue;
		kp[nf] = &keys[nf];
		fm[nf] = m;
		nf++;
	}
	handoff_flush(w);
	dp_frag_flush(w);
	if (nf == 0)
		return;

	dp_new_init(&nb);
	if (sg_flow_lookup_bulk(w->flows, kp, nf, now, flows, dirs) < nf) {
		for (unsigned int j = 0; j < nf; j++) {
			const struct sg_flow_key *k = &keys[j];

			if (flows[j] != NULL)
				continue;
			if (k->family == 4) {
				rte_be32_t dst;

				memcpy(&dst, k->dst, 4);
				sg_svc_key4(&skeys[nmiss++], dst, k->dport, k->proto);
			} else {
				sg_svc_key6(&skeys[nmiss++], k->dst, k->dport, k->proto);
			}
		}
		sg_svc_lookup_bulk_cached(w->ctx->svc, w->svc_cache, skeys, nmiss, entries,
					  &any_mask);
		for (unsigned int j = 0, k = 0; j < nf; j++) {
			if (flows[j] != NULL)
				continue;
			if (entries[k] != NULL && !(pi[j].flags & SG_PKT_F_ICMP_ERROR))
				dp_new_add(w, &nb, fm[j], &pi[j], &keys[j], entries[k],
					   now);
			k++;
		}
	}

	/* Misses found their services in order: k walks entries[]. */
	evicted = w->stats.c[SG_DP_C_flow_evicted];
	for (unsigned int j = 0, k = 0; j < nf; j++) {
		/*
		 * A flow evicted earlier in this burst (dp_forward_recheck())
		 * is deleted, and its entry, which later packets of the flow
		 * found in the bulk lookup, may be free or another flow's by
		 * now: forwarding with it would give them that flow's
		 * translation. After an eviction, hits look again.
		 */
		if (sg_unlikely(w->stats.c[SG_DP_C_flow_evicted] != evicted) && flows[j] != NULL &&
		    (flows[j] = sg_flow_lookup(w->flows, &keys[j], now, &dirs[j])) == NULL) {
			late_miss(w, fm[j], &pi[j], &keys[j], now);
			continue;
		}
		if (sg_unlikely(pi[j].flags & SG_PKT_F_ICMP_ERROR)) {
			if (flows[j] != NULL)
				dp_icmp_error_forward(w, fm[j], &pi[j], flows[j], dirs[j], now);
			else
				dp_icmp_error_stateless(w, fm[j], &pi[j], &keys[j], entries[k++], now);
			continue;
		}
		if (flows[j] != NULL) {
			if (sg_unlikely(flows[j]->epoch != w->svc_epoch) && dirs[j] == SG_FLOW_DIR_FWD)
				dp_forward_recheck(w, fm[j], &pi[j], &keys[j], flows[j], now);
			else
				dp_forward(w, fm[j], &pi[j], flows[j], dirs[j], now);
			continue;
		}
		if (entries[k] != NULL) {
			dp_new_create(w, &nb, fm[j], &pi[j], &keys[j], entries[k],
				      (any_mask >> k) & 1, now);
		} else {
			dp_drop(w, fm[j], SG_DP_C_drop_not_ours);
		}
		k++;
	}
}

/* Fill a flow sample the telemetry thread asked for (see dp.h). */
static void
sample_fill(struct sg_dp_worker *w, uint64_t now)
{
	struct sg_dp_sample *s = &w->sample;
	const struct sg_flow *f;
	uint32_t pos = 0;

	s->n = 0;
	while (s->n < s->want && s->n < SG_DP_SAMPLE_MAX &&
	       sg_flow_iterate(w->flows, &pos, &f) == 0) {
		struct sg_dp_flow_sample *o = &s->flows[s->n++];

		sg_flow_get_key(f, SG_FLOW_DIR_FWD, &o->fwd);
		o->has_rev = (f->flags & SG_FLOW_F_REVERSE) != 0;
		if (o->has_rev)
			sg_flow_get_key(f, SG_FLOW_DIR_REV, &o->rev);
		o->service_id = f->service_id;
		o->state = f->state;
		o->age_ms = (uint32_t)RTE_MIN(now - f->created, UINT32_MAX);
	}
	atomic_store_explicit(&s->state, 2, memory_order_release);
}

/* The shortest idle timeout of the table's states, in ms. */
static uint32_t
shortest_timeout(const struct sg_flow_table *t)
{
	uint32_t shortest = UINT32_MAX;

	for (unsigned int s = 0; s < SG_FLOW_STATE_MAX; s++) {
		uint32_t ms = sg_flow_timeout(t, s);

		if (ms > 0 && ms < shortest)
			shortest = ms;
	}
	return RTE_MAX(shortest, 1u);
}

/*
 * Entries to visit this millisecond: the flows the table holds (expired
 * ones not yet removed included), twice within the shortest timeout.
 * Sized by what the table holds rather than by its capacity, a table far
 * from full is not scanned over and over for nothing; a full one is
 * scanned as fast as before, so expired flows still free room in time
 * (entries that are not counted are free).
 */
static inline uint32_t
sweep_budget(const struct sg_dp_worker *w)
{
	return RTE_MAX((uint32_t)(2ull * sg_flow_count(w->flows) / w->sweep_shortest_ms + 1),
		       DP_SWEEP_MIN);
}

unsigned int
sg_dp_worker_poll(struct sg_dp_worker *w, uint64_t now)
{
	const struct sg_dp_ctx *ctx = w->ctx;
	struct rte_mbuf *pkts[SG_MAX_BURST];
	unsigned int rx = 0, n, handed, ctl;
	/* One TSC read per turn (not per packet) tells busy time from idle. */
	uint64_t start = rte_rdtsc();

	for (unsigned int p = 0; p < ctx->n_ports; p++) {
		n = rte_eth_rx_burst(ctx->ports[p].port_id, w->index, pkts, SG_MAX_BURST);
		if (n == 0)
			continue;
		rx += n;
		sg_dp_worker_process(w, pkts, n, now);
	}
	w->stats.c[SG_DP_C_rx] += rx;

	handed = rte_ring_sc_dequeue_burst(ctx->handoff[w->index], (void **)pkts, SG_MAX_BURST,
					   NULL);
	if (handed > 0) {
		w->stats.c[SG_DP_C_handoff_in] += handed;
		sg_dp_worker_process(w, pkts, handed, now);
	}
	ctl = rte_ring_sc_dequeue_burst(ctx->ctl_tx[w->index], (void **)pkts, SG_MAX_BURST, NULL);
	for (unsigned int i = 0; i < ctl; i++) {
		uint8_t port = ctx->port_index[pkts[i]->port];

		if (sg_unlikely(port >= ctx->n_ports)) {
			dp_drop(w, pkts[i], SG_DP_C_drop_no_route);
			continue;
		}
		DP_COUNT(w, ctl_tx);
		dp_tx_fit(w, port, pkts[i]);
	}

	sg_dp_worker_flush(w);
	if (now != w->sweep_last_ms) {
		sg_flow_sweep(w->flows, now, sweep_budget(w));
		dp_frag_expire(w);
		w->sweep_last_ms = now;
	}
	if (atomic_load_explicit(&w->sample.state, memory_order_acquire) == 1)
		sample_fill(w, now);
	/* Service entries and address table hits of this turn are forgotten. */
	rte_rcu_qsbr_quiescent(ctx->qsbr, w->qsbr_id);
	if (rx + handed + ctl > 0)
		w->stats.c[SG_DP_C_busy_cycles] += rte_rdtsc() - start;
	else
		DP_COUNT(w, polls_idle);
	return rx;
}

bool
sg_dp_sample_request(struct sg_dp_worker *w, uint32_t want)
{
	/* A worker still busy with an earlier request keeps it. */
	if (atomic_load_explicit(&w->sample.state, memory_order_acquire) != 0)
		return false;
	w->sample.want = want;
	atomic_store_explicit(&w->sample.state, 1, memory_order_release);
	return true;
}

const struct sg_dp_sample *
sg_dp_sample_ready(struct sg_dp_worker *w)
{
	if (atomic_load_explicit(&w->sample.state, memory_order_acquire) != 2)
		return NULL;
	return &w->sample;
}

void
sg_dp_sample_release(struct sg_dp_worker *w)
{
	atomic_store_explicit(&w->sample.state, 0, memory_order_release);
}

const struct sg_dp_stats *
sg_dp_worker_stats(const struct sg_dp_worker *w)
{
	return &w->stats;
}

const struct sg_neigh_rx_stats *
sg_dp_worker_neigh_stats(const struct sg_dp_worker *w)
{
	return &w->neigh_rx;
}

const struct sg_svc_cache_stats *
sg_dp_worker_svc_cache_stats(const struct sg_dp_worker *w)
{
	return sg_svc_cache_stats(w->svc_cache);
}

const struct sg_flow_table *
sg_dp_worker_flows(const struct sg_dp_worker *w)
{
	return w->flows;
}

struct sg_dp_worker *
sg_dp_worker_create(const struct sg_dp_ctx *ctx, const struct sg_dp_worker_conf *conf)
{
	struct sg_dp_worker *w;
	int err;

	if (ctx == NULL || conf == NULL || ctx->n_workers == 0 ||
	    conf->index >= ctx->n_workers || ctx->n_workers > SG_DP_MAX_WORKERS) {
		errno = EINVAL;
		return NULL;
	}
	w = rte_zmalloc_socket("sg_dp_worker", sizeof(*w), RTE_CACHE_LINE_SIZE, conf->socket_id);
	if (w == NULL) {
		errno = ENOMEM;
		return NULL;
	}
	w->ctx = ctx;
	w->index = conf->index;
	w->n_workers = ctx->n_workers;
	w->qsbr_id = conf->qsbr_id;
	dp_modes_init(w);
	w->reply_tokens = DP_REPLY_BURST;
	/* No entry of the next-hop cache may pass for valid before its first fill. */
	for (unsigned int i = 0; i < DP_NH_CACHE; i++)
		w->nh_cache[i].gen = UINT64_MAX;
	w->svc_cache = sg_svc_cache_create(conf->socket_id);
	if (w->svc_cache == NULL) {
		err = errno;
		goto free_worker;
	}
	w->flows = sg_flow_table_create(&conf->flows);
	if (w->flows == NULL) {
		err = errno;
		goto free_cache;
	}
	if (dp_frag_init(w, conf) != 0) {
		err = ENOMEM;
		goto free_flows;
	}
	w->sweep_shortest_ms = shortest_timeout(w->flows);
	return w;

free_flows:
	sg_flow_table_free(w->flows);
free_cache:
	sg_svc_cache_free(w->svc_cache);
free_worker:
	rte_free(w);
	errno = err;
	return NULL;
}

void
sg_dp_worker_free(struct sg_dp_worker *w)
{
	if (w == NULL)
		return;
	for (unsigned int p = 0; p < SG_DP_MAX_PORTS; p++)
		rte_pktmbuf_free_bulk(w->txq[p].pkts, w->txq[p].n);
	for (unsigned int o = 0; o < SG_DP_MAX_WORKERS; o++)
		rte_pktmbuf_free_bulk(w->handoff[o].pkts, w->handoff[o].n);
	dp_frag_free(w);
	sg_flow_table_free(w->flows);
	sg_svc_cache_free(w->svc_cache);
	rte_free(w);
}
