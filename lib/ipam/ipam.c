/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The allocator of ipam.h: pools copied from the config, two indexes (a
 * service's holding by key, an address's users by address) in chained hash
 * tables of our own, and the search for a free address.
 *
 * A free address is found by walking a range from its first address and
 * skipping those in use: each step either ends the search or passes an
 * address held, so a search costs at most the number of addresses held
 * plus one per range, however large the range (a /64 included).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ipam.h"

/* Addresses as numbers: IPv4 and IPv6 alike, so ranges are walked by +1. */
__extension__ typedef unsigned __int128 u128;

#define MIN_BUCKETS 64u
#define SHARE_MAX 64u

/* ---- intrusive chained hash table ------------------------------------------------ */

struct link {
	struct link *next;
	uint64_t h;
};

struct table {
	struct link **b;
	uint32_t cap;		/* a power of two, or 0 */
	uint32_t n;
};

/* FNV-1a: the keys are service names and addresses, never an attacker's choice alone. */
static uint64_t
hash_bytes(const void *p, size_t n)
{
	const uint8_t *s = p;
	uint64_t h = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < n; i++)
		h = (h ^ s[i]) * 0x100000001b3ull;
	return h;
}

static int
table_grow(struct table *t)
{
	uint32_t cap = t->cap != 0 ? 2 * t->cap : MIN_BUCKETS;
	struct link **b = calloc(cap, sizeof(*b));

	if (b == NULL)
		return -ENOMEM;
	for (uint32_t i = 0; i < t->cap; i++)
		for (struct link *l = t->b[i], *next; l != NULL; l = next) {
			next = l->next;
			l->next = b[l->h & (cap - 1)];
			b[l->h & (cap - 1)] = l;
		}
	free(t->b);
	t->b = b;
	t->cap = cap;
	return 0;
}

static int
table_add(struct table *t, struct link *l, uint64_t h)
{
	if (t->n + 1 > t->cap && table_grow(t) < 0)
		return -ENOMEM;
	l->h = h;
	l->next = t->b[h & (t->cap - 1)];
	t->b[h & (t->cap - 1)] = l;
	t->n++;
	return 0;
}

static void
table_del(struct table *t, struct link *l)
{
	struct link **pp = &t->b[l->h & (t->cap - 1)];

	while (*pp != l)
		pp = &(*pp)->next;
	*pp = l->next;
	t->n--;
}

/* ---- state ------------------------------------------------------------------------ */

struct pool {
	char name[SG_CONF_K8S_NAME_SIZE];
	u128 first[SG_CONF_MAX_POOL_RANGES];
	u128 last[SG_CONF_MAX_POOL_RANGES];
	uint8_t fam[SG_CONF_MAX_POOL_RANGES];	/* SG_CONF_V4, SG_CONF_V6 */
	uint32_t n_ranges;
	uint8_t auto_assign;
	char **namespaces;
	uint32_t n_namespaces;
	uint32_t priority;
};

struct holding;

/* An address in use, by one service or several sharing it. */
struct use {
	struct link link;		/* first: the table's entries are uses */
	struct sg_conf_addr addr;
	struct holding **users;
	uint32_t n_users;
};

/* What one service holds, and what sharing needs to know of it. */
struct holding {
	struct link link;
	char *key;
	char share[SHARE_MAX];
	struct sg_ipam_port *ports;
	uint32_t n_ports;
	struct use *uses[2];
	int pool[2];			/* index in m->pools; -1 for none */
	uint32_t n;
};

struct sg_ipam {
	struct pool *pools;		/* by priority, then name */
	uint32_t n_pools;
	struct table by_key;		/* holdings */
	struct table by_addr;		/* uses */
	uint64_t releases;
};

static uint64_t
addr_hash(const struct sg_conf_addr *a)
{
	uint8_t k[17];

	k[0] = a->family;
	memcpy(k + 1, a->addr, 16);
	return hash_bytes(k, sizeof(k));
}

static u128
to_num(const struct sg_conf_addr *a)
{
	unsigned int n = a->family == SG_CONF_V4 ? 4 : 16;
	u128 v = 0;

	for (unsigned int i = 0; i < n; i++)
		v = (v << 8) | a->addr[i];
	return v;
}

