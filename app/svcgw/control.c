/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The control thread, on EAL's main lcore: the tables and rings the workers
 * share, the workers' lcores, and the loop that serves lib/neigh (what the
 * workers learned, packets waiting for a neighbour, timers), applies what
 * the Kubernetes client drained, reclaims what RCU has released, and
 * applies SIGHUP reloads. It never blocks a worker: the workers only ever
 * see whole table entries swapped under RCU.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_random.h>
#include <rte_rcu_qsbr.h>
#include <rte_ring.h>
#include <rte_ring_elem.h>

#include "flow.h"
#include "neigh.h"
#include "svc.h"
#include "app.h"

/* Ring sizes (powers of two). */
#define HANDOFF_RING 4096
#define CTL_TX_RING 1024
#define NEIGH_MISS_RING 4096
#define NEIGH_LEARN_RING 1024
/* Records taken from each ring per turn, and how long a turn rests. */
#define CTL_BURST 256
#define CTL_SLEEP_US 1000
#define RECLAIM_EVERY_MS 100

SG_LOG_REGISTER(svcgw)

struct sg_app *sg_app;
pthread_mutex_t sg_app_lock = PTHREAD_MUTEX_INITIALIZER;
atomic_bool sg_app_stop;
atomic_bool sg_app_reload;

uint64_t
app_now_ms(const struct sg_app *a)
{
	return rte_get_tsc_cycles() / a->tsc_per_ms;
}

/* Frames of the control thread leave through worker 0, which owns a tx queue. */
static int
ctl_tx(void *arg, uint16_t port, struct rte_mbuf *m)
{
	struct sg_app *a = arg;

	m->port = port;
	return rte_ring_sp_enqueue(a->ctx.ctl_tx[0], m) == 0 ? 0 : -ENOBUFS;
}

static struct rte_ring *
ring_new(const char *what, unsigned int i, unsigned int esize, unsigned int count,
	 unsigned int flags)
{
	char name[RTE_RING_NAMESIZE];
	struct rte_ring *r;

	snprintf(name, sizeof(name), "sg_%s%u", what, i);
	r = rte_ring_create_elem(name, esize, count, SOCKET_ID_ANY, flags);
	if (r == NULL)
		SG_LOG(svcgw, ERR, "ring %s: %s", name, rte_strerror(rte_errno));
	return r;
}

static struct rte_mempool *
any_pool(const struct sg_app *a)
{
	for (unsigned int i = 0; i < RTE_MAX_NUMA_NODES; i++)
		if (a->pools[i] != NULL)
			return a->pools[i];
	return NULL;
}

static int
neigh_init(struct sg_app *a)
{
	const struct sg_conf *c = a->conf;
	struct sg_neigh_conf nc = {
		.qsbr = a->ctx.qsbr,
		.pool = any_pool(a),
		.tx = ctl_tx,
		.tx_arg = a,
		.max_neighbours = c->tables.neighbours,
		/* Ports' own, node, SNAT and VIP addresses, on each port. */
		.max_addrs = (c->tables.service_keys + c->n_node_addrs + c->n_snat_addrs + 2) *
			     c->n_ports,
		.reachable_ms = c->timeouts.neighbour * 1000,
		/* With failover every owned VIP keeps an announcement queued (its refresh). */
		.max_announce = c->failover.line != 0 ?
			(c->tables.service_keys + c->n_node_addrs + 2) * c->n_ports : 0,
		.socket_id = SOCKET_ID_ANY,
	};

	a->neigh = sg_neigh_create(&nc);
	if (a->neigh == NULL) {
		int err = errno;

		SG_LOG(svcgw, ERR, "neighbour table: %s", strerror(err));
		return -err;
	}
	a->ctx.neigh = a->neigh;
	for (unsigned int i = 0; i < a->ctx.n_ports; i++) {
		const struct sg_dp_port *dp = &a->ctx.ports[i];
		const struct sg_conf_port *cp = &c->ports[i];
		struct sg_neigh_port_conf pc = {
			.port = dp->port_id,
			.flags = SG_NEIGH_PORT_IPV4,
			.ip4_prefix = cp->address.len,
		};
		int rc;

		memcpy(pc.mac, dp->mac.addr_bytes, 6);
		memcpy(pc.ip4, cp->address.addr, 4);
		if (cp->address6.family == SG_CONF_V6) {
			pc.flags |= SG_NEIGH_PORT_IPV6;
			memcpy(pc.ip6, cp->address6.addr, 16);
			pc.ip6_prefix = cp->address6.len;
		}
		rc = sg_neigh_port_set(a->neigh, &pc);
		if (rc != 0) {
			SG_LOG(svcgw, ERR, "port %s: neighbour table: %s", cp->name, strerror(-rc));
			return rc;
		}
	}
	return 0;
}

