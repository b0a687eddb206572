/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * --repeat: which of several runs of a scenario stands for them all. On a
 * shared machine one run can be far off either way, so svcgw-bench reports
 * the median run and the range rather than any single one.
 *
 * No DPDK, so the unit tests check it without EAL.
 */
#ifndef SG_BENCH_RUNS_H
#define SG_BENCH_RUNS_H

#include <stdbool.h>

/*
 * The median of n (>= 1) values, sorting v in place: of an even number,
 * the mean of the middle two.
 */
double bench_median(double *v, unsigned int n);

/*
 * The median of n runs by cycles per packet, failed runs (ok[k] false) left
 * out: its index, or -1 if every run failed. Of an even number, the slower
 * of the middle two, so that the figure is never the flattering one.
 */
int bench_median_run(const double *cycles, const bool *ok, unsigned int n);

#endif