static void
from_num(u128 v, uint8_t family, struct sg_conf_addr *a)
{
	unsigned int n = family == SG_CONF_V4 ? 4 : 16;

	memset(a, 0, sizeof(*a));
	a->family = family;
	a->len = (uint8_t)(n * 8);
	for (unsigned int i = 0; i < n && i < sizeof(a->addr); i++)
		a->addr[n - 1 - i] = (uint8_t)(v >> (8 * i));
}

static uint8_t
fam_bit(uint8_t family)
{
	return family == SG_CONF_V4 ? SG_CONF_FAM_V4 : family == SG_CONF_V6 ? SG_CONF_FAM_V6 : 0;
}

/* Slot of a family in a holding: IPv4 0, IPv6 1. */
static unsigned int
slot_of(uint8_t family)
{
	return family == SG_CONF_V6 ? 1 : 0;
}

static struct holding *
holding_find(const struct sg_ipam *m, const char *key)
{
	uint64_t h = hash_bytes(key, strlen(key));

	if (m->by_key.cap == 0)
		return NULL;
	for (struct link *l = m->by_key.b[h & (m->by_key.cap - 1)]; l != NULL; l = l->next)
		if (l->h == h && strcmp(((struct holding *)(void *)l)->key, key) == 0)
			return (struct holding *)(void *)l;
	return NULL;
}

static struct use *
use_find(const struct sg_ipam *m, const struct sg_conf_addr *a)
{
	uint64_t h = addr_hash(a);

	if (m->by_addr.cap == 0)
		return NULL;
	for (struct link *l = m->by_addr.b[h & (m->by_addr.cap - 1)]; l != NULL; l = l->next) {
		struct use *u = (struct use *)(void *)l;

		if (l->h == h && u->addr.family == a->family &&
		    memcmp(u->addr.addr, a->addr, 16) == 0)
			return u;
	}
	return NULL;
}

/* ---- pools -------------------------------------------------------------------------- */

static void
pools_free(struct pool *p, uint32_t n)
{
	for (uint32_t i = 0; i < n && p != NULL; i++) {
		for (uint32_t j = 0; j < p[i].n_namespaces; j++)
			free(p[i].namespaces[j]);
		free(p[i].namespaces);
	}
	free(p);
}

static int
cmp_pool(const void *pa, const void *pb)
{
	const struct pool *a = pa, *b = pb;

	if (a->priority != b->priority)
		return a->priority < b->priority ? -1 : 1;
	return strcmp(a->name, b->name);
}

static struct pool *
pools_copy(const struct sg_conf_pool *in, uint32_t n)
{
	struct pool *p = calloc(n != 0 ? n : 1, sizeof(*p));

	if (p == NULL)
		return NULL;
	for (uint32_t i = 0; i < n; i++) {
		const struct sg_conf_pool *c = &in[i];
		struct pool *o = &p[i];

		snprintf(o->name, sizeof(o->name), "%s", c->name);
		o->auto_assign = c->auto_assign;
		o->priority = c->priority;
		o->n_ranges = c->n_addresses < SG_CONF_MAX_POOL_RANGES ? c->n_addresses :
			      SG_CONF_MAX_POOL_RANGES;
		for (uint32_t r = 0; r < o->n_ranges; r++) {
			o->fam[r] = c->ranges[r].first.family;
			o->first[r] = to_num(&c->ranges[r].first);
			o->last[r] = to_num(&c->ranges[r].last);
		}
		if (c->n_namespaces > 0) {
			o->namespaces = calloc(c->n_namespaces, sizeof(char *));
			if (o->namespaces == NULL)
				goto nomem;
			for (uint32_t j = 0; j < c->n_namespaces; j++) {
				o->namespaces[j] = strdup(c->namespaces[j]);
				if (o->namespaces[j] == NULL)
					goto nomem;
				o->n_namespaces = j + 1;
			}
		}
	}
	qsort(p, n, sizeof(*p), cmp_pool);
	return p;
nomem:
	pools_free(p, n);
	return NULL;
}

