/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * From the configuration to the tables: each service port becomes one
 * lib/svc entry per address family, with a stable id so that a reload
 * republishes only the entries whose content changed and removes those that
 * went away; the addresses the gateway owns (node addresses, VIPs, SNAT
 * addresses) follow, announced when they appear; the SNAT address set the
 * workers read is swapped under RCU. Control thread; app_services_check()
 * needs no EAL and runs before anything starts.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_byteorder.h>
#include <rte_malloc.h>
#include <rte_rcu_qsbr.h>

#include "maglev.h"
#include "neigh.h"
#include "svc.h"
#include "app.h"

/* Gratuitous ARP / unsolicited NA when an address appears: a few, as Linux's arp_notify. */
#define ANNOUNCE_COUNT 3
#define ANNOUNCE_INTERVAL_MS 1000

/* A published entry: its name makes the id stable across reloads. */
struct svc_rec {
	char name[SG_SVC_NAME_MAX];
	uint32_t id;
	uint64_t digest; /* of the compiled conf: unchanged means not republished */
	bool published;
};

/* An address we own, as registered with lib/neigh. */
struct owned {
	struct sg_neigh_key key;
	uint8_t flags;
};

struct app_services {
	struct svc_rec *recs;
	uint32_t n_recs;
	uint32_t cap_recs;
	uint32_t next_id;
	struct owned *owned;
	uint32_t n_owned;
	struct sg_dp_snat *snat;
};

/* One compiled entry: a sg_svc_conf and the arrays it points to. */
struct compiled {
	char name[SG_SVC_NAME_MAX];
	struct sg_svc_conf conf;
	struct sg_svc_key keys[SG_SVC_MAX_KEYS];
	struct sg_svc_prefix ranges[2 * SG_CONF_MAX_SRC_RANGES];
	struct sg_svc_backend *backends;
	uint64_t digest;
	bool done;		/* published, or unchanged */
};

/* Every entry of a config. */
struct compiled_set {
	struct compiled *v;
	uint32_t n;
	uint32_t cap;
	uint32_t n_keys;
};

static const uint8_t digest_key[16] = "svcgw-svc-digest";

struct app_services *
app_services_create(void)
{
	struct app_services *s = calloc(1, sizeof(*s));

	if (s != NULL)
		s->next_id = 1;
	return s;
}

void
app_services_free(struct app_services *s)
{
	if (s == NULL)
		return;
	free(s->recs);
	free(s->owned);
	rte_free(s->snat);
	free(s);
}

const char *
app_services_name(const struct app_services *s, uint32_t id)
{
	for (uint32_t i = 0; i < s->n_recs; i++)
		if (s->recs[i].id == id)
			return s->recs[i].name;
	return NULL;
}

static uint8_t
backend_state(const struct sg_conf_endpoint *ep)
{
	return (ep->ready ? SG_SVC_BE_READY : 0) | (ep->serving ? SG_SVC_BE_SERVING : 0) |
	       (ep->terminating ? SG_SVC_BE_TERMINATING : 0);
}

static bool
has_node_addr(const struct sg_conf *c, uint8_t family)
{
	for (uint32_t i = 0; i < c->n_node_addrs; i++)
		if (c->node_addrs[i].family == family)
			return true;
	return false;
}

/*
 * Where the data path cannot follow the file yet: only IPv4 nat is
 * forwarded, externalTrafficPolicy Local needs the client address kept
 * (dnat), and ClientIP affinity is not implemented. Refused rather than
 * silently ignored.
 */
static int
check_forwardable(const struct sg_conf *c, uint32_t i, char *err, size_t errlen)
{
	const struct sg_conf_service *s = &c->services[i];

	if (s->mode != SG_CONF_MODE_NAT) {
		snprintf(err, errlen, "%s:%u: services.[%u].mode: %s: this svcgw forwards nat only",
			 c->path, s->line, i, sg_conf_mode_name(s->mode));
		return -ENOTSUP;
	}
	if (s->local) {
		snprintf(err, errlen,
			 "%s:%u: services.[%u].external_traffic_policy: Local keeps the client "
			 "address, which nat cannot; this svcgw forwards nat only",
			 c->path, s->line, i);
		return -ENOTSUP;
	}
	if (s->affinity) {
		snprintf(err, errlen,
			 "%s:%u: services.[%u].session_affinity: ClientIP is not forwarded by this "
			 "svcgw yet", c->path, s->line, i);
		return -ENOTSUP;
	}
	if (s->families & SG_CONF_FAM_V6) {
		snprintf(err, errlen,
			 "%s:%u: services.[%u]: IPv6 is not forwarded by this svcgw yet (IPv4 only)",
			 c->path, s->line, i);
		return -ENOTSUP;
	}
	return 0;
}

