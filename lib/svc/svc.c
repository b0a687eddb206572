/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The service table: checking a sg_svc_conf and compiling it into one
 * immutable entry (backends, source ranges, Maglev table), publishing it
 * into an rte_hash made for lock-free readers, deferring every free past an
 * rte_rcu_qsbr grace period, and the lookups the workers call. Everything
 * but the lookups runs on the control thread.
 */

/* The rte_rcu_qsbr defer queue (rte_rcu_qsbr_dq_*) is experimental in 22.11. */
#define ALLOW_EXPERIMENTAL_API 1

#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_common.h>
#include <rte_debug.h>
#include <rte_errno.h>
#include <rte_hash.h>
#include <rte_rcu_qsbr.h>

#include "maglev.h"

#include "svc.h"
#include "svc_private.h"

SG_LOG_REGISTER(svc)

/*
 * The defer queue reclaims as it goes once this many resources wait, so a
 * busy control thread keeps it short without calling sg_svc_reclaim().
 */
#define DQ_TRIGGER 32u
#define DQ_RECLAIM_MAX 64u
/*
 * Most deferred resources before the writer waits for a grace period.
 * Workers report a quiescent state every poll loop, every few microseconds,
 * so the queue fills only when one stalls; the bound keeps a stalled worker
 * from making memory grow without end.
 */
#define DQ_SIZE_MAX 65535u

/* One deferred resource: an entry, or else a key slot of the hash. */
struct dq_item {
	struct sg_svc_entry *entry;
	int32_t slot;
	uint32_t unused;
};

struct sg_svc_table {
	/* Read by workers; apart from what publications write. */
	struct rte_hash *hash;	/* key -> entry, lock-free readers */
	uint32_t n_any_keys;	/* __atomic; skips the "any" pass when 0 */
	uint32_t serving_epoch;	/* __atomic; see sg_svc_serving_epoch() */
	uint64_t version;	/* __atomic; see svc_table_version() */

	/* Control thread. */
	struct rte_hash *ids __rte_cache_aligned; /* id -> index in recs */
	struct rte_rcu_qsbr *qsbr;
	struct rte_rcu_qsbr_dq *dq;
	struct sg_svc_entry **recs; /* current entries, [0, n_services) */
	uint32_t n_services;
	uint32_t max_services;
	uint32_t n_keys;
	uint32_t max_keys;
	uint32_t hash_slots;
	uint32_t maglev_max;
	uint32_t deferred;
	uint32_t dq_size; /* exact capacity of the defer queue */
	uint64_t entry_bytes;
	uint64_t publishes;
	uint64_t removes;
	uint64_t sync_waits;
};

/* What conf_check() learns on the way, for entry_build(). */
struct conf_counts {
	uint32_t n_src4;
	uint32_t n_src6;
	uint32_t n_weighted; /* backends of non-zero weight */
	uint32_t n_ready;    /* ... that are ready */
	size_t name_len;
};

static const char *const mode_names[SG_SVC_MODE_COUNT] = {
	[SG_SVC_MODE_NAT] = "nat",
	[SG_SVC_MODE_DNAT] = "dnat",
	[SG_SVC_MODE_DSR_IPIP] = "dsr-ipip",
	[SG_SVC_MODE_DSR_GUE] = "dsr-gue",
	[SG_SVC_MODE_DSR_L2] = "dsr-l2",
};

const char *
sg_svc_mode_name(unsigned int mode)
{
	return mode < SG_SVC_MODE_COUNT ? mode_names[mode] : "?";
}

static size_t
align_up(size_t x, size_t a)
{
	return (x + a - 1) & ~(a - 1);
}

/* 1 if an IPv4 address leaves bytes 4..15 zero, as keys and hashes need. */
static int
v4_tail_clear(uint8_t family, const uint8_t addr[16])
{
	if (family != 4)
		return 1;
	for (unsigned int i = 4; i < 16; i++)
		if (addr[i] != 0)
			return 0;
	return 1;
}

static int
key_check(const struct sg_svc_key *k)
{
	if (k->family != 4 && k->family != 6)
		return 0;
	if (k->proto != IPPROTO_TCP && k->proto != IPPROTO_UDP && k->proto != IPPROTO_SCTP)
		return 0;
	return k->port != 0 && v4_tail_clear(k->family, k->addr);
}

static int
key_eq(const struct sg_svc_key *a, const struct sg_svc_key *b)
{
	return memcmp(a, b, sizeof(*a)) == 0;
}

static int
entry_has_key(const struct sg_svc_entry *e, const struct sg_svc_key *k)
{
	for (uint32_t i = 0; i < e->n_keys; i++)
		if (key_eq(&e->keys[i], k))
			return 1;
	return 0;
}

