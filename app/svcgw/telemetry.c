/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * /svcgw/... commands on DPDK's telemetry socket, read by tools/svcgwctl and
 * dpdk-telemetry.py. DPDK 22.11 lets a dict hold only scalars and arrays of
 * scalars, so tables are sent as columns (equal-length arrays, one per
 * field) with "total" and "start" for paging; a page has PAGE_ROWS rows to
 * stay well inside the socket's 16 KiB replies.
 *
 *   /svcgw/services[,start]     /svcgw/backends,ID[,start]
 *   /svcgw/flows[,n]            /svcgw/stats
 *   /svcgw/neighbours[,start]   /svcgw/sync
 *   /svcgw/skipped[,start]
 *
 * The callbacks run on DPDK's telemetry threads (one per client connection),
 * under sg_app_lock.
 */
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_telemetry.h>

#include "flow.h"
#include "neigh.h"
#include "svc.h"
#include "app.h"

#define PAGE_ROWS 32
#define SAMPLE_DEFAULT 16
/*
 * How long a flow sample may take in all. A worker answers within one poll
 * turn, microseconds, unless it is kept off its CPU: on a loaded two-vCPU
 * VM 20 ms was seen to pass without an answer. The control thread waits
 * for sg_app_lock meanwhile, so the bound stays well under a second.
 */
#define SAMPLE_WAIT_MS 250

/* A column: an array of strings or of u64, added to the dict at the end. */
struct column {
	const char *name;
	struct rte_tel_data *data;
};

static int
columns_new(struct column *cols, unsigned int n, const char *const *names,
	    const enum rte_tel_value_type *types)
{
	for (unsigned int i = 0; i < n; i++) {
		cols[i].name = names[i];
		cols[i].data = rte_tel_data_alloc();
		if (cols[i].data == NULL)
			return -ENOMEM;
		rte_tel_data_start_array(cols[i].data, types[i]);
	}
	return 0;
}

/* Hand the columns to the dict, which frees them with itself; columns_free() the rest. */
static void
columns_add(struct rte_tel_data *d, struct column *cols, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++)
		if (rte_tel_data_add_dict_container(d, cols[i].name, cols[i].data, 0) == 0)
			cols[i].data = NULL;
}

static void
columns_free(struct column *cols, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++)
		rte_tel_data_free(cols[i].data);
}

static void
endpoint_str(unsigned int family, const void *addr, uint16_t port_be, char *buf, size_t size)
{
	char ip[SG_CONF_ADDR_STRLEN];

	sg_conf_ip_str(family, addr, ip, sizeof(ip));
	snprintf(buf, size, family == 6 ? "[%s]:%u" : "%s:%u", ip, rte_be_to_cpu_16(port_be));
}

/* "start" parameter: a page offset, or 0. */
static uint32_t
param_u32(const char *params, uint32_t dflt)
{
	char *end;
	unsigned long v;

	if (params == NULL || *params == '\0')
		return dflt;
	v = strtoul(params, &end, 10);
	if (end == params || v > UINT32_MAX)
		return dflt;
	return (uint32_t)v;
}

/* ---- /svcgw/services ---------------------------------------------------- */

struct entry_list {
	const struct sg_svc_entry **v;
	uint32_t n;
};

static int
collect_entry(const struct sg_svc_entry *e, void *arg)
{
	struct entry_list *l = arg;

	l->v[l->n++] = e;
	return 0;
}

static int
cmp_entry_id(const void *a, const void *b)
{
	uint32_t x = (*(const struct sg_svc_entry *const *)a)->id;
	uint32_t y = (*(const struct sg_svc_entry *const *)b)->id;

	return (x > y) - (x < y);
}

static void
keys_str(const struct sg_svc_entry *e, char *buf, size_t size)
{
	size_t off = 0;

	buf[0] = '\0';
	for (uint32_t i = 0; i < e->n_keys && off < size; i++) {
		const struct sg_svc_key *k = &e->keys[i];
		char ep[64];

		if (sg_svc_key_is_any(k))
			snprintf(ep, sizeof(ep), "*:%u", rte_be_to_cpu_16(k->port));
		else
			endpoint_str(k->family, k->addr, k->port, ep, sizeof(ep));
		off += (size_t)snprintf(buf + off, size - off, "%s%s/%s", i ? " " : "", ep,
					sg_conf_proto_name(k->proto));
	}
}

struct bit_name {
	unsigned int bit;
	const char *name;
};

/* The names of the bits set, separated by spaces; `none` if there is none. */
static void
bits_str(unsigned int bits, const struct bit_name *names, size_t n, const char *none,
	 char *buf, size_t size)
{
	size_t off = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < n && off < size; i++)
		if (bits & names[i].bit)
			off += (size_t)snprintf(buf + off, size - off, "%s%s", off ? " " : "",
						names[i].name);
	if (off == 0)
		snprintf(buf, size, "%s", none);
}