/*
 * The entry of port p of service i for one family: with_vips and
 * with_nodeport choose its keys, so that a service with source ranges can
 * keep its NodePort in an entry of its own (kube-proxy filters only the
 * load balancer's traffic). Returns 1 with *out filled, 0 when the entry
 * would have no key, or a negative errno.
 */
static int
compile(const struct sg_conf *c, uint32_t i, uint32_t p, uint8_t family, bool with_vips,
	bool with_nodeport, struct compiled *out)
{
	const struct sg_conf_service *s = &c->services[i];
	const struct sg_conf_svc_port *sp = &s->ports[p];
	struct sg_svc_conf *sc = &out->conf;
	rte_be16_t port = rte_cpu_to_be_16((uint16_t)sp->port);
	uint32_t nb = 0;
	char pname[SG_CONF_K8S_NAME_SIZE + 8];

	memset(sc, 0, sizeof(*sc));
	sc->keys = out->keys;
	if (with_vips)
		for (uint32_t v = 0; v < s->n_vips; v++) {
			const struct sg_conf_addr *a = &s->vips[v];
			struct sg_svc_key *k = &out->keys[sc->n_keys];

			if (a->family != family)
				continue;
			sc->n_keys++;
			if (family == SG_CONF_V4) {
				rte_be32_t a4;

				memcpy(&a4, a->addr, 4);
				sg_svc_key4(k, a4, port, sp->proto);
			} else {
				sg_svc_key6(k, a->addr, port, sp->proto);
			}
		}
	if (with_nodeport && sp->node_port != 0 && has_node_addr(c, family)) {
		struct sg_svc_key *k = &out->keys[sc->n_keys++];
		rte_be16_t np = rte_cpu_to_be_16((uint16_t)sp->node_port);

		if (family == SG_CONF_V4)
			sg_svc_key4(k, 0, np, sp->proto);
		else
			sg_svc_key6(k, NULL, np, sp->proto);
	}
	if (sc->n_keys == 0)
		return 0;

	if (sp->name[0] != '\0')
		snprintf(pname, sizeof(pname), "%s", sp->name);
	else
		snprintf(pname, sizeof(pname), "%u", sp->port);
	snprintf(out->name, sizeof(out->name), "%s/%s:%s/%s%s%s", s->namespace, s->name, pname,
		 sg_conf_proto_name(sp->proto), family == SG_CONF_V6 ? "/v6" : "",
		 with_vips ? "" : "/nodeport");
	sc->name = out->name;
	sc->mode = (enum sg_svc_mode)s->mode;
	if (s->affinity) {
		sc->flags |= SG_SVC_F_AFFINITY;
		sc->affinity_timeout = s->affinity_timeout;
	}
	if (s->local)
		sc->flags |= SG_SVC_F_LOCAL;
	if (with_vips) {
		for (uint32_t r = 0; r < s->n_source_ranges; r++) {
			struct sg_svc_prefix *pr = &out->ranges[sc->n_src_ranges++];

			pr->family = s->source_ranges[r].family;
			pr->len = s->source_ranges[r].len;
			memcpy(pr->addr, s->source_ranges[r].addr, 16);
		}
		sc->src_ranges = out->ranges;
	}

	out->backends = calloc(s->n_endpoints ? s->n_endpoints : 1, sizeof(*out->backends));
	if (out->backends == NULL)
		return -ENOMEM;
	for (uint32_t e = 0; e < s->n_endpoints; e++) {
		const struct sg_conf_endpoint *ep = &s->endpoints[e];
		struct sg_svc_backend *b = &out->backends[nb];

		if (ep->address.family != family)
			continue;
		memcpy(b->addr, ep->address.addr, 16);
		b->port = rte_cpu_to_be_16((uint16_t)sp->target_port);
		b->family = family;
		b->state = backend_state(ep);
		b->weight = ep->weight;
		nb++;
	}
	sc->backends = out->backends;
	sc->n_backends = nb;
	return 1;
}

