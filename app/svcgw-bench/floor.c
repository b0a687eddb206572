/* SPDX-License-Identifier: BSD-3-Clause */
/* The memory floor of a flow lookup (floor.h). */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include <rte_common.h>
#include <rte_hash_crc.h>
#include <rte_malloc.h>
#include <rte_prefetch.h>
#include <rte_random.h>

#include "sg_common.h"
#include "floor.h"

struct bench_floor *
bench_floor_create(const struct sg_flow_memory *m, int socket_id)
{
	uint64_t n_index = m->index / sizeof(struct bench_floor_line);
	uint64_t n_entries = m->entries / sizeof(struct bench_floor_line);
	struct bench_floor *f;

	if (n_index == 0 || n_index > UINT32_MAX ||
	    n_entries == 0 || n_entries > UINT32_MAX) {
		errno = EINVAL;
		return NULL;
	}
	f = rte_zmalloc_socket("bench_floor", sizeof(*f), RTE_CACHE_LINE_SIZE, socket_id);
	if (f == NULL)
		goto nomem;
	f->index = rte_malloc_socket("bench_floor_index", n_index * sizeof(*f->index),
				     RTE_CACHE_LINE_SIZE, socket_id);
	f->entries = rte_zmalloc_socket("bench_floor_entries", n_entries * sizeof(*f->entries),
					RTE_CACHE_LINE_SIZE, socket_id);
	if (f->index == NULL || f->entries == NULL)
		goto nomem;
	f->n_index = (uint32_t)n_index;
	f->n_entries = (uint32_t)n_entries;
	/* What a bucket names must be read before its entry can be fetched. */
	for (uint64_t i = 0; i < n_index; i++)
		f->index[i].w[0] = (uint32_t)rte_rand();
	return f;
nomem:
	bench_floor_free(f);
	errno = ENOMEM;
	return NULL;
}

void
bench_floor_free(struct bench_floor *f)
{
	if (f == NULL)
		return;
	rte_free(f->index);
	rte_free(f->entries);
	rte_free(f);
}

/* A hash of the frame's addresses and ports, as the flow key's. */
static uint32_t
tuple_hash(const struct rte_mbuf *m)
{
	const uint8_t *p = rte_pktmbuf_mtod(m, const uint8_t *);
	/* rte_hash_crc() loads 8 bytes at a time: from an aligned copy. */
	uint64_t tuple[5];
	uint32_t len = 12;

	if (p[12] == 0x86 && p[13] == 0xdd) {
		len = 36;
		memcpy(tuple, p + 22, len);
	} else {
		memcpy(tuple, p + 26, len);
	}
	return rte_hash_crc(tuple, len, 0);
}

void
bench_floor_touch(struct bench_floor *f, struct rte_mbuf *const *pkts, unsigned int n)
{
	const struct bench_floor_line *bkt[SG_MAX_BURST];
	struct bench_floor_line *entry[SG_MAX_BURST];
	uint32_t h[SG_MAX_BURST];
	unsigned int i;

	RTE_ASSERT(n <= SG_MAX_BURST);
	for (i = 0; i < n; i++) {
		h[i] = tuple_hash(pkts[i]);
		bkt[i] = &f->index[(uint64_t)h[i] * f->n_index >> 32];
		rte_prefetch0(bkt[i]);
	}
	for (i = 0; i < n; i++) {
		uint32_t r = bkt[i]->w[0] ^ h[i];

		entry[i] = &f->entries[(uint64_t)r * f->n_entries >> 32];
		rte_prefetch0(entry[i]);
	}
	for (i = 0; i < n; i++)
		entry[i]->w[0]++;
}
