/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The forwarding modes of DESIGN.md, for a new flow and for the packets of
 * a known one:
 *   nat       source to a SNAT address and port, destination to the pod;
 *   dnat      destination to the pod, the client's address kept (replies
 *             come back through the gateway and are translated back);
 *   dsr-ipip, dsr-gue  the packet unchanged inside an outer IP (and UDP)
 *             header to the pod, which answers the client itself;
 *   dsr-l2    the packet unchanged to the pod's MAC.
 * nat and dnat are one translation: a flow's reverse tuple is what the
 * backend answers with, and every packet is rewritten to the other
 * direction's tuple, so dnat's unchanged client address is simply a field
 * rewritten to itself. DSR flows keep the backend in the same reverse
 * tuple, kept but not indexed (sg_flow_insert_kept()): replies bypass the
 * gateway, so no packet carries it.
 */
#include <errno.h>
#include <netinet/in.h>
#include <string.h>

#include <rte_byteorder.h>
#include <rte_hash_crc.h>
#include <rte_tcp.h>

#include "flow.h"
#include "dp_private.h"

bool
dp_is_snat(const struct sg_dp_snat *sn, uint8_t family, const void *addr)
{
	if (family == 4) {
		rte_be32_t a;

		memcpy(&a, addr, 4);
		for (unsigned int i = 0; i < sn->n4; i++)
			if (sn->addr4[i] == a)
				return true;
		return false;
	}
	for (unsigned int i = 0; i < sn->n6; i++)
		if (memcmp(sn->addr6[i], addr, 16) == 0)
			return true;
	return false;
}

static uint32_t
snat_first_port(const struct sg_dp_worker *w)
{
	uint32_t min = w->ctx->snat_port_min, n = w->n_workers;

	return min + (w->index + n - min % n) % n;
}

/* The cursor of pod be: Fibonacci hashing of its address' last word and its port. */
static struct dp_snat_cursor *
snat_cursor(struct sg_dp_worker *w, const struct sg_svc_backend *be)
{
	uint32_t word;

	memcpy(&word, be->addr + (be->family == 6 ? 12 : 0), 4);
	return &w->snat_cur[((word ^ be->port) * 2654435761u) >>
			    (32 - __builtin_ctz(DP_SNAT_CURSORS))];
}

/*
 * The next SNAT address (index among n) and port for a flow to pod be:
 * every address in turn, then the next port this worker owns
 * (p % n_workers == index).
 */
static struct dp_snat_cursor
snat_next(struct sg_dp_worker *w, const struct sg_svc_backend *be, unsigned int n)
{
	struct dp_snat_cursor *c = snat_cursor(w, be), pick;

	if (c->addr >= n)	/* fewer addresses since a reload */
		c->addr = 0;
	pick = *c;
	if (++c->addr == n) {
		uint32_t port = c->port + w->n_workers;

		c->addr = 0;
		c->port = (uint16_t)(port > w->ctx->snat_port_max ? snat_first_port(w) : port);
	}
	return pick;
}

static unsigned int
snat_count(const struct sg_dp_snat *sn, uint8_t family)
{
	return family == 4 ? sn->n4 : sn->n6;
}

static const void *
snat_addr(const struct sg_dp_snat *sn, uint8_t family, unsigned int i)
{
	return family == 4 ? (const void *)&sn->addr4[i] : sn->addr6[i];
}

/* The reverse key of a NAT flow fwd to pod be from SNAT address and port s. */
static void
snat_key(const struct sg_dp_worker *w, const struct sg_flow_key *fwd,
	 const struct sg_svc_backend *be, struct dp_snat_cursor s, struct sg_flow_key *rev)
{
	sg_flow_key_init(rev, fwd->family, fwd->proto, be->addr,
			 snat_addr(w->snat, fwd->family, s.addr), be->port,
			 rte_cpu_to_be_16(s.port));
}

void
dp_modes_init(struct sg_dp_worker *w)
{
	for (unsigned int i = 0; i < DP_SNAT_CURSORS; i++)
		w->snat_cur[i] = (struct dp_snat_cursor){ .port = (uint16_t)snat_first_port(w) };
}

static inline bool
is_dsr(uint8_t mode)
{
	return mode == SG_SVC_MODE_DSR_IPIP || mode == SG_SVC_MODE_DSR_GUE ||
	       mode == SG_SVC_MODE_DSR_L2;
}

/*
 * Insert a flow, or find the one a packet earlier in this burst created
 * (-EEXIST on the forward key). Returns the flow, or NULL with *err the
 * insert's error (-EEXIST: the reverse tuple is taken).
 */
