/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Micro-benchmark of lib/flow on one lcore: bulk lookups in bursts of 32
 * (all hits, at 1k, 64k and 1M flows; all misses; half and half), single
 * lookups, inserts, deletes and the sweep's cost per entry; then the index
 * at its worst load (a full table of NAT flows with random tuples) and under
 * churn there. Prints rates, TSC cycles per operation and what the index
 * looks like (buckets, memory, keys out of their primary bucket, stash);
 * asserts nothing about time. --quick runs small sizes for a second or two,
 * as the test suite's smoke run.
 */
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_byteorder.h>
#include <rte_common.h>
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_memory.h>

#include <rte_prefetch.h>

#include "sg_common.h"
#include "flow.h"
#include "flow_private.h"
#include "sg_test_eal.h"

struct bench_cfg {
	uint32_t flows[3];	/* table sizes; every figure for the last */
	unsigned int n_sizes;
	uint32_t lookups;	/* per lookup figure, a multiple of 32 */
	uint32_t worst_log2;	/* the worst-load table: 7 x 2^worst_log2 / 4 flows */
	uint32_t churn;		/* delete and insert pairs there */
};

/* 1k flows stay in L1/L2, 64k in L3 (about 12 MB), 1M in DRAM. */
static const struct bench_cfg full_cfg = {
	{ 1000, 65536, 1000000 }, 3, 8u << 20, 19, 1u << 20
};
static const struct bench_cfg quick_cfg = { { 1000, 65536 }, 2, 1u << 18, 12, 1u << 14 };

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

/* xorshift64* (Vigna 2016): fixed seed, so every run looks up the same keys. */
static uint64_t
rng(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dull;
}

/*
 * Keys 2i and 2i+1 are flow i's forward and reverse keys: a client of
 * 198.51.100.0/24 to the VIP 192.0.2.10:80, DNATed to a pod of 203.0.113.0/24.
 */
static void
make_keys(struct sg_flow_key *keys, uint32_t n, uint32_t salt)
{
	for (uint32_t i = 0; i < n; i++) {
		uint32_t client = rte_cpu_to_be_32(0xc6336400u | ((i >> 16) & 0xff));
		uint32_t vip = rte_cpu_to_be_32(0xc000020au);
		uint32_t pod = rte_cpu_to_be_32(0xcb007100u | (i % 200 + 1));
		rte_be16_t cport = rte_cpu_to_be_16((uint16_t)i);
		rte_be16_t vport = rte_cpu_to_be_16((uint16_t)(80 + salt));

		sg_flow_key_init(&keys[2 * i], SG_FLOW_V4, IPPROTO_TCP, &client, &vip, cport, vport);
		sg_flow_key_init(&keys[2 * i + 1], SG_FLOW_V4, IPPROTO_TCP, &pod, &client,
				 rte_cpu_to_be_16(8080), cport);
	}
}

static void
report(uint32_t flows, const char *what, uint64_t ops, uint64_t cycles)
{
	double secs = (double)cycles / (double)rte_get_tsc_hz();

	printf("%9" PRIu32 "  %-34s %10" PRIu64 "  %8.2f  %9.1f\n", flows, what, ops,
	       (double)ops / secs / 1e6, (double)cycles / (double)ops);
}

static struct sg_flow_table *
new_table(uint32_t max_flows)
{
	struct sg_flow_conf c;
	struct sg_flow_table *t;

	memset(&c, 0, sizeof(c));
	c.name = "bench";
	c.socket_id = (int)rte_socket_id();
	c.max_flows = max_flows;
	c.max_flows_v6 = 1;	/* IPv4 only: no address pool to pay for */
	c.hash_seed = 1;
	t = sg_flow_table_create(&c);
	if (t == NULL) {
		perror("sg_flow_table_create");
		exit(1);
	}
	return t;
}

/* In idx[]: the key is miss[] rather than keys[]. */
#define FROM_MISS 0x80000000u

static inline const struct sg_flow_key *
key_at(const struct sg_flow_key *keys, const struct sg_flow_key *miss, uint32_t i)
{
	return i & FROM_MISS ? &miss[i & ~FROM_MISS] : &keys[i];
}