/* The pool holding a, or -1. */
static int
pool_of(const struct sg_ipam *m, const struct sg_conf_addr *a)
{
	u128 v = to_num(a);

	for (uint32_t i = 0; i < m->n_pools; i++)
		for (uint32_t r = 0; r < m->pools[i].n_ranges; r++)
			if (m->pools[i].fam[r] == a->family && v >= m->pools[i].first[r] &&
			    v <= m->pools[i].last[r])
				return (int)i;
	return -1;
}

static bool
pool_allows_ns(const struct pool *p, const char *ns)
{
	if (p->n_namespaces == 0)
		return true;
	for (uint32_t i = 0; i < p->n_namespaces; i++)
		if (ns != NULL && strcmp(p->namespaces[i], ns) == 0)
			return true;
	return false;
}

/* Whether req may take from pool i at all (not counting auto_assign). */
static bool
pool_usable(const struct sg_ipam *m, uint32_t i, const struct sg_ipam_req *req)
{
	const struct pool *p = &m->pools[i];

	if (req->pool != NULL && req->pool[0] != '\0' && strcmp(req->pool, p->name) != 0)
		return false;
	return pool_allows_ns(p, req->namespace);
}

/* ---- sharing ------------------------------------------------------------------------- */

static bool
ports_overlap(const struct sg_ipam_port *a, uint32_t na, const struct sg_ipam_port *b,
	      uint32_t nb)
{
	for (uint32_t i = 0; i < na; i++)
		for (uint32_t j = 0; j < nb; j++)
			if (a[i].proto == b[j].proto && a[i].port == b[j].port)
				return true;
	return false;
}

/*
 * May req join the users of u? Its own holding (self) is left out of the
 * comparison: a service never conflicts with itself. who names a user in
 * the way, for messages.
 */
static bool
may_share(const struct use *u, const struct holding *self, const struct sg_ipam_req *req,
	  const char **who)
{
	const char *share = req->share != NULL ? req->share : "";

	for (uint32_t i = 0; i < u->n_users; i++) {
		const struct holding *o = u->users[i];

		if (o == self)
			continue;
		*who = o->key;
		if (share[0] == '\0' || strcmp(o->share, share) != 0)
			return false;
		if (ports_overlap(o->ports, o->n_ports, req->ports, req->n_ports))
			return false;
	}
	return true;
}

/* ---- holdings -------------------------------------------------------------------------- */

static struct holding *
holding_get(struct sg_ipam *m, const char *key)
{
	struct holding *h = holding_find(m, key);

	if (h != NULL)
		return h;
	h = calloc(1, sizeof(*h));
	if (h == NULL)
		return NULL;
	h->key = strdup(key);
	h->pool[0] = h->pool[1] = -1;
	if (h->key == NULL || table_add(&m->by_key, &h->link, hash_bytes(key, strlen(key))) < 0) {
		free(h->key);
		free(h);
		return NULL;
	}
	return h;
}

/* What sharing checks read of a service: kept up to date on every call. */
static int
holding_update(struct holding *h, const struct sg_ipam_req *req)
{
	struct sg_ipam_port *ports = NULL;

	if (req->n_ports > 0) {
		ports = malloc(req->n_ports * sizeof(*ports));
		if (ports == NULL)
			return -ENOMEM;
		memcpy(ports, req->ports, req->n_ports * sizeof(*ports));
	}
	free(h->ports);
	h->ports = ports;
	h->n_ports = req->n_ports;
	snprintf(h->share, sizeof(h->share), "%s", req->share != NULL ? req->share : "");
	return 0;
}

/* Add h as a user of address a (pool p). 0 or -ENOMEM. */
static int
take(struct sg_ipam *m, struct holding *h, const struct sg_conf_addr *a, int p)
{
	struct use *u = use_find(m, a);
	struct holding **users;
	bool fresh = u == NULL;

	if (fresh) {
		u = calloc(1, sizeof(*u));
		if (u == NULL)
			return -ENOMEM;
		u->addr = *a;
		u->addr.len = a->family == SG_CONF_V4 ? 32 : 128;
	}
	users = realloc(u->users, (u->n_users + 1) * sizeof(*users));
	if (users == NULL || (fresh && table_add(&m->by_addr, &u->link, addr_hash(a)) < 0)) {
		if (fresh) {
			free(users);
			free(u);
		} else if (users != NULL) {
			u->users = users;
		}
		return -ENOMEM;
	}
	u->users = users;
	u->users[u->n_users++] = h;
	/* Slots by family keep IPv4 first whatever order they came in. */
	{
		unsigned int s = slot_of(a->family);

		h->uses[s] = u;
		h->pool[s] = p;
		h->n++;
	}
	return 0;
}