static struct sg_flow *
insert(struct sg_dp_worker *w, const struct sg_flow_key *fwd, const struct sg_flow_key *rev,
       const struct sg_svc_entry *e, uint16_t b, uint64_t now, uint8_t *dir, int *err)
{
	struct sg_flow *f;

	*dir = SG_FLOW_DIR_FWD;
	*err = is_dsr(e->mode) ?
		sg_flow_insert_kept(w->flows, fwd, rev, e->id, b, e->mode, now, &f) :
		sg_flow_insert(w->flows, fwd, rev, e->id, b, e->mode, now, &f);
	if (*err == 0) {
		f->epoch = w->svc_epoch;
		DP_COUNT(w, flow_new);
		return f;
	}
	if (*err == -EEXIST && (f = sg_flow_lookup(w->flows, fwd, now, dir)) != NULL)
		return f;
	return NULL;
}

/*
 * A new NAT flow: the reply tuple is (backend -> SNAT address:port), with a
 * port this worker owns, so replies can find it: first_rev if not NULL
 * (taken ahead, see plan_reverse()), else from the pod's cursor's next.
 * A reply tuple that is taken shows up as -EEXIST from the insert, and the
 * cursor's next is tried.
 */
static struct sg_flow *
nat_flow(struct sg_dp_worker *w, const struct sg_flow_key *fwd, const struct sg_svc_entry *e,
	 uint16_t b, const struct sg_flow_key *first_rev, uint64_t now, uint8_t *dir)
{
	const struct sg_svc_backend *be = &e->backends[b];
	unsigned int n = snat_count(w->snat, fwd->family);
	struct sg_flow_key rev;
	struct sg_flow *f;
	int err;

	if (sg_unlikely(n == 0)) {
		DP_COUNT(w, drop_snat_ports);
		return NULL;
	}
	for (unsigned int t = 0; t < DP_SNAT_TRIES; t++) {
		const struct sg_flow_key *r = &rev;

		if (t == 0 && first_rev != NULL)
			r = first_rev;
		else
			snat_key(w, fwd, be, snat_next(w, be, n), &rev);
		f = insert(w, fwd, r, e, b, now, dir, &err);
		if (f != NULL)
			return f;
		if (err != -EEXIST) {
			w->stats.c[err == -EAGAIN ? SG_DP_C_drop_flow_rate : SG_DP_C_drop_flow_full]++;
			return NULL;
		}
	}
	DP_COUNT(w, drop_snat_ports);
	return NULL;
}

/*
 * The backend's own reply tuple (dnat), or where DSR flows keep the
 * backend: planned_rev if not NULL (worked out ahead), else built here.
 */
static struct sg_flow *
direct_flow(struct sg_dp_worker *w, const struct sg_flow_key *fwd, const struct sg_svc_entry *e,
	    uint16_t b, const struct sg_flow_key *planned_rev, uint64_t now, uint8_t *dir,
	    int *err)
{
	const struct sg_svc_backend *be = &e->backends[b];
	struct sg_flow_key rev;

	if (planned_rev != NULL)
		return insert(w, fwd, planned_rev, e, b, now, dir, err);
	sg_flow_key_init(&rev, fwd->family, fwd->proto, be->addr, fwd->src, be->port, fwd->sport);
	return insert(w, fwd, &rev, e, b, now, dir, err);
}

static void encap_send(struct sg_dp_worker *w, struct rte_mbuf *m, const struct sg_pkt_info *pi,
		       uint8_t mode, uint8_t family, const void *backend, uint32_t hash,
		       uint64_t now);

/*
 * An IPv4 packet without DF too big to encapsulate: cut to the size that
 * fits, as the router the gateway is, and each fragment sent on its own.
 * The backend reassembles the inner datagram after decapsulation.
 */
static void
encap_fragments(struct sg_dp_worker *w, struct rte_mbuf *m, const struct sg_pkt_info *pi,
		uint8_t mode, uint8_t family, const void *backend, uint32_t hash, uint32_t mtu,
		uint64_t now)
{
	struct rte_mbuf *out[DP_FRAG_OUT_MAX];
	int n;

	/* Ethernet padding is not part of the datagram. */
	rte_pktmbuf_trim(m, rte_pktmbuf_pkt_len(m) - pi->ip_end);
	n = dp_fragment4(w, m, pi->l3_off, mtu, out, RTE_DIM(out));
	for (int i = 0; i < n; i++) {
		struct sg_pkt_info fpi;

		if (sg_pkt_parse(dp_frame(out[i]), rte_pktmbuf_data_len(out[i]), &fpi) !=
		    SG_PKT_OK) {
			dp_drop(w, out[i], SG_DP_C_drop_xlate);
			continue;
		}
		encap_send(w, out[i], &fpi, mode, family, backend, hash, now);
	}
}