static void
flags_str(const struct sg_svc_entry *e, char *buf, size_t size)
{
	static const struct bit_name names[] = {
		{ SG_SVC_F_AFFINITY, "affinity" },
		{ SG_SVC_F_LOCAL, "local" },
		{ SG_SVC_F_SRC_RANGES, "source-ranges" },
	};

	bits_str(e->flags, names, RTE_DIM(names), "", buf, size);
}

static int
cmd_services(const char *cmd, const char *params, struct rte_tel_data *d)
{
	static const char *const names[] = { "id", "name", "mode", "keys", "backends",
					     "usable", "maglev_size", "generation", "flags",
					     "source" };
	static const enum rte_tel_value_type types[] = {
		RTE_TEL_U64_VAL, RTE_TEL_STRING_VAL, RTE_TEL_STRING_VAL, RTE_TEL_STRING_VAL,
		RTE_TEL_U64_VAL, RTE_TEL_U64_VAL, RTE_TEL_U64_VAL, RTE_TEL_U64_VAL,
		RTE_TEL_STRING_VAL, RTE_TEL_STRING_VAL,
	};
	struct column cols[RTE_DIM(names)] = { 0 };
	struct entry_list l = { 0 };
	uint32_t start = param_u32(params, 0);
	int rc = -ENOMEM, count;

	(void)cmd;
	pthread_mutex_lock(&sg_app_lock);
	if (sg_app == NULL) {
		rc = -EAGAIN;
		goto out;
	}
	count = sg_svc_count(sg_app->svc);
	l.v = calloc(count > 0 ? count : 1, sizeof(*l.v));
	if (l.v == NULL || columns_new(cols, RTE_DIM(cols), names, types) != 0)
		goto out;
	sg_svc_foreach(sg_app->svc, collect_entry, &l);
	qsort(l.v, l.n, sizeof(*l.v), cmp_entry_id);

	rte_tel_data_start_dict(d);
	rte_tel_data_add_dict_u64(d, "total", l.n);
	rte_tel_data_add_dict_u64(d, "start", start);
	for (uint32_t i = start; i < l.n && i - start < PAGE_ROWS; i++) {
		const struct sg_svc_entry *e = l.v[i];
		char buf[RTE_TEL_MAX_STRING_LEN];

		rte_tel_data_add_array_u64(cols[0].data, e->id);
		rte_tel_data_add_array_string(cols[1].data, e->name);
		rte_tel_data_add_array_string(cols[2].data, sg_svc_mode_name(e->mode));
		keys_str(e, buf, sizeof(buf));
		rte_tel_data_add_array_string(cols[3].data, buf);
		rte_tel_data_add_array_u64(cols[4].data, e->n_backends);
		rte_tel_data_add_array_u64(cols[5].data, e->n_usable);
		rte_tel_data_add_array_u64(cols[6].data, e->maglev_size);
		rte_tel_data_add_array_u64(cols[7].data, e->generation);
		flags_str(e, buf, sizeof(buf));
		rte_tel_data_add_array_string(cols[8].data, buf);
		rte_tel_data_add_array_string(cols[9].data,
					      app_services_source(sg_app->services, e->id));
	}
	columns_add(d, cols, RTE_DIM(cols));
	rc = 0;
out:
	pthread_mutex_unlock(&sg_app_lock);
	columns_free(cols, RTE_DIM(cols));
	free(l.v);
	return rc;
}

/* ---- /svcgw/backends ---------------------------------------------------- */

static void
state_str(uint8_t state, char *buf, size_t size)
{
	static const struct bit_name names[] = {
		{ SG_SVC_BE_READY, "ready" },
		{ SG_SVC_BE_SERVING, "serving" },
		{ SG_SVC_BE_TERMINATING, "terminating" },
	};

	bits_str(state, names, RTE_DIM(names), "not-ready", buf, size);
}