static uint32_t
count_any(const struct sg_svc_key *keys, uint32_t n)
{
	uint32_t c = 0;

	for (uint32_t i = 0; i < n; i++)
		c += (uint32_t)sg_svc_key_is_any(&keys[i]);
	return c;
}

/* Family bit (1 << family) of every key and backend. */
static unsigned int
family_bit(uint8_t family)
{
	return 1u << family;
}

static int
conf_check(const struct sg_svc_table *t, const struct sg_svc_conf *c,
	   struct conf_counts *cnt)
{
	unsigned int families = 0;

	memset(cnt, 0, sizeof(*cnt));
	if (c->id == 0 || (unsigned int)c->mode >= SG_SVC_MODE_COUNT)
		return -EINVAL;
	if (c->flags & ~(SG_SVC_F_AFFINITY | SG_SVC_F_LOCAL))
		return -EINVAL;
	if ((c->flags & SG_SVC_F_AFFINITY) &&
	    (c->affinity_timeout == 0 || c->affinity_timeout > SG_SVC_AFFINITY_MAX))
		return -EINVAL;
	if ((c->flags & SG_SVC_F_LOCAL) && c->mode == SG_SVC_MODE_NAT)
		return -EINVAL;

	if (c->keys == NULL || c->n_keys == 0 || c->n_keys > SG_SVC_MAX_KEYS)
		return -EINVAL;
	for (uint32_t i = 0; i < c->n_keys; i++) {
		if (!key_check(&c->keys[i]))
			return -EINVAL;
		for (uint32_t j = 0; j < i; j++)
			if (key_eq(&c->keys[i], &c->keys[j]))
				return -EINVAL;
		families |= family_bit(c->keys[i].family);
	}

	if (c->n_src_ranges > 0 && c->src_ranges == NULL)
		return -EINVAL;
	for (uint32_t i = 0; i < c->n_src_ranges; i++) {
		const struct sg_svc_prefix *p = &c->src_ranges[i];

		if (p->family == 4 && p->len <= 32)
			cnt->n_src4++;
		else if (p->family == 6 && p->len <= 128)
			cnt->n_src6++;
		else
			return -EINVAL;
	}
	if (cnt->n_src4 > SG_SVC_MAX_SRC_RANGES || cnt->n_src6 > SG_SVC_MAX_SRC_RANGES)
		return -EINVAL;

	if (c->n_backends > SG_SVC_MAX_BACKENDS || (c->n_backends > 0 && c->backends == NULL))
		return -EINVAL;
	for (uint32_t i = 0; i < c->n_backends; i++) {
		const struct sg_svc_backend *b = &c->backends[i];

		if ((b->family != 4 && b->family != 6) || b->port == 0 ||
		    !v4_tail_clear(b->family, b->addr))
			return -EINVAL;
		if (b->state & ~(SG_SVC_BE_READY | SG_SVC_BE_SERVING | SG_SVC_BE_TERMINATING))
			return -EINVAL;
		if (c->mode != SG_SVC_MODE_DSR_IPIP && c->mode != SG_SVC_MODE_DSR_GUE)
			families |= family_bit(b->family);
		if (b->weight == 0)
			continue;
		cnt->n_weighted++;
		if (b->state & SG_SVC_BE_READY)
			cnt->n_ready++;
	}
	/* A tunnel may carry either family in either; a rewrite cannot. */
	if (c->mode != SG_SVC_MODE_DSR_IPIP && c->mode != SG_SVC_MODE_DSR_GUE &&
	    (families & (families - 1)) != 0)
		return -EINVAL;
	if (cnt->n_weighted > t->maglev_max)
		return -EINVAL;

	if (c->name != NULL) {
		cnt->name_len = strnlen(c->name, SG_SVC_NAME_MAX);
		if (cnt->name_len == SG_SVC_NAME_MAX)
			return -EINVAL;
	}
	return 0;
}

static int
backend_cmp(const void *a, const void *b)
{
	const struct sg_svc_backend *x = *(const struct sg_svc_backend *const *)a;
	const struct sg_svc_backend *y = *(const struct sg_svc_backend *const *)b;
	int d = (int)x->family - (int)y->family;

	if (d == 0)
		d = memcmp(x->addr, y->addr, sizeof(x->addr));
	if (d == 0)
		d = memcmp(&x->port, &y->port, sizeof(x->port));
	return d;
}

/*
 * Two backends with one identity would share Maglev slots between two
 * array positions; sg_maglev_build() catches it only among the usable ones,
 * and a conf must not become valid or invalid as pods change state.
 */
static int
backends_unique(const struct sg_svc_backend *b, uint32_t n)
{
	const struct sg_svc_backend **v;
	int rc = 0;

	if (n < 2)
		return 0;
	v = malloc(sizeof(*v) * n);
	if (v == NULL)
		return -ENOMEM;
	for (uint32_t i = 0; i < n; i++)
		v[i] = &b[i];
	qsort(v, n, sizeof(*v), backend_cmp);
	for (uint32_t i = 1; i < n && rc == 0; i++)
		if (backend_cmp(&v[i - 1], &v[i]) == 0)
			rc = -EINVAL;
	free(v);
	return rc;
}

