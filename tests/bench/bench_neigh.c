/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Neighbour table figures: what a worker pays per packet for the next hop's
 * MAC (bulk lookups of 32 hits, single lookups, owned-address lookups) at
 * 1,000 and 65,536 neighbours, what answering an ARP request or a
 * neighbour solicitation in place costs, and how fast the control thread
 * applies learned MACs and resolves new neighbours. Prints; asserts nothing
 * about time. --quick: 1,000 neighbours and short loops (the test suite's
 * smoke run).
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_rcu_qsbr.h>

#include "sg_test_eal.h"
#include "neigh.h"
#include "pkt.h"

#define BURST 32

static const uint8_t OUR_MAC[6] = { 0x02, 0, 0, 0, 0, 0x01 };
static const uint8_t OUR4[4] = { 10, 0, 0, 1 };
static const uint8_t OUR6[16] = { 0x20, 0x01, 0x0d, 0xb8, [15] = 0x01 };

/* Results land here so the compiler cannot drop the work. */
static volatile uint64_t sink;

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
tx_free(void *arg, uint16_t port, struct rte_mbuf *m)
{
	(void)arg;
	(void)port;
	sink += rte_pktmbuf_data_len(m);
	rte_pktmbuf_free(m);
	return 0;
}

/* Neighbour i: 10.(i >> 16).(i >> 8).i on port 0, MAC 02:00:00:i. */
static struct sg_neigh_key
nb_key(uint32_t i)
{
	const uint8_t a[4] = { 10, (uint8_t)(1 + (i >> 16)), (uint8_t)(i >> 8), (uint8_t)i };
	struct sg_neigh_key k;

	sg_neigh_key4(&k, 0, a);
	return k;
}

static void
report(const char *what, uint64_t n, double secs, uint64_t cycles)
{
	printf("  %-44s %8.2f M/s  %7.1f cycles each\n", what, (double)n / secs / 1e6,
	       (double)cycles / (double)n);
}

/* Random keys, made before timing so that only lookups are measured. */
#define KEY_POOL 8192
static struct sg_neigh_key key_pool[KEY_POOL];

static void
bench_lookups(struct sg_neigh_table *t, uint32_t n_nb, uint64_t rounds)
{
	struct sg_neigh_key own[BURST];
	uint64_t words[BURST], c0, c1;
	uint8_t flags[BURST];
	uint32_t x = 12345;
	double t0, t1;

	for (unsigned int i = 0; i < KEY_POOL; i++) {
		x = x * 1103515245u + 12345u;
		key_pool[i] = nb_key((x >> 8) % n_nb);
	}
	printf(" %u neighbours:\n", n_nb);
	t0 = now_s();
	c0 = rte_rdtsc();
	for (uint64_t r = 0; r < rounds; r++)
		sink += sg_neigh_lookup_bulk(t, &key_pool[(r * BURST) % KEY_POOL], BURST, words);
	c1 = rte_rdtsc();
	t1 = now_s();
	report("bulk lookup, bursts of 32 hits", rounds * BURST, t1 - t0, c1 - c0);

	t0 = now_s();
	c0 = rte_rdtsc();
	for (uint64_t r = 0; r < rounds * BURST; r++)
		sink += sg_neigh_lookup(t, &key_pool[r % KEY_POOL]);
	c1 = rte_rdtsc();
	t1 = now_s();
	report("single lookup, hit", rounds * BURST, t1 - t0, c1 - c0);

	for (unsigned int i = 0; i < BURST; i++)
		sg_neigh_key4(&own[i], 0, i % 2 ? OUR4 : (const uint8_t[4]){ 10, 0, 0, 2 });
	t0 = now_s();
	c0 = rte_rdtsc();
	for (uint64_t r = 0; r < rounds; r++)
		sink += sg_neigh_owned_bulk(t, own, BURST, flags);
	c1 = rte_rdtsc();
	t1 = now_s();
	report("owned-address bulk lookup (half owned)", rounds * BURST, t1 - t0, c1 - c0);
}

static void
bench_answers(struct sg_neigh_table *t, uint64_t n)
{
	uint8_t req[60], ns[128], b[128];
	struct sg_neigh_rx_stats st;
	struct sg_neigh_learn l;
	struct sg_pkt_info pi, pi6;
	uint8_t dst[16], dmac[6];
	const uint8_t peer_mac[6] = { 0x02, 0, 0, 0, 0, 0x02 };
	const uint8_t peer4[4] = { 10, 0, 0, 2 };
	const uint8_t peer6[16] = { 0x20, 0x01, 0x0d, 0xb8, [15] = 0x02 };
	const uint8_t bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
	uint64_t c0, c1;
	uint32_t len;
	double t0, t1;
	int nslen;

	memset(&st, 0, sizeof(st));
	sg_neigh_arp_build(req, sizeof(req), 1, bcast, peer_mac, peer4, NULL, OUR4);
	sg_pkt_parse(req, sizeof(req), &pi);
	sg_neigh_solicited_node(OUR6, dst);
	sg_neigh_mcast_mac(dst, dmac);
	nslen = sg_neigh_ns_build(ns, sizeof(ns), peer_mac, dmac, peer6, dst, OUR6);
	sg_pkt_parse(ns, (uint32_t)nslen, &pi6);

	printf(" answers in place (frame copy included):\n");
	t0 = now_s();
	c0 = rte_rdtsc();
	for (uint64_t i = 0; i < n; i++) {
		memcpy(b, req, sizeof(req));
		len = sizeof(req);
		sink += sg_neigh_input(t, 0, b, &len, sizeof(b), &pi, &l, &st);
	}
	c1 = rte_rdtsc();
	t1 = now_s();
	report("ARP request -> reply", n, t1 - t0, c1 - c0);

	t0 = now_s();
	c0 = rte_rdtsc();
	for (uint64_t i = 0; i < n; i++) {
		memcpy(b, ns, (size_t)nslen);
		len = (uint32_t)nslen;
		sink += sg_neigh_input(t, 0, b, &len, sizeof(b), &pi6, &l, &st);
	}
	c1 = rte_rdtsc();
	t1 = now_s();
	report("NS -> NA (checks and checksums)", n, t1 - t0, c1 - c0);
	if (st.arp_answered != n || st.ns_answered != n)
		printf("  (unexpected: %" PRIu64 " ARP and %" PRIu64 " NS answered)\n",
		       st.arp_answered, st.ns_answered);
}

