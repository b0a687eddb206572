/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A worker's cache of its service lookups (see sg_svc_cache_create()).
 *
 * Sets of two slots, one cache line each, picked by the key's hash; a
 * result goes in the set's first slot and pushes the older one to the
 * second. The whole cache holds lookups of one version of the table: when
 * the version moves on, the next lookup empties it first. That costs one
 * pass over CACHE_SETS lines per change of the table, and changes come at
 * the pace of the Kubernetes API, while lookups come at the packet rate.
 *
 * A cache that keeps missing (new flows spread over thousands of
 * services) only adds its probe and its fill to the table's lookup, 15 to
 * 35 cycles a key (bench_svc), where a hit saves 40 or more: it judges
 * itself over every CACHE_TRIAL keys and, with fewer hits than a third of
 * them, stands aside for the next CACHE_REST keys, then tries again.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include <rte_common.h>
#include <rte_debug.h>
#include <rte_malloc.h>

#include "svc.h"
#include "svc_private.h"

/* Sets of the cache, a power of two: 16 KB, room for hundreds of services. */
#define CACHE_SETS 256
#define CACHE_WAYS 2
/* Keys a trial of the cache takes, the hits it must have, keys it then rests for. */
#define CACHE_TRIAL 1024u
#define CACHE_TRIAL_HITS (CACHE_TRIAL / 3)
#define CACHE_REST (64u * 1024)

struct cache_slot {
	struct sg_svc_key key;
	uint32_t via_any;	/* 1: the entry came from the "any" key */
	const struct sg_svc_entry *entry;	/* NULL: empty */
};

struct cache_set {
	struct cache_slot way[CACHE_WAYS];
} __rte_cache_aligned;

_Static_assert(sizeof(struct cache_set) == RTE_CACHE_LINE_SIZE, "a set is one line");

struct sg_svc_cache {
	uint64_t version;	/* of the table the slots were filled from */
	uint32_t trial_keys;	/* keys of the current trial */
	uint32_t trial_hits;	/* of which the cache answered */
	uint32_t resting;	/* keys still to be passed to the table */
	struct sg_svc_cache_stats stats;
	struct cache_set set[CACHE_SETS] __rte_cache_aligned;
};

struct sg_svc_cache *
sg_svc_cache_create(int socket_id)
{
	struct sg_svc_cache *c;

	if (socket_id != SOCKET_ID_ANY && (socket_id < 0 || socket_id >= RTE_MAX_NUMA_NODES)) {
		errno = EINVAL;
		return NULL;
	}
	/* Zeroed: every slot empty, and no table's version is 0 (svc.c). */
	c = rte_zmalloc_socket("sg_svc_cache", sizeof(*c), RTE_CACHE_LINE_SIZE, socket_id);
	if (c == NULL)
		errno = ENOMEM;
	return c;
}

void
sg_svc_cache_free(struct sg_svc_cache *c)
{
	rte_free(c);
}

const struct sg_svc_cache_stats *
sg_svc_cache_stats(const struct sg_svc_cache *c)
{
	return c != NULL ? &c->stats : NULL;
}

/* The end of a trial: rest if the cache answered too few of its keys. */
static void
trial_count(struct sg_svc_cache *c, unsigned int keys, unsigned int hits)
{
	c->trial_keys += keys;
	c->trial_hits += hits;
	if (c->trial_keys < CACHE_TRIAL)
		return;
	if (c->trial_hits < CACHE_TRIAL_HITS)
		c->resting = CACHE_REST;
	c->trial_keys = 0;
	c->trial_hits = 0;
}

/*
 * The set of a key by its table hash, whose low bits pick its rte_hash
 * bucket: the cache takes higher ones.
 */
static inline struct cache_set *
cache_set_of(struct sg_svc_cache *c, uint32_t sig)
{
	return &c->set[(sig >> 16) & (CACHE_SETS - 1)];
}