/*
 * Whether a backend of old is missing from c or no longer serving there:
 * flows bound to it may need to move (sg_svc_serving_epoch()). Sorting c's
 * backends keeps this O(n log n) for services of thousands of pods. Out of
 * memory, the answer is yes: a needless check costs the workers little, a
 * missed one strands flows.
 */
static bool
lost_serving(const struct sg_svc_entry *old, const struct sg_svc_conf *c)
{
	const struct sg_svc_backend **v;
	bool lost = false;

	v = malloc(sizeof(*v) * RTE_MAX(c->n_backends, 1u));
	if (v == NULL)
		return true;
	for (uint32_t i = 0; i < c->n_backends; i++)
		v[i] = &c->backends[i];
	qsort(v, c->n_backends, sizeof(*v), backend_cmp);
	for (uint32_t i = 1; i <= old->n_backends && !lost; i++) {
		const struct sg_svc_backend *b = &old->backends[i], **hit;

		if (!sg_svc_backend_serving(b))
			continue;
		hit = bsearch(&b, v, c->n_backends, sizeof(*v), backend_cmp);
		lost = hit == NULL || !sg_svc_backend_serving(*hit);
	}
	free(v);
	return lost;
}

/* After the change is visible: a worker that sees the new epoch sees it. */
static void
serving_epoch_bump(struct sg_svc_table *t)
{
	__atomic_store_n(&t->serving_epoch, t->serving_epoch + 1, __ATOMIC_RELEASE);
}

uint32_t
sg_svc_serving_epoch(const struct sg_svc_table *t)
{
	return __atomic_load_n(&t->serving_epoch, __ATOMIC_ACQUIRE);
}

/*
 * Called after the hash changed and before an entry readers may hold is
 * deferred: the grace period that frees it then starts after the store,
 * so a reader that still reads the old version has not yet passed the
 * quiescent state the free waits for.
 */
static void
version_bump(struct sg_svc_table *t)
{
	__atomic_store_n(&t->version, t->version + 1, __ATOMIC_RELEASE);
}

uint64_t
svc_table_version(const struct sg_svc_table *t)
{
	return __atomic_load_n(&t->version, __ATOMIC_ACQUIRE);
}

static void
prefix_mask(uint8_t *mask, unsigned int bytes, unsigned int len)
{
	memset(mask, 0, bytes);
	for (unsigned int i = 0; i < bytes && len > 0; i++) {
		unsigned int bits = len > 8 ? 8 : len;

		mask[i] = (uint8_t)(0xff00u >> bits);
		len -= bits;
	}
}

static void
src_fill(const struct sg_svc_conf *c, struct sg_svc_src4 *s4, struct sg_svc_src6 *s6)
{
	uint32_t n4 = 0, n6 = 0;

	for (uint32_t i = 0; i < c->n_src_ranges; i++) {
		const struct sg_svc_prefix *p = &c->src_ranges[i];
		uint8_t m[16], a[16];

		prefix_mask(m, p->family == 4 ? 4 : 16, p->len);
		for (unsigned int j = 0; j < 16; j++)
			a[j] = p->addr[j] & m[j];
		if (p->family == 4) {
			memcpy(&s4[n4].net, a, 4);
			memcpy(&s4[n4].mask, m, 4);
			n4++;
		} else {
			memcpy(s6[n6].net, a, 16);
			memcpy(s6[n6].mask, m, 16);
			n6++;
		}
	}
}

/*
 * Build the Maglev table in place: the backend array goes to
 * sg_maglev_build() whole, unusable backends with weight 0, so its indices
 * are ours minus one and the table does not depend on which are usable
 * beyond the usable set itself.
 */
static int
maglev_fill(const struct sg_svc_conf *c, int any_ready, uint16_t *table, uint32_t size)
{
	struct sg_maglev_backend *mb;
	int rc;

	mb = calloc(c->n_backends, sizeof(*mb));
	if (mb == NULL)
		return -ENOMEM;
	for (uint32_t i = 0; i < c->n_backends; i++) {
		const struct sg_svc_backend *b = &c->backends[i];

		mb[i].family = b->family;
		memcpy(mb[i].addr, b->addr, sizeof(mb[i].addr));
		mb[i].port = rte_be_to_cpu_16(b->port);
		mb[i].weight = sg_svc_backend_usable(b, any_ready) ? b->weight : 0;
	}
	rc = sg_maglev_build(mb, c->n_backends, table, size);
	free(mb);
	if (rc < 0)
		return rc;
	for (uint32_t i = 0; i < size; i++)
		table[i]++;
	return 0;
}