static int
cmd_backends(const char *cmd, const char *params, struct rte_tel_data *d)
{
	static const char *const names[] = { "index", "address", "state", "weight", "slots" };
	static const enum rte_tel_value_type types[] = {
		RTE_TEL_U64_VAL, RTE_TEL_STRING_VAL, RTE_TEL_STRING_VAL, RTE_TEL_U64_VAL,
		RTE_TEL_U64_VAL,
	};
	struct column cols[RTE_DIM(names)] = { 0 };
	const struct sg_svc_entry *e;
	uint32_t id, start = 0, *slots = NULL;
	char *end;
	int rc = -EINVAL;

	(void)cmd;
	if (params == NULL)
		return -EINVAL;
	id = (uint32_t)strtoul(params, &end, 10);
	if (end == params)
		return -EINVAL;
	if (*end == ',')
		start = param_u32(end + 1, 0);

	pthread_mutex_lock(&sg_app_lock);
	if (sg_app == NULL || (e = sg_svc_get(sg_app->svc, id)) == NULL)
		goto out;
	rc = -ENOMEM;
	slots = calloc(e->n_backends + 1u, sizeof(*slots));
	if (slots == NULL || columns_new(cols, RTE_DIM(cols), names, types) != 0)
		goto out;
	for (uint32_t i = 0; i < e->maglev_size; i++)
		slots[e->maglev[i]]++;

	start = RTE_MIN(start, (uint32_t)e->n_backends);
	rte_tel_data_start_dict(d);
	rte_tel_data_add_dict_u64(d, "service", id);
	rte_tel_data_add_dict_u64(d, "total", e->n_backends);
	rte_tel_data_add_dict_u64(d, "start", start);
	/* Row r is backend r + 1: backends[0] is "none". */
	for (uint32_t i = start + 1; i <= e->n_backends && i <= start + PAGE_ROWS; i++) {
		const struct sg_svc_backend *b = &e->backends[i];
		char buf[64];

		rte_tel_data_add_array_u64(cols[0].data, i);
		endpoint_str(b->family, b->addr, b->port, buf, sizeof(buf));
		rte_tel_data_add_array_string(cols[1].data, buf);
		state_str(b->state, buf, sizeof(buf));
		rte_tel_data_add_array_string(cols[2].data, buf);
		rte_tel_data_add_array_u64(cols[3].data, b->weight);
		rte_tel_data_add_array_u64(cols[4].data, slots[i]);
	}
	columns_add(d, cols, RTE_DIM(cols));
	rc = 0;
out:
	pthread_mutex_unlock(&sg_app_lock);
	columns_free(cols, RTE_DIM(cols));
	free(slots);
	return rc;
}

/* ---- /svcgw/flows --------------------------------------------------------- */

static int
cmd_flows(const char *cmd, const char *params, struct rte_tel_data *d)
{
	static const char *const names[] = { "worker", "proto", "client", "service", "snat",
					     "backend", "state", "age_ms" };
	static const enum rte_tel_value_type types[] = {
		RTE_TEL_U64_VAL, RTE_TEL_STRING_VAL, RTE_TEL_STRING_VAL, RTE_TEL_STRING_VAL,
		RTE_TEL_STRING_VAL, RTE_TEL_STRING_VAL, RTE_TEL_STRING_VAL, RTE_TEL_U64_VAL,
	};
	struct column cols[RTE_DIM(names)] = { 0 };
	struct rte_tel_data *per_worker = NULL;
	uint32_t want = RTE_MIN(param_u32(params, SAMPLE_DEFAULT), (uint32_t)PAGE_ROWS), left;
	uint64_t total = 0, until, unanswered = 0;
	struct sg_app *a;
	int rc = -ENOMEM;

	(void)cmd;
	pthread_mutex_lock(&sg_app_lock);
	a = sg_app;
	if (a == NULL) {
		rc = -EAGAIN;
		goto out;
	}
	per_worker = rte_tel_data_alloc();
	if (per_worker == NULL || columns_new(cols, RTE_DIM(cols), names, types) != 0)
		goto out;
	rte_tel_data_start_array(per_worker, RTE_TEL_U64_VAL);
	for (unsigned int i = 0; i < a->ctx.n_workers; i++) {
		uint32_t n = sg_flow_count(sg_dp_worker_flows(a->workers[i]));

		rte_tel_data_add_array_u64(per_worker, n);
		total += n;
	}

	/*
	 * The tables belong to their workers: ask every worker for a sample,
	 * then collect what arrives within SAMPLE_WAIT_MS. A worker that did
	 * not answer an earlier request in time is not asked again (the
	 * request is refused while one is pending), but its answer, late or
	 * not, is collected and released here all the same: skipping it would
	 * leave it pending, and that worker out of every later sample.
	 */
	for (unsigned int i = 0; i < a->ctx.n_workers; i++)
		(void)sg_dp_sample_request(a->workers[i], want);
	until = rte_get_tsc_cycles() + SAMPLE_WAIT_MS * a->tsc_per_ms;
	left = want;
	/* Every worker, even once the rows are all taken: each was asked. */
	for (unsigned int i = 0; i < a->ctx.n_workers; i++) {
		const struct sg_dp_sample *s;

		while ((s = sg_dp_sample_ready(a->workers[i])) == NULL &&
		       rte_get_tsc_cycles() < until)
			rte_delay_us_sleep(100);
		if (s == NULL) {
			unanswered++;
			continue;
		}
		for (uint32_t j = 0; j < s->n && left > 0; j++, left--) {
			const struct sg_dp_flow_sample *f = &s->flows[j];
			const char *svc = app_services_name(a->services, f->service_id);
			char buf[64];

			rte_tel_data_add_array_u64(cols[0].data, i);
			rte_tel_data_add_array_string(cols[1].data, sg_conf_proto_name(f->fwd.proto));
			endpoint_str(f->fwd.family, f->fwd.src, f->fwd.sport, buf, sizeof(buf));
			rte_tel_data_add_array_string(cols[2].data, buf);
			rte_tel_data_add_array_string(cols[3].data, svc != NULL ? svc : "?");
			if (f->has_rev) {
				endpoint_str(f->rev.family, f->rev.dst, f->rev.dport, buf,
					     sizeof(buf));
				rte_tel_data_add_array_string(cols[4].data, buf);
				endpoint_str(f->rev.family, f->rev.src, f->rev.sport, buf,
					     sizeof(buf));
				rte_tel_data_add_array_string(cols[5].data, buf);
			} else {
				rte_tel_data_add_array_string(cols[4].data, "-");
				rte_tel_data_add_array_string(cols[5].data, "-");
			}
			rte_tel_data_add_array_string(cols[6].data, sg_flow_state_name(f->state));
			rte_tel_data_add_array_u64(cols[7].data, f->age_ms);
		}
		sg_dp_sample_release(a->workers[i]);
	}

	rte_tel_data_start_dict(d);
	rte_tel_data_add_dict_u64(d, "count", total);
	/* Workers whose sample did not come in time: an empty sample is then no answer. */
	rte_tel_data_add_dict_u64(d, "unanswered", unanswered);
	rte_tel_data_add_dict_container(d, "per_worker", per_worker, 0);
	per_worker = NULL;
	columns_add(d, cols, RTE_DIM(cols));
	rc = 0;
out:
	pthread_mutex_unlock(&sg_app_lock);
	rte_tel_data_free(per_worker);
	columns_free(cols, RTE_DIM(cols));
	return rc;
}

