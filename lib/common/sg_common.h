/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Small definitions every svcgw library shares, free of DPDK so that the
 * libraries that do not need DPDK (pkt, maglev) can use them in unit tests
 * and fuzzers without EAL.
 */
#ifndef SG_COMMON_H
#define SG_COMMON_H

#include <stdint.h>
#include <stdlib.h>
#include <time.h>

/* Packets handled per rx burst; every per-burst array is this long. */
#define SG_MAX_BURST 32

#define sg_likely(x) __builtin_expect(!!(x), 1)
#define sg_unlikely(x) __builtin_expect(!!(x), 0)

#define SG_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/*
 * CLOCK_MONOTONIC in milliseconds: every timer, deadline and backoff of the
 * control plane is measured on it, never on the wall clock, which may step.
 */
static inline uint64_t
sg_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/*
 * A growable array that is full, twice as large (`first` elements when it
 * had none): the new array, *cap updated; NULL with v and *cap unchanged.
 */
static inline void *
sg_array_grow(void *v, uint32_t *cap, size_t size, uint32_t first)
{
	uint32_t n = *cap ? 2 * *cap : first;
	void *nv = realloc(v, (size_t)n * size);

	if (nv != NULL)
		*cap = n;
	return nv;
}

#endif /* SG_COMMON_H */
