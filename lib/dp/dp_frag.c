/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * IPv4 fragments. A fragmented datagram to a service is reassembled
 * (rte_ip_frag) by the worker its fragments all map to, made one linear
 * packet, and from then on handled like any other: its flow, its backend,
 * its translation. A datagram that no longer fits the egress MTU is cut
 * again (rte_ipv4_fragment_copy_nonseg_packet), as a router would.
 *
 * Why reassemble rather than pass fragments on one by one: only the first
 * fragment carries the ports that name the flow, and with several workers
 * that flow belongs to a worker chosen by the client's port. Reassembly
 * keeps every later step unchanged, and rte_ip_frag bounds what incomplete
 * datagrams may hold: at most frag_max of them per worker, each of at most
 * RTE_LIBRTE_IP_FRAG_MAX_FRAG fragments, for at most frag_timeout_ms.
 *
 * Linear copies of large datagrams come from a pool of the worker's own
 * (one mbuf holds the largest datagram), and so do the fragments cut on
 * the way out, so that neither can starve the receive queues.
 */
/* rte_ip_frag_table_del_expired_entries(), rte_ipv4_fragment_copy_nonseg_packet() */
#define ALLOW_EXPERIMENTAL_API

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <rte_cycles.h>
#include <rte_ip.h>
#include <rte_ip_frag.h>
#include <rte_log.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

#include "dp_private.h"

/* Linear datagrams in flight per worker: reassembled, not yet sent. */
#define FRAG_LINEAR_MBUFS 63
/* Largest buffer an mbuf can have (buf_len is 16 bits). */
#define FRAG_LINEAR_ROOM UINT16_MAX
/* Fragments cut on the way out, in flight per worker. */
#define FRAG_OUT_MBUFS 1023
/* Associativity of the reassembly table's buckets. */
#define FRAG_BUCKET_ENTRIES 8

static struct rte_mempool *
pool_create(const char *what, uint16_t index, unsigned int n, uint16_t room, int socket)
{
	char name[RTE_MEMPOOL_NAMESIZE];

	snprintf(name, sizeof(name), "sg_%s%u", what, index);
	return rte_pktmbuf_pool_create(name, n, 0, 0, room, socket);
}

int
dp_frag_init(struct sg_dp_worker *w, const struct sg_dp_worker_conf *conf)
{
	uint32_t max = conf->frag_max;
	uint32_t buckets = rte_align32pow2(RTE_MAX(max / FRAG_BUCKET_ENTRIES * 2, 1u));
	int level;

	w->frag_out_pool = pool_create("fo", w->index, FRAG_OUT_MBUFS,
				       RTE_MBUF_DEFAULT_BUF_SIZE, conf->socket_id);
	if (w->frag_out_pool == NULL)
		return -ENOMEM;
	if (max == 0)
		return 0;
	w->frag_linear_pool = pool_create("fl", w->index, FRAG_LINEAR_MBUFS,
					  FRAG_LINEAR_ROOM, conf->socket_id);
	/* rte_ip_frag says how much it allocated at INFO, on the USER1 log type. */
	level = rte_log_get_level(RTE_LOGTYPE_USER1);
	rte_log_set_level(RTE_LOGTYPE_USER1, RTE_LOG_NOTICE);
	w->frag_tbl = rte_ip_frag_table_create(buckets, FRAG_BUCKET_ENTRIES, max,
					       conf->frag_timeout_ms * (rte_get_tsc_hz() / 1000),
					       conf->socket_id);
	if (level >= 0)
		rte_log_set_level(RTE_LOGTYPE_USER1, (uint32_t)level);
	if (w->frag_linear_pool == NULL || w->frag_tbl == NULL) {
		dp_frag_free(w);
		return -ENOMEM;
	}
	return 0;
}

void
dp_frag_free(struct sg_dp_worker *w)
{
	rte_ip_frag_free_death_row(&w->frag_dr, 0);
	/* Frees the fragments of incomplete datagrams too. */
	if (w->frag_tbl != NULL)
		rte_ip_frag_table_destroy(w->frag_tbl);
	w->frag_tbl = NULL;
	rte_mempool_free(w->frag_linear_pool);
	rte_mempool_free(w->frag_out_pool);
	w->frag_linear_pool = w->frag_out_pool = NULL;
}

void
dp_frag_expire(struct sg_dp_worker *w)
{
	if (w->frag_tbl == NULL)
		return;
	rte_ip_frag_table_del_expired_entries(w->frag_tbl, &w->frag_dr, rte_rdtsc());
	rte_ip_frag_free_death_row(&w->frag_dr, 0);
}