/* Flow timeouts of the config, by lib/flow state; 0 keeps lib/flow's default. */
static void
flow_timeouts(const struct sg_conf_timeouts *t, uint32_t *ms)
{
	ms[SG_FLOW_TCP_NEW] = ms[SG_FLOW_TCP_SYN_SENT] = ms[SG_FLOW_TCP_SYN_RECV] =
		t->tcp_syn * 1000;
	ms[SG_FLOW_TCP_ESTABLISHED] = t->tcp_established * 1000;
	ms[SG_FLOW_TCP_FIN_WAIT] = ms[SG_FLOW_TCP_CLOSE_WAIT] = ms[SG_FLOW_TCP_LAST_ACK] =
		ms[SG_FLOW_TCP_TIME_WAIT] = t->tcp_fin * 1000;
	ms[SG_FLOW_TCP_CLOSE] = t->tcp_close * 1000;
	ms[SG_FLOW_UDP] = t->udp * 1000;
	ms[SG_FLOW_UDP_ASSURED] = t->udp_assured * 1000;
	ms[SG_FLOW_ICMP] = t->icmp * 1000;
}

/*
 * IPv4 reassembly, per worker. A flood of fragments that never complete
 * may hold at most a quarter of the mbufs (each datagram up to
 * RTE_LIBRTE_IP_FRAG_MAX_FRAG of them), for at most FRAG_TIMEOUT_MS; a
 * real datagram's fragments arrive within milliseconds of each other.
 */
#define FRAG_TIMEOUT_MS 2000
#define FRAG_MAX_MIN 16u
#define FRAG_MAX_MAX 4096u

static uint32_t
frag_max(uint32_t mbufs, uint16_t n_workers)
{
	uint32_t n = mbufs / (4u * RTE_LIBRTE_IP_FRAG_MAX_FRAG * n_workers);

	return RTE_MIN(RTE_MAX(n, FRAG_MAX_MIN), FRAG_MAX_MAX);
}

static int
workers_create(struct sg_app *a)
{
	const struct sg_conf *c = a->conf;

	for (uint16_t i = 0; i < a->ctx.n_workers; i++) {
		unsigned int lcore = c->workers[i];
		struct sg_dp_worker_conf wc = {
			.index = i,
			.qsbr_id = i,
			.socket_id = (int)rte_lcore_to_socket_id(lcore),
			.flows = {
				.socket_id = (int)rte_lcore_to_socket_id(lcore),
				.max_flows = c->tables.flows,
				.max_flows_v6 = c->tables.flows_v6,
				.rate = c->flow_rate,
				/* CRC is linear: a secret seed keeps crafted collisions out. */
				.hash_seed = (uint32_t)rte_rand(),
			},
		};
		char name[SG_FLOW_NAMESIZE];

		wc.frag_max = frag_max(c->tables.mbufs, a->ctx.n_workers);
		wc.frag_timeout_ms = FRAG_TIMEOUT_MS;
		snprintf(name, sizeof(name), "sg_flows%u", i);
		wc.flows.name = name;
		flow_timeouts(&c->timeouts, wc.flows.timeout_ms);
		a->workers[i] = sg_dp_worker_create(&a->ctx, &wc);
		if (a->workers[i] == NULL) {
			int err = errno;

			SG_LOG(svcgw, ERR, "worker %u: %s", i, strerror(err));
			return -err;
		}
		a->worker_lcore[i] = lcore;
	}
	return 0;
}

/*
 * ClientIP affinity remembers as many clients as a worker has flows, up to
 * 4M (32 MiB): past that, clients sharing a slot only lose stickiness.
 */
static uint32_t
affinity_slots(const struct sg_conf *c)
{
	return RTE_MIN(rte_align32pow2(c->tables.flows), 1u << 22);
}

