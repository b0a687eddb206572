/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The line-rate mode's engine (linerate.h): port set-up, ARP, and one
 * loop on the main lcore that sends probes when the TSC says they are due
 * and receives between sends, so one core does both and the timestamps
 * of request and reply come from the same clock.
 *
 * Not here: options, EAL and the report (lr_main.c), frame layout
 * (frame.c).
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_cycles.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_memcpy.h>

#include "neigh.h"
#include "pkt.h"
#include "frame.h"
#include "linerate.h"

#define BURST 32
#define NB_MBUF 8191
#define NB_DESC 1024
/* Offsets in our frames (untagged IPv4 + UDP). */
#define L4_OFF (BENCH_ETH_LEN + BENCH_IP4_LEN)
#define PAYLOAD_OFF (L4_OFF + BENCH_UDP_LEN)
/* The sequence number and timestamp: the probe after its magic. */
#define SEQ_OFF (PAYLOAD_OFF + 4)
#define TSC_OFF (SEQ_OFF + 4)
#define ARP_RETRY_SECONDS 0.2
#define ARP_TIMEOUT_SECONDS 3.0
/* The warm-up round's rate when the measured one asks for more. */
#define WARM_RATE_MAX 20000.0
#define WARM_DRAIN_SECONDS 0.5

struct lr {
	const struct bench_lr_conf *c;
	struct bench_lr_result *r;
	struct rte_mempool *pool;
	/* Each flow's frame with seq and timestamp zero, one after another. */
	uint8_t *tmpl;
	uint32_t stride;
	uint32_t payload_len;	/* what we send: the echo's name follows it */
	uint64_t *seen;		/* a bit per sequence number */
	/*
	 * Per flow, the highest sequence number answered + 1: replies of
	 * different backends overtake each other by nature, only within a
	 * flow (one backend, one path) is a late one reordering.
	 */
	uint32_t *flow_max;
	uint64_t next_seq;
	bool have_gw;
	uint8_t gw_mac[6];
	uint8_t mac[6];
};

static void
tx_one(struct lr *s, struct rte_mbuf *m)
{
	if (rte_eth_tx_burst(s->c->port_id, 0, &m, 1) != 1)
		rte_pktmbuf_free(m);
}

static int
port_setup(struct lr *s)
{
	const struct bench_lr_conf *c = s->c;
	struct rte_eth_conf conf = { 0 };
	struct rte_ether_addr mac;
	int sock = rte_eth_dev_socket_id(c->port_id), rc;

	if (sock < 0)
		sock = (int)rte_socket_id();
	s->pool = rte_pktmbuf_pool_create("lr_pool", NB_MBUF, 256, 0,
					  RTE_MBUF_DEFAULT_BUF_SIZE, sock);
	if (s->pool == NULL) {
		snprintf(s->r->error, sizeof(s->r->error), "mbuf pool: %s",
			 rte_strerror(rte_errno));
		return -1;
	}
	rc = rte_eth_dev_configure(c->port_id, 1, 1, &conf);
	if (rc == 0)
		rc = rte_eth_rx_queue_setup(c->port_id, 0, NB_DESC, (unsigned int)sock, NULL,
					    s->pool);
	if (rc == 0)
		rc = rte_eth_tx_queue_setup(c->port_id, 0, NB_DESC, (unsigned int)sock, NULL);
	if (rc == 0)
		rc = rte_eth_dev_start(c->port_id);
	if (rc == 0)
		rc = rte_eth_macaddr_get(c->port_id, &mac);
	if (rc != 0) {
		snprintf(s->r->error, sizeof(s->r->error), "port %s: %s", c->port_name,
			 rte_strerror(-rc));
		return -1;
	}
	memcpy(s->mac, mac.addr_bytes, 6);
	memcpy(s->r->port_mac, s->mac, 6);
	return 0;
}

