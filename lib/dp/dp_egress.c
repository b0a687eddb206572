/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Where a packet leaves: the route (on-link by a port's prefix, else a
 * port's default router), the next hop's MAC through the worker's next-hop
 * cache and lib/neigh, the per-port transmit queues; DSR's outer header per
 * destination, which the cache keeps. The router's duty of decrementing
 * the TTL or hop limit is not here but in the NAT modes' rewrite
 * (dp_modes.c: dp_hop_left(), then folded into the checksum update or
 * dp_hop()); DSR passes the inner packet on unchanged.
 */
#include <errno.h>
#include <string.h>

#include <rte_byteorder.h>
#include <rte_ethdev.h>
#include <rte_ip.h>
#include <rte_ring.h>

#include "neigh.h"
#include "dp_private.h"

static bool
on_link(const struct sg_dp_port *p, uint8_t family, const void *dst)
{
	if (family == 4) {
		rte_be32_t a;

		memcpy(&a, dst, 4);
		return ((a ^ p->addr4) & p->mask4) == 0;
	}
	if (!p->has6)
		return false;
	for (unsigned int i = 0; i < 16; i++)
		if (((((const uint8_t *)dst)[i] ^ p->addr6[i]) & p->mask6[i]) != 0)
			return false;
	return true;
}

static bool
has_gateway(const struct sg_dp_port *p, uint8_t family)
{
	static const uint8_t zero[16];

	return family == 4 ? p->gw4 != 0 : memcmp(p->gw6, zero, 16) != 0;
}

int
sg_dp_route(const struct sg_dp_ctx *ctx, uint8_t family, const void *dst, uint8_t prefer,
	    union sg_pkt_addr *next_hop)
{
	int gw_any = -1, gw_pref = -1, link_any = -1;
	uint32_t alen = dp_addr_len(family);

	for (unsigned int i = 0; i < ctx->n_ports; i++) {
		const struct sg_dp_port *p = &ctx->ports[i];

		if (on_link(p, family, dst)) {
			if (p->roles & prefer) {
				memcpy(next_hop->a8, dst, alen);
				return (int)i;
			}
			if (link_any < 0)
				link_any = (int)i;
		}
		if (has_gateway(p, family)) {
			if (gw_pref < 0 && (p->roles & prefer))
				gw_pref = (int)i;
			if (gw_any < 0)
				gw_any = (int)i;
		}
	}
	if (link_any >= 0) {
		memcpy(next_hop->a8, dst, alen);
		return link_any;
	}
	if (gw_pref < 0)
		gw_pref = gw_any;
	if (gw_pref >= 0) {
		if (family == 4)
			memcpy(next_hop->a8, &ctx->ports[gw_pref].gw4, 4);
		else
			memcpy(next_hop->a8, ctx->ports[gw_pref].gw6, 16);
	}
	return gw_pref;
}

void
dp_egress_mtus(struct sg_dp_worker *w)
{
	const struct sg_dp_ctx *ctx = w->ctx;

	w->mtu_out[SG_FLOW_DIR_FWD] = w->mtu_out[SG_FLOW_DIR_REV] = UINT16_MAX;
	for (unsigned int i = 0; i < ctx->n_ports; i++) {
		const struct sg_dp_port *p = &ctx->ports[i];

		if (p->roles & SG_DP_ROLE_INTERNAL)
			w->mtu_out[SG_FLOW_DIR_FWD] = RTE_MIN(w->mtu_out[SG_FLOW_DIR_FWD], p->mtu);
		if (p->roles & SG_DP_ROLE_EXTERNAL)
			w->mtu_out[SG_FLOW_DIR_REV] = RTE_MIN(w->mtu_out[SG_FLOW_DIR_REV], p->mtu);
	}
}

void
dp_txq_flush(struct sg_dp_worker *w, uint8_t port)
{
	struct dp_txq *q = &w->txq[port];
	uint16_t sent = rte_eth_tx_burst(w->ctx->ports[port].port_id, w->index, q->pkts, q->n);

	w->stats.c[SG_DP_C_tx] += sent;
	for (uint16_t i = sent; i < q->n; i++)
		dp_drop(w, q->pkts[i], SG_DP_C_drop_tx_full);
	q->n = 0;
}

void
sg_dp_worker_flush(struct sg_dp_worker *w)
{
	for (unsigned int p = 0; p < w->ctx->n_ports; p++)
		if (w->txq[p].n > 0)
			dp_txq_flush(w, (uint8_t)p);
}

void
dp_tx_too_big(struct sg_dp_worker *w, uint8_t port, struct rte_mbuf *m)
{
	uint32_t mtu = w->ctx->ports[port].mtu;
	const uint8_t *frame = dp_frame(m);
	struct rte_mbuf *out[DP_FRAG_OUT_MAX];
	int n;

	/* Untagged IPv4 (we send no other) without DF. */
	if (frame[12] != 0x08 || frame[13] != 0x00 ||
	    (frame[RTE_ETHER_HDR_LEN + 6] & (RTE_IPV4_HDR_DF_FLAG >> 8))) {
		dp_drop(w, m, SG_DP_C_drop_mtu);
		return;
	}
	n = dp_fragment4(w, m, RTE_ETHER_HDR_LEN, mtu, out, RTE_DIM(out));
	for (int i = 0; i < n; i++)
		dp_tx(w, port, out[i]);
}

/*
 * The next hop's MAC for a packet whose source MAC is set: 0 with *mac, or
 * the packet was handed to the control thread to wait for resolution, or
 * dropped (counted); then non-zero and the caller forgets it.
 */
static int
nh_mac(struct sg_dp_worker *w, struct rte_mbuf *m, uint8_t port, uint8_t family,
       const union sg_pkt_addr *nh, struct rte_ether_addr *mac)
{
	const struct sg_dp_ctx *ctx = w->ctx;
	struct sg_neigh_miss miss = { .m = m };
	int rc = dp_neigh_mac(w, port, family, nh->a8, mac);

	if (sg_likely(rc == 0))
		return 0;
	if (rc == -EHOSTUNREACH) {
		dp_drop(w, m, SG_DP_C_drop_neigh_failed);
		return rc;
	}
	if (family == 4)
		sg_neigh_key4(&miss.key, ctx->ports[port].port_id, nh->a8);
	else
		sg_neigh_key6(&miss.key, ctx->ports[port].port_id, nh->a8);
	if (rte_ring_mp_enqueue_elem(ctx->neigh_miss, &miss, sizeof(miss)) != 0) {
		dp_drop(w, m, SG_DP_C_drop_ctl_full);
		return -ENOBUFS;
	}
	DP_COUNT(w, neigh_wait);
	return -EAGAIN;
}

bool
dp_encap_prepare(const struct sg_dp_ctx *ctx, uint8_t port, uint8_t family, const void *dst,
		 struct sg_pkt_encap_hdr *h)
{
	const struct sg_dp_port *p = &ctx->ports[port];
	/* IPIP, as it needs nothing more: the service's type goes with each packet. */
	struct sg_pkt_encap e = {
		.type = SG_PKT_ENCAP_IPIP,
		.family = family,
		.ttl = DP_ENCAP_TTL,
		.gue_port = ctx->gue_port,
	};

	if (family == 4)
		memcpy(e.src.a8, &p->addr4, 4);
	else if (p->has6)
		memcpy(e.src.a8, p->addr6, 16);
	else
		return false;
	memcpy(e.dst.a8, dst, dp_addr_len(family));
	return sg_pkt_encap_prepare(&e, h) == 0;
}

/*
 * Remember where dst goes, with DSR's outer header toward it whatever the
 * traffic that asked: the entry serves any mode's packets to dst.
 */
static void
nh_fill(struct sg_dp_worker *w, struct dp_nh_entry *e, uint8_t family, const void *dst,
	uint8_t prefer, uint8_t port, const struct rte_ether_addr *mac)
{
	*e = (struct dp_nh_entry){
		.gen = w->nh_gen, .encap.family = family, .prefer = prefer, .port = port,
		.mac = *mac,
	};
	memcpy(e->encap.dst.a8, dst, dp_addr_len(family));
	e->encap_ok = dp_encap_prepare(w->ctx, port, family, dst, &e->encap);
}

/*
 * Without a MAC yet the packet waits at the control thread, which resolves
 * the next hop and sends it on (lib/neigh holds a few per neighbour) after
 * writing the destination MAC: the source MAC is ours from here on.
 */
void
dp_egress_miss(struct sg_dp_worker *w, struct rte_mbuf *m, uint8_t family, const void *dst,
	       uint8_t prefer, struct dp_nh_entry *e)
{
	const struct sg_dp_ctx *ctx = w->ctx;
	struct rte_ether_addr mac;
	union sg_pkt_addr nh;
	int port;

	port = sg_dp_route(ctx, family, dst, prefer, &nh);
	if (sg_unlikely(port < 0)) {
		dp_drop(w, m, SG_DP_C_drop_no_route);
		return;
	}
	sg_pkt_eth_set_macs(dp_frame(m), NULL, ctx->ports[port].mac.addr_bytes);
	if (nh_mac(w, m, (uint8_t)port, family, &nh, &mac) != 0)
		return;
	nh_fill(w, e, family, dst, prefer, (uint8_t)port, &mac);
	sg_pkt_eth_set_macs(dp_frame(m), mac.addr_bytes, NULL);
	dp_tx_fit(w, (uint8_t)port, m);
}

void
dp_egress_l2(struct sg_dp_worker *w, struct rte_mbuf *m, uint8_t family, const void *dst)
{
	const struct sg_dp_ctx *ctx = w->ctx;
	struct rte_ether_addr mac;
	union sg_pkt_addr nh;
	int port = sg_dp_route(ctx, family, dst, SG_DP_ROLE_INTERNAL, &nh);

	/* Only a backend on one of our links has a MAC we can send to. */
	if (sg_unlikely(port < 0 || memcmp(nh.a8, dst, dp_addr_len(family)) != 0)) {
		dp_drop(w, m, SG_DP_C_drop_l2_offlink);
		return;
	}
	sg_pkt_eth_set_macs(dp_frame(m), NULL, ctx->ports[port].mac.addr_bytes);
	if (nh_mac(w, m, (uint8_t)port, family, &nh, &mac) != 0)
		return;
	sg_pkt_eth_set_macs(dp_frame(m), mac.addr_bytes, NULL);
	DP_COUNT(w, l2_fwd);
	dp_tx_fit(w, (uint8_t)port, m);
}