int
app_tables_init(struct sg_app *a)
{
	const struct sg_conf *c = a->conf;
	struct sg_svc_table_conf sc = {
		.max_services = c->tables.services,
		.max_keys = c->tables.service_keys,
		.maglev_max_size = c->tables.maglev_max_size,
		.socket_id = SOCKET_ID_ANY,
	};
	size_t qsize = rte_rcu_qsbr_get_memsize(a->ctx.n_workers);
	int rc;

	a->tsc_per_ms = rte_get_tsc_hz() / 1000;
	a->ctx.snat_port_min = (uint16_t)c->snat_ports.min;
	a->ctx.snat_port_max = (uint16_t)c->snat_ports.max;
	a->ctx.gue_port = rte_cpu_to_be_16((uint16_t)c->gue_port);
	a->ctx.qsbr = rte_zmalloc("sg_qsbr", qsize, RTE_CACHE_LINE_SIZE);
	if (a->ctx.qsbr == NULL || rte_rcu_qsbr_init(a->ctx.qsbr, a->ctx.n_workers) != 0)
		return -ENOMEM;

	sc.qsbr = a->ctx.qsbr;
	a->svc = sg_svc_table_create(&sc);
	if (a->svc == NULL) {
		int err = errno;

		SG_LOG(svcgw, ERR, "service table: %s", strerror(err));
		return -err;
	}
	a->ctx.svc = a->svc;
	a->ctx.affinity = sg_dp_affinity_create(affinity_slots(c), SOCKET_ID_ANY);
	if (a->ctx.affinity == NULL) {
		int err = errno;

		SG_LOG(svcgw, ERR, "affinity table: %s", strerror(err));
		return -err;
	}
	a->services = app_services_create();
	if (a->services == NULL)
		return -ENOMEM;

	for (unsigned int i = 0; i < a->ctx.n_workers; i++) {
		a->ctx.handoff[i] = ring_new("hand", i, sizeof(void *), HANDOFF_RING,
					     RING_F_SC_DEQ);
		a->ctx.ctl_tx[i] = ring_new("ctltx", i, sizeof(void *), CTL_TX_RING,
					    RING_F_SP_ENQ | RING_F_SC_DEQ);
		if (a->ctx.handoff[i] == NULL || a->ctx.ctl_tx[i] == NULL)
			return -ENOMEM;
	}
	a->ctx.neigh_miss = ring_new("nmiss", 0, sizeof(struct sg_neigh_miss), NEIGH_MISS_RING,
				     RING_F_SC_DEQ);
	a->ctx.neigh_learn = ring_new("nlearn", 0, sizeof(struct sg_neigh_learn),
				      NEIGH_LEARN_RING, RING_F_SC_DEQ);
	if (a->ctx.neigh_miss == NULL || a->ctx.neigh_learn == NULL)
		return -ENOMEM;

	rc = neigh_init(a);
	if (rc == 0)
		rc = workers_create(a);
	return rc;
}

static int
worker_main(void *arg)
{
	struct sg_app *a = sg_app;
	unsigned int i = (unsigned int)(uintptr_t)arg;
	struct sg_dp_worker *w = a->workers[i];

	rte_rcu_qsbr_thread_register(a->ctx.qsbr, i);
	rte_rcu_qsbr_thread_online(a->ctx.qsbr, i);
	while (!atomic_load_explicit(&a->workers_stop, memory_order_relaxed))
		sg_dp_worker_poll(w, app_now_ms(a));
	rte_rcu_qsbr_thread_offline(a->ctx.qsbr, i);
	rte_rcu_qsbr_thread_unregister(a->ctx.qsbr, i);
	return 0;
}

int
app_workers_start(struct sg_app *a)
{
	for (unsigned int i = 0; i < a->ctx.n_workers; i++) {
		int rc = rte_eal_remote_launch(worker_main, (void *)(uintptr_t)i,
					       a->worker_lcore[i]);

		if (rc != 0) {
			SG_LOG(svcgw, ERR, "worker %u on lcore %u: %s", i, a->worker_lcore[i],
			       rte_strerror(-rc));
			atomic_store(&a->workers_stop, true);
			rte_eal_mp_wait_lcore();
			return rc;
		}
	}
	return 0;
}

/* Resolve each port's default router now rather than on the first packet. */
static void
resolve_gateways(struct sg_app *a, uint64_t now)
{
	for (unsigned int i = 0; i < a->ctx.n_ports; i++) {
		const struct sg_dp_port *dp = &a->ctx.ports[i];
		struct sg_neigh_key k;

		if (dp->gw4 == 0)
			continue;
		sg_neigh_key4(&k, dp->port_id, &dp->gw4);
		sg_neigh_hold(a->neigh, &k, NULL, now);
	}
}

/* What the workers handed over since the last turn, then the timers. */
static void
neigh_serve(struct sg_app *a, uint64_t now)
{
	struct sg_neigh_learn learn[CTL_BURST];
	struct sg_neigh_miss miss[CTL_BURST];
	unsigned int n;

	n = rte_ring_sc_dequeue_burst_elem(a->ctx.neigh_learn, learn, sizeof(learn[0]),
					   CTL_BURST, NULL);
	for (unsigned int i = 0; i < n; i++)
		sg_neigh_learn(a->neigh, &learn[i], now);
	n = rte_ring_sc_dequeue_burst_elem(a->ctx.neigh_miss, miss, sizeof(miss[0]), CTL_BURST,
					   NULL);
	for (unsigned int i = 0; i < n; i++)
		sg_neigh_hold(a->neigh, &miss[i].key, miss[i].m, now);
	sg_neigh_tick(a->neigh, now);
}

