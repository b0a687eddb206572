/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The worker loop and the forwarding decision for IPv4: classify, find the
 * packet's flow (or its service and make one), translate, pick the egress
 * port and next hop, queue for transmission. Local answers are in
 * dp_reply.c, ARP and the address tables in dp_neigh.c.
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
#include <rte_rcu_qsbr.h>
#include <rte_ring.h>
#include <rte_tcp.h>

#include "flow.h"
#include "pkt.h"
#include "svc.h"
#include "dp_private.h"

/* What classify() did with a packet. */
enum verdict {
	V_DONE,		/* answered, handed over or dropped: nothing left to do */
	V_FLOW,		/* an IPv4 TCP/UDP/SCTP packet for the flow table */
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
static inline uint32_t
flow_hash(const struct sg_flow_key *k)
{
	return rte_hash_crc(k, sizeof(*k), 0);
}

uint16_t
sg_dp_flow_owner(const struct sg_dp_ctx *ctx, const struct sg_flow_key *key)
{
	return (uint16_t)(flow_hash(key) % ctx->n_workers);
}

static inline void
drop(struct sg_dp_worker *w, struct rte_mbuf *m, enum sg_dp_counter c)
{
	w->stats.c[c]++;
	rte_pktmbuf_free(m);
}

static inline uint8_t *
frame_of(struct rte_mbuf *m)
{
	return rte_pktmbuf_mtod(m, uint8_t *);
}

static inline const struct rte_ipv4_hdr *
ip4_of(struct rte_mbuf *m, const struct sg_pkt_info *pi)
{
	return (const struct rte_ipv4_hdr *)(frame_of(m) + pi->l3_off);
}

int
sg_dp_route4(const struct sg_dp_ctx *ctx, rte_be32_t dst, uint8_t prefer, rte_be32_t *next_hop)
{
	int gw_any = -1, gw_pref = -1, link_any = -1;

	for (unsigned int i = 0; i < ctx->n_ports; i++) {
		const struct sg_dp_port *p = &ctx->ports[i];

		if (((dst ^ p->addr4) & p->mask4) == 0) {
			if (p->roles & prefer) {
				*next_hop = dst;
				return (int)i;
			}
			if (link_any < 0)
				link_any = (int)i;
		}
		if (p->gw4 != 0) {
			if (gw_pref < 0 && (p->roles & prefer))
				gw_pref = (int)i;
			if (gw_any < 0)
				gw_any = (int)i;
		}
	}
	if (link_any >= 0) {
		*next_hop = dst;
		return link_any;
	}
	if (gw_pref < 0)
		gw_pref = gw_any;
	if (gw_pref >= 0)
		*next_hop = ctx->ports[gw_pref].gw4;
	return gw_pref;
}

void
dp_tx(struct sg_dp_worker *w, uint8_t port, struct rte_mbuf *m)
{
	struct dp_txq *q = &w->txq[port];

	q->pkts[q->n++] = m;
	if (q->n == DP_TXQ_LEN) {
		uint16_t sent = rte_eth_tx_burst(w->ctx->ports[port].port_id, w->index,
						 q->pkts, q->n);

		w->stats.c[SG_DP_C_tx] += sent;
		for (uint16_t i = sent; i < q->n; i++)
			drop(w, q->pkts[i], SG_DP_C_drop_tx_full);
		q->n = 0;
	}
}

void
sg_dp_worker_flush(struct sg_dp_worker *w)
{
	for (unsigned int p = 0; p < w->ctx->n_ports; p++) {
		struct dp_txq *q = &w->txq[p];
		uint16_t sent;

		if (q->n == 0)
			continue;
		sent = rte_eth_tx_burst(w->ctx->ports[p].port_id, w->index, q->pkts, q->n);
		w->stats.c[SG_DP_C_tx] += sent;
		for (uint16_t i = sent; i < q->n; i++)
			drop(w, q->pkts[i], SG_DP_C_drop_tx_full);
		q->n = 0;
	}
}

/*
 * Send a translated IPv4 packet toward dst: egress port and next hop by
 * sg_dp_route4(), the next hop's MAC from the neighbour table. Without a
 * MAC yet the packet waits at the control thread, which resolves it and
 * sends it on (lib/neigh holds a few per neighbour) after writing the
 * destination MAC: the source MAC is ours from here on.
 */
static void
egress4(struct sg_dp_worker *w, struct rte_mbuf *m, rte_be32_t dst, uint8_t prefer)
{
	const struct sg_dp_ctx *ctx = w->ctx;
	/* Fibonacci hashing of the address: the top bits of a multiplication. */
	struct dp_nh_entry *e = &w->nh_cache[(rte_be_to_cpu_32(dst) * 2654435761u) >>
					     (32 - __builtin_ctz(DP_NH_CACHE))];
	struct rte_ether_addr mac;
	rte_be32_t nh;
	int port, rc;

	if (sg_likely(e->gen == w->nh_gen && e->dst == dst && e->prefer == prefer)) {
		sg_pkt_eth_set_macs(frame_of(m), e->mac.addr_bytes,
				    ctx->ports[e->port].mac.addr_bytes);
		dp_tx(w, e->port, m);
		return;
	}
	port = sg_dp_route4(ctx, dst, prefer, &nh);
	if (sg_unlikely(port < 0)) {
		drop(w, m, SG_DP_C_drop_no_route);
		return;
	}
	sg_pkt_eth_set_macs(frame_of(m), NULL, ctx->ports[port].mac.addr_bytes);
	rc = dp_neigh_mac4(w, (uint8_t)port, nh, &mac);
	if (sg_unlikely(rc != 0)) {
		struct sg_neigh_miss miss = { .m = m };

		if (rc == -EHOSTUNREACH) {
			drop(w, m, SG_DP_C_drop_neigh_failed);
			return;
		}
		sg_neigh_key4(&miss.key, ctx->ports[port].port_id, &nh);
		if (rte_ring_mp_enqueue_elem(ctx->neigh_miss, &miss, sizeof(miss)) != 0) {
			drop(w, m, SG_DP_C_drop_ctl_full);
			return;
		}
		DP_COUNT(w, neigh_wait);
		return;
	}
	*e = (struct dp_nh_entry){
		.gen = w->nh_gen, .dst = dst, .prefer = prefer, .port = (uint8_t)port, .mac = mac,
	};
	sg_pkt_eth_set_macs(frame_of(m), mac.addr_bytes, NULL);
	dp_tx(w, (uint8_t)port, m);
}

/*
 * A router decrements the TTL and drops what would reach 0 (RFC 1812
 * §5.3.1), so a routing loop through the gateway dies out. The header
 * checksum follows incrementally (RFC 1624 eqn. 3). false: drop it.
 */
static bool
ttl_decrement(struct rte_mbuf *m, const struct sg_pkt_info *pi)
{
	struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)(frame_of(m) + pi->l3_off);
	uint16_t old, new;