/* ---- /svcgw/stats --------------------------------------------------------- */

static int
cmd_stats(const char *cmd, const char *params, struct rte_tel_data *d)
{
	static const char *const names[] = { "port", "port_rx", "port_tx", "port_missed",
					     "port_errors", "port_nombuf" };
	static const enum rte_tel_value_type types[] = {
		RTE_TEL_STRING_VAL, RTE_TEL_U64_VAL, RTE_TEL_U64_VAL, RTE_TEL_U64_VAL,
		RTE_TEL_U64_VAL, RTE_TEL_U64_VAL,
	};
	struct column cols[RTE_DIM(names)] = { 0 };
	struct sg_dp_stats sum;
	struct sg_neigh_rx_stats nsum;
	struct sg_svc_cache_stats csum;
	struct sg_app *a;
	int rc = -ENOMEM;

	(void)cmd;
	(void)params;
	memset(&sum, 0, sizeof(sum));
	memset(&nsum, 0, sizeof(nsum));
	memset(&csum, 0, sizeof(csum));
	pthread_mutex_lock(&sg_app_lock);
	a = sg_app;
	if (a == NULL) {
		rc = -EAGAIN;
		goto out;
	}
	if (columns_new(cols, RTE_DIM(cols), names, types) != 0)
		goto out;
	/* Plain counters of other lcores: aligned 64-bit reads, never torn. */
	for (unsigned int i = 0; i < a->ctx.n_workers; i++) {
		const struct sg_dp_stats *s = sg_dp_worker_stats(a->workers[i]);
		const struct sg_neigh_rx_stats *n = sg_dp_worker_neigh_stats(a->workers[i]);
		const struct sg_svc_cache_stats *sc = sg_dp_worker_svc_cache_stats(a->workers[i]);

		for (unsigned int c = 0; c < SG_DP_C_COUNT; c++)
			sum.c[c] += s->c[c];
		for (unsigned int r = 0; r < SG_PKT_REASON_COUNT; r++)
			sum.parse[r] += s->parse[r];
		nsum.arp_not_ours += n->arp_not_ours;
		nsum.ns_not_ours += n->ns_not_ours;
		nsum.conflicts += n->conflicts;
		nsum.quiet_seen += n->quiet_seen;
		nsum.arp_invalid += n->arp_invalid;
		csum.hits += sc->hits;
		csum.misses += sc->misses;
		csum.rested += sc->rested;
	}

	rte_tel_data_start_dict(d);
	for (unsigned int c = 0; c < SG_DP_C_COUNT; c++)
		rte_tel_data_add_dict_u64(d, sg_dp_counter_name(c), sum.c[c]);
	for (unsigned int r = 1; r < SG_PKT_REASON_COUNT; r++) {
		char name[RTE_TEL_MAX_STRING_LEN];

		snprintf(name, sizeof(name), "parse_%s", sg_pkt_reason_name(r));
		rte_tel_data_add_dict_u64(d, name, sum.parse[r]);
	}
	rte_tel_data_add_dict_u64(d, "neigh_arp_not_ours", nsum.arp_not_ours);
	rte_tel_data_add_dict_u64(d, "neigh_ns_not_ours", nsum.ns_not_ours);
	rte_tel_data_add_dict_u64(d, "neigh_conflicts", nsum.conflicts);
	rte_tel_data_add_dict_u64(d, "neigh_quiet_seen", nsum.quiet_seen);
	rte_tel_data_add_dict_u64(d, "neigh_arp_invalid", nsum.arp_invalid);
	rte_tel_data_add_dict_u64(d, "svc_cache_hits", csum.hits);
	rte_tel_data_add_dict_u64(d, "svc_cache_misses", csum.misses);
	rte_tel_data_add_dict_u64(d, "svc_cache_rested", csum.rested);
	for (unsigned int p = 0; p < a->ctx.n_ports; p++) {
		struct rte_eth_stats es;

		memset(&es, 0, sizeof(es));
		rte_eth_stats_get(a->ctx.ports[p].port_id, &es);
		rte_tel_data_add_array_string(cols[0].data, a->conf->ports[p].name);
		rte_tel_data_add_array_u64(cols[1].data, es.ipackets);
		rte_tel_data_add_array_u64(cols[2].data, es.opackets);
		rte_tel_data_add_array_u64(cols[3].data, es.imissed);
		rte_tel_data_add_array_u64(cols[4].data, es.ierrors + es.oerrors);
		rte_tel_data_add_array_u64(cols[5].data, es.rx_nombuf);
	}
	columns_add(d, cols, RTE_DIM(cols));
	rc = 0;
out:
	pthread_mutex_unlock(&sg_app_lock);
	columns_free(cols, RTE_DIM(cols));
	return rc;
}