/* The flows' frames, and the bitmap: everything the loop needs, before it runs. */
static int
prepare(struct lr *s)
{
	const struct bench_lr_conf *c = s->c;
	uint8_t payload[BENCH_FRAME_MIN] = BENCH_LR_MAGIC;

	s->payload_len = c->frame_len - PAYLOAD_OFF;
	s->stride = RTE_ALIGN_CEIL(c->frame_len, RTE_CACHE_LINE_SIZE);
	s->tmpl = calloc(c->flows, s->stride);
	s->seen = calloc(c->count / 64 + 1, sizeof(uint64_t));
	s->flow_max = calloc(c->flows, sizeof(uint32_t));
	if (s->tmpl == NULL || s->seen == NULL || s->flow_max == NULL) {
		snprintf(s->r->error, sizeof(s->r->error), "out of memory");
		return -1;
	}
	for (uint32_t i = 0; i < c->flows; i++) {
		struct bench_frame f = {
			.family = 4,
			.proto = IPPROTO_UDP,
			.src = c->addr,
			.dst = c->vip,
			.sport = rte_cpu_to_be_16((uint16_t)(BENCH_LR_SPORT + i)),
			.dport = rte_cpu_to_be_16(c->vport),
			/* The rest of the datagram is zeroes: magic, then padding. */
			.payload = payload,
			.payload_len = 4,
			.len = c->frame_len,
		};

		memcpy(f.dst_mac, s->gw_mac, 6);
		memcpy(f.src_mac, s->mac, 6);
		if (bench_frame_write(s->tmpl + (size_t)i * s->stride, s->stride, &f) < 0) {
			snprintf(s->r->error, sizeof(s->r->error), "frame of %u bytes", c->frame_len);
			return -1;
		}
	}
	return 0;
}

/*
 * n probes, flow by flow. The template's UDP checksum covers zeroes where
 * seq and timestamp go, so adding their words updates it (RFC 1624 eqn. 3
 * with m = 0): no sum over the whole datagram per packet.
 * Returns how many the port took; the rest are counted in tx_full.
 */
static unsigned int
send_probes(struct lr *s, unsigned int n, bool warm, uint32_t warm_flow)
{
	struct rte_mbuf *m[BURST];
	unsigned int k, sent;
	uint64_t tsc;

	if (rte_pktmbuf_alloc_bulk(s->pool, m, n) != 0) {
		s->r->tx_full += n;
		return 0;
	}
	tsc = rte_rdtsc();
	for (k = 0; k < n; k++) {
		uint32_t seq = warm ? BENCH_LR_WARM_SEQ : (uint32_t)s->next_seq++;
		uint32_t flow = warm ? warm_flow + k : seq % s->c->flows;
		uint8_t *p = rte_pktmbuf_mtod(m[k], uint8_t *);
		uint16_t csum;

		rte_memcpy(p, s->tmpl + (size_t)flow * s->stride, s->c->frame_len);
		memcpy(p + SEQ_OFF, &seq, 4);
		memcpy(p + TSC_OFF, &tsc, 8);
		memcpy(&csum, p + L4_OFF + 6, 2);
		csum = sg_csum_apply(csum, sg_csum_partial(p + SEQ_OFF, 12, 0));
		if (csum == 0)
			csum = 0xffff; /* RFC 768 */
		memcpy(p + L4_OFF + 6, &csum, 2);
		m[k]->data_len = (uint16_t)s->c->frame_len;
		m[k]->pkt_len = s->c->frame_len;
	}
	sent = rte_eth_tx_burst(s->c->port_id, 0, m, (uint16_t)n);
	if (sent < n) {
		rte_pktmbuf_free_bulk(&m[sent], n - sent);
		s->r->tx_full += n - sent;
	}
	return sent;
}

static void
send_arp_request(struct lr *s)
{
	static const uint8_t bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
	struct rte_mbuf *m = rte_pktmbuf_alloc(s->pool);
	int len;

	if (m == NULL)
		return;
	len = sg_neigh_arp_build(rte_pktmbuf_mtod(m, uint8_t *), rte_pktmbuf_tailroom(m), 1,
				 bcast, s->mac, s->c->addr, NULL, s->c->gateway);
	if (len < 0) {
		rte_pktmbuf_free(m);
		return;
	}
	m->data_len = (uint16_t)len;
	m->pkt_len = (uint32_t)len;
	tx_one(s, m);
}

/*
 * ARP: learn the gateway's MAC from anything it says, answer requests for
 * our address (the gateway asks before it can forward a reply to us).
 * Returns true when m was reused for the answer.
 */
static bool
on_arp(struct lr *s, struct rte_mbuf *m, uint8_t *buf, const struct sg_pkt_info *pi)
{
	const uint8_t *arp = buf + pi->l3_off;
	uint16_t op = (uint16_t)(arp[6] << 8 | arp[7]);

	if (!s->c->have_gateway_mac && memcmp(arp + 14, s->c->gateway, 4) == 0) {
		memcpy(s->gw_mac, arp + 8, 6);
		s->have_gw = true;
	}
	if (op != 1 || memcmp(arp + 24, s->c->addr, 4) != 0 ||
	    sg_neigh_arp_answer(buf, m->data_len, pi, s->mac) < 0)
		return false;
	s->r->arp_answered++;
	tx_one(s, m);
	return true;
}