/*
 * Look up `count` keys, in bursts of 32, drawn from idx[] over keys[] and
 * miss[]. A worker builds its keys from headers it has just read, so the
 * keys of the next burst are prefetched: at 1M flows the key arrays are
 * 80 MB each, and fetching them would otherwise be much of what is measured.
 */
static uint64_t
run_lookups(struct sg_flow_table *t, const struct sg_flow_key *keys,
	    const struct sg_flow_key *miss, const uint32_t *idx, uint32_t count, uint64_t *hits)
{
	const struct sg_flow_key *kp[SG_MAX_BURST];
	struct sg_flow *fl[SG_MAX_BURST];
	uint8_t dirs[SG_MAX_BURST];
	uint64_t start, h = 0;

	start = rte_rdtsc();
	for (uint32_t b = 0; b < count; b += SG_MAX_BURST) {
		for (unsigned int k = 0; k < SG_MAX_BURST; k++) {
			kp[k] = key_at(keys, miss, idx[b + k]);
			if (b + SG_MAX_BURST < count)
				rte_prefetch0(key_at(keys, miss, idx[b + SG_MAX_BURST + k]));
		}
		h += sg_flow_lookup_bulk(t, kp, SG_MAX_BURST, 1, fl, dirs);
	}
	*hits = h;
	return rte_rdtsc() - start;
}

/* The same, one key at a time with sg_flow_lookup(). */
static uint64_t
run_single(struct sg_flow_table *t, const struct sg_flow_key *keys,
	   const struct sg_flow_key *miss, const uint32_t *idx, uint32_t count, uint64_t *hits)
{
	uint64_t start, h = 0;

	start = rte_rdtsc();
	for (uint32_t i = 0; i < count; i++) {
		if (i + SG_MAX_BURST < count)
			rte_prefetch0(key_at(keys, miss, idx[i + SG_MAX_BURST]));
		h += sg_flow_lookup(t, key_at(keys, miss, idx[i]), 1, NULL) != NULL;
	}
	*hits = h;
	return rte_rdtsc() - start;
}

static void
report_index(uint32_t flows, const struct sg_flow_table *t)
{
	struct flow_index_info in;

	flow_table_index_info(t, &in);
	printf("%9" PRIu32 "  index: %u buckets, %.1f MB, %.1f%% of slots used, %.3f%% of keys"
	       " out of their\n%9s  primary bucket, %u in the stash; so far %" PRIu64 " moved, %"
	       PRIu64 " stashed, %" PRIu64 " settled\n", flows, in.buckets,
	       (double)in.bytes / (1 << 20), 100.0 * (double)in.keys / ((double)in.buckets * 7),
	       in.keys ? 100.0 * (double)(in.spilled + in.stash_n) / (double)in.keys : 0.0, "",
	       in.stash_n, in.moves, in.stashed, in.settled);
}

