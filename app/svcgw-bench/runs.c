/* SPDX-License-Identifier: BSD-3-Clause */
/* The median of a scenario's runs (see runs.h). */
#include <stdbool.h>
#include <stdlib.h>

#include "runs.h"

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

double
bench_median(double *v, unsigned int n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int
bench_median_run(const double *cycles, const bool *ok, unsigned int n)
{
	unsigned int good = 0, rank;

	for (unsigned int k = 0; k < n; k++)
		good += ok[k];
	if (good == 0)
		return -1;
	/* The run with good / 2 successful runs faster than it (ties by position). */
	for (unsigned int k = 0; k < n; k++) {
		if (!ok[k])
			continue;
		rank = 0;
		for (unsigned int j = 0; j < n; j++)
			if (ok[j] && (cycles[j] < cycles[k] || (cycles[j] == cycles[k] && j < k)))
				rank++;
		if (rank == good / 2)
			return (int)k;
	}
	return -1;	/* not reached: ranks of the good runs are 0 .. good - 1 */
}