/* ---- /svcgw/neighbours ---------------------------------------------------- */

struct neigh_list {
	struct sg_neigh_info *v;
	uint32_t n;
	uint32_t cap;
};

static int
collect_neigh(const struct sg_neigh_info *info, void *arg)
{
	struct neigh_list *l = arg;

	if (l->n == l->cap) {
		struct sg_neigh_info *v = sg_array_grow(l->v, &l->cap, sizeof(*v), 64);

		if (v == NULL)
			return -ENOMEM;
		l->v = v;
	}
	l->v[l->n++] = *info;
	return 0;
}

static int
cmp_neigh(const void *a, const void *b)
{
	return memcmp(&((const struct sg_neigh_info *)a)->key,
		      &((const struct sg_neigh_info *)b)->key, sizeof(struct sg_neigh_key));
}

static const char *
port_name(const struct sg_app *a, uint16_t pid)
{
	uint8_t i = a->ctx.port_index[pid];

	return i < a->ctx.n_ports ? a->conf->ports[i].name : "?";
}

static int
cmd_neighbours(const char *cmd, const char *params, struct rte_tel_data *d)
{
	static const char *const names[] = { "port", "address", "mac", "state", "age_s" };
	static const enum rte_tel_value_type types[] = {
		RTE_TEL_STRING_VAL, RTE_TEL_STRING_VAL, RTE_TEL_STRING_VAL, RTE_TEL_STRING_VAL,
		RTE_TEL_U64_VAL,
	};
	struct column cols[RTE_DIM(names)] = { 0 };
	struct neigh_list l = { 0 };
	uint32_t start = param_u32(params, 0);
	struct sg_app *a;
	int rc = -ENOMEM;

	(void)cmd;
	pthread_mutex_lock(&sg_app_lock);
	a = sg_app;
	if (a == NULL) {
		rc = -EAGAIN;
		goto out;
	}
	if (columns_new(cols, RTE_DIM(cols), names, types) != 0 ||
	    sg_neigh_foreach(a->neigh, app_now_ms(a), collect_neigh, &l) != 0)
		goto out;
	qsort(l.v, l.n, sizeof(*l.v), cmp_neigh);

	rte_tel_data_start_dict(d);
	rte_tel_data_add_dict_u64(d, "total", l.n);
	rte_tel_data_add_dict_u64(d, "start", start);
	for (uint32_t i = start; i < l.n && i - start < PAGE_ROWS; i++) {
		const struct sg_neigh_info *n = &l.v[i];
		char buf[64];

		rte_tel_data_add_array_string(cols[0].data, port_name(a, n->key.port));
		rte_tel_data_add_array_string(cols[1].data,
					      sg_conf_ip_str(n->key.family, n->key.addr, buf,
							     sizeof(buf)));
		snprintf(buf, sizeof(buf), "%02x:%02x:%02x:%02x:%02x:%02x", n->mac[0], n->mac[1],
			 n->mac[2], n->mac[3], n->mac[4], n->mac[5]);
		rte_tel_data_add_array_string(cols[2].data, buf);
		rte_tel_data_add_array_string(cols[3].data, sg_neigh_state_name(n->state));
		rte_tel_data_add_array_u64(cols[4].data, n->age_ms / 1000);
	}
	columns_add(d, cols, RTE_DIM(cols));
	rc = 0;
out:
	pthread_mutex_unlock(&sg_app_lock);
	columns_free(cols, RTE_DIM(cols));
	free(l.v);
	return rc;
}

/* ---- /svcgw/sync ----------------------------------------------------------- */

static uint64_t
real_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Milliseconds since a CLOCK_REALTIME stamp; 0 for "never" (and for a stamp ahead). */
static uint64_t
age_ms(uint64_t now, uint64_t then)
{
	return then != 0 && now > then ? now - then : 0;
}

