/* SPDX-License-Identifier: BSD-3-Clause */
/* The latency histogram (lat.h): reset and percentiles. */
#include <stdint.h>
#include <string.h>

#include "lat.h"

void
bench_lat_reset(struct bench_lat *l)
{
	memset(l, 0, sizeof(*l));
	l->min = UINT64_MAX;
}

/* The smallest value of bucket i, and how many values it holds. */
static void
bucket_range(unsigned int i, uint64_t *lo, uint64_t *width)
{
	unsigned int shift;

	if (i < 2u * BENCH_LAT_SUB) {
		*lo = i;
		*width = 1;
		return;
	}
	shift = (i - 2u * BENCH_LAT_SUB) / BENCH_LAT_SUB + 1u;
	*lo = ((uint64_t)BENCH_LAT_SUB + (i - 2u * BENCH_LAT_SUB) % BENCH_LAT_SUB) << shift;
	*width = (uint64_t)1 << shift;
}

uint64_t
bench_lat_quantile(const struct bench_lat *l, double q)
{
	uint64_t rank, seen = 0, lo, width, v;

	if (l->n == 0)
		return 0;
	if (q <= 0)
		return l->min;
	if (q >= 1)
		return l->max;
	/* The sample of rank ceil(q n), counting from 1. */
	rank = (uint64_t)(q * (double)l->n);
	if ((double)rank < q * (double)l->n)
		rank++;
	if (rank == 0)
		rank = 1;
	for (unsigned int i = 0; i < BENCH_LAT_BUCKETS; i++) {
		seen += l->bucket[i];
		if (seen < rank)
			continue;
		bucket_range(i, &lo, &width);
		v = lo + width / 2;
		return v < l->min ? l->min : v > l->max ? l->max : v;
	}
	return l->max;
}