static void
bench_size(uint32_t flows, const struct bench_cfg *cfg, int full_ops)
{
	struct sg_flow_key *keys = malloc(sizeof(*keys) * 2 * (size_t)flows);
	struct sg_flow_key *miss = malloc(sizeof(*miss) * 2 * (size_t)flows);
	uint32_t *idx = malloc(sizeof(*idx) * cfg->lookups);
	struct sg_flow **made = malloc(sizeof(*made) * flows);
	struct sg_flow_table *t;
	uint64_t cyc, hits;

	if (keys == NULL || miss == NULL || idx == NULL || made == NULL) {
		fprintf(stderr, "bench_flow: out of memory\n");
		exit(1);
	}
	make_keys(keys, flows, 0);
	make_keys(miss, flows, 1);	/* another VIP port: never inserted */
	t = new_table(flows);

	cyc = rte_rdtsc();
	for (uint32_t i = 0; i < flows; i++)
		if (sg_flow_insert(t, &keys[2 * i], &keys[2 * i + 1], i, 1, 0, 1, &made[i]) != 0) {
			fprintf(stderr, "bench_flow: insert %" PRIu32 " failed\n", i);
			exit(1);
		}
	cyc = rte_rdtsc() - cyc;
	if (full_ops) {
		report(flows, "insert (forward + reverse key)", flows, cyc);
		report_index(flows, t);
	}

	/* Hit-heavy: every key a live flow's, forward or reverse, at random. */
	for (uint32_t i = 0; i < cfg->lookups; i++)
		idx[i] = (uint32_t)(rng() % (2 * (uint64_t)flows));
	run_lookups(t, keys, miss, idx, cfg->lookups / 8, &hits);	/* warm up */
	cyc = run_lookups(t, keys, miss, idx, cfg->lookups, &hits);
	if (hits != cfg->lookups) {
		fprintf(stderr, "bench_flow: %" PRIu64 " hits of %" PRIu32 "\n", hits, cfg->lookups);
		exit(1);
	}
	report(flows, "lookup, all hits (bulk of 32)", cfg->lookups, cyc);

	if (full_ops) {
		cyc = run_single(t, keys, miss, idx, cfg->lookups, &hits);
		report(flows, "lookup, all hits, one by one", cfg->lookups, cyc);

		/* A flood of new tuples: every key a miss. */
		for (uint32_t i = 0; i < cfg->lookups; i++)
			idx[i] |= FROM_MISS;
		cyc = run_lookups(t, keys, miss, idx, cfg->lookups, &hits);
		report(flows, "lookup, all misses (bulk of 32)", cfg->lookups, cyc);

		/* Established traffic mixed with a flood: every other key a miss. */
		for (uint32_t i = 0; i < cfg->lookups; i += 2)
			idx[i] &= ~FROM_MISS;
		cyc = run_lookups(t, keys, miss, idx, cfg->lookups, &hits);
		report(flows, "lookup, half hits (bulk of 32)", cfg->lookups, cyc);

		/* What the worker's sweep budget costs when nothing expires. */
		cyc = rte_rdtsc();
		for (uint32_t done = 0; done < flows; done += 256)
			sg_flow_sweep(t, 2, 256);
		cyc = rte_rdtsc() - cyc;
		report(flows, "sweep, per entry visited", RTE_ALIGN_CEIL(flows, 256u), cyc);

		cyc = rte_rdtsc();
		for (uint32_t i = 0; i < flows; i++)
			sg_flow_delete(t, made[i]);
		cyc = rte_rdtsc() - cyc;
		report(flows, "delete (forward + reverse key)", flows, cyc);
	}

	sg_flow_table_free(t);
	free(made);
	free(idx);
	free(miss);
	free(keys);
}

/*
 * A NAT flow of random tuples: a client of 198.51.100.0/24 to a VIP of
 * 192.0.2.0/24, replies from a pod of 203.0.113.0/24 to one of eight SNAT
 * addresses. Real clients' ports and addresses are not the neat sequence
 * of make_keys(), whose regularity CRC32c spreads unusually evenly.
 */
static void
random_keys(struct sg_flow_key *fwd, struct sg_flow_key *rev)
{
	uint64_t r = rng();
	uint32_t client = rte_cpu_to_be_32(0xc6336400u | (uint32_t)(r & 0xff));
	uint32_t vip = rte_cpu_to_be_32(0xc0000200u | (uint32_t)((r >> 8) & 0xff));
	uint32_t pod = rte_cpu_to_be_32(0xcb007100u | (uint32_t)((r >> 16) & 0xff));
	uint32_t snat = rte_cpu_to_be_32(0xc0000264u | (uint32_t)((r >> 24) & 7));
	rte_be16_t cport = rte_cpu_to_be_16((uint16_t)(r >> 27));
	rte_be16_t vport = rte_cpu_to_be_16((uint16_t)(80 + ((r >> 43) & 0x3ff)));
	rte_be16_t sport = rte_cpu_to_be_16((uint16_t)(1024 + ((r >> 53) & 0x7ff)));

	sg_flow_key_init(fwd, SG_FLOW_V4, IPPROTO_TCP, &client, &vip, cport, vport);
	sg_flow_key_init(rev, SG_FLOW_V4, IPPROTO_TCP, &pod, &snat, rte_cpu_to_be_16(8080), sport);
}

/* Insert a NAT flow of new random tuples as entry j; 0, or the insert's error. */
static int
insert_random(struct sg_flow_table *t, struct sg_flow_key *fwd, struct sg_flow_key *rev,
	      struct sg_flow **made, uint32_t j)
{
	int rc;

	do {
		random_keys(&fwd[j], &rev[j]);
		rc = sg_flow_insert(t, &fwd[j], &rev[j], j, 1, 0, 1, &made[j]);
	} while (rc == -EEXIST);	/* a tuple drawn twice */
	return rc;
}

