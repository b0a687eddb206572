/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Maglev table build time for the sizes of issue 2: M = 65537 with N = 10,
 * 100 and 1000 backends, and M = 655373 with N = 1000. Prints the minimum and
 * median of repeated builds; asserts nothing about time.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "maglev.h"

struct scenario {
	uint32_t size;
	uint32_t n;
};

static const struct scenario scenarios[] = {
	{ 65537, 10 }, { 65537, 100 }, { 65537, 1000 }, { 655373, 1000 },
};

static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static int
run(const struct scenario *s, int reps)
{
	struct sg_maglev_backend *b = calloc(s->n, sizeof(*b));
	uint16_t *table = malloc(sizeof(*table) * s->size);
	double *ms = malloc(sizeof(*ms) * reps);
	int rc = -1;

	if (b == NULL || table == NULL || ms == NULL)
		goto out;
	for (uint32_t i = 0; i < s->n; i++) {
		b[i].family = 4;
		b[i].addr[0] = 203;
		b[i].addr[1] = (uint8_t)(i >> 8);
		b[i].addr[2] = 113;
		b[i].addr[3] = (uint8_t)i;
		b[i].port = 8080;
		b[i].weight = 1;
	}
	for (int r = 0; r < reps; r++) {
		double t0 = now_ms();

		if (sg_maglev_build(b, s->n, table, s->size) != 0) {
			fprintf(stderr, "bench_maglev: build failed for M=%u N=%u\n",
				s->size, s->n);
			goto out;
		}
		ms[r] = now_ms() - t0;
	}
	qsort(ms, reps, sizeof(*ms), cmp_double);
	printf("M=%-7u N=%-5u  min %7.3f ms  median %7.3f ms  (%d builds)\n",
	       s->size, s->n, ms[0], ms[reps / 2], reps);
	rc = 0;
out:
	free(ms);
	free(table);
	free(b);
	return rc;
}

int
main(int argc, char **argv)
{
	bool quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
	int reps = quick ? 3 : 101;

	printf("Maglev table build (NSDI'16 reports 1.8 ms for M=65537, N=1000)\n");
	for (size_t i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++)
		if (run(&scenarios[i], reps) != 0)
			return 1;
	return 0;
}
