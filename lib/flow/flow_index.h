/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The flow table's index, private to lib/flow: from a key's signature to
 * references (flow entry, direction). The inline parts below are what a
 * lookup runs and what nearly every insert does (a free slot in the
 * primary bucket); flow_index.c has the rest (creation, placement
 * elsewhere, removal).
 *
 * Buckets are one cache line of seven (signature, reference) slots. Keys
 * are not stored: the flow entry a reference names holds both of its
 * tuples, and it is the line the caller reads next anyway, so flow.c
 * confirms a candidate by comparing the key with that entry. The index
 * knows keys only by signature and never compares them.
 *
 * A signature is CRC32c of the key's tuple with the table's seed, top bit
 * set so that it never equals an empty slot's 0. It picks the key's
 * primary bucket; its other bucket is computed from the primary and
 * the signature alone, so that a slot can move between its two buckets
 * without its key (partial-key cuckoo hashing: Pagh and Rodler, "Cuckoo
 * hashing", ESA 2001; Fan et al., MemC3, NSDI'13 §3.1). Neither needs the
 * bucket count to be a power of two, so the index is sized to its keys: a
 * power of two would cost up to twice the memory, and the index is most of
 * what a flow lookup reads at random.
 *
 * Inserts fill the primary bucket first and each bucket counts its own keys
 * that live elsewhere (meta), so a lookup that misses in the primary reads
 * the other bucket only when that count is not 0. With buckets at most half
 * full, nearly every key is in its primary (97 % of random tuples in a full
 * table, bench_flow): a hit costs the bucket line and the flow's, a miss the
 * bucket line alone. Deletes cannot bring spilled keys home (nothing says
 * where they are), so lookups that meet one do. When both buckets of a new
 * key are full, a bounded breadth-first search moves slots to their other
 * bucket to make room; when that fails too, a stash of FLOW_STASH slots
 * takes the key and its primary is flagged so that lookups search it.
 */
#ifndef SG_FLOW_INDEX_H
#define SG_FLOW_INDEX_H

#include <stdint.h>
#include <string.h>

#include <rte_common.h>
#include <rte_config.h>
#include <rte_hash_crc.h>
#if defined(RTE_ARCH_X86)
#include <emmintrin.h>
#if defined(__SSE4_2__)
#include <nmmintrin.h>
#endif
#endif

#include "flow.h"
#include "sg_common.h"

/* Slots of a bucket; the eighth signature stays 0 and its reference is meta. */
#define FLOW_SLOTS 7
/* Set in every signature: an empty slot's signature is 0. */
#define FLOW_SIG_VALID 0x80000000u
/* meta: some key of this primary bucket is in the stash. */
#define FLOW_META_STASH 0x80000000u
/* meta's other bits: keys of this primary bucket in their other bucket. */
#define FLOW_META_SPILL 0x7fffffffu
/* Slots in the stash, the last resort when both buckets and the search fail. */
#define FLOW_STASH 64
/* Buckets the breadth-first search of an insert may visit. */
#define FLOW_SEARCH_MAX 64

/* A reference: the flow's index and the direction of the key. */
static inline uint32_t
flow_ref(uint32_t idx, unsigned int dir)
{
	return idx << 1 | dir;
}

static inline uint32_t
flow_ref_idx(uint32_t ref)
{
	return ref >> 1;
}

static inline uint8_t
flow_ref_dir(uint32_t ref)
{
	return (uint8_t)(ref & 1);
}

struct flow_bucket {
	uint32_t sig[FLOW_SLOTS + 1];	/* 0: empty; sig[FLOW_SLOTS] always 0 */
	uint32_t ref[FLOW_SLOTS];
	uint32_t meta;			/* FLOW_META_* */
} __rte_cache_aligned;

_Static_assert(sizeof(struct flow_bucket) == RTE_CACHE_LINE_SIZE, "a bucket is one line");

struct flow_index {
	/* Read by every lookup. */
	struct flow_bucket *bkt;
	uint32_t n;		/* buckets: even */
	uint32_t seed;

	/* The stash, unordered: entries [0, stash_n). */
	uint32_t stash_n;
	uint32_t stash_sig[FLOW_STASH];
	uint32_t stash_ref[FLOW_STASH];

	/* For tests and benchmarks (flow_private.h). */
	uint64_t keys;		/* in the index */
	uint64_t spilled;	/* of which in their other bucket */
	uint64_t moves;		/* slots moved by searches, ever */
	uint64_t stashed;	/* keys put in the stash, ever */
	uint64_t settled;	/* keys moved back to a better place, ever */
};

/*
 * Signature of a key: CRC32c over the bytes that can differ between keys
 * of its family. An IPv4 key is two words, the addresses (source in the
 * low half in memory order) and the word of ports, family and protocol;
 * an IPv6 key its five words.
 */
static inline uint32_t
flow_crc8(uint64_t w, uint32_t crc)
{
#if defined(RTE_ARCH_X86) && defined(__SSE4_2__)
	return (uint32_t)_mm_crc32_u64(crc, w);
#else
	return rte_hash_crc_8byte(w, crc);
#endif
}

static inline uint64_t
flow_key_addr4(const struct sg_flow_key *k)
{
	uint8_t b[8];
	uint64_t w;

	memcpy(b, k->src, 4);
	memcpy(b + 4, k->dst, 4);
	memcpy(&w, b, 8);
	return w;
}

static inline uint32_t
flow_key_sig(uint32_t seed, const struct sg_flow_key *k)
{
	uint64_t w[5];

	memcpy(&w[4], &k->sport, 8);
	if (k->family != SG_FLOW_V6)
		return flow_crc8(w[4], flow_crc8(flow_key_addr4(k), seed)) | FLOW_SIG_VALID;
	memcpy(w, k, 32);
	return flow_crc8(w[4], flow_crc8(w[3], flow_crc8(w[2], flow_crc8(w[1],
			flow_crc8(w[0], seed))))) | FLOW_SIG_VALID;
}

/* v scaled to [0, n): a multiply and a shift, not a division (Lemire, 2019). */
static inline uint32_t
flow_index_scale(uint32_t v, uint32_t n)
{
	return (uint32_t)(((uint64_t)v * n) >> 32);
}

/*
 * The signature multiplied by an odd constant, so that the high bits that
 * the scaling keeps depend on all of its bits, and scaled to the buckets.
 */
static inline uint32_t
flow_index_primary(const struct flow_index *x, uint32_t sig)
{
	return flow_index_scale(sig * 0x85ebca6bu, x->n);
}

/*
 * The other bucket of a signature found in bucket b, whichever of its two
 * b is: (h - b) mod n, with h from the signature alone, so that keys of
 * one primary bucket spread over many others. It is its own inverse, and
 * with h odd and n even the two buckets are of opposite parity, so they
 * always differ.
 */
static inline uint32_t
flow_index_other(const struct flow_index *x, uint32_t b, uint32_t sig)
{
	uint32_t h = flow_index_scale(sig * 0x9e3779b1u, x->n) | 1u;

	return h >= b ? h - b : h - b + x->n;
}

/* Bit i set where slot i holds sig (0 finds the empty slots). */
static inline unsigned int
flow_bucket_match(const struct flow_bucket *b, uint32_t sig)
{
#if defined(RTE_ARCH_X86)
	__m128i s = _mm_set1_epi32((int)sig);
	__m128i lo = _mm_cmpeq_epi32(_mm_load_si128((const __m128i *)(const void *)&b->sig[0]), s);
	__m128i hi = _mm_cmpeq_epi32(_mm_load_si128((const __m128i *)(const void *)&b->sig[4]), s);

	return ((unsigned int)_mm_movemask_ps(_mm_castsi128_ps(lo)) |
		(unsigned int)_mm_movemask_ps(_mm_castsi128_ps(hi)) << 4) &
	       ((1u << FLOW_SLOTS) - 1);
#else
	unsigned int m = 0;

	for (unsigned int i = 0; i < FLOW_SLOTS; i++)
		m |= (unsigned int)(b->sig[i] == sig) << i;
	return m;
#endif
}

/*
 * Buckets on socket_id for `keys` keys, at most half full once they are
 * all in. Returns 0, -EINVAL above 2^31 buckets, or -ENOMEM.
 */
int flow_index_init(struct flow_index *x, uint64_t keys, uint32_t seed, int socket_id);
void flow_index_fini(struct flow_index *x);

/* flow_index_add() when the primary bucket of sig is full: flow_index.c. */
int flow_index_add_elsewhere(struct flow_index *x, uint32_t sig, uint32_t ref);

/*
 * Add a reference under sig; the caller made sure the key is not in the
 * index. Returns 0, or -ENOSPC when both buckets, the search and the
 * stash are full. Inline for what nearly every insert finds, a free slot
 * in the primary bucket.
 */
static inline int
flow_index_add(struct flow_index *x, uint32_t sig, uint32_t ref)
{
	struct flow_bucket *b = &x->bkt[flow_index_primary(x, sig)];
	unsigned int free_slots = flow_bucket_match(b, 0);
	unsigned int s;

	RTE_ASSERT(sig & FLOW_SIG_VALID);
	if (sg_unlikely(free_slots == 0))
		return flow_index_add_elsewhere(x, sig, ref);
	s = (unsigned int)__builtin_ctz(free_slots);
	b->sig[s] = sig;
	b->ref[s] = ref;
	x->keys++;
	return 0;
}

/*
 * False when sig is certainly not in the index: no slot of its primary
 * bucket holds it, and no key of that bucket lives elsewhere. One line, so
 * that a new key's duplicate check seldom needs more.
 */
static inline bool
flow_index_may_hold(const struct flow_index *x, uint32_t sig)
{
	const struct flow_bucket *b = &x->bkt[flow_index_primary(x, sig)];

	return flow_bucket_match(b, sig) != 0 || b->meta != 0;
}

/*
 * Remove the reference ref, which is in the index under sig. With rehome,
 * a stashed key that may use the freed slot moves there; a bulk lookup
 * removing expired flows passes 0, since its later keys were already
 * searched for and must stay where they were found.
 */
void flow_index_del(struct flow_index *x, uint32_t sig, uint32_t ref, int rehome);

/*
 * The key (sig, ref), found outside its primary bucket, moves to the
 * primary if it has room now, or from the stash to either bucket with room.
 * Deletes free slots where the keys that spilled from them cannot be found
 * (a key's other bucket depends on its signature), so lookups that meet
 * such a key bring it back, and a table with churn keeps its keys where a
 * lookup reads one line. A key no longer there is left alone.
 */
void flow_index_settle(struct flow_index *x, uint32_t sig, uint32_t ref);

#endif /* SG_FLOW_INDEX_H */