/*
 * The index at its worst: a table whose size puts the index at exactly half
 * full once every flow has both keys, filled with NAT flows of random
 * tuples; lookups there; then flows deleted and created at random, the
 * table staying full, as under steady connection churn.
 */
static void
bench_worst(const struct bench_cfg *cfg)
{
	uint32_t n = (7u << cfg->worst_log2) / 4;
	struct sg_flow_key *fwd = malloc(sizeof(*fwd) * (size_t)n);
	struct sg_flow_key *rev = malloc(sizeof(*rev) * (size_t)n);
	uint32_t *idx = malloc(sizeof(*idx) * cfg->lookups);
	struct sg_flow **made = malloc(sizeof(*made) * n);
	struct sg_flow_table *t;
	uint64_t cyc, hits, refused = 0;

	if (fwd == NULL || rev == NULL || idx == NULL || made == NULL) {
		fprintf(stderr, "bench_flow: out of memory\n");
		exit(1);
	}
	printf("\nA full table of random NAT tuples, its index half full:\n");
	t = new_table(n);
	cyc = rte_rdtsc();
	for (uint32_t j = 0; j < n; j++)
		if (insert_random(t, fwd, rev, made, j) != 0) {
			fprintf(stderr, "bench_flow: insert %" PRIu32 " of %" PRIu32 " failed\n",
				j, n);
			exit(1);
		}
	cyc = rte_rdtsc() - cyc;
	report(n, "insert, random tuples", n, cyc);
	report_index(n, t);

	for (uint32_t i = 0; i < cfg->lookups; i++)
		idx[i] = (uint32_t)(rng() % n);
	run_lookups(t, fwd, rev, idx, cfg->lookups / 8, &hits);
	cyc = run_lookups(t, fwd, rev, idx, cfg->lookups, &hits);
	report(n, "lookup, all hits (bulk of 32)", cfg->lookups, cyc);

	cyc = rte_rdtsc();
	for (uint32_t i = 0; i < cfg->churn; i++) {
		uint32_t j = (uint32_t)(rng() % n);

		sg_flow_delete(t, made[j]);
		refused += insert_random(t, fwd, rev, made, j) != 0;
	}
	cyc = rte_rdtsc() - cyc;
	report(n, "churn, delete + insert", cfg->churn, cyc);
	report_index(n, t);
	if (refused != 0)
		printf("%9" PRIu32 "  %" PRIu64 " inserts refused in churn\n", n, refused);

	/* Lookups bring keys that spilled back to their primary bucket. */
	for (uint32_t i = 0; i < cfg->lookups; i++)
		idx[i] = (uint32_t)(rng() % n);
	cyc = run_lookups(t, fwd, rev, idx, cfg->lookups, &hits);
	report(n, "lookup after churn (bulk of 32)", cfg->lookups, cyc);
	report_index(n, t);

	sg_flow_table_free(t);
	free(made);
	free(idx);
	free(rev);
	free(fwd);
}

/*
 * New flows at a steady state, as svcgw-bench's syn-flood sees them: a
 * table of max_flows whose shortest timeout is 1 s (fake clock), `rate`
 * new NAT flows a millisecond (random client tuples, looked up in bursts
 * of 32 and missed, their reverse keys prefetched, then inserted), and
 * the worker's sweep once a millisecond with `budget` (0: the worker's,
 * from the flows in the table). After 2 s to fill the table, reports
 * cycles per new flow for the inserts with their lookups, and for the
 * sweep.
 */