/* Take h off u's users; u goes when nobody is left. */
static void
unuse(struct sg_ipam *m, struct holding *h, struct use *u)
{
	for (uint32_t i = 0; i < u->n_users; i++)
		if (u->users[i] == h) {
			u->users[i] = u->users[--u->n_users];
			break;
		}
	if (u->n_users == 0) {
		table_del(&m->by_addr, &u->link);
		free(u->users);
		free(u);
	}
	m->releases++;
}

/* Drop h's address of slot s. */
static void
drop(struct sg_ipam *m, struct holding *h, unsigned int s)
{
	struct use *u = h->uses[s];

	if (u == NULL)
		return;
	unuse(m, h, u);
	h->uses[s] = NULL;
	h->pool[s] = -1;
	h->n--;
}

static void
holding_free(struct sg_ipam *m, struct holding *h)
{
	for (unsigned int s = 0; s < 2; s++)
		drop(m, h, s);
	table_del(&m->by_key, &h->link);
	free(h->ports);
	free(h->key);
	free(h);
}

static void
fill_out(const struct sg_ipam *m, const struct holding *h, struct sg_ipam_alloc *out)
{
	if (out == NULL)
		return;
	memset(out, 0, sizeof(*out));
	for (unsigned int s = 0; h != NULL && s < 2; s++)
		if (h->uses[s] != NULL) {
			out->addrs[out->n] = h->uses[s]->addr;
			snprintf(out->pool[out->n], sizeof(out->pool[out->n]), "%s",
				 h->pool[s] >= 0 ? m->pools[h->pool[s]].name : "");
			out->n++;
		}
}

/* The requested address of a family, or NULL. */
static const struct sg_conf_addr *
wanted(const struct sg_ipam_req *req, uint8_t family)
{
	for (uint32_t i = 0; i < req->n_want && i < 2; i++)
		if (req->want[i].family == family)
			return &req->want[i];
	return NULL;
}

/*
 * Whether address a may be held by h for req: the right family, the one
 * requested if any, in a pool req may use, shareable. *pool is its pool.
 * why says what is wrong otherwise; err is the errno it means.
 */
static bool
valid_for(const struct sg_ipam *m, const struct holding *h, const struct sg_ipam_req *req,
	  const struct sg_conf_addr *a, int *pool, int *err, char *why, size_t whylen)
{
	const struct sg_conf_addr *w = wanted(req, a->family);
	const struct use *u;
	const char *who = "";
	char as[SG_CONF_ADDR_STRLEN];
	int p;

	sg_conf_ip_str(a->family, a->addr, as, sizeof(as));
	*err = -EINVAL;
	if (!(fam_bit(a->family) & req->families)) {
		snprintf(why, whylen, "%s is %s but the service is not", as,
			 a->family == SG_CONF_V4 ? "IPv4" : "IPv6");
		return false;
	}
	if (w != NULL && memcmp(w->addr, a->addr, 16) != 0) {
		snprintf(why, whylen, "%s is not the address requested", as);
		return false;
	}
	p = pool_of(m, a);
	if (p < 0 || !pool_usable(m, (uint32_t)p, req)) {
		if (p >= 0 && req->pool != NULL && req->pool[0] != '\0' &&
		    strcmp(req->pool, m->pools[p].name) != 0)
			snprintf(why, whylen, "%s is in pool %s, not in pool %s", as,
				 m->pools[p].name, req->pool);
		else if (p >= 0)
			snprintf(why, whylen, "%s is in pool %s, which does not serve namespace %s",
				 as, m->pools[p].name, req->namespace);
		else
			snprintf(why, whylen, "%s is in no address pool", as);
		return false;
	}
	u = use_find(m, a);
	if (u != NULL && !may_share(u, h, req, &who)) {
		snprintf(why, whylen, "%s is already used by %s", as, who);
		*err = -EADDRINUSE;
		return false;
	}
	*pool = p;
	return true;
}

