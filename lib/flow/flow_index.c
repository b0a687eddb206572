/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The flow index's slow parts: sizing, placing a key whose primary bucket
 * is full (its other bucket, a breadth-first search for room, the stash)
 * and removing one. What a lookup runs, and an insert into a primary
 * bucket with room, is inline in flow_index.h; the keys themselves, and
 * confirming them against flow entries, are flow.c's.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include <rte_common.h>
#include <rte_malloc.h>

#include "flow_index.h"

int
flow_index_init(struct flow_index *x, uint64_t keys, uint32_t seed, int socket_id)
{
	/* Half full at most: two slots for every key; even (flow_index_other()). */
	uint64_t n = RTE_ALIGN_CEIL(RTE_MAX((2 * keys + FLOW_SLOTS - 1) / FLOW_SLOTS,
					    UINT64_C(2)), UINT64_C(2));

	memset(x, 0, sizeof(*x));
	if (n > (UINT64_C(1) << 31))
		return -EINVAL;
	x->bkt = rte_zmalloc_socket("sg_flow_index", n * sizeof(*x->bkt), RTE_CACHE_LINE_SIZE,
				    socket_id);
	if (x->bkt == NULL)
		return -ENOMEM;
	x->n = (uint32_t)n;
	x->seed = seed;
	return 0;
}

void
flow_index_fini(struct flow_index *x)
{
	rte_free(x->bkt);
	x->bkt = NULL;
}

static inline unsigned int
bucket_free(const struct flow_bucket *b)
{
	return flow_bucket_match(b, 0);
}

/* Slot of ref in bucket b, or -1. References are unique: no key compare. */
static int
bucket_find(const struct flow_bucket *b, uint32_t sig, uint32_t ref)
{
	unsigned int m = flow_bucket_match(b, sig);

	while (m != 0) {
		unsigned int s = (unsigned int)__builtin_ctz(m);

		if (b->ref[s] == ref)
			return (int)s;
		m &= m - 1;
	}
	return -1;
}

/* Put (sig, ref) in slot s of bucket bi and count it where it belongs. */
static void
slot_set(struct flow_index *x, uint32_t bi, unsigned int s, uint32_t sig, uint32_t ref)
{
	struct flow_bucket *b = &x->bkt[bi];
	uint32_t p = flow_index_primary(x, sig);

	RTE_ASSERT(b->sig[s] == 0);
	b->sig[s] = sig;
	b->ref[s] = ref;
	if (bi != p) {
		x->bkt[p].meta++;
		x->spilled++;
	}
}

static void
slot_clear(struct flow_index *x, uint32_t bi, unsigned int s)
{
	struct flow_bucket *b = &x->bkt[bi];
	uint32_t p = flow_index_primary(x, b->sig[s]);

	if (bi != p) {
		RTE_ASSERT((x->bkt[p].meta & FLOW_META_SPILL) != 0);
		x->bkt[p].meta--;
		x->spilled--;
	}
	b->sig[s] = 0;
	b->ref[s] = 0;
}

/* Move the slot s of bucket from to its other bucket, slot to (which is free). */
static void
slot_move(struct flow_index *x, uint32_t from, unsigned int s, uint32_t to, unsigned int ts)
{
	uint32_t sig = x->bkt[from].sig[s], ref = x->bkt[from].ref[s];

	RTE_ASSERT(flow_index_other(x, from, sig) == to);
	slot_clear(x, from, s);
	slot_set(x, to, ts, sig, ref);
	x->moves++;
}

/*
 * Make room in bucket p or q (both full) by moving slots to their other
 * buckets, breadth first so that the path of moves is short. Returns the
 * bucket that has a free slot now, or UINT32_MAX if none was found within
 * FLOW_SEARCH_MAX buckets.
 */
static uint32_t
make_room(struct flow_index *x, uint32_t p, uint32_t q)
{
	struct {
		uint32_t b;	/* a full bucket */
		int parent;	/* the node whose slot moves into b; -1 for p and q */
		unsigned int slot;	/* that slot, in the parent's bucket */
	} node[FLOW_SEARCH_MAX];
	unsigned int n = 2;

	node[0].b = p;
	node[0].parent = -1;
	node[1].b = q;
	node[1].parent = -1;
	for (unsigned int i = 0; i < n; i++) {
		for (unsigned int s = 0; s < FLOW_SLOTS; s++) {
			uint32_t y = flow_index_other(x, node[i].b, x->bkt[node[i].b].sig[s]);
			unsigned int f = bucket_free(&x->bkt[y]);
			unsigned int seen = 0;

			if (f != 0) {
				/*
				 * Move along the path, from its free end back to p
				 * or q: each move frees the one slot of a full
				 * bucket that the next move fills.
				 */
				int cur = (int)i;

				slot_move(x, node[cur].b, s, y, (unsigned int)__builtin_ctz(f));
				while (node[cur].parent >= 0) {
					int up = node[cur].parent;
					unsigned int hole = bucket_free(&x->bkt[node[cur].b]);

					slot_move(x, node[up].b, node[cur].slot, node[cur].b,
						  (unsigned int)__builtin_ctz(hole));
					cur = up;
				}
				return node[cur].b;
			}
			if (n == FLOW_SEARCH_MAX)
				continue;
			/*
			 * A bucket met twice could have a path move a slot that
			 * an earlier move of the same path refilled, with a key
			 * of another bucket pair.
			 */
			for (unsigned int j = 0; j < n && !seen; j++)
				seen = node[j].b == y;
			if (!seen) {
				node[n].b = y;
				node[n].parent = (int)i;
				node[n].slot = s;
				n++;
			}
		}
	}
	return UINT32_MAX;
}