static void
backend_count(struct lr *s, const uint8_t *name, uint32_t len)
{
	struct bench_lr_result *r = s->r;
	unsigned int i;

	if (len == 0 || len >= BENCH_LR_BACKEND_ID) {
		r->backend_unknown++;
		return;
	}
	/* The name goes into the report and its JSON as it is: printable, no quoting needed. */
	for (i = 0; i < len; i++)
		if (name[i] <= ' ' || name[i] > '~' || name[i] == '"' || name[i] == '\\') {
			r->backend_unknown++;
			return;
		}
	for (i = 0; i < r->backends; i++)
		if (memcmp(r->backend[i].id, name, len) == 0 && r->backend[i].id[len] == '\0') {
			r->backend[i].replies++;
			return;
		}
	if (i == BENCH_LR_MAX_BACKENDS) {
		r->backend_unknown++;
		return;
	}
	/* The table is zeroed: the name stays terminated. */
	memcpy(r->backend[i].id, name, len);
	r->backend[i].replies = 1;
	r->backends++;
}

/* A frame that may be a reply: count it; false if it is not one of ours. */
static bool
on_reply(struct lr *s, const uint8_t *buf, const struct sg_pkt_info *pi, uint64_t now)
{
	const struct bench_lr_conf *c = s->c;
	struct bench_lr_result *r = s->r;
	const uint8_t *ip = buf + pi->l3_off, *l4 = buf + pi->l4_off, *pl = l4 + 8;
	uint32_t plen, seq;
	uint16_t csum, want;
	uint64_t tsc;

	if (pi->l3 != SG_PKT_L3_IPV4 || pi->l4_proto != IPPROTO_UDP ||
	    !(pi->flags & SG_PKT_F_L4) || (pi->flags & SG_PKT_F_FRAG) ||
	    memcmp(ip + 16, c->addr, 4) != 0 || memcmp(ip + 12, c->vip, 4) != 0 ||
	    pi->sport != rte_cpu_to_be_16(c->vport))
		return false;
	plen = pi->ip_end - pi->l4_off - 8;
	memcpy(&csum, ip + 10, 2);
	want = sg_pkt_ipv4_cksum(ip);
	if (csum != want || plen < s->payload_len || memcmp(pl, BENCH_LR_MAGIC, 4) != 0)
		goto bad;
	memcpy(&csum, l4 + 6, 2);
	/* The gateway rewrote addresses and ports: its checksum work is checked too. */
	if (csum != 0 && csum != sg_pkt_l4_cksum(buf, pi))
		goto bad;
	memcpy(&seq, pl + 4, 4);
	memcpy(&tsc, pl + 8, 8);
	if (seq == BENCH_LR_WARM_SEQ) {
		r->warm_replies++;
		return true;
	}
	if (seq >= s->next_seq || tsc > now)
		goto bad;
	if (s->seen[seq / 64] & (1ull << (seq % 64))) {
		r->duplicates++;
		return true;
	}
	s->seen[seq / 64] |= 1ull << (seq % 64);
	r->received++;
	if (seq + 1 < s->flow_max[seq % c->flows])
		r->reordered++;
	else
		s->flow_max[seq % c->flows] = seq + 1u;
	bench_lat_add(&r->lat, now - tsc);
	backend_count(s, pl + s->payload_len, plen - s->payload_len);
	return true;
bad:
	r->bad++;
	return true;
}

static void
receive(struct lr *s)
{
	struct rte_mbuf *m[BURST];
	uint16_t n = rte_eth_rx_burst(s->c->port_id, 0, m, BURST);
	uint64_t now;

	if (n == 0)
		return;
	now = rte_rdtsc();
	for (uint16_t k = 0; k < n; k++) {
		uint8_t *buf = rte_pktmbuf_mtod(m[k], uint8_t *);
		struct sg_pkt_info pi;

		if (sg_pkt_parse_fast(buf, m[k]->data_len, &pi) != SG_PKT_OK) {
			s->r->other++;
		} else if (pi.l3 == SG_PKT_L3_ARP) {
			if (on_arp(s, m[k], buf, &pi))
				continue;
		} else if (!on_reply(s, buf, &pi, now)) {
			s->r->other++;
		}
		rte_pktmbuf_free(m[k]);
	}
}

static bool
stopped(const struct lr *s)
{
	return s->c->stop != NULL && atomic_load_explicit(s->c->stop, memory_order_relaxed);
}

