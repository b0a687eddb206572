/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Declarations shared by the files of lib/flow, and the views of the index
 * that its unit tests and benchmark use (defined in flow.c); nothing else
 * calls them.
 */
#ifndef SG_FLOW_PRIVATE_H
#define SG_FLOW_PRIVATE_H

#include <stddef.h>
#include <stdint.h>

#include "flow.h"

/* rte_log type "svcgw.flow", defined by SG_LOG_REGISTER(flow) in flow.c. */
extern int sg_logtype_flow;

/* The index in figures. */
struct flow_index_info {
	uint32_t buckets;
	uint64_t bytes;		/* of the buckets */
	uint64_t keys;		/* in the index */
	uint64_t spilled;	/* of which in their other bucket */
	uint32_t stash_n;	/* of which in the stash */
	uint64_t moves;		/* slots moved to make room, ever */
	uint64_t stashed;	/* keys put in the stash, ever */
	uint64_t settled;	/* keys a lookup moved back to a better place, ever */
};

void flow_table_index_info(const struct sg_flow_table *t, struct flow_index_info *info);

/* Where a key is: its signature, its two buckets and which holds it. */
enum {
	FLOW_AT_NONE = 0,	/* not in the table */
	FLOW_AT_PRIMARY,
	FLOW_AT_OTHER,
	FLOW_AT_STASH,
};

struct flow_key_place {
	uint32_t sig;
	uint32_t primary;
	uint32_t other;
	int at;			/* FLOW_AT_* */
};

void flow_table_place(const struct sg_flow_table *t, const struct sg_flow_key *k,
		      struct flow_key_place *pl);

/*
 * Check every invariant of the index against the flows: each slot names a
 * flow in use, under its key's signature, in one of its buckets (or the
 * stash, flagged in its primary); the counts of keys elsewhere match; each
 * flow has exactly its keys. Returns 0, or -1 with the first problem in why.
 */
int flow_table_check(const struct sg_flow_table *t, char *why, size_t len);

#endif /* SG_FLOW_PRIVATE_H */
