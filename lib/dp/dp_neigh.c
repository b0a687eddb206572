/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The worker's side of lib/neigh: answering ARP and NDP for owned
 * addresses, passing what they teach to the control thread, owned-address
 * checks and next-hop MACs, for both families.
 */
#include <errno.h>
#include <netinet/in.h>
#include <string.h>

#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include "neigh.h"
#include "dp_private.h"

static uint16_t
port_id(const struct sg_dp_worker *w, uint8_t port)
{
	return w->ctx->ports[port].port_id;
}

/*
 * Give an ARP or NDP packet to lib/neigh: it may become the answer (sent
 * back out of in_port) and may teach the control thread a neighbour.
 */
void
dp_neigh_input(struct sg_dp_worker *w, struct rte_mbuf *m, const struct sg_pkt_info *pi,
	    uint8_t in_port)
{
	struct sg_neigh_learn learn;
	uint32_t len = rte_pktmbuf_data_len(m);
	uint32_t cap = len + rte_pktmbuf_tailroom(m);
	unsigned int r;

	r = sg_neigh_input(w->ctx->neigh, port_id(w, in_port), rte_pktmbuf_mtod(m, uint8_t *),
			   &len, cap, pi, &learn, &w->neigh_rx);
	if (r & SG_NEIGH_RX_LEARN) {
		if (rte_ring_mp_enqueue_elem(w->ctx->neigh_learn, &learn, sizeof(learn)) == 0)
			DP_COUNT(w, neigh_learn);
		else
			DP_COUNT(w, neigh_learn_lost);
	}
	if (!(r & SG_NEIGH_RX_REPLY)) {
		if (r == 0)
			DP_COUNT(w, drop_neigh_ignored);
		rte_pktmbuf_free(m);
		return;
	}
	/* An NA may be longer than the solicitation it answers. */
	m->data_len = (uint16_t)len;
	m->pkt_len = len;
	if (pi->l3 == SG_PKT_L3_ARP)
		DP_COUNT(w, arp_reply);
	else
		DP_COUNT(w, nd_reply);
	dp_tx(w, in_port, m);
}

uint8_t
dp_owned(const struct sg_dp_worker *w, uint8_t in_port, uint8_t family, const void *addr)
{
	struct sg_neigh_key k;

	if (family == 4)
		sg_neigh_key4(&k, port_id(w, in_port), addr);
	else
		sg_neigh_key6(&k, port_id(w, in_port), addr);
	return sg_neigh_owned(w->ctx->neigh, &k);
}

int
dp_neigh_mac(const struct sg_dp_worker *w, uint8_t port, uint8_t family, const void *nh,
	     struct rte_ether_addr *mac)
{
	struct sg_neigh_key k;
	uint64_t word;

	if (family == 4)
		sg_neigh_key4(&k, port_id(w, port), nh);
	else
		sg_neigh_key6(&k, port_id(w, port), nh);
	word = sg_neigh_lookup(w->ctx->neigh, &k);
	if (sg_likely(sg_neigh_word_usable(word))) {
		sg_neigh_word_mac(word, mac->addr_bytes);
		return 0;
	}
	return sg_neigh_word_failed(word) ? -EHOSTUNREACH : -ENOENT;
}