static void
bench_control(struct sg_neigh_table *t, uint32_t n_nb, uint64_t now)
{
	struct sg_neigh_learn l;
	uint64_t c0, c1;
	double t0, t1;

	printf(" control thread:\n");
	memset(&l, 0, sizeof(l));
	l.flags = SG_NEIGH_L_MAC | SG_NEIGH_L_TO_US | SG_NEIGH_L_REPLY;
	t0 = now_s();
	c0 = rte_rdtsc();
	for (uint32_t i = 0; i < n_nb; i++) {
		l.key = nb_key(i);
		l.mac[0] = 0x02;
		l.mac[2] = (uint8_t)(i >> 24);
		l.mac[3] = (uint8_t)(i >> 16);
		l.mac[4] = (uint8_t)(i >> 8);
		l.mac[5] = (uint8_t)(i + 1);
		sink += (uint64_t)sg_neigh_learn(t, &l, now);
	}
	c1 = rte_rdtsc();
	t1 = now_s();
	report("learn: MAC change applied", n_nb, t1 - t0, c1 - c0);
}

/* Create n neighbours by resolution (a request each) and their replies. */
static double
populate(struct sg_neigh_table *t, uint32_t n, uint64_t now)
{
	struct sg_neigh_learn l;
	double t0 = now_s();

	memset(&l, 0, sizeof(l));
	l.flags = SG_NEIGH_L_MAC | SG_NEIGH_L_TO_US | SG_NEIGH_L_REPLY;
	for (uint32_t i = 0; i < n; i++) {
		l.key = nb_key(i);
		if (sg_neigh_hold(t, &l.key, NULL, now) != 0)
			return -1;
		l.mac[0] = 0x02;
		l.mac[2] = (uint8_t)(i >> 24);
		l.mac[3] = (uint8_t)(i >> 16);
		l.mac[4] = (uint8_t)(i >> 8);
		l.mac[5] = (uint8_t)i;
		if (sg_neigh_learn(t, &l, now) != 0)
			return -1;
	}
	return now_s() - t0;
}

int
main(int argc, char **argv)
{
	int quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
	const uint32_t sizes[] = { 1000, 65536 };
	unsigned int n_sizes = quick ? 1 : 2;
	uint64_t rounds = quick ? 2000 : 400000;
	struct rte_mempool *pool;
	struct rte_rcu_qsbr *v;

	sg_test_eal_init(argv[0], "512");
	pool = rte_pktmbuf_pool_create("bench_neigh", 1023, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
				       SOCKET_ID_ANY);
	v = rte_zmalloc(NULL, rte_rcu_qsbr_get_memsize(1), RTE_CACHE_LINE_SIZE);
	if (pool == NULL || v == NULL || rte_rcu_qsbr_init(v, 1) != 0) {
		fprintf(stderr, "bench_neigh: setup failed\n");
		return 1;
	}
	printf("bench_neigh%s: TSC %.2f GHz\n", quick ? " --quick" : "",
	       (double)rte_get_tsc_hz() / 1e9);
	for (unsigned int s = 0; s < n_sizes; s++) {
		struct sg_neigh_conf c = {
			.qsbr = v, .pool = pool, .tx = tx_free, .max_neighbours = sizes[s],
			.max_addrs = 16, .socket_id = SOCKET_ID_ANY,
		};
		struct sg_neigh_port_conf pc = {
			.port = 0, .flags = SG_NEIGH_PORT_IPV4 | SG_NEIGH_PORT_IPV6,
			.ip4_prefix = 8, .ip6_prefix = 64,
		};
		struct sg_neigh_table *t = sg_neigh_create(&c);
		double secs;

		memcpy(pc.mac, OUR_MAC, 6);
		memcpy(pc.ip4, OUR4, 4);
		memcpy(pc.ip6, OUR6, 16);
		if (t == NULL || sg_neigh_port_set(t, &pc) != 0) {
			fprintf(stderr, "bench_neigh: table setup failed\n");
			return 1;
		}
		secs = populate(t, sizes[s], 1);
		if (secs < 0) {
			fprintf(stderr, "bench_neigh: populate failed\n");
			return 1;
		}
		printf(" resolved %u neighbours (request + reply each) in %.1f ms: %.2f M/s\n",
		       sizes[s], secs * 1e3, sizes[s] / secs / 1e6);
		bench_lookups(t, sizes[s], rounds / (s + 1));
		if (s == 0)
			bench_answers(t, rounds * 4);
		bench_control(t, sizes[s], 2);
		sg_neigh_free(t);
	}
	rte_free(v);
	rte_mempool_free(pool);
	rte_eal_cleanup();
	return 0;
}