static int
resolve_gateway(struct lr *s)
{
	uint64_t hz = rte_get_tsc_hz(), start = rte_rdtsc(), last = 0;

	if (s->c->have_gateway_mac) {
		memcpy(s->gw_mac, s->c->gateway_mac, 6);
		s->have_gw = true;
	}
	while (!s->have_gw && !stopped(s)) {
		uint64_t now = rte_rdtsc();

		if (now - start > (uint64_t)(ARP_TIMEOUT_SECONDS * (double)hz)) {
			snprintf(s->r->error, sizeof(s->r->error),
				 "no ARP reply from the gateway in %.0f s", ARP_TIMEOUT_SECONDS);
			return -1;
		}
		if (last == 0 || now - last > (uint64_t)(ARP_RETRY_SECONDS * (double)hz)) {
			send_arp_request(s);
			last = now;
		}
		receive(s);
	}
	memcpy(s->r->gateway_mac, s->gw_mac, 6);
	return 0;
}

/*
 * Send `total` probes at `rate` for at most `seconds`, receiving all the
 * while, then go on receiving until every probe is answered or `drain`
 * seconds have passed since the last send. Warm-up probes go one per flow.
 */
static void
run_phase(struct lr *s, bool warm, uint64_t total, double rate, double seconds, double drain)
{
	const double hz = (double)rte_get_tsc_hz(), per_cycle = rate / hz;
	const uint64_t send_cycles = (uint64_t)(seconds * hz), drain_cycles = (uint64_t)(drain * hz);
	uint64_t start = rte_rdtsc(), due_sent = 0, last = start, *sent, *answered;
	bool sending = total > 0;

	sent = warm ? &s->r->warm_sent : &s->r->sent;
	answered = warm ? &s->r->warm_replies : &s->r->received;
	while (!stopped(s)) {
		uint64_t now = rte_rdtsc();

		if (sending) {
			/* The first probe at once, then one per 1/rate; never more than a burst. */
			uint64_t due = (uint64_t)((double)(now - start) * per_cycle) + 1;

			if (due > total)
				due = total;
			if (due > due_sent) {
				unsigned int n = (unsigned int)RTE_MIN(due - due_sent, (uint64_t)BURST);

				*sent += send_probes(s, n, warm, (uint32_t)due_sent);
				due_sent += n;
				/* The turn's time: a later reading would make now - last wrap. */
				last = now;
			}
			if (due_sent >= total || now - start >= send_cycles)
				sending = false;
		}
		receive(s);
		if (!sending && (*answered >= *sent || now - last >= drain_cycles))
			break;
	}
	if (!warm)
		s->r->send_seconds = (double)(last - start) / hz;
}

int
bench_lr_run(const struct bench_lr_conf *c, struct bench_lr_result *r)
{
	struct lr s = { .c = c, .r = r };
	int rc = -1;

	memset(r, 0, sizeof(*r));
	bench_lat_reset(&r->lat);
	r->tsc_hz = (double)rte_get_tsc_hz();
	if (c->count == 0 || c->count > BENCH_LR_MAX_COUNT || c->flows == 0 ||
	    c->flows > BENCH_LR_MAX_FLOWS || c->rate == 0 ||
	    c->frame_len < PAYLOAD_OFF + BENCH_LR_PROBE_LEN || c->frame_len > 1514) {
		snprintf(r->error, sizeof(r->error), "invalid configuration");
		return -1;
	}
	if (port_setup(&s) != 0)
		goto free_pool;
	if (resolve_gateway(&s) != 0 || prepare(&s) != 0)
		goto stop_port;

	/*
	 * Warm-up: one probe per flow, not counted. The gateway learns our
	 * MAC and creates its flows, the backends wake, so the measured round
	 * sees the steady state.
	 */
	run_phase(&s, true, c->flows, RTE_MIN((double)c->rate, WARM_RATE_MAX), c->warmup,
		  WARM_DRAIN_SECONDS);
	run_phase(&s, false, c->count, (double)c->rate, c->duration, c->drain);
	r->rate_pps = r->send_seconds > 0 ? (double)r->sent / r->send_seconds : 0;
	r->loss_pct = r->sent ? 100.0 * (double)(r->sent - r->received) / (double)r->sent : 0;
	rc = 0;
stop_port:
	free(s.flow_max);
	free(s.seen);
	free(s.tmpl);
	rte_eth_dev_stop(c->port_id);
free_pool:
	/* The port may still hold mbufs of the pool until it is closed. */
	rte_eth_dev_close(c->port_id);
	rte_mempool_free(s.pool);
	return rc;
}