/*
 * One allocation, in this order: the entry (hot line, cold line), source
 * ranges, backends, Maglev table, keys, name. aligned_alloc rather than
 * rte_malloc so that ASan sees every use after free.
 */
static struct sg_svc_entry *
entry_build(const struct sg_svc_table *t, const struct sg_svc_conf *c,
	    const struct conf_counts *cnt, uint32_t generation, int *rc)
{
	size_t off_src4, off_src6, off_be, off_mg, off_keys, off_name, size;
	uint32_t msize = 0, n_usable = 0;
	int any_ready = cnt->n_ready > 0;
	struct sg_svc_entry *e;
	char *base;

	*rc = backends_unique(c->backends, c->n_backends);
	if (*rc < 0)
		return NULL;
	for (uint32_t i = 0; i < c->n_backends; i++)
		n_usable += (uint32_t)sg_svc_backend_usable(&c->backends[i], any_ready);
	if (n_usable > 0)
		msize = sg_maglev_size(cnt->n_weighted, t->maglev_max);

	off_src4 = sizeof(*e);
	off_src6 = align_up(off_src4 + cnt->n_src4 * sizeof(struct sg_svc_src4), 8);
	off_be = align_up(off_src6 + cnt->n_src6 * sizeof(struct sg_svc_src6), 8);
	off_mg = off_be + (c->n_backends + 1) * sizeof(struct sg_svc_backend);
	off_keys = align_up(off_mg + msize * sizeof(uint16_t), 4);
	off_name = off_keys + c->n_keys * sizeof(struct sg_svc_key);
	size = align_up(off_name + cnt->name_len + 1, RTE_CACHE_LINE_SIZE);

	base = aligned_alloc(RTE_CACHE_LINE_SIZE, size);
	if (base == NULL) {
		*rc = -ENOMEM;
		return NULL;
	}
	memset(base, 0, size);
	e = (struct sg_svc_entry *)base;

	src_fill(c, (struct sg_svc_src4 *)(base + off_src4), (struct sg_svc_src6 *)(base + off_src6));
	if (c->n_backends > 0)
		memcpy(base + off_be + sizeof(struct sg_svc_backend), c->backends,
		       c->n_backends * sizeof(struct sg_svc_backend));
	if (msize > 0) {
		*rc = maglev_fill(c, any_ready, (uint16_t *)(base + off_mg), msize);
		if (*rc < 0) {
			free(base);
			return NULL;
		}
	}
	memcpy(base + off_keys, c->keys, c->n_keys * sizeof(struct sg_svc_key));
	if (cnt->name_len > 0)
		memcpy(base + off_name, c->name, cnt->name_len);

	e->maglev = msize > 0 ? (const uint16_t *)(base + off_mg) : NULL;
	e->backends = (const struct sg_svc_backend *)(base + off_be);
	e->src4 = (const struct sg_svc_src4 *)(base + off_src4);
	e->src6 = (const struct sg_svc_src6 *)(base + off_src6);
	e->maglev_size = msize;
	e->affinity_timeout = (c->flags & SG_SVC_F_AFFINITY) ? c->affinity_timeout : 0;
	e->id = c->id;
	e->generation = generation;
	e->n_backends = (uint16_t)c->n_backends;
	e->mode = (uint8_t)c->mode;
	e->flags = (uint8_t)c->flags;
	if (c->n_src_ranges > 0)
		e->flags |= SG_SVC_F_SRC_RANGES;
	if (any_ready)
		e->flags |= SG_SVC_F_ANY_READY;
	e->n_src4 = (uint8_t)cnt->n_src4;
	e->n_src6 = (uint8_t)cnt->n_src6;
	e->keys = (const struct sg_svc_key *)(base + off_keys);
	e->name = base + off_name;
	e->n_keys = c->n_keys;
	e->n_usable = n_usable;
	e->alloc_size = size;
	*rc = 0;
	return e;
}

static void
item_free(struct sg_svc_table *t, const struct dq_item *it)
{
	if (it->entry != NULL) {
		t->entry_bytes -= it->entry->alloc_size;
		free(it->entry);
	} else if (rte_hash_free_key_with_position(t->hash, it->slot) < 0) {
		SG_LOG(svc, ERR, "key slot %d could not be freed", it->slot);
	}
}

/* rte_rcu_qsbr_free_resource_t: the grace period of these is over. */
static void
dq_free(void *p, void *e, unsigned int n)
{
	struct sg_svc_table *t = p;

	for (unsigned int i = 0; i < n; i++) {
		struct dq_item it;

		/* The queue hands out bytes of no particular alignment. */
		memcpy(&it, (const char *)e + i * sizeof(it), sizeof(it));
		item_free(t, &it);
		t->deferred--;
	}
}