/*
 * Every entry of the config, in order: fn(c, entry, arg) for each. The
 * walk stops at the first non-zero return, which it returns.
 */
typedef int (*entry_fn)(const struct sg_conf *c, uint32_t svc, struct compiled *e, void *arg);

static int
foreach_entry(const struct sg_conf *c, entry_fn fn, void *arg, char *err, size_t errlen)
{
	static const uint8_t families[] = { SG_CONF_V4, SG_CONF_V6 };
	struct compiled *e = malloc(sizeof(*e));
	int rc = 0;

	if (e == NULL)
		return -ENOMEM;
	for (uint32_t i = 0; i < c->n_services && rc == 0; i++) {
		const struct sg_conf_service *s = &c->services[i];
		/* Source ranges filter the load balancer only: the NodePort gets its own entry. */
		bool split = s->n_source_ranges > 0;

		rc = check_forwardable(c, i, err, errlen);
		for (uint32_t p = 0; p < s->n_ports && rc == 0; p++) {
			for (size_t f = 0; f < RTE_DIM(families) && rc == 0; f++) {
				for (int part = 0; part < (split ? 2 : 1) && rc == 0; part++) {
					bool vips = !split || part == 0, np = !split || part == 1;

					e->backends = NULL;
					rc = compile(c, i, p, families[f], vips, np, e);
					if (rc == 1)
						rc = fn(c, i, e, arg);
					free(e->backends);
				}
			}
		}
		if (rc != 0 && err[0] == '\0')
			snprintf(err, errlen, "%s:%u: services.[%u]: %s", c->path, s->line, i,
				 strerror(-rc));
	}
	free(e);
	return rc;
}

/* A digest of everything an entry is made of, to skip republishing it unchanged. */
static uint64_t
digest(const struct compiled *e)
{
	const struct sg_svc_conf *sc = &e->conf;
	uint64_t h[5];

	h[0] = sg_siphash24(digest_key, sc->keys, sc->n_keys * sizeof(*sc->keys));
	h[1] = sg_siphash24(digest_key, sc->backends, sc->n_backends * sizeof(*sc->backends));
	h[2] = sg_siphash24(digest_key, sc->src_ranges != NULL ? (const void *)sc->src_ranges : "",
			    sc->n_src_ranges * sizeof(*sc->src_ranges));
	h[3] = (uint64_t)sc->mode << 56 | (uint64_t)sc->flags << 32 | sc->affinity_timeout;
	h[4] = sg_siphash24(digest_key, e->name, (uint32_t)strlen(e->name));
	return sg_siphash24(digest_key, h, sizeof(h));
}

static void
compiled_set_free(struct compiled_set *cs)
{
	for (uint32_t i = 0; i < cs->n; i++)
		free(cs->v[i].backends);
	free(cs->v);
	memset(cs, 0, sizeof(*cs));
}

/* foreach_entry() callback: keep a copy of the entry, pointers fixed up. */
static int
collect_entry(const struct sg_conf *c, uint32_t svc, struct compiled *e, void *arg)
{
	struct compiled_set *cs = arg;
	struct compiled *o;

	(void)c;
	(void)svc;
	if (cs->n == cs->cap) {
		uint32_t cap = cs->cap ? 2 * cs->cap : 64;
		struct compiled *v = realloc(cs->v, cap * sizeof(*v));

		if (v == NULL)
			return -ENOMEM;
		cs->v = v;
		cs->cap = cap;
	}
	o = &cs->v[cs->n++];
	*o = *e;
	o->conf.name = o->name;
	o->conf.keys = o->keys;
	if (o->conf.src_ranges != NULL)
		o->conf.src_ranges = o->ranges;
	/* The entry's backends move here: foreach_entry() must not free them. */
	o->conf.backends = o->backends;
	e->backends = NULL;
	o->digest = digest(o);
	o->done = false;
	cs->n_keys += o->conf.n_keys;
	return 0;
}