/*
 * DSR by encapsulation: the client's packet, unchanged, inside an outer
 * IPv4/IPv6 header (dsr-ipip) and UDP header (dsr-gue) to the backend. One
 * that would exceed the egress MTU once encapsulated gets ICMP
 * "fragmentation needed" / "packet too big" with the MTU that fits.
 */
static void
encap_send(struct sg_dp_worker *w, struct rte_mbuf *m, const struct sg_pkt_info *pi,
	   uint8_t mode, uint8_t family, const void *backend, uint32_t hash, uint64_t now)
{
	const struct sg_dp_ctx *ctx = w->ctx;
	uint8_t type = mode == SG_SVC_MODE_DSR_GUE ? SG_PKT_ENCAP_GUE : SG_PKT_ENCAP_IPIP;
	uint32_t inner_len = pi->ip_end - pi->l3_off, hlen = sg_pkt_encap_size(family, type);
	const struct dp_nh_entry *nhe = dp_nh_slot(w, family, backend);
	/*
	 * The next hop's port and MAC and the outer header: in the cache for
	 * all but a backend's first packets, which have the header prepared
	 * here and leave it in the cache through dp_egress().
	 */
	bool cached = dp_nh_hit(w, nhe, family, backend, SG_DP_ROLE_INTERNAL);
	const struct sg_pkt_encap_hdr *h = &nhe->encap;
	struct sg_pkt_encap_hdr first;
	union sg_pkt_addr nh;
	uint8_t *frame;
	int port;

	if (sg_likely(cached)) {
		port = nhe->encap_ok ? nhe->port : -1;
	} else {
		port = sg_dp_route(ctx, family, backend, SG_DP_ROLE_INTERNAL, &nh);
		if (port >= 0 && !dp_encap_prepare(ctx, (uint8_t)port, family, backend, &first))
			port = -1;
		h = &first;
	}
	if (sg_unlikely(port < 0)) {
		dp_drop(w, m, SG_DP_C_drop_no_route);
		return;
	}
	if (sg_unlikely(sg_pkt_encap_exceeds_mtu(hlen, inner_len, ctx->ports[port].mtu))) {
		uint32_t fits = sg_pkt_encap_inner_mtu(hlen, ctx->ports[port].mtu);

		if (pi->l3 == SG_PKT_L3_IPV4 && !(pi->flags & SG_PKT_F_DF))
			encap_fragments(w, m, pi, mode, family, backend, hash, fits, now);
		else if (pi->flags & SG_PKT_F_ICMP_ERROR)
			dp_drop(w, m, SG_DP_C_drop_mtu); /* no error about an error */
		else
			dp_refuse(w, m, pi, DP_ICMP_TOO_BIG, fits, now);
		return;
	}
	/* Ethernet padding is not part of the inner packet. */
	dp_trim_padding(m, pi);
	frame = (uint8_t *)rte_pktmbuf_prepend(m, (uint16_t)hlen);
	if (sg_unlikely(frame == NULL)) {
		dp_drop(w, m, SG_DP_C_drop_xlate);
		return;
	}
	memmove(frame, frame + hlen, pi->l3_off);
	if (sg_unlikely(sg_pkt_encap_prepared(frame + pi->l3_off, inner_len, h, type, hash) < 0)) {
		dp_drop(w, m, SG_DP_C_drop_xlate);
		return;
	}
	frame[pi->l3_off - 2] = family == 4 ? 0x08 : 0x86;
	frame[pi->l3_off - 1] = family == 4 ? 0x00 : 0xdd;
	DP_COUNT(w, encap);
	if (sg_likely(cached))
		dp_egress_hit(w, m, nhe);
	else
		dp_egress(w, m, family, backend, SG_DP_ROLE_INTERNAL);
}

/* Send a packet toward its backend in one of the DSR modes. */
static void
dsr_send(struct sg_dp_worker *w, struct rte_mbuf *m, const struct sg_pkt_info *pi, uint8_t mode,
	 uint8_t family, const void *backend, uint32_t hash, uint64_t now)
{
	DP_COUNT(w, fwd);
	if (mode == SG_SVC_MODE_DSR_L2)
		dp_egress_l2(w, m, family, backend);
	else
		encap_send(w, m, pi, mode, family, backend, hash, now);
}