/* ---- the search -------------------------------------------------------------------------- */

/*
 * An address of family for req: with a sharing key, one its key already
 * uses (compatible ports) comes first; else the lowest free address of the
 * first pool, by priority, that has one. 0 with *a and *pool, or -ENOSPC.
 */
static int
find_free(const struct sg_ipam *m, const struct holding *h, const struct sg_ipam_req *req,
	  uint8_t family, struct sg_conf_addr *a, int *pool)
{
	const char *who;

	if (req->share != NULL && req->share[0] != '\0') {
		/* Bounded by the addresses in use; sharing services are few. */
		for (uint32_t i = 0; i < m->by_addr.cap; i++)
			for (struct link *l = m->by_addr.b[i]; l != NULL; l = l->next) {
				const struct use *u = (const struct use *)(void *)l;
				int p;

				if (u->addr.family != family || u->n_users == 0 ||
				    strcmp(u->users[0]->share, req->share) != 0 ||
				    !may_share(u, h, req, &who))
					continue;
				p = pool_of(m, &u->addr);
				if (p < 0 || !pool_usable(m, (uint32_t)p, req) ||
				    !(m->pools[p].auto_assign || (req->pool && req->pool[0])))
					continue;
				*a = u->addr;
				*pool = p;
				return 0;
			}
	}
	for (uint32_t i = 0; i < m->n_pools; i++) {
		const struct pool *p = &m->pools[i];
		bool named = req->pool != NULL && req->pool[0] != '\0';

		if (!pool_usable(m, i, req) || (!p->auto_assign && !named))
			continue;
		for (uint32_t r = 0; r < p->n_ranges; r++) {
			if (p->fam[r] != family)
				continue;
			for (u128 v = p->first[r];; v++) {
				from_num(v, family, a);
				if (use_find(m, a) == NULL) {
					*pool = (int)i;
					return 0;
				}
				if (v == p->last[r])
					break;
			}
		}
	}
	return -ENOSPC;
}

/* ---- API ---------------------------------------------------------------------------------- */

struct sg_ipam *
sg_ipam_create(const struct sg_conf_pool *pools, uint32_t n)
{
	struct sg_ipam *m;

	if (pools == NULL && n > 0) {
		errno = EINVAL;
		return NULL;
	}
	m = calloc(1, sizeof(*m));
	if (m == NULL)
		return NULL;
	m->pools = pools_copy(pools, n);
	if (m->pools == NULL) {
		free(m);
		errno = ENOMEM;
		return NULL;
	}
	m->n_pools = n;
	return m;
}

void
sg_ipam_free(struct sg_ipam *m)
{
	if (m == NULL)
		return;
	for (uint32_t i = 0; i < m->by_key.cap; i++)
		while (m->by_key.b[i] != NULL)
			holding_free(m, (struct holding *)(void *)m->by_key.b[i]);
	free(m->by_key.b);
	free(m->by_addr.b);
	pools_free(m->pools, m->n_pools);
	free(m);
}

int
sg_ipam_set_pools(struct sg_ipam *m, const struct sg_conf_pool *pools, uint32_t n)
{
	struct pool *np;
	int released = 0;

	if (m == NULL || (pools == NULL && n > 0))
		return -EINVAL;
	np = pools_copy(pools, n);
	if (np == NULL)
		return -ENOMEM;
	pools_free(m->pools, m->n_pools);
	m->pools = np;
	m->n_pools = n;
	/* Pool indexes moved: look each address up again; out of every pool, it goes. */
	for (uint32_t i = 0; i < m->by_key.cap; i++)
		for (struct link *l = m->by_key.b[i]; l != NULL; l = l->next) {
			struct holding *h = (struct holding *)(void *)l;

			for (unsigned int s = 0; s < 2; s++) {
				if (h->uses[s] == NULL)
					continue;
				h->pool[s] = pool_of(m, &h->uses[s]->addr);
				if (h->pool[s] < 0) {
					drop(m, h, s);
					released++;
				}
			}
		}
	/* A holding of nothing is no holding: sg_ipam_get() says ENOENT. */
	for (uint32_t i = 0; i < m->by_key.cap; i++)
		for (struct link *l = m->by_key.b[i], *next; l != NULL; l = next) {
			next = l->next;
			if (((struct holding *)(void *)l)->n == 0)
				holding_free(m, (struct holding *)(void *)l);
		}
	return released;
}