static unsigned int
reclaim_ready(struct sg_svc_table *t)
{
	unsigned int freed = 0;

	if (t->deferred > 0)
		rte_rcu_qsbr_dq_reclaim(t->dq, t->dq_size, &freed, NULL, NULL);
	return freed;
}

/* Wait for every reader to pass a quiescent state, then free all deferred. */
static void
reclaim_wait(struct sg_svc_table *t)
{
	rte_rcu_qsbr_synchronize(t->qsbr, RTE_QSBR_THRID_INVALID);
	t->sync_waits++;
	reclaim_ready(t);
}

/*
 * Free entry (or key slot `slot`) once readers are done with it. A full
 * queue means a reader has not reported for a long while; rather than fail
 * a publication already half visible, the writer waits for it here.
 */
static void
defer(struct sg_svc_table *t, struct sg_svc_entry *entry, int32_t slot)
{
	struct dq_item it = { .entry = entry, .slot = slot, .unused = 0 };

	if (t->deferred >= t->dq_size && reclaim_ready(t) == 0) {
		SG_LOG(svc, DEBUG, "defer queue full, waiting for readers");
		reclaim_wait(t);
	}
	if (rte_rcu_qsbr_dq_enqueue(t->dq, &it) != 0) {
		/* Not expected with room made above; still never free early. */
		SG_LOG(svc, ERR, "defer queue enqueue failed: %s", rte_strerror(rte_errno));
		reclaim_wait(t);
		item_free(t, &it);
		return;
	}
	t->deferred++;
}

/*
 * Key slots of deleted keys stay taken until reclaimed, and a publication
 * adds its new keys before it deletes the old ones: make sure that many
 * slots are free so the adds cannot fail half way.
 */
static void
make_room(struct sg_svc_table *t, uint32_t n_new)
{
	int32_t used = rte_hash_count(t->hash);

	if (used >= 0 && t->hash_slots - (uint32_t)used >= n_new)
		return;
	reclaim_ready(t);
	used = rte_hash_count(t->hash);
	if (used >= 0 && t->hash_slots - (uint32_t)used >= n_new)
		return;
	reclaim_wait(t);
}

/*
 * Point every key of e at e. The LF hash publishes each pointer with a
 * release store, so a reader that finds e sees it complete.
 */
static int
keys_install(struct sg_svc_table *t, struct sg_svc_entry *e, const struct sg_svc_entry *old)
{
	for (uint32_t i = 0; i < e->n_keys; i++) {
		int rc = rte_hash_add_key_data(t->hash, &e->keys[i], e);

		if (rc == 0)
			continue;
		SG_LOG(svc, ERR, "service %u: key add failed: %s", e->id, strerror(-rc));
		/* Undo; readers may have seen e, so it is deferred like any other. */
		while (i-- > 0) {
			if (old != NULL && entry_has_key(old, &e->keys[i])) {
				rte_hash_add_key_data(t->hash, &e->keys[i], (void *)(uintptr_t)old);
			} else {
				int32_t pos = rte_hash_del_key(t->hash, &e->keys[i]);

				if (pos >= 0)
					defer(t, NULL, pos);
			}
		}
		version_bump(t);
		defer(t, e, -1);
		return rc;
	}
	return 0;
}

/* Delete the keys of old that e does not have. */
static void
keys_retire(struct sg_svc_table *t, const struct sg_svc_entry *old, const struct sg_svc_entry *e)
{
	for (uint32_t i = 0; i < old->n_keys; i++) {
		int32_t pos;

		if (e != NULL && entry_has_key(e, &old->keys[i]))
			continue;
		pos = rte_hash_del_key(t->hash, &old->keys[i]);
		if (pos >= 0)
			defer(t, NULL, pos);
		else
			SG_LOG(svc, ERR, "service %u: key missing from the hash", old->id);
	}
}

static void
any_keys_set(struct sg_svc_table *t, uint32_t n)
{
	__atomic_store_n(&t->n_any_keys, n, __ATOMIC_RELAXED);
}