/*
 * Compile every entry of c, and check what the tables will take: the
 * entry and key counts against tables.services and tables.service_keys,
 * the SNAT addresses against what the workers hold.
 */
static int
compile_all(const struct sg_conf *c, struct compiled_set *cs, char *err, size_t errlen)
{
	uint32_t n_snat4 = 0;
	int rc;

	err[0] = '\0';
	memset(cs, 0, sizeof(*cs));
	rc = foreach_entry(c, collect_entry, cs, err, errlen);
	if (rc != 0)
		return rc;
	for (uint32_t i = 0; i < c->n_snat_addrs; i++)
		n_snat4 += c->snat_addrs[i].family == SG_CONF_V4;
	if (n_snat4 > SG_DP_MAX_SNAT)
		snprintf(err, errlen, "%s: snat_addresses: %u IPv4 addresses, at most %u are used",
			 c->path, n_snat4, SG_DP_MAX_SNAT);
	else if (cs->n > c->tables.services)
		snprintf(err, errlen,
			 "%s: tables.services: %u service entries (one per port, family and, with "
			 "source ranges, NodePort) do not fit %u", c->path, cs->n, c->tables.services);
	else if (cs->n_keys > c->tables.service_keys)
		snprintf(err, errlen, "%s: tables.service_keys: %u keys do not fit %u", c->path,
			 cs->n_keys, c->tables.service_keys);
	if (err[0] != '\0') {
		compiled_set_free(cs);
		return -ENOSPC;
	}
	return 0;
}

int
app_services_check(const struct sg_conf *c, char *err, size_t errlen)
{
	struct compiled_set cs;
	int rc = compile_all(c, &cs, err, errlen);

	compiled_set_free(&cs);
	return rc;
}

static struct svc_rec *
rec_find(struct app_services *s, const char *name)
{
	for (uint32_t i = 0; i < s->n_recs; i++)
		if (strcmp(s->recs[i].name, name) == 0)
			return &s->recs[i];
	return NULL;
}

static struct svc_rec *
rec_add(struct app_services *s, const char *name)
{
	struct svc_rec *r;

	if (s->n_recs == s->cap_recs) {
		uint32_t cap = s->cap_recs ? 2 * s->cap_recs : 64;

		r = realloc(s->recs, cap * sizeof(*r));
		if (r == NULL)
			return NULL;
		s->recs = r;
		s->cap_recs = cap;
	}
	r = &s->recs[s->n_recs++];
	memset(r, 0, sizeof(*r));
	memcpy(r->name, name, strnlen(name, sizeof(r->name) - 1));
	r->id = s->next_id++;
	return r;
}

static void
rec_remove(struct sg_app *a, struct svc_rec *r)
{
	struct app_services *s = a->services;

	sg_svc_remove(a->svc, r->id);
	*r = s->recs[--s->n_recs];
}

/* Remove the entries the new config no longer has: their keys become free. */
static void
remove_gone(struct sg_app *a, const struct compiled_set *cs)
{
	struct app_services *s = a->services;

	for (uint32_t i = 0; i < s->n_recs;) {
		bool kept = false;

		for (uint32_t j = 0; j < cs->n && !kept; j++)
			kept = strcmp(cs->v[j].name, s->recs[i].name) == 0;
		if (kept)
			i++;
		else
			rec_remove(a, &s->recs[i]);
	}
}

/*
 * One pass over the entries not done yet. A key another entry still holds
 * (-EEXIST: a VIP or NodePort moving between entries) waits for a later
 * pass, once that entry has been republished without it. Returns how many
 * were published, or a negative errno.
 */
