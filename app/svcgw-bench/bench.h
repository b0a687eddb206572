/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * svcgw-bench: the daemon's own workers (lib/dp, set up by app/svcgw's
 * code) fed by an in-process traffic generator through ring-based ports,
 * transmitting into a null port; and the same generator and sink around a
 * worker that only swaps MAC addresses, as the baseline every figure is
 * compared with (dpdk-testpmd --forward-mode=macswap does the same).
 *
 * gen.c builds the frames, scenario.c runs one scenario, main.c the rest.
 */
#ifndef SG_BENCH_H
#define SG_BENCH_H

#include <stdbool.h>
#include <stdint.h>

#include "dp.h"

enum bench_kind {
	BENCH_BASELINE,	   /* MAC swap only */
	BENCH_FLOOR,	   /* MAC swap and a flow lookup's memory reads (floor.h) */
	BENCH_ESTABLISHED, /* packets of flows created beforehand */
	BENCH_NEW,	   /* every packet a new flow: a SYN flood */
	BENCH_MIXED,	   /* established, and one packet in ten a new flow */
	BENCH_FULL,	   /* a SYN flood once it has filled the flow table */
};

/* Whether a scenario runs the baseline's worker: no services, no svcgw code. */
static inline bool
bench_kind_is_base(enum bench_kind kind)
{
	return kind == BENCH_BASELINE || kind == BENCH_FLOOR;
}

struct bench_scenario {
	const char *name;
	enum bench_kind kind;
	uint32_t flows;	   /* established flows; BENCH_FULL: the table's size */
	uint32_t services;
	uint32_t backends; /* per service */
	uint8_t mode;	   /* enum sg_svc_mode of every service */
	uint8_t family;	   /* 4 or 6: clients, VIPs and backends */
	uint32_t flow_rate; /* the config's: new flows/s per worker, 0 for no limit */
	const char *what;
};

#define BENCH_MAX_REPEAT 20	/* --repeat */

struct bench_opts {
	double seconds;	   /* measured per scenario */
	unsigned int workers;
	bool json;
	bool quick;	   /* smoke run: small, short, nothing timed */
	bool hugepages;	   /* EAL runs on hugepages */
	bool one_core;	   /* worker and generator take turns on the main lcore */
	unsigned int repeat; /* rounds of every chosen scenario, baseline first */
};

/* What a scenario measured; per-worker figures in worker[]. */
struct bench_result {
	const struct bench_scenario *sc;
	uint64_t packets;	   /* received by the workers in the window */
	uint64_t packets_total;	   /* received by the workers, warm-up included */
	uint64_t forwarded;	   /* handed to the sink port */
	uint64_t flows_created;	   /* by the workers in the window */
	uint64_t dropped;	   /* the workers' drop counters, summed */
	uint64_t idle_polls;	   /* poll turns that found nothing: generator-bound */
	double seconds;
	double setup_seconds;
	struct {
		uint64_t packets;
		uint64_t cycles;
	} worker[SG_DP_MAX_WORKERS];
	unsigned int workers;
	double mpps;		   /* measured: packets in the window / its length */
	/*
	 * Busy TSC cycles (poll turns that found packets) per packet, and what
	 * the workers forward at that cost when never idle: the generator
	 * cannot then hide or inflate a worker's cost.
	 */
	double cycles_per_packet;
	double capacity_mpps;
	double ratio;		   /* capacity / the baseline's capacity */
	/* With --repeat: the rounds' cycles per packet, lowest and highest. */
	double cycles_min, cycles_max;
	bool ok;
	char error[640];
};

/* The addresses of flow i of a scenario with `services` services. */
struct bench_flow {
	uint8_t client[16];	/* IPv4 in the first 4 bytes */
	uint8_t vip[16];
	rte_be16_t sport;
	rte_be16_t dport;
};

/* Client, ports and VIPs come from the documentation ranges (DESIGN.md). */
#define BENCH_MAX_FLOWS (253u * 64000u)
#define BENCH_MAX_SERVICES (250u * 400u)
#define BENCH_MAX_BACKENDS 1000u

/*
 * Flow i: client 198.51.100.(1 + i / 64000) or 2001:db8:c::(1 + i / 64000),
 * port 1024 + i % 64000; to service i % services, whose VIP is
 * 192.0.2.(1 + s / 400) or 2001:db8:a::(1 + s / 400), port 1024 + s % 400.
 */
void bench_flow_of(uint32_t i, uint32_t services, uint8_t family, struct bench_flow *f);
/*
 * Backend b of a service: 203.0.113.(10 + b % 240) or 2001:db8:f::(10 +
 * b % 240), port 8000 + b / 240.
 */
void bench_backend_of(uint32_t b, uint8_t family, uint8_t addr[16], uint16_t *port);

/* gen.c: the generator, run on the main lcore. */
struct bench_gen;

struct bench_gen_conf {
	struct rte_mempool *pool;
	struct rte_ring *const *rx;	/* one per worker queue */
	unsigned int queues;
	uint16_t port_id;		/* the ring port the frames arrive on */
	struct rte_ether_addr dst_mac;	/* that port's MAC */
	const struct sg_dp_ctx *ctx;	/* for flow ownership */
	uint32_t services;
	uint8_t family;			/* of the frames: 4 or 6 */
};

struct bench_gen *bench_gen_create(const struct bench_gen_conf *conf);
void bench_gen_free(struct bench_gen *g);
/* Queue flows [0, n) for established traffic: each on its owner's queue, shuffled. */
int bench_gen_flows(struct bench_gen *g, uint32_t n);
/*
 * Send up to `max` frames (one burst per queue with room): a SYN for each
 * established flow not opened yet, then ACKs of established flows, new
 * flows for one packet in new_every (0: none; 1: all). Returns frames sent.
 */
unsigned int bench_gen_send(struct bench_gen *g, unsigned int new_every);
/* Established flows opened so far (each got its SYN). */
uint32_t bench_gen_opened(const struct bench_gen *g);

/* scenario.c */
int bench_run(const struct bench_scenario *sc, const struct bench_opts *o,
	      struct bench_result *r);

#endif /* SG_BENCH_H */