struct sg_svc_table *
sg_svc_table_create(const struct sg_svc_table_conf *conf)
{
	static uint32_t seq;
	struct rte_rcu_qsbr_dq_parameters dqp;
	struct rte_hash_parameters hp;
	struct sg_svc_table *t;
	char name[RTE_HASH_NAMESIZE];
	uint32_t n, dq_want;
	int err;

	if (conf == NULL || conf->qsbr == NULL || conf->max_services == 0 ||
	    conf->max_services > SG_SVC_MAX_SERVICES_LIMIT || conf->max_keys == 0 ||
	    conf->max_keys > SG_SVC_MAX_KEYS_LIMIT ||
	    (conf->maglev_max_size != 0 && !sg_maglev_is_prime(conf->maglev_max_size))) {
		errno = EINVAL;
		return NULL;
	}

	t = aligned_alloc(RTE_CACHE_LINE_SIZE, align_up(sizeof(*t), RTE_CACHE_LINE_SIZE));
	if (t == NULL) {
		errno = ENOMEM;
		return NULL;
	}
	memset(t, 0, sizeof(*t));
	t->qsbr = conf->qsbr;
	t->max_services = conf->max_services;
	t->max_keys = conf->max_keys;
	t->maglev_max = conf->maglev_max_size ? conf->maglev_max_size : SG_MAGLEV_DEFAULT_MAX_SIZE;
	/*
	 * The ring behind the defer queue holds a power of two minus one:
	 * asking for exactly that makes dq_size its true capacity.
	 */
	dq_want = conf->max_keys + conf->max_services;
	t->dq_size = rte_align32pow2(RTE_MIN(dq_want, DQ_SIZE_MAX) + 1) - 1;
	/* Live keys, one publication's new keys, and slots awaiting reclaim. */
	t->hash_slots = conf->max_keys + SG_SVC_MAX_KEYS + RTE_MIN(conf->max_keys, t->dq_size);
	n = __atomic_fetch_add(&seq, 1, __ATOMIC_RELAXED);
	/*
	 * Each table counts its versions from a base of its own, never 0, so
	 * a lookup cache that outlives a table cannot take the next table at
	 * the same address for the one it was filled from.
	 */
	t->version = (uint64_t)(n + 1) << 32;

	t->recs = calloc(conf->max_services, sizeof(*t->recs));
	if (t->recs == NULL) {
		err = ENOMEM;
		goto free_table;
	}

	snprintf(name, sizeof(name), "sgsvc%u", n);
	memset(&hp, 0, sizeof(hp));
	hp.name = name;
	hp.entries = t->hash_slots;
	hp.key_len = sizeof(struct sg_svc_key);
	hp.hash_func = svc_key_hash;
	hp.hash_func_init_val = SVC_KEY_HASH_SEED;
	hp.socket_id = conf->socket_id;
	/* EXT_TABLE: inserts cannot fail while a key slot is free. */
	hp.extra_flag = RTE_HASH_EXTRA_FLAGS_RW_CONCURRENCY_LF | RTE_HASH_EXTRA_FLAGS_EXT_TABLE;
	t->hash = rte_hash_create(&hp);
	if (t->hash == NULL) {
		err = rte_errno;
		goto free_recs;
	}

	snprintf(name, sizeof(name), "sgsvcid%u", n);
	hp.name = name;
	hp.entries = RTE_MAX(conf->max_services, 8u);
	hp.key_len = sizeof(uint32_t);
	hp.hash_func = NULL; /* DPDK's default suits aligned 4-byte keys */
	hp.extra_flag = RTE_HASH_EXTRA_FLAGS_EXT_TABLE;
	t->ids = rte_hash_create(&hp);
	if (t->ids == NULL) {
		err = rte_errno;
		goto free_hash;
	}

	snprintf(name, sizeof(name), "sgsvcdq%u", n);
	memset(&dqp, 0, sizeof(dqp));
	dqp.name = name;
	dqp.flags = RTE_RCU_QSBR_DQ_MT_UNSAFE; /* one writer */
	dqp.size = t->dq_size;
	dqp.esize = sizeof(struct dq_item);
	dqp.trigger_reclaim_limit = DQ_TRIGGER;
	dqp.max_reclaim_size = DQ_RECLAIM_MAX;
	dqp.free_fn = dq_free;
	dqp.p = t;
	dqp.v = conf->qsbr;
	t->dq = rte_rcu_qsbr_dq_create(&dqp);
	if (t->dq == NULL) {
		err = rte_errno;
		goto free_ids;
	}
	SG_LOG(svc, DEBUG, "table %u: %u services, %u keys, %u hash slots, defer queue %u",
	       n, t->max_services, t->max_keys, t->hash_slots, t->dq_size);
	return t;

free_ids:
	rte_hash_free(t->ids);
free_hash:
	rte_hash_free(t->hash);
free_recs:
	free(t->recs);
free_table:
	free(t);
	errno = err != 0 ? err : ENOMEM;
	return NULL;
}

void
sg_svc_table_free(struct sg_svc_table *t)
{
	if (t == NULL)
		return;
	/*
	 * After one grace period nothing deferred is in use; the delete fails
	 * only if a reader raced in since, so wait and try again.
	 */
	rte_rcu_qsbr_synchronize(t->qsbr, RTE_QSBR_THRID_INVALID);
	while (rte_rcu_qsbr_dq_delete(t->dq) != 0)
		rte_rcu_qsbr_synchronize(t->qsbr, RTE_QSBR_THRID_INVALID);
	for (uint32_t i = 0; i < t->n_services; i++)
		free(t->recs[i]);
	rte_hash_free(t->ids);
	rte_hash_free(t->hash);
	free(t->recs);
	free(t);
}

