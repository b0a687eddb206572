/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The memory floor of a flow lookup: per packet, the two cache lines that
 * lib/flow's lookup reads (an index bucket picked by a hash of the packet's
 * addresses and ports, then the flow entry the bucket names), at random in
 * arrays as large as a flow table's, in the lookup's order: a burst's
 * buckets prefetched, then its entries. Run inside the baseline's MAC swap,
 * it measures what memory alone asks of a packet at a table size on this
 * machine, whatever code does the lookup: a scenario's cycles minus the
 * floor's are what svcgw's code costs.
 */
#ifndef SG_BENCH_FLOOR_H
#define SG_BENCH_FLOOR_H

#include <stdint.h>

#include <rte_common.h>
#include <rte_mbuf.h>

#include "flow.h"

/* A bucket or an entry: what the floor reads is where a line starts. */
struct bench_floor_line {
	uint32_t w[RTE_CACHE_LINE_SIZE / sizeof(uint32_t)];
} __rte_cache_aligned;

struct bench_floor {
	struct bench_floor_line *index;	  /* w[0] random: it picks the entry */
	struct bench_floor_line *entries; /* w[0] counts the packets that touched it */
	uint32_t n_index;
	uint32_t n_entries;
};

/*
 * Arrays of m->index and m->entries bytes (sg_flow_table_memory()) on
 * socket_id. Returns NULL with errno: EINVAL if either is empty (or over
 * 2^32 lines), ENOMEM.
 */
struct bench_floor *bench_floor_create(const struct sg_flow_memory *m, int socket_id);

/* NULL is ignored. */
void bench_floor_free(struct bench_floor *f);

/*
 * Read the bucket and the entry of each of n <= SG_MAX_BURST frames, and
 * write the entry as a lookup's caller refreshes its flow. The frames are
 * svcgw-bench's own (Ethernet, IPv4 or IPv6, at least 60 bytes).
 */
void bench_floor_touch(struct bench_floor *f, struct rte_mbuf *const *pkts, unsigned int n);

#endif /* SG_BENCH_FLOOR_H */
