/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * EAL for unit tests of the libraries that use DPDK: no hugepages, no PCI,
 * no shared config files and no telemetry socket, so tests run anywhere,
 * in parallel, and leave nothing behind.
 */
#ifndef SG_TEST_EAL_H
#define SG_TEST_EAL_H

#include <stdio.h>
#include <stdlib.h>

#include <rte_eal.h>
#include <rte_log.h>

/* Initialise EAL with `mem_mb` of ordinary memory; exits the test on failure. */
static inline void
sg_test_eal_init(const char *prog, const char *mem_mb)
{
	char *argv[] = {
		(char *)prog, "--no-huge", "-m", (char *)mem_mb, "--no-pci",
		"--no-shconf", "--no-telemetry", "-l", "0",
		"--log-level=lib.eal:error", NULL,
	};
	int argc = (int)(sizeof(argv) / sizeof(argv[0])) - 1;

	/* Logs on stderr: stdout carries the TAP results. */
	rte_openlog_stream(stderr);
	if (rte_eal_init(argc, argv) < 0) {
		fprintf(stderr, "%s: rte_eal_init failed\n", prog);
		exit(1);
	}
}

#endif /* SG_TEST_EAL_H */