/*
 * The hash DSR encapsulation draws the outer UDP source port and flow
 * label from: the client's address and port, the same for every packet of
 * a flow whether it is tracked or not.
 */
static uint32_t
client_hash(uint8_t family, const void *client, rte_be16_t port)
{
	return rte_hash_crc(client, dp_addr_len(family), port);
}

static uint32_t
flow_client_hash(const struct sg_flow *f)
{
	return client_hash(f->family, sg_flow_addr(f, SG_FLOW_FWD_SRC), f->port[SG_FLOW_FWD_SRC]);
}

/* Refresh a flow with the packet: the TCP state machine, or the time. */
static inline void
seen(struct sg_flow *f, struct rte_mbuf *m, const struct sg_pkt_info *pi, unsigned int dir,
     uint64_t now)
{
	if (pi->l4_proto == IPPROTO_TCP)
		sg_flow_tcp_seen(f, dir, dp_frame(m)[pi->l4_off + 13], now);
	else
		sg_flow_touch(f, dir, now);
}

/*
 * A packet bigger than the MTU on its way out, as a router sees it: IPv6,
 * or IPv4 with DF, is answered with "packet too big" / "fragmentation
 * needed" quoting it as its sender sent it (true: it is gone); IPv4
 * without DF goes on, to be cut into fragments on the way out (false).
 */
static bool
refuse_too_big(struct sg_dp_worker *w, struct rte_mbuf *m, const struct sg_pkt_info *pi,
	       uint32_t mtu, uint64_t now)
{
	if (pi->l3 == SG_PKT_L3_IPV4 && !(pi->flags & SG_PKT_F_DF))
		return false;
	dp_refuse(w, m, pi, DP_ICMP_TOO_BIG, mtu, now);
	return true;
}

/* The role of the ports a packet of direction dir leaves by. */
static inline uint8_t
egress_role(unsigned int dir)
{
	return dir == SG_FLOW_DIR_FWD ? SG_DP_ROLE_INTERNAL : SG_DP_ROLE_EXTERNAL;
}

/*
 * Client packets come in on external ports, replies on internal ones; a
 * one-arm port takes both. Else the packet is dropped (and counted).
 */
static inline bool
right_side(struct sg_dp_worker *w, struct rte_mbuf *m, unsigned int dir)
{
	const uint8_t both = SG_DP_ROLE_EXTERNAL | SG_DP_ROLE_INTERNAL;
	uint8_t in_role = w->ctx->ports[dp_in_port(w, m)].roles;

	if (sg_likely((in_role & both & ~egress_role(dir)) || in_role == both))
		return true;
	dp_drop(w, m, SG_DP_C_drop_wrong_side);
	return false;
}

void
dp_forward(struct sg_dp_worker *w, struct rte_mbuf *m, const struct sg_pkt_info *pi,
	   struct sg_flow *f, unsigned int dir, uint64_t now)
{
	uint8_t to_role = egress_role(dir);
	struct sg_flow_xlate x;

	if (!right_side(w, m, dir))
		return;
	seen(f, m, pi, dir, now);
	sg_flow_xlate(f, dir, &x);
	if (is_dsr(f->mode)) {
		dsr_send(w, m, pi, f->mode, f->family, x.dst, flow_client_hash(f), now);
		return;
	}
	if (sg_unlikely(pi->ip_end - pi->l3_off > w->mtu_out[dir]) &&
	    refuse_too_big(w, m, pi, w->mtu_out[dir], now))
		return;
	if (sg_unlikely(!dp_hop_left(m, pi))) {
		dp_drop(w, m, SG_DP_C_drop_ttl);
		return;
	}
	if (sg_likely(sg_pkt_nat4_fast_ok(pi))) {
		/* The TTL drops in the same header checksum update. */
		sg_pkt_nat4_fast(dp_frame(m), pi, x.src, x.sport, x.dst, x.dport, x.csum);
	} else if (sg_likely(sg_pkt_nat6_fast_ok(pi))) {
		sg_pkt_nat6_fast(dp_frame(m), pi, x.src, x.sport, x.dst, x.dport, x.csum);
	} else {
		struct sg_pkt_nat nat = {
			.flags = SG_PKT_NAT_SRC | SG_PKT_NAT_DST,
			.sport = x.sport,
			.dport = x.dport,
		};

		(void)dp_hop(m, pi);	/* its TTL was checked above */
		memcpy(nat.src.a8, x.src, dp_addr_len(f->family));
		memcpy(nat.dst.a8, x.dst, dp_addr_len(f->family));
		if (sg_unlikely(sg_pkt_nat(dp_frame(m), pi, &nat) != 0)) {
			dp_drop(w, m, SG_DP_C_drop_xlate);
			return;
		}
	}
	w->stats.c[dir == SG_FLOW_DIR_FWD ? SG_DP_C_fwd : SG_DP_C_rev]++;
	dp_egress(w, m, f->family, x.dst, to_role);
}

