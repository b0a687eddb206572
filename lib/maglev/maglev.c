/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Maglev lookup table construction (NSDI'16 §3.4, Pseudocode 1), extended
 * with integer weights by turns. The contract that makes two gateways build
 * identical tables is written down in maglev.h; this file is the reference
 * implementation of it. Runs on the control thread only.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "maglev.h"

/* Identity as hashed and ordered: family, address, port (network order). */
#define IDENT_LEN 19

static const uint8_t key_offset[16] = "svcgw-maglev-off";
static const uint8_t key_skip[16] = "svcgw-maglev-skp";

/*
 * Smallest prime at or above 100 x 2^k. Doubling keeps M stable while a
 * service scales: any change of M remaps nearly every slot.
 */
static const uint32_t maglev_sizes[] = {
	101, 211, 401, 809, 1601, 3203, 6421, 12809, 25601, 51203,
	102407, 204803, 409609, 819229, 1638431,
};

/* A backend in the table, as ordered and hashed; cold once the build starts. */
struct member {
	uint8_t ident[IDENT_LEN];
	uint8_t ident_len;
	uint16_t index;	 /* position in the caller's array */
	uint32_t weight;
};

/*
 * What the fill loop touches, kept apart from the members so that for
 * N = 1000 it stays in L1 next to the occupancy bits.
 */
struct walker {
	uint32_t pos;  /* next preferred slot */
	uint32_t skip;
};

/* State of one build: the table, which slots are taken, and whose turn it is. */
struct fill {
	struct walker *walkers; /* in order of identity */
	uint16_t *index;	/* walker -> position in the caller's array */
	uint32_t *weight;	/* NULL when all weights are equal */
	uint32_t *credit;	/* (round x weight) mod max weight */
	uint32_t wmax;
	uint32_t n;
	uint32_t turn;		/* the walker to consider next */
	uint16_t *table;
	uint32_t size;
	uint32_t n_free;
	/*
	 * Occupancy as bits rather than a sentinel in the table: the search for
	 * a free slot is a chain of dependent loads, and 8 KiB of bits for
	 * M = 65537 stay in L1 where 128 KiB of uint16_t do not.
	 */
	uint64_t *taken;
	uint32_t *free_slots;	/* the free slots, once few are left */
	uint32_t *inverse;	/* skip^-1 mod M per walker, once needed; 0 before */
};

int
sg_maglev_is_prime(uint32_t n)
{
	if (n < 2)
		return 0;
	if (n % 2 == 0)
		return n == 2;
	for (uint32_t d = 3; (uint64_t)d * d <= n; d += 2)
		if (n % d == 0)
			return 0;
	return 1;
}

uint32_t
sg_maglev_size(uint32_t n_backends, uint32_t max_size)
{
	uint64_t want = 100ull * n_backends;

	if (n_backends == 0 || !sg_maglev_is_prime(max_size))
		return 0;
	for (size_t i = 0; i < sizeof(maglev_sizes) / sizeof(maglev_sizes[0]); i++)
		if (maglev_sizes[i] >= want)
			return maglev_sizes[i] < max_size ? maglev_sizes[i] : max_size;
	return max_size;
}

static int
ident_of(const struct sg_maglev_backend *b, uint8_t ident[IDENT_LEN], uint32_t *len)
{
	uint32_t alen;

	if (b->family == 4)
		alen = 4;
	else if (b->family == 6)
		alen = 16;
	else
		return -EINVAL;
	memset(ident, 0, IDENT_LEN);
	ident[0] = b->family;
	memcpy(ident + 1, b->addr, alen);
	ident[1 + alen] = (uint8_t)(b->port >> 8);
	ident[2 + alen] = (uint8_t)b->port;
	*len = 3 + alen;
	return 0;
}

static int
member_cmp(const void *a, const void *b)
{
	const struct member *ma = a, *mb = b;

	return memcmp(ma->ident, mb->ident, IDENT_LEN);
}

/*
 * The weighted backends in order of identity, so that the input order
 * cannot matter; zero weights are left out. Returns how many, or -EINVAL.
 */
static int
members_init(const struct sg_maglev_backend *backends, uint32_t n, struct member *members)
{
	uint32_t m = 0;

	for (uint32_t i = 0; i < n; i++) {
		uint32_t len;

		if (ident_of(&backends[i], members[m].ident, &len) < 0)
			return -EINVAL;
		if (backends[i].weight == 0)
			continue;
		members[m].ident_len = (uint8_t)len;
		members[m].index = (uint16_t)i;
		members[m].weight = backends[i].weight;
		m++;
	}
	qsort(members, m, sizeof(*members), member_cmp);
	for (uint32_t i = 1; i < m; i++)
		if (memcmp(members[i - 1].ident, members[i].ident, IDENT_LEN) == 0)
			return -EINVAL;
	return (int)m;
}

static void
walkers_init(struct fill *f, const struct member *members)
{
	for (uint32_t i = 0; i < f->n; i++) {
		const struct member *m = &members[i];

		f->walkers[i].pos =
			(uint32_t)(sg_siphash24(key_offset, m->ident, m->ident_len) % f->size);
		f->walkers[i].skip =
			(uint32_t)(sg_siphash24(key_skip, m->ident, m->ident_len) % (f->size - 1)) + 1;
		f->index[i] = m->index;
		if (m->weight > f->wmax)
			f->wmax = m->weight;
	}
}

static inline uint32_t
mod_add(uint32_t a, uint32_t b, uint32_t m)
{
	uint32_t c = a + b;

	return c >= m ? c - m : c;
}

static inline bool
slot_taken(const uint64_t *taken, uint32_t c)
{
	return (taken[c / 64] >> (c % 64)) & 1;
}

/* Slot c goes to the walker's backend, whose walk resumes after it. */
static inline void
claim(uint64_t *taken, uint16_t *table, struct walker *walker, uint16_t index,
      uint32_t c, uint32_t size)
{
	taken[c / 64] |= 1ull << (c % 64);
	table[c] = index;
	walker->pos = mod_add(c, walker->skip, size);
}

/*
 * The walker whose turn it is, round after round. In round r a backend of
 * weight w takes a turn when floor((r + 1) w / W) exceeds floor(r w / W), W
 * the largest weight; with credit = r w mod W that is credit + w >= W. Equal
 * weights give everyone a turn in every round: plain Maglev.
 */
static inline uint32_t
next_turn(const struct fill *f, uint32_t *turn)
{
	for (;;) {
		uint32_t w = *turn;

		*turn = w + 1 == f->n ? 0 : w + 1;
		if (f->weight == NULL)
			return w;
		f->credit[w] += f->weight[w];
		if (f->credit[w] >= f->wmax) {
			f->credit[w] -= f->wmax;
			return w;
		}
	}
}

/* skip^-1 mod m by the extended Euclidean algorithm; m prime, 0 < skip < m. */
static uint32_t
mod_inverse(uint32_t skip, uint32_t m)
{
	/* Everything stays below m < 2^31: 32-bit divisions, several times cheaper. */
	int32_t t0 = 0, t1 = 1, r0 = (int32_t)m, r1 = (int32_t)skip;

	while (r1 != 0) {
		int32_t q = r0 / r1, r = r0 - q * r1, t = t0 - q * t1;

		r0 = r1;
		r1 = r;
		t0 = t1;
		t1 = t;
	}
	return (uint32_t)(t0 < 0 ? t0 + (int32_t)m : t0);
}

/*
 * The slot the walk would find, in F steps where the walk takes about M / F:
 * slot s is step j = (s - pos) x skip^-1 (mod M) of the walk, so the first
 * free slot on it is the free slot of smallest j. Returns its place in
 * free_slots.
 */
static uint32_t
first_free_by_list(const struct fill *f, uint32_t w)
{
	/* The product is below 2^34: exact in a double, whose quotient is off by at most one. */
	const double inv_m = 1.0 / f->size;
	uint32_t pos = f->walkers[w].pos, inv = f->inverse[w];
	uint32_t best_j = UINT32_MAX, best = 0;

	/* Only the walkers that take a turn in the last F need it: computed on demand. */
	if (inv == 0)
		inv = f->inverse[w] = mod_inverse(f->walkers[w].skip, f->size);

	for (uint32_t k = 0; k < f->n_free; k++) {
		uint32_t s = f->free_slots[k];
		uint64_t x = (uint64_t)(s >= pos ? s - pos : s + f->size - pos) * inv;
		int64_t j = (int64_t)(x - (uint64_t)((double)x * inv_m) * f->size);

		if (j < 0)
			j += f->size;
		else if (j >= f->size)
			j -= f->size;
		if ((uint32_t)j < best_j) {
			best_j = (uint32_t)j;
			best = k;
		}
	}
	return best;
}

/*
 * Pseudocode 1 until only `until` slots are free: each turn walks its
 * permutation offset + j x skip (mod M) to the first free slot. Everything
 * the loop carries lives in locals: through *f, the stores to walkers[].pos
 * could alias the counters and would serialise the loop on memory.
 */
static void
fill_by_walk(struct fill *f, uint32_t until)
{
	struct walker *restrict walkers = f->walkers;
	uint64_t *restrict taken = f->taken;
	uint16_t *restrict table = f->table;
	const uint16_t *restrict index = f->index;
	const uint32_t size = f->size;
	uint32_t turn = f->turn, n_free = f->n_free;

	while (n_free > until) {
		uint32_t w = next_turn(f, &turn);
		uint32_t c = walkers[w].pos, skip = walkers[w].skip;

		while (slot_taken(taken, c))
			c = mod_add(c, skip, size);
		claim(taken, table, &walkers[w], index[w], c, size);
		n_free--;
	}
	f->turn = turn;
	f->n_free = n_free;
}

static uint32_t
isqrt(uint32_t n)
{
	uint32_t r = 0;

	while ((uint64_t)(r + 1) * (r + 1) <= n)
		r++;
	return r;
}

/* Fill by walking while free slots are many, by the free list when few. */
static int
fill_table(struct fill *f)
{
	uint32_t k = 0;

	/* Where the two searches cost about the same: F = M / F. */
	fill_by_walk(f, isqrt(f->size));
	if (f->n_free == 0)
		return 0;

	f->free_slots = malloc(sizeof(*f->free_slots) * f->n_free);
	f->inverse = calloc(f->n, sizeof(*f->inverse));	/* 0: not computed yet */
	if (f->free_slots == NULL || f->inverse == NULL)
		return -ENOMEM;
	for (uint32_t c = 0; c < f->size; c++)
		if (!slot_taken(f->taken, c))
			f->free_slots[k++] = c;

	while (f->n_free > 0) {
		uint32_t w = next_turn(f, &f->turn), at = first_free_by_list(f, w);

		claim(f->taken, f->table, &f->walkers[w], f->index[w], f->free_slots[at], f->size);
		f->free_slots[at] = f->free_slots[--f->n_free];
	}
	return 0;
}

int
sg_maglev_build(const struct sg_maglev_backend *backends, uint32_t n,
		uint16_t *table, uint32_t size)
{
	struct fill f = { .table = table, .size = size, .n_free = size };
	struct member *members;
	int rc = -ENOMEM;

	if (backends == NULL || table == NULL || n == 0 || n > SG_MAGLEV_MAX_BACKENDS ||
	    !sg_maglev_is_prime(size))
		return -EINVAL;

	members = malloc(sizeof(*members) * n);
	if (members == NULL)
		return -ENOMEM;
	rc = members_init(backends, n, members);
	if (rc <= 0 || (uint32_t)rc > size) {
		rc = -EINVAL;
		goto free_members;
	}
	f.n = (uint32_t)rc;

	rc = -ENOMEM;
	f.walkers = malloc(sizeof(*f.walkers) * f.n);
	f.index = malloc(sizeof(*f.index) * f.n);
	f.taken = calloc((size + 63) / 64, sizeof(*f.taken));
	if (f.walkers == NULL || f.index == NULL || f.taken == NULL)
		goto free_fill;
	walkers_init(&f, members);
	for (uint32_t i = 0; i < f.n; i++) {
		if (members[i].weight == f.wmax)
			continue;
		f.weight = malloc(sizeof(*f.weight) * f.n);
		f.credit = calloc(f.n, sizeof(*f.credit));
		if (f.weight == NULL || f.credit == NULL)
			goto free_fill;
		for (uint32_t j = 0; j < f.n; j++)
			f.weight[j] = members[j].weight;
		break;
	}
	rc = fill_table(&f);
free_fill:
	free(f.inverse);
	free(f.free_slots);
	free(f.credit);
	free(f.weight);
	free(f.taken);
	free(f.index);
	free(f.walkers);
free_members:
	free(members);
	return rc;
}