int
sg_ipam_claim(struct sg_ipam *m, const struct sg_ipam_req *req, const struct sg_conf_addr *addrs,
	      uint32_t n)
{
	const struct sg_conf_addr *keep[2] = { NULL, NULL };
	int pools[2] = { -1, -1 }, err;
	struct holding *h;
	char why[160];
	int rc;

	if (m == NULL || req == NULL || req->key == NULL || (addrs == NULL && n > 0))
		return -EINVAL;
	h = holding_get(m, req->key);
	if (h == NULL || holding_update(h, req) < 0)
		return -ENOMEM;
	for (uint32_t i = 0; i < n; i++) {
		unsigned int s = slot_of(addrs[i].family);

		if (keep[s] == NULL && valid_for(m, h, req, &addrs[i], &pools[s], &err, why,
						 sizeof(why)))
			keep[s] = &addrs[i];
	}
	for (unsigned int s = 0; s < 2; s++) {
		if (h->uses[s] != NULL && (keep[s] == NULL ||
					   memcmp(h->uses[s]->addr.addr, keep[s]->addr, 16) != 0))
			drop(m, h, s);
		if (keep[s] != NULL && h->uses[s] == NULL) {
			rc = take(m, h, keep[s], pools[s]);
			if (rc < 0)
				return rc;
		}
	}
	rc = (int)h->n;
	if (h->n == 0)
		holding_free(m, h);
	return rc;
}