	if (sg_unlikely(ip->time_to_live <= 1))
		return false;
	memcpy(&old, &ip->time_to_live, 2);	/* TTL and protocol: one 16-bit word */
	ip->time_to_live--;
	memcpy(&new, &ip->time_to_live, 2);
	ip->hdr_checksum = sg_csum_update16(ip->hdr_checksum, old, new);
	return true;
}

/*
 * Translate a packet of a known flow in direction dir and send it on.
 * Client packets come in on external ports and replies on internal ones
 * (a one-arm port is both); anything else is a spoofed or misrouted
 * packet that must not be translated into a flow.
 */
static void
forward(struct sg_dp_worker *w, struct rte_mbuf *m, const struct sg_pkt_info *pi,
	struct sg_flow *f, unsigned int dir, uint64_t now)
{
	uint8_t in_role = w->ctx->ports[w->ctx->port_index[m->port]].roles;
	uint8_t to_role = dir == SG_FLOW_DIR_FWD ? SG_DP_ROLE_INTERNAL : SG_DP_ROLE_EXTERNAL;
	struct sg_flow_xlate x;
	rte_be32_t dst;

	/* Client packets come in on external ports, replies on internal ones. */
	if (sg_unlikely(!(in_role & (SG_DP_ROLE_EXTERNAL | SG_DP_ROLE_INTERNAL) & ~to_role) &&
			in_role != (SG_DP_ROLE_EXTERNAL | SG_DP_ROLE_INTERNAL))) {
		drop(w, m, SG_DP_C_drop_wrong_side);
		return;
	}
	if (sg_unlikely(!ttl_decrement(m, pi))) {
		drop(w, m, SG_DP_C_drop_ttl);
		return;
	}
	if (pi->l4_proto == IPPROTO_TCP)
		sg_flow_tcp_seen(f, dir, frame_of(m)[pi->l4_off + 13], now);
	else
		sg_flow_touch(f, dir, now);