/*
 * How svcgw follows the cluster: scalars for the sync as a whole and what
 * it put in the tables, a row per watched resource. Without a kubernetes
 * group, source "none" and nothing else.
 */
static int
cmd_sync(const char *cmd, const char *params, struct rte_tel_data *d)
{
	static const char *const names[] = { "resource", "state", "resource_version", "objects",
					     "events", "lists", "failures", "event_age_ms" };
	static const enum rte_tel_value_type types[] = {
		RTE_TEL_STRING_VAL, RTE_TEL_STRING_VAL, RTE_TEL_STRING_VAL, RTE_TEL_U64_VAL,
		RTE_TEL_U64_VAL, RTE_TEL_U64_VAL, RTE_TEL_U64_VAL, RTE_TEL_U64_VAL,
	};
	struct column cols[RTE_DIM(names)] = { 0 };
	struct app_k8s_status *st = malloc(sizeof(*st));
	const struct sg_k8s_sync *sy;
	uint64_t now = real_ms(), last = 0;
	int rc = -ENOMEM;

	(void)cmd;
	(void)params;
	pthread_mutex_lock(&sg_app_lock);
	if (sg_app == NULL) {
		rc = -EAGAIN;
		goto out;
	}
	if (st == NULL || columns_new(cols, RTE_DIM(cols), names, types) != 0)
		goto out;
	app_k8s_status(sg_app, st);
	rte_tel_data_start_dict(d);
	if (st->source == SG_CONF_K8S_NONE) {
		rte_tel_data_add_dict_string(d, "source", "none");
		rc = 0;
		goto out;
	}
	sy = &st->sync;
	rte_tel_data_add_dict_string(d, "source", sg_conf_k8s_source_name(st->source));
	rte_tel_data_add_dict_string(d, "server", sy->server);
	rte_tel_data_add_dict_u64(d, "synced", sy->synced);
	rte_tel_data_add_dict_u64(d, "first_sync_ms", st->first_sync_ms);
	for (unsigned int r = 0; r < SG_K8S_RESOURCE_COUNT; r++)
		last = RTE_MAX(last, sy->res[r].last_event_ms);
	rte_tel_data_add_dict_u64(d, "last_event_age_ms", age_ms(now, last));
	rte_tel_data_add_dict_string(d, "last_error", sy->last_error);
	rte_tel_data_add_dict_u64(d, "last_error_age_ms", age_ms(now, sy->last_error_ms));
	rte_tel_data_add_dict_u64(d, "bad_objects", sy->bad_objects);
	rte_tel_data_add_dict_u64(d, "events_dropped", sy->events_dropped);
	rte_tel_data_add_dict_u64(d, "services", st->counts.services);
	rte_tel_data_add_dict_u64(d, "served", st->counts.served);
	rte_tel_data_add_dict_u64(d, "refused", st->counts.refused);
	rte_tel_data_add_dict_u64(d, "parked", st->counts.parked);
	rte_tel_data_add_dict_u64(d, "entries", st->counts.entries);
	rte_tel_data_add_dict_u64(d, "nodes", st->nodes);
	rte_tel_data_add_dict_u64(d, "changes", st->counts.changes);
	rte_tel_data_add_dict_u64(d, "publications", st->counts.publications);
	rte_tel_data_add_dict_string(d, "last_publish", st->counts.last_publish);
	rte_tel_data_add_dict_u64(d, "last_publish_us", st->counts.last_publish_us);
	for (unsigned int r = 0; r < SG_K8S_RESOURCE_COUNT; r++) {
		const struct sg_k8s_resource_state *rs = &sy->res[r];

		rte_tel_data_add_array_string(cols[0].data, sg_k8s_resource_name(r));
		rte_tel_data_add_array_string(cols[1].data, sg_k8s_stream_state_name(rs->state));
		rte_tel_data_add_array_string(cols[2].data, rs->resource_version);
		rte_tel_data_add_array_u64(cols[3].data, rs->objects);
		rte_tel_data_add_array_u64(cols[4].data, rs->events);
		rte_tel_data_add_array_u64(cols[5].data, rs->lists);
		rte_tel_data_add_array_u64(cols[6].data, rs->failures);
		rte_tel_data_add_array_u64(cols[7].data, age_ms(now, rs->last_event_ms));
	}
	columns_add(d, cols, RTE_DIM(cols));
	rc = 0;
out:
	pthread_mutex_unlock(&sg_app_lock);
	columns_free(cols, RTE_DIM(cols));
	free(st);
	return rc;
}

/* ---- /svcgw/skipped -------------------------------------------------------- */

struct skipped_row {
	char key[SG_K8S_KEY_SIZE];
	const char *state;
	char why[RTE_TEL_MAX_STRING_LEN];
};

struct skipped_list {
	struct skipped_row *v;
	uint32_t n;
	uint32_t cap;
};