int
sg_svc_publish(struct sg_svc_table *t, const struct sg_svc_conf *c)
{
	struct sg_svc_entry *old = NULL, *e;
	struct conf_counts cnt;
	uint32_t idx = 0, n_new = 0, old_keys = 0, old_any = 0;
	bool lost;
	void *data;
	int rc;

	if (t == NULL || c == NULL)
		return -EINVAL;
	rc = conf_check(t, c, &cnt);
	if (rc < 0)
		return rc;

	if (rte_hash_lookup_data(t->ids, &c->id, &data) >= 0) {
		idx = (uint32_t)(uintptr_t)data;
		old = t->recs[idx];
		old_keys = old->n_keys;
		old_any = count_any(old->keys, old->n_keys);
	} else if (t->n_services >= t->max_services) {
		return -ENOSPC;
	}
	for (uint32_t i = 0; i < c->n_keys; i++) {
		if (rte_hash_lookup_data(t->hash, &c->keys[i], &data) < 0)
			n_new++;
		else if (data != old)
			return -EEXIST;
	}
	if ((uint64_t)t->n_keys - old_keys + c->n_keys > t->max_keys)
		return -ENOSPC;

	lost = old != NULL && lost_serving(old, c);
	e = entry_build(t, c, &cnt, old != NULL ? old->generation + 1 : 1, &rc);
	if (e == NULL)
		return rc;
	t->entry_bytes += e->alloc_size;

	if (old == NULL) {
		idx = t->n_services;
		rc = rte_hash_add_key_data(t->ids, &c->id, (void *)(uintptr_t)idx);
		if (rc < 0) {
			t->entry_bytes -= e->alloc_size;
			free(e);
			return rc;
		}
	}
	make_room(t, n_new);
	rc = keys_install(t, e, old);
	if (rc < 0) {
		if (old == NULL)
			rte_hash_del_key(t->ids, &c->id);
		return rc;
	}
	if (old != NULL)
		keys_retire(t, old, e);

	t->recs[idx] = e;
	if (old == NULL)
		t->n_services++;
	t->n_keys = t->n_keys - old_keys + e->n_keys;
	any_keys_set(t, t->n_any_keys - old_any + count_any(e->keys, e->n_keys));
	t->publishes++;
	if (lost)
		serving_epoch_bump(t);
	version_bump(t);
	if (old != NULL)
		defer(t, old, -1);
	SG_LOG(svc, DEBUG, "service %u (%s) generation %u: %u keys, %u backends, %u usable, M=%u",
	       e->id, e->name, e->generation, e->n_keys, e->n_backends, e->n_usable,
	       e->maglev_size);
	return 0;
}

int
sg_svc_remove(struct sg_svc_table *t, uint32_t id)
{
	struct sg_svc_entry *e, *last;
	uint32_t idx;
	void *data;

	if (t == NULL)
		return -EINVAL;
	if (rte_hash_lookup_data(t->ids, &id, &data) < 0)
		return -ENOENT;
	idx = (uint32_t)(uintptr_t)data;
	e = t->recs[idx];

	keys_retire(t, e, NULL);
	any_keys_set(t, t->n_any_keys - count_any(e->keys, e->n_keys));
	t->n_keys -= e->n_keys;

	last = t->recs[t->n_services - 1];
	t->recs[idx] = last;
	t->recs[t->n_services - 1] = NULL;
	if (last != e)
		rte_hash_add_key_data(t->ids, &last->id, (void *)(uintptr_t)idx);
	rte_hash_del_key(t->ids, &id);
	t->n_services--;
	t->removes++;
	serving_epoch_bump(t);
	version_bump(t);
	defer(t, e, -1);
	SG_LOG(svc, DEBUG, "service %u removed", id);
	return 0;
}

int
sg_svc_reclaim(struct sg_svc_table *t)
{
	if (t == NULL)
		return -EINVAL;
	return (int)reclaim_ready(t);
}

int
sg_svc_count(const struct sg_svc_table *t)
{
	if (t == NULL)
		return -EINVAL;
	return (int)t->n_services;
}

int
sg_svc_stats_get(const struct sg_svc_table *t, struct sg_svc_stats *st)
{
	if (t == NULL || st == NULL)
		return -EINVAL;
	memset(st, 0, sizeof(*st));
	st->services = t->n_services;
	st->keys = t->n_keys;
	st->any_keys = t->n_any_keys;
	st->deferred = t->deferred;
	st->deferred_max = t->dq_size;
	st->entry_bytes = t->entry_bytes;
	st->publishes = t->publishes;
	st->removes = t->removes;
	st->sync_waits = t->sync_waits;
	return 0;
}