	sg_flow_xlate(f, dir, &x);
	if (sg_likely(sg_pkt_nat4_fast_ok(pi))) {
		sg_pkt_nat4_fast(frame_of(m), pi, x.src, x.sport, x.dst, x.dport);
	} else {
		struct sg_pkt_nat nat = {
			.flags = SG_PKT_NAT_SRC | SG_PKT_NAT_DST,
			.sport = x.sport,
			.dport = x.dport,
		};

		memcpy(nat.src.a8, x.src, 4);
		memcpy(nat.dst.a8, x.dst, 4);
		if (sg_unlikely(sg_pkt_nat(frame_of(m), pi, &nat) != 0)) {
			drop(w, m, SG_DP_C_drop_xlate);
			return;
		}
	}
	w->stats.c[dir == SG_FLOW_DIR_FWD ? SG_DP_C_fwd : SG_DP_C_rev]++;
	memcpy(&dst, x.dst, 4);
	egress4(w, m, dst, to_role);
}

/*
 * Whether a RST or an ICMP error may go to src now: never to a source
 * that cannot have sent the packet (RFC 1122 §3.2.2: broadcast, multicast,
 * "this network", loopback), and at most DP_REPLY_RATE a second.
 */
static bool
reply_allowed(struct sg_dp_worker *w, rte_be32_t src, uint64_t now)
{
	uint32_t a = rte_be_to_cpu_32(src);
	uint64_t refill;

	if ((a >> 24) == 0 || (a >> 24) == 127 || (a >> 28) >= 0xe)
		return false;
	refill = (now - w->reply_last_ms) * DP_REPLY_RATE / 1000;
	if (refill > 0) {
		w->reply_tokens = (uint32_t)RTE_MIN(w->reply_tokens + refill, DP_REPLY_BURST);
		w->reply_last_ms = now;
	}
	if (w->reply_tokens == 0)
		return false;
	w->reply_tokens--;
	return true;
}

/*
 * A service without a usable endpoint refuses the connection at once, as
 * kube-proxy's REJECT does: a TCP RST, an ICMP port unreachable otherwise.
 */
static void
refuse(struct sg_dp_worker *w, struct rte_mbuf *m, const struct sg_pkt_info *pi,
       rte_be32_t src, uint64_t now)
{
	uint8_t in_port = w->ctx->port_index[m->port];
	const struct rte_ether_addr *mac = &w->ctx->ports[in_port].mac;
	int rc;

	if (!reply_allowed(w, src, now)) {
		drop(w, m, SG_DP_C_drop_reply_limited);
		return;
	}
	if (pi->l4_proto == IPPROTO_TCP) {
		rc = sg_dp_reply_tcp_rst(m, pi, mac);
		if (rc == 0)
			DP_COUNT(w, rst_sent);
	} else {
		rc = sg_dp_reply_port_unreach(m, pi, mac);
		if (rc == 0)
			DP_COUNT(w, unreach_sent);
	}
	if (rc != 0) {
		drop(w, m, SG_DP_C_drop_reply_fail);
		return;
	}
	dp_tx(w, in_port, m);
}

static uint32_t
snat_first_port(const struct sg_dp_worker *w)
{
	uint32_t min = w->ctx->snat_port_min, n = w->n_workers;

	return min + (w->index + n - min % n) % n;
}

/* The next SNAT port of this worker: p % n_workers == index, round robin. */
static uint16_t
snat_port_next(struct sg_dp_worker *w)
{
	uint32_t p = w->snat_next;

	w->snat_next += w->n_workers;
	if (w->snat_next > w->ctx->snat_port_max)
		w->snat_next = snat_first_port(w);
	return (uint16_t)p;
}

