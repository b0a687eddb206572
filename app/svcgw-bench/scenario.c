/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * One scenario: a configuration written for the daemon's own loader, ports
 * and tables set up by app/svcgw's code (a ring-based port the generator
 * feeds, a null port that swallows what the workers send), services
 * published into lib/svc, the next hops learned as lib/neigh would learn
 * them, then the workers (or the baseline's MAC swap) run while the
 * generator on the main lcore keeps their rings full, and the counters are
 * read before and after the measured window.
 */
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rte_bus_vdev.h>
#include <rte_cycles.h>
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_rcu_qsbr.h>
#include <rte_ring.h>

#include "app.h"
#include "neigh.h"
#include "svc.h"
#include "bench.h"
#include "floor.h"

/* rte_eth_from_rings() names the port "net_ring_" and the name it is given. */
#define RING_NAME "bench0"
#define RING_PORT "net_ring_" RING_NAME
#define NULL_PORT "net_null0"
#define RX_RING 4096
/* Traffic before the window opens: caches, the flow table and the TLB warm. */
#define WARM_SECONDS 0.2
/* The SYN timeout of the scenarios that churn (churns(); write_conf() says why). */
#define SYN_TIMEOUT_SECONDS 1
/*
 * Their warm-up also lasts until flows expire as fast as they are made:
 * the first ones expire after the timeout, and the sweep, which visits the
 * table twice a timeout, reaches them within half of it more. A window
 * before that would leave out the cost of removing flows, which under a
 * lasting flood is as much part of a new flow as making it.
 */
#define WARM_SECONDS_CHURN (WARM_SECONDS + 1.5 * SYN_TIMEOUT_SECONDS)
/* BENCH_FULL: its flows never expire within --seconds' limit (600 s). */
#define FULL_SYN_TIMEOUT_SECONDS 3600
/* A smoke run's: short enough that new flows cannot fill its small table first. */
#define WARM_SECONDS_QUICK 0.02
/* How long opening the established flows may take at worst. */
#define OPEN_TIMEOUT_SECONDS 60.0
#define SNAT_ADDRS 8
/* A smoke run's window lasts until each worker took this many packets, or this long. */
#define SMOKE_MIN_PACKETS 5000
#define SMOKE_TIMEOUT_SECONDS 30.0

/* The baseline worker's counters, one per worker, written by it alone. */
static struct baseline_stats {
	uint64_t rx;
	uint64_t tx;
	uint64_t idle;
	uint64_t busy_cycles;
} __rte_cache_aligned baseline[SG_DP_MAX_WORKERS];

static atomic_bool baseline_stop;

struct baseline_arg {
	uint16_t queue;
	uint16_t rx_port;
	uint16_t tx_port;
	struct bench_floor *floor;	/* NULL: MAC swap only */
};

static struct baseline_arg baseline_args[SG_DP_MAX_WORKERS];

/* One turn of dpdk-testpmd --forward-mode=macswap: what any forwarder must at least do. */
static void
baseline_poll(const struct baseline_arg *b)
{
	struct baseline_stats *st = &baseline[b->queue];
	struct rte_mbuf *m[SG_MAX_BURST];
	uint64_t start = rte_rdtsc();
	uint16_t n = rte_eth_rx_burst(b->rx_port, b->queue, m, SG_MAX_BURST), sent;

	if (n == 0) {
		st->idle++;
		return;
	}
	if (b->floor != NULL)
		bench_floor_touch(b->floor, m, n);
	for (uint16_t i = 0; i < n; i++) {
		struct rte_ether_hdr *eth = rte_pktmbuf_mtod(m[i], struct rte_ether_hdr *);
		struct rte_ether_addr t = eth->dst_addr;

		eth->dst_addr = eth->src_addr;
		eth->src_addr = t;
	}
	sent = rte_eth_tx_burst(b->tx_port, b->queue, m, n);
	if (sent < n)
		rte_pktmbuf_free_bulk(&m[sent], n - sent);
	st->rx += n;
	st->tx += sent;
	st->busy_cycles += rte_rdtsc() - start;
}

static int
baseline_main(void *arg)
{
	while (!atomic_load_explicit(&baseline_stop, memory_order_relaxed))
		baseline_poll(arg);
	return 0;
}

static double
secs(uint64_t cycles)
{
	return (double)cycles / (double)rte_get_tsc_hz();
}

/*
 * Scenarios whose new flows expire after SYN_TIMEOUT_SECONDS, as fast as
 * they are made (syn-full's new flows find the table full and make none).
 */
static bool
churns(const struct bench_scenario *sc)
{
	return sc->kind == BENCH_NEW || sc->kind == BENCH_MIXED;
}

/* Table sizes for a scenario: room for every flow it can create. */
static uint32_t
flow_capacity(const struct bench_scenario *sc, const struct bench_opts *o)
{
	if (sc->kind == BENCH_FULL)
		return sc->flows;	/* and nothing expires during the run */
	if (churns(sc))
		return o->quick ? 262144 : 8u << 20;
	return sc->flows < 65536 ? 65536 : sc->flows + sc->flows / 4;
}

static int
write_conf(const char *path, const struct bench_scenario *sc, const struct bench_opts *o)
{
	FILE *f = fopen(path, "w");

	if (f == NULL)
		return -errno;
	fprintf(f, "workers = [");
	for (unsigned int i = 0; i < o->workers; i++)
		fprintf(f, "%s%u", i ? ", " : " ", i + 1);
	fprintf(f, " ];\n"
		"ports = (\n"
		"  { name = \"ext\"; device = \"%s\"; role = \"external\";\n"
		"    address = \"198.51.100.254/24\"; address6 = \"2001:db8:c::fe/64\"; },\n"
		"  { name = \"int\"; device = \"%s,no-rx=1\"; role = \"internal\";\n"
		"    address = \"203.0.113.1/24\"; address6 = \"2001:db8:f::1/64\"; }\n"
		");\n"
		"snat_addresses = [", RING_PORT, NULL_PORT);
	for (unsigned int i = 0; i < SNAT_ADDRS; i++)
		fprintf(f, "%s\"203.0.113.%u\", \"2001:db8:f::%u\"", i ? ", " : " ", 2 + i,
			2 + i);
	fprintf(f, " ];\n"
		"tables = { flows = %u; flows_v6 = %u; services = %u; service_keys = %u;\n"
		"           mbufs = 65535; };\n",
		flow_capacity(sc, o), sc->family == 6 ? flow_capacity(sc, o) : 1024,
		sc->services + 1, sc->services + 1);
	/*
	 * New flows are SYNs that never complete: with the default 30 s they
	 * would fill any table within seconds and the rest of the run would
	 * measure refusals. After SYN_TIMEOUT_SECONDS they expire, and the
	 * sweep, which visits the table twice a timeout, frees them within
	 * 1.5 times that: 8M entries hold that long at 5M new flows a second.
	 * A full table shows up as drops (drop_flow_full), never as faster
	 * figures.
	 */
	if (churns(sc))
		fprintf(f, "timeouts = { tcp_syn = %u; };\n", SYN_TIMEOUT_SECONDS);
	/* A full table must stay full, however long the run. */
	if (sc->kind == BENCH_FULL)
		fprintf(f, "timeouts = { tcp_syn = %u; };\n", FULL_SYN_TIMEOUT_SECONDS);
	if (sc->flow_rate != 0)
		fprintf(f, "flow_rate = %u;\n", sc->flow_rate);
	return fclose(f) == 0 ? 0 : -errno;
}

/* Service s: its VIP and port, and `backends` backends of weight 1. */
static int
publish_services(struct sg_app *a, const struct bench_scenario *sc)
{
	struct sg_svc_backend *be = calloc(sc->backends, sizeof(*be));
	int rc = 0;

	if (be == NULL)
		return -ENOMEM;
	for (uint32_t b = 0; b < sc->backends; b++) {
		uint16_t port;

		bench_backend_of(b, sc->family, be[b].addr, &port);
		be[b].port = rte_cpu_to_be_16(port);
		be[b].family = sc->family;
		be[b].state = SG_SVC_BE_READY | SG_SVC_BE_SERVING;
		be[b].weight = 1;
	}
	for (uint32_t s = 0; s < sc->services && rc == 0; s++) {
		struct bench_flow f;
		struct sg_svc_key key;
		char name[32];
		struct sg_svc_conf c = {
			.id = s + 1,
			.name = name,
			.mode = sc->mode,
			.keys = &key,
			.n_keys = 1,
			.backends = be,
			.n_backends = sc->backends,
		};

		/* Flow s of the generator is a flow of service s. */
		bench_flow_of(s, sc->services, sc->family, &f);
		if (sc->family == 4) {
			rte_be32_t vip;

			memcpy(&vip, f.vip, 4);
			sg_svc_key4(&key, vip, f.dport, IPPROTO_TCP);
		} else {
			sg_svc_key6(&key, f.vip, f.dport, IPPROTO_TCP);
		}
		snprintf(name, sizeof(name), "bench/s%u:tcp", s);
		rc = sg_svc_publish(a->svc, &c);
	}
	free(be);
	return rc;
}

/* The backends' MACs, as if each had answered ARP. */
static int
learn_backends(struct sg_app *a, const struct bench_scenario *sc)
{
	uint16_t pid = a->ctx.ports[1].port_id;
	uint32_t n = sc->backends < 240 ? sc->backends : 240;

	for (uint32_t b = 0; b < n; b++) {
		struct sg_neigh_learn l = { .flags = SG_NEIGH_L_MAC | SG_NEIGH_L_TO_US };
		uint8_t addr[16];
		uint16_t port;
		int rc;

		bench_backend_of(b, sc->family, addr, &port);
		if (sc->family == 4)
			sg_neigh_key4(&l.key, pid, addr);
		else
			sg_neigh_key6(&l.key, pid, addr);
		memcpy(l.mac, (uint8_t[]){ 0x02, 0x00, 0xcb, 0x00, 0x71, (uint8_t)(10 + b) }, 6);
		rc = sg_neigh_learn(a->neigh, &l, app_now_ms(a));
		if (rc != 0)
			return rc;
	}
	return 0;
}

/* A floor per worker, as large as the flow table the worker has. */
static int
floors_create(const struct sg_app *a, struct bench_floor **floors)
{
	for (unsigned int w = 0; w < a->ctx.n_workers; w++) {
		struct sg_flow_memory mem;

		int socket_id = (int)rte_lcore_to_socket_id(a->worker_lcore[w]);

		sg_flow_table_memory(sg_dp_worker_flows(a->workers[w]), &mem);
		floors[w] = bench_floor_create(&mem, socket_id);
		if (floors[w] == NULL)
			return -errno;
	}
	return 0;
}

/* What the counters say at one instant. */
struct snapshot {
	uint64_t tsc;
	uint64_t rx[SG_DP_MAX_WORKERS];
	uint64_t busy[SG_DP_MAX_WORKERS];
	uint64_t idle;
	uint64_t dropped;
	uint64_t flow_new;
	uint64_t sink;
};

static void
snapshot(const struct sg_app *a, bool base, struct snapshot *s)
{
	struct rte_eth_stats es;

	memset(s, 0, sizeof(*s));
	for (unsigned int w = 0; w < a->ctx.n_workers; w++) {
		if (base) {
			s->rx[w] = baseline[w].rx;
			s->busy[w] = baseline[w].busy_cycles;
			s->idle += baseline[w].idle;
			continue;
		}
		const struct sg_dp_stats *st = sg_dp_worker_stats(a->workers[w]);

		s->rx[w] = st->c[SG_DP_C_rx];
		s->busy[w] = st->c[SG_DP_C_busy_cycles];
		s->idle += st->c[SG_DP_C_polls_idle];
		s->flow_new += st->c[SG_DP_C_flow_new];
		for (unsigned int c = SG_DP_C_drop_mac; c < SG_DP_C_COUNT; c++)
			s->dropped += st->c[c];
	}
	if (rte_eth_stats_get(a->ctx.ports[1].port_id, &es) == 0)
		s->sink = es.opackets;
	s->tsc = rte_get_tsc_cycles();
}

/*
 * Workers on their lcores; or, with one_core, on the main lcore, taking
 * turns with the generator (drive()): one thread, so callgrind and perf can
 * follow a packet, and a one-core machine can run the bench at all.
 */
static int
start_workers(struct sg_app *a, bool base, struct bench_floor *const *floors, bool one_core)
{
	atomic_store(&baseline_stop, false);
	memset(baseline, 0, sizeof(baseline));
	for (unsigned int w = 0; w < a->ctx.n_workers; w++)
		baseline_args[w] = (struct baseline_arg){
			.queue = (uint16_t)w,
			.rx_port = a->ctx.ports[0].port_id,
			.tx_port = a->ctx.ports[1].port_id,
			.floor = floors[w],
		};
	if (one_core) {
		if (!base) {
			rte_rcu_qsbr_thread_register(a->ctx.qsbr, 0);
			rte_rcu_qsbr_thread_online(a->ctx.qsbr, 0);
		}
		return 0;
	}
	if (!base)
		return app_workers_start(a);
	for (unsigned int w = 0; w < a->ctx.n_workers; w++)
		if (rte_eal_remote_launch(baseline_main, &baseline_args[w],
					  a->worker_lcore[w]) != 0)
			return -EBUSY;
	return 0;
}

static void
stop_workers(struct sg_app *a, bool base, bool one_core)
{
	atomic_store(&baseline_stop, true);
	atomic_store(&a->workers_stop, true);
	rte_eal_mp_wait_lcore();
	if (one_core && !base) {
		rte_rcu_qsbr_thread_offline(a->ctx.qsbr, 0);
		rte_rcu_qsbr_thread_unregister(a->ctx.qsbr, 0);
	}
}

/* In one-core mode, a turn of the worker (or the baseline) after each burst sent. */
struct runner {
	struct sg_app *a;
	struct bench_gen *g;
	bool base;
	bool one_core;
};

static void
run_turn(const struct runner *rn, unsigned int new_every)
{
	bench_gen_send(rn->g, new_every);
	if (!rn->one_core)
		return;
	if (rn->base)
		baseline_poll(&baseline_args[0]);
	else
		sg_dp_worker_poll(rn->a->workers[0], app_now_ms(rn->a));
}

/* Keep the rings full until the TSC reaches `until`. */
static void
drive(const struct runner *rn, unsigned int new_every, uint64_t until)
{
	while (rte_get_tsc_cycles() < until)
		run_turn(rn, new_every);
}

/*
 * The measured window: `seconds`, and for a smoke run also until every
 * worker took min_packets, however busy the machine (at most
 * SMOKE_TIMEOUT_SECONDS), so that a loaded machine slows a smoke run down
 * but cannot fail it.
 */
static void
drive_window(const struct runner *rn, unsigned int new_every, const struct snapshot *s0,
	     double seconds, uint64_t min_packets, struct snapshot *s1)
{
	uint64_t hz = rte_get_tsc_hz();
	uint64_t until = s0->tsc + (uint64_t)(seconds * hz);
	uint64_t deadline = s0->tsc + (uint64_t)(SMOKE_TIMEOUT_SECONDS * hz);

	drive(rn, new_every, until);
	for (;;) {
		uint64_t least = UINT64_MAX;

		snapshot(rn->a, rn->base, s1);
		for (unsigned int w = 0; w < rn->a->ctx.n_workers; w++)
			least = RTE_MIN(least, s1->rx[w] - s0->rx[w]);
		if (least >= min_packets || s1->tsc >= deadline)
			return;
		drive(rn, new_every, s1->tsc + hz / 100);
	}
}

/* BENCH_FULL: flood until every worker has refused a flow for want of room. */
static int
fill_tables(const struct runner *rn, char *err, size_t errlen)
{
	uint64_t deadline = rte_get_tsc_cycles() +
			    (uint64_t)(OPEN_TIMEOUT_SECONDS * rte_get_tsc_hz());
	unsigned int w = 0;

	while (w < rn->a->ctx.n_workers) {
		if (sg_dp_worker_stats(rn->a->workers[w])->c[SG_DP_C_drop_flow_full] != 0) {
			w++;
			continue;
		}
		if (rte_get_tsc_cycles() >= deadline) {
			snprintf(err, errlen, "worker %u's flow table not full after %.0f s", w,
				 OPEN_TIMEOUT_SECONDS);
			return -EIO;
		}
		run_turn(rn, 1);
	}
	return 0;
}

/* Send each established flow its SYN and wait for the workers to have made them all. */
static int
open_flows(const struct runner *rn, uint32_t n, char *err, size_t errlen)
{
	uint64_t deadline = rte_get_tsc_cycles() +
			    (uint64_t)(OPEN_TIMEOUT_SECONDS * rte_get_tsc_hz());
	struct snapshot s;

	do {
		run_turn(rn, 0);
		snapshot(rn->a, false, &s);
	} while (s.flow_new < n && rte_get_tsc_cycles() < deadline &&
		 (bench_gen_opened(rn->g) < n || s.dropped == 0));
	if (s.flow_new < n) {
		snprintf(err, errlen, "only %" PRIu64 " of %u flows opened (%" PRIu64
			 " packets dropped)", s.flow_new, n, s.dropped);
		return -EIO;
	}
	return 0;
}

static struct rte_mempool *
first_pool(const struct sg_app *a)
{
	for (unsigned int i = 0; i < RTE_MAX_NUMA_NODES; i++)
		if (a->pools[i] != NULL)
			return a->pools[i];
	return NULL;
}

static double
warm_seconds(const struct bench_scenario *sc, const struct bench_opts *o)
{
	if (o->quick)
		return WARM_SECONDS_QUICK;
	return churns(sc) ? WARM_SECONDS_CHURN : WARM_SECONDS;
}

static struct rte_ring *
ring_new(const char *what, unsigned int i)
{
	char name[RTE_RING_NAMESIZE];

	snprintf(name, sizeof(name), "bench_%s%u", what, i);
	return rte_ring_create(name, RX_RING, SOCKET_ID_ANY, RING_F_SP_ENQ | RING_F_SC_DEQ);
}

int
bench_run(const struct bench_scenario *sc, const struct bench_opts *o, struct bench_result *r)
{
	bool base = bench_kind_is_base(sc->kind);
	struct rte_ring *rx[SG_DP_MAX_WORKERS] = { 0 }, *tx[SG_DP_MAX_WORKERS] = { 0 };
	struct bench_floor *floors[SG_DP_MAX_WORKERS] = { 0 };
	char path[] = "/tmp/svcgw-bench-XXXXXX", err[512];
	struct bench_gen *g = NULL;
	struct runner rn;
	struct snapshot s0, s1;
	struct sg_conf *c = NULL;
	struct sg_app *a = NULL;
	unsigned int new_every = sc->kind == BENCH_NEW || sc->kind == BENCH_FULL ? 1 :
				 sc->kind == BENCH_MIXED ? 10 : 0;
	uint64_t t0 = rte_get_tsc_cycles(), start;
	int fd, rc;

	memset(r, 0, sizeof(*r));
	r->sc = sc;
	r->workers = o->workers;
	fd = mkstemp(path);
	if (fd < 0)
		return -errno;
	close(fd);
	rc = write_conf(path, sc, o);
	if (rc == 0)
		rc = sg_conf_load(path, &c, err, sizeof(err));
	unlink(path);
	if (rc != 0) {
		snprintf(r->error, sizeof(r->error), "config: %s", err);
		return rc;
	}

	for (unsigned int q = 0; q < o->workers; q++) {
		rx[q] = ring_new("rx", q);
		tx[q] = ring_new("tx", q);
		if (rx[q] == NULL || tx[q] == NULL) {
			rc = -ENOMEM;
			goto free_rings;
		}
	}
	if (rte_eth_from_rings(RING_NAME, rx, o->workers, tx, o->workers, SOCKET_ID_ANY) < 0 ||
	    rte_vdev_init(NULL_PORT, "no-rx=1") != 0) {
		snprintf(r->error, sizeof(r->error), "ports: %s", rte_strerror(rte_errno));
		rc = -ENODEV;
		goto free_ports;
	}

	a = calloc(1, sizeof(*a));
	if (a == NULL) {
		rc = -ENOMEM;
		goto free_rings;
	}
	a->conf = c;
	c = NULL;
	pthread_mutex_lock(&sg_app_lock);
	sg_app = a;
	pthread_mutex_unlock(&sg_app_lock);
	rc = app_ports_init(a);
	/* The ring PMD has no MAC of its own (all zeroes): give it a local one. */
	a->ctx.ports[0].mac = (struct rte_ether_addr){ { 0x02, 0x00, 0x5e, 0x00, 0x53, 0xfe } };
	if (rc == 0)
		rc = app_tables_init(a);
	if (rc == 0)
		rc = app_services_apply(a, a->conf, err, sizeof(err));
	if (rc == 0 && !base)
		rc = publish_services(a, sc);
	if (rc == 0 && !base)
		rc = learn_backends(a, sc);
	if (rc == 0 && sc->kind == BENCH_FLOOR)
		rc = floors_create(a, floors);
	if (rc != 0) {
		snprintf(r->error, sizeof(r->error), "set-up: %s", strerror(-rc));
		goto free_app;
	}

	g = bench_gen_create(&(struct bench_gen_conf){
		.pool = first_pool(a),
		.rx = rx,
		.queues = o->workers,
		.port_id = a->ctx.ports[0].port_id,
		.dst_mac = a->ctx.ports[0].mac,
		.ctx = &a->ctx,
		.services = base ? 1 : sc->services,
		.family = sc->family,
	});
	if (g == NULL || (rc = bench_gen_flows(g, sc->flows)) != 0) {
		rc = rc ? rc : -ENOMEM;
		snprintf(r->error, sizeof(r->error), "generator: %s", strerror(-rc));
		goto free_app;
	}
	rn = (struct runner){ .a = a, .g = g, .base = base, .one_core = o->one_core };
	rc = start_workers(a, base, floors, o->one_core);
	if (rc == 0 && !base && sc->flows > 0)
		rc = sc->kind == BENCH_FULL ? fill_tables(&rn, r->error, sizeof(r->error)) :
		     open_flows(&rn, sc->flows, r->error, sizeof(r->error));
	r->setup_seconds = secs(rte_get_tsc_cycles() - t0);
	if (rc == 0) {
		start = rte_get_tsc_cycles();
		drive(&rn, new_every, start + (uint64_t)(warm_seconds(sc, o) * rte_get_tsc_hz()));
		snapshot(a, base, &s0);
		drive_window(&rn, new_every, &s0, o->seconds, o->quick ? SMOKE_MIN_PACKETS : 0,
			     &s1);

		r->seconds = secs(s1.tsc - s0.tsc);
		for (unsigned int w = 0; w < o->workers; w++) {
			r->worker[w].packets = s1.rx[w] - s0.rx[w];
			r->worker[w].cycles = s1.busy[w] - s0.busy[w];
			r->packets += r->worker[w].packets;
		}
		r->forwarded = s1.sink - s0.sink;
		r->flows_created = s1.flow_new - s0.flow_new;
		r->dropped = s1.dropped - s0.dropped;
		r->idle_polls = s1.idle - s0.idle;
		for (unsigned int w = 0; w < o->workers; w++)
			r->packets_total += s1.rx[w];
		/* Every worker, or the spread over them is broken. */
		r->ok = true;
		for (unsigned int w = 0; w < o->workers && r->ok; w++) {
			r->ok = r->worker[w].packets > 0;
			if (!r->ok)
				snprintf(r->error, sizeof(r->error),
					 "no packet reached worker %u", w);
		}
	}
	stop_workers(a, base, o->one_core);

free_app:
	bench_gen_free(g);
	for (unsigned int w = 0; w < o->workers; w++)
		bench_floor_free(floors[w]);
	if (a != NULL) {
		app_unpublish();
		app_ports_stop(a);
		app_free(a);
	}
free_ports:
	/* Closing a port leaves its virtual device: remove it, so the next scenario can make it anew. */
	rte_vdev_uninit(NULL_PORT);
	rte_vdev_uninit(RING_PORT);
free_rings:
	for (unsigned int q = 0; q < o->workers; q++) {
		rte_ring_free(rx[q]);
		rte_ring_free(tx[q]);
	}
	sg_conf_free(c);
	return rc;
}