void
dp_icmp_error_forward(struct sg_dp_worker *w, struct rte_mbuf *m, const struct sg_pkt_info *pi,
		      struct sg_flow *f, unsigned int dir, uint64_t now)
{
	uint32_t len = dp_addr_len(f->family);
	struct sg_pkt_nat outer = { .flags = SG_PKT_NAT_DST };
	struct sg_pkt_nat inner = { .flags = SG_PKT_NAT_SRC | SG_PKT_NAT_DST };
	struct sg_pkt_icmp_inner in;
	struct sg_flow_xlate x;

	if (!right_side(w, m, dir))
		return;
	sg_flow_xlate(f, dir, &x);
	if (is_dsr(f->mode)) {
		/* From beyond the client, about a reply the pod sent itself. */
		if (dir != SG_FLOW_DIR_FWD) {
			dp_drop(w, m, SG_DP_C_drop_icmp_unknown);
			return;
		}
		dsr_send(w, m, pi, f->mode, f->family, x.dst, flow_client_hash(f), now);
		return;
	}
	if (sg_unlikely(!dp_hop(m, pi))) {
		dp_drop(w, m, SG_DP_C_drop_ttl);
		return;
	}
	/*
	 * The quoted packet went the other way: it becomes that direction's
	 * translated tuple. The outer destination is this direction's; the
	 * outer source (whoever reported the error) is replaced only where
	 * the flow's packets have theirs replaced, as Linux NAT does, so
	 * that neither end learns an address from behind the gateway.
	 */
	memcpy(inner.src.a8, x.dst, len);
	memcpy(inner.dst.a8, x.src, len);
	inner.sport = x.dport;
	inner.dport = x.sport;
	memcpy(outer.dst.a8, x.dst, len);
	if (memcmp(x.src, sg_flow_addr(f, dir == SG_FLOW_DIR_FWD ? SG_FLOW_FWD_SRC : SG_FLOW_REV_SRC),
		   len) != 0) {
		memcpy(outer.src.a8, x.src, len);
		outer.flags |= SG_PKT_NAT_SRC;
	}
	if (sg_unlikely(sg_pkt_parse_icmp_error(dp_frame(m), pi, &in) != SG_PKT_OK ||
			sg_pkt_icmp_error_nat(dp_frame(m), pi, &in, &outer, &inner) != 0)) {
		dp_drop(w, m, SG_DP_C_drop_xlate);
		return;
	}
	DP_COUNT(w, icmp_xlate);
	dp_egress(w, m, f->family, x.dst, egress_role(dir));
}

/*
 * The flow hash Maglev places a new flow with: the whole tuple, or with
 * session affinity (ClientIP) the client's address alone, so that a
 * client's connections agree on every worker and gateway.
 */
static uint32_t
placement_hash(const struct sg_flow_key *key, const struct sg_svc_entry *e)
{
	if (e->flags & SG_SVC_F_AFFINITY)
		return rte_hash_crc(key->src, dp_addr_len(key->family), 0);
	return dp_flow_hash(key);
}

/*
 * The backend of a new flow, 0 if none is usable: Maglev's, or with
 * session affinity the one the client was sent to last, while it is still
 * usable and the client came back within the timeout (dp_affinity.c).
 */
static uint16_t
place(struct sg_dp_worker *w, const struct sg_flow_key *key, const struct sg_svc_entry *e,
      uint32_t hash, uint64_t now)
{
	uint16_t b = sg_svc_backend_for_hash(e, hash);

	if ((e->flags & SG_SVC_F_AFFINITY) && b != 0 && w->ctx->affinity != NULL)
		b = dp_affinity_pick(w->ctx->affinity, e, key->family, key->src, b, now);
	return b;
}

static bool
source_allowed(const struct sg_svc_entry *e, const struct sg_flow_key *key)
{
	if (key->family == 4) {
		rte_be32_t src;

		memcpy(&src, key->src, 4);
		return sg_svc_src_allowed4(e, src);
	}
	return sg_svc_src_allowed6(e, key->src);
}