int
flow_index_add_elsewhere(struct flow_index *x, uint32_t sig, uint32_t ref)
{
	uint32_t p = flow_index_primary(x, sig), q = flow_index_other(x, p, sig), b = q;
	unsigned int f = bucket_free(&x->bkt[q]);

	RTE_ASSERT(bucket_free(&x->bkt[p]) == 0);
	if (f == 0) {
		b = make_room(x, p, q);
		if (b != UINT32_MAX)
			f = bucket_free(&x->bkt[b]);
	}
	if (f != 0) {
		slot_set(x, b, (unsigned int)__builtin_ctz(f), sig, ref);
		x->keys++;
		return 0;
	}
	if (x->stash_n == FLOW_STASH)
		return -ENOSPC;
	x->stash_sig[x->stash_n] = sig;
	x->stash_ref[x->stash_n] = ref;
	x->stash_n++;
	x->bkt[p].meta |= FLOW_META_STASH;
	x->keys++;
	x->stashed++;
	return 0;
}

/* Whether the stash holds a key of primary bucket p. */
static int
stash_has(const struct flow_index *x, uint32_t p)
{
	for (uint32_t i = 0; i < x->stash_n; i++)
		if (flow_index_primary(x, x->stash_sig[i]) == p)
			return 1;
	return 0;
}

static void
stash_remove(struct flow_index *x, uint32_t i)
{
	uint32_t p = flow_index_primary(x, x->stash_sig[i]);

	x->stash_n--;
	x->stash_sig[i] = x->stash_sig[x->stash_n];
	x->stash_ref[i] = x->stash_ref[x->stash_n];
	if (!stash_has(x, p))
		x->bkt[p].meta &= ~FLOW_META_STASH;
}

/* A slot of bucket bi was freed: give it to a stashed key that can live there. */
static void
rehome(struct flow_index *x, uint32_t bi)
{
	unsigned int f = bucket_free(&x->bkt[bi]);

	for (uint32_t i = 0; i < x->stash_n && f != 0; i++) {
		uint32_t sig = x->stash_sig[i], p = flow_index_primary(x, sig);

		if (bi != p && bi != flow_index_other(x, p, sig))
			continue;
		slot_set(x, bi, (unsigned int)__builtin_ctz(f), sig, x->stash_ref[i]);
		stash_remove(x, i);
		return;
	}
}

void
flow_index_del(struct flow_index *x, uint32_t sig, uint32_t ref, int rehome_stash)
{
	uint32_t p = flow_index_primary(x, sig), b = p;
	int s = bucket_find(&x->bkt[p], sig, ref);

	if (s < 0 && (x->bkt[p].meta & FLOW_META_SPILL) != 0) {
		b = flow_index_other(x, p, sig);
		s = bucket_find(&x->bkt[b], sig, ref);
	}
	if (s >= 0) {
		slot_clear(x, b, (unsigned int)s);
		x->keys--;
		if (rehome_stash && x->stash_n != 0)
			rehome(x, b);
		return;
	}
	for (uint32_t i = 0; i < x->stash_n; i++) {
		if (x->stash_ref[i] == ref && x->stash_sig[i] == sig) {
			stash_remove(x, i);
			x->keys--;
			return;
		}
	}
	RTE_ASSERT(0);	/* not in the index */
}

void
flow_index_settle(struct flow_index *x, uint32_t sig, uint32_t ref)
{
	uint32_t p = flow_index_primary(x, sig), q = flow_index_other(x, p, sig);
	unsigned int f = bucket_free(&x->bkt[p]);
	int s;

	if ((x->bkt[p].meta & FLOW_META_SPILL) != 0 && f != 0 &&
	    (s = bucket_find(&x->bkt[q], sig, ref)) >= 0) {
		slot_clear(x, q, (unsigned int)s);
		slot_set(x, p, (unsigned int)__builtin_ctz(f), sig, ref);
		x->settled++;
		return;
	}
	if (!(x->bkt[p].meta & FLOW_META_STASH))
		return;
	if (f == 0) {
		p = q;
		f = bucket_free(&x->bkt[q]);
		if (f == 0)
			return;
	}
	for (uint32_t i = 0; i < x->stash_n; i++) {
		if (x->stash_ref[i] == ref && x->stash_sig[i] == sig) {
			slot_set(x, p, (unsigned int)__builtin_ctz(f), sig, ref);
			stash_remove(x, i);
			x->settled++;
			return;
		}
	}
}