const struct sg_svc_entry *
sg_svc_get(const struct sg_svc_table *t, uint32_t id)
{
	void *data;

	if (t == NULL || rte_hash_lookup_data(t->ids, &id, &data) < 0)
		return NULL;
	return t->recs[(uint32_t)(uintptr_t)data];
}

int
sg_svc_foreach(const struct sg_svc_table *t, sg_svc_foreach_fn fn, void *arg)
{
	if (t == NULL || fn == NULL)
		return -EINVAL;
	for (uint32_t i = 0; i < t->n_services; i++) {
		int rc = fn(t->recs[i], arg);

		if (rc != 0)
			return rc;
	}
	return 0;
}

unsigned int
svc_lookup_hashed(const struct sg_svc_table *t, const void *kp[],
		  uint32_t sig[], unsigned int n, const struct sg_svc_entry **entries,
		  uint64_t *any_mask)
{
	const void *ap[SG_SVC_LOOKUP_MAX];
	void *data[SG_SVC_LOOKUP_MAX];
	struct sg_svc_key any[SG_SVC_LOOKUP_MAX];
	uint32_t any_sig[SG_SVC_LOOKUP_MAX];
	uint8_t pos[SG_SVC_LOOKUP_MAX];
	uint64_t hits = 0, via_any = 0, more;
	unsigned int i, m = 0;

	RTE_ASSERT(n >= 1 && n <= SG_SVC_LOOKUP_MAX);
	rte_hash_lookup_with_hash_bulk_data(t->hash, kp, sig, n, &hits, data);
	for (i = 0; i < n; i++) {
		const struct sg_svc_key *k = kp[i];

		if (hits & (1ull << i)) {
			entries[i] = data[i];
			if (sg_unlikely(sg_svc_key_is_any(k)))
				via_any |= 1ull << i;
			continue;
		}
		entries[i] = NULL;
		if (sg_svc_key_is_any(k))
			continue;
		any[m] = *k;
		memset(any[m].addr, 0, sizeof(any[m].addr));
		pos[m] = (uint8_t)i;
		m++;
	}
	/* Services without NodePorts need no second pass over the misses. */
	if (m > 0 && __atomic_load_n(&t->n_any_keys, __ATOMIC_RELAXED) > 0) {
		for (i = 0; i < m; i++) {
			ap[i] = &any[i];
			any_sig[i] = svc_key_hash(&any[i], sizeof(any[i]), SVC_KEY_HASH_SEED);
		}
		more = 0;
		rte_hash_lookup_with_hash_bulk_data(t->hash, ap, any_sig, m, &more, data);
		for (i = 0; i < m; i++) {
			if (!(more & (1ull << i)))
				continue;
			entries[pos[i]] = data[i];
			hits |= 1ull << pos[i];
			via_any |= 1ull << pos[i];
		}
	}
	if (any_mask != NULL)
		*any_mask = via_any;
	return (unsigned int)__builtin_popcountll(hits);
}

unsigned int
sg_svc_lookup_bulk(const struct sg_svc_table *t, const struct sg_svc_key *keys,
		   unsigned int n, const struct sg_svc_entry **entries, uint64_t *any_mask)
{
	const void *kp[SG_SVC_LOOKUP_MAX];
	uint32_t sig[SG_SVC_LOOKUP_MAX];

	RTE_ASSERT(t != NULL && keys != NULL && entries != NULL);
	if (sg_unlikely(n == 0 || n > SG_SVC_LOOKUP_MAX)) {
		for (unsigned int i = 0; i < n; i++)
			entries[i] = NULL;
		if (any_mask != NULL)
			*any_mask = 0;
		return 0;
	}
	for (unsigned int i = 0; i < n; i++) {
		kp[i] = &keys[i];
		sig[i] = svc_key_hash(&keys[i], sizeof(keys[i]), SVC_KEY_HASH_SEED);
	}
	return svc_lookup_hashed(t, kp, sig, n, entries, any_mask);
}

const struct sg_svc_entry *
sg_svc_lookup(const struct sg_svc_table *t, const struct sg_svc_key *key, int *via_any)
{
	struct sg_svc_key any;
	void *data;

	RTE_ASSERT(t != NULL && key != NULL);
	if (rte_hash_lookup_data(t->hash, key, &data) >= 0) {
		if (via_any != NULL)
			*via_any = sg_svc_key_is_any(key);
		return data;
	}
	if (via_any != NULL)
		*via_any = 0;
	if (sg_svc_key_is_any(key) || __atomic_load_n(&t->n_any_keys, __ATOMIC_RELAXED) == 0)
		return NULL;
	any = *key;
	memset(any.addr, 0, sizeof(any.addr));
	if (rte_hash_lookup_data(t->hash, &any, &data) < 0)
		return NULL;
	if (via_any != NULL)
		*via_any = 1;
	return data;
}
