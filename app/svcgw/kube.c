/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The daemon's side of lib/k8s: the client is created before EAL (its
 * credentials are part of the configuration: a bad one stops svcgw before
 * anything starts), started once the tables exist, and drained by the
 * control thread each turn of its loop into services.c. lib/k8s does the
 * network on a thread of its own; nothing here ever waits for it.
 *
 * What lives elsewhere: the model and the client (lib/k8s), turning a
 * service into table entries and the conflicts with the file
 * (services.c), the telemetry command (telemetry.c).
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <rte_common.h>
#include <rte_lcore.h>
#include <rte_log.h>

#include "sg_common.h"
#include "k8s.h"
#include "app.h"

SG_LOG_REGISTER(k8s)

/* Changes taken per lock, and how long one turn may spend applying them. */
#define DRAIN_BATCH 64
#define DRAIN_BUDGET_MS 20
/* Messages of sg_k8s_create(), held until EAL's logging is up. */
#define EARLY_LINES 8
#define EARLY_LEN 400

struct app_k8s {
	struct sg_k8s *client;
	uint8_t source;
	uint64_t start_ms;		/* CLOCK_MONOTONIC at start */
	uint64_t first_sync_ms;
	uint32_t nodes;
	struct app_ipam *ipam;		/* a->ipam: the lb group's */
};

/*
 * Before EAL nothing is printed but the one line of a refused start, so
 * what sg_k8s_create() has to say waits here; the client thread only logs
 * after app_k8s_start() has flushed it, on the thread that filled it.
 */
static struct {
	unsigned int level;
	char msg[EARLY_LEN];
} early[EARLY_LINES];
static unsigned int n_early;
static bool log_live;

static uint32_t
rte_level(unsigned int level)
{
	switch (level) {
	case SG_K8S_LOG_ERR:
		return RTE_LOG_ERR;
	case SG_K8S_LOG_WARNING:
		return RTE_LOG_WARNING;
	case SG_K8S_LOG_INFO:
		return RTE_LOG_INFO;
	default:
		return RTE_LOG_DEBUG;
	}
}

void
app_k8s_log(void *arg, unsigned int level, const char *msg)
{
	(void)arg;
	if (!log_live) {
		if (n_early < EARLY_LINES) {
			early[n_early].level = level;
			snprintf(early[n_early].msg, sizeof(early[n_early].msg), "%s", msg);
			n_early++;
		}
		return;
	}
	rte_log(rte_level(level), sg_logtype_k8s, "k8s: %s\n", msg);
}

int
app_k8s_create(const struct sg_conf *c, struct app_k8s **out, char *err, size_t errlen)
{
	struct sg_k8s_conf kc;
	struct app_k8s *k;
	char why[512];
	int rc;

	*out = NULL;
	if (c->kubernetes.source == SG_CONF_K8S_NONE)
		return 0;
	k = calloc(1, sizeof(*k));
	if (k == NULL) {
		snprintf(err, errlen, "svcgw: out of memory");
		return -ENOMEM;
	}
	sg_k8s_conf_init(&kc, c);
	kc.sa_dir = c->kubernetes.service_account;
	kc.log = app_k8s_log;
	k->source = c->kubernetes.source;
	k->client = sg_k8s_create(&kc, why, sizeof(why));
	if (k->client == NULL) {
		rc = -errno;
		snprintf(err, errlen, "%s:%u: kubernetes: %s", c->path, c->kubernetes.line, why);
		free(k);
		n_early = 0;
		return rc;
	}
	*out = k;
	return 0;
}

/*
 * Where the client thread may run: every CPU but the workers', as DPDK
 * places its own control threads, so decoding a large cluster never
 * competes with a poll loop. Empty when the workers take every CPU.
 */
static void
client_cpus(const struct sg_app *a, cpu_set_t *set)
{
	long n = sysconf(_SC_NPROCESSORS_CONF);

	CPU_ZERO(set);
	for (long cpu = 0; cpu < n && cpu < CPU_SETSIZE; cpu++)
		CPU_SET((int)cpu, set);
	for (unsigned int i = 0; i < a->ctx.n_workers; i++) {
		rte_cpuset_t w = rte_lcore_cpuset(a->worker_lcore[i]);

		for (int cpu = 0; cpu < CPU_SETSIZE; cpu++)
			if (CPU_ISSET(cpu, &w))
				CPU_CLR(cpu, set);
	}
}

