/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A latency histogram for the line-rate mode: log-linear buckets (exact
 * below 64, then 32 per power of two: within about 3 % everywhere), fixed
 * size, filled per packet without allocating, read at the end for
 * percentiles. Units are the caller's (TSC cycles in svcgw-bench).
 *
 * No DPDK, so the unit tests check it without EAL.
 */
#ifndef SG_BENCH_LAT_H
#define SG_BENCH_LAT_H

#include <stdint.h>

#define BENCH_LAT_SUB_BITS 5u
#define BENCH_LAT_SUB (1u << BENCH_LAT_SUB_BITS)
/* 64 exact buckets, then 32 for each power of two from 2^6 to 2^63. */
#define BENCH_LAT_BUCKETS (2u * BENCH_LAT_SUB + (63u - BENCH_LAT_SUB_BITS) * BENCH_LAT_SUB)

struct bench_lat {
	uint64_t n;
	uint64_t min;
	uint64_t max;
	uint64_t sum;
	uint64_t bucket[BENCH_LAT_BUCKETS];
};

void bench_lat_reset(struct bench_lat *l);

static inline unsigned int
bench_lat_index(uint64_t v)
{
	unsigned int msb, shift;

	if (v < 2u * BENCH_LAT_SUB)
		return (unsigned int)v;
	msb = 63u - (unsigned int)__builtin_clzll(v);
	shift = msb - BENCH_LAT_SUB_BITS;
	/* The top SUB_BITS + 1 bits; the first of them is always 1. */
	return 2u * BENCH_LAT_SUB + (shift - 1u) * BENCH_LAT_SUB +
	       (unsigned int)((v >> shift) - BENCH_LAT_SUB);
}

static inline void
bench_lat_add(struct bench_lat *l, uint64_t v)
{
	if (v < l->min)
		l->min = v;
	if (v > l->max)
		l->max = v;
	l->n++;
	l->sum += v;
	l->bucket[bench_lat_index(v)]++;
}

/*
 * The value below which a fraction q (0 to 1) of the samples lie: the
 * middle of the bucket holding it, never outside [min, max]. 0 when empty.
 */
uint64_t bench_lat_quantile(const struct bench_lat *l, double q);

#endif /* SG_BENCH_LAT_H */