static void
bench_churn(uint32_t max_flows, uint32_t rate, uint32_t budget)
{
	struct sg_flow_conf c;
	struct sg_flow_table *t;
	struct sg_flow_key fwd[32], rev[32];
	const struct sg_flow_key *kp[32];
	struct sg_flow *fl[32];
	uint8_t dirs[32];
	uint64_t cyc_ins = 0, cyc_sweep = 0, made = 0, refused = 0;
	uint32_t port = 1024;
	const uint64_t warm = 2000, run = 1000;
	char what[64];

	memset(&c, 0, sizeof(c));
	c.name = "churn";
	c.socket_id = (int)rte_socket_id();
	c.max_flows = max_flows;
	c.max_flows_v6 = 1;
	c.hash_seed = 1;
	for (unsigned int s = 0; s < SG_FLOW_STATE_MAX; s++)
		c.timeout_ms[s] = 1000;
	t = sg_flow_table_create(&c);
	if (t == NULL) {
		perror("sg_flow_table_create");
		exit(1);
	}
	for (uint64_t now = 1; now <= warm + run; now++) {
		uint64_t t0 = rte_rdtsc(), t1;

		for (uint32_t done = 0; done < rate; done += 32) {
			unsigned int n = RTE_MIN(32u, rate - done);

			for (unsigned int i = 0; i < n; i++) {
				uint64_t r = rng();
				uint32_t client = (uint32_t)r, vip = rte_cpu_to_be_32(0xc000020au);
				uint32_t pod = rte_cpu_to_be_32(0xcb007100u | (uint32_t)(r >> 32) % 1000);
				uint32_t snat = rte_cpu_to_be_32(0xc0000201u);

				sg_flow_key_init(&fwd[i], SG_FLOW_V4, IPPROTO_TCP, &client, &vip,
						 (rte_be16_t)(r >> 48), rte_cpu_to_be_16(80));
				sg_flow_key_init(&rev[i], SG_FLOW_V4, IPPROTO_TCP, &pod, &snat,
						 rte_cpu_to_be_16(8080), rte_cpu_to_be_16((uint16_t)port));
				port = port == 65535 ? 1024 : port + 1;
				kp[i] = &fwd[i];
			}
			sg_flow_lookup_bulk(t, kp, n, now, fl, dirs);
			/* As the worker does before creating a burst's flows. */
			for (unsigned int i = 0; i < n; i++)
				if (fl[i] == NULL)
					sg_flow_prefetch(t, &rev[i]);
			for (unsigned int i = 0; i < n; i++) {
				struct sg_flow *f;

				if (fl[i] != NULL)
					continue;
				if (sg_flow_insert(t, &fwd[i], &rev[i], 1, 1, 0, now, &f) == 0)
					made += now > warm;
				else
					refused += now > warm;
			}
		}
		t1 = rte_rdtsc();
		sg_flow_sweep(t, now, budget != 0 ? budget :
			      (uint32_t)(2ull * sg_flow_count(t) / 1000 + 1));
		if (now > warm) {
			cyc_ins += t1 - t0;
			cyc_sweep += rte_rdtsc() - t1;
		}
	}
	snprintf(what, sizeof(what), "churn %u/ms, budget %u: insert", rate, budget);
	report(max_flows, what, made, cyc_ins);
	snprintf(what, sizeof(what), "churn %u/ms, budget %u: sweep", rate, budget);
	report(max_flows, what, made, cyc_sweep);
	if (refused != 0)
		printf("%9" PRIu32 "  %" PRIu64 " inserts refused in churn\n", max_flows, refused);
	sg_flow_table_free(t);
}

int
main(int argc, char **argv)
{
	const struct bench_cfg *cfg = &full_cfg;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--quick") == 0) {
			cfg = &quick_cfg;
		} else if (strcmp(argv[i], "--churn") == 0 && i + 3 < argc) {
			sg_test_eal_init(argv[0], "1024");
			bench_churn((uint32_t)strtoul(argv[i + 1], NULL, 0),
				    (uint32_t)strtoul(argv[i + 2], NULL, 0),
				    (uint32_t)strtoul(argv[i + 3], NULL, 0));
			rte_eal_cleanup();
			return 0;
		} else {
			fprintf(stderr, "usage: %s [--quick]\n", argv[0]);
			return 2;
		}
	}
	/* A million flows with both keys take about 200 MB. */
	sg_test_eal_init(argv[0], "1024");

	printf("bench_flow%s: one lcore, TSC %.2f GHz, sizeof(struct sg_flow) = %zu,\n"
	       "  memory in 4 KiB pages (--no-huge): hugepages would cut TLB misses at 1M flows\n\n",
	       cfg == &quick_cfg ? " --quick" : "", (double)rte_get_tsc_hz() / 1e9,
	       sizeof(struct sg_flow));
	printf("%9s  %-34s %10s  %8s  %9s\n", "flows", "operation", "count", "Mops/s", "cycles/op");
	for (unsigned int i = 0; i < cfg->n_sizes; i++)
		bench_size(cfg->flows[i], cfg, i == cfg->n_sizes - 1);
	bench_worst(cfg);
	rte_eal_cleanup();
	return 0;
}