int
sg_ipam_assign(struct sg_ipam *m, const struct sg_ipam_req *req, struct sg_ipam_alloc *out,
	       char *why, size_t whylen)
{
	bool fresh[2] = { false, false };
	struct use *aside[2] = { NULL, NULL };
	int aside_pool[2] = { -1, -1 };
	uint8_t fams, missing = 0;
	struct holding *h;
	int rc = 0, err, p;
	char dummy[8];

	if (why == NULL || whylen == 0) {
		why = dummy;
		whylen = sizeof(dummy);
	}
	why[0] = '\0';
	if (out != NULL)
		memset(out, 0, sizeof(*out));
	if (m == NULL || req == NULL || req->key == NULL || req->n_want > 2) {
		snprintf(why, whylen, "invalid arguments");
		return -EINVAL;
	}
	h = holding_get(m, req->key);
	if (h == NULL || holding_update(h, req) < 0) {
		snprintf(why, whylen, "out of memory");
		return -ENOMEM;
	}
	/* The families to hold. */
	if (req->n_want > 0) {
		fams = 0;
		for (uint32_t i = 0; i < req->n_want; i++) {
			char as[SG_CONF_ADDR_STRLEN];

			if (!(fam_bit(req->want[i].family) & req->families) ||
			    (fams & fam_bit(req->want[i].family))) {
				snprintf(why, whylen, "requested address %s: %s",
					 sg_conf_ip_str(req->want[i].family, req->want[i].addr, as,
							sizeof(as)),
					 (fams & fam_bit(req->want[i].family)) ?
					 "two addresses of one family" :
					 "the service does not have that IP family");
				rc = -EINVAL;
				goto out;
			}
			fams |= fam_bit(req->want[i].family);
		}
	} else if (req->policy == SG_IPAM_POLICY_PREFER_DUAL ||
		   req->policy == SG_IPAM_POLICY_REQUIRE_DUAL) {
		fams = req->families & (SG_CONF_FAM_V4 | SG_CONF_FAM_V6);
	} else {
		fams = (req->families & SG_CONF_FAM_V4) ? SG_CONF_FAM_V4 :
		       (req->families & SG_CONF_FAM_V6);
	}
	if (fams == 0) {
		snprintf(why, whylen, "the service has no IP family");
		rc = -EINVAL;
		goto out;
	}
	if (req->pool != NULL && req->pool[0] != '\0') {
		bool known = false;

		for (uint32_t i = 0; i < m->n_pools && !known; i++)
			known = strcmp(m->pools[i].name, req->pool) == 0;
		if (!known) {
			snprintf(why, whylen, "no address pool is named %s", req->pool);
			rc = -EINVAL;
			goto out;
		}
	}
	/*
	 * What it holds and may keep stays; the rest goes, but only once the
	 * request is met: until then it is set aside (h stays among its
	 * users, so nobody else takes it), and a failure puts it back.
	 */
	for (unsigned int s = 0; s < 2; s++) {
		char w2[160];

		if (h->uses[s] == NULL)
			continue;
		if (!(fams & fam_bit(h->uses[s]->addr.family)) ||
		    !valid_for(m, h, req, &h->uses[s]->addr, &p, &err, w2, sizeof(w2))) {
			aside[s] = h->uses[s];
			aside_pool[s] = h->pool[s];
			h->uses[s] = NULL;
			h->pool[s] = -1;
			h->n--;
		} else {
			h->pool[s] = p;
		}
	}
	for (unsigned int s = 0; s < 2; s++) {
		uint8_t family = s == 0 ? SG_CONF_V4 : SG_CONF_V6;
		const struct sg_conf_addr *w = wanted(req, family);
		struct sg_conf_addr a;

		if (!(fams & fam_bit(family)) || h->uses[s] != NULL)
			continue;
		if (w != NULL) {
			if (!valid_for(m, h, req, w, &p, &err, why, whylen)) {
				rc = err;
				goto rollback;
			}
			a = *w;
		} else if (find_free(m, h, req, family, &a, &p) < 0) {
			missing |= fam_bit(family);
			continue;
		}
		rc = take(m, h, &a, p);
		if (rc < 0) {
			snprintf(why, whylen, "out of memory");
			goto rollback;
		}
		fresh[s] = true;
	}
	if (missing != 0 && !(req->policy == SG_IPAM_POLICY_PREFER_DUAL && h->n > 0 &&
			      req->n_want == 0)) {
		snprintf(why, whylen, "no free %s address in the pools %s may use",
			 missing == (SG_CONF_FAM_V4 | SG_CONF_FAM_V6) ? "IPv4 or IPv6" :
			 missing == SG_CONF_FAM_V4 ? "IPv4" : "IPv6", req->key);
		rc = -ENOSPC;
		goto rollback;
	}
	/* Met: what was set aside goes for good. */
	for (unsigned int s = 0; s < 2; s++)
		if (aside[s] != NULL)
			unuse(m, h, aside[s]);
	goto out;
rollback:
	/* All or nothing for this call: what it took goes back, what was held stays. */
	for (unsigned int s = 0; s < 2; s++) {
		if (fresh[s]) {
			drop(m, h, s);
			m->releases--;	/* never given out: nothing for others to retry */
		}
		if (aside[s] != NULL) {
			h->uses[s] = aside[s];
			h->pool[s] = aside_pool[s];
			h->n++;
		}
	}
out:
	fill_out(m, h, out);
	if (h->n == 0)
		holding_free(m, h);
	return rc;
}

int
sg_ipam_release(struct sg_ipam *m, const char *key)
{
	struct holding *h;
	int n;

	if (m == NULL || key == NULL)
		return 0;
	h = holding_find(m, key);
	if (h == NULL)
		return 0;
	n = (int)h->n;
	holding_free(m, h);
	return n;
}

int
sg_ipam_get(const struct sg_ipam *m, const char *key, struct sg_ipam_alloc *out)
{
	const struct holding *h = m != NULL && key != NULL ? holding_find(m, key) : NULL;

	fill_out(m, h, out);
	return h != NULL ? 0 : -ENOENT;
}

const char *
sg_ipam_holder(const struct sg_ipam *m, const struct sg_conf_addr *a)
{
	const struct use *u = m != NULL && a != NULL ? use_find(m, a) : NULL;

	return u != NULL && u->n_users > 0 ? u->users[0]->key : NULL;
}

uint64_t
sg_ipam_releases(const struct sg_ipam *m)
{
	return m != NULL ? m->releases : 0;
}

uint32_t
sg_ipam_used(const struct sg_ipam *m)
{
	return m != NULL ? m->by_addr.n : 0;
}

uint32_t
sg_ipam_services(const struct sg_ipam *m)
{
	return m != NULL ? m->by_key.n : 0;
}