/* A DSR packet of a flow not kept: to Maglev's pod, as its flow's packets would go. */
static void
dsr_stateless(struct sg_dp_worker *w, struct rte_mbuf *m, const struct sg_pkt_info *pi,
	      const struct sg_flow_key *key, const struct sg_svc_backend *be, uint8_t mode,
	      uint64_t now)
{
	DP_COUNT(w, stateless);
	dsr_send(w, m, pi, mode, be->family, be->addr,
		 client_hash(key->family, key->src, key->sport), now);
}

/* As dp_flow_new(): a NAT flow starts with a SYN (see there why). */
static bool
nat_may_start(struct rte_mbuf *m, const struct sg_pkt_info *pi)
{
	return pi->l4_proto != IPPROTO_TCP ||
	       (dp_frame(m)[pi->l4_off + 13] & (RTE_TCP_SYN_FLAG | RTE_TCP_ACK_FLAG)) ==
		       RTE_TCP_SYN_FLAG;
}

/*
 * The new flows the table takes now, the fewer of its free entries and
 * the rate limit's, and the drop counter of those it does not.
 */
static void
new_room(struct sg_dp_worker *w, struct dp_new_burst *nb, uint64_t now)
{
	uint32_t by_rate = sg_flow_rate_room(w->flows, now), entries = sg_flow_free(w->flows);

	nb->room = RTE_MIN(by_rate, entries);
	nb->refusal = entries < by_rate ? SG_DP_C_drop_flow_full : SG_DP_C_drop_flow_rate;
}

/*
 * The first stage, for every new flow of the burst at once: the hash, and
 * the fetch of the Maglev entry it picks. With session affinity the backend
 * is only known at creation (dp_affinity.c), so nothing is fetched.
 *
 * Under a flood, the flows the table will refuse, for want of entries or
 * over the new-flow rate, are known now: those past the burst's room. They
 * are marked, so that no SNAT port, reverse key or bucket is worked out
 * for them. The room is counted in flows that would be inserted, a few of
 * which may still not be (no backend, a DSR backend of the other family, a
 * second SYN of a flow made earlier in the burst): in a burst that finds
 * the room nearly used up, those few entries or tokens go unused, and such
 * a second SYN past the room is refused with the rest.
 */
void
dp_new_add(struct sg_dp_worker *w, struct dp_new_burst *nb, struct rte_mbuf *m,
	   const struct sg_pkt_info *pi, const struct sg_flow_key *key,
	   const struct sg_svc_entry *e, uint64_t now)
{
	struct dp_new_plan *p = &nb->plan[nb->n++];

	p->key = key;
	p->e = e;
	p->hash = placement_hash(key, e);
	p->rev_ready = false;
	p->nat = e->mode == SG_SVC_MODE_NAT && snat_count(w->snat, key->family) != 0 &&
		 nat_may_start(m, pi);
	p->refused = false;
	if (p->nat || e->mode != SG_SVC_MODE_NAT) {
		if (nb->inserts++ == 0)
			new_room(w, nb, now);
		p->refused = nb->inserts > nb->room;
		p->refusal = nb->refusal;
	}
	p->known = !(e->flags & SG_SVC_F_AFFINITY) && e->maglev_size != 0;
	if (p->known)
		rte_prefetch0(&e->maglev[p->hash % e->maglev_size]);
}

/*
 * The second stage, DP_NEW_AHEAD flows ahead: the reverse key the flow
 * will be inserted with, and for nat and dnat the fetch of its index
 * bucket (DSR's is kept, not indexed). A NAT flow's SNAT address and port
 * are taken from its pod's cursor now, so the key is exact.
 */
static void
plan_reverse(struct sg_dp_worker *w, struct dp_new_plan *p)
{
	const struct sg_flow_key *key = p->key;
	const struct sg_svc_backend *be;
	uint16_t b;

	if (!p->known || p->refused)
		return;
	b = sg_svc_backend_for_hash(p->e, p->hash);
	if (b == 0)
		return;	/* refused: no port taken */
	be = &p->e->backends[b];
	if (p->nat) {
		p->be = be;
		snat_key(w, key, be, snat_next(w, be, snat_count(w->snat, key->family)), &p->rev);
	} else if (p->e->mode != SG_SVC_MODE_NAT && be->family == key->family) {
		sg_flow_key_init(&p->rev, key->family, key->proto, be->addr, key->src, be->port,
				 key->sport);
	} else {
		return;	/* no reverse key: dropped, or DSR across families */
	}
	p->rev_ready = true;
	if (!is_dsr(p->e->mode))	/* DSR's is kept, not indexed */
		sg_flow_prefetch(w->flows, &p->rev);
}