int
app_k8s_start(struct sg_app *a)
{
	struct app_k8s *k = a->k8s;
	cpu_set_t mine, theirs;
	bool moved = false;
	int rc;

	if (k == NULL)
		return 0;
	for (unsigned int i = 0; i < n_early; i++)
		rte_log(rte_level(early[i].level), sg_logtype_k8s, "k8s: %s\n", early[i].msg);
	n_early = 0;
	log_live = true;
	/* A new thread inherits its creator's CPUs: lend it the ones it should have. */
	client_cpus(a, &theirs);
	if (CPU_COUNT(&theirs) > 0 &&
	    pthread_getaffinity_np(pthread_self(), sizeof(mine), &mine) == 0)
		moved = pthread_setaffinity_np(pthread_self(), sizeof(theirs), &theirs) == 0;
	rc = app_ipam_create(a, k->client, &k->ipam);
	if (rc < 0) {
		SG_LOG(k8s, ERR, "the LoadBalancer provider did not start: %s", strerror(-rc));
		return rc;
	}
	a->ipam = k->ipam;
	k->start_ms = sg_mono_ms();
	rc = sg_k8s_start(k->client);
	if (moved)
		pthread_setaffinity_np(pthread_self(), sizeof(mine), &mine);
	if (rc != 0)
		SG_LOG(k8s, ERR, "the client did not start: %s", strerror(-rc));
	return rc;
}

void
app_k8s_poll(struct sg_app *a)
{
	struct app_k8s *k = a->k8s;
	struct sg_k8s_change ch[DRAIN_BATCH];
	struct sg_k8s_nodes *nodes;
	struct sg_k8s_sync st;
	bool emptied = false;
	uint64_t t0;

	if (k == NULL)
		return;
	/*
	 * lib/k8s queues the whole first list before it says synced: once it
	 * says so, a drain to the end puts the whole cluster in the tables.
	 */
	st.synced = 0;
	if (k->first_sync_ms == 0)
		sg_k8s_sync_state(k->client, &st);
	t0 = sg_mono_ms();
	for (;;) {
		unsigned int n = sg_k8s_drain(k->client, ch, DRAIN_BATCH);

		if (n == 0) {
			emptied = true;
			break;
		}
		pthread_mutex_lock(&sg_app_lock);
		for (unsigned int i = 0; i < n; i++) {
			/* First: the tables then serve what the allocation decided. */
			app_ipam_observe(a, ch[i].key, ch[i].svc);
			app_services_k8s_change(a, ch[i].key, ch[i].svc);
		}
		app_services_k8s_retry(a);
		pthread_mutex_unlock(&sg_app_lock);
		/* The neighbour work of the loop waits meanwhile: bound the turn. */
		if (sg_mono_ms() - t0 >= DRAIN_BUDGET_MS)
			break;
	}
	nodes = sg_k8s_nodes_take(k->client);
	if (k->ipam != NULL) {
		pthread_mutex_lock(&sg_app_lock);
		if (st.synced && emptied && k->first_sync_ms == 0)
			app_ipam_synced(a);
		app_ipam_poll(a);
		pthread_mutex_unlock(&sg_app_lock);
	}
	if (nodes == NULL && !(st.synced && emptied && k->first_sync_ms == 0))
		return;
	pthread_mutex_lock(&sg_app_lock);
	/* NodePorts are served on the file's node_addresses: the nodes are only counted. */
	if (nodes != NULL)
		k->nodes = nodes->n;
	if (st.synced && emptied && k->first_sync_ms == 0) {
		struct app_k8s_counts n;

		k->first_sync_ms = RTE_MAX(sg_mono_ms() - k->start_ms, (uint64_t)1);
		app_services_k8s_counts(a->services, &n);
		SG_LOG(k8s, NOTICE, "the tables follow the cluster: %u services served, %u "
		       "skipped, %u entries, %" PRIu64 " ms after the client started", n.served,
		       n.refused + n.parked, n.entries, k->first_sync_ms);
	}
	pthread_mutex_unlock(&sg_app_lock);
	sg_k8s_nodes_free(nodes);
}

void
app_k8s_reload(struct sg_app *a, const struct sg_conf *oc, const struct sg_conf *nc)
{
	if (a->k8s != NULL && oc->default_mode != nc->default_mode)
		sg_k8s_set_default_mode(a->k8s->client, nc->default_mode);
	if (a->ipam != NULL) {
		pthread_mutex_lock(&sg_app_lock);
		app_ipam_reload(a, nc);
		pthread_mutex_unlock(&sg_app_lock);
	}
}

void
app_k8s_stop(struct app_k8s *k)
{
	if (k != NULL)
		sg_k8s_stop(k->client);
}

void
app_k8s_free(struct app_k8s *k)
{
	if (k == NULL)
		return;
	app_ipam_free(k->ipam);
	sg_k8s_free(k->client);
	free(k);
}

int
app_k8s_status(const struct sg_app *a, struct app_k8s_status *st)
{
	memset(st, 0, sizeof(*st));
	if (a->k8s == NULL)
		return 0;
	st->source = a->k8s->source;
	sg_k8s_sync_state(a->k8s->client, &st->sync);
	st->first_sync_ms = a->k8s->first_sync_ms;
	st->nodes = a->k8s->nodes;
	app_services_k8s_counts(a->services, &st->counts);
	return 0;
}