static int
publish_pass(struct sg_app *a, struct compiled_set *cs, char *err, size_t errlen)
{
	struct app_services *s = a->services;
	int published = 0;

	for (uint32_t i = 0; i < cs->n; i++) {
		struct compiled *e = &cs->v[i];
		struct svc_rec *r;
		int rc;

		if (e->done)
			continue;
		r = rec_find(s, e->name);
		if (r != NULL && r->published && r->digest == e->digest) {
			e->done = true;
			continue;
		}
		if (r == NULL && (r = rec_add(s, e->name)) == NULL)
			return -ENOMEM;
		e->conf.id = r->id;
		rc = sg_svc_publish(a->svc, &e->conf);
		if (rc != 0 && !r->published)
			s->n_recs--;	/* rec_add() appended it: take it back */
		if (rc == -EEXIST)
			continue;
		if (rc != 0) {
			snprintf(err, errlen, "service %s: %s", e->name, strerror(-rc));
			return rc;
		}
		r->digest = e->digest;
		r->published = true;
		e->done = true;
		published++;
	}
	return published;
}

/*
 * Publish what changed. Keys moving between entries need their old holder
 * republished first, so passes repeat while they make progress; entries
 * that wait on each other (two services swapping a VIP) are removed and
 * published afresh, a moment without them rather than a refused reload.
 */
static int
publish_all(struct sg_app *a, struct compiled_set *cs, uint32_t *published, char *err,
	    size_t errlen)
{
	bool removed = false;

	for (;;) {
		int rc = publish_pass(a, cs, err, errlen);
		uint32_t left = 0;

		if (rc < 0)
			return rc;
		*published += (uint32_t)rc;
		for (uint32_t i = 0; i < cs->n; i++)
			left += !cs->v[i].done;
		if (left == 0)
			return 0;
		if (rc > 0)
			continue;
		if (removed) {
			snprintf(err, errlen, "%u service entries claim keys held elsewhere", left);
			return -EEXIST;
		}
		for (uint32_t i = 0; i < cs->n; i++) {
			struct svc_rec *r = cs->v[i].done ? NULL : rec_find(a->services, cs->v[i].name);

			if (r != NULL)
				rec_remove(a, r);
		}
		removed = true;
	}
}

/* ---- owned addresses ---------------------------------------------------- */

struct owned_set {
	struct owned *v;
	uint32_t n;
	uint32_t cap;
};

static int
owned_add(struct owned_set *set, uint16_t port, const struct sg_conf_addr *addr, uint8_t flags)
{
	struct sg_neigh_key k;

	if (addr->family == SG_CONF_V4)
		sg_neigh_key4(&k, port, addr->addr);
	else
		sg_neigh_key6(&k, port, addr->addr);
	for (uint32_t i = 0; i < set->n; i++)
		if (memcmp(&set->v[i].key, &k, sizeof(k)) == 0) {
			set->v[i].flags |= flags;
			return 0;
		}
	if (set->n == set->cap) {
		uint32_t cap = set->cap ? 2 * set->cap : 32;
		struct owned *v = realloc(set->v, cap * sizeof(*v));

		if (v == NULL)
			return -ENOMEM;
		set->v = v;
		set->cap = cap;
	}
	set->v[set->n].key = k;
	set->v[set->n++].flags = flags;
	return 0;
}

/* What the config says we own: node addresses and VIPs outside, SNAT addresses inside. */
static int
owned_wanted(const struct sg_app *a, const struct sg_conf *c, struct owned_set *set)
{
	int rc = 0;

	for (uint32_t p = 0; p < a->ctx.n_ports && rc == 0; p++) {
		const struct sg_dp_port *dp = &a->ctx.ports[p];

		if (dp->roles & SG_DP_ROLE_EXTERNAL) {
			for (uint32_t i = 0; i < c->n_node_addrs && rc == 0; i++)
				rc = owned_add(set, dp->port_id, &c->node_addrs[i],
					       SG_NEIGH_ADDR_NODE);
			for (uint32_t i = 0; i < c->n_services && rc == 0; i++)
				for (uint32_t v = 0; v < c->services[i].n_vips && rc == 0; v++)
					rc = owned_add(set, dp->port_id, &c->services[i].vips[v],
						       SG_NEIGH_ADDR_VIP);
		}
		if (dp->roles & SG_DP_ROLE_INTERNAL)
			for (uint32_t i = 0; i < c->n_snat_addrs && rc == 0; i++)
				rc = owned_add(set, dp->port_id, &c->snat_addrs[i],
					       SG_NEIGH_ADDR_SNAT);
	}
	return rc;
}