static int
collect_skipped(const char *key, const char *state, const char *why, void *arg)
{
	struct skipped_list *l = arg;

	if (l->n == l->cap) {
		struct skipped_row *v = sg_array_grow(l->v, &l->cap, sizeof(*v), 32);

		if (v == NULL)
			return -ENOMEM;
		l->v = v;
	}
	snprintf(l->v[l->n].key, sizeof(l->v[l->n].key), "%s", key);
	l->v[l->n].state = state;
	snprintf(l->v[l->n].why, sizeof(l->v[l->n].why), "%s", why);
	l->n++;
	return 0;
}

static int
cmp_skipped(const void *a, const void *b)
{
	return strcmp(((const struct skipped_row *)a)->key, ((const struct skipped_row *)b)->key);
}

/* The cluster's services svcgw does not serve, and why; by namespace/name. */
static int
cmd_skipped(const char *cmd, const char *params, struct rte_tel_data *d)
{
	static const char *const names[] = { "service", "state", "reason" };
	static const enum rte_tel_value_type types[] = {
		RTE_TEL_STRING_VAL, RTE_TEL_STRING_VAL, RTE_TEL_STRING_VAL,
	};
	struct column cols[RTE_DIM(names)] = { 0 };
	struct skipped_list l = { 0 };
	uint32_t start = param_u32(params, 0);
	int rc = -ENOMEM;

	(void)cmd;
	pthread_mutex_lock(&sg_app_lock);
	if (sg_app == NULL) {
		rc = -EAGAIN;
		goto out;
	}
	if (columns_new(cols, RTE_DIM(cols), names, types) != 0 ||
	    app_services_k8s_skipped(sg_app->services, collect_skipped, &l) != 0)
		goto out;
	qsort(l.v, l.n, sizeof(*l.v), cmp_skipped);
	rte_tel_data_start_dict(d);
	rte_tel_data_add_dict_u64(d, "total", l.n);
	rte_tel_data_add_dict_u64(d, "start", start);
	for (uint32_t i = start; i < l.n && i - start < PAGE_ROWS; i++) {
		rte_tel_data_add_array_string(cols[0].data, l.v[i].key);
		rte_tel_data_add_array_string(cols[1].data, l.v[i].state);
		rte_tel_data_add_array_string(cols[2].data, l.v[i].why);
	}
	columns_add(d, cols, RTE_DIM(cols));
	rc = 0;
out:
	pthread_mutex_unlock(&sg_app_lock);
	columns_free(cols, RTE_DIM(cols));
	free(l.v);
	return rc;
}

/*
 * Failover: this gateway's Leases, the live gateways, who leads, and the
 * owner of every VIP. Without a failover group, enabled 0 and nothing else.
 */
#define FAILOVER_ROWS 64

struct vip_rows {
	struct column *cols;
	const struct sg_app *a;
	uint32_t n;
	uint32_t owned, quiet;	/* every VIP key, rows or not */
};

static int
vip_row(const struct sg_neigh_key *key, uint8_t flags, void *arg)
{
	struct vip_rows *r = arg;
	struct sg_conf_addr ca = { .family = key->family == 4 ? SG_CONF_V4 : SG_CONF_V6 };
	char ip[SG_CONF_ADDR_STRLEN];
	const char *owner;

	if (!(flags & SG_NEIGH_ADDR_VIP))
		return 0;
	if (sg_neigh_flags_answered(flags))
		r->owned++;
	else
		r->quiet++;
	/* One telemetry reply holds about 16 KB: the first rows only. */
	if (r->n >= FAILOVER_ROWS)
		return 0;
	memcpy(ca.addr, key->addr, key->family == 4 ? 4 : 16);
	ca.len = key->family == 4 ? 32 : 128;
	owner = app_announce_owner(r->a, key->family, key->addr);
	rte_tel_data_add_array_string(r->cols[0].data, sg_conf_addr_str(&ca, ip, sizeof(ip)));
	rte_tel_data_add_array_u64(r->cols[1].data, key->port);
	rte_tel_data_add_array_string(r->cols[2].data, owner != NULL ? owner : "");
	rte_tel_data_add_array_u64(r->cols[3].data, sg_neigh_flags_answered(flags));
	r->n++;
	return 0;
}