/*
 * A new NAT flow: the reply tuple is (backend -> SNAT address:port), with a
 * port this worker owns, so replies can find it. A port whose reply tuple
 * is taken shows up as -EEXIST from the insert, and the next one is tried.
 */
static struct sg_flow *
nat_flow_create(struct sg_dp_worker *w, const struct sg_flow_key *fwd,
		const struct sg_svc_entry *e, uint16_t b, uint32_t hash, uint64_t now,
		uint8_t *dir)
{
	const struct sg_svc_backend *be = &e->backends[b];
	const struct sg_dp_snat *sn = w->snat;
	struct sg_flow_key rev;
	struct sg_flow *f;
	rte_be32_t snat;

	*dir = SG_FLOW_DIR_FWD;
	if (sg_unlikely(sn->n4 == 0)) {
		DP_COUNT(w, drop_snat_ports);
		return NULL;
	}
	snat = sn->addr4[hash % sn->n4];
	for (unsigned int t = 0; t < DP_SNAT_TRIES; t++) {
		rte_be16_t port = rte_cpu_to_be_16(snat_port_next(w));
		int rc;

		sg_flow_key_init(&rev, SG_FLOW_V4, fwd->proto, be->addr, &snat, be->port, port);
		rc = sg_flow_insert(w->flows, fwd, &rev, e->id, b, e->mode, now, &f);
		if (rc == 0) {
			DP_COUNT(w, flow_new);
			return f;
		}
		if (rc == -ENOSPC || rc == -EAGAIN) {
			w->stats.c[rc == -ENOSPC ? SG_DP_C_drop_flow_full : SG_DP_C_drop_flow_rate]++;
			return NULL;
		}
		/* -EEXIST: a second packet of a flow created earlier in this burst? */
		f = sg_flow_lookup(w->flows, fwd, now, dir);
		if (f != NULL)
			return f;
	}
	DP_COUNT(w, drop_snat_ports);
	return NULL;
}

/*
 * First packet of a flow to service entry e. Flows start from clients,
 * on external ports: a backend's stray reply to a SNAT address that is
 * also a node address must not open a NodePort flow.
 */
static void
flow_new(struct sg_dp_worker *w, struct rte_mbuf *m, const struct sg_pkt_info *pi,
	 const struct sg_flow_key *key, const struct sg_svc_entry *e, bool via_any, uint64_t now)
{
	uint8_t in_port = w->ctx->port_index[m->port];
	uint32_t hash = flow_hash(key);
	rte_be32_t src, dst;
	struct sg_flow *f;
	uint16_t b;
	uint8_t dir;

	memcpy(&src, key->src, 4);
	memcpy(&dst, key->dst, 4);
	if (sg_unlikely(!(w->ctx->ports[in_port].roles & SG_DP_ROLE_EXTERNAL))) {
		drop(w, m, SG_DP_C_drop_wrong_side);
		return;
	}
	if (via_any && !dp_is_node_addr4(w, in_port, dst)) {
		drop(w, m, SG_DP_C_drop_nodeport_addr);
		return;
	}
	if (!sg_svc_src_allowed4(e, src)) {
		drop(w, m, SG_DP_C_drop_src_range);
		return;
	}
	b = sg_svc_backend_for_hash(e, hash);
	if (b == 0) {
		refuse(w, m, pi, src, now);
		return;
	}
	/*
	 * A NAT flow starts with a SYN: for a segment in the middle of a
	 * connection we no longer track, a new SNAT port would only earn a
	 * RST from the backend.
	 */
	if (pi->l4_proto == IPPROTO_TCP &&
	    (frame_of(m)[pi->l4_off + 13] & (RTE_TCP_SYN_FLAG | RTE_TCP_ACK_FLAG)) !=
		    RTE_TCP_SYN_FLAG) {
		drop(w, m, SG_DP_C_drop_tcp_midstream);
		return;
	}
	f = nat_flow_create(w, key, e, b, hash, now, &dir);
	if (f == NULL) {
		rte_pktmbuf_free(m);
		return;
	}
	forward(w, m, pi, f, dir, now);
}