static const struct owned *
owned_find(const struct owned *v, uint32_t n, const struct sg_neigh_key *k)
{
	for (uint32_t i = 0; i < n; i++)
		if (memcmp(&v[i].key, k, sizeof(*k)) == 0)
			return &v[i];
	return NULL;
}

/*
 * Make lib/neigh own what the config says: new addresses (or new roles of
 * one) are added and announced, those that went away removed.
 */
static int
owned_apply(struct sg_app *a, const struct sg_conf *c, char *err, size_t errlen)
{
	struct app_services *s = a->services;
	struct owned_set want = { 0 };
	uint64_t now = app_now_ms(a);
	uint32_t unannounced = 0;
	int rc = owned_wanted(a, c, &want);

	for (uint32_t i = 0; i < s->n_owned; i++) {
		const struct owned *o = &s->owned[i];
		const struct owned *w = owned_find(want.v, want.n, &o->key);
		uint8_t gone = o->flags & ~(w != NULL ? w->flags : 0);

		if (gone != 0)
			sg_neigh_addr_remove(a->neigh, &o->key, gone);
	}
	for (uint32_t i = 0; i < want.n && rc == 0; i++) {
		const struct owned *w = &want.v[i];
		const struct owned *o = owned_find(s->owned, s->n_owned, &w->key);
		uint8_t added = w->flags & ~(o != NULL ? o->flags : 0);

		if (added == 0)
			continue;
		rc = sg_neigh_addr_add(a->neigh, &w->key, added);
		if (rc != 0) {
			snprintf(err, errlen, "%s: owned addresses: %s", c->path, strerror(-rc));
			break;
		}
		if (o == NULL && (added & (SG_NEIGH_ADDR_NODE | SG_NEIGH_ADDR_VIP)) &&
		    sg_neigh_announce(a->neigh, &w->key, ANNOUNCE_COUNT, ANNOUNCE_INTERVAL_MS,
				      now) != 0)
			unannounced++;
	}
	if (unannounced > 0)
		SG_LOG(svcgw, WARNING, "%u new addresses not announced: announcement queue full",
		       unannounced);
	if (rc != 0) {
		free(want.v);
		return rc;
	}
	free(s->owned);
	s->owned = want.v;
	s->n_owned = want.n;
	return 0;
}

/* Publish the SNAT addresses if they changed; the old set goes after a grace period. */
static int
snat_apply(struct sg_app *a, const struct sg_conf *c)
{
	struct app_services *s = a->services;
	struct sg_dp_snat *n = rte_zmalloc("sg_snat", sizeof(*n), 0), *old = s->snat;

	if (n == NULL)
		return -ENOMEM;
	for (uint32_t i = 0; i < c->n_snat_addrs && n->n4 < SG_DP_MAX_SNAT; i++)
		if (c->snat_addrs[i].family == SG_CONF_V4)
			memcpy(&n->addr4[n->n4++], c->snat_addrs[i].addr, 4);
	if (old != NULL && memcmp(old, n, sizeof(*n)) == 0) {
		rte_free(n);
		return 0;
	}
	atomic_store_explicit(&a->ctx.snat, n, memory_order_release);
	s->snat = n;
	if (old != NULL) {
		rte_rcu_qsbr_synchronize(a->ctx.qsbr, RTE_QSBR_THRID_INVALID);
		rte_free(old);
	}
	return 0;
}

int
app_services_apply(struct sg_app *a, const struct sg_conf *c, char *err, size_t errlen)
{
	struct compiled_set cs;
	uint32_t published = 0;
	int rc;

	rc = compile_all(c, &cs, err, errlen);
	if (rc != 0)
		return rc;
	remove_gone(a, &cs);
	rc = snat_apply(a, c);
	if (rc == 0)
		rc = owned_apply(a, c, err, errlen);
	if (rc == 0)
		rc = publish_all(a, &cs, &published, err, errlen);
	if (rc != 0 && err[0] == '\0')
		snprintf(err, errlen, "%s: %s", c->path, strerror(-rc));
	else if (rc == 0)
		SG_LOG(svcgw, INFO, "services: %u entries, %u (re)published", cs.n, published);
	compiled_set_free(&cs);
	return rc;
}