/*
 * SIGHUP: the new file replaces the running one only if it is whole and
 * allowed, and every entry compiles and fits the tables; then applying it
 * can only fail for lack of memory, which leaves the tables holding part of
 * it: the log says so, and the next reload starts from the new file.
 */
static void
reload(struct sg_app *a)
{
	struct sg_conf *nc = NULL, *old;
	char err[512];
	int rc;

	rc = sg_conf_load(a->conf->path, &nc, err, sizeof(err));
	if (rc == 0)
		rc = sg_conf_reload_check(a->conf, nc, err, sizeof(err));
	if (rc == 0)
		rc = app_services_check(nc, err, sizeof(err));
	if (rc != 0) {
		/* The same line a bad file gets at start, unprefixed. */
		rte_log(RTE_LOG_ERR, sg_logtype_svcgw, "%s\n", err);
		SG_LOG(svcgw, WARNING, "reload rejected, the running configuration stays");
		sg_conf_free(nc);
		return;
	}
	pthread_mutex_lock(&sg_app_lock);
	rc = app_services_apply(a, nc, err, sizeof(err));
	old = a->conf;
	a->conf = nc;
	pthread_mutex_unlock(&sg_app_lock);
	app_k8s_reload(a, old, nc);
	sg_conf_free(old);
	if (rc != 0) {
		SG_LOG(svcgw, ERR, "reload failed midway, the tables hold part of %s: %s",
		       nc->path, err);
		return;
	}
	SG_LOG(svcgw, NOTICE, "reloaded %s: %u services", nc->path, nc->n_services);
}

void
app_control_run(struct sg_app *a)
{
	uint64_t last_reclaim = 0;

	pthread_mutex_lock(&sg_app_lock);
	resolve_gateways(a, app_now_ms(a));
	pthread_mutex_unlock(&sg_app_lock);
	SG_LOG(svcgw, NOTICE, "ready: %u worker(s), %u port(s), %d service entries",
	       a->ctx.n_workers, a->ctx.n_ports, sg_svc_count(a->svc));
	while (!atomic_load(&sg_app_stop)) {
		uint64_t now = app_now_ms(a);

		pthread_mutex_lock(&sg_app_lock);
		neigh_serve(a, now);
		if (now - last_reclaim >= RECLAIM_EVERY_MS) {
			sg_svc_reclaim(a->svc);
			last_reclaim = now;
		}
		pthread_mutex_unlock(&sg_app_lock);
		app_k8s_poll(a);
		app_announce_poll(a);
		if (atomic_exchange(&sg_app_reload, false))
			reload(a);
		rte_delay_us_sleep(CTL_SLEEP_US);
	}
	SG_LOG(svcgw, NOTICE, "stopping");
	app_lease_stop(a->lease);
	app_k8s_stop(a->k8s);
	atomic_store(&a->workers_stop, true);
	rte_eal_mp_wait_lcore();
}

static void
ring_drain_free(struct rte_ring *r)
{
	void *m;

	if (r == NULL)
		return;
	while (rte_ring_dequeue(r, &m) == 0)
		rte_pktmbuf_free(m);
	rte_ring_free(r);
}

void
app_unpublish(void)
{
	pthread_mutex_lock(&sg_app_lock);
	sg_app = NULL;
	pthread_mutex_unlock(&sg_app_lock);
}

void
app_free(struct sg_app *a)
{
	struct sg_neigh_miss miss;

	for (unsigned int i = 0; i < a->ctx.n_workers; i++) {
		sg_dp_worker_free(a->workers[i]);
		ring_drain_free(a->ctx.handoff[i]);
		ring_drain_free(a->ctx.ctl_tx[i]);
	}
	if (a->ctx.neigh_miss != NULL)
		while (rte_ring_dequeue_elem(a->ctx.neigh_miss, &miss, sizeof(miss)) == 0)
			rte_pktmbuf_free(miss.m);
	rte_ring_free(a->ctx.neigh_miss);
	rte_ring_free(a->ctx.neigh_learn);
	app_k8s_free(a->k8s);
	app_lease_free(a->lease);
	sg_neigh_free(a->neigh);
	sg_svc_table_free(a->svc);
	sg_dp_affinity_free(a->ctx.affinity);
	app_services_free(a->services);
	rte_free(a->ctx.qsbr);
	for (unsigned int i = 0; i < RTE_MAX_NUMA_NODES; i++)
		rte_mempool_free(a->pools[i]);
	sg_conf_free(a->conf);
	free(a);
}