static bool
is_snat4(const struct sg_dp_snat *sn, rte_be32_t a)
{
	for (unsigned int i = 0; i < sn->n4; i++)
		if (sn->addr4[i] == a)
			return true;
	return false;
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
			drop(w, h->pkts[i], SG_DP_C_drop_handoff_full);
		h->n = 0;
	}
}

/* Ours to look at: to the port's MAC, or broadcast or multicast (ARP, NDP). */
static inline bool
mac_for_us(const struct rte_mbuf *m, const struct sg_dp_port *port)
{
	const struct rte_ether_addr *dst = rte_pktmbuf_mtod(m, const struct rte_ether_addr *);

	return rte_is_multicast_ether_addr(dst) || rte_is_same_ether_addr(dst, &port->mac);
}

/*
 * Everything short of the flow table: parse, answer what is ours to answer,
 * hand packets to the worker owning their flow, drop the rest. For a packet
 * left for the flow table, *key is its flow's.
 */
static enum verdict
classify(struct sg_dp_worker *w, struct rte_mbuf *m, struct sg_pkt_info *pi,
	 struct sg_flow_key *key)
{
	const struct sg_dp_ctx *ctx = w->ctx;
	uint8_t in_port = ctx->port_index[m->port];
	enum sg_pkt_reason r;
	const struct rte_ipv4_hdr *ip;

	if (sg_unlikely(rte_pktmbuf_data_len(m) < RTE_ETHER_HDR_LEN ||
			!mac_for_us(m, &ctx->ports[in_port]))) {
		drop(w, m, rte_pktmbuf_data_len(m) < RTE_ETHER_HDR_LEN ? SG_DP_C_drop_parse :
									 SG_DP_C_drop_mac);
		return V_DONE;
	}
	if (sg_unlikely(m->nb_segs > 1) && rte_pktmbuf_linearize(m) != 0) {
		drop(w, m, SG_DP_C_drop_multiseg);
		return V_DONE;
	}
	r = sg_pkt_parse_fast(frame_of(m), rte_pktmbuf_data_len(m), pi);
	if (sg_unlikely(r != SG_PKT_OK)) {
		w->stats.parse[r]++;
		drop(w, m, SG_DP_C_drop_parse);
		return V_DONE;
	}
	if (sg_unlikely(pi->flags & SG_PKT_F_VLAN)) {
		drop(w, m, SG_DP_C_drop_vlan);
		return V_DONE;
	}
	switch (pi->l3) {
	case SG_PKT_L3_IPV4:
		break;
	case SG_PKT_L3_ARP:
		dp_neigh_input(w, m, pi, in_port);
		return V_DONE;
	case SG_PKT_L3_IPV6:
		dp_ip6_input(w, m, pi, in_port);
		return V_DONE;
	default:
		drop(w, m, SG_DP_C_drop_not_ip);
		return V_DONE;
	}

	if (sg_unlikely(pi->flags & SG_PKT_F_FRAG)) {
		drop(w, m, SG_DP_C_drop_frag);
		return V_DONE;
	}
	ip = ip4_of(m, pi);
	switch (pi->l4_proto) {
	case IPPROTO_TCP:
	case IPPROTO_UDP:
	case IPPROTO_SCTP:
		break;
	case IPPROTO_ICMP:
		if ((pi->flags & SG_PKT_F_ECHO_REQ) && dp_is_owned4(w, in_port, ip->dst_addr)) {
			sg_dp_reply_echo(m, pi, &ctx->ports[in_port].mac);
			DP_COUNT(w, echo_reply);
			dp_tx(w, in_port, m);
			return V_DONE;
		}
		drop(w, m, SG_DP_C_drop_not_ours);
		return V_DONE;
	default:
		drop(w, m, SG_DP_C_drop_not_ours);
		return V_DONE;
	}