static int
cmd_failover(const char *cmd, const char *params, struct rte_tel_data *d)
{
	static const char *const names[] = { "vip", "port", "owner", "answered" };
	static const enum rte_tel_value_type types[] = {
		RTE_TEL_STRING_VAL, RTE_TEL_U64_VAL, RTE_TEL_STRING_VAL, RTE_TEL_U64_VAL,
	};
	struct column cols[RTE_DIM(names)] = { 0 };
	struct app_lease_status *st = malloc(sizeof(*st));
	struct rte_tel_data *live = NULL, *peers = NULL;
	const struct app_announce *an;
	struct vip_rows rows = { .cols = cols };
	int rc = -ENOMEM;

	(void)cmd;
	(void)params;
	pthread_mutex_lock(&sg_app_lock);
	if (sg_app == NULL) {
		rc = -EAGAIN;
		goto out;
	}
	an = &sg_app->announce;
	rte_tel_data_start_dict(d);
	rte_tel_data_add_dict_u64(d, "enabled", an->failover);
	rte_tel_data_add_dict_u64(d, "leader", an->leader);
	if (!an->failover) {
		rc = 0;
		goto out;
	}
	live = rte_tel_data_alloc();
	peers = rte_tel_data_alloc();
	if (st == NULL || live == NULL || peers == NULL ||
	    columns_new(cols, RTE_DIM(cols), names, types) != 0)
		goto out;
	app_lease_status(sg_app->lease, st);
	rte_tel_data_add_dict_string(d, "name", st->name);
	rte_tel_data_add_dict_string(d, "namespace", st->ns);
	rte_tel_data_add_dict_string(d, "leader_lease", st->leader.name);
	rte_tel_data_add_dict_string(d, "leader_holder", st->leader_holder);
	rte_tel_data_add_dict_u64(d, "heartbeat_held", sg_lease_elector_held(&st->hb, st->now_ms));
	rte_tel_data_add_dict_u64(d, "list_age_ms",
				  st->listed_ms != 0 ? st->now_ms - st->listed_ms : UINT64_MAX);
	rte_tel_data_start_array(live, RTE_TEL_STRING_VAL);
	for (uint32_t i = 0; i < an->m.n_live; i++)
		rte_tel_data_add_array_string(live, an->m.live[i]);
	if (rte_tel_data_add_dict_container(d, "live", live, 0) == 0)
		live = NULL;
	rte_tel_data_start_array(peers, RTE_TEL_STRING_VAL);
	for (uint32_t i = 0; i < st->peers.n; i++)
		rte_tel_data_add_array_string(peers, st->peers.p[i].name);
	if (rte_tel_data_add_dict_container(d, "leases", peers, 0) == 0)
		peers = NULL;
	rte_tel_data_add_dict_u64(d, "takeovers", an->takeovers);
	rte_tel_data_add_dict_u64(d, "handovers", an->handovers);
	rte_tel_data_add_dict_u64(d, "membership_changes", an->changes);
	rte_tel_data_add_dict_u64(d, "last_change_us", an->last_change_us);
	rte_tel_data_add_dict_u64(d, "heartbeat_renewals", st->hb.renewals);
	rte_tel_data_add_dict_u64(d, "leader_acquired", st->leader.acquired);
	rte_tel_data_add_dict_u64(d, "conflicts", st->hb.conflicts + st->leader.conflicts);
	rte_tel_data_add_dict_u64(d, "errors", st->errors);
	rte_tel_data_add_dict_string(d, "last_error", st->last_error);
	rows.a = sg_app;
	sg_neigh_addr_foreach(sg_app->neigh, vip_row, &rows);
	/* Counted from the flags now: VIPs come and go between memberships. */
	rte_tel_data_add_dict_u64(d, "vips_owned", rows.owned);
	rte_tel_data_add_dict_u64(d, "vips_quiet", rows.quiet);
	columns_add(d, cols, RTE_DIM(cols));
	rc = 0;
out:
	pthread_mutex_unlock(&sg_app_lock);
	columns_free(cols, RTE_DIM(cols));
	rte_tel_data_free(live);
	rte_tel_data_free(peers);
	free(st);
	return rc;
}

int
app_telemetry_init(void)
{
	static const struct {
		const char *cmd;
		telemetry_cb fn;
		const char *help;
	} cmds[] = {
		{ "/svcgw/services", cmd_services,
		  "Service entries, a page of 32 from the offset given. Parameters: [start]" },
		{ "/svcgw/backends", cmd_backends,
		  "Backends of a service entry with their Maglev slots. Parameters: id[,start]" },
		{ "/svcgw/flows", cmd_flows,
		  "Flow counts per worker and a sample of up to 32 flows. Parameters: [n]" },
		{ "/svcgw/stats", cmd_stats, "Data-path counters and port counters. No parameters" },
		{ "/svcgw/neighbours", cmd_neighbours,
		  "Neighbour table, a page of 32 from the offset given. Parameters: [start]" },
		{ "/svcgw/sync", cmd_sync,
		  "How the tables follow the Kubernetes API. No parameters" },
		{ "/svcgw/failover", cmd_failover,
		  "Leases, live gateways, leader, and the owner of each VIP. No parameters" },
		{ "/svcgw/skipped", cmd_skipped,
		  "Kubernetes services not served, and why; a page of 32. Parameters: [start]" },
	};

	for (size_t i = 0; i < RTE_DIM(cmds); i++) {
		int rc = rte_telemetry_register_cmd(cmds[i].cmd, cmds[i].fn, cmds[i].help);

		if (rc != 0) {
			SG_LOG(svcgw, ERR, "telemetry %s: %s", cmds[i].cmd, strerror(-rc));
			return rc;
		}
	}
	return 0;
}