/*
 * The third stage, DP_NEW_PROBE flows ahead, once the bucket is in: a
 * SNAT address and port whose reverse key looks taken are traded for the
 * cursor's next, so that the insert seldom has to try another and wait
 * for its bucket.
 */
static void
plan_probe(struct sg_dp_worker *w, struct dp_new_plan *p)
{
	if (!p->nat || !p->rev_ready || !sg_flow_key_seen(w->flows, &p->rev))
		return;
	snat_key(w, p->key, p->be, snat_next(w, p->be, snat_count(w->snat, p->key->family)),
		 &p->rev);
	sg_flow_prefetch(w->flows, &p->rev);
}

/* Bring the stages of the flows after the next one to create up to their distance. */
static void
plans_advance(struct sg_dp_worker *w, struct dp_new_burst *nb)
{
	while (nb->ahead < nb->n && nb->ahead <= nb->next + DP_NEW_AHEAD)
		plan_reverse(w, &nb->plan[nb->ahead++]);
	while (nb->probed < nb->ahead && nb->probed <= nb->next + DP_NEW_PROBE)
		plan_probe(w, &nb->plan[nb->probed++]);
}

/*
 * First packet of a flow to service entry e, planned ahead (p) or not
 * (NULL). Flows start from clients, on external ports: a backend's stray
 * reply to a SNAT address that is also a node address must not open a
 * NodePort flow.
 */
static void
flow_new(struct sg_dp_worker *w, struct rte_mbuf *m, const struct sg_pkt_info *pi,
	 const struct sg_flow_key *key, const struct sg_svc_entry *e, bool via_any,
	 const struct dp_new_plan *p, uint64_t now)
{
	uint8_t in_port = dp_in_port(w, m);
	const struct sg_flow_key *rev = p != NULL && p->rev_ready ? &p->rev : NULL;
	const struct sg_svc_backend *be;
	struct sg_flow *f = NULL;
	uint32_t hash;
	uint16_t b;
	uint8_t dir;
	int err = 0;

	if (sg_unlikely(!(w->ctx->ports[in_port].roles & SG_DP_ROLE_EXTERNAL))) {
		dp_drop(w, m, SG_DP_C_drop_wrong_side);
		return;
	}
	if (via_any && !(dp_owned(w, in_port, key->family, key->dst) & SG_NEIGH_ADDR_NODE)) {
		dp_drop(w, m, SG_DP_C_drop_nodeport_addr);
		return;
	}
	if (!source_allowed(e, key)) {
		dp_drop(w, m, SG_DP_C_drop_src_range);
		return;
	}
	hash = p != NULL ? p->hash : placement_hash(key, e);
	b = place(w, key, e, hash, now);
	if (b == 0) {
		dp_refuse(w, m, pi, DP_ICMP_PORT_UNREACH, 0, now);
		return;
	}
	be = &e->backends[b];
	if (p != NULL && p->refused) {	/* no SNAT port or key was worked out */
		if (is_dsr(e->mode))
			dsr_stateless(w, m, pi, key, be, e->mode, now);
		else
			dp_drop(w, m, p->refusal);
		return;
	}

	switch (e->mode) {
	case SG_SVC_MODE_NAT:
		/*
		 * A NAT flow starts with a SYN: for a segment in the middle of
		 * a connection we no longer track, a new SNAT port would only
		 * earn a RST from the backend.
		 */
		if (!nat_may_start(m, pi)) {
			dp_drop(w, m, SG_DP_C_drop_tcp_midstream);
			return;
		}
		f = nat_flow(w, key, e, b, rev, now, &dir);
		break;
	case SG_SVC_MODE_DNAT:
		f = direct_flow(w, key, e, b, rev, now, &dir, &err);
		if (f == NULL)
			w->stats.c[err == -EAGAIN ? SG_DP_C_drop_flow_rate :
				   err == -EEXIST ? SG_DP_C_drop_tuple_taken :
						    SG_DP_C_drop_flow_full]++;
		break;
	default:
		/*
		 * DSR: any packet may start a flow (Maglev sends a flow picked
		 * up mid-stream to the same pod); a backend of the other family
		 * has no reverse tuple to keep, and a full or rate-limited
		 * table only costs the flow its memory of the backend.
		 */
		if (be->family == key->family)
			f = direct_flow(w, key, e, b, rev, now, &dir, &err);
		if (f == NULL) {
			dsr_stateless(w, m, pi, key, be, e->mode, now);
			return;
		}
		break;
	}
	if (f == NULL) {
		rte_pktmbuf_free(m);
		return;
	}
	dp_forward(w, m, pi, f, dir, now);
}