/* Twenty bytes as two words and a half, with no call. */
static inline bool
key_same(const struct sg_svc_key *a, const struct sg_svc_key *b)
{
	uint64_t a0, a1, b0, b1;
	uint32_t a2, b2;

	memcpy(&a0, a, 8);
	memcpy(&b0, b, 8);
	memcpy(&a1, (const uint8_t *)a + 8, 8);
	memcpy(&b1, (const uint8_t *)b + 8, 8);
	memcpy(&a2, (const uint8_t *)a + 16, 4);
	memcpy(&b2, (const uint8_t *)b + 16, 4);
	return ((a0 ^ b0) | (a1 ^ b1) | (a2 ^ b2)) == 0;
}

static inline const struct cache_slot *
set_find(const struct cache_set *s, const struct sg_svc_key *k)
{
	for (unsigned int w = 0; w < CACHE_WAYS; w++)
		if (s->way[w].entry != NULL && key_same(&s->way[w].key, k))
			return &s->way[w];
	return NULL;
}

static void
set_put(struct cache_set *s, const struct sg_svc_key *k, const struct sg_svc_entry *e,
	bool via_any)
{
	memmove(&s->way[1], &s->way[0], (CACHE_WAYS - 1) * sizeof(s->way[0]));
	s->way[0].key = *k;
	s->way[0].via_any = via_any;
	s->way[0].entry = e;
}

unsigned int
sg_svc_lookup_bulk_cached(const struct sg_svc_table *t, struct sg_svc_cache *c,
			  const struct sg_svc_key *keys, unsigned int n,
			  const struct sg_svc_entry **entries, uint64_t *any_mask)
{
	const void *miss[SG_SVC_LOOKUP_MAX];
	const struct sg_svc_entry *found[SG_SVC_LOOKUP_MAX];
	struct cache_set *sets[SG_SVC_LOOKUP_MAX];
	uint32_t sig[SG_SVC_LOOKUP_MAX];
	uint8_t pos[SG_SVC_LOOKUP_MAX];
	uint64_t version, via_any = 0, miss_any = 0;
	unsigned int i, m = 0, hits = 0;

	RTE_ASSERT(t != NULL && c != NULL && keys != NULL && entries != NULL);
	if (sg_unlikely(n == 0 || n > SG_SVC_LOOKUP_MAX))
		return sg_svc_lookup_bulk(t, keys, n, entries, any_mask);
	if (sg_unlikely(c->resting > 0)) {
		c->resting -= RTE_MIN(c->resting, n);
		c->stats.rested += n;
		return sg_svc_lookup_bulk(t, keys, n, entries, any_mask);
	}
	/* Acquire: what the table held at this version is what lookups see. */
	version = svc_table_version(t);
	if (sg_unlikely(c->version != version)) {
		memset(c->set, 0, sizeof(c->set));
		c->version = version;
	}
	for (i = 0; i < n; i++) {
		uint32_t h = svc_key_hash(&keys[i], sizeof(keys[i]), SVC_KEY_HASH_SEED);
		struct cache_set *s = cache_set_of(c, h);
		const struct cache_slot *slot = set_find(s, &keys[i]);

		if (sg_likely(slot != NULL)) {
			entries[i] = slot->entry;
			via_any |= (uint64_t)slot->via_any << i;
			hits++;
			continue;
		}
		miss[m] = &keys[i];
		sig[m] = h;
		sets[m] = s;
		pos[m++] = (uint8_t)i;
	}
	c->stats.hits += hits;
	c->stats.misses += m;
	trial_count(c, n, hits);
	if (m == 0)
		goto out;
	svc_lookup_hashed(t, miss, sig, m, found, &miss_any);
	for (i = 0; i < m; i++) {
		bool any = (miss_any >> i) & 1;

		entries[pos[i]] = found[i];
		if (found[i] == NULL)
			continue;	/* not a service: nothing to remember */
		set_put(sets[i], miss[i], found[i], any);
		via_any |= (uint64_t)any << pos[i];
		hits++;
	}
out:
	if (any_mask != NULL)
		*any_mask = via_any;
	return hits;
}