void
dp_frag_flush(struct sg_dp_worker *w)
{
	if (w->frag_dr.cnt > 0)
		rte_ip_frag_free_death_row(&w->frag_dr, 0);
}

/*
 * The reassembled chain as one linear packet: in place when the first
 * segment has the room, else copied into an mbuf of the linear pool.
 * NULL (and the chain freed, counted) when neither works.
 */
static struct rte_mbuf *
linear(struct sg_dp_worker *w, struct rte_mbuf *m)
{
	uint32_t len = rte_pktmbuf_pkt_len(m);
	struct rte_mbuf *l;

	if (rte_pktmbuf_linearize(m) == 0)
		return m;
	if (len > FRAG_LINEAR_ROOM - RTE_PKTMBUF_HEADROOM) {
		dp_drop(w, m, SG_DP_C_drop_frag_big);
		return NULL;
	}
	l = rte_pktmbuf_alloc(w->frag_linear_pool);
	if (l == NULL) {
		dp_drop(w, m, SG_DP_C_drop_frag_nomem);
		return NULL;
	}
	rte_pktmbuf_read(m, 0, len, rte_pktmbuf_append(l, (uint16_t)len));
	l->port = m->port;
	rte_pktmbuf_free(m);
	return l;
}

struct rte_mbuf *
dp_frag_reassemble(struct sg_dp_worker *w, struct rte_mbuf *m, struct sg_pkt_info *pi)
{
	struct rte_ipv4_hdr *ip;
	enum sg_pkt_reason r;

	if (w->frag_tbl == NULL || pi->l3 != SG_PKT_L3_IPV4) {
		dp_drop(w, m, SG_DP_C_drop_frag);
		return NULL;
	}
	DP_COUNT(w, frag_in);
	/* Ethernet padding would be taken for data by the reassembly. */
	rte_pktmbuf_trim(m, rte_pktmbuf_pkt_len(m) - pi->ip_end);
	m->l2_len = pi->l3_off;
	m->l3_len = pi->l4_off - pi->l3_off;
	ip = (struct rte_ipv4_hdr *)(dp_frame(m) + pi->l3_off);
	/* NULL: kept until the rest arrives, or refused to the death row. */
	m = rte_ipv4_frag_reassemble_packet(w->frag_tbl, &w->frag_dr, m, rte_rdtsc(), ip);
	if (m == NULL)
		return NULL;
	m = linear(w, m);
	if (m == NULL)
		return NULL;
	ip = (struct rte_ipv4_hdr *)(dp_frame(m) + pi->l3_off);
	/* rte_ip_frag leaves the checksum zero; every later update is incremental. */
	ip->hdr_checksum = 0;
	ip->hdr_checksum = rte_ipv4_cksum(ip);
	r = sg_pkt_parse(dp_frame(m), rte_pktmbuf_data_len(m), pi);
	if (sg_unlikely(r != SG_PKT_OK)) {
		w->stats.parse[r]++;
		dp_drop(w, m, SG_DP_C_drop_parse);
		return NULL;
	}
	DP_COUNT(w, frag_reassembled);
	return m;
}

int
dp_fragment4(struct sg_dp_worker *w, struct rte_mbuf *m, uint32_t l3_off, uint32_t mtu,
	     struct rte_mbuf **out, unsigned int n_out)
{
	uint8_t l2[RTE_ETHER_HDR_LEN];
	uint16_t in_port = m->port;
	int n;

	if (l3_off != sizeof(l2) || rte_pktmbuf_data_len(m) != rte_pktmbuf_pkt_len(m)) {
		dp_drop(w, m, SG_DP_C_drop_mtu);
		return -EINVAL;
	}
	memcpy(l2, dp_frame(m), sizeof(l2));
	rte_pktmbuf_adj(m, sizeof(l2));
	n = rte_ipv4_fragment_copy_nonseg_packet(m, out, (uint16_t)RTE_MIN(n_out, DP_FRAG_OUT_MAX),
						 (uint16_t)mtu, w->frag_out_pool);
	if (n < 0) {
		dp_drop(w, m, SG_DP_C_drop_frag_nomem);
		return n;
	}
	rte_pktmbuf_free(m);
	for (int i = 0; i < n; i++) {
		struct rte_mbuf *f = out[i];
		/* Fragments start at the pool's headroom: room for any header. */
		uint8_t *frame = (uint8_t *)rte_pktmbuf_prepend(f, sizeof(l2));
		struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)(frame + sizeof(l2));

		/* The copy leaves the header checksum zero. */
		memcpy(frame, l2, sizeof(l2));
		ip->hdr_checksum = rte_ipv4_cksum(ip);
		f->port = in_port;
	}
	w->stats.c[SG_DP_C_frag_out] += (uint64_t)n;
	return n;
}