void
dp_flow_new(struct sg_dp_worker *w, struct rte_mbuf *m, const struct sg_pkt_info *pi,
	    const struct sg_flow_key *key, const struct sg_svc_entry *e, bool via_any, uint64_t now)
{
	flow_new(w, m, pi, key, e, via_any, NULL, now);
}

void
dp_new_create(struct sg_dp_worker *w, struct dp_new_burst *nb, struct rte_mbuf *m,
	      const struct sg_pkt_info *pi, const struct sg_flow_key *key,
	      const struct sg_svc_entry *e, bool via_any, uint64_t now)
{
	const struct dp_new_plan *p;

	if (nb->next == nb->n || nb->plan[nb->next].key != key) {
		flow_new(w, m, pi, key, e, via_any, NULL, now);
		return;
	}
	p = &nb->plan[nb->next];
	/*
	 * The flows from the first refused one on need no stage: those are
	 * refused too, or need none anyway (dp_new_add()).
	 */
	if (!p->refused)
		plans_advance(w, nb);
	nb->next++;
	flow_new(w, m, pi, key, e, via_any, p, now);
}

/* Where the flow's backend is in e now: its old index first, else a search. */
static uint16_t
backend_find(const struct sg_svc_entry *e, const struct sg_flow *f)
{
	const uint8_t *addr = sg_flow_addr(f, SG_FLOW_REV_SRC);
	rte_be16_t port = f->port[SG_FLOW_REV_SRC];
	uint32_t len = dp_addr_len(f->family);

	for (uint32_t i = 0; i <= e->n_backends; i++) {
		uint32_t b = i == 0 ? f->backend : i;
		const struct sg_svc_backend *be;

		if (b == 0 || b > e->n_backends)
			continue;
		be = &e->backends[b];
		if (be->family == f->family && be->port == port && memcmp(be->addr, addr, len) == 0)
			return (uint16_t)b;
	}
	return 0;
}

/*
 * kube-proxy leaves a UDP conntrack entry pointing at a pod that is gone
 * until it times out, and a client that keeps talking never lets it: its
 * datagrams vanish. Here such a flow gives way to a new one on a serving
 * backend. TCP flows stay: a terminating pod finishes its connections,
 * and a dead one answers with a RST that ends them.
 */
void
dp_forward_recheck(struct sg_dp_worker *w, struct rte_mbuf *m, const struct sg_pkt_info *pi,
		   const struct sg_flow_key *key, struct sg_flow *f, uint64_t now)
{
	const struct sg_svc_entry *e;
	struct sg_svc_key sk;
	int via_any = 0;
	uint16_t b = 0;

	if (f->proto != IPPROTO_UDP) {
		f->epoch = w->svc_epoch;
		dp_forward(w, m, pi, f, SG_FLOW_DIR_FWD, now);
		return;
	}
	if (key->family == 4) {
		rte_be32_t dst;

		memcpy(&dst, key->dst, 4);
		sg_svc_key4(&sk, dst, key->dport, key->proto);
	} else {
		sg_svc_key6(&sk, key->dst, key->dport, key->proto);
	}
	e = sg_svc_lookup(w->ctx->svc, &sk, &via_any);
	if (e != NULL && e->id == f->service_id)
		b = backend_find(e, f);
	if (b != 0 && sg_svc_backend_serving(&e->backends[b])) {
		f->epoch = w->svc_epoch;
		f->backend = b;
		dp_forward(w, m, pi, f, SG_FLOW_DIR_FWD, now);
		return;
	}
	sg_flow_delete(w->flows, f);
	DP_COUNT(w, flow_evicted);
	if (e == NULL) {
		dp_drop(w, m, SG_DP_C_drop_not_ours);
		return;
	}
	dp_flow_new(w, m, pi, key, e, via_any != 0, now);
}

void
dp_icmp_error_stateless(struct sg_dp_worker *w, struct rte_mbuf *m, const struct sg_pkt_info *pi,
			const struct sg_flow_key *key, const struct sg_svc_entry *e, uint64_t now)
{
	const struct sg_svc_backend *be;
	uint16_t b = 0;

	if (e != NULL && is_dsr(e->mode))
		b = place(w, key, e, placement_hash(key, e), now);
	if (b == 0) {
		dp_drop(w, m, SG_DP_C_drop_icmp_unknown);
		return;
	}
	if (!right_side(w, m, SG_FLOW_DIR_FWD))
		return;
	be = &e->backends[b];
	DP_COUNT(w, stateless);
	dsr_send(w, m, pi, e->mode, be->family, be->addr,
		 client_hash(key->family, key->src, key->sport), now);
}