	sg_flow_key_init(key, SG_FLOW_V4, pi->l4_proto, &ip->src_addr, &ip->dst_addr,
			 pi->sport, pi->dport);
	if (w->n_workers > 1) {
		uint16_t owner = w->index;

		if (is_snat4(w->snat, ip->dst_addr))
			owner = rte_be_to_cpu_16(pi->dport) % w->n_workers;
		else if (ctx->ports[in_port].steer)
			owner = sg_dp_flow_owner(ctx, key);
		if (owner != w->index) {
			handoff(w, m, owner);
			return V_DONE;
		}
	}
	return V_FLOW;
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
	uint64_t any_mask = 0;

	RTE_ASSERT(n <= SG_MAX_BURST);
	/* Valid until this worker's next quiescent state, like table entries. */
	w->snat = atomic_load_explicit(&w->ctx->snat, memory_order_acquire);
	if (sg_unlikely(w->snat == NULL))
		w->snat = &no_snat;
	w->nh_gen = sg_neigh_generation(w->ctx->neigh);
	for (unsigned int i = 0; i < n; i++) {
		if (classify(w, pkts[i], &pi[nf], &keys[nf]) != V_FLOW)
			continue;
		kp[nf] = &keys[nf];
		fm[nf] = pkts[i];
		nf++;
	}
	handoff_flush(w);
	if (nf == 0)
		return;

	if (sg_flow_lookup_bulk(w->flows, kp, nf, now, flows, dirs) < nf) {
		for (unsigned int j = 0; j < nf; j++) {
			rte_be32_t dst;

			if (flows[j] != NULL)
				continue;
			memcpy(&dst, keys[j].dst, 4);
			sg_svc_key4(&skeys[nmiss++], dst, keys[j].dport, keys[j].proto);
		}
		sg_svc_lookup_bulk(w->ctx->svc, skeys, nmiss, entries, &any_mask);
	}

	/* Misses found their services in order: k walks entries[]. */
	for (unsigned int j = 0, k = 0; j < nf; j++) {
		if (flows[j] != NULL) {
			forward(w, fm[j], &pi[j], flows[j], dirs[j], now);
			continue;
		}
		if (entries[k] != NULL)
			flow_new(w, fm[j], &pi[j], &keys[j], entries[k], (any_mask >> k) & 1, now);
		else
			drop(w, fm[j], SG_DP_C_drop_not_ours);
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
			drop(w, pkts[i], SG_DP_C_drop_no_route);
			continue;
		}
		DP_COUNT(w, ctl_tx);
		dp_tx(w, port, pkts[i]);
	}

	sg_dp_worker_flush(w);
	if (now != w->sweep_last_ms) {
		sg_flow_sweep(w->flows, now, w->sweep_budget);
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

const struct sg_flow_table *
sg_dp_worker_flows(const struct sg_dp_worker *w)
{
	return w->flows;
}

/* Entries to visit per millisecond: the table, twice within the shortest timeout. */
static uint32_t
sweep_budget(const struct sg_flow_table *t, uint32_t max_flows)
{
	uint32_t shortest = UINT32_MAX;

	for (unsigned int s = 0; s < SG_FLOW_STATE_MAX; s++) {
		uint32_t ms = sg_flow_timeout(t, s);

		if (ms > 0 && ms < shortest)
			shortest = ms;
	}
	return RTE_MAX((uint32_t)((2ull * max_flows) / RTE_MAX(shortest, 1u) + 1), DP_SWEEP_MIN);
}

struct sg_dp_worker *
sg_dp_worker_create(const struct sg_dp_ctx *ctx, const struct sg_dp_worker_conf *conf)
{
	struct sg_dp_worker *w;

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
	w->snat_next = snat_first_port(w);
	w->reply_tokens = DP_REPLY_BURST;
	/* No entry of the next-hop cache may pass for valid before its first fill. */
	for (unsigned int i = 0; i < DP_NH_CACHE; i++)
		w->nh_cache[i].gen = UINT64_MAX;
	w->flows = sg_flow_table_create(&conf->flows);
	if (w->flows == NULL) {
		int err = errno;

		rte_free(w);
		errno = err;
		return NULL;
	}
	w->sweep_budget = sweep_budget(w->flows, conf->flows.max_flows);
	return w;
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
	sg_flow_table_free(w->flows);
	rte_free(w);
}
